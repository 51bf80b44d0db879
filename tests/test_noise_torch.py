"""flowsched.noise with the torch generator: Open-Sora's recipe, per-sample seeds, limits, packing."""

from __future__ import annotations

import einops
import pytest
import torch

from flowsched import LatentGeometry, opensora
from flowsched.noise import check_allocation, noise, noise_stats, pack, unpack


def test_default_recipe_is_open_sora_get_noise():
    g = LatentGeometry.from_pixels(192, 336, 33, "hunyuan", num_samples=2)
    a = noise(g, 42, dtype=torch.bfloat16)
    b = opensora.get_noise(2, 192, 336, g.latent_frames, "cpu", torch.bfloat16, 42)
    assert torch.equal(a, b)


def test_per_sample_seeds_do_not_depend_on_batch_or_dtype():
    shape = (4, 12, 3, 6, 10)  # 12 channels: CPU randn of the whole batch is NOT prefix-stable here
    batch = noise(shape, 100, per_sample_seeds=True)
    for i in range(4):
        alone = torch.randn(shape[1:], generator=torch.Generator().manual_seed(100 + i))
        assert torch.equal(batch[i], alone)
    assert torch.equal(noise((2, *shape[1:]), 100, per_sample_seeds=True), batch[:2])
    half = noise(shape, 100, per_sample_seeds=True, dtype=torch.float16)
    assert torch.equal(half, batch.to(torch.float16))
    explicit = noise(shape, 0, per_sample_seeds=[100, 101, 102, 103])
    assert torch.equal(explicit, batch)


def test_per_sample_seed_errors():
    with pytest.raises(ValueError, match="one seed per sample"):
        noise((3, 4), 0, per_sample_seeds=[1, 2])
    with pytest.raises(ValueError, match=r"per_sample_seeds\[1\]"):
        noise((2, 4), 0, per_sample_seeds=[1, 2**64])
    with pytest.raises(ValueError, match=r"seed \+ 1"):
        noise((2, 4), 2**64 - 1, per_sample_seeds=True)


@pytest.mark.parametrize(
    "shape,exc",
    [((0, 4), ValueError), ((2, -1), ValueError), ((), ValueError), ("abc", TypeError), ((2, 3.0), TypeError)],
)
def test_bad_shapes(shape, exc):
    with pytest.raises(exc, match="shape"):
        noise(shape, 0)


def test_bad_generator_and_dtype():
    with pytest.raises(ValueError, match="generator"):
        noise((1, 4), 0, generator="mt19937")
    with pytest.raises(ValueError, match="floating-point"):
        noise((1, 4), 0, dtype=torch.int32)
    with pytest.raises(TypeError, match="dtype"):
        noise((1, 4), 0, dtype="float32")


def test_allocation_limit(monkeypatch):
    with pytest.raises(ValueError, match=r"needs 4000 bytes .*max_bytes=4000"):
        noise((10, 100), 0, max_bytes=3999)
    assert noise((10, 100), 0, max_bytes=4000).shape == (10, 100)
    monkeypatch.setenv("FLOWSCHED_MAX_BYTES", "100")
    with pytest.raises(ValueError, match="FLOWSCHED_MAX_BYTES"):
        noise((10, 100), 0)
    assert check_allocation((10, 100), torch.float16, max_bytes=2000) == 2000


@pytest.mark.parametrize("p", [1, 2, 3])
def test_pack_unpack_any_patch(p):
    x = torch.randn(2, 5, 3, 4 * p, 2 * p)
    packed = pack(x, p)
    assert torch.equal(packed, einops.rearrange(x, "b c t (h ph) (w pw) -> b (t h w) (c ph pw)", ph=p, pw=p))
    assert torch.equal(unpack(packed, (3, 4, 2), p), x)


def test_unpack_with_geometry_and_errors():
    g = LatentGeometry.from_pixels(64, 96, 13, "mochi", num_samples=2)
    x = noise(g, 1)
    assert tuple(pack(x, g.patch_size).shape) == g.packed_shape
    assert torch.equal(unpack(pack(x, 2), g), x)
    with pytest.raises(ValueError, match="divisible by patch_size 3"):
        pack(x, 3)
    with pytest.raises(ValueError, match="5-D"):
        pack(x[0], 2)


def test_noise_stats_hash_is_of_float32_bytes():
    import hashlib

    x = noise((2, 3, 4), 5, dtype=torch.bfloat16)
    st = noise_stats(x)
    assert st["sha256"] == hashlib.sha256(x.float().contiguous().numpy().tobytes()).hexdigest()
    assert st["min"] <= st["mean"] <= st["max"]
