"""Parity of flowsched.opensora with Open-Sora 2.0's sampling functions.

Expectations are derived independently of our code: the formulas of the seed specification evaluated
directly with torch (the same float32 operations Open-Sora performs), a numpy float32 re-derivation of
torch.linspace, the published reference values in the project notes, and einops for the packing pattern.
"""

from __future__ import annotations

import math

import einops
import numpy as np
import pytest
import torch

from flowsched import opensora

# -- get_schedule ------------------------------------------------------------------------------------------


def _expected_alpha(image_seq_len: int, num_frames: int, base: float = 1.0, top: float = 3.0) -> float:
    # alpha(L, T') = (base + (L - 256) * (top - base) / (4096 - 256)) * sqrt(T')
    return (base + (image_seq_len - 256) * (top - base) / 3840) * math.sqrt(num_frames)


def _torch_formula(num_steps: int, alpha: float | None) -> list[float]:
    t = torch.linspace(1, 0, num_steps + 1)
    if alpha is not None:
        t = alpha * t / (1 + (alpha - 1) * t)
    return t.tolist()


CASES = [
    (n, seq, frames)
    for n in (1, 2, 3, 7, 10, 25, 30, 50, 64, 100, 250)
    for seq in (1, 64, 252, 256, 576, 1024, 2304, 4096, 9216)
    for frames in (1, 2, 5, 17, 32, 33)
]


@pytest.mark.parametrize("num_steps,seq,frames", CASES)
def test_get_schedule_matches_formula_exactly(num_steps, seq, frames):
    got = opensora.get_schedule(num_steps, seq, frames)
    assert got == _torch_formula(num_steps, _expected_alpha(seq, frames))
    # In float32, alpha * 1 / (1 + (alpha - 1) * 1) is not always exactly 1 (e.g. alpha = 0.8667 * sqrt(33)).
    assert len(got) == num_steps + 1 and abs(got[0] - 1.0) <= 2.4e-7 and got[-1] == 0.0


@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 11.872096136179, 100.0])
@pytest.mark.parametrize("num_steps", [1, 4, 30, 50])
def test_shift_alpha_overrides_rule_including_sqrt_frames(alpha, num_steps):
    got = opensora.get_schedule(num_steps, 2304, 33, shift_alpha=alpha)
    assert got == _torch_formula(num_steps, alpha)


@pytest.mark.parametrize("num_steps", [1, 10, 50])
def test_shift_false_is_plain_linspace(num_steps):
    assert opensora.get_schedule(num_steps, 4096, 33, shift=False) == torch.linspace(1, 0, num_steps + 1).tolist()
    assert opensora.get_schedule(num_steps, 4096, 33, shift_alpha=7.0, shift=False) == _torch_formula(num_steps, None)


@pytest.mark.parametrize("base,top", [(0.5, 1.15), (1.0, 2.0), (2.0, 5.0)])
def test_base_and_max_shift(base, top):
    got = opensora.get_schedule(20, 1024, 9, base_shift=base, max_shift=top)
    assert got == _torch_formula(20, _expected_alpha(1024, 9, base, top))


def _f32_linspace(n: int) -> np.ndarray:
    # torch.linspace's float32 kernel: step = (end - start) / (steps - 1); the first half is start + i * step and
    # the second half end - (steps - 1 - i) * step, all in float32.
    start, end = np.float32(1.0), np.float32(0.0)
    step = (end - start) / np.float32(n - 1)
    i = np.arange(n, dtype=np.float32)
    half = n // 2
    out = np.where(np.arange(n) < half, start + step * i, end - step * (np.float32(n - 1) - i))
    return out.astype(np.float32)


@pytest.mark.parametrize("num_steps,seq,frames", [(50, 256, 33), (50, 2304, 33), (30, 576, 32), (7, 4096, 1)])
def test_get_schedule_agrees_with_numpy_float32_derivation(num_steps, seq, frames):
    alpha = np.float32(_expected_alpha(seq, frames))
    t = _f32_linspace(num_steps + 1)
    expected = alpha * t / (np.float32(1) + (alpha - np.float32(1)) * t)
    np.testing.assert_allclose(opensora.get_schedule(num_steps, seq, frames), expected, rtol=0, atol=2e-7)


