"""sharded_noise: each rank's shard equals the slice of the whole; real 2- and 3-process gloo groups on CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given
from hypothesis import strategies as st

from flowsched.distributed import shard_bounds, sharded_noise
from flowsched.noise import portable_noise

SHAPE = (2, 4, 7, 10, 6)  # [B, C, T', H, W]: 7 frames and 10 rows split unevenly over 2 and 3 ranks


@given(st.integers(1, 200), st.integers(1, 16))
def test_split_rule_is_tensor_split(size, world):
    if world > size:
        with pytest.raises(ValueError, match="every rank needs at least one element"):
            shard_bounds(size, world, 0)
        return
    pieces = torch.tensor_split(torch.arange(size), world)
    for rank, piece in enumerate(pieces):
        assert shard_bounds(size, world, rank) == (int(piece[0]), int(piece[-1]) + 1)


@pytest.mark.parametrize("dim", [1, 2, 3, 4, "frames", "height", -1])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_concatenate_to_the_whole(dim, world):
    whole = portable_noise(SHAPE, 99)
    axis = {"frames": 2, "height": 3}.get(dim, dim)
    shards = [sharded_noise(SHAPE, 99, dim, rank=r, world_size=world) for r in range(world)]
    assert torch.equal(torch.cat(shards, dim=axis), whole)
    torch_shards = [sharded_noise(SHAPE, 99, dim, rank=r, world_size=world, backend="torch") for r in range(world)]
    assert all(torch.equal(a, b) for a, b in zip(shards, torch_shards, strict=True))


def test_without_process_group_is_the_whole_tensor():
    assert not dist.is_initialized()
    assert torch.equal(sharded_noise(SHAPE, 5, "frames"), portable_noise(SHAPE, 5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dim": 5}, "dim must be an integer in"),
        ({"dim": "time"}, "axis names"),
        ({"rank": 3, "world_size": 3}, r"rank must be in \[0, world_size=3\)"),
        ({"rank": 0, "world_size": 8}, "cannot split an axis of 7 elements over world_size=8"),
        ({"rank": 0, "world_size": 2, "even": True}, "even=True needs the axis size 7 to be divisible by world_size=2"),
        ({"rank": 1}, "pass both rank and world_size"),
        ({"group": object()}, "not initialised"),
        ({"rank": -1, "world_size": 2}, "rank must be a non-negative integer"),
        ({"rank": 0, "world_size": 0}, "world_size must be a positive integer"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"dim": "frames", **kwargs}
    with pytest.raises(ValueError, match=match):
        sharded_noise(SHAPE, 1, args.pop("dim"), **args)


def test_even_split_accepted_when_divisible():
    whole = portable_noise(SHAPE, 1)
    parts = [sharded_noise(SHAPE, 1, "height", rank=r, world_size=2, even=True) for r in range(2)]
    assert torch.equal(torch.cat(parts, 3), whole)


# -- real process groups --------------------------------------------------------------------------------------


# The ranks meet through a file store in the test's own folder, not a TCP port: choosing a "free" port (bind,
# close, reuse) races with anything else on the machine, other test runs included. gloo's own connections
# between the ranks bind to ports the kernel assigns.


def _worker(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    store = os.path.join(folder, "rendezvous")  # created by the first rank; unique to this test
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        for dim in ("frames", "height"):
            shard = sharded_noise(SHAPE, 2024, dim)  # rank and size from the default group
            np.save(os.path.join(folder, f"{dim}-{rank}.npy"), shard.numpy())
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "world, method",
    # fork: the children inherit the imported modules; spawn (fresh interpreters, as torchrun) re-imports torch
    [(2, "fork"), (3, "fork"), pytest.param(2, "spawn", marks=pytest.mark.slow)],
)
def test_gloo_group_shards_equal_slices_of_the_whole(world, method, tmp_path):
    mp.start_processes(_worker, args=(world, str(tmp_path)), nprocs=world, start_method=method)
    whole = portable_noise(SHAPE, 2024).numpy()
    for dim, axis in (("frames", 2), ("height", 3)):
        shards = [np.load(tmp_path / f"{dim}-{rank}.npy") for rank in range(world)]
        sizes = [s.shape[axis] for s in shards]
        assert sizes == [len(p) for p in np.array_split(np.arange(SHAPE[axis]), world)]
        assert np.array_equal(np.concatenate(shards, axis=axis), whole)
