"""``flowsched shape``: pixel -> latent -> token geometry for a preset or your own size (no torch)."""

from __future__ import annotations

from ._common import Formatter, add_geometry_options, print_json, resolve_geometry, warn

EPILOG = """\
examples:
  flowsched shape                                   # Open-Sora 2.0 768px, 129 frames
  flowsched shape --height 480 --width 832 --frames 81 --vae wan2.1
  flowsched shape --preset opensora-2.0-dcae --frames 129 --json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "shape",
        help="latent noise shape, token counts and padding for a video or image",
        description="Show the latent geometry Open-Sora 2.0's rounding gives: padded pixel size, latent "
        "frames (and how many frames the VAE will decode), the noise shape [B, C, T', H, W], tokens per "
        "frame (image_seq_len) and the packed token shape.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    add_geometry_options(p, batch=True)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run)


def describe(geometry) -> list[str]:
    """Human-readable lines for a geometry (shared with ``plan``)."""
    g = geometry
    pad_h, pad_w = g.padding
    v = g.vae
    return [
        f"VAE            {v.name}: {v.spatial_compression}x spatial, {v.temporal_compression}x temporal"
        f"{' causal' if v.causal else ''}, {v.latent_channels} channels, patch {v.patch_size}"
        f" ({v.pixels_per_token} px per token)",
        f"pixels         {g.height} x {g.width}, {g.num_frames} frame(s)"
        + (f" -> padded to {g.padded_height} x {g.padded_width}" if pad_h or pad_w else ""),
        f"latent frames  T' = {g.latent_frames} (decodes to {g.decoded_frames} frame(s))",
        f"noise shape    [B, C, T', H, W] = {list(g.noise_shape)}  ({g.num_elements:,} values)",
        f"tokens         {g.image_seq_len} per latent frame (image_seq_len), {g.seq_len} per sample",
        f"packed shape   [B, L, C*p*p] = {list(g.packed_shape)}",
    ]


def run(args) -> int:
    _, geometry = resolve_geometry(args)
    if args.json:
        print_json(geometry.to_dict())
        return 0
    print("\n".join(describe(geometry)))
    for w in geometry.warnings:
        warn(w)
    return 0