# Reference values from the project notes (opensora_flux.md section 1.12), computed there in float64.
REFERENCE = {
    # (image_seq_len, T'): (alpha, first five, last five)
    (256, 33): (
        5.744562646538,
        [1.0, 0.9964599711, 0.9927989949, 0.9890107654, 0.9850885302],
        [0.3331231278, 0.2682967224, 0.1931298407, 0.1049339399, 0.0],
    ),
    (2304, 33): (
        11.872096136179,
        [1.0, 0.9982839474, 0.9965026443, 0.9946522970, 0.9927288119],
        [0.5079602645, 0.4311049200, 0.3309562979, 0.1950334700, 0.0],
    ),
    (252, 33): (
        5.7325948,
        [1, 0.9964526, 0.9927841, 0.9889881, 0.9850579],
        [0.3326600, 0.2678875, 0.1928051, 0.1047382, 0],
    ),
    (576, 32): (
        6.5996633,
        [1, 0.9969172, 0.9937262, 0.9904210, 0.9869954],
        [0.3646291, 0.2963965, 0.2156776, 0.1186997, 0],
    ),
    (2304, 1): (
        2.0666667,
        [1, 0.9902216, 0.9802372, 0.9700399, 0.9596231],
        [0.1523342, 0.1165414, 0.0792839, 0.0404700, 0],
    ),
}


@pytest.mark.parametrize("key", list(REFERENCE))
def test_reference_values_from_notes(key):
    alpha, first, last = REFERENCE[key]
    seq, frames = key
    assert _expected_alpha(seq, frames) == pytest.approx(alpha, abs=1e-6)
    got = opensora.get_schedule(50, seq, frames)
    np.testing.assert_allclose(got[:5], first, atol=1e-6)
    np.testing.assert_allclose(got[-5:], last, atol=1e-6)


def test_time_shift_and_res_lin_function():
    t = torch.linspace(1, 0, 11)
    assert torch.equal(opensora.time_shift(3.0, t), 3.0 * t / (1 + 2.0 * t))
    lin = opensora.get_res_lin_function()
    assert lin(256) == pytest.approx(1.0) and lin(4096) == pytest.approx(3.0)
    assert lin(2304) == pytest.approx(2304 / 1920 + 13 / 15, rel=1e-12)
    assert opensora.get_res_lin_function(0, 0, 10, 5)(20) == pytest.approx(10.0)  # not clamped


# -- get_noise ---------------------------------------------------------------------------------------------


def _expected_noise(b, h, w, f, dtype, seed, p=2, c=16, d=16):
    shape = (b, c, f, p * math.ceil(h / d), p * math.ceil(w / d))
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1, 42, 1024, 2**32 - 1, 2**32 + 5, 2**63 - 1, 2**64 - 1, -1, -(2**63)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_get_noise_bit_identical(seed, dtype):
    got = opensora.get_noise(2, 256, 200, 5, "cpu", dtype, seed)
    exp = _expected_noise(2, 256, 200, 5, dtype, seed)
    assert got.dtype == dtype and got.shape == exp.shape == (2, 16, 5, 32, 26)
    assert torch.equal(got, exp)


@pytest.mark.parametrize("env,p,c", [("16", 2, 16), ("32", 1, 128), ("8", 2, 4), ("32", 2, 16), ("64", 1, 12)])
def test_get_noise_reads_ae_spatial_compression(monkeypatch, env, p, c):
    monkeypatch.setenv("AE_SPATIAL_COMPRESSION", env)
    got = opensora.get_noise(1, 768, 576, 3, torch.device("cpu"), torch.float32, 7, patch_size=p, channel=c)
    exp = _expected_noise(1, 768, 576, 3, torch.float32, 7, p=p, c=c, d=int(env))
    assert torch.equal(got, exp)


