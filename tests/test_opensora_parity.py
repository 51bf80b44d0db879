"""Parity of flowsched.opensora with Open-Sora 2.0's sampling functions.

Expectations are independent of our code: values recorded from Open-Sora's own ``get_schedule``,
``time_shift`` and ``get_res_lin_function`` (tests/data/opensora/README.md says the commit and how), a numpy
float32 re-derivation of ``torch.linspace``, torch's own seeded ``randn`` for the noise (Open-Sora's recipe),
and einops for the packing pattern.
"""

from __future__ import annotations

import json
import math
import pathlib

import einops
import numpy as np
import pytest
import torch

from flowsched import opensora, schedules

RECORDED = json.loads((pathlib.Path(__file__).parent / "data" / "opensora" / "sampling_values.json").read_text())
SCHEDULE_CASES = RECORDED["get_schedule"]


def _case_id(case: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in case.items() if k not in ("schedule", "scalar_kernel_differs"))


# -- get_schedule ------------------------------------------------------------------------------------------


#: torch's CPU kernel class. Open-Sora's values depend on it through torch.linspace: the vectorized x86 kernels
#: (AVX2, AVX512) give one set, the scalar kernel (ATEN_CPU_CAPABILITY=default) differs by one float32 ulp at a few
#: points; the float32 shift arithmetic itself is the same on all of them (tests/data/opensora/README.md).
KERNEL = torch.backends.cpu.get_cpu_capability()


def _open_sora_values(case: dict) -> list[float]:
    values = list(case["schedule"])
    if KERNEL == "DEFAULT":
        for i, v in case.get("scalar_kernel_differs", {}).items():
            values[int(i)] = v
    return values


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=[_case_id(c) for c in SCHEDULE_CASES])
def test_get_schedule_equals_open_soras_recorded_values(case):
    """Exactly the float32-derived Python floats Open-Sora returned with the same torch CPU kernel."""
    kwargs = {k: v for k, v in case.items() if k not in ("schedule", "scalar_kernel_differs")}
    got = opensora.get_schedule(**kwargs)
    assert all(type(x) is float for x in got)
    if KERNEL in ("AVX2", "AVX512", "DEFAULT"):
        assert got == _open_sora_values(case)
    else:  # a kernel class the values were not recorded with (e.g. ARM): within torch.linspace's 1-ulp spread
        np.testing.assert_allclose(got, case["schedule"], atol=2.4e-7, rtol=0)


@pytest.mark.parametrize("case", SCHEDULE_CASES[::7], ids=[_case_id(c) for c in SCHEDULE_CASES[::7]])
def test_float64_family_agrees_with_the_recorded_float32_values(case):
    """schedules.opensora computes the same rule in float64 (Open-Sora's shift_alpha is its alpha; shift=False is
    schedules.linear): within float32 rounding of values in [0, 1] (a few float32 operations, each off by at most
    2**-24 relative)."""
    n, seq, frames = case["num_steps"], case["image_seq_len"], case["num_frames"]
    line = {k: case[k] for k in ("base_shift", "max_shift") if k in case}
    if case.get("shift") is False:
        ours = schedules.linear(n)
    else:
        ours = schedules.opensora(n, seq, frames, case.get("shift_alpha"), **line)
    np.testing.assert_allclose(ours.t, case["schedule"], atol=3e-7, rtol=0)


@pytest.mark.parametrize("row", RECORDED["opensora_alpha"], ids=lambda r: f"{r['image_seq_len']}x{r['num_frames']}")
def test_alpha_rule_equals_open_soras(row):
    """The same float64 operations as get_res_lin_function(y1=base, y2=max)(L) * sqrt(T'): bit for bit."""
    got = schedules.opensora_alpha(row["image_seq_len"], row["num_frames"], row["base_shift"], row["max_shift"])
    assert got == row["alpha"]


def test_time_shift_and_res_lin_function_equal_open_soras():
    for row in RECORDED["time_shift"]:
        got = opensora.time_shift(row["alpha"], torch.tensor(row["t"], dtype=torch.float32))
        assert got.tolist() == row["shifted"]
    for row in RECORDED["get_res_lin_function"]:
        assert opensora.get_res_lin_function(row["x1"], row["y1"], row["x2"], row["y2"])(row["x"]) == row["y"]


def test_recorded_grid_covers_the_options():
    keys = {k for c in SCHEDULE_CASES for k in c}
    assert {"shift_alpha", "base_shift", "max_shift", "shift"} <= keys
    assert {c["num_steps"] for c in SCHEDULE_CASES} >= {1, 2, 50, 250}
    assert len(SCHEDULE_CASES) > 300
    assert sum("scalar_kernel_differs" in c for c in SCHEDULE_CASES) > 0  # the kernel dependence is recorded


def test_numpy_float32_linspace_is_torchs_scalar_kernel():
    """torch.linspace(1, 0, n) on the scalar kernel is start + i * step for the first half and
    end - (n - 1 - i) * step for the second, in float32 (the vectorized kernels differ by 1 ulp at a few points):
    checked against the recorded shift=False schedules, which are torch.linspace itself."""
    for case in SCHEDULE_CASES:
        if case.get("shift") is False:
            scalar = list(case["schedule"])
            for i, v in case.get("scalar_kernel_differs", {}).items():
                scalar[int(i)] = v
            assert _f32_linspace(case["num_steps"] + 1).tolist() == scalar


def _expected_alpha(image_seq_len: int, num_frames: int, base: float = 1.0, top: float = 3.0) -> float:
    # alpha(L, T') = (base + (L - 256) * (top - base) / (4096 - 256)) * sqrt(T')
    return (base + (image_seq_len - 256) * (top - base) / 3840) * math.sqrt(num_frames)


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


def test_shape_example_from_open_soras_code():
    # A widely copied walkthrough of Open-Sora 2.0 claims [B, 4, 5, 64, 64] for 256x256, 17 frames; Open-Sora's
    # code (channel = in_channels // p**2 = 16, D = 16 pixels per token) gives this:
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
