"""Euler and Heun samplers over any velocity callable, for torch tensors and numpy arrays.

Convention (docs/conventions.md): ``x_t = (1 - t) * x0 + t * eps``, ``t = 1`` is pure noise, ``t = 0`` is data, and
the model predicts the velocity ``v = eps - x0``. A sampler walks a schedule ``t_0 > t_1 > ... > t_N`` with Open-Sora
2.0's step ``x <- x + (t_next - t) * v(x, t)`` (``opensora/utils/sampling.py``, ``SamplingOption`` denoise loop;
Flux's ``denoise`` is the same line).

The velocity callable is ``velocity(x, t) -> v``:

- ``x`` is the current state, the same type (numpy array or torch tensor), shape, dtype and device as the ``x``
  passed to the sampler;
- ``t`` is a plain Python ``float`` (the schedule value, not ``t * 1000``); wrap your model if it wants a tensor
  or a batched timestep, e.g. ``lambda x, t: model(x, torch.full((x.shape[0],), t * 1000, device=x.device))``;
- ``v`` must have the shape of ``x`` and be finite. A wrong shape stops the sampler with a ``ValueError`` that names
  the step index and ``t``; NaN or inf too, as far as ``check`` looks (below).

``check``: ``"first"`` (default) checks the shape of every ``v``, and finiteness on the first call and on the
result (a finiteness check on a GPU tensor is a device-to-host sync; one per run costs nothing measurable);
``"every"`` checks finiteness on every call, naming the first bad step; ``"none"`` checks shapes only.

Schedules: a :class:`~flowsched.schedule.Schedule` or any sequence of ``N + 1`` numbers, checked by
:func:`~flowsched.schedule.check_t`: strictly decreasing inside [0, 1]; a sampler that starts from pure noise and
must return data needs ``t_0 = 1`` and ``t_N = 0`` (within 1e-6), unless ``allow_partial=True`` (image-to-image
starting at ``t_0 < 1``, or a partial trajectory stopping at ``t_N > 0``).

Samplers are plain functions, listed once in :data:`SAMPLERS`. They use only ``+`` and scalar ``*`` on ``x``, so they
work unchanged for numpy and torch (any device or dtype; the step is computed like Open-Sora's, a Python float times
the tensor).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._validate import choice, is_torch_tensor
from .schedule import ENDPOINT_TOL, Schedule, check_t

Velocity = Callable[[Any, float], Any]
Callback = Callable[[int, float, float, Any], Any]

#: What a sampler checks of the velocity it calls (see the module docstring).
CHECKS = ("first", "every", "none")

__all__ = [
    "CHECKS",
    "ENDPOINT_TOL",
    "SAMPLERS",
    "call_velocity",
    "euler",
    "get_sampler",
    "heun",
    "nfe",
    "progress_bar",
    "schedule_values",
]


def schedule_values(schedule: Schedule | Sequence[float] | np.ndarray, *, allow_partial: bool = False) -> np.ndarray:
    """The schedule as a float64 array, checked by :func:`~flowsched.schedule.check_t` for what a noise-to-data
    sampler needs: finite, in [0, 1], strictly decreasing, at least two values, and (unless ``allow_partial``)
    starting at 1 and ending at 0. ``ValueError`` names the offending index."""
    if not isinstance(schedule, Schedule) and (isinstance(schedule, (str, bytes)) or not hasattr(schedule, "__len__")):
        raise TypeError(f"schedule must be a Schedule or a sequence of N + 1 numbers, got {type(schedule).__name__}")
    values = schedule.t if isinstance(schedule, Schedule) else schedule
    if allow_partial:
        return check_t(values, "schedule")
    return check_t(
        values, "schedule", start=1.0, end=0.0,
        hint="pass allow_partial=True to start from a partly noised x (image-to-image) or to stop early",
    )


def nfe(sampler: str, num_steps: int) -> int:
    """Velocity evaluations a sampler spends on ``num_steps`` steps ending at ``t = 0``.

    ``euler``: ``N``. ``heun``: ``2N - 1`` (the last step to ``t = 0`` is an Euler step). A partial Heun schedule
    that stops at ``t_N > 0`` costs ``2N``.
    """
    get_sampler(sampler)
    return int(num_steps) if sampler == "euler" else 2 * int(num_steps) - 1


def _check_state(x: Any) -> None:
    if not (isinstance(x, np.ndarray) or is_torch_tensor(x)):
        raise TypeError(f"x must be a numpy array or a torch tensor, got {type(x).__name__}")
    if isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")
    if is_torch_tensor(x) and not x.is_floating_point():
        raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")


def _all_finite(v: Any) -> bool:
    return bool(v.isfinite().all()) if is_torch_tensor(v) else bool(np.isfinite(v).all())


def call_velocity(velocity: Velocity, x: Any, t: float, *, step: int = 0, stage: str = "", finite: bool = True) -> Any:
    """``velocity(x, t)``, checked: a torch tensor for a torch ``x`` (an array otherwise), the shape of ``x``, and
    with ``finite=True`` no NaN or inf (for a GPU tensor that check is a device-to-host sync). Errors name ``step``
    and ``t`` (``stage`` adds a detail, e.g. ``", Heun corrector"``). Used by the samplers and
    :func:`flowsched.quality.teacher_search`."""
    v = velocity(x, t)
    where = f"at step {step} (t={t!r}{stage})"
    if is_torch_tensor(x):
        if not is_torch_tensor(v):
            raise TypeError(f"velocity must return a torch tensor for a torch x, got {type(v).__name__} {where}")
    elif not isinstance(v, np.ndarray):
        v = np.asarray(v)
    if tuple(v.shape) != tuple(x.shape):
        raise ValueError(f"velocity returned shape {tuple(v.shape)} {where}; it must match x, {tuple(x.shape)}")
    if finite and not _all_finite(v):
        raise ValueError(f"velocity returned NaN or inf {where}")
    return v


class _NoBar:
    """What :func:`progress_bar` gives when it is switched off: the calls a bar takes, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(total: int | None, enabled: bool, desc: str, unit: str = "step") -> Any:
    """A tqdm bar on stderr, or a bar that does nothing when ``enabled`` is false. Use it as a context manager,
    ``with progress_bar(total, enabled, desc) as bar: ... bar.update(1)``, which closes it on the way out
    (exceptions included); ``update``, ``set_postfix`` and ``close`` also work without ``with``."""
    if not enabled:
        return _NoBar()
    from ._optional import require

    tqdm = require("tqdm.auto", "a progress bar").tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)


