"""FlowschedScheduler.step(per_token_timesteps=...) against diffusers 0.42.1's FlowMatchEulerDiscreteScheduler.

The reference is diffusers' own scheduler, driven as LTX-Video's condition pipeline (``pipeline_ltx_condition.py``)
drives it: per-token timesteps ``min(t, (1 - conditioning_mask) * 1000)`` (``[B, S]``; ``[B, 1]`` without
conditioning), ``step(-noise_pred, t, latents, per_token_timesteps=...)``, then ``torch.where`` keeps the tokens that
are not denoised at this ``t``. Both schedulers get the same replayed model outputs, so every step's result is
compared bit for bit (the arithmetic is elementwise). A formula check in numpy float32, independent of both, pins
the rule itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from _peers import diffusers_at_least, diffusers_has

if not diffusers_has(FlowMatchEulerDiscreteScheduler.step, "per_token_timesteps"):
    pytest.skip("diffusers before 0.33 has no per-token step", allow_module_level=True)
from diffusers.pipelines.ltx.pipeline_ltx_condition import linear_quadratic_schedule  # noqa: E402

from flowsched.integrations.diffusers import FlowschedScheduler  # noqa: E402
from flowsched.noise import step_noise  # noqa: E402

B, S, C = 2, 12, 3


def _mask(kind: str) -> torch.Tensor | None:
    """LTX's conditioning_mask [B, S]: 1 for hard-conditioned tokens (held at t = 0), a strength in (0, 1) for soft
    ones, 0 for generated ones; None: no conditioning."""
    if kind == "none":
        return None
    m = torch.zeros(B, S)
    m[:, :3] = 1.0  # the first latent frame's tokens: an image condition at strength 1
    if kind == "soft":
        m[0, 3:5] = 0.5  # a condition at strength 0.5: those tokens start at t = 0.5
        m[1, 3:5] = 0.8
    return m


def _calls(config: dict) -> dict:
    if config.get("use_dynamic_shifting"):
        return {"num_inference_steps": 10, "mu": 1.7}
    if config.get("ltx_timesteps"):
        return {"timesteps": (linear_quadratic_schedule(12) * 1000).tolist()}  # what the pipeline passes
    return {"num_inference_steps": 8}


CONFIGS = [
    {"ltx_timesteps": True},  # LTX condition pipeline's default: linear-quadratic timesteps
    {"shift": 3.0},
    {"use_dynamic_shifting": True, "base_shift": 0.95, "max_shift": 2.05, "shift_terminal": 0.1},  # LTX 0.9.x
]


def _pair(config: dict, **extra) -> tuple[FlowMatchEulerDiscreteScheduler, FlowschedScheduler, dict]:
    cfg = {k: v for k, v in config.items() if k != "ltx_timesteps"}
    ref = FlowMatchEulerDiscreteScheduler(**cfg, **extra)
    ours = FlowschedScheduler.from_config(ref.config)
    call = _calls(config)
    for sch in (ref, ours):
        sch.set_timesteps(**call)
    assert torch.equal(ours.sigmas, ref.sigmas) and torch.equal(ours.timesteps, ref.timesteps)
    return ref, ours, call


def _run(sch, mask, dtype, start=0, generator=None, record=None):
    """The condition pipeline's loop from step ``start``: per-token timesteps, the negated model output, the
    torch.where over tokens still to denoise. Model outputs are a fixed function of the state (replayed)."""
    latents = torch.randn(B, S, C, generator=torch.Generator().manual_seed(1)).to(dtype)
    for i, t in enumerate(sch.timesteps[start:]):
        timestep = t.expand(B).unsqueeze(-1).float()
        if mask is not None:
            timestep = torch.min(timestep, (1 - mask) * 1000.0)
        noise_pred = (torch.cos(latents.float() * 1.3) - 0.05 * i).to(dtype)
        out = sch.step(-noise_pred, t, latents, per_token_timesteps=timestep, generator=generator, return_dict=False)
        denoised = out[0]
        if record is not None:
            record.append(denoised)
        if mask is not None:
            keep = (t / 1000 - 1e-6 < (1.0 - mask)).unsqueeze(-1)
            latents = torch.where(keep, denoised, latents)
        else:
            latents = denoised
    return latents


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("mask", ["none", "hard", "soft"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_per_token_step_is_diffusers_bit_for_bit(config, mask, dtype):
    ref, ours, _ = _pair(config)
    m = _mask(mask)
    steps_ref, steps_ours = [], []
    x_ref = _run(ref, m, dtype, record=steps_ref)
    x_ours = _run(ours, m, dtype, record=steps_ours)
    assert len(steps_ours) == len(ref.timesteps)
    for a, b in zip(steps_ours, steps_ref, strict=True):
        assert a.dtype == b.dtype == torch.float32  # not cast back in this mode, as in diffusers
        assert torch.equal(a, b)
    assert torch.equal(x_ours, x_ref)
    assert ours.step_index == ref.step_index == len(ref.timesteps)


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_per_token_from_a_later_step_and_other_timestep_dtypes(config):
    """denoise_strength < 1: the pipeline slices the timesteps and never calls set_begin_index, so both look the
    first timestep up; and per-token timesteps given in bfloat16 or float64 go through the same type promotion."""
    ref, ours, _ = _pair(config)
    m = _mask("soft")
    assert torch.equal(_run(ours, m, torch.float32, start=3), _run(ref, m, torch.float32, start=3))
    for dtype in (torch.bfloat16, torch.float64):
        ref, ours, _ = _pair(config)
        sample = torch.randn(B, S, C, generator=torch.Generator().manual_seed(5))
        v = torch.randn(B, S, C, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
        ptt = torch.min(ref.timesteps[1].expand(B, 1), (1 - m) * 1000.0).to(dtype)
        a = ours.step(v, ref.timesteps[1], sample, per_token_timesteps=ptt).prev_sample
        b = ref.step(v, ref.timesteps[1], sample, per_token_timesteps=ptt).prev_sample
        assert a.dtype == b.dtype and torch.equal(a, b), dtype


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("mask", ["hard", "soft"])
@pytest.mark.skipif(not diffusers_at_least("0.39"), reason="the stochastic step honours the generator from 0.39 on")
def test_per_token_stochastic_is_diffusers_given_the_same_generator(config, mask):
    """diffusers runs stochastic_sampling with per-token timesteps: x0 = x - sigma * model_output with each token's
    sigma, then (1 - sigma_next) x0 + sigma_next noise with noise from the generator; the adapter does the same."""
    ref, ours, _ = _pair(config, stochastic_sampling=True)
    m = _mask(mask)
    g_ref, g_ours = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    steps_ref, steps_ours = [], []
    _run(ref, m, torch.float32, generator=g_ref, record=steps_ref)
    _run(ours, m, torch.float32, generator=g_ours, record=steps_ours)
    for a, b in zip(steps_ours, steps_ref, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(g_ours.get_state(), g_ref.get_state())


def test_per_token_rule_from_the_formula():
    """Independent of diffusers: in float32, a token at sigma steps to max{s in sigmas : s < sigma - 1e-6} (0 when
    none) and the Euler result is x + (sigma - sigma_next) * model_output (the sign the pipeline's -v undoes);
    with noise_seed the stochastic step uses step_noise of the run's step."""
    ours = FlowschedScheduler(shift=3.0)
    ours.set_timesteps(6)
    grid = ours.sigmas.numpy()
    t = ours.timesteps[2]
    ptt = torch.tensor([[float(t), float(t), 0.0, 500.0, float(ours.timesteps[4]), 1e-4]])
    sample = torch.randn(1, 6, 2, generator=torch.Generator().manual_seed(0))
    v = torch.randn(1, 6, 2, generator=torch.Generator().manual_seed(1))
    out = ours.step(v, t, sample, per_token_timesteps=ptt).prev_sample.numpy()
    sig = ptt.numpy()[0].astype(np.float32) / np.float32(1000)
    for k in range(6):
        below = grid[grid < np.float32(sig[k] - np.float32(1e-6))]
        nxt = below.max() if below.size else np.float32(0)
        expect = sample.numpy()[0, k] + np.float32(sig[k] - nxt) * v.numpy()[0, k]
        assert np.array_equal(out[0, k], expect.astype(np.float32)), k
    assert np.array_equal(out[0, 2], sample.numpy()[0, 2])  # a token at t = 0 stays where it is

    if not diffusers_has(FlowMatchEulerDiscreteScheduler.__init__, "stochastic_sampling"):
        return  # diffusers 0.33: per-token steps without stochastic_sampling
    seeded = FlowschedScheduler(shift=3.0, stochastic_sampling=True, noise_seed=9)
    seeded.set_timesteps(6)
    seeded.set_begin_index(2)
    got = seeded.step(v, t, sample, per_token_timesteps=ptt).prev_sample
    eps = step_noise(9, (1, 6, 2), 0)
    sigma = (ptt / 1000).unsqueeze(-1)
    nxt = torch.tensor([float(max(grid[grid < np.float32(s - np.float32(1e-6))], default=0.0)) for s in sig])
    nxt = nxt.reshape(1, 6, 1)
    assert torch.equal(got, (1.0 - nxt) * (sample - sigma * v) + nxt * eps)


def test_per_token_errors_are_clear():
    ours = FlowschedScheduler()
    ours.set_timesteps(4)
    t = ours.timesteps[0]
    x = torch.zeros(B, S, C)
    cases = [
        (torch.full((B, S, C), 500.0), ValueError, r"one timestep per token of sample: shape \[2, 12\]"),
        (torch.full((B, 5), 500.0), ValueError, r"got \[2, 5\]"),
        (torch.full((S,), 500.0), ValueError, r"\[B, S, C\]: batch, tokens, channels"),
        ([[500.0] * S] * B, TypeError, "must be a torch tensor"),
        (torch.ones(B, S, dtype=torch.bool), TypeError, "real timesteps"),
        (torch.full((B, S), float("nan")), ValueError, r"must lie in \[0, 1000\].*got nan"),
        (torch.full((B, S), -1.0), ValueError, r"must lie in \[0, 1000\].*got -1.0"),
        (torch.full((B, 1), 1000.5), ValueError, r"got 1000.5"),
    ]
    for ptt, exc, match in cases:
        with pytest.raises(exc, match=match):
            ours.step(x, t, x, per_token_timesteps=ptt)
        assert ours.step_index is None  # a refused call changes nothing: not even the first index is looked up
    out = ours.step(x, t, x, per_token_timesteps=torch.full((B, 1), float(t)))  # [B, 1] broadcasts
    assert out.prev_sample.shape == (B, S, C) and ours.step_index == 1
