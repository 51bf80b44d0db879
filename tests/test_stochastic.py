"""Stochastic samplers (euler_ancestral, stochastic_euler), their portable per-step noise, and add_noise.

References: ComfyUI's sample_euler_ancestral_RF and sample_lcm recorded from its own code with stored noise
(tests/data/comfyui/samplers_flow.json; tests/data/README.md); diffusers' FlowMatchEulerDiscreteScheduler with
stochastic_sampling=True and its scale_noise, driven live; portable_noise itself for the stream layout.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from flowsched import schedules
from flowsched.noise import portable_noise, step_noise
from flowsched.sampling import (
    SAMPLERS,
    STOCHASTIC,
    add_noise,
    euler,
    euler_ancestral,
    get_sampler,
    nfe,
    stochastic_euler,
)

DATA = os.path.join(os.path.dirname(__file__), "data")


def _comfy():
    with open(os.path.join(DATA, "comfyui", "samplers_flow.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _toy(xp):
    """A velocity for the tests: elementwise, so each sample and each element evolves alone (batch and backend
    invariance are then properties of the samplers and the noise, not of a model's reductions)."""

    def v(x, t):  # + - * only: numpy's and torch's sin differ in the last bit (libm vs SLEEF)
        return 0.7 * x - 0.2 * x * x + (t - 0.5)

    return v


def _np(x) -> np.ndarray:
    return x.numpy().copy() if isinstance(x, torch.Tensor) else np.array(x)


# -- ComfyUI -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_index", range(14))
def test_matches_comfyui_recorded_runs(run_index):
    """Same start, same stored noise per step: every step's state and denoised estimate, and the result. ComfyUI's
    toy model is a denoiser D(x, sigma); the samplers take v = (x - D) / t. Tolerances: float64 runs to 1e-13
    (x0 = x - t v rounds differently from D); runs on ComfyUI's float32 sigmas to 3e-7 (its step coefficients are
    float32 there, ours float64)."""
    d = _comfy()
    run = d["runs"][run_index]
    shape = d["shape"]
    x_start = np.array(d["x_start"]).reshape(shape)
    noise = [np.array(n).reshape(shape) for n in d["noise_for_step"]]

    def denoiser(x, t):
        return 0.6 * x * (1 - t) + 0.2 * np.sin(x)

    def v(x, t):
        return (x - denoiser(x, t)) / t

    states, called = [], []

    def draw(i, x):
        called.append(i)
        return noise[i]

    def callback(i, t, t_next, x):
        states.append(x)

    if run["sampler"] == "sample_lcm":
        out = stochastic_euler(v, x_start, d["sigmas"], noise=draw, callback=callback)
    else:
        out = euler_ancestral(v, x_start, d["sigmas"], eta=run["eta"], s_noise=run["s_noise"], noise=draw,
                              callback=callback)
    tol = 1e-13 if run["sigmas_dtype"] == "float64" else 3e-7
    np.testing.assert_allclose(out.ravel(), run["final"], atol=tol, rtol=0)
    assert called == run["noise_sampler_called_at_steps"]
    if run.get("x_per_step"):  # recorded for the float32-sigma runs; intermediate states differ by up to 1e-6 there
        for i in range(1, len(run["x_per_step"])):  # ComfyUI's callback sees x before step i: ours after i - 1
            np.testing.assert_allclose(states[i - 1].ravel(), run["x_per_step"][i], atol=max(tol, 2e-6), rtol=0)


# -- diffusers ----------------------------------------------------------------------------------------------------


def test_stochastic_euler_is_diffusers_stochastic_sampling_bit_for_bit():
    """diffusers' step with stochastic_sampling=True, its noise from a generator: stochastic_euler given the same
    noise on the same float32 schedule values returns the same float32 tensor, bit for bit."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = schedules.shifted(9, 3.0)
    t32 = sched.t.astype(np.float32).astype(np.float64)  # the float32 values diffusers steps on
    peer = FlowMatchEulerDiscreteScheduler(stochastic_sampling=True)
    peer.set_timesteps(sigmas=t32[:-1].tolist())
    assert np.array_equal(peer.sigmas.numpy().astype(np.float64), t32)
    v = _toy("torch")
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    g_peer, g_ours = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    y = x.clone()
    for i, timestep in enumerate(peer.timesteps):
        y = peer.step(v(y, float(peer.sigmas[i])), timestep, y, generator=g_peer).prev_sample
    ours = stochastic_euler(v, x, t32, noise=lambda i, s: torch.randn(s.shape, generator=g_ours, dtype=s.dtype))
    assert torch.equal(ours, y)


# -- portable per-step noise -----------------------------------------------------------------------------------------


def test_step_noise_is_portable_noise_on_stream_one_plus_step():
    shape = (3, 4, 2, 5, 6)
    for step in (0, 1, 7):
        want = portable_noise(shape, 11, stream=1 + step)
        assert torch.equal(step_noise(11, shape, step), want)
        assert not torch.equal(step_noise(11, shape, step), portable_noise(shape, 11))  # stream 0: initial noise
    one = step_noise(11, (1, 4, 2, 5, 6), 3, sample_index=2)
    assert torch.equal(one, step_noise(11, shape, 3)[2:3])
    part = step_noise(11, shape, 3, region={3: slice(1, 4)})
    assert torch.equal(part, step_noise(11, shape, 3)[:, :, :, 1:4])
    with pytest.raises(ValueError, match="step must be an integer in"):
        step_noise(11, shape, -1)
    with pytest.raises(TypeError, match="step must be a non-negative integer"):
        step_noise(11, shape, 1.0)


@pytest.mark.parametrize("sampler, kwargs", [("euler_ancestral", {"eta": 1.0}), ("euler_ancestral", {"eta": 0.5,
                         "s_noise": 0.8}), ("stochastic_euler", {})])
def test_trajectory_is_a_function_of_the_seed_across_batch_and_backend(sampler, kwargs):
    """Every step's state, bit for bit: numpy and torch (float32), a batch of 4 and each sample alone (its
    sample_index), and the noise equals step_noise of the step's stream."""
    run = get_sampler(sampler)
    sched = schedules.shifted(8, 3.0)
    x = portable_noise((4, 2, 3, 4, 4), 7)  # the initial noise: stream 0 of the same seed
    traj = {}
    for xp in ("numpy", "torch"):
        states = []
        start = x.numpy() if xp == "numpy" else x.clone()
        run(_toy(xp), start, sched, seed=7, callback=lambda i, t, tn, s, out=states: out.append(_np(s)), **kwargs)
        traj[xp] = states
    for a, b in zip(traj["numpy"], traj["torch"], strict=True):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    for b in range(4):
        alone = run(_toy("torch"), x[b : b + 1], sched, seed=7, sample_index=b, **kwargs)
        assert np.array_equal(alone.numpy(), traj["torch"][-1][b : b + 1])
    seen = []

    def draw(i, s):
        seen.append(i)
        return step_noise(7, tuple(s.shape), i)

    by_hand = run(_toy("torch"), x, sched, noise=draw, **kwargs)
    assert np.array_equal(by_hand.numpy(), traj["torch"][-1]) and seen == list(range(7))  # none for the step to 0
    other = run(_toy("torch"), x, sched, seed=8, **kwargs)
    assert not torch.equal(other, by_hand)


