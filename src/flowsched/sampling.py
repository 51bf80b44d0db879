"""Euler and Heun samplers over any velocity callable, for torch tensors and numpy arrays.

Convention (DESIGN.md): ``x_t = (1 - t) * x0 + t * eps``, ``t = 1`` is pure noise, ``t = 0`` is data, and the model
predicts the velocity ``v = eps - x0``. A sampler walks a schedule ``t_0 > t_1 > ... > t_N`` with Open-Sora 2.0's
step ``x <- x + (t_next - t) * v(x, t)`` (``opensora/utils/sampling.py``, ``SamplingOption`` denoise loop; Flux's
``denoise`` is the same line).

The velocity callable is ``velocity(x, t) -> v``:

- ``x`` is the current state, the same type (numpy array or torch tensor), shape, dtype and device as the ``x``
  passed to the sampler;
- ``t`` is a plain Python ``float`` (the schedule value, not ``t * 1000``); wrap your model if it wants a tensor
  or a batched timestep, e.g. ``lambda x, t: model(x, torch.full((x.shape[0],), t * 1000, device=x.device))``;
- ``v`` must have the shape of ``x`` and be finite. A wrong shape, NaN or inf stops the sampler with a
  ``ValueError`` that names the step index and ``t``.

Schedules: a :class:`~flowsched.schedule.Schedule` or any sequence of ``N + 1`` numbers, strictly decreasing
inside [0, 1]. A sampler that starts from pure noise and must return data needs ``t_0 = 1`` and ``t_N = 0``
(within 1e-6, so float32-derived schedules pass); anything else raises ``ValueError``, unless
``allow_partial=True`` (image-to-image starting at ``t_0 < 1``, or a partial trajectory stopping at ``t_N > 0``).

Both samplers use only ``+`` and scalar ``*`` on ``x``, so they work unchanged for numpy and torch (any device or
dtype; the step is computed like Open-Sora's, a Python float times the tensor).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .schedule import Schedule

#: Endpoint tolerance: ``|t_0 - 1|`` and ``|t_N|`` below this count as exact (float32 schedules round).
ENDPOINT_TOL = 1e-6

Velocity = Callable[[Any, float], Any]
Callback = Callable[[int, float, float, Any], Any]

__all__ = ["ENDPOINT_TOL", "euler", "heun", "nfe", "progress_bar", "schedule_values"]


def schedule_values(schedule: Schedule | Sequence[float] | np.ndarray, *, allow_partial: bool = False) -> np.ndarray:
    """The schedule as a float64 array, checked for what a noise-to-data sampler needs.

    Raises ``ValueError`` when the values are not finite, not in [0, 1], not strictly decreasing, fewer than two,
    or (unless ``allow_partial``) do not start at 1 and end at 0. The message names the offending index.
    """
    t = _as_values(schedule)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"schedule must hold at least 2 values (one step) in one dimension, got shape {t.shape}")
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0) | (t > 1))
    if bad.size:
        raise ValueError(f"schedule values must be finite and lie in [0, 1], got t[{bad[0]}]={float(t[bad[0]])!r}")
    up = np.flatnonzero(np.diff(t) >= 0)
    if up.size:
        i = int(up[0])
        raise ValueError(
            f"schedule must be strictly decreasing (t = 1 is noise, t = 0 is data); t[{i}]={float(t[i])!r} and "
            f"t[{i + 1}]={float(t[i + 1])!r} are not (reverse an increasing list)"
        )
    if not allow_partial:
        if abs(t[0] - 1.0) > ENDPOINT_TOL:
            raise ValueError(
                f"schedule must start at t_0 = 1 (pure noise), got t_0={float(t[0])!r}; pass allow_partial=True "
                "to start from a partly noised x (image-to-image)"
            )
        if abs(t[-1]) > ENDPOINT_TOL:
            raise ValueError(
                f"schedule must end at t_N = 0 (data), got t_N={float(t[-1])!r}; pass allow_partial=True to stop early"
            )
    return t


def _as_values(schedule: Any) -> np.ndarray:
    if isinstance(schedule, Schedule):
        return schedule.t
    if isinstance(schedule, (str, bytes)) or not hasattr(schedule, "__len__"):
        raise TypeError(f"schedule must be a Schedule or a sequence of N + 1 numbers, got {type(schedule).__name__}")
    try:
        return np.asarray(schedule, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"schedule must be a sequence of numbers: {exc}") from None


def nfe(sampler: str, num_steps: int) -> int:
    """Velocity evaluations a sampler spends on ``num_steps`` steps ending at ``t = 0``.

    ``euler``: ``N``. ``heun``: ``2N - 1`` (the last step to ``t = 0`` is an Euler step). A partial Heun schedule
    that stops at ``t_N > 0`` costs ``2N``.
    """
    if sampler == "euler":
        return int(num_steps)
    if sampler == "heun":
        return 2 * int(num_steps) - 1
    raise ValueError(f"sampler must be 'euler' or 'heun', got {sampler!r}")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _check_state(x: Any) -> None:
    if not (isinstance(x, np.ndarray) or _is_torch(x)):
        raise TypeError(f"x must be a numpy array or a torch tensor, got {type(x).__name__}")
    if isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")
    if _is_torch(x) and not x.is_floating_point():
        raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")


def _velocity_at(velocity: Velocity, x: Any, t: float, step: int, stage: str = "") -> Any:
    """Call the model and check what it returned (shape, type, finiteness); errors name the step and t."""
    v = velocity(x, t)
    where = f"at step {step} (t={t!r}{stage})"
    if _is_torch(x):
        if not _is_torch(v):
            raise TypeError(f"velocity must return a torch tensor for a torch x, got {type(v).__name__} {where}")
        finite = bool(v.isfinite().all())
    else:
        if not isinstance(v, np.ndarray):
            v = np.asarray(v)
        finite = bool(np.isfinite(v).all())
    if tuple(v.shape) != tuple(x.shape):
        raise ValueError(f"velocity returned shape {tuple(v.shape)} {where}; it must match x, {tuple(x.shape)}")
    if not finite:
        raise ValueError(f"velocity returned NaN or inf {where}")
    return v


def progress_bar(total: int | None, enabled: bool, desc: str, unit: str = "step"):
    """A tqdm bar on stderr (closed by the caller), or None when ``enabled`` is false."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)


