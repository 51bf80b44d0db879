"""Sequence-parallel noise: each rank of a ``torch.distributed`` group builds only its own shard.

Portable noise (:func:`flowsched.noise.portable_noise`) is a pure function of each element's position, so a
rank can generate the slice of the whole tensor it owns with no communication and no full-size tensor: the
shards of any world size concatenate to exactly the tensor one process would build, on any device mix.

Split rule (the same as ``torch.tensor_split(x, world_size, dim)``): an axis of ``n`` elements is cut into
``world_size`` contiguous pieces; the first ``n % world_size`` ranks get ``n // world_size + 1`` elements and the
others ``n // world_size``, in rank order. With ``even=True`` the size must divide exactly (the rule of
``torch.chunk``-based engines that assume equal shards), else it is an error. Every rank must get at least one
element: a world larger than the axis is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _validate as v
from .geometry import LatentGeometry

__all__ = [
    "AXES",
    "shard_bounds",
    "sharded_noise",
]

#: Axis names accepted for ``dim`` on 5-D ``[B, C, T', H, W]`` noise.
AXES = {"batch": 0, "channels": 1, "frames": 2, "height": 3, "width": 4}


def shard_bounds(size: int, world_size: int, rank: int, *, even: bool = False) -> tuple[int, int]:
    """``[start, stop)`` of ``rank``'s piece of an axis of ``size`` elements (split rule in the module docstring)."""
    size = v.positive_int("size", size)
    world_size = v.positive_int("world_size", world_size)
    rank = v.nonnegative_int("rank", rank)
    if rank >= world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    if world_size > size:
        raise ValueError(
            f"cannot split an axis of {size} elements over world_size={world_size} ranks: every rank needs at "
            f"least one element; use at most {size} ranks or shard another axis"
        )
    if even and size % world_size:
        raise ValueError(
            f"even=True needs the axis size {size} to be divisible by world_size={world_size}; pass even=False "
            f"for uneven shards (the first {size % world_size} ranks get one extra element)"
        )
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def _resolve_dim(dim: int | str, ndim: int) -> int:
    if isinstance(dim, str):
        if ndim != 5 or dim not in AXES:
            raise ValueError(
                f"dim {dim!r}: axis names ({', '.join(AXES)}) apply to 5-D [B, C, T', H, W] noise; "
                f"this shape has {ndim} axes, pass an integer"
            )
        return AXES[dim]
    if not v.is_int(dim) or not -ndim <= dim < ndim:
        raise ValueError(f"dim must be an integer in [-{ndim}, {ndim}) or an axis name, got {dim!r}")
    return dim % ndim


def _group_rank_size(group: Any, rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise ValueError("pass both rank and world_size (or neither, to take them from the process group)")
        return v.nonnegative_int("rank", rank), v.positive_int("world_size", world_size)
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        if group is not None:
            raise ValueError("group was given but torch.distributed is not initialised (call init_process_group)")
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def sharded_noise(
    shape: Sequence[int] | LatentGeometry,
    seed: int,
    dim: int | str,
    group: Any = None,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    even: bool = False,
    sample_index: int | Sequence[int] | None = None,
    stream: int = 0,
    device: Any = "cpu",
    dtype: Any = None,
    backend: str = "auto",
) -> Any:
    """This rank's shard, along ``dim``, of ``portable_noise(shape, seed, ...)`` - built alone, no communication.

    Args:
        shape: the whole tensor's shape (or a geometry), the same on every rank.
        seed, sample_index, stream, dtype, backend: as :func:`flowsched.noise.portable_noise`.
        dim: the axis to shard: an integer, or for 5-D noise ``"frames"`` (2) or ``"height"`` (3) etc.
        group: the ``torch.distributed`` process group (default: the world). Ignored when ``rank`` and
            ``world_size`` are given; without an initialised process group the whole tensor is one shard.
        rank, world_size: override the group's rank and size (e.g. to build any shard in a test or on a host).
        even: require equal shards (error if the axis size is not divisible by the world size).
        device: where this rank wants its shard (e.g. ``f"cuda:{local_rank}"``).

    Returns:
        the slice ``[start, stop)`` along ``dim`` given by :func:`shard_bounds`, C-contiguous.
    """
    from .noise import portable_noise, shape_of

    full = shape_of(shape)
    axis = _resolve_dim(dim, len(full))
    r, world = _group_rank_size(group, rank, world_size)
    start, stop = shard_bounds(full[axis], world, r, even=even)
    return portable_noise(
        full,
        seed,
        sample_index=sample_index,
        stream=stream,
        device=device,
        dtype=dtype,
        backend=backend,
        region={axis: slice(start, stop)},
    )
