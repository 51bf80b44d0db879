"""Noise options and drawing, shared by ``noise`` and ``plan``. torch is imported only when noise is drawn."""

from __future__ import annotations

import argparse

from ._common import CliError, integer, need, positive_int

__all__ = [
    "add_noise_options",
    "check_noise_options",
    "describe_noise",
    "draw",
]

DTYPES = ("float32", "bfloat16", "float16", "float64")


def add_noise_options(p: argparse.ArgumentParser) -> None:
    """Seed, generator and its backend, dtype, device and size limit."""
    from ..noise import GENERATORS, PORTABLE_BACKENDS  # noise.py imports torch only inside its functions

    g = p.add_argument_group("noise")
    g.add_argument("--seed", type=integer, default=42, help="random seed (Open-Sora's configs use 42)")
    g.add_argument(
        "--generator",
        choices=GENERATORS,
        default="torch",
        help="torch: Open-Sora's recipe (device-dependent); portable: the same bits everywhere",
    )
    g.add_argument(
        "--backend",
        choices=PORTABLE_BACKENDS,
        default="auto",
        help="the portable generator's backend (every backend gives the same bits): auto picks triton on CUDA and "
        "numba on CPU when installed, else torch / numpy",
    )
    g.add_argument(
        "--per-sample-seeds",
        action="store_true",
        help="sample i uses seed+i, drawn alone in float32 (independent of --batch and --dtype)",
    )
    g.add_argument("--dtype", choices=DTYPES, default="float32", help="noise dtype")
    g.add_argument("--device", default="cpu", help="torch device to draw on (cpu, cuda, cuda:1, ...)")
    g.add_argument(
        "--max-bytes",
        type=positive_int,
        help="refuse noise larger than this many bytes (default 8 GiB or $FLOWSCHED_MAX_BYTES)",
    )


def check_noise_options(args: argparse.Namespace) -> None:
    """Refuse, before drawing, a ``--backend`` that does not apply (the torch generator) or cannot run here (numba
    or Triton not installed, Triton without a CUDA device), and a device torch cannot parse or this machine does not
    have. What needs no torch is checked before torch is imported (about 2 s): a missing extra answers at once."""
    if args.backend != "auto":
        if args.generator != "portable":
            raise CliError(
                f"--backend {args.backend} applies to --generator portable; got --generator {args.generator}"
            )
        if args.backend == "numba":
            need("numba", "--backend numba (the compiled CPU kernel)")
    import torch

    device = args.device
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise CliError(f"--device must be a torch device such as cpu or cuda:0, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"--device {device!r} asks for CUDA, but this torch build/machine has no CUDA device")
    if args.backend != "auto":
        from ..backends import select

        select(args.backend, dev)  # a ValueError naming what to install or use instead


def draw(args: argparse.Namespace, geometry):
    """The noise tensor the options ask for. Within the budget (``--max-bytes``) an allocation can still fail on a
    machine with less memory: that is one line too, not torch's allocator message."""
    import torch

    from ..noise import noise

    try:
        return noise(
            geometry,
            args.seed,
            device=args.device,
            dtype=getattr(torch, args.dtype),
            per_sample_seeds=True if args.per_sample_seeds else None,
            generator=args.generator,
            max_bytes=args.max_bytes,
            backend=args.backend,
        )
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
        if not isinstance(exc, MemoryError) and "alloc" not in str(exc).lower():
            raise
        shape = list(geometry.noise_shape)
        raise CliError(
            f"noise of shape {shape} in {args.dtype} is within --max-bytes but {args.device} could not allocate it; "
            "use a smaller --batch/--height/--width/--frames"
        ) from None


def torch_device_type(device: str) -> str:
    return "CUDA" if device.startswith("cuda") else device.split(":")[0].upper()


def describe_noise(shape: list[int], stats: dict, args: argparse.Namespace) -> list[str]:
    """Human-readable lines for drawn noise."""
    lines = [
        f"noise          {shape} {args.dtype} on {args.device}, generator={args.generator}, seed={args.seed}"
        + (" (seed+i per sample)" if args.per_sample_seeds else ""),
        f"statistics     mean {stats['mean']:+.5f}  std {stats['std']:.5f}  "
        f"min {stats['min']:+.3f}  max {stats['max']:+.3f}",
        f"sha256         {stats['sha256']}",
    ]
    if args.generator == "torch":
        lines.append(
            f"note           torch {torch_device_type(args.device)} noise: the same seed gives other values on other "
            "device types (and on other GPU models above ~270k values); --generator portable is the same everywhere"
        )
    return lines
