"""FlowschedScheduler without a schedule is diffusers' FlowMatchEulerDiscreteScheduler (its subclass), and
FlowschedUniPCMultistepScheduler drives UniPC with given sigmas, with diffusers' own classes (0.42.1, the pin) as
the oracle: every test drives diffusers' scheduler and the adapter the same way and compares values bit for bit and
config keys and attributes exactly. Where the adapter deliberately differs (shift_terminal with one step, argument
checks), the test says so.
"""

from __future__ import annotations

import copy
import inspect
import json
import warnings

import diffusers
import numpy as np
import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
    UniPCMultistepScheduler,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _peers import diffusers_has, need_diffusers
from flowsched import schedules
from flowsched.integrations.diffusers import (
    FlowschedScheduler,
    FlowschedUniPCMultistepScheduler,
    TimestepNotFoundError,
    with_schedule,
)
from flowsched.spec import from_spec

FME = FlowMatchEulerDiscreteScheduler
#: FlowMatchEulerDiscreteScheduler's config keys, read from the installed diffusers.
FLOW_MATCH_EULER_KEYS = tuple(k for k in inspect.signature(FME.__init__).parameters if k != "self")
#: Features that arrived after the oldest diffusers these tests also run against (make test-diffusers-old).
STOCHASTIC = diffusers_has(FME.__init__, "stochastic_sampling")
UNIPC_SIGMAS = diffusers_has(UniPCMultistepScheduler.set_timesteps, "sigmas")
needs_unipc_sigmas = pytest.mark.skipif(not UNIPC_SIGMAS, reason="UniPC takes given sigmas from diffusers 0.37 on")
needs_stochastic = pytest.mark.skipif(not STOCHASTIC, reason="stochastic_sampling arrived in diffusers 0.34")

CONFIGS = [
    {},
    {"shift": 3.0},
    {"shift": 3},  # an int, as some hand-written configs have it: diffusers' expressions keep it an int
    {"shift": 7.3, "use_karras_sigmas": True},
    {"use_dynamic_shifting": True},  # Flux
    {"use_dynamic_shifting": True, "time_shift_type": "linear", "base_shift": 0.25, "max_shift": 0.75},  # CogView4
    {"use_dynamic_shifting": True, "base_shift": 0.95, "max_shift": 2.05, "shift_terminal": 0.1},  # LTX 0.9.0
    {"invert_sigmas": True},  # Mochi
    {"shift": 6.0, "num_train_timesteps": 1},  # timestep == sigma (Stable Audio 3, ACE-Step)
    {"shift": 2.0, "num_train_timesteps": 4000, "use_beta_sigmas": True},
]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def fme_keys(scheduler) -> dict:
    return {k: scheduler.config[k] for k in FLOW_MATCH_EULER_KEYS}


def assert_same_schedule(ours, ref):
    assert torch.equal(ours.sigmas, ref.sigmas), (ours.sigmas, ref.sigmas)
    assert torch.equal(ours.timesteps, ref.timesteps), (ours.timesteps, ref.timesteps)


# -- 1. the training schedule exists from construction ---------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_training_schedule_and_attributes_at_construction(config):
    need_diffusers(FME.__init__, *config)
    ref, ours = FME(**config), FlowschedScheduler(**config)
    assert_same_schedule(ours, ref)  # T values each, no terminal
    assert ours.sigmas.shape == (config.get("num_train_timesteps", 1000),)
    assert ours.sigma_min == ref.sigma_min and ours.sigma_max == ref.sigma_max
    assert type(ours.sigma_min) is float
    assert ours.shift == ref.shift and len(ours) == len(ref) and ours.order == ref.order
    assert ours.num_inference_steps is None and ours.step_index is None and ours.begin_index is None
    for key in FLOW_MATCH_EULER_KEYS:  # every key, as scheduler.config.<key> and scheduler.config[key]
        assert getattr(ours.config, key) == getattr(ref.config, key)
        assert type(ours.config[key]) is type(ref.config[key])
    assert ours.config.get("stochastic_sampling", False) is False  # what Stable Audio 3's pipeline reads
    assert dict(ours.config) == dict(ref.config)  # no key of its own without a schedule
    assert isinstance(ours, FME)