def test_seed_document_shape_example_is_corrected():
    # The seed's last example claims [B, 4, 5, 64, 64] for 256x256, 17 frames; the code it quotes gives this:
    z = opensora.get_noise(1, 256, 256, (17 - 1) // 4 + 1, "cpu", torch.float32, 1024, channel=64 // 2**2)
    assert tuple(z.shape) == (1, 16, 5, 32, 32)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_samples": 0}, "num_samples"),
        ({"height": -5}, "height"),
        ({"width": 0}, "width"),
        ({"num_frames": 0}, "num_frames"),
        ({"patch_size": 0}, "patch_size"),
        ({"channel": -1}, "channel"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -(2**63) - 1}, "seed"),
    ],
)
def test_get_noise_rejects_bad_values(kwargs, match):
    args = dict(num_samples=1, height=64, width=64, num_frames=1, device="cpu", dtype=torch.float32, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        opensora.get_noise(**args)


@pytest.mark.parametrize("kwargs", [{"height": 64.5}, {"seed": 1.5}, {"num_frames": True}, {"width": "64"}])
def test_get_noise_rejects_bad_types(kwargs):
    args = dict(num_samples=1, height=64, width=64, num_frames=1, device="cpu", dtype=torch.float32, seed=0)
    args.update(kwargs)
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        opensora.get_noise(**args)


@pytest.mark.parametrize("env", ["0", "-16", "abc", "1.5"])
def test_bad_ae_spatial_compression(monkeypatch, env):
    monkeypatch.setenv("AE_SPATIAL_COMPRESSION", env)
    with pytest.raises(ValueError, match="AE_SPATIAL_COMPRESSION"):
        opensora.get_noise(1, 64, 64, 1, "cpu", torch.float32, 0)


def test_get_noise_refuses_huge_request_before_allocating():
    with pytest.raises(ValueError, match=r"needs \d+ bytes"):
        opensora.get_noise(1000, 4096, 4096, 1000, "cpu", torch.float32, 0)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"num_steps": 0}, ValueError, "num_steps"),
        ({"num_steps": -3}, ValueError, "num_steps"),
        ({"num_steps": 2.0}, TypeError, "num_steps"),
        ({"image_seq_len": 0}, ValueError, "image_seq_len"),
        ({"num_frames": -1}, ValueError, "num_frames"),
        ({"shift_alpha": float("nan")}, ValueError, "shift_alpha"),
        ({"shift_alpha": float("inf")}, ValueError, "shift_alpha"),
        ({"shift_alpha": 0.0}, ValueError, "shift_alpha"),
        ({"shift_alpha": -2.0}, ValueError, "shift_alpha"),
        ({"base_shift": float("nan")}, ValueError, "base_shift"),
        ({"base_shift": -10.0}, ValueError, "shift_alpha"),
        ({"shift": "yes"}, TypeError, "shift"),
    ],
)
def test_get_schedule_rejects_bad_input(kwargs, exc, match):
    args = dict(num_steps=10, image_seq_len=256, num_frames=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        opensora.get_schedule(**args)


# -- pack / unpack -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, 4])
def test_pack_unpack_match_einops(monkeypatch, p):
    d = 8 * p
    monkeypatch.setenv("AE_SPATIAL_COMPRESSION", str(d))
    x = torch.randn(2, 3, 4, p * 5, p * 3, generator=torch.Generator().manual_seed(0))
    packed = opensora.pack(x, patch_size=p)
    expected = einops.rearrange(x, "b c t (h ph) (w pw) -> b (t h w) (c ph pw)", ph=p, pw=p)
    assert torch.equal(packed, expected)
    back = opensora.unpack(packed, height=5 * d - 3, width=3 * d, num_frames=4, patch_size=p)
    assert torch.equal(back, x)


def test_unpack_rejects_mismatched_grid():
    x = torch.zeros(1, 10, 64)
    with pytest.raises(ValueError, match="does not match"):
        opensora.unpack(x, 64, 64, 1)
