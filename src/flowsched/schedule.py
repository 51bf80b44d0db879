"""The :class:`Schedule` value type: the ``N + 1`` values of ``t`` a sampler visits.

Convention (DESIGN.md): ``t`` in [0, 1], ``t = 1`` is pure noise, ``t = 0`` is data, a sampler walks from
``t_0`` (normally 1) to ``t_N`` (normally 0). diffusers calls these values *sigmas*; the number fed to a model
is usually ``t * 1000`` (see :meth:`Schedule.model_timesteps`).

numpy only: building and inspecting a schedule never imports torch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

FORMAT = "flowsched.schedule"
FORMAT_VERSION = 1


def _json_value(name: str, value: Any) -> Any:
    """Parameters must survive a JSON round trip; refuse what would not."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"schedule parameter {name!r} must be finite, got {value}")
        return value
    if isinstance(value, (np.integer, np.floating)):
        return _json_value(name, value.item())
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    raise TypeError(
        f"schedule parameter {name!r} must be a number, string, bool, None or a list of them, "
        f"got {type(value).__name__}"
    )


@dataclass(frozen=True, eq=False)
class Schedule:
    """An immutable sampling schedule.

    Attributes:
        t: float64 numpy array of ``N + 1`` values in [0, 1], strictly monotone (read-only).
        name: the family that made it (``"opensora"``, ``"shifted"``, ``"custom"`` ...).
        params: the parameters that made it (read-only mapping of JSON-ready values).
    """

    t: np.ndarray
    name: str = "custom"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            arr = np.array(self.t, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"t must be a sequence of numbers, got {type(self.t).__name__}: {exc}") from None
        if arr.ndim != 1:
            raise ValueError(f"t must be one-dimensional, got shape {arr.shape}")
        if arr.size < 2:
            raise ValueError(f"t must hold at least 2 values (one step), got {arr.size}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"t must be finite, got {float(arr[bad[0]])} at index {bad[0]}")
        out = np.flatnonzero((arr < 0) | (arr > 1))
        if out.size:
            raise ValueError(f"t values must lie in [0, 1], got {float(arr[out[0]])!r} at index {out[0]}")
        d = np.diff(arr)
        if not (np.all(d < 0) or np.all(d > 0)):
            i = int(np.flatnonzero(d >= 0)[0]) if d[0] < 0 else int(np.flatnonzero(d <= 0)[0])
            raise ValueError(
                f"t must be strictly monotone (normally decreasing from 1 to 0); t[{i}]={float(arr[i])!r} and "
                f"t[{i + 1}]={float(arr[i + 1])!r} break the order"
            )
        arr.setflags(write=False)
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"params must be a mapping, got {type(self.params).__name__}")
        params = {str(k): _json_value(str(k), v) for k, v in self.params.items()}
        object.__setattr__(self, "t", arr)
        object.__setattr__(self, "params", MappingProxyType(params))

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
        """The ``N`` timesteps fed to the model: ``t[:-1] * scale`` (diffusers' ``timesteps``; Open-Sora
        embeds ``t`` with ``time_factor=1000``). The terminal value is never fed to a model."""
        return self.t[:-1] * float(scale)

    def to_list(self) -> list[float]:
        """The ``N + 1`` values as Python floats (what Open-Sora's ``get_schedule`` returns)."""
        return [float(x) for x in self.t]

    def to_torch(self, device: Any = None, dtype: Any = None):
        """The ``N + 1`` values as a torch tensor (float32 unless ``dtype`` says otherwise)."""
        import torch

        return torch.tensor(self.t, dtype=dtype if dtype is not None else torch.float32, device=device)

    def describe(self) -> str:
        """One line: name, parameters and step count."""
        ps = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({ps}) N={self.num_steps}"

    # -- JSON --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "params": dict(self.params),
            "num_steps": self.num_steps,
            "t": self.to_list(),
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = None) -> str:
        """Serialise (floats round-trip exactly). With ``path``, also write the file atomically."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            from ._io import atomic_write_text

            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        if not isinstance(data, Mapping):
            raise TypeError(f"a schedule document must be a JSON object, got {type(data).__name__}")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"not a flowsched schedule: format is {data.get('format')!r}, expected {FORMAT!r}")
        if "t" not in data:
            raise ValueError("a schedule document needs the key 't' (the list of N + 1 values)")
        return cls(t=data["t"], name=data.get("name", "custom"), params=data.get("params", {}))

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> Schedule:
        """Load from a JSON string, or from a file path. Accepts a bare list of numbers too."""
        text = str(text_or_path)
        if not text.lstrip().startswith(("{", "[")):
            try:
                with open(text_or_path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                raise ValueError(f"cannot read schedule file {str(text_or_path)!r}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"schedule JSON is invalid: {exc}") from None
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