def test_float64_and_bfloat16_states_get_the_float32_noise_cast():
    """The default noise is portable float32 noise cast to the state's dtype (exact for float64)."""
    sched = schedules.linear(3)
    x = torch.zeros(2, 8, dtype=torch.float64)
    zero = lambda y, t: y * 0  # noqa: E731  (x0 = x: the result is the last step's t' * eps chain, noise only)
    ref = stochastic_euler(zero, x, sched, seed=3)
    by_hand = stochastic_euler(zero, x, sched, noise=lambda i, s: step_noise(3, tuple(s.shape), i).double())
    assert torch.equal(ref, by_hand) and ref.dtype == torch.float64
    assert stochastic_euler(zero, x.to(torch.bfloat16), sched, seed=3).dtype == torch.bfloat16


# -- the updates themselves --------------------------------------------------------------------------------------


def test_eta_zero_is_euler_and_draws_no_noise():
    sched = schedules.shifted(12, 2.0)
    x = np.random.default_rng(0).standard_normal((3, 5))
    v = _toy("numpy")

    def never(i, s):
        raise AssertionError("eta = 0 must not draw noise")

    a = euler_ancestral(v, x, sched, eta=0.0, noise=never)
    # the same step in another order of float operations: (t'/t) x + (1 - t'/t) (x - t v) = x + (t' - t) v
    np.testing.assert_allclose(a, euler(v, x, sched), rtol=0, atol=1e-13)
    assert np.array_equal(euler_ancestral(v, x, sched, eta=0.0), a)  # no seed needed without noise