def test_training_schedule_of_a_flowsched_spec_is_the_spec_at_num_train_timesteps_steps():
    """The documented equivalent: the schedule evaluated at T steps, its terminal dropped. For shifted:alpha=a
    that is diffusers' training grid with shift=a (alpha k/T / (1 + (alpha-1) k/T), written out here)."""
    ours = FlowschedScheduler("shifted:alpha=3")
    k = np.arange(1000, 0, -1) / 1000
    expected = 3 * k / (1 + 2 * k)
    np.testing.assert_allclose(ours.sigmas.numpy(), expected, rtol=0, atol=6e-8)  # float32 rounding
    assert torch.equal(ours.timesteps, ours.sigmas * 1000)
    # diffusers shifts in float32 arithmetic (a few ulp off the exact values); ours is rounded once
    torch.testing.assert_close(ours.sigmas, FME(shift=3.0).sigmas, rtol=0, atol=1.2e-7)
    fixed = FlowschedScheduler(schedules.shifted(8, 3.0))  # a fixed schedule is resampled to T steps
    resampled = schedules.loglinear_interp(schedules.shifted(8, 3.0), 1000)
    assert torch.equal(fixed.sigmas, torch.from_numpy(resampled.t[:-1].astype(np.float32)))
    assert fixed.sigma_max == 1.0 and fixed.sigma_min == pytest.approx(schedules.shifted(8, 3.0).t[-2], rel=1e-6)


@pytest.mark.parametrize("config", [{"shift": 3.0}, {"use_dynamic_shifting": True}])
def test_training_script_samples_timesteps_and_noises_a_batch(config):
    """diffusers' Flux/SD3 DreamBooth scripts: copy the scheduler, sample u (logit-normal), take
    timesteps = scheduler.timesteps[(u * T).long()], look their sigmas up by exact match and noise the batch;
    scale_noise does the same in one call. Nothing calls set_timesteps."""
    from diffusers.training_utils import compute_density_for_timestep_sampling

    def train_step(scheduler):
        scheduler = copy.deepcopy(scheduler)  # the scripts keep a noise_scheduler_copy
        torch.manual_seed(7)
        u = compute_density_for_timestep_sampling("logit_normal", batch_size=6, logit_mean=0.0, logit_std=1.0)
        timesteps = scheduler.timesteps[(u * scheduler.config.num_train_timesteps).long()]
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn(6, 4, 8, 8, generator=g)
        noise = torch.randn(6, 4, 8, 8, generator=g)
        index = [(scheduler.timesteps == t).nonzero().item() for t in timesteps]
        sigma = scheduler.sigmas[index].reshape(-1, 1, 1, 1)
        by_hand = (1.0 - sigma) * x0 + sigma * noise
        return timesteps, sigma, by_hand, scheduler.scale_noise(x0, timesteps, noise)

    ref, ours = train_step(FME(**config)), train_step(FlowschedScheduler(**config))
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(ours[3], ours[2], rtol=0, atol=1e-6)  # scale_noise is the forward process


