"""Seeded initial noise, and packing latents into transformer tokens.

Generators (``noise(..., generator=...)``):

* ``"torch"`` (default): Open-Sora 2.0's recipe, bit-identical to :func:`flowsched.opensora.get_noise` - one
  ``torch.Generator`` on ``device`` seeded with ``seed`` draws the whole batch in ``dtype``. Reproducible only on
  the same device type, GPU model, dtype and torch version, and sample ``i`` changes with the batch size.
* ``per_sample_seeds``: one generator per sample (sample ``i`` never depends on the batch size), each drawing
  float32 and casting, so the values do not depend on ``dtype`` either.
* ``"portable"``: counter-based Philox4x32-10 noise (:func:`portable_noise`), the same bits on every device,
  dtype, batch size, frame count and shard. Sample ``i`` uses counter sample index ``i`` (batch-size independent by
  construction); with ``per_sample_seeds`` sample ``i`` uses its own seed at sample index 0 instead.

Shapes: noise is ``[B, C, T', H_lat, W_lat]``; :func:`pack` turns it into ``[B, T'*(H_lat/p)*(W_lat/p), C*p*p]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _validate as v
from . import backends, philox
from ._limits import DEFAULT_MAX_BYTES, MAX_BYTES_ENV, check_bytes, format_bytes, max_bytes_default
from .geometry import LatentGeometry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "GENERATORS",
    "MAX_SAMPLE_ELEMENTS",
    "PORTABLE_BACKENDS",
    "STEP_STREAM_OFFSET",
    "check_allocation",
    "format_bytes",
    "max_bytes_default",
    "noise",
    "noise_stats",
    "pack",
    "portable_noise",
    "region_ranges",
    "shape_of",
    "step_noise",
    "torch_device",
    "unpack",
]

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

def _itemsize(dtype: Any) -> int:
    import torch

    if dtype is None:
        dtype = torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {dtype!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype for Gaussian noise, got {dtype}")
    size = getattr(dtype, "itemsize", None)  # torch >= 2.1; no tensor made
    return size if size is not None else torch.empty((), dtype=dtype).element_size()


def check_allocation(shape: Sequence[int], dtype: Any, max_bytes: int | None = None) -> int:
    """Refuse, before allocating, a tensor of ``shape``/``dtype`` larger than ``max_bytes`` (default: the memory
    budget of :mod:`flowsched._limits`, ``FLOWSCHED_MAX_BYTES``). Returns its size in bytes."""
    nbytes = math.prod(int(s) for s in shape) * _itemsize(dtype)
    raise_to = f"pass max_bytes={nbytes} (CLI: --max-bytes {nbytes}) or set {MAX_BYTES_ENV} to allow it"
    return check_bytes(f"noise of shape {tuple(shape)} in {dtype}", nbytes, max_bytes, how=raise_to)


def torch_device(device: Any, name: str = "device") -> Any:
    """``device`` (a string such as ``"cpu"``/``"cuda:1"``, or a ``torch.device``) as a ``torch.device`` this machine
    has: ``TypeError``/``ValueError`` naming ``name`` for anything else, before torch fails somewhere deeper (an
    unknown name is torch's ``RuntimeError``, CUDA on a CPU-only build its ``AssertionError``)."""
    import torch

    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a torch device or its name such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must name a torch device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"{name}={str(device)!r} asks for CUDA, but this torch ({torch.__version__}) sees no CUDA device; "
                "use device='cpu' (portable noise gives the same values there)"
            )
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"{name}={str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    return dev


def shape_of(shape_or_geometry: Sequence[int] | LatentGeometry) -> tuple[int, ...]:
    """The checked shape ``(B, ...)`` of a shape or of a geometry's ``noise_shape`` (shared by every noise function
    and :func:`flowsched.distributed.sharded_noise`): a non-empty sequence of positive integers."""
    if isinstance(shape_or_geometry, LatentGeometry):
        return shape_or_geometry.noise_shape
    if isinstance(shape_or_geometry, (str, bytes)) or not isinstance(shape_or_geometry, Sequence):
        raise TypeError(
            f"shape must be a sequence of positive integers or a LatentGeometry, got {shape_or_geometry!r}"
        )
    if len(shape_or_geometry) == 0:
        raise ValueError("shape must have at least one dimension (the batch), got ()")
    return tuple(v.positive_int(f"shape[{i}]", s) for i, s in enumerate(shape_or_geometry))