def test_one_ancestral_step_written_out():
    """Step 0 of ComfyUI's RF ancestral update, written out (docs/partial-and-stochastic.md)."""
    t, tn, eta, s_noise = 0.9, 0.6, 0.7, 0.9
    x = np.array([0.3, -1.2, 2.0])
    eps = np.array([0.5, 0.1, -0.7])
    v = np.array([0.2, 0.4, -0.1])
    x0 = x - t * v
    t_down = tn * (1 + (tn / t - 1) * eta)
    mid = (t_down / t) * x + (1 - t_down / t) * x0
    a, a_down = 1 - tn, 1 - t_down
    want = (a / a_down) * mid + eps * s_noise * np.sqrt(tn**2 - t_down**2 * a**2 / a_down**2)
    got = euler_ancestral(lambda y, s: v, x, [t, tn], eta=eta, s_noise=s_noise, noise=lambda i, y: eps,
                          allow_partial=True)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    got = stochastic_euler(lambda y, s: v, x, [t, tn], noise=lambda i, y: eps, allow_partial=True)
    np.testing.assert_allclose(got, (1 - tn) * x0 + tn * eps, rtol=0, atol=1e-15)


def test_ancestral_step_stays_on_the_path_of_point_data():
    """For data at a single point mu (exact velocity v = (x - mu) / t, so x0 = mu exactly), one step from the
    marginal at t lands exactly on the marginal at t': mean (1 - t') mu, variance t'^2, whatever eta (the re-noise
    term makes up the variance the down-step removed); checked on the moments of 400,000 samples (standard errors
    about 0.001)."""
    mu = 0.8
    rng = np.random.default_rng(1)
    t, tn = 0.7, 0.45
    x = (1 - t) * mu + t * rng.standard_normal(400_000)
    noise = np.random.default_rng(2).standard_normal(x.shape)
    for eta in (0.0, 0.5, 1.0):
        y = euler_ancestral(lambda z, tt: (z - mu) / tt, x, [t, tn], eta=eta, noise=lambda i, z: noise,
                            allow_partial=True)
        assert abs(y.mean() - (1 - tn) * mu) < 0.005
        assert abs(y.var() - tn**2) < 0.005
    y = stochastic_euler(lambda z, tt: (z - mu) / tt, x, [t, tn], noise=lambda i, z: noise, allow_partial=True)
    assert abs(y.mean() - (1 - tn) * mu) < 0.005 and abs(y.var() - tn**2) < 0.005


def test_table_and_nfe():
    assert set(STOCHASTIC) <= set(SAMPLERS) and SAMPLERS["euler_ancestral"] is euler_ancestral
    assert SAMPLERS["stochastic_euler"] is stochastic_euler
    assert nfe("euler_ancestral", 20) == nfe("stochastic_euler", 20) == 20 and nfe("heun", 20) == 39


# -- bad input -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sampler, kwargs, exc, words",
    [
        ("euler_ancestral", {"eta": -0.1, "seed": 1}, ValueError, "eta must be a finite number >= 0"),
        ("euler_ancestral", {"s_noise": -1.0, "seed": 1}, ValueError, "s_noise must be a finite number >= 0"),
        ("euler_ancestral", {"eta": float("nan"), "seed": 1}, ValueError, "eta must be a finite number"),
        ("euler_ancestral", {}, ValueError, "pass seed="),
        ("stochastic_euler", {}, ValueError, "pass seed="),
        ("stochastic_euler", {"seed": 1, "noise": lambda i, x: x}, ValueError, "not both"),
        ("stochastic_euler", {"seed": -1}, ValueError, "seed must be an integer in [0, 2**64)"),
        ("stochastic_euler", {"seed": 1.5}, TypeError, "seed must be an integer"),
        ("stochastic_euler", {"noise": 3}, TypeError, "got the integer 3; for portable per-step noise pass seed=3"),
        ("stochastic_euler", {"noise": "abc"}, TypeError, "noise must be callable"),
        ("stochastic_euler", {"seed": 1, "sample_index": [0, 1]}, ValueError, "one index per batch position (3)"),
        ("stochastic_euler", {"noise": lambda i, x: x[:1]}, ValueError, "noise returned shape (1, 4)"),
        ("stochastic_euler", {"noise": lambda i, x: x * np.nan}, ValueError, "noise returned NaN or inf at step 0"),
        ("euler_ancestral", {"eta": 100.0, "seed": 1}, ValueError, "eta=100.0 is too large"),
    ],
)
def test_bad_input(sampler, kwargs, exc, words):
    x = np.ones((3, 4))
    with pytest.raises(exc) as info:
        SAMPLERS[sampler](lambda y, t: y * 0.1, x, schedules.shifted(4, 3.0), **kwargs)
    assert words in str(info.value)


