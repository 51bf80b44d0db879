"""Partial schedules (flowsched.strength.partial): each strength convention against its peer's own code.

References: diffusers 0.42.1's pipelines driven live (FluxImg2ImgPipeline / StableDiffusion3Img2ImgPipeline /
WanVideoToVideoPipeline / LTXConditionPipeline ``get_timesteps`` on a real FlowMatchEulerDiscreteScheduler); values
recorded from ComfyUI, DiffSynth-Studio and FramePack's own code (tests/data/README.md: commits and procedure);
the rules written out from those peers' code where a formula is simpler than a recording.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from flowsched import Schedule, schedules
from flowsched.diagnostics import diagnose
from flowsched.spec import from_spec
from flowsched.strength import CONVENTIONS, partial

DATA = os.path.join(os.path.dirname(__file__), "data")

#: float32 peers: their values are float32 roundings of the same formulas (one or two float32 ulps near 1).
F32 = 2.5e-7


def _load(*parts):
    with open(os.path.join(DATA, *parts), encoding="utf-8") as fh:
        return json.load(fh)


def _shift(u, a):
    u = np.asarray(u, dtype=np.float64)
    return a * u / (1 + (a - 1) * u)


STRENGTHS = [k / 20 for k in range(1, 21)] + [0.55, 0.33, 0.07, 0.99, 0.999, 0.3, 0.7, 0.9]


class _Stub:
    """What the pipelines' get_timesteps read of ``self``: the scheduler."""

    def __init__(self, scheduler):
        self.scheduler = scheduler


def _diffusers_scheduler(n, shift=3.0):
    from diffusers import FlowMatchEulerDiscreteScheduler

    sch = FlowMatchEulerDiscreteScheduler(shift=shift)
    sch.set_timesteps(n)
    return sch


# -- diffusers, live --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["FluxImg2ImgPipeline", "StableDiffusion3Img2ImgPipeline"])
def test_diffusers_convention_is_the_img2img_pipelines_get_timesteps(pipeline):
    import diffusers

    get_timesteps = getattr(diffusers, pipeline).get_timesteps
    for n in (*range(1, 31), 50, 100):
        for s in STRENGTHS:
            stub = _Stub(_diffusers_scheduler(n))
            timesteps, kept = get_timesteps(stub, n, s, "cpu")
            ours = partial("flow_match_euler:shift=3", n, s)
            assert ours.num_steps == kept == len(timesteps), (n, s)
            assert ours.params["begin_index"] == stub.scheduler.begin_index
            np.testing.assert_allclose(ours.t, stub.scheduler.sigmas[stub.scheduler.begin_index :].numpy(), atol=F32)
            np.testing.assert_allclose(ours.model_timesteps(), timesteps.numpy(), rtol=F32)


def test_diffusers_float_error_is_kept():
    # 100 * 0.55 = 55.00000000000001 in float64, so int(100 - 55.00000000000001) = 44 and 56 steps run
    assert partial("linear", 100, 0.55).num_steps == 56
    assert partial("linear", 100, 0.55, convention="diffusers-floor").num_steps == 55
    # Flux-style float vs Wan/LTX floor at N = 28, s = 0.6: 17 vs 16 steps
    assert partial("linear", 28, 0.6).num_steps == 17
    assert partial("linear", 28, 0.6, convention="diffusers-floor").num_steps == 16


def test_diffusers_floor_is_wan_video_to_video_and_ltx_condition():
    from diffusers import LTXConditionPipeline, WanVideoToVideoPipeline

    for n in (*range(1, 31), 50):
        for s in STRENGTHS:
            sch = _diffusers_scheduler(n, shift=5.0)
            want = int(n * s)
            if want == 0:
                with pytest.raises(ValueError, match="keeps no step"):
                    partial("flow_match_euler:shift=5", n, s, convention="diffusers-floor")
                continue
            ours = partial("flow_match_euler:shift=5", n, s, convention="diffusers-floor")
            wan_ts, wan_n = WanVideoToVideoPipeline.get_timesteps(_Stub(sch), n, sch.timesteps, s, "cpu")
            sig, ltx_ts, ltx_n = LTXConditionPipeline.get_timesteps(None, sch.sigmas, sch.timesteps, n, s)
            assert ours.num_steps == wan_n == ltx_n == len(wan_ts), (n, s)
            np.testing.assert_allclose(ours.model_timesteps(), wan_ts.numpy(), rtol=F32)
            np.testing.assert_allclose(ours.t, sig.numpy(), atol=F32)  # LTX cuts the sigmas (terminal included)
            assert torch_equal(ltx_ts, wan_ts)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


