"""``--preset`` and its size overrides, shared by every command that works on a latent grid (no torch)."""

from __future__ import annotations

import argparse

from ._common import positive_int

__all__ = [
    "add_geometry_options",
    "describe_geometry",
    "resolve_geometry",
]


def add_geometry_options(p: argparse.ArgumentParser, *, batch: bool = False) -> None:
    """``--preset`` plus overrides of its height, width, frames and VAE (and ``--batch`` when asked)."""
    from ..presets import DEFAULT_PRESET

    g = p.add_argument_group("what to generate (defaults come from the preset)")
    g.add_argument("--preset", default=DEFAULT_PRESET, help="model preset; `flowsched presets` lists them")
    g.add_argument("--height", type=positive_int, help="pixel height (rounded up to a multiple of pixels per token)")
    g.add_argument("--width", type=positive_int, help="pixel width (rounded up likewise)")
    g.add_argument("--frames", type=positive_int, help="pixel frames (use r*k+1 for causal video VAEs; 1 = image)")
    g.add_argument("--vae", help="override the preset's VAE (hunyuan, dcae-f32t4c128, flux, wan2.1, wan2.2, ...)")
    g.add_argument("--strict", action="store_true", help="make a frame count the VAE cannot decode exactly an error")
    if batch:
        g.add_argument("--batch", type=positive_int, default=1, help="number of samples B")


def resolve_geometry(args: argparse.Namespace):
    """(preset, geometry) from ``--preset`` and its overrides. Frame-count warnings go into geometry.warnings."""
    import warnings

    from ..geometry import LatentGeometry, get_vae
    from ..presets import get_preset

    preset = get_preset(args.preset)
    vae = get_vae(args.vae) if getattr(args, "vae", None) else get_vae(preset.vae)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CLI prints geometry.warnings itself
        geometry = LatentGeometry.from_pixels(
            preset.height if args.height is None else args.height,
            preset.width if args.width is None else args.width,
            preset.num_frames if args.frames is None else args.frames,
            vae,
            getattr(args, "batch", 1),
            strict=getattr(args, "strict", False),
        )
    return preset, geometry


def describe_geometry(geometry) -> list[str]:
    """Human-readable lines for a geometry (``shape`` and ``plan``)."""
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