def _validate_callables(velocity: Any, callback: Any) -> None:
    if not callable(velocity):
        raise TypeError(f"velocity must be callable as velocity(x, t), got {type(velocity).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(i, t, t_next, x) or None, got {callback!r}")


def euler(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
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

    Returns:
        The state at ``t_N`` (the data sample when ``t_N = 0``), same type, shape and dtype as ``x``.
    """

    def step(x: Any, t: float, t_next: float, i: int) -> Any:
        return x + (t_next - t) * _velocity_at(velocity, x, t, i)

    return _integrate("euler", step, velocity, x, schedule, callback, progress, allow_partial)


def heun(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
) -> Any:
    """Integrate ``dx/dt = velocity(x, t)`` with Heun's second-order (explicit trapezoid) method.

    Each step: ``x' = x + h * v(x, t)``, then ``x <- x + h / 2 * (v(x, t) + v(x', t_next))`` with
    ``h = t_next - t`` (Karras et al. 2022, Algorithm 1). A step that lands on ``t_next = 0`` is a plain Euler
    step, as in EDM's sampler: models are often undefined at ``t = 0``, and for an exact velocity the Euler step
    to 0 already returns the posterior mean ``E[x0 | x_t]``. Cost: ``2N - 1`` velocity calls when ``t_N = 0``
    (:func:`nfe`), ``2N`` otherwise.

    Arguments and return value as in :func:`euler`.
    """

    def step(x: Any, t: float, t_next: float, i: int) -> Any:
        h = t_next - t
        v = _velocity_at(velocity, x, t, i)
        if t_next == 0.0:
            return x + h * v
        v2 = _velocity_at(velocity, x + h * v, t_next, i, ", Heun corrector")
        return x + (0.5 * h) * (v + v2)

    return _integrate("heun", step, velocity, x, schedule, callback, progress, allow_partial)


def _integrate(name: str, step: Callable, velocity: Any, x: Any, schedule: Any, callback: Any, progress: bool,
               allow_partial: bool) -> Any:
    """The loop both samplers share: checks, ``step(x, t, t_next, i)`` per step, callback, progress bar."""
    _validate_callables(velocity, callback)
    _check_state(x)
    t = schedule_values(schedule, allow_partial=allow_partial)
    bar = progress_bar(t.size - 1, progress, name)
    try:
        for i in range(t.size - 1):
            t_cur, t_next = float(t[i]), float(t[i + 1])
            x = step(x, t_cur, t_next, i)
            if callback is not None:
                callback(i, t_cur, t_next, x)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return x


# Per-frame schedules (diffusion forcing, autoregressive video) are sampled by euler_frames, defined next to
# FrameSchedule in flowsched.frames and exported here with the other samplers.
from .frames import euler_frames  # noqa: E402

__all__ += ["euler_frames"]