# -- 2. set_timesteps, step and scale_noise, bit for bit --------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    shift=st.sampled_from([1.0, 3.0, 5, 0.5, 7.3]),
    dynamic=st.booleans(),
    kind=st.sampled_from(["exponential", "linear"]),
    mu=st.floats(0.1, 3.5),
    terminal=st.sampled_from([None, 0.1, 0.3]),
    spacing=st.sampled_from([None, "karras", "exponential", "beta"]),
    invert=st.booleans(),
    custom=st.sampled_from([None, "flux", "timesteps", "both", "float32"]),
    T=st.sampled_from([1000, 100, 2]),
)
def test_set_timesteps_matches_diffusers_bit_for_bit(n, shift, dynamic, kind, mu, terminal, spacing, invert, custom, T):
    if terminal is not None and n == 1:
        return  # diffusers 0.42.1 returns NaN there; tested on its own below
    config = {"shift": shift, "use_dynamic_shifting": dynamic, "time_shift_type": kind, "shift_terminal": terminal,
              "invert_sigmas": invert, "num_train_timesteps": T}
    if spacing:
        config[f"use_{spacing}_sigmas"] = True
    if kind == "linear" and "time_shift_type" not in FLOW_MATCH_EULER_KEYS:
        return  # an older diffusers: exponential only
    config = {k: v for k, v in config.items() if k in FLOW_MATCH_EULER_KEYS}
    call = {"num_inference_steps": n, "mu": mu if dynamic else None}
    ts = np.linspace(T, 1, n).astype(np.int64).astype(np.float32)  # CogView4's integer grid
    if custom in ("flux", "both"):
        call["sigmas"] = np.linspace(1.0, 1 / n, n)
    if custom in ("timesteps", "both"):
        call["timesteps"] = ts
    if custom == "float32":
        call["sigmas"] = torch.linspace(1.0, 1 / n, n)  # a tensor (float32) is cast like a list
    if "timesteps" in call and not diffusers_has(FME.set_timesteps, "timesteps"):
        return
    ref, ours = FME(**config), FlowschedScheduler(**config)
    try:
        _quiet(ref.set_timesteps, **call)
    except Exception:
        return
    if not (torch.isfinite(ref.sigmas).all() and (torch.diff(ref.sigmas) != 0).all()):
        with pytest.raises(ValueError):  # repeated or non-finite sigmas are refused, not walked
            ours.set_timesteps(**call)
        return
    ours.set_timesteps(**call)
    assert_same_schedule(ours, ref)
    assert ours.num_inference_steps == ref.num_inference_steps
    np.testing.assert_array_equal(ours.schedule.t, ref.sigmas.double().numpy())


def test_custom_timesteps_are_fed_as_given_like_cogview4():
    """CogView4 passes its unshifted integer grid as timesteps and the shifted sigmas separately: 0.42.1 feeds
    the model the integer grid (for 4 steps at 1024px: 1000, 667, 334, 1)."""
    need_diffusers(FME.set_timesteps, "timesteps")
    need_diffusers(FME.__init__, "time_shift_type")
    config = {"use_dynamic_shifting": True, "time_shift_type": "linear", "base_shift": 0.25, "max_shift": 0.75}
    ts = np.linspace(1000, 1.0, 4).astype(np.int64).astype(np.float32)
    call = {"timesteps": ts, "sigmas": ts / 1000, "mu": 3.25}
    ref, ours = FME(**config), FlowschedScheduler.from_config(FME(**config).config)
    ref.set_timesteps(**call)
    ours.set_timesteps(**call)
    assert_same_schedule(ours, ref)
    assert ours.timesteps.tolist() == [1000.0, 667.0, 334.0, 1.0]


def test_set_shift_and_device_like_diffusers():
    ref, ours = FME(shift=3.0), FlowschedScheduler(shift=3.0)
    for s in (ref, ours):
        s.set_shift(7.0)  # later calls shift by 7; sigma_min stays the one of shift 3 (diffusers' stale value)
        s.set_timesteps(12, device="cpu")
    assert ours.shift == ref.shift == 7.0 and ours.config.shift == 3.0
    assert_same_schedule(ours, ref)
    assert ours.sigma_min == ref.sigma_min
    with pytest.raises(ValueError, match="put the shift in the schedule"):
        FlowschedScheduler("linear").set_shift(2.0)


@pytest.mark.parametrize("config,call", [
    ({"shift": 3.0}, {"num_inference_steps": 9}),
    ({"use_dynamic_shifting": True}, {"sigmas": np.linspace(1, 1 / 7, 7), "mu": 0.8}),
    ({"invert_sigmas": True}, {"sigmas": np.linspace(1, 0.1, 6)}),
])
def test_steps_and_scale_noise_are_diffusers_arithmetic(config, call):
    ref, ours = FME(**config), FlowschedScheduler(**config)
    for s in (ref, ours):
        s.set_timesteps(**call)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 5, generator=g)
    noise = torch.randn(3, 4, 5, generator=g)
    three = ref.timesteps[[0, 2, 4]]
    assert torch.equal(ours.scale_noise(x0, three, noise), ref.scale_noise(x0, three, noise))  # looked up
    x_ref = x_ours = noise.to(torch.bfloat16)
    for t in ref.timesteps:  # no set_begin_index: the first index is looked up from t
        v = (torch.sin(3 * x_ref.float()) + t / 1000).to(torch.bfloat16)
        x_ref = ref.step(v, t, x_ref).prev_sample
        x_ours = ours.step(v, t, x_ours).prev_sample
        assert torch.equal(x_ours, x_ref) and x_ours.dtype == torch.bfloat16
        assert ours.step_index == ref.step_index
        assert torch.equal(ours.scale_noise(x0, three[:1], noise), ref.scale_noise(x0, three[:1], noise))
    for s in (ref, ours):
        s.set_timesteps(**call)
        s.set_begin_index(2)  # img2img: pipelines set the start; scale_noise then uses it
    assert torch.equal(ours.scale_noise(x0, ref.timesteps[2:3], noise), ref.scale_noise(x0, ref.timesteps[2:3], noise))


