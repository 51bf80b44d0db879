"""Sequence-parallel initial noise: every rank builds only its own shard, and the shards form the exact tensor.

Run on CPU with two processes (gloo):

    torchrun --nproc-per-node 2 examples/sequence_parallel_noise.py
    torchrun --nproc-per-node 3 examples/sequence_parallel_noise.py --dim height --height 576 --width 1024

On GPUs pass --backend nccl; each rank then draws on its own cuda:LOCAL_RANK and the bits are still the same as
on the CPU. Engines such as Open-Sora 2.0, xDiT or Wan draw the whole latent on every rank and slice it; with
portable noise a rank never materialises the whole tensor, and the result does not depend on the number of
ranks or the device.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist

from flowsched.distributed import shard_bounds, sharded_noise
from flowsched.geometry import LatentGeometry
from flowsched.noise import noise_stats, portable_noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--frames", type=int, default=129)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dim", choices=("frames", "height"), default="frames")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    args = parser.parse_args()

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = f"cuda:{local}" if args.backend == "nccl" else "cpu"
    if args.backend == "nccl":
        torch.cuda.set_device(local)

    geometry = LatentGeometry.from_pixels(args.height, args.width, args.frames, "hunyuan")
    shape = geometry.noise_shape
    axis = {"frames": 2, "height": 3}[args.dim]
    shard = sharded_noise(shape, args.seed, args.dim, device=device)  # no communication
    start, stop = shard_bounds(shape[axis], world, rank)
    print(f"rank {rank}/{world}: {args.dim} [{start}, {stop}) -> shard {list(shard.shape)} on {device}", flush=True)

    # Check: gather the shards (sizes may differ) and compare with one process building the whole tensor.
    sizes = [shard_bounds(shape[axis], world, r) for r in range(world)]
    parts = [torch.empty(*shape[:axis], b - a, *shape[axis + 1 :], device=device) for a, b in sizes]
    _gather_uneven(parts, shard)
    if rank == 0:
        gathered = torch.cat(parts, dim=axis).cpu()
        whole = portable_noise(shape, args.seed)
        same = torch.equal(gathered, whole)
        stats = noise_stats(gathered)
        print(f"noise {list(shape)} from {world} shards == one-process portable_noise: {same}")
        print(f"sha256 {stats['sha256']}  mean {stats['mean']:+.5f}  std {stats['std']:.5f}")
        if not same:
            raise SystemExit(1)
    dist.barrier()
    dist.destroy_process_group()


def _gather_uneven(parts: list[torch.Tensor], shard: torch.Tensor) -> None:
    # all_gather needs equal sizes on gloo; uneven shards go through one broadcast per rank instead.
    for r, part in enumerate(parts):
        if r == dist.get_rank():
            part.copy_(shard)
        dist.broadcast(part, src=r)


if __name__ == "__main__":
    main()
