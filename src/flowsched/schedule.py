"""The :class:`Schedule` value type: the ``N + 1`` values of ``t`` a sampler visits, and :func:`check_t`, the one
checker of schedule values every module uses.

Convention (docs/conventions.md): ``t`` in [0, 1], ``t = 1`` is pure noise, ``t = 0`` is data, a sampler walks from
``t_0`` (normally 1) to ``t_N`` (normally 0). diffusers calls these values *sigmas*; the number fed to a model
is usually ``t * 1000`` (see :meth:`Schedule.model_timesteps`).

numpy only: building and inspecting a schedule never imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ENDPOINT_TOL",
    "FORMAT",
    "FORMAT_VERSION",
    "Schedule",
    "check_name_params",
    "check_t",
    "format_params",
    "json_value",
]

FORMAT = "flowsched.schedule"
FORMAT_VERSION = 1

#: Endpoint tolerance of :func:`check_t`: ``|t_0 - start|`` and ``|t_N - end|`` below this count as exact
#: (float32-derived schedules round).
ENDPOINT_TOL = 1e-6


def check_t(
    values: Any,
    name: str = "t",
    *,
    decreasing: bool = True,
    positive: bool = False,
    min_size: int = 2,
    start: float | None = None,
    end: float | None = None,
    rows: bool = False,
    hint: str = "",
) -> np.ndarray:
    """Check schedule values and return them as a float64 array (the rules of docs/conventions.md, "Checks").

    ``values`` is one schedule (1-D) or, with ``rows=True``, one schedule per row (``[S, N + 1]``). Each must hold
    at least ``min_size`` values, all finite, inside [0, 1] (``(0, 1]`` with ``positive=True``: lists that get a
    terminal 0 appended), strictly decreasing (``decreasing=False``: strictly monotone either way, for inverted
    schedules), starting within :data:`ENDPOINT_TOL` of ``start`` and ending within it of ``end`` when those are
    given. ``TypeError`` for values that are not numbers; ``ValueError`` otherwise, naming ``name``, the index
    (``name[i]``, or ``name[s, i]`` for rows) and the value; ``hint`` is appended to endpoint errors.
    """
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r:.80}") from None
    if arr.ndim != (2 if rows else 1):
        shape = "[S, N + 1] (one schedule per row)" if rows else "one-dimensional (a flat list of numbers)"
        raise ValueError(f"{name} must be {shape}, got shape {arr.shape}")
    table = _Rows(arr if rows else arr[None, :], name, rows)
    if table.values.shape[1] < min_size:
        what = "value" if min_size == 1 else f"values (at least one step, N + 1 >= {min_size})"
        raise ValueError(f"{name} must hold at least {min_size} {what}, got {table.values.shape[1]}")
    _check_range(table, positive)
    _check_order(table, decreasing)
    _check_end(table, "start", start, hint)
    _check_end(table, "end", end, hint)
    return arr


class _Rows:
    """Schedule values as rows ``[S, N + 1]`` and how :func:`check_t`'s messages name a cell (``t[i]`` for one
    schedule, ``t[s, i]`` for rows)."""

    def __init__(self, values: np.ndarray, name: str, rows: bool) -> None:
        self.values, self.name, self.rows = values, name, rows

    def at(self, s: int, i: int) -> str:
        """``name[i]=value`` (``name[s, i]=value`` for rows)."""
        where = f"{self.name}[{s}, {i}]" if self.rows else f"{self.name}[{i}]"
        return f"{where}={float(self.values[s, i])!r}"

    def first(self, bad: np.ndarray) -> tuple[int, int] | None:
        """The first ``(s, i)`` where ``bad`` holds, or None."""
        if not bad.any():
            return None
        s, i = np.argwhere(bad)[0]
        return int(s), int(i)


def _check_range(table: _Rows, positive: bool) -> None:
    """Rules 2 and 3: finite, inside [0, 1] (``(0, 1]`` with ``positive``)."""
    t, name = table.values, table.name
    cell = table.first(~np.isfinite(t))
    if cell:
        raise ValueError(f"{name} must be finite; {table.at(*cell)}")
    cell = table.first(~((t > 0.0 if positive else t >= 0.0) & (t <= 1.0)))
    if cell:
        where = "(0, 1] (the terminal 0 is appended for you)" if positive else "[0, 1]"
        raise ValueError(f"{name} must lie in {where} (t = 1 is noise, t = 0 is data); {table.at(*cell)}")


def _check_order(table: _Rows, decreasing: bool) -> None:
    """Rule 4: strictly decreasing, or (``decreasing=False``) strictly monotone in the direction of each row's first
    step."""
    d, name = np.diff(table.values, axis=1), table.name
    if decreasing:
        cell = table.first(d >= 0)
        if cell:
            s, i = cell
            raise ValueError(
                f"{name} must be strictly decreasing (t = 1 is noise, t = 0 is data); {table.at(s, i)} is followed "
                f"by {table.at(s, i + 1)}"
            )
        return
    cell = table.first(np.where(d[:, :1] < 0, d >= 0, d <= 0)) if d.shape[1] else None
    if cell:
        s, i = cell
        raise ValueError(
            f"{name} must be strictly monotone (normally decreasing from 1 to 0); {table.at(s, i)} and "
            f"{table.at(s, i + 1)} break the order"
        )


def _check_end(table: _Rows, which: str, want: float | None, hint: str) -> None:
    """Rule 5: ``t_0`` (``which="start"``) or ``t_N`` (``"end"``) within :data:`ENDPOINT_TOL` of ``want``."""
    if want is None:
        return
    col = 0 if which == "start" else table.values.shape[1] - 1
    bad = np.flatnonzero(np.abs(table.values[:, col] - want) > ENDPOINT_TOL)
    if bad.size:
        label = "t_0" if col == 0 else "t_N"
        meaning = {1.0: " (pure noise)", 0.0: " (data)"}.get(float(want), "")
        raise ValueError(
            f"{table.name} must {which} at {label} = {want:g}{meaning}; {table.at(int(bad[0]), col)}"
            + (f"; {hint}" if hint else "")
        )


def json_value(name: str, value: Any) -> Any:
    """A schedule parameter as a JSON-ready value (numpy scalars to Python, tuples to lists); ``TypeError`` or
    ``ValueError`` naming ``name`` for what would not survive a JSON round trip (objects, NaN, inf)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"schedule parameter {name!r} must be finite, got {value}")
        return value
    if isinstance(value, (np.integer, np.floating)):
        return json_value(name, value.item())
    if isinstance(value, (list, tuple)):
        return [json_value(name, v) for v in value]
    raise TypeError(
        f"schedule parameter {name!r} must be a number, string, bool, None or a list of them, "
        f"got {type(value).__name__}"
    )