# -- ComfyUI, recorded -------------------------------------------------------------------------------------------


def _comfyui_simple(alpha: float, table_size: int = 1000):
    """ComfyUI's "simple" scheduler on ModelSamplingDiscreteFlow, written from its code (tests/data/README.md):
    table[k] = shift((k + 1) / 1000) computed in float32 (torch), sigs[x] = table[-(1 + int(x * 1000 / n))], then 0."""

    def make(n: int) -> Schedule:
        k = np.arange(1, table_size + 1, dtype=np.float32) / np.float32(table_size)
        a = np.float32(alpha)
        table = ((a * k) / (np.float32(1) + (a - np.float32(1)) * k)).astype(np.float64)
        sigs = [table[-(1 + int(x * table_size / n))] for x in range(n)]
        return Schedule(np.append(sigs, 0.0), name="comfyui_simple", params={"alpha": alpha})

    return make


def test_comfyui_denoise_rule_on_the_recorded_simple_scheduler():
    """KSampler / BasicScheduler denoise (ComfyUI @ a125cd8, shift 3): the tail of the int(steps / denoise)-step
    schedule; the base is ComfyUI's simple-scheduler rule written out."""
    cases = [c for c in _load("comfyui", "denoise.json")["cases"] if c["scheduler"] == "simple"]
    assert len(cases) == 9
    for c in cases:
        ours = partial(_comfyui_simple(3.0), c["steps"], c["denoise"], convention="comfyui")
        assert ours.num_steps == c["steps"]
        np.testing.assert_array_equal(ours.t, np.array(c["ksampler_euler"]))  # float32 table values, exactly
        np.testing.assert_array_equal(ours.t, np.array(c["basic_scheduler"]))
        total = c["steps"] if c["denoise"] > 0.9999 else c["int_steps_over_denoise"]
        assert ours.params["base_steps"] == total and ours.params["begin_index"] == total - c["steps"]


def test_comfyui_convention_on_comfyuis_scheduler_tables_matches_every_recorded_case():
    """The spec comfyui:scheduler=NAME,shift=3 (flowsched.schedules.comfyui: ComfyUI's calculate_sigmas) as the
    base: KSampler's and BasicScheduler's sigmas for every recorded scheduler, steps and denoise (ComfyUI computes
    in float32; the tables are compared as values)."""
    cases = _load("comfyui", "denoise.json")["cases"]
    assert {c["scheduler"] for c in cases} == {"simple", "normal", "beta"}
    for c in cases:
        spec = f"comfyui:scheduler={c['scheduler']},shift=3"
        ours = partial(spec, c["steps"], c["denoise"], convention="comfyui")
        np.testing.assert_allclose(ours.t, np.array(c["ksampler_euler"]), atol=F32, rtol=0, err_msg=str(c))
        np.testing.assert_allclose(ours.t, np.array(c["basic_scheduler"]), atol=F32, rtol=0, err_msg=str(c))
        assert ours.num_steps == c["steps"] and ours.params["base_steps"] == int(
            c["steps"] if c["denoise"] > 0.9999 else c["int_steps_over_denoise"]
        )


def test_comfyui_convention_takes_the_tail_of_any_comfyui_table():
    """ddim_uniform returns N + 2 values at N = 7, 28, 30; ComfyUI still keeps the last steps + 1."""
    for steps, denoise in ((7, 1.0), (14, 0.5), (10, 0.36)):
        total = steps if denoise > 0.9999 else int(steps / denoise)
        table = schedules.comfyui("ddim_uniform", total, alpha=3.0)
        ours = partial("comfyui:scheduler=ddim_uniform,shift=3", steps, denoise, convention="comfyui")
        np.testing.assert_array_equal(ours.t, table.t[-(steps + 1) :])
        assert ours.num_steps == steps


# -- DiffSynth-Studio and FramePack, recorded ---------------------------------------------------------------------


