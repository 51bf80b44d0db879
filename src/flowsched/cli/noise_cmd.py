"""``flowsched noise``: draw the seeded initial noise, print its statistics, write it as safetensors."""

from __future__ import annotations

import json

from ._common import add_command, print_json, warn
from ._geometry import add_geometry_options, resolve_geometry
from ._noise import add_noise_options, check_noise_options, describe_noise, draw
from ._output import SAFETENSORS, Output, check_outputs, save_safetensors

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched noise --seed 42 --out out/noise.safetensors
  flowsched noise --preset opensora-2.0-256px --batch 4 --per-sample-seeds --json
  flowsched noise --generator portable --seed 7      # identical bits on any device (counter-based)

The default generator reproduces Open-Sora 2.0's get_noise exactly: a torch.Generator on --device,
one stream for the whole batch. CPU and CUDA give different noise for the same seed.
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "noise",
        help="draw the initial latent noise, print mean/std/sha256, optionally save it",
        description="Draw the seeded Gaussian noise [B, C, T', H, W] for a preset or your own size and "
        "print its statistics and sha256 (of the float32 C-contiguous bytes, batch included).",
        epilog=EPILOG,
    )
    add_geometry_options(p, batch=True)
    add_noise_options(p)
    p.add_argument("--out", metavar="FILE.safetensors", help="write the noise (key 'noise') and metadata here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..noise import noise_stats

    check_outputs(Output(args.out, "--out", SAFETENSORS, bare=True))
    check_noise_options(args)
    _, geometry = resolve_geometry(args)
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
        save_safetensors(args.out, {"noise": x}, {"flowsched": json.dumps(info)})
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