GENERATORS = ("torch", "portable")
#: ``portable_noise(..., backend=...)`` choices (see :mod:`flowsched.backends`).
PORTABLE_BACKENDS = philox.BACKENDS
#: Counter indices of one sample are int64 in every backend.
MAX_SAMPLE_ELEMENTS = 2**63


def noise(
    shape_or_geometry: Sequence[int] | LatentGeometry,
    seed: int,
    *,
    device: Any = "cpu",
    dtype: Any = None,
    per_sample_seeds: Sequence[int] | bool | None = None,
    generator: str = "torch",
    max_bytes: int | None = None,
    backend: str = "auto",
) -> Tensor:
    """Seeded Gaussian noise of ``shape`` (or ``geometry.noise_shape``), dimension 0 being the batch.

    Args:
        shape_or_geometry: a shape ``(B, ...)`` or a :class:`~flowsched.geometry.LatentGeometry`.
        seed: the seed: an integer in ``[-2**63, 2**64)`` for the torch generator (what ``manual_seed`` takes), in
            ``[0, 2**64)`` for the portable one (its 64-bit Philox key).
        device: where to draw (and the generator's device, as in Open-Sora).
        dtype: output dtype (default: torch's default dtype, float32).
        per_sample_seeds: ``None`` (Open-Sora: one generator for the batch), ``True`` (sample ``i`` uses
            ``seed + i``) or a list of ``B`` seeds. Each sample is drawn alone in float32 on ``device`` and
            cast, so it does not change with batch size or ``dtype``.
        generator: ``"torch"`` (above) or ``"portable"`` (counter-based Philox, identical on every device; see
            :func:`portable_noise`).
        max_bytes: refuse larger requests before allocating (default the memory budget, ``FLOWSCHED_MAX_BYTES``).
        backend: the backend of the portable generator (see :func:`portable_noise`); only ``"auto"`` with the
            torch generator.
    """
    import torch

    shape = shape_of(shape_or_geometry)
    v.choice("generator", generator, GENERATORS)
    # each generator's own range: torch.Generator's [-2**63, 2**64), portable noise's 64-bit key [0, 2**64)
    seed = philox.check_seed("seed", seed) if generator == "portable" else v.torch_seed("seed", seed)
    v.choice("backend", backend, PORTABLE_BACKENDS)
    if generator != "portable" and backend != "auto":
        raise ValueError(f"backend={backend!r} applies to generator='portable' only, got generator={generator!r}")
    device = torch_device(device)
    if dtype is None:
        dtype = torch.get_default_dtype()
    check_allocation(shape, dtype, max_bytes)
    if generator == "portable":
        return _portable(shape, seed, per_sample_seeds, device=device, dtype=dtype, max_bytes=max_bytes,
                         backend=backend)
    if per_sample_seeds is None or per_sample_seeds is False:
        gen = torch.Generator(device=device).manual_seed(seed)
        return torch.randn(*shape, device=device, dtype=dtype, generator=gen)
    seeds = _sample_seeds(seed, per_sample_seeds, shape[0])
    out = torch.empty(shape, device=device, dtype=dtype)
    for i, s in enumerate(seeds):
        gen = torch.Generator(device=device).manual_seed(s)
        out[i] = torch.randn(tuple(shape[1:]), device=device, dtype=torch.float32, generator=gen).to(dtype)
    return out


def _sample_seeds(seed: int, per_sample_seeds: Sequence[int] | bool, batch: int) -> list[int]:
    if per_sample_seeds is True:
        seeds = [seed + i for i in range(batch)]
        return [v.torch_seed(f"seed + {i}", s) for i, s in enumerate(seeds)]
    if isinstance(per_sample_seeds, (str, bytes)) or not isinstance(per_sample_seeds, Sequence):
        raise TypeError(f"per_sample_seeds must be None, True or a list of {batch} integers, got {per_sample_seeds!r}")
    if len(per_sample_seeds) != batch:
        raise ValueError(
            f"per_sample_seeds must hold one seed per sample ({batch}), got {len(per_sample_seeds)} seeds"
        )
    return [v.torch_seed(f"per_sample_seeds[{i}]", s) for i, s in enumerate(per_sample_seeds)]