def test_noise_of_the_wrong_kind_for_torch():
    with pytest.raises(TypeError, match="noise must return a torch tensor"):
        stochastic_euler(lambda y, t: y, torch.ones(2, 3), schedules.linear(3), noise=lambda i, x: np.ones((2, 3)))


# -- add_noise ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_add_noise_is_diffusers_scale_noise_bit_for_bit(dtype):
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(13)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 3, 5, generator=g).to(dtype)
    eps = torch.randn(2, 4, 3, 5, generator=g).to(dtype)
    for begin in (0, 4, 9):
        sched._step_index = None
        sched.set_begin_index(begin)
        want = sched.scale_noise(x0, sched.timesteps[begin : begin + 1].repeat(2), eps)
        t = float(sched.sigmas[begin])
        assert torch.equal(add_noise(x0, eps, t), want)
        assert torch.equal(add_noise(x0, eps, torch.tensor([t, t])), want)
        if dtype is torch.float32:
            assert np.array_equal(add_noise(x0.numpy(), eps.numpy(), t), want.numpy())  # numpy: the same bits
    # a float64 schedule value is rounded to float32 first, as diffusers' float32 sigmas are
    t = schedules.shifted(13, 3.0).t[4]
    y = add_noise(x0.float(), eps.float(), t)
    assert torch.equal(y, add_noise(x0.float(), eps.float(), float(np.float32(t))))


def test_add_noise_formula_and_per_sample_levels():
    x0 = np.arange(6.0).reshape(2, 3)
    eps = np.ones((2, 3))
    got = add_noise(x0, eps, [0.25, 1.0])
    np.testing.assert_array_equal(got, np.array([[0.25, 1.0, 1.75], [1.0, 1.0, 1.0]]))
    np.testing.assert_array_equal(add_noise(x0, eps, 0), x0)


@pytest.mark.parametrize(
    "args, exc, words",
    [
        ((np.ones(3), np.ones(4), 0.5), ValueError, "noise has shape (4,)"),
        ((np.ones(3), torch.ones(3), 0.5), TypeError, "noise must be the same kind of array"),
        ((np.ones(3), np.ones(3, dtype=np.float32), 0.5), TypeError, "noise has dtype float32"),
        ((np.ones(3), np.ones(3), 1.5), ValueError, "t must lie in [0, 1]"),
        ((np.ones(3), np.ones(3), [0.1, 0.2]), ValueError, "one per sample (3)"),
        ((np.ones(3), np.ones(3), "0.5"), TypeError, "t must be a number"),
        ((np.ones(3, dtype=int), np.ones(3, dtype=int), 0.5), TypeError, "floating-point"),
    ],
)
def test_add_noise_bad_input(args, exc, words):
    with pytest.raises(exc) as info:
        add_noise(*args)
    assert words in str(info.value)


def _gpu_check_module():
    import importlib.util

    bench = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
    sys.path.insert(0, bench)  # gpu_check imports its sibling _report
    try:
        spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(bench, "gpu_check.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(bench)
    return module


def test_the_gpu_check_runs_on_the_cpu():
    """benchmarks/gpu_check.py compares the samplers' trajectories on the CPU with CUDA; against the CPU itself every
    check must hold (a smoke test that keeps the script in step with the library)."""
    module = _gpu_check_module()
    result = module.stochastic_trajectory_check("cpu", shape=(2, 4, 2, 3, 5), num_steps=5)
    assert result["ok"] and len(result["checks"]) == 10 and all(c["steps"] >= 1 for c in result["checks"])
    framed = module.frames_trajectory_check("cpu", shape=(2, 3, 6, 2, 3))
    assert framed["ok"] and len(framed["checks"]) == 7 and all(c["steps"] >= 1 for c in framed["checks"])
    differ = module._compare("x", [np.zeros(3, np.float32)], [np.array([0, 0, 1e-7], np.float32)])
    assert not differ["equal"] and differ["max_abs_diff"] > 0  # a one-ulp-sized difference is reported
    if not torch.cuda.is_available():
        for check in (module.stochastic_trajectory_check, module.frames_trajectory_check):
            assert check("cuda") == {"device": "cuda", "skipped": "no CUDA device"}
