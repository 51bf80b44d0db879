"""``flowsched noise``: draw the seeded initial noise, print its statistics, write it as safetensors."""

from __future__ import annotations

from ._common import (
    Formatter,
    add_geometry_options,
    check_writable,
    integer,
    positive_int,
    print_json,
    resolve_geometry,
    warn,
)

EPILOG = """\
examples:
  flowsched noise --seed 42 --out out/noise.safetensors
  flowsched noise --preset opensora-2.0-256px --batch 4 --per-sample-seeds --json
  flowsched noise --generator portable --seed 7      # identical bits on any device (counter-based)

The default generator reproduces Open-Sora 2.0's get_noise exactly: a torch.Generator on --device,
one stream for the whole batch. CPU and CUDA give different noise for the same seed.
"""

DTYPES = ("float32", "bfloat16", "float16", "float64")


def add_noise_options(p) -> None:
    """Seed, generator, dtype, device and size limit (shared with ``plan``)."""
    g = p.add_argument_group("noise")
    g.add_argument("--seed", type=integer, default=42, help="random seed (Open-Sora's configs use 42)")
    from ..noise import GENERATORS, PORTABLE_BACKENDS  # noise.py imports torch only inside its functions

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
        help="portable generator's backend (same bits from each): auto picks triton on CUDA, numba on CPU when "
        "installed, else torch / numpy",
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


def draw(args, geometry):
    """The noise tensor the options ask for."""
    import torch

    from ..noise import noise

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


def check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be a torch device such as cpu or cuda:0, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r} asks for CUDA, but this torch build/machine has no CUDA device")


def save_safetensors(path: str, tensors: dict, metadata: dict) -> None:
    """Write tensors + string metadata to ``path`` atomically."""
    from safetensors.torch import save

    from .._io import atomic_write_bytes

    data = save(
        {k: t.contiguous().cpu() for k, t in tensors.items()}, metadata={k: str(v) for k, v in metadata.items()}
    )
    atomic_write_bytes(path, data)


def describe_noise(shape: list[int], stats: dict, args) -> list[str]:
    """Human-readable lines for drawn noise (shared with ``plan``)."""
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


def torch_device_type(device: str) -> str:
    return "CUDA" if device.startswith("cuda") else device.split(":")[0].upper()


def register(sub) -> None:
    p = sub.add_parser(
        "noise",
        help="draw the initial latent noise, print mean/std/sha256, optionally save it",
        description="Draw the seeded Gaussian noise [B, C, T', H, W] for a preset or your own size and "
        "print its statistics and sha256 (of the float32 C-contiguous bytes, batch included).",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    add_geometry_options(p, batch=True)
    add_noise_options(p)
    p.add_argument("--out", metavar="FILE.safetensors", help="write the noise (key 'noise') and metadata here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..noise import noise_stats

    check_writable(args.out, "--out")
    _, geometry = resolve_geometry(args)
    check_device(args.device)
    x = draw(args, geometry)
    stats = noise_stats(x)
    info = {
        "noise_shape": list(x.shape),
        "dtype": args.dtype,
        "device": args.device,
        "generator": args.generator,
        "seed": args.seed,
        "per_sample_seeds": bool(args.per_sample_seeds),
        **{k: stats[k] for k in ("mean", "std", "min", "max")},
        "noise_sha256": stats["sha256"],
        "warnings": list(geometry.warnings),
    }
    if args.out:
        save_safetensors(args.out, {"noise": x}, {"flowsched": __import__("json").dumps(info)})
        info["out"] = args.out
    if args.json:
        print_json(info)
        return 0
    for w in geometry.warnings:
        warn(w)
    print("\n".join(describe_noise(list(x.shape), stats, args)))
    if args.out:
        print(f"wrote          {args.out}")
    return 0