def test_diffsynth_rule_on_the_recorded_grid():
    """DiffSynth-Studio @ fed7b18 FlowMatchScheduler (templates "Wan" and "FLUX.1"), 96 cases. The Wan template is
    the spec ``shifted:alpha=a``; FLUX.1's grid ends at sigma_min = 0.003/1.002 before the shift (for shift 3 that
    is diffusers' double-shifted default grid)."""
    cases = _load("diffsynth", "flow_match.json")["cases"]
    assert len(cases) == 96
    for c in cases:
        n, s, a = c["num_inference_steps"], c["denoising_strength"], float(c["shift"])
        if c["template"] == "Wan":
            spec = f"shifted:alpha={a}"
        elif a == 3.0:
            spec = "diffusers_default:alpha=3,double_shift=true"
        else:
            def spec(k, a=a):
                return Schedule(np.append(_shift(np.linspace(1, 0.003 / 1.002, k), a), 0.0))
        ours = partial(spec, n, s, convention="diffsynth", alpha=a)
        assert ours.num_steps == n
        np.testing.assert_allclose(ours.t[:-1], np.array(c["sigmas"]), atol=F32, err_msg=str(c))
        assert ours.t[-1] == 0.0


def test_framepack_rule_on_the_recorded_grid():
    """FramePack @ 97fe5db sample_hunyuan: strength * flux_time_shift(linspace(1, 0, N + 1), mu), mu = ln(shift) or
    the capped token line min(flux_mu(L), ln 7)."""
    data = _load("framepack", "sigmas.json")
    checked = 0
    for c in data["sample_hunyuan_cases"]:
        if not c["initial_latent_given"]:
            continue  # FramePack applies strength only with an initial latent
        mu = math.log(c["shift"]) if c["shift"] is not None else min(schedules.flux_mu(c["seq_length"]), math.log(7))
        ours = partial(f"shifted:alpha={math.exp(mu)!r}", c["num_inference_steps"], c["strength"],
                       convention="framepack")
        np.testing.assert_allclose(ours.t, np.array(c["sigmas"]), atol=F32, err_msg=str(c))
        assert ours.t[0] == c["strength"]  # starts at exactly the strength
        checked += 1
    assert checked >= 40


# -- invariants ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", list(CONVENTIONS))
@pytest.mark.parametrize(
    "spec", ["shifted:alpha=3", "linear", "flux.1-dev", "diffusers_default:alpha=3,double_shift=true"]
)
def test_strength_one_is_the_base_and_params_are_recorded(convention, spec):
    base = from_spec(spec, num_steps=12)
    # the diffsynth rule re-applies the base's shift: flux.1-dev at 1024x1024 is mu = 1.15, alpha = e^1.15
    alpha = {"shifted:alpha=3": 3.0, "linear": 1.0, "flux.1-dev": math.exp(1.15)}.get(spec, 3.0)
    extra = {"alpha": alpha} if convention == "diffsynth" else {}
    full = partial(spec, 12, 1.0, convention=convention, **extra)
    np.testing.assert_allclose(full.t, base.t, rtol=0, atol=1e-12)
    cut = partial(spec, 12, 0.4, convention=convention, **extra)
    p = cut.params
    assert p["convention"] == convention and p["strength"] == 0.4 and p["base"] == base.name
    assert p["num_steps"] == cut.num_steps and 0 <= p["begin_index"] <= p["base_steps"]
    assert cut.name == "partial" and cut.t[-1] == 0 and 0 < cut.t[0] < 1
    assert Schedule.from_json(cut.to_json()) == cut
    if convention in ("diffusers", "diffusers-floor", "comfyui"):  # a tail of the base at base_steps steps
        tail = from_spec(spec, num_steps=p["base_steps"]).t[p["begin_index"] :]
        np.testing.assert_array_equal(cut.t, tail)


def test_every_convention_keeps_the_double_shift_flag_of_its_base():
    # framepack scales the double-shifted grid: its spacing near 0 is still the base's, so it is still warned about
    spec = "diffusers_default:alpha=3,double_shift=true"
    for convention in CONVENTIONS:
        alpha = 3.0 if convention == "diffsynth" else None
        assert partial(spec, 10, 0.5, convention=convention, alpha=alpha).params["double_shift"] is True


def test_model_timesteps_of_the_base_are_kept_for_the_tail():
    base = from_spec("cogview4:image_seq_len=4096", num_steps=10)  # the unshifted integer grid CogView4 feeds
    cut = partial("cogview4:image_seq_len=4096", 10, 0.5)
    np.testing.assert_array_equal(cut.model_timesteps(), base.model_timesteps()[5:])
    assert partial("cogview4:image_seq_len=4096", 10, 0.5, convention="framepack").timesteps is None