def _portable(shape, seed, per_sample_seeds, *, device, dtype, max_bytes=None, backend="auto"):
    """``noise(..., generator="portable")``: sample ``i`` uses counter sample index ``i`` of ``seed``; with
    ``per_sample_seeds`` sample ``i`` uses its own seed (``seed + i``, or the list) at sample index 0."""
    if per_sample_seeds is None or per_sample_seeds is False:
        return portable_noise(shape, seed, device=device, dtype=dtype, max_bytes=max_bytes, backend=backend)
    seeds = _sample_seeds(seed, per_sample_seeds, shape[0])
    for i, s in enumerate(seeds):
        philox.check_seed("seed + i" if per_sample_seeds is True else f"per_sample_seeds[{i}]", s)
    import torch

    out = torch.empty(shape, device=device, dtype=dtype)
    for i, s in enumerate(seeds):
        out[i] = portable_noise(
            (1, *shape[1:]), s, sample_index=0, device=device, dtype=dtype, max_bytes=max_bytes, backend=backend
        )[0]
    return out



def portable_noise(
    shape: Sequence[int] | LatentGeometry,
    seed: int,
    *,
    sample_index: int | Sequence[int] | None = None,
    stream: int = 0,
    device: Any = "cpu",
    dtype: Any = None,
    backend: str = "auto",
    region: Sequence[slice] | Mapping[int, slice] | None = None,
    threads: int | None = None,
    max_bytes: int | None = None,
) -> Tensor:
    """Counter-based Gaussian noise: the same bits on every device, for any batch, frame prefix or shard.

    Each value is a pure function of ``(seed, sample index, stream, position)`` - Philox4x32-10, then AS241 in
    float64 from exact operations, rounded to float32 (specification: ``docs/portable-noise.md``; building blocks in
    :mod:`flowsched.philox`). Dimension 0 is the batch; a 4-D sample ``[C, T', H, W]`` is numbered frame-major, so
    the first ``k`` frames of a longer video are the ``k``-frame video; other sample ranks are numbered in C order.

    Args:
        shape: the whole tensor ``[B, *sample]`` (or a :class:`~flowsched.geometry.LatentGeometry`).
        seed: an integer in ``[0, 2**64)``, the 64-bit Philox key.
        sample_index: the counter's sample word of each batch position. ``None`` (default): position ``b`` uses
            ``b``, so sample ``b`` never depends on the batch size; an integer ``s``: position ``b`` uses ``s + b``
            (e.g. ``shape=(1, ...)``, ``sample_index=5`` is sample 5 of any larger batch); or one index per
            position. Each in ``[0, 2**32)``.
        stream: counter word 3 in ``[0, 2**32)``: 0 for the initial noise, other values for other uses (the
            per-step noise of stochastic samplers), independent of stream 0.
        device, dtype: where and in what to return it (default float32). Values are computed as float32 and cast,
            so e.g. bfloat16 noise is the float32 noise rounded to bfloat16.
        backend: ``"auto"`` (default): ``"triton"`` for a CUDA device when Triton imports, ``"numba"`` for the CPU
            when numba imports (``pip install 'flowsched[fast]'``), else ``"torch"`` off the CPU and ``"numpy"`` on
            it. ``"numpy"`` and ``"numba"`` run on the CPU (and copy to ``device``), ``"torch"`` runs torch
            operations on ``device``, ``"triton"`` one fused kernel on a CUDA device. Every backend gives the same
            bits; :func:`flowsched.philox.available_backends` says which run on this machine. An explicit backend
            that cannot run here is a ``ValueError`` saying what to install or use.
        region: generate only this box of the tensor, without generating the rest: a tuple of slices for the
            leading axes (batch first; missing axes are whole) or a mapping ``{axis: slice}``. Slices take
            ``start``/``stop`` in ``[-size, size]`` (negative counts from the end) and a positive ``step``; an
            empty or out-of-range slice is an error. The result has the region's shape and equals
            ``portable_noise(shape, seed)[region]``.
        threads: CPU threads of the numpy and numba backends (default
            :func:`flowsched.backends.default_threads`); never changes the values.
        max_bytes: refuse regions larger than this before allocating (default
            the memory budget, ``FLOWSCHED_MAX_BYTES``).

    Returns:
        a C-contiguous tensor of the region's shape (the whole ``shape`` when ``region`` is None).
    """
    import torch

    full = shape_of(shape)
    seed = philox.check_seed("seed", seed)
    stream = philox.check_word("stream", stream)
    v.choice("backend", backend, PORTABLE_BACKENDS)
    if threads is not None:
        threads = v.positive_int("threads", threads)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if math.prod(full[1:]) > MAX_SAMPLE_ELEMENTS:
        raise ValueError(
            f"shape {full}: one sample of portable noise may hold at most 2**63 elements (counter indices are "
            f"int64 here), got {math.prod(full[1:])}"
        )
    ranges = region_ranges(full, region)
    sample_words = _sample_words(sample_index, full[0])
    region_shape = tuple(len(r) for r in ranges)
    check_allocation(region_shape, dtype, max_bytes)
    dev = torch_device(device)
    chosen = backends.select(backend, dev, math.prod(region_shape))  # fails here, before any allocation
    out = torch.empty(region_shape, dtype=dtype, device=dev)
    philox.generate(
        philox.Layout(full, ranges), seed, sample_words, stream, out.view(-1), backend=chosen.name, threads=threads
    )
    return out


