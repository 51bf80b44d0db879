"""The time shift, written once: ``time_shift(t, alpha) = alpha t / (1 + (alpha - 1) t)`` and its ``mu`` form.

The shift ``alpha`` warps a grid of ``t`` (``t = 1`` noise, ``t = 0`` data; docs/conventions.md): it maps 0 to 0
and 1 to 1, and ``alpha > 1`` spends more steps near noise. In log-SNR it is the constant offset ``-2 ln alpha``.
Source: Esser et al. 2024 (SD3), eq. 23; Open-Sora 2.0 ``time_shift(alpha, t)``.

Every family, preset, frame schedule, strength rule, Open-Sora function and diagnostic of flowsched calls one of
the forms below. They are one function written in different orders of operations, because a peer's floats
depend on its order:

==========================  ==============================================  =======================================
form                        expression                                      whose floats
==========================  ==============================================  =======================================
:func:`time_shift`          ``t / (t + (1 - t) / alpha)``, float64          flowsched's own (exact 0 and 1)
:func:`time_shift_peer`     ``alpha * t / (1 + (alpha - 1) * t)`` in the    Open-Sora (a torch float32 tensor);
                            arithmetic of ``t``                             diffusers' UniPC / DPM-Solver, Wan,
                                                                            SkyReels-V2, Self-Forcing (float64)
``time_shift_peer(dtype=)`` the same with ``t``, ``alpha`` and              diffusers' FlowMatchEuler training
                            ``alpha - 1`` rounded to ``dtype`` first        grid (``dtype=numpy.float32``)
:func:`time_shift_mu`       ``a / (a + (1 / t - 1) ** sigma)``,             Flux, LTX-Video, CogView4, diffusers'
                            ``a = alpha_from_mu(mu)``                       dynamic shifting
:func:`time_shift_inverse`  ``t / (alpha - (alpha - 1) * t)``               undoes a shift (DiffSynth's strength)
==========================  ==============================================  =======================================

Flux's ``mu`` is not a shift: ``alpha = e^mu`` (diffusers' "exponential" time shift), CogView4's ``alpha = mu``
("linear"); :func:`alpha_from_mu`. The forms are plain arithmetic, so :func:`time_shift_peer` works on torch
tensors too; this module imports numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validate import is_torch_tensor, positive_real, real

__all__ = ["TIME_SHIFT_TYPES", "alpha_from_mu", "time_shift", "time_shift_inverse", "time_shift_mu", "time_shift_peer"]

#: diffusers' names for how ``mu`` gives the shift: ``alpha = exp(mu)`` or ``alpha = mu``.
TIME_SHIFT_TYPES = ("exponential", "linear")


def _float64(t: Any) -> np.ndarray:
    """``t`` as float64 values, or ``TypeError`` naming ``t``."""
    try:
        return np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"t must be a number or an array of numbers, got {t!r:.80}") from None


def time_shift(t: Any, alpha: float) -> np.ndarray:
    """``alpha * t / (1 + (alpha - 1) * t)`` in float64, written ``t / (t + (1 - t) / alpha)``.

    The two are the same function; this order maps 1 to 1 and 0 to 0 exactly in floating point, where the first
    can give 0.9999999999999992 at ``t = 1``. ``t``: a number or an array (any shape); returns float64 of its shape.
    """
    alpha = positive_real("alpha", alpha)
    t = _float64(t)
    return t / (t + (1.0 - t) / alpha)


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        kind = np.dtype(dtype)
    except TypeError:
        kind = None
    if kind is None or kind.kind != "f":
        raise TypeError(f"dtype must be a numpy floating dtype (numpy.float32, numpy.float64) or None, got {dtype!r}")
    return kind


def time_shift_peer(t: Any, alpha: float, *, dtype: Any = None) -> Any:
    """``alpha * t / (1 + (alpha - 1) * t)`` in exactly this order of operations: the peers' floats.

    ``dtype=None``: in the arithmetic of ``t`` itself. A float64 numpy array gives diffusers' UniPC and DPM-Solver
    flow sigmas, Wan's, SkyReels-V2's and Self-Forcing's values bit for bit; a torch tensor gives Open-Sora 2.0's
    (torch rounds the Python numbers ``alpha`` and ``alpha - 1`` to the tensor's dtype). Anything else (a number, a
    list) is read as float64.

    ``dtype`` a numpy floating dtype: ``t``, ``alpha`` and ``alpha - 1`` are rounded to it first, as torch rounds
    Python numbers, and the result has that dtype: ``dtype=numpy.float32`` gives diffusers' FlowMatchEuler
    training grid (``shift * sigmas / (1 + (shift - 1) * sigmas)`` on a float32 tensor).
    """
    alpha = positive_real("alpha", alpha)
    if dtype is None:
        if not (is_torch_tensor(t) or isinstance(t, np.ndarray)):
            t = _float64(t)
        return alpha * t / (1 + (alpha - 1) * t)
    kind = _float_dtype(dtype).type
    t = np.asarray(t, dtype=kind)
    return kind(alpha) * t / (kind(1.0) + kind(alpha - 1.0) * t)


def alpha_from_mu(mu: float, time_shift_type: str = "exponential") -> float:
    """The shift ``alpha`` a ``mu`` means: ``exp(mu)`` (``"exponential"``: Flux, LTX-Video, SD3 with dynamic
    shifting) or ``mu`` itself (``"linear"``: CogView4). Sources: diffusers ``_time_shift_exponential`` /
    ``_time_shift_linear``; BFL flux ``sampling.time_shift``."""
    mu = real("mu", mu)
    if time_shift_type not in TIME_SHIFT_TYPES:
        raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {time_shift_type!r}")
    if time_shift_type == "linear":
        if mu <= 0:
            raise ValueError(f"mu must be > 0 with time_shift_type='linear' (alpha = mu), got {mu}")
        return mu
    try:
        alpha = math.exp(mu)
    except OverflowError:
        alpha = math.inf
    if not 0.0 < alpha < math.inf:
        raise ValueError(f"mu must give a finite alpha = e^mu > 0, got mu={mu}")
    return alpha


def time_shift_mu(t: Any, mu: float, *, time_shift_type: str = "exponential", sigma: float = 1.0) -> np.ndarray:
    """The ``mu`` form: ``a / (a + (1 / t - 1) ** sigma)`` with ``a = alpha_from_mu(mu, time_shift_type)``, in
    float64; 0 maps to 0 (the peers never evaluate it there, or get 0 from ``1 / 0 = inf``).

    With ``sigma = 1`` it is :func:`time_shift` with ``alpha = a``, in the order of BFL's ``time_shift`` and
    diffusers' ``_time_shift_exponential`` / ``_time_shift_linear``, whose floats it reproduces.
    """
    a = alpha_from_mu(mu, time_shift_type)
    sigma = positive_real("sigma", sigma)
    t = _float64(t)
    out = np.zeros_like(t)
    nonzero = t > 0
    out[nonzero] = a / (a + (1.0 / t[nonzero] - 1.0) ** sigma)
    return out


def time_shift_inverse(t: Any, alpha: float) -> np.ndarray:
    """The ``u`` with ``time_shift(u, alpha) = t``: ``t / (alpha - (alpha - 1) * t)`` in float64 (the shift by
    ``1 / alpha``). Maps 0 to 0 and 1 to 1."""
    alpha = positive_real("alpha", alpha)
    t = _float64(t)
    return t / (alpha - (alpha - 1.0) * t)
