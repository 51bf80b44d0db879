"""Schedule families: pure functions that return a :class:`~flowsched.schedule.Schedule` (float64, numpy only).

Vocabulary (DESIGN.md): ``t = 1`` is noise, ``t = 0`` is data. The *shift* ``alpha`` warps a grid with
``time_shift(t, alpha) = alpha * t / (1 + (alpha - 1) * t)``. Flux's ``mu`` is ``alpha = exp(mu)``; CogView4's
``mu`` is ``alpha = mu``. Functions here take ``alpha`` unless their name or argument says ``mu``.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import positive_int, positive_real, real
from .schedule import Schedule

# -- warps -------------------------------------------------------------------------------------------------


def time_shift(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """``alpha * t / (1 + (alpha - 1) * t)`` in float64: maps 0 -> 0 and 1 -> 1, bends towards 1 for alpha > 1.

    Source: SD3 (Esser et al. 2024, eq. 23) "timestep shift"; Open-Sora 2.0 ``time_shift(alpha, t)``.
    """
    alpha = positive_real("alpha", alpha)
    t = np.asarray(t, dtype=np.float64)
    # Same function written as t / (t + (1 - t) / alpha): it maps 1 -> 1 and 0 -> 0 exactly in floating point,
    # where alpha * t / (1 + (alpha - 1) * t) can give 0.9999999999999992 at t = 1.
    return t / (t + (1.0 - t) / alpha)


def linear_function(x1: float = 256.0, y1: float = 1.0, x2: float = 4096.0, y2: float = 3.0):
    """The straight line through ``(x1, y1)`` and ``(x2, y2)``, unclamped (Open-Sora's ``get_res_lin_function``,
    Flux's ``get_lin_function`` with ``y1=0.5, y2=1.15``)."""
    x1, y1, x2, y2 = real("x1", x1), real("y1", y1), real("x2", x2), real("y2", y2)
    if x1 == x2:
        raise ValueError(f"x1 and x2 must differ to define a line, got x1 = x2 = {x1}")
    m = (y2 - y1) / (x2 - x1)
    b = y1 - m * x1
    return lambda x: m * x + b


def opensora_alpha(
    image_seq_len: int,
    num_frames: int,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
) -> float:
    """Open-Sora 2.0's resolution rule: ``alpha = lin(image_seq_len) * sqrt(num_frames)`` where ``lin`` is the
    line through ``(256, base_shift)`` and ``(4096, max_shift)`` (not clamped).

    ``image_seq_len`` is the token count of ONE latent frame; ``num_frames`` is the LATENT frame count ``T'``.
    """
    image_seq_len = positive_int("image_seq_len", image_seq_len)
    num_frames = positive_int("num_frames", num_frames)
    base_shift = real("base_shift", base_shift)
    max_shift = real("max_shift", max_shift)
    alpha = linear_function(y1=base_shift, y2=max_shift)(image_seq_len) * math.sqrt(num_frames)
    if not alpha > 0:
        raise ValueError(
            f"base_shift={base_shift} and max_shift={max_shift} give alpha={alpha:.6g} at "
            f"image_seq_len={image_seq_len}; the shift must be > 0 (pass shift_alpha to set it directly)"
        )
    return alpha


# -- families ----------------------------------------------------------------------------------------------


def _grid(num_steps: int) -> np.ndarray:
    """``linspace(1, 0, N + 1)`` in float64."""
    return np.linspace(1.0, 0.0, num_steps + 1, dtype=np.float64)


def linear(num_steps: int) -> Schedule:
    """``N + 1`` evenly spaced values from 1 to 0 (Open-Sora with ``shift=False``; rectified-flow default)."""
    num_steps = positive_int("num_steps", num_steps)
    return Schedule(_grid(num_steps), name="linear", params={"num_steps": num_steps})


def shifted(num_steps: int, alpha: float) -> Schedule:
    """``time_shift(linspace(1, 0, N + 1), alpha)``: a static shift (SD3's ``shift``, Wan's ``flow_shift``)."""
    num_steps = positive_int("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    return Schedule(time_shift(_grid(num_steps), alpha), name="shifted", params={"num_steps": num_steps, "alpha": alpha})


def opensora(
    num_steps: int,
    image_seq_len: int,
    num_frames: int,
    shift_alpha: float | None = None,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
    shift: bool = True,
) -> Schedule:
    """Open-Sora 2.0's ``get_schedule`` in float64 (agrees with the float32 original to about 1e-7).

    Args:
        num_steps: sampler steps ``N``.
        image_seq_len: tokens of ONE latent frame, ``(H_lat / p) * (W_lat / p)``.
        num_frames: LATENT frames ``T'``.
        shift_alpha: if given, the shift itself (overrides the rule, including its ``sqrt(T')`` factor).
        base_shift, max_shift: the rule's line through ``(256, base_shift)`` and ``(4096, max_shift)``.
        shift: ``False`` gives the plain linear grid.
    """
    num_steps = positive_int("num_steps", num_steps)
    image_seq_len = positive_int("image_seq_len", image_seq_len)
    num_frames = positive_int("num_frames", num_frames)
    if not isinstance(shift, bool):
        raise TypeError(f"shift must be True or False, got {shift!r}")
    params = {
        "num_steps": num_steps,
        "image_seq_len": image_seq_len,
        "num_frames": num_frames,
        "shift": shift,
    }
    if not shift:
        return Schedule(_grid(num_steps), name="opensora", params={**params, "alpha": 1.0})
    if shift_alpha is None:
        alpha = opensora_alpha(image_seq_len, num_frames, base_shift, max_shift)
        params.update(base_shift=float(base_shift), max_shift=float(max_shift))
    else:
        alpha = positive_real("shift_alpha", shift_alpha)
        params.update(shift_alpha=alpha)
    params["alpha"] = alpha
    return Schedule(time_shift(_grid(num_steps), alpha), name="opensora", params=params)
