"""LatentGeometry against Open-Sora 2.0's rounding rules, written out independently here."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsched.geometry import VAES, FrameCountWarning, LatentGeometry, get_vae

# (name, spatial, temporal, causal, channels, patch) as given in the foundation issue.
SPECS = [
    ("hunyuan", 8, 4, True, 16, 2),
    ("dcae-f32t4c128", 32, 4, True, 128, 1),
    ("flux", 8, 1, False, 16, 2),
    ("wan2.1", 8, 4, True, 16, 2),
    ("wan2.2", 16, 4, True, 48, 2),
    ("ltx-video", 32, 8, True, 128, 1),
    ("mochi", 8, 6, True, 12, 2),
]


@pytest.mark.parametrize("name,s,r,causal,c,p", SPECS)
def test_named_vae_specs(name, s, r, causal, c, p):
    v = get_vae(name)
    assert (v.spatial_compression, v.temporal_compression, v.causal, v.latent_channels, v.patch_size) == (
        s,
        r,
        causal,
        c,
        p,
    )
    assert v.source


def test_unknown_vae_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'hunyuan'"):
        get_vae("hunyan")


def test_open_sora_768px_default():
    g = LatentGeometry.from_pixels(576, 1024, 129, "hunyuan")
    assert g.noise_shape == (1, 16, 33, 72, 128)
    assert g.image_seq_len == 36 * 64 == 2304
    assert g.seq_len == 33 * 2304
    assert g.packed_shape == (1, 33 * 2304, 64)
    assert g.decoded_frames == 129 and g.padding == (0, 0) and not g.warnings


def test_seed_example_256px_17_frames():
    g = LatentGeometry.from_pixels(256, 256, 17, "hunyuan", num_samples=3)
    assert g.noise_shape == (3, 16, 5, 32, 32)
    assert g.image_seq_len == 256


def test_dcae_128_frames_warns_and_reports_decoded_frames():
    with pytest.warns(FrameCountWarning, match=r"num_frames=125 or 129"):
        g = LatentGeometry.from_pixels(768, 768, 128, "dcae-f32t4c128")
    assert g.latent_frames == 32 and g.decoded_frames == 125
    assert g.noise_shape == (1, 128, 32, 24, 24) and g.image_seq_len == 576
    with pytest.raises(ValueError, match="125 or 129"):
        LatentGeometry.from_pixels(768, 768, 128, "dcae-f32t4c128", strict=True)


def test_padding_rounds_up_to_pixels_per_token():
    g = LatentGeometry.from_pixels(480, 832, 81, "wan2.1")
    assert (g.padded_height, g.padded_width) == (480, 832)
    g = LatentGeometry.from_pixels(500, 700, 1, "hunyuan")
    assert (g.padded_height, g.padded_width) == (512, 704) and g.padding == (12, 4)
    assert g.noise_shape == (1, 16, 1, 64, 88)


def test_image_vae_rejects_frames():
    assert LatentGeometry.from_pixels(1024, 1024, 1, "flux").noise_shape == (1, 16, 1, 128, 128)
    with pytest.raises(ValueError, match="num_frames must be 1"):
        LatentGeometry.from_pixels(1024, 1024, 9, "flux")


@pytest.mark.parametrize("arg", ["height", "width", "num_frames", "num_samples"])
@pytest.mark.parametrize(
    "bad,exc", [(0, ValueError), (-5, ValueError), (2.5, TypeError), ("8", TypeError), (None, TypeError)]
)
def test_bad_sizes(arg, bad, exc):
    kwargs = dict(height=64, width=64, num_frames=1, num_samples=1)
    kwargs[arg] = bad
    with pytest.raises(exc, match=arg):
        LatentGeometry.from_pixels(vae="hunyuan", **kwargs)


@given(
    h=st.integers(1, 4000),
    w=st.integers(1, 4000),
    f=st.integers(1, 400),
    b=st.integers(1, 8),
    name=st.sampled_from(sorted(VAES)),
)
def test_geometry_formulas(h, w, f, b, name):
    v = VAES[name]
    if v.is_image_only and f != 1:
        f = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not v.causal and 1 < f < v.temporal_compression:
            with pytest.raises(ValueError):
                LatentGeometry.from_pixels(h, w, f, v, b)
            return
        g = LatentGeometry.from_pixels(h, w, f, v, b)
    d = v.spatial_compression * v.patch_size
    r = v.temporal_compression
    tf = 1 if f == 1 else ((f - 1) // r + 1 if v.causal else f // r)
    assert g.noise_shape == (b, v.latent_channels, tf, v.patch_size * math.ceil(h / d), v.patch_size * math.ceil(w / d))
    assert g.image_seq_len == math.ceil(h / d) * math.ceil(w / d)
    assert g.padded_height % d == 0 and 0 <= g.padded_height - h < d
    assert g.padded_width % d == 0 and 0 <= g.padded_width - w < d
    # decoded frames never exceed what was asked for by a causal VAE, and are exact iff no warning
    assert (g.decoded_frames == f) == (not g.warnings)
    assert math.prod(g.packed_shape) == math.prod(g.noise_shape)