def _sample_words(sample_index: int | Sequence[int] | None, batch: int) -> list[int]:
    if sample_index is None:
        words = list(range(batch))
    elif v.is_int(sample_index):
        first = philox.check_word("sample_index", sample_index)
        words = [first + b for b in range(batch)]
    elif isinstance(sample_index, Sequence) and not isinstance(sample_index, (str, bytes)):
        if len(sample_index) != batch:
            raise ValueError(
                f"sample_index must hold one index per batch position ({batch}), got {len(sample_index)}"
            )
        words = list(sample_index)
    else:
        raise TypeError(
            f"sample_index must be None, an integer or a list of {batch} integers, got {sample_index!r}"
        )
    return [philox.check_word(f"sample_index for batch position {b}", w) for b, w in enumerate(words)]


def region_ranges(shape: Sequence[int], region: Sequence[slice] | Mapping[int, slice] | None) -> list[range]:
    """One ``range`` per axis of ``shape`` for a ``region`` given as slices (see :func:`portable_noise`)."""
    ndim = len(shape)
    slices: list[Any] = [slice(None)] * ndim
    if region is None:
        if all(v.is_int(size) and size > 0 for size in shape):
            return [range(size) for size in shape]  # the whole tensor: the common case, kept quick
    elif isinstance(region, Mapping):
        for axis, s in region.items():
            if not v.is_int(axis) or not -ndim <= axis < ndim:
                raise ValueError(
                    f"region axis must be an integer in [-{ndim}, {ndim}) for shape {tuple(shape)}, got {axis!r}"
                )
            slices[axis % ndim] = s
    elif isinstance(region, slice):
        slices[0] = region
    elif isinstance(region, Sequence) and not isinstance(region, (str, bytes)):
        if len(region) > ndim:
            raise ValueError(f"region has {len(region)} slices but shape {tuple(shape)} has only {ndim} axes")
        slices[: len(region)] = region
    else:
        raise TypeError(f"region must be None, a tuple of slices or a dict {{axis: slice}}, got {region!r}")
    return [_slice_range(f"region[{axis}]", s, size) for axis, (s, size) in enumerate(zip(slices, shape, strict=True))]


def _slice_range(name: str, s: Any, size: int) -> range:
    if not isinstance(s, slice):
        raise TypeError(f"{name} must be a slice such as slice(0, 8) or np.s_[0:8], got {s!r}")
    step = 1 if s.step is None else s.step
    if not v.is_int(step) or step < 1:
        raise ValueError(f"{name} = {s!r}: step must be a positive integer, got {s.step!r}")
    bounds = []
    for what, value, default in (("start", s.start, 0), ("stop", s.stop, size)):
        if value is None:
            value = default
        if not v.is_int(value):
            raise TypeError(f"{name} = {s!r}: {what} must be an integer or None, got {value!r}")
        if not -size <= value <= size:
            raise ValueError(f"{name} = {s!r}: {what} {value} is out of range for an axis of size {size} "
                             f"(accepted: -{size} .. {size})")
        bounds.append(value + size if value < 0 else value)
    rng = range(bounds[0], bounds[1], step)
    if len(rng) == 0:
        raise ValueError(f"{name} = {s!r} selects no element of an axis of size {size}")
    return rng


# -- packing -----------------------------------------------------------------------------------------------


