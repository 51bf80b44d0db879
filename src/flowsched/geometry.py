"""VAE specs and the pixel -> latent -> token geometry of a flow-matching video (or image) model.

Conventions (docs/conventions.md): noise is ``[B, C, T', H_lat, W_lat]``; after patching with patch size ``p`` the
transformer sees ``[B, T' * (H_lat / p) * (W_lat / p), C * p * p]`` tokens. ``image_seq_len`` is the token
count of ONE latent frame, as Open-Sora 2.0 computes it (``(H_lat * W_lat) // p**2``).

Rounding follows Open-Sora 2.0's ``get_noise``: a latent side is ``p * ceil(side / D)`` where
``D = spatial_compression * patch_size`` is the number of pixels per token, so the pixel frame is padded UP to a
multiple of ``D``. Frames follow ``api_fn``: a causal VAE maps ``F`` frames to ``(F - 1) // r + 1`` latent frames
(``1`` for a single image), a non-causal one to ``F // r``.

Only the standard library: "what is the shape for X" must stay instant.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from ._validate import closest, positive_int

__all__ = [
    "VAE", "VAES", "FrameCountWarning", "LatentGeometry", "decoded_frame_count", "get_vae", "latent_frame_count",
    "nearest_valid_frame_counts"
]


class FrameCountWarning(UserWarning):
    """The requested frame count is not one the VAE can decode exactly; see the message for the fix."""


@dataclass(frozen=True)
class VAE:
    """What a latent-diffusion model's autoencoder and patch embedding do to a video's shape.

    Attributes:
        name: short identifier (``"hunyuan"``, ``"dcae-f32t4c128"`` ...).
        spatial_compression: pixels per latent cell along height and width (8 for most VAEs).
        temporal_compression: frames per latent frame (4 for causal video VAEs, 1 for image VAEs).
        causal: True when the first frame is encoded alone, so ``F = r * k + 1`` frames make ``k + 1`` latents.
        latent_channels: channels ``C`` of the latent (and of the noise).
        patch_size: the transformer's spatial patch ``p``; a token covers ``p x p`` latent cells.
        source: where these numbers come from.
    """

    name: str
    spatial_compression: int
    temporal_compression: int
    causal: bool
    latent_channels: int
    patch_size: int
    source: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        for attr in ("spatial_compression", "temporal_compression", "latent_channels", "patch_size"):
            positive_int(f"VAE.{attr}", getattr(self, attr))

    @property
    def pixels_per_token(self) -> int:
        """Open-Sora's ``D`` (``AE_SPATIAL_COMPRESSION``): spatial compression times patch size."""
        return self.spatial_compression * self.patch_size

    @property
    def is_image_only(self) -> bool:
        """True for image autoencoders (no temporal compression, not causal)."""
        return self.temporal_compression == 1 and not self.causal


VAES: dict[str, VAE] = {
    v.name: v
    for v in (
        VAE(
            "hunyuan", 8, 4, True, 16, 2,
            source="Open-Sora 2.0 configs/diffusion/inference/256px.py (hunyuan_vae, latent_channels=16, "
            "in_channels=64 = 16*2*2); HunyuanVideo VAE 8x spatial, 4x causal temporal",
            description="Open-Sora 2.0 / HunyuanVideo causal 3D VAE",
        ),
        VAE(
            "dcae-f32t4c128", 32, 4, True, 128, 1,
            source="Open-Sora 2.0 configs/diffusion/inference/high_compression.py (dc-ae-f32t4c128, patch_size=1, "
            "ae_spatial_compression=32); inherits is_causal_vae=True",
            description="Open-Sora 2.0 deep-compression video AE",
        ),
        VAE(
            "flux", 8, 1, False, 16, 2,
            source="black-forest-labs/flux src/flux/sampling.py (16 channels, 2*ceil(H/16))",
            description="FLUX.1 image autoencoder",
        ),
        VAE(
            "wan2.1", 8, 4, True, 16, 2,
            source="Wan-Video/Wan2.1 (vae_stride (4, 8, 8), z_dim 16, patch_size (1, 2, 2))",
            description="Wan 2.1 causal 3D VAE",
        ),
        VAE(
            "wan2.2", 16, 4, True, 48, 2,
            source="Wan-Video/Wan2.2 ti2v-5B (vae_stride (4, 16, 16), z_dim 48, patch_size (1, 2, 2))",
            description="Wan 2.2 TI2V-5B high-compression VAE",
        ),
        VAE(
            "ltx-video", 32, 8, True, 128, 1,
            source="Lightricks/LTX-Video (32x spatial, 8x causal temporal, 128 channels, patch 1)",
            description="LTX-Video VAE",
        ),
        VAE(
            "mochi", 8, 6, True, 12, 2,
            source="genmoai/mochi and diffusers MochiPipeline (8x spatial, 6x causal temporal, 12 channels, patch 2)",
            description="Mochi 1 asymmetric VAE",
        ),
        VAE(
            "sd3", 8, 1, False, 16, 2,
            source="diffusers StableDiffusion3Pipeline (16-channel AutoencoderKL, vae_scale_factor 8) and "
            "SD3Transformer2DModel patch_size 2",
            description="Stable Diffusion 3 / 3.5 16-channel image autoencoder",
        ),
        VAE(
            "cogview4", 8, 1, False, 16, 2,
            source="diffusers CogView4Pipeline (16-channel AutoencoderKL, vae_scale_factor 8) and "
            "CogView4Transformer2DModel patch_size 2",
            description="CogView4 16-channel image autoencoder",
        ),
        VAE(
            "dcae-f32c32", 32, 1, False, 32, 1,
            source="diffusers AutoencoderDC (Sana: DC-AE f32c32, latent_channels 32) and SanaTransformer2DModel "
            "patch_size 1",
            description="Sana deep-compression image autoencoder",
        ),
        VAE(
            "hunyuanvideo-1.5", 16, 4, True, 32, 1,
            source="diffusers AutoencoderKLHunyuanVideo15 (spatial 16x, temporal 4x, latent_channels 32) and "
            "HunyuanVideo15Transformer3DModel patch_size 1",
            description="HunyuanVideo 1.5 causal 3D VAE",
        ),
    )
}