# -- 3. index_for_timestep ---------------------------------------------------------------------------------------


def test_index_for_timestep_matches_diffusers_with_duplicates_and_unknown_values():
    need_diffusers(FME.set_timesteps, "timesteps")
    call = {"sigmas": [1.0, 0.6, 0.5, 0.1], "timesteps": [1000.0, 500.0, 500.0, 100.0]}  # a repeated timestep
    ref, ours = FME(), FlowschedScheduler()
    for s in (ref, ours):
        s.set_timesteps(**call)
    for t in [*ref.timesteps, 1000.0, torch.tensor(100.0), torch.tensor([500.0])]:
        assert ours.index_for_timestep(t) == ref.index_for_timestep(t)
    assert ours.index_for_timestep(500.0) == 2  # the second of two matches, as diffusers chooses
    other = torch.tensor([7.0, 5.0, 5.0])
    assert ours.index_for_timestep(5.0, other) == ref.index_for_timestep(5.0, other) == 2
    for s in (ref, ours):
        with pytest.raises(IndexError):
            s.index_for_timestep(731.0)
    with pytest.raises(TimestepNotFoundError, match=r"731.0 is not one of this scheduler's timesteps \(closest: 500"):
        ours.index_for_timestep(731.0)
    assert issubclass(TimestepNotFoundError, ValueError)
    x = torch.zeros(2)
    for s in (ref, ours):  # a first step at a repeated timestep starts at the second match, in both
        s.set_timesteps(**call)
        s.step(x, torch.tensor(500.0), x)
    assert ours.step_index == ref.step_index == 3
    # training timesteps found exactly, including the ones that are not integers (diffusers #11749)
    ref, ours = FME(), FlowschedScheduler()
    assert ref.timesteps[746].item() != 254.0
    assert ours.index_for_timestep(ref.timesteps[746]) == ref.index_for_timestep(ref.timesteps[746]) == 746


# -- 4. shift_terminal with one step -----------------------------------------------------------------------------


@pytest.mark.parametrize("call", [{"num_inference_steps": 1}, {"sigmas": [1.0]}])
def test_shift_terminal_with_one_step_gives_one_full_step_where_diffusers_gives_nan(call):
    config = {"use_dynamic_shifting": True, "shift_terminal": 0.1, "base_shift": 0.95, "max_shift": 2.05}
    ref = FME(**config)
    ref.set_timesteps(**call, mu=2.0)
    assert not torch.isfinite(ref.sigmas).all()  # diffusers 0.42.1: 0/0 in the stretch (fixed later, #14411)
    ours = FlowschedScheduler(**config)
    ours.set_timesteps(**call, mu=2.0)
    without = FME(**{**config, "shift_terminal": None})  # nothing to stretch: the schedule without the stretch
    without.set_timesteps(**call, mu=2.0)
    assert_same_schedule(ours, without)
    assert ours.sigmas.tolist() == [1.0, 0.0]


# -- 5. config: swap back, save_pretrained, compatibles -----------------------------------------------------------

SWAP_CONFIGS = [{"shift": 3.0}, {"use_dynamic_shifting": True, "base_shift": 0.7, "max_shift": 1.3},
                {"use_karras_sigmas": True, "shift": 5.0}, {"invert_sigmas": True, "num_train_timesteps": 500}]


