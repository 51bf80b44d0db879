"""flow_match_euler and flux against the real peers: diffusers' FlowMatchEulerDiscreteScheduler (pinned 0.42.1 in
requirements-dev.txt) over a grid of configurations, and an independent float32 re-derivation of BFL's
``get_schedule`` plus the reference numbers of docs/schedules.md."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowsched import diffusers_rules as D
from flowsched import schedules as S

diffusers = pytest.importorskip("diffusers")
from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402

from _peers import diffusers_fme  # noqa: E402

ATOL = 1e-6


peer = diffusers_fme


def check(num_steps, mu=None, sigmas=None, **config):
    want_sigmas, want_timesteps = peer(num_steps, mu=mu, sigmas=sigmas, **config)
    got = D.flow_match_euler(num_steps, mu=mu, sigmas=sigmas, **config)
    assert got.t.shape == want_sigmas.shape
    np.testing.assert_allclose(got.t, want_sigmas, rtol=0, atol=ATOL)
    scale = config.get("num_train_timesteps", 1000)
    np.testing.assert_allclose(got.model_timesteps(scale), want_timesteps, rtol=0, atol=ATOL * scale)
    return got


# shift_terminal with one step: diffusers returns NaN (0/0), flowsched raises (tested in test_schedules_families)
STATIC = [
    c
    for c in itertools.product(
        [1, 2, 3, 10, 28, 50],  # num_steps
        [1.0, 3.0, 7.3, 0.5],  # shift (0.5 is legal, if odd)
        [None, 0.1],  # shift_terminal
        ["none", "karras", "exponential", "beta"],
        [False, True],  # invert_sigmas
    )
    if not (c[0] == 1 and c[2] is not None)
]
DYNAMIC = [
    c
    for c in itertools.product([1, 4, 28, 50], [0.5, 1.15, 3.23], ["exponential", "linear"], [None, 0.1], [False, True])
    if not (c[0] == 1 and c[3] is not None)
]


@pytest.mark.parametrize("num_steps,shift,terminal,spacing,invert", STATIC)
def test_static_default_grid(num_steps, shift, terminal, spacing, invert):
    config = {"shift": shift, "shift_terminal": terminal, "invert_sigmas": invert}
    if spacing != "none":
        config[f"use_{spacing}_sigmas"] = True
    check(num_steps, **config)


@pytest.mark.parametrize("num_steps,mu,kind,terminal,custom", DYNAMIC)
def test_dynamic_shifting(num_steps, mu, kind, terminal, custom):
    sigmas = np.linspace(1.0, 1.0 / num_steps, num_steps) if custom else None
    config = {"use_dynamic_shifting": True, "time_shift_type": kind, "shift_terminal": terminal, "shift": 3.0}
    got = check(num_steps, mu=mu, sigmas=sigmas, **config)
    assert got.params["mu"] == mu


@pytest.mark.parametrize("num_train_timesteps", [2, 10, 100, 1000, 4000])
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_num_train_timesteps(num_train_timesteps, shift):
    check(20, shift=shift, num_train_timesteps=num_train_timesteps)
    check(20, sigmas=np.linspace(1, 0.05, 20), shift=shift, num_train_timesteps=num_train_timesteps)


def test_num_train_timesteps_one_with_custom_sigmas():
    # ACE-Step / OmniGen style: timestep == sigma
    check(8, sigmas=np.linspace(1, 1 / 8, 8), shift=2.5, num_train_timesteps=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    shift=st.floats(0.3, 20.0),
    dynamic=st.booleans(),
    mu=st.floats(0.05, 3.5),
    kind=st.sampled_from(["exponential", "linear"]),
    terminal=st.sampled_from([None, 0.05, 0.1, 0.3]),
    spacing=st.sampled_from(["none", "karras", "exponential", "beta"]),
    invert=st.booleans(),
    custom=st.sampled_from(["none", "flux", "random"]),
    seed=st.integers(0, 2**31),
)
def test_random_configurations(n, shift, dynamic, mu, kind, terminal, spacing, invert, custom, seed):
    if terminal is not None and n == 1:
        return
    config = {
        "shift": shift,
        "use_dynamic_shifting": dynamic,
        "time_shift_type": kind,
        "shift_terminal": terminal,
        "invert_sigmas": invert,
    }
    if spacing != "none":
        config[f"use_{spacing}_sigmas"] = True
    sigmas = None
    if custom == "flux":
        sigmas = np.linspace(1.0, 1.0 / n, n)
    elif custom == "random":
        rng = np.random.default_rng(seed)
        sigmas = np.sort(rng.uniform(0.01, 1.0, n))[::-1]
        sigmas = np.unique(sigmas)[::-1]
        n = sigmas.size
    check(n, mu=mu if dynamic else None, sigmas=sigmas, **config)


def test_full_saved_config_round_trip():
    """A scheduler's own config (with its private keys) can be splatted in."""
    sch = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)
    got = D.flow_match_euler(28, mu=0.9, **dict(sch.config))
    want, _ = peer(28, mu=0.9, **{k: v for k, v in sch.config.items() if not k.startswith("_")})
    np.testing.assert_allclose(got.t, want, atol=ATOL, rtol=0)