def get_vae(name_or_vae: str | VAE) -> VAE:
    """Look up a named VAE spec (or pass a ``VAE`` through). Unknown names get a "did you mean" hint."""
    if isinstance(name_or_vae, VAE):
        return name_or_vae
    if not isinstance(name_or_vae, str):
        raise TypeError(f"vae must be a VAE or one of {sorted(VAES)}, got {name_or_vae!r}")
    try:
        return VAES[name_or_vae]
    except KeyError:
        hint = closest(name_or_vae, list(VAES))
        did = f" Did you mean {hint!r}?" if hint else ""
        raise ValueError(f"vae {name_or_vae!r} is unknown.{did} Known VAEs: {', '.join(sorted(VAES))}") from None


def latent_frame_count(num_frames: int, vae: VAE) -> int:
    """Latent frames ``T'`` for ``num_frames`` pixel frames, exactly as Open-Sora 2.0's ``api_fn`` computes it."""
    num_frames = positive_int("num_frames", num_frames)
    if num_frames == 1:
        return 1
    r = vae.temporal_compression
    if vae.causal:
        return (num_frames - 1) // r + 1
    if num_frames < r:
        raise ValueError(
            f"num_frames must be 1 or at least {r} for the non-causal VAE {vae.name!r} "
            f"(it maps {r} frames to one latent frame), got {num_frames}"
        )
    return num_frames // r


def decoded_frame_count(latent_frames: int, vae: VAE) -> int:
    """Pixel frames the VAE gives back when decoding ``latent_frames`` latent frames."""
    latent_frames = positive_int("latent_frames", latent_frames)
    if latent_frames == 1 and (vae.causal or vae.is_image_only):
        return 1
    if vae.causal:
        return vae.temporal_compression * (latent_frames - 1) + 1
    return vae.temporal_compression * latent_frames


