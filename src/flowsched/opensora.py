"""Drop-in replacements for Open-Sora 2.0's ``opensora/utils/sampling.py`` noise and schedule functions.

Same names, signatures, defaults and results (bit-identical tensors for the same device, dtype and torch
version; the same float32-derived Python floats from :func:`get_schedule`), plus argument checking where
Open-Sora would return garbage: invalid input raises ``ValueError``/``TypeError`` naming the argument.

``AE_SPATIAL_COMPRESSION`` (environment variable, default 16) is Open-Sora's ``D``: pixels per token, i.e. the
VAE's spatial factor times the patch size (16 for the Hunyuan VAE with patch 2, 32 for DC-AE with patch 1).

torch is imported lazily so that ``import flowsched`` stays light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _validate as v
from ._limits import step_count
from .schedules import linear_function, opensora_alpha
from .shift import time_shift_peer

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

__all__ = ["get_noise", "get_res_lin_function", "get_schedule", "pack", "time_shift", "unpack"]


def ae_spatial_compression() -> int:
    """Open-Sora's ``D``: ``int(os.environ.get("AE_SPATIAL_COMPRESSION", 16))``, checked."""
    raw = os.environ.get("AE_SPATIAL_COMPRESSION", 16)
    try:
        d = int(raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"the environment variable AE_SPATIAL_COMPRESSION must be a positive integer (pixels per token, "
            f"16 for the Hunyuan VAE, 32 for DC-AE), got {raw!r}"
        ) from None
    if d < 1:
        raise ValueError(f"the environment variable AE_SPATIAL_COMPRESSION must be a positive integer, got {d}")
    return d


def get_noise(
    num_samples: int,
    height: int,
    width: int,
    num_frames: int,
    device: Any,
    dtype: Any,
    seed: int,
    patch_size: int = 2,
    channel: int = 16,
) -> Tensor:
    """Initial noise ``[num_samples, channel, num_frames, p * ceil(height / D), p * ceil(width / D)]``.

    Exactly Open-Sora 2.0: one ``torch.Generator(device=device)`` seeded with ``seed`` draws the whole batch
    with ``torch.randn`` in ``dtype`` on ``device``. ``height``/``width`` are pixels, ``num_frames`` is the
    LATENT frame count ``T'``, ``channel`` the latent channels (Open-Sora passes ``in_channels // p**2``).

    Note: the same seed gives different noise on CPU and CUDA, and on CUDA it changes between GPU models for
    tensors above about 270k elements. Use :func:`flowsched.noise.noise` with ``generator="portable"`` for
    noise that is identical everywhere.
    """
    import torch

    from .noise import check_allocation

    num_samples = v.positive_int("num_samples", num_samples)
    height = v.positive_int("height", height)
    width = v.positive_int("width", width)
    num_frames = v.positive_int("num_frames", num_frames)
    patch_size = v.positive_int("patch_size", patch_size)
    channel = v.positive_int("channel", channel)
    seed = v.torch_seed("seed", seed)
    d = ae_spatial_compression()
    shape = (
        num_samples,
        channel,
        num_frames,
        patch_size * math.ceil(height / d),
        patch_size * math.ceil(width / d),
    )
    check_allocation(shape, dtype)
    return torch.randn(
        *shape,
        device=device,
        dtype=dtype,
        generator=torch.Generator(device=device).manual_seed(seed),
    )


def time_shift(alpha: float, t: Tensor) -> Tensor:
    """``alpha * t / (1 + (alpha - 1) * t)``, evaluated exactly as Open-Sora does (in ``t``'s dtype):
    :func:`flowsched.shift.time_shift_peer` with Open-Sora's argument order."""
    return time_shift_peer(t, alpha)


def get_res_lin_function(
    x1: float = 256, y1: float = 1, x2: float = 4096, y2: float = 3
) -> Callable[[float], float]:
    """The line through ``(x1, y1)`` and ``(x2, y2)``; not clamped (parity with Open-Sora)."""
    return linear_function(x1, y1, x2, y2)


def get_schedule(
    num_steps: int,
    image_seq_len: int,
    num_frames: int,
    shift_alpha: float | None = None,
    base_shift: float = 1,
    max_shift: float = 3,
    shift: bool = True,
) -> list[float]:
    """Open-Sora 2.0's schedule: ``num_steps + 1`` Python floats from 1.0 to 0.0.

    ``torch.linspace(1, 0, num_steps + 1)`` in float32, shifted in float32 by ``shift_alpha`` or by
    ``lin(image_seq_len) * sqrt(num_frames)`` (``num_frames`` = latent frames ``T'``). For a float64 value
    with its parameters recorded, use :func:`flowsched.schedules.opensora`.
    """
    import torch

    num_steps = step_count("num_steps", num_steps)
    alpha = _alpha(image_seq_len, num_frames, shift_alpha, base_shift, max_shift, shift)
    timesteps = torch.linspace(1, 0, num_steps + 1)
    if alpha is not None:
        timesteps = time_shift(alpha, timesteps)
    return timesteps.tolist()


def _alpha(image_seq_len, num_frames, shift_alpha, base_shift, max_shift, shift) -> float | None:
    """The shift ``get_schedule`` applies, every argument checked: ``None`` for ``shift=False``, else
    ``shift_alpha``, else the rule (the same float64 operations as Open-Sora's
    ``get_res_lin_function(y1=base_shift, y2=max_shift)(image_seq_len) * sqrt(num_frames)``)."""
    image_seq_len = v.positive_int("image_seq_len", image_seq_len)
    num_frames = v.positive_int("num_frames", num_frames)
    shift = v.boolean("shift", shift)
    base_shift, max_shift = v.real("base_shift", base_shift), v.real("max_shift", max_shift)
    if shift_alpha is not None:
        shift_alpha = v.positive_real("shift_alpha", shift_alpha)
    if not shift:
        return None
    return shift_alpha if shift_alpha is not None else opensora_alpha(image_seq_len, num_frames, base_shift, max_shift)


def pack(x: Tensor, patch_size: int = 2) -> Tensor:
    """``b c t (h ph) (w pw) -> b (t h w) (c ph pw)`` with ``ph = pw = patch_size``."""
    from .noise import pack as _pack

    return _pack(x, patch_size)


def unpack(x: Tensor, height: int, width: int, num_frames: int, patch_size: int = 2) -> Tensor:
    """Inverse of :func:`pack`: ``b (t h w) (c ph pw) -> b c t (h ph) (w pw)`` with ``h = ceil(height / D)``,
    ``w = ceil(width / D)``, ``t = num_frames`` and ``D`` from ``AE_SPATIAL_COMPRESSION``."""
    from .noise import unpack as _unpack

    height = v.positive_int("height", height)
    width = v.positive_int("width", width)
    num_frames = v.positive_int("num_frames", num_frames)
    d = ae_spatial_compression()
    return _unpack(x, (num_frames, math.ceil(height / d), math.ceil(width / d)), patch_size)