def check_name_params(name: Any, params: Any) -> Mapping[str, Any]:
    """A value's ``name`` (a non-empty string) and ``params`` (a mapping of :func:`json_value` values), checked;
    returns the params as a read-only mapping. Shared by :class:`Schedule` and the frame schedules."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    return MappingProxyType({str(k): json_value(str(k), v) for k, v in params.items()})


def _check_timesteps(values: Any, num_steps: int) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"timesteps must be a sequence of numbers, got {values!r:.80}") from None
    if arr.shape != (num_steps,):
        raise ValueError(
            f"timesteps must hold N = {num_steps} values (one per model evaluation, none for the terminal), "
            f"got shape {arr.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        raise ValueError(f"timesteps must be finite and >= 0; timesteps[{bad[0]}]={float(arr[bad[0]])!r}")
    arr.setflags(write=False)
    return arr


def format_params(params: Mapping[str, Any]) -> str:
    """``key=value, ...`` for a one-line description (floats to 6 significant digits)."""
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


@dataclass(frozen=True, eq=False)
class Schedule:
    """An immutable sampling schedule.

    Attributes:
        t: float64 numpy array of ``N + 1`` values in [0, 1], strictly monotone (read-only).
        name: the family that made it (``"opensora"``, ``"shifted"``, ``"custom"`` ...).
        params: the parameters that made it (read-only mapping of JSON-ready values).
        timesteps: ``None``, or the ``N`` values the model is fed when they are not ``t * 1000`` (float64,
            finite, >= 0, read-only; recorded at ``num_train_timesteps = 1000``): CogView4's unshifted integer
            timesteps, the integer-truncated timesteps of Wan's and Sana's multistep solvers, Mochi's ``1 - t``.
            See :meth:`model_timesteps`.
    """

    t: np.ndarray
    name: str = "custom"
    params: Mapping[str, Any] = field(default_factory=dict)
    timesteps: np.ndarray | None = None

    def __post_init__(self) -> None:
        arr = check_t(self.t, "t", decreasing=False)
        arr.setflags(write=False)
        params = check_name_params(self.name, self.params)
        object.__setattr__(self, "t", arr)
        object.__setattr__(self, "params", params)
        if self.timesteps is not None:
            object.__setattr__(self, "timesteps", _check_timesteps(self.timesteps, arr.size - 1))

    # -- views -------------------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """Number of sampler steps ``N`` (the schedule holds ``N + 1`` values)."""
        return int(self.t.size - 1)

    @property
    def dt(self) -> np.ndarray:
        """Step sizes ``t[i+1] - t[i]`` (negative for the usual decreasing schedule), ``N`` values."""
        return np.diff(self.t)

    def model_timesteps(self, scale: float = 1000.0) -> np.ndarray:
        """The ``N`` timesteps fed to the model (diffusers' ``scheduler.timesteps``), float64.

        ``t[:-1] * scale`` (Open-Sora embeds ``t`` with ``time_factor=1000``; diffusers' FlowMatchEuler feeds
        ``sigma * num_train_timesteps``), unless the rule that made the schedule feeds something else: then its
        recorded :attr:`timesteps` (``timesteps * scale / 1000``; exactly the recorded values at the default
        ``scale``). The terminal value is never fed to a model.
        """
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale}")
        if self.timesteps is not None:
            return self.timesteps.copy() if scale == 1000.0 else self.timesteps * (scale / 1000.0)
        return self.t[:-1] * scale

    def to_list(self) -> list[float]:
        """The ``N + 1`` values as Python floats (what Open-Sora's ``get_schedule`` returns)."""
        return [float(x) for x in self.t]

    def to_torch(self, device: Any = None, dtype: Any = None):
        """The ``N + 1`` values as a torch tensor (float32 unless ``dtype`` says otherwise)."""
        import torch

        return torch.tensor(self.t, dtype=dtype if dtype is not None else torch.float32, device=device)

    def describe(self) -> str:
        """One line: name, parameters and step count."""
        return f"{self.name}({format_params(self.params)}) N={self.num_steps}"

    # -- JSON --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "params": dict(self.params),
            "num_steps": self.num_steps,
            "t": self.to_list(),
            **({} if self.timesteps is None else {"timesteps": [float(x) for x in self.timesteps]}),
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = None) -> str:
        """Serialise (floats round-trip exactly). With ``path``, also write the file atomically."""
        from ._io import json_text

        return json_text(self.to_dict(), path, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        if not isinstance(data, Mapping):
            raise TypeError(f"a schedule document must be a JSON object, got {type(data).__name__}")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"not a flowsched schedule: format is {data.get('format')!r}, expected {FORMAT!r}")
        if "t" not in data:
            raise ValueError("a schedule document needs the key 't' (the list of N + 1 values)")
        return cls(
            t=data["t"], name=data.get("name", "custom"), params=data.get("params", {}),
            timesteps=data.get("timesteps"),
        )

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> Schedule:
        """Load from a JSON string, or from a file path. Accepts a bare list of numbers too."""
        from ._io import load_json

        data = load_json(text_or_path, "schedule", ("{", "["))
        if isinstance(data, list):
            return cls(t=data, name="custom")
        return cls.from_dict(data)

    # -- value semantics ---------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (
            self.name == other.name
            and dict(self.params) == dict(other.params)
            and np.array_equal(self.t, other.t)
            and (self.timesteps is None) == (other.timesteps is None)
            and (self.timesteps is None or np.array_equal(self.timesteps, other.timesteps))
        )

    def __hash__(self) -> int:
        return hash((self.name, self.t.tobytes()))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """``numpy.asarray(schedule)`` is the ``N + 1`` values (a copy; ``t`` itself is read-only)."""
        return np.array(self.t, dtype=dtype, copy=True)

    def __len__(self) -> int:
        """Number of values (``N + 1``), like the list Open-Sora returns."""
        return int(self.t.size)

    def __iter__(self) -> Iterable[float]:
        return iter(self.to_list())

    def __repr__(self) -> str:
        if self.t.size <= 6:
            values = ", ".join(f"{x:.4f}" for x in self.t)
        else:
            values = ", ".join(f"{x:.4f}" for x in self.t[:3]) + ", ..., " + ", ".join(f"{x:.4f}" for x in self.t[-2:])
        return f"Schedule({self.describe()}: [{values}])"