@pytest.mark.parametrize("config", SWAP_CONFIGS)
def test_swap_back_to_diffusers_keeps_the_rule(config, tmp_path):
    original = FME(**config)
    adapter = FlowschedScheduler.from_config(original.config)
    adapter.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert set(saved) - {"_class_name", "_diffusers_version"} == set(FLOW_MATCH_EULER_KEYS)  # no extra keys
    mu = {"mu": 1.1} if config.get("use_dynamic_shifting") else {}
    for back in (FME.from_pretrained(tmp_path), FME.from_config(adapter.config)):
        assert type(back) is FME
        assert fme_keys(back) == fme_keys(original)
        for s in (back, original, adapter):
            s.set_timesteps(10, **mu)
        assert_same_schedule(back, original)
        assert_same_schedule(adapter, original)


def test_compatibles_are_the_flow_match_schedulers_and_each_round_trips():
    adapter = FlowschedScheduler(shift=3.0)
    known = {"FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler", "FlowMatchLCMScheduler"}
    assert {c.__name__ for c in adapter.compatibles} == {n for n in known if hasattr(diffusers, n)}
    for cls in adapter.compatibles:
        other = cls.from_config(adapter.config)
        assert other.config.shift == 3.0
        again = _quiet(FlowschedScheduler.from_config, other.config)
        assert fme_keys(again) == fme_keys(adapter)
    heun = FlowMatchHeunDiscreteScheduler(shift=3.0)
    mirror = FlowschedScheduler.from_config(heun.config)
    heun.set_timesteps(6)
    mirror.set_timesteps(6)
    # Heun repeats each interior point for its second stage; the grid itself is FlowMatchEuler's
    assert torch.equal(torch.unique_consecutive(heun.sigmas), mirror.sigmas)
    # Heun's set_timesteps takes no sigmas: with_schedule runs the schedule with Euler steps and says so
    with pytest.warns(UserWarning, match="cannot take given sigmas.*changes the sampler"):
        euler = with_schedule(heun, "shifted:alpha=3")
    assert type(euler) is FlowschedScheduler and euler.config.shift == 3.0


@pytest.mark.parametrize("make", [
    lambda: FlowschedScheduler(shift=3.0, use_dynamic_shifting=True),
    lambda: FlowschedScheduler.from_config(FME(use_dynamic_shifting=True, shift_terminal=0.1).config),
    lambda: FlowschedScheduler("shifted:alpha=3"),
    lambda: FlowschedScheduler([1.0, 0.8, 0.5, 0.0], num_train_timesteps=1),
    pytest.param(lambda: FlowschedScheduler("linear", stochastic_sampling=True, noise_seed=5),
                 marks=needs_stochastic),
    pytest.param(lambda: with_schedule(UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction",
                                                               flow_shift=5.0), "wan2.1-t2v-480p"),
                 marks=needs_unipc_sigmas),
])
def test_from_pretrained_round_trip_reloads_the_saved_config(make, tmp_path):
    sch = make()
    cls = type(sch)
    sch.save_pretrained(tmp_path)
    first = (tmp_path / "scheduler_config.json").read_text()
    again = _quiet(cls.from_pretrained, tmp_path)
    expected = {k: v for k, v in sch.config.items() if k != "_use_default_values"}
    assert dict(again.config) == {**expected, "_class_name": cls.__name__,
                                  "_diffusers_version": again.config["_diffusers_version"]}
    again.save_pretrained(tmp_path)
    assert (tmp_path / "scheduler_config.json").read_text() == first
    for s in (sch, again):
        _quiet(s.set_timesteps, 7, mu=1.0)
    assert_same_schedule(again, sch)


def test_the_nested_config_of_earlier_versions_is_gone():
    """flowsched 0.1 nested diffusers' keys under flow_match_euler; that layout is no longer read (the keys sit at
    the top level, where diffusers and its pipelines read them)."""
    with pytest.raises(TypeError, match="flow_match_euler"):
        FlowschedScheduler(flow_match_euler={"shift": 2.0})
    assert "flow_match_euler" not in inspect.signature(FlowschedScheduler.__init__).parameters


# -- 6. UniPC (Wan) keeps its solver; schedulers that cannot take given sigmas ---------------------------------------

FLOW = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
#: UniPC's shift keys at the values that keep given sigmas as they are.
NEUTRAL = {"flow_shift": 1.0, "use_dynamic_shifting": False, "shift_terminal": None}