def nearest_valid_frame_counts(num_frames: int, vae: VAE) -> tuple[int, int]:
    """The frame counts just below and just above ``num_frames`` that the VAE decodes without loss."""
    r = vae.temporal_compression
    if vae.causal:
        below = (num_frames - 1) // r * r + 1
        above = below if below == num_frames else below + r
    else:
        below = max(r, num_frames // r * r)
        above = below if below == num_frames else below + r
    return below, above


@dataclass(frozen=True)
class LatentGeometry:
    """Pixel, latent and token sizes of one generation request. Build it with :meth:`from_pixels`.

    Sizes are in pixels (``height``, ``width``, ``padded_*``), pixel frames (``num_frames``,
    ``decoded_frames``), latent cells (``latent_*``) or tokens (``image_seq_len``, ``seq_len``).
    """

    height: int
    width: int
    num_frames: int
    vae: VAE
    num_samples: int
    padded_height: int
    padded_width: int
    latent_frames: int
    latent_height: int
    latent_width: int
    decoded_frames: int
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def from_pixels(
        cls,
        height: int,
        width: int,
        num_frames: int,
        vae: str | VAE = "hunyuan",
        num_samples: int = 1,
        *,
        strict: bool = False,
    ) -> LatentGeometry:
        """Compute the geometry Open-Sora 2.0 would use for ``num_samples`` videos of ``height x width`` pixels.

        Height and width are rounded UP to a multiple of ``vae.pixels_per_token`` (the padding is reported).
        A frame count that a causal VAE cannot decode exactly (not ``r * k + 1``) works as in Open-Sora but
        emits a :class:`FrameCountWarning` naming the frame counts to use instead; ``strict=True`` raises
        ``ValueError`` instead.
        """
        vae = get_vae(vae)
        height = positive_int("height", height)
        width = positive_int("width", width)
        num_frames = positive_int("num_frames", num_frames)
        num_samples = positive_int("num_samples", num_samples)
        if vae.is_image_only and num_frames != 1:
            raise ValueError(
                f"num_frames must be 1 for the image autoencoder {vae.name!r}, got {num_frames}; "
                "use a video VAE for videos"
            )
        d = vae.pixels_per_token
        p = vae.patch_size
        tokens_h, tokens_w = math.ceil(height / d), math.ceil(width / d)
        latent_frames = latent_frame_count(num_frames, vae)
        decoded = decoded_frame_count(latent_frames, vae)
        notes: list[str] = []
        if decoded != num_frames:
            below, above = nearest_valid_frame_counts(num_frames, vae)
            form = f"{vae.temporal_compression}k+1" if vae.causal else f"a multiple of {vae.temporal_compression}"
            msg = (
                f"num_frames={num_frames} is not {form} for the VAE {vae.name!r}: it makes {latent_frames} latent "
                f"frames, which decode to {decoded} frames, not {num_frames}. Use num_frames={below} or {above}."
            )
            if strict:
                raise ValueError(msg)
            notes.append(msg)
            warnings.warn(msg, FrameCountWarning, stacklevel=2)
        return cls(
            height=height,
            width=width,
            num_frames=num_frames,
            vae=vae,
            num_samples=num_samples,
            padded_height=tokens_h * d,
            padded_width=tokens_w * d,
            latent_frames=latent_frames,
            latent_height=tokens_h * p,
            latent_width=tokens_w * p,
            decoded_frames=decoded,
            warnings=tuple(notes),
        )

    @property
    def latent_channels(self) -> int:
        return self.vae.latent_channels

    @property
    def patch_size(self) -> int:
        return self.vae.patch_size

    @property
    def noise_shape(self) -> tuple[int, int, int, int, int]:
        """``(B, C, T', H_lat, W_lat)``: the shape of the initial noise (what Open-Sora's ``get_noise`` draws)."""
        return (self.num_samples, self.latent_channels, self.latent_frames, self.latent_height, self.latent_width)

    @property
    def image_seq_len(self) -> int:
        """Tokens in ONE latent frame: ``(H_lat / p) * (W_lat / p)`` (Open-Sora's schedule input)."""
        p = self.patch_size
        return (self.latent_height // p) * (self.latent_width // p)

    @property
    def seq_len(self) -> int:
        """Tokens in one sample: ``T' * image_seq_len`` (what Flux-style rules count)."""
        return self.latent_frames * self.image_seq_len

    @property
    def packed_shape(self) -> tuple[int, int, int]:
        """``(B, T' * (H_lat/p) * (W_lat/p), C * p * p)``: the noise after :func:`flowsched.noise.pack`."""
        p = self.patch_size
        return (self.num_samples, self.seq_len, self.latent_channels * p * p)

    @property
    def num_elements(self) -> int:
        """Elements in the noise tensor, batch included."""
        return math.prod(self.noise_shape)

    @property
    def padding(self) -> tuple[int, int]:
        """Pixels added at the bottom and right to reach a multiple of ``vae.pixels_per_token``."""
        return (self.padded_height - self.height, self.padded_width - self.width)

    def to_dict(self) -> dict:
        """Plain JSON-ready description (used by ``flowsched shape --json`` and ``plan --json``)."""
        return {
            "vae": self.vae.name,
            "height": self.height,
            "width": self.width,
            "num_frames": self.num_frames,
            "num_samples": self.num_samples,
            "padded_height": self.padded_height,
            "padded_width": self.padded_width,
            "padding": list(self.padding),
            "latent_frames": self.latent_frames,
            "decoded_frames": self.decoded_frames,
            "noise_shape": list(self.noise_shape),
            "image_seq_len": self.image_seq_len,
            "seq_len": self.seq_len,
            "packed_shape": list(self.packed_shape),
            "pixels_per_token": self.vae.pixels_per_token,
            "warnings": list(self.warnings),
        }