def euler(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
    check: str = "first",
) -> Any:
    """Integrate ``dx/dt = velocity(x, t)`` from ``t_0`` to ``t_N`` with Euler steps; ``N`` velocity calls.

    Each step is Open-Sora 2.0's ``x <- x + (t_next - t) * velocity(x, t)``.

    Args:
        velocity: ``velocity(x, t) -> v`` with ``t`` a Python float (see the module docstring).
        x: the start state (noise at ``t_0``): a numpy float array or a torch tensor; not modified.
        schedule: ``N + 1`` strictly decreasing values; ``t_0 = 1`` and ``t_N = 0`` unless ``allow_partial``.
        callback: called as ``callback(i, t, t_next, x)`` after step ``i`` (0-based), with ``x`` the new state at
            ``t_next``.
        progress: show a tqdm bar on stderr.
        allow_partial: accept schedules that start below 1 or stop above 0.
        check: ``"first"``, ``"every"`` or ``"none"``: how often ``v`` is checked for NaN or inf (module docstring).

    Returns:
        The state at ``t_N`` (the data sample when ``t_N = 0``), same type, shape and dtype as ``x``.
    """

    def step(v_at: Callable, x: Any, t: float, t_next: float) -> Any:
        return x + (t_next - t) * v_at(x, t)

    return _integrate("euler", step, velocity, x, schedule, callback, progress, allow_partial, check)


def heun(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
    check: str = "first",
) -> Any:
    """Integrate ``dx/dt = velocity(x, t)`` with Heun's second-order (explicit trapezoid) method.

    Each step: ``x' = x + h * v(x, t)``, then ``x <- x + h / 2 * (v(x, t) + v(x', t_next))`` with
    ``h = t_next - t`` (Karras et al. 2022, Algorithm 1). A step that lands on ``t_next = 0`` is a plain Euler
    step, as in EDM's sampler: models are often undefined at ``t = 0``, and for an exact velocity the Euler step
    to 0 already returns the posterior mean ``E[x0 | x_t]``. Cost: ``2N - 1`` velocity calls when ``t_N = 0``
    (:func:`nfe`), ``2N`` otherwise.

    Arguments and return value as in :func:`euler`.
    """

    def step(v_at: Callable, x: Any, t: float, t_next: float) -> Any:
        h = t_next - t
        v = v_at(x, t)
        if t_next == 0.0:
            return x + h * v
        v2 = v_at(x + h * v, t_next, ", Heun corrector")
        return x + (0.5 * h) * (v + v2)

    return _integrate("heun", step, velocity, x, schedule, callback, progress, allow_partial, check)


#: The samplers by name: the one table every module (and the CLI) reads.
SAMPLERS: dict[str, Callable[..., Any]] = {"euler": euler, "heun": heun}


def get_sampler(name: str, argument: str = "sampler") -> Callable[..., Any]:
    """The sampler function called ``name`` in :data:`SAMPLERS`; ``ValueError`` naming ``argument`` otherwise."""
    return SAMPLERS[choice(argument, name, tuple(SAMPLERS))]


def _integrate(name: str, step: Callable, velocity: Any, x: Any, schedule: Any, callback: Any, progress: bool,
               allow_partial: bool, check: str) -> Any:
    """The loop both samplers share: checks, ``step(v_at, x, t, t_next)`` per step, callback, progress bar."""
    if not callable(velocity):
        raise TypeError(f"velocity must be callable as velocity(x, t), got {type(velocity).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(i, t, t_next, x) or None, got {callback!r}")
    choice("check", check, CHECKS)
    _check_state(x)
    t = schedule_values(schedule, allow_partial=allow_partial)
    calls = [0]
    i = 0

    def v_at(x: Any, t_now: float, stage: str = "") -> Any:
        finite = check == "every" or (check == "first" and calls[0] == 0)
        calls[0] += 1
        return call_velocity(velocity, x, t_now, step=i, stage=stage, finite=finite)

    with progress_bar(t.size - 1, progress, name) as bar:
        for i in range(t.size - 1):
            t_cur, t_next = float(t[i]), float(t[i + 1])
            x = step(v_at, x, t_cur, t_next)
            if callback is not None:
                callback(i, t_cur, t_next, x)
            bar.update(1)
    if check == "first" and not _all_finite(x):
        raise ValueError(
            f"the {name} sampler's result holds NaN or inf: a velocity call after the first returned them "
            "(run with check='every' to name the step)"
        )
    return x


# Per-frame schedules (diffusion forcing, autoregressive video) are sampled by euler_frames, defined next to
# FrameSchedule in flowsched.frames and exported here with the other samplers.
from .frames import euler_frames  # noqa: E402

__all__ += ["euler_frames"]