def test_reference_numbers_in_the_docs():
    """docs/schedules.md "Reference numbers": the double-shifted default tail and the Flux paths (diffusers 0.42.1)."""
    a = D.flow_match_euler(50, shift=3.0)
    np.testing.assert_allclose(a.t[:5], [1.0, 0.993124, 0.986057, 0.97879, 0.971314], atol=1e-6)
    np.testing.assert_allclose(a.t[-5:], [0.170296, 0.120533, 0.0669, 0.008929, 0.0], atol=1e-6)
    assert a.params["double_shift"] is True
    b1 = D.flow_match_euler(50, mu=1.15, shift=3.0, use_dynamic_shifting=True)
    np.testing.assert_allclose(b1.t[-5:], [0.1731, 0.121024, 0.064566, 0.003151, 0.0], atol=1e-6)
    b2 = D.flow_match_euler(50, mu=1.15, sigmas=np.linspace(1, 1 / 50, 50), use_dynamic_shifting=True)
    np.testing.assert_allclose(b2.t[-5:], [0.215456, 0.167767, 0.116289, 0.06055, 0.0], atol=1e-6)


# -- flux: BFL get_schedule ------------------------------------------------------------------------------------


def bfl_float32(num_steps, image_seq_len, base_shift=0.5, max_shift=1.15, shift=True):
    """Independent re-derivation of BFL's get_schedule in float32 numpy: mu on the line through (256, base) and
    (4096, max), then exp(mu) / (exp(mu) + (1/t - 1)) on a float32 linspace(1, 0, N + 1)."""
    t = np.linspace(1, 0, num_steps + 1, dtype=np.float32)
    if not shift:
        return t.astype(np.float64)
    slope = (max_shift - base_shift) / (4096 - 256)
    mu = base_shift + slope * (image_seq_len - 256)
    e = np.float32(math.exp(mu))
    with np.errstate(divide="ignore"):
        out = e / (e + (np.float32(1) / t - np.float32(1)))
    return out.astype(np.float64)


@pytest.mark.parametrize("num_steps", [1, 2, 4, 28, 50])
@pytest.mark.parametrize("seq", [64, 256, 1024, 2304, 4096, 16384])
@pytest.mark.parametrize("shift", [True, False])
def test_flux_matches_bfl_float32(num_steps, seq, shift):
    got = S.flux(num_steps, seq) if shift else S.linear(num_steps)  # BFL's shift=False is the linear grid
    np.testing.assert_allclose(got.t, bfl_float32(num_steps, seq, shift=shift), atol=ATOL, rtol=0)
    assert got.t[0] == 1.0 and got.t[-1] == 0.0


def test_flux_reference_numbers():
    """docs/schedules.md "Reference numbers": BFL get_schedule, 50 steps."""
    f = S.flux(50, 4096)
    assert f.params["mu"] == pytest.approx(1.15)
    np.testing.assert_allclose(f.t[:5], [1, 0.9935795, 0.9869786, 0.9801895, 0.9732042], atol=1e-6)
    np.testing.assert_allclose(f.t[-5:], [0.2154558, 0.1677671, 0.1162888, 0.0605503, 0], atol=1e-6)
    g = S.flux(50, 2304)
    assert g.params["mu"] == pytest.approx(0.84667, abs=1e-5)
    assert g.t[1] == pytest.approx(0.9913241, abs=1e-6) and g.t[-2] == pytest.approx(0.0454272, abs=1e-6)


def test_flux_equals_diffusers_flux_pipeline_path():
    """FluxPipeline: sigmas linspace(1, 1/N, N) + mu through the scheduler == BFL get_schedule."""
    for n, seq in [(28, 4096), (50, 1024), (4, 6000)]:
        mu = S.flux_mu(seq)
        want, _ = peer(n, mu=mu, sigmas=np.linspace(1, 1 / n, n), shift=3.0, use_dynamic_shifting=True)
        np.testing.assert_allclose(S.flux(n, seq).t, want, atol=ATOL, rtol=0)


def test_schedule_is_array_like():
    """numpy.asarray(schedule) gives the sigmas, so a Schedule compares directly with scheduler.sigmas."""
    got = D.flow_match_euler(12, shift=3.0)
    want, _ = peer(12, shift=3.0)
    np.testing.assert_allclose(np.asarray(got), want, atol=ATOL, rtol=0)
    assert np.asarray(got, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("shift,dynamic", [(1.0, False), (3.0, False), (3.0, True)])
def test_custom_timesteps(shift, dynamic):
    """CogView4 passes integer timesteps; without sigmas diffusers derives sigmas = timesteps / T."""
    ts = np.linspace(1000, 1.0, 30).astype(np.int64).astype(np.float32)
    config = {"shift": shift, "use_dynamic_shifting": dynamic, "time_shift_type": "linear"}
    mu = 3.25 if dynamic else None
    sch = FlowMatchEulerDiscreteScheduler(**config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sch.set_timesteps(30, mu=mu, timesteps=ts)
    got = D.flow_match_euler(30, mu=mu, timesteps=ts, **config)
    np.testing.assert_allclose(got.t, sch.sigmas.numpy(), atol=ATOL, rtol=0)
    # fed to the model as given (float32), bit for bit
    np.testing.assert_array_equal(got.model_timesteps(), sch.timesteps.numpy().astype(np.float64))
    assert got.to_dict()["timesteps"] == [float(x) for x in sch.timesteps.numpy()]


def test_num_inference_steps_alias():
    assert D.flow_match_euler(num_inference_steps=9, shift=2.0) == D.flow_match_euler(9, shift=2.0)
