"""``flowsched shape``: pixel -> latent -> token geometry for a preset or your own size (no torch)."""

from __future__ import annotations

from ._common import add_command, print_json, warn
from ._geometry import add_geometry_options, describe_geometry, resolve_geometry

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched shape                                   # Open-Sora 2.0 768px, 129 frames
  flowsched shape --height 480 --width 832 --frames 81 --vae wan2.1
  flowsched shape --preset opensora-2.0-dcae --frames 129 --json
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "shape",
        help="latent noise shape, token counts and padding for a video or image",
        description="Show the latent geometry Open-Sora 2.0's rounding gives: padded pixel size, latent "
        "frames (and how many frames the VAE will decode), the noise shape [B, C, T', H, W], tokens per "
        "frame (image_seq_len) and the packed token shape.",
        epilog=EPILOG,
    )
    add_geometry_options(p, batch=True)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run)


def run(args) -> int:
    _, geometry = resolve_geometry(args)
    if args.json:
        print_json(geometry.to_dict())
        return 0
    print("\n".join(describe_geometry(geometry)))
    for w in geometry.warnings:
        warn(w)
    return 0