def _unipc_steps(sch, n_steps: int) -> list[torch.Tensor]:
    """UniPC's multistep updates on a fixed velocity field (the same for any scheduler)."""
    x = torch.randn(1, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    out = []
    for t in sch.timesteps[:n_steps]:
        v = torch.sin(2 * x) - 0.2 * x + t.float() / 1000
        x = sch.step(v, t, x).prev_sample
        out.append(x)
    return out


@needs_unipc_sigmas
@pytest.mark.parametrize("config", [
    {"flow_shift": 5.0},  # Wan 2.1 720p
    {"flow_shift": 3.0, "final_sigmas_type": "sigma_min"},
    {"flow_shift": 3.0, "shift_terminal": 0.1},
    {"use_dynamic_shifting": True, "time_shift_type": "exponential"},
])
@pytest.mark.parametrize("spec", ["shifted:alpha=3", "wan2.1-t2v-480p", "karras:t_min=0.01"])
@pytest.mark.parametrize("n", [1, 4, 30])
def test_unipc_walks_the_schedule_as_unipc_given_those_sigmas(config, spec, n):
    """The reference is diffusers' UniPC given the schedule's sigmas directly (set_timesteps(sigmas=...), its shift
    keys neutral): the same sigmas, integer timesteps and multistep updates, bit for bit."""
    pipeline_scheduler = UniPCMultistepScheduler(**FLOW, **config)
    ours = with_schedule(pipeline_scheduler, spec)
    assert type(ours) is FlowschedUniPCMultistepScheduler and isinstance(ours, UniPCMultistepScheduler)
    assert {k: ours.config[k] for k in NEUTRAL} == NEUTRAL
    ref = UniPCMultistepScheduler(**FLOW, **{**config, **NEUTRAL})
    t = from_spec(spec, num_steps=n).t
    ref.set_timesteps(sigmas=t[:-1])
    _quiet(ours.set_timesteps, n, mu=1.2)  # a pipeline's mu only gives N (and a warning)
    assert torch.equal(ours.sigmas, ref.sigmas) and torch.equal(ours.timesteps, ref.timesteps)
    assert ours.timesteps.dtype == torch.int64 and ours.schedule.num_steps == n
    # written out: float32 sigmas as given, a first one at 1 lowered by 1e-6, int64 truncation of sigma * 1000
    first = t[:-1].copy()
    first[0] -= 1e-6 if abs(first[0] - 1) < 1e-6 else 0.0
    np.testing.assert_array_equal(ours.sigmas[:-1].numpy(), first.astype(np.float32))
    np.testing.assert_array_equal(ours.timesteps.numpy(), np.trunc(first * 1000).astype(np.int64))
    for a, b in zip(_unipc_steps(ours, 3), _unipc_steps(ref, 3), strict=True):
        assert torch.equal(a, b)


@needs_unipc_sigmas
def test_unipc_without_a_schedule_is_unipc_and_swaps_back():
    ref = UniPCMultistepScheduler(**FLOW, flow_shift=5.0)
    ours = FlowschedUniPCMultistepScheduler.from_config(ref.config)
    assert dict(ours.config) == dict(ref.config)
    for s in (ref, ours):
        s.set_timesteps(8)
    assert torch.equal(ours.sigmas, ref.sigmas) and torch.equal(ours.timesteps, ref.timesteps)
    driven = with_schedule(ref, "shifted:alpha=3")
    back = UniPCMultistepScheduler.from_config(driven.config)  # UniPC with the neutral shift keys
    back.set_timesteps(sigmas=from_spec("shifted:alpha=3", num_steps=8).t[:-1])
    driven.set_timesteps(8)
    assert torch.equal(back.sigmas, driven.sigmas)


@pytest.mark.parametrize("config,words", [
    ({"use_flow_sigmas": False}, "DDPM"),
    ({**FLOW, "prediction_type": "epsilon"}, "flow_prediction"),
    pytest.param({**FLOW, "use_karras_sigmas": True}, "DDPM betas", marks=needs_unipc_sigmas),
])
def test_unusable_unipc_configs_are_refused(config, words):
    with pytest.raises(ValueError, match=words):
        with_schedule(UniPCMultistepScheduler(**config), "shifted:alpha=3")


@pytest.mark.parametrize("n", [1, 4, 20])
def test_dpmsolver_cannot_take_sigmas_and_runs_its_grid_with_euler_steps(n):
    """DPM-Solver++ with flow sigmas (Sana) has no set_timesteps(sigmas=...): with_schedule replaces it by Euler
    steps (with a warning), and the 'sana' preset is DPM-Solver's own grid and integer timesteps."""
    ref = DPMSolverMultistepScheduler(**FLOW, flow_shift=3.0)
    with pytest.warns(UserWarning, match="DPMSolverMultistepScheduler cannot take given sigmas"):
        ours = with_schedule(ref, "sana")
    assert type(ours) is FlowschedScheduler
    ref.set_timesteps(n)
    ours.set_timesteps(n)
    assert torch.equal(ours.sigmas, ref.sigmas)  # the terminal 0 included (final_sigmas_type="zero")
    assert torch.equal(ours.timesteps, ref.timesteps.float())  # the same integers, fed as floats
    back = DPMSolverMultistepScheduler.from_config(ours.config)  # DPM-Solver's own keys stayed in the config
    assert back.config.flow_shift == 3.0 and back.config.use_flow_sigmas


def test_other_schedulers_and_unusable_calls_are_refused():
    with pytest.raises(ValueError, match="flow-matching schedulers"):
        with_schedule(EulerDiscreteScheduler(), "linear")
    with pytest.raises(ValueError, match="flow-matching schedulers"):
        with_schedule(DPMSolverMultistepScheduler(), "linear")  # DDPM sigmas
    with pytest.raises(TypeError, match="must be a diffusers scheduler"):
        with_schedule(FME().config, "linear")
    with pytest.raises(ValueError, match="schedule must be given"):
        with_schedule(FME(), None)
    if not UNIPC_SIGMAS:
        return
    with pytest.raises(ValueError, match="UniPC takes no noise"):
        with_schedule(UniPCMultistepScheduler(**FLOW), "linear", noise_seed=3)
    unipc = with_schedule(UniPCMultistepScheduler(**FLOW), "linear")
    with pytest.raises(ValueError, match="ends its walk at 0"):
        FlowschedUniPCMultistepScheduler([1.0, 0.5, 0.2]).set_timesteps(2)
    with pytest.raises(ValueError, match="sigmas holds 3 values but num_inference_steps=4"):
        unipc.set_timesteps(4, sigmas=[1.0, 0.6, 0.3])


# -- 7. a flowsched schedule and the pipeline's mu ---------------------------------------------------------------------


def test_schedule_mode_warns_once_when_the_pipelines_mu_is_ignored():
    sch = FlowschedScheduler("shifted:alpha=3")
    with pytest.warns(UserWarning, match=r"mu=1\.15 .* 'shifted:alpha=3', which has no mu: the render size is ignored"):
        sch.set_timesteps(sigmas=np.linspace(1, 1 / 4, 4), mu=1.15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sch.set_timesteps(sigmas=np.linspace(1, 1 / 4, 4), mu=0.7)  # once per scheduler
        # a rule evaluated at the pipeline's size: its mu is the pipeline's, nothing to say
        FlowschedScheduler("flux:image_seq_len=4096").set_timesteps(4, mu=schedules.flux_mu(4096))
    with pytest.warns(UserWarning, match="uses mu=1.15"):
        FlowschedScheduler("flux:image_seq_len=4096").set_timesteps(4, mu=0.6)


def test_a_schedule_with_its_own_model_timesteps_feeds_them():
    """Schedules whose model timesteps are not t * scale (CogView4's unshifted integer grid, Wan's int64 ones)
    record them (Schedule.timesteps); FlowschedScheduler feeds those instead of float32(t) * T."""
    from flowsched.schedule import Schedule

    plain = FlowschedScheduler("shifted:alpha=3")
    plain.set_timesteps(6)
    assert torch.equal(plain.timesteps, plain.sigmas[:-1] * 1000)  # diffusers' arithmetic: float32(t) * T
    t = np.linspace(1, 0, 7)
    shifted = 3 * t / (1 + 2 * t)
    own = FlowschedScheduler(Schedule(shifted, timesteps=np.floor(shifted[:-1] * 1000)))
    own.set_timesteps(6)
    assert own.timesteps.tolist() == np.floor(shifted[:-1] * 1000).tolist()
    assert own.timesteps.dtype == torch.float32
    assert torch.equal(own.sigmas, plain.sigmas)  # the walk itself is unchanged