def pack(x: Tensor, patch_size: int = 2) -> Tensor:
    """``[B, C, T, H, W] -> [B, T*(H/p)*(W/p), C*p*p]`` (einops ``b c t (h ph) (w pw) -> b (t h w) (c ph pw)``).

    Token order is frame-major, then row, then column; features are channel-major, then the ``p x p`` patch.
    """
    p = v.positive_int("patch_size", patch_size)
    if x.ndim != 5:
        raise ValueError(f"pack expects a 5-D tensor [B, C, T, H, W], got shape {tuple(x.shape)}")
    b, c, t, h, w = x.shape
    if h % p or w % p:
        raise ValueError(
            f"pack: height {h} and width {w} of shape {tuple(x.shape)} must be divisible by patch_size {p}"
        )
    x = x.reshape(b, c, t, h // p, p, w // p, p)
    x = x.permute(0, 2, 3, 5, 1, 4, 6)  # b t h w c ph pw
    return x.reshape(b, t * (h // p) * (w // p), c * p * p)


def unpack(x: Tensor, grid: Sequence[int] | LatentGeometry, patch_size: int = 2) -> Tensor:
    """Inverse of :func:`pack`. ``grid`` is ``(T, H/p, W/p)`` in tokens, or a geometry (its own patch size)."""
    if isinstance(grid, LatentGeometry):
        p = grid.patch_size
        t, h, w = grid.latent_frames, grid.latent_height // p, grid.latent_width // p
    else:
        p = v.positive_int("patch_size", patch_size)
        if len(grid) != 3:
            raise ValueError(f"unpack: grid must be (T, H/p, W/p) in tokens, got {tuple(grid)}")
        t, h, w = (v.positive_int(f"grid[{i}]", g) for i, g in enumerate(grid))
    if x.ndim != 3:
        raise ValueError(f"unpack expects a 3-D tensor [B, L, D], got shape {tuple(x.shape)}")
    b, length, feat = x.shape
    if length != t * h * w or feat % (p * p):
        raise ValueError(
            f"unpack: shape {tuple(x.shape)} does not match grid (T={t}, H={h}, W={w}) with patch_size {p}: "
            f"expected L = {t * h * w} tokens and features divisible by {p * p}"
        )
    c = feat // (p * p)
    x = x.reshape(b, t, h, w, c, p, p)
    x = x.permute(0, 4, 1, 2, 5, 3, 6)  # b c t h ph w pw
    return x.reshape(b, c, t, h * p, w * p)


def noise_stats(x: Tensor) -> dict:
    """Mean, standard deviation, min, max and sha256 (float32 C-contiguous bytes) of a noise tensor."""
    import hashlib

    import torch

    xf = x.detach().to("cpu", torch.float32).contiguous()
    return {
        "mean": float(xf.mean()),
        "std": float(xf.std()) if xf.numel() > 1 else 0.0,
        "min": float(xf.min()),
        "max": float(xf.max()),
        "sha256": hashlib.sha256(xf.numpy().tobytes()).hexdigest(),
    }


# -- per-step noise of stochastic samplers ------------------------------------------------------------------------

#: Stream of step ``i``'s noise is ``STEP_STREAM_OFFSET + i``; stream 0 is the initial noise (docs/portable-noise.md).
STEP_STREAM_OFFSET = 1


def step_noise(
    seed: int,
    shape: Sequence[int] | LatentGeometry,
    step: int,
    *,
    sample_index: int | Sequence[int] | None = None,
    region: Sequence[slice] | Mapping[int, slice] | None = None,
    device: Any = "cpu",
    dtype: Any = None,
    backend: str = "auto",
) -> Tensor:
    """The fresh noise a stochastic sampler adds at step ``step`` (0-based): :func:`portable_noise` of ``seed`` on
    stream ``1 + step``. Stream 0 is the initial noise, so a whole stochastic trajectory (start noise and every step's
    noise) is a pure function of ``seed``: the same on every device, for any batch size (``sample_index``), region
    (shard) and backend. Layout: docs/portable-noise.md, "Streams".

    Args:
        seed: an integer in ``[0, 2**64)``, the same seed as the initial noise.
        shape: the state's shape ``[B, ...]`` (or a geometry).
        step: the step index ``i`` in ``[0, 2**32 - 1)``.
        sample_index, region, device, dtype, backend: as in :func:`portable_noise`.
    """
    if not v.is_int(step):
        raise TypeError(f"step must be a non-negative integer (the sampler's step index), got {step!r}")
    if not 0 <= step < 2**32 - STEP_STREAM_OFFSET:
        raise ValueError(f"step must be an integer in [0, 2**32 - 1) (stream 1 + step is a 32-bit word), got {step}")
    return portable_noise(
        shape, seed, sample_index=sample_index, stream=STEP_STREAM_OFFSET + int(step), region=region, device=device,
        dtype=dtype, backend=backend,
    )