def test_a_fixed_schedule_and_a_callable_base():
    s = schedules.shifted(10, 3.0)
    assert partial(s, 10, 0.5) == partial("shifted:alpha=3", 10, 0.5)
    assert partial(lambda n: schedules.shifted(n, 3.0), 10, 0.5, convention="comfyui") == partial(
        "shifted:alpha=3", 10, 0.5, convention="comfyui"
    )
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        partial(s, 10, 0.5, convention="comfyui")  # needs the base at 20 steps
    assert partial(s, 10, 1.0, convention="comfyui") == partial("shifted:alpha=3", 10, 1.0, convention="comfyui")


def test_import_direction():
    """strength sits above spec and imports numpy only; schedules never imports it."""
    code = "import sys, flowsched.schedules; print('flowsched.strength' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    code = "import sys; from flowsched.strength import partial; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    assert not hasattr(schedules, "partial")


def test_diffsynth_takes_the_shift_as_an_argument_not_from_the_base_params():
    """The rule needs the base's shift; it is given, never read from the base's params."""
    base = schedules.shifted(10, 3.0)
    relabelled = Schedule(base.t, params={"alpha": 7.0})  # params that say another shift
    np.testing.assert_array_equal(partial(relabelled, 10, 0.5, convention="diffsynth", alpha=3.0).t,
                                  partial(base, 10, 0.5, convention="diffsynth", alpha=3.0).t)
    # DiffSynth's Wan template at strength s: linspace(s, 0, N + 1)[:-1], shifted (independent of flowsched)
    got = partial(base, 10, 0.5, convention="diffsynth", alpha=3.0)
    np.testing.assert_allclose(got.t[:-1], _shift(np.linspace(0.5, 0, 11)[:-1], 3.0), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="shifted by alpha=1 .*is not one"):
        partial(base, 10, 0.5, convention="diffsynth")  # without alpha the base must be an unshifted grid
    with pytest.raises(ValueError, match="alpha=3 only applies to convention 'diffsynth'"):
        partial(base, 10, 0.5, alpha=3.0)


def test_diagnostics_warn_about_the_strength_cliff():
    cut = partial("shifted:alpha=3", 20, 0.5)
    assert cut.t[0] == pytest.approx(0.75)  # shift 3 maps 0.5 to 0.75
    (w,) = [w for w in diagnose(cut) if w.startswith("strength")]
    assert "the shift alpha=3 maps t=0.5 to 0.750" in w and "framepack" in w  # what this schedule's shift does
    assert not [w for w in diagnose(partial("shifted:alpha=3", 20, 0.5, convention="framepack")) if "strength" in w]
    assert not [w for w in diagnose(partial("linear", 20, 0.5)) if w.startswith("strength")]


# -- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"strength": 0.0}, ValueError, "strength must lie in (0, 1]"),
        ({"strength": 1.5}, ValueError, "strength must lie in (0, 1]"),
        ({"strength": float("nan")}, ValueError, "strength must be a finite number"),
        ({"strength": "0.5"}, TypeError, "strength must be a real number"),
        ({"convention": "comfy"}, ValueError, "Did you mean 'comfyui'"),
        ({"convention": "a1111"}, ValueError, "convention must be one of"),
        ({"num_steps": 0}, ValueError, "num_steps must be a positive integer"),
        ({"spec": 3.0}, TypeError, "spec must be a schedule spec string"),
        ({"spec": "shifted:alpha=3,steps=7"}, ValueError, "pin its own steps"),
        ({"spec": "karras", "convention": "diffsynth"}, ValueError, "is not one"),
        ({"spec": "ltx:seq_len=4096", "convention": "diffsynth"}, ValueError, "is not one"),
        ({"spec": lambda n: [1, 0]}, TypeError, "must return a flowsched Schedule"),
        ({"spec": "linear", "num_steps": 3, "strength": 0.2, "convention": "diffusers-floor"}, ValueError,
         "keeps no step"),
    ],
)
def test_bad_input(kwargs, exc, words):
    args = {"spec": "shifted:alpha=3", "num_steps": 10, "strength": 0.5, **kwargs}
    with pytest.raises(exc) as info:
        partial(args.pop("spec"), args.pop("num_steps"), args.pop("strength"), **args)
    assert words in str(info.value)


def test_an_inverted_base_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="inverted"):
            partial(schedules.invert(schedules.linear(4)), 4, 0.5)
