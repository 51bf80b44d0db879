"""flowsched.integrations.diffusers: FlowschedScheduler walking flowsched schedules, and inside real pipelines.

Independent references: diffusers' own schedulers (installed, pinned in requirements-dev.txt), the Euler and
forward-process formulas written out here, and real diffusers pipelines (Flux, Wan, Mochi, CogView4) assembled
from tiny randomly initialised components (nothing is downloaded; prompt embeddings are passed in). The
stand-in behaviour of the "diffusers" mode is tested against diffusers in test_diffusers_standin.py.

Pipelines: what the adapter owns (its sigmas, the timesteps it feeds, each step's arithmetic) is compared bit for
bit, each step replayed on the model outputs recorded from diffusers' own run. Whole-pipeline latents are compared
with a tolerance: they come out of many transformer forwards, whose CPU matmuls may take another code path when a
tensor sits at another memory alignment or runs on other threads (reloaded weights differ by 2.4e-7 on some
machines), so bit equality of whole pipelines is not something the adapter can promise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from _peers import StepLog, diffusers_has
from flowsched import Schedule, schedules
from flowsched.integrations.diffusers import FlowschedScheduler, TimestepNotFoundError, with_schedule
from flowsched.spec import from_spec

#: Features that arrived after the oldest diffusers these tests also run against (make test-diffusers-old).
FME_ARGS = FlowMatchEulerDiscreteScheduler.__init__
needs_stochastic = pytest.mark.skipif(not diffusers_has(FME_ARGS, "stochastic_sampling"),
                                      reason="stochastic_sampling arrived in diffusers 0.34")
needs_time_shift_type = pytest.mark.skipif(not diffusers_has(FME_ARGS, "time_shift_type"),
                                           reason="time_shift_type arrived in diffusers 0.33")


def needs_pipeline(name: str) -> None:
    """Skip the calling test when the installed diffusers has no pipeline ``name``."""
    import diffusers

    if not hasattr(diffusers, name):
        pytest.skip(f"diffusers {diffusers.__version__} has no {name}")


#: Whole-pipeline latents (values of order 1) after a handful of tiny-transformer forwards: see the module docstring.
PIPELINE_ATOL = 1e-5


def _f32(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32)


# -- protocol and formulas ----------------------------------------------------------------------------------------


def test_set_timesteps_shapes_and_model_timesteps():
    sch = FlowschedScheduler("shifted:alpha=3")
    sch.set_timesteps(7)
    t = np.linspace(1.0, 0.0, 8)
    expected = 3 * t / (1 + 2 * t)  # SD3 shift written out
    assert sch.sigmas.dtype == torch.float32 and sch.sigmas.shape == (8,)
    np.testing.assert_allclose(sch.sigmas.numpy(), expected, atol=1e-7)
    assert torch.equal(sch.timesteps, sch.sigmas[:-1] * 1000)
    assert sch.timesteps.shape == (7,) and sch.num_inference_steps == 7
    assert sch.order == 1 and sch.init_noise_sigma == 1.0 and len(sch) == 1000
    assert isinstance(sch.schedule, Schedule) and sch.schedule.num_steps == 7


def test_step_is_euler_and_scale_noise_is_the_forward_process():
    sch = FlowschedScheduler(Schedule([1.0, 0.7, 0.45, 0.2, 0.0]))
    sch.set_timesteps(4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, generator=g)
    v = torch.randn(2, 3, 5, generator=g)
    sigmas = [1.0, 0.7, 0.45, 0.2, 0.0]
    for i, t in enumerate(sch.timesteps):
        expected = x.double() + (sigmas[i + 1] - sigmas[i]) * v.double()
        x = sch.step(v, t, x).prev_sample
        torch.testing.assert_close(x.double(), expected, atol=1e-6, rtol=0)
    noise = torch.randn(2, 3, 5, generator=g)
    x0 = torch.randn(2, 3, 5, generator=g)
    sch.set_timesteps(4)
    got = sch.scale_noise(x0, sch.timesteps[1:2].repeat(2), noise)  # looked up from the timestep
    torch.testing.assert_close(got, 0.7 * noise + 0.3 * x0)
    sch.set_begin_index(2)  # img2img: pipelines set the start, the timestep is not looked up
    got = sch.scale_noise(x0, sch.timesteps[2:3], noise)
    torch.testing.assert_close(got, 0.45 * noise + 0.55 * x0)


def test_step_returns_the_model_dtype_with_diffusers_arithmetic():
    ours = FlowschedScheduler("linear")
    ours.set_timesteps(3)
    ref = FlowMatchEulerDiscreteScheduler()
    ref.set_timesteps(sigmas=ours.sigmas[:-1].numpy())
    x = torch.full((4,), 0.5, dtype=torch.bfloat16)
    v = torch.linspace(-1, 1, 4, dtype=torch.bfloat16)
    out = ours.step(v, ours.timesteps[0], x, return_dict=False)[0]
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, ref.step(v, ref.timesteps[0], x, return_dict=False)[0])
    torch.testing.assert_close(out.float(), 0.5 - v.float() / 3, atol=4e-3, rtol=0)  # bf16 resolution


def test_denoising_loop_is_bitwise_diffusers_given_the_same_sigmas():
    """With shift 1, diffusers uses custom sigmas verbatim: both schedulers then walk identical float32 values,
    and every step, timestep and scale_noise must agree bit for bit."""
    ours = FlowschedScheduler("flux:image_seq_len=1024")
    ours.set_timesteps(6)
    ref = FlowMatchEulerDiscreteScheduler(shift=1.0)
    ref.set_timesteps(sigmas=ours.sigmas[:-1].numpy())
    assert torch.equal(ours.sigmas, ref.sigmas) and torch.equal(ours.timesteps, ref.timesteps)
    g = torch.Generator().manual_seed(3)
    x_ours = x_ref = torch.randn(1, 4, 8, 8, generator=g)
    for module in (ours, ref):
        module.set_begin_index(0)
    for t in ours.timesteps:
        v = torch.sin(3 * x_ours) + t / 1000  # any velocity, same for both
        x_ours = ours.step(v, t, x_ours, return_dict=False)[0]
        x_ref = ref.step(v, t, x_ref, return_dict=False)[0]
        assert torch.equal(x_ours, x_ref)
    noise = torch.randn(1, 4, 8, 8, generator=g)
    for module in (ours, ref):
        module.set_timesteps(sigmas=ours.sigmas[:-1].numpy()) if module is ref else module.set_timesteps(6)
    t2 = ours.timesteps[2:3]
    assert torch.equal(ours.scale_noise(x_ours, t2, noise), ref.scale_noise(x_ours, t2, noise))


def test_schedule_mode_uses_pipeline_arguments_only_for_the_step_count():
    sch = FlowschedScheduler("shifted:alpha=5")
    assert sch.config.schedule == "shifted:alpha=5"
    sch.set_timesteps(5)
    plain = sch.sigmas.clone()
    with pytest.warns(UserWarning, match="render size is ignored"):
        sch.set_timesteps(sigmas=np.linspace(1.0, 0.2, 5), mu=2.3)  # what FluxPipeline passes
    assert torch.equal(sch.sigmas, plain)
    sch.set_timesteps(timesteps=[1000.0, 800.0, 600.0, 400.0, 200.0])
    assert torch.equal(sch.sigmas, plain)


def test_fixed_schedules_are_resampled_and_specs_rebuilt_at_the_requested_step_count():
    fixed = schedules.shifted(10, 3.0)
    sch = FlowschedScheduler(fixed)
    sch.set_timesteps(10)
    assert torch.equal(sch.sigmas, _f32(fixed.t))
    sch.set_timesteps(25)
    assert sch.sigmas.shape == (26,)
    assert sch.sigmas[0] == 1.0 and sch.sigmas[-1] == 0.0
    assert float(sch.sigmas[-2]) == pytest.approx(float(fixed.t[-2]), rel=1e-6)  # last evaluation point kept
    # log-linear in between: log t is linear in the normalised index between the source points
    src = fixed.t[:-1]
    pos = np.linspace(0, 1, 25)
    expected = np.exp(np.interp(pos, np.linspace(0, 1, src.size), np.log(src)))
    np.testing.assert_allclose(sch.sigmas[:-1].numpy(), expected, rtol=1e-6)
    # a spec without steps is rebuilt by its family at N: the exact shifted grid, not an interpolation
    spec = FlowschedScheduler("shifted:alpha=3")
    spec.set_timesteps(25)
    t = np.linspace(1, 0, 26)
    np.testing.assert_allclose(spec.sigmas.numpy(), 3 * t / (1 + 2 * t), atol=1e-7)


def test_preset_spec_applies_the_model_rule():
    sch = FlowschedScheduler("opensora-2.0-768px")
    sch.set_timesteps(30)
    # Open-Sora 2.0 768px: 576x1024, 129 frames -> 2304 tokens per latent frame, 33 latent frames;
    # alpha = line((256,1),(4096,3))(2304) * sqrt(33)
    alpha = (1 + 2 * (2304 - 256) / (4096 - 256)) * np.sqrt(33)
    t = np.linspace(1, 0, 31)
    np.testing.assert_allclose(sch.sigmas.numpy(), alpha * t / (1 + (alpha - 1) * t), atol=1e-7)


def test_inverted_sigmas_for_mochi_match_diffusers_bitwise():
    t = schedules.linear_quadratic(8).t  # Mochi's schedule; its pipeline runs diffusers with invert_sigmas=True
    ours = FlowschedScheduler(Schedule(t), invert_sigmas=True)
    ref = FlowMatchEulerDiscreteScheduler(invert_sigmas=True)
    ours.set_timesteps(8)
    ref.set_timesteps(sigmas=_f32(t[:-1]).numpy())
    assert torch.equal(ours.sigmas, ref.sigmas) and torch.equal(ours.timesteps, ref.timesteps)
    assert ours.sigmas[0] == 0.0 and ours.sigmas[-1] == 1.0  # 1 - t: increasing to a terminal 1
    # a config taken from Mochi's scheduler carries invert_sigmas over
    again = FlowschedScheduler.from_config(ref.config, schedule="mochi")
    assert again.config["invert_sigmas"] is True


# -- config round trip --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: FlowschedScheduler("shifted:alpha=3"),
        lambda: FlowschedScheduler(schedule=schedules.opensora(20, 2304, 33)),
        lambda: FlowschedScheduler([1.0, 0.8, 0.5, 0.0], num_train_timesteps=1),
    ],
)
def test_config_round_trips(tmp_path, make):
    sch = make()
    sch.save_config(tmp_path)
    saved = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert saved["_class_name"] == "FlowschedScheduler"
    for again in (FlowschedScheduler.from_pretrained(tmp_path), FlowschedScheduler.from_config(sch.config)):
        for s in (sch, again):
            s.set_timesteps(9)
        assert torch.equal(again.sigmas, sch.sigmas) and torch.equal(again.timesteps, sch.timesteps)
        assert again.config["schedule"] == sch.config["schedule"]


def test_json_file_is_stored_by_value(tmp_path):
    path = tmp_path / "mine.json"
    schedules.shifted(6, 2.0).to_json(path)
    sch = FlowschedScheduler(str(path))
    path.unlink()  # the config does not depend on the file any more
    again = FlowschedScheduler.from_config(sch.config)
    again.set_timesteps(6)
    torch.testing.assert_close(again.sigmas, _f32(schedules.shifted(6, 2.0).t))


def test_from_config_of_a_diffusers_scheduler_keeps_pipeline_keys():
    ref = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05)
    sch = FlowschedScheduler.from_config(ref.config, schedule="shifted:alpha=4")
    assert sch.config["base_shift"] == 0.95 and sch.config["max_shift"] == 2.05
    with pytest.warns(UserWarning, match="render size is ignored"):
        sch.set_timesteps(4, mu=1.0)
    t = np.linspace(1, 0, 5)
    np.testing.assert_allclose(sch.sigmas.numpy(), 4 * t / (1 + 3 * t), atol=1e-7)


def test_retrieve_timesteps_introspection_accepts_sigmas_and_timesteps():
    import inspect

    params = inspect.signature(FlowschedScheduler.set_timesteps).parameters
    assert list(params)[1:] == ["num_inference_steps", "device", "sigmas", "mu", "timesteps"]


# -- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"schedule": "shiftd:alpha=3"}, ValueError, "Did you mean 'shifted'"),
        ({"schedule": [1.0, 0.5, 0.7, 0.0]}, ValueError, "monotone"),
        ({"schedule": 3}, TypeError, "schedule must be"),
        ({"shfit": 3.0}, TypeError, "did you mean 'shift'"),
        ({"use_karras_sigmas": True, "use_beta_sigmas": True}, ValueError, "Only one of"),  # diffusers' check
        ({"schedule": "linear", "num_train_timesteps": 0}, ValueError, "num_train_timesteps"),
        ({"noise_seed": 3}, ValueError, "set stochastic_sampling=True"),
        pytest.param({"stochastic_sampling": True, "noise_seed": -1}, ValueError,
                     r"noise_seed must be an integer in \[0, 2\*\*64", marks=needs_stochastic),
        pytest.param({"stochastic_sampling": True, "noise_seed": True}, TypeError,
                     r"noise_seed must be an integer in \[0, 2\*\*64", marks=needs_stochastic),
        ({"shift": 0}, ValueError, "shift must be a finite number > 0"),
        pytest.param({"time_shift_type": "log"}, ValueError, "time_shift_type", marks=needs_time_shift_type),
        ({"shift_terminal": 1.5}, ValueError, "shift_terminal"),
        ({"use_dynamic_shifting": 1}, TypeError, "use_dynamic_shifting must be True or False"),
    ],
)
def test_bad_construction(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        FlowschedScheduler(**kwargs)


def test_bad_calls():
    sch = FlowschedScheduler("linear")
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="num_inference_steps must be given"):
        sch.set_timesteps()
    with pytest.raises(ValueError, match="sigmas holds 3 values but num_inference_steps=4"):
        sch.set_timesteps(4, sigmas=[1.0, 0.6, 0.3])
    with pytest.raises(ValueError, match="num_inference_steps must be a positive integer"):
        sch.set_timesteps(0)
    sch.set_timesteps(2)
    with pytest.raises(ValueError, match="integer"):
        sch.step(x, 0, x)
    with pytest.raises(TimestepNotFoundError, match="not one of this scheduler's timesteps"):
        sch.step(x, 731.0, x)
    with pytest.raises(ValueError, match=r"per_token_timesteps must have one timestep per token.*\[B, S, C\]"):
        sch.step(x, sch.timesteps[0], x, per_token_timesteps=torch.zeros(3))  # a 1-D sample has no tokens
    with pytest.raises(ValueError, match="noise is required"):
        sch.scale_noise(x, sch.timesteps[:1])
    with pytest.raises(ValueError, match="begin_index"):
        sch.set_begin_index(-1)
    for t in sch.timesteps:
        sch.step(x, t, x)
    with pytest.raises(ValueError, match="all were taken"):
        sch.step(x, sch.timesteps[-1], x)
    mirror = FlowschedScheduler(use_dynamic_shifting=True)
    with pytest.raises(ValueError, match="`mu`"):  # diffusers' own check (its wording varies by release)
        mirror.set_timesteps(4)
    if diffusers_has(FlowMatchEulerDiscreteScheduler.__init__, "time_shift_type"):
        with pytest.raises(ValueError, match="mu must be > 0"):
            FlowschedScheduler(use_dynamic_shifting=True, time_shift_type="linear").set_timesteps(4, mu=-1.0)
    with pytest.raises(ValueError, match="sigmas must be finite"):
        FlowschedScheduler().set_timesteps(sigmas=[1.0, float("nan")])


def test_import_costs_and_missing_diffusers():
    code = "import sys, flowsched, flowsched.integrations; print('diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    code = "import sys; sys.modules['diffusers'] = None; import flowsched.integrations.diffusers"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install 'flowsched[diffusers]'" in out.stderr


# -- real pipelines -----------------------------------------------------------------------------------------------


def _record_timesteps(transformer, seen: list[float] | None = None) -> list[float]:
    """The timestep of every transformer call (what the model was actually fed), in call order."""
    seen = [] if seen is None else seen

    def record(module, args, kwargs):
        seen.append(float(kwargs["timestep"].reshape(-1)[0]))

    transformer.register_forward_pre_hook(record, with_kwargs=True)
    return seen


class Run:
    """One pipeline call: its latents, the timesteps the transformer was fed, and the scheduler's StepLog."""

    def __init__(self, pipe, seen: list[float], size: int = 16, **call):
        self.scheduler = pipe.scheduler
        self.log = StepLog(pipe.scheduler)
        pipe.set_progress_bar_config(disable=True)
        seen.clear()
        out = pipe(**call, height=size, width=size, output_type="latent", generator=torch.Generator().manual_seed(0))
        self.latents = out.images if hasattr(out, "images") else out.frames
        self.seen = list(seen)


def assert_adapter_matches(ours: Run, ref: Run, *, same_latents: bool = True) -> None:
    """The adapter's part bit for bit: sigmas, fed timesteps, and each step replayed on diffusers' recorded
    model outputs and samples; the whole pipeline within PIPELINE_ATOL (module docstring)."""
    assert torch.equal(ours.scheduler.sigmas, ref.scheduler.sigmas)
    assert torch.equal(ours.scheduler.timesteps, ref.scheduler.timesteps)
    assert ours.seen == ref.seen and len(ours.seen) > 0
    replayed = ref.log.replay(FlowschedScheduler.from_config(ours.scheduler.config))
    for got, (_, _, _, want) in zip(replayed, ref.log.steps, strict=True):
        assert torch.equal(got, want)
    if same_latents:
        torch.testing.assert_close(ours.latents, ref.latents, atol=PIPELINE_ATOL, rtol=0)


@pytest.fixture(scope="module")
def flux():
    """A FluxPipeline from tiny random components: 16x16 pixels -> 64 tokens of 4 channels, 1+1 blocks. It passes
    sigmas = linspace(1, 1/N, N) and mu from the token count."""
    from diffusers import AutoencoderKL, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5,
    )
    g = torch.Generator().manual_seed(1)
    embeds = {
        "prompt_embeds": torch.randn(1, 8, 32, generator=g),
        "pooled_prompt_embeds": torch.randn(1, 32, generator=g),
    }
    seen = _record_timesteps(transformer)
    none = dict.fromkeys(("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"))

    def make(scheduler):
        return FluxPipeline(scheduler=scheduler, vae=vae, transformer=transformer, **none)

    def run(scheduler, steps=4, pipe=None):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*render size is ignored")
            return Run(make(scheduler) if pipe is None else pipe, seen, **embeds, num_inference_steps=steps,
                       guidance_scale=3.5)

    run.make = make
    run.none = none
    run.seen = seen
    return run


def test_flux_pipeline_diffusers_mode(flux):
    """Swapped in with from_config, the adapter feeds the same timesteps and takes the same steps as diffusers."""
    ref = flux(FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.7, max_shift=1.3))
    ours = flux(FlowschedScheduler.from_config(ref.scheduler.config))
    assert ours.log.calls[-1]["mu"] == ref.log.calls[-1]["mu"]  # the pipeline read the same config keys
    assert_adapter_matches(ours, ref)


def test_flux_pipeline_runs_flowsched_schedules(flux):
    ref = flux(FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True))
    for spec, steps in (("opensora-2.0-256px", 5), ("shifted:alpha=3,steps=3", 6), ("karras:t_min=0.01", 4)):
        run = flux(FlowschedScheduler(spec), steps=steps)
        assert run.latents.shape == ref.latents.shape and torch.isfinite(run.latents).all()
        expected = from_spec(spec, num_steps=steps)
        if expected.num_steps != steps:  # the spec pins 3 steps: resampled to what the pipeline asked for
            expected = schedules.loglinear_interp(expected, steps)
        # the model saw exactly the flowsched schedule (Flux feeds timestep / 1000 = t)
        np.testing.assert_allclose(run.seen, _f32(expected.t[:-1]).numpy(), atol=1e-6)
        assert not torch.allclose(run.latents, ref.latents)  # a different schedule gives a different sample


def test_pipeline_save_and_load_keeps_the_flowsched_scheduler(flux, tmp_path):
    """save_pretrained records the adapter's module and config; from_pretrained rebuilds it. The reloaded weights
    sit at other memory alignments, so the latents are compared with PIPELINE_ATOL and the scheduler bit for bit."""
    from diffusers import FluxPipeline

    pipe = flux.make(FlowschedScheduler("shifted:alpha=3"))
    pipe.save_pretrained(tmp_path)
    loaded = FluxPipeline.from_pretrained(tmp_path, **flux.none)
    assert type(loaded.scheduler) is FlowschedScheduler
    assert loaded.scheduler.config["schedule"] == "shifted:alpha=3"
    _record_timesteps(loaded.transformer, flux.seen)
    a, b = flux(None, pipe=pipe), flux(None, pipe=loaded)
    assert torch.equal(b.scheduler.sigmas, a.scheduler.sigmas) and b.seen == a.seen
    assert b.scheduler.sigmas[1].item() == pytest.approx(3 * 0.75 / (1 + 2 * 0.75))
    for got, (_, _, _, want) in zip(a.log.replay(loaded.scheduler), a.log.steps, strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(b.latents, a.latents, atol=PIPELINE_ATOL, rtol=0)


def _tiny_wan():
    """A WanTransformer3DModel small enough for CPU tests: 5 frames of 16x16 -> latent [1, 4, 2, 2, 2]."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        text_dim=16,
        freq_dim=16,
        ffn_dim=16,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )


@pytest.fixture(scope="module")
def wan():
    """A WanPipeline (text-to-video) with a tiny random transformer. It calls set_timesteps(N) with no sigmas or
    mu, set_begin_index(0), feeds the model the scheduler's timesteps and runs classifier-free guidance."""
    needs_pipeline("WanPipeline")
    from diffusers import WanPipeline

    transformer = _tiny_wan()
    prompt = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(1))
    seen = _record_timesteps(transformer)

    def run(scheduler, steps=4):
        pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, scheduler=scheduler, transformer=transformer)
        call = {"num_frames": 5, "num_inference_steps": steps, "guidance_scale": 2.0}
        return Run(pipe, seen, prompt_embeds=prompt, negative_prompt_embeds=torch.zeros_like(prompt), **call)

    return run


def test_wan_pipeline_diffusers_mode_and_presets(wan):
    ref = wan(FlowMatchEulerDiscreteScheduler(shift=5.0))  # diffusers' default grid (double shift)
    ours = wan(FlowschedScheduler.from_config(ref.scheduler.config))
    assert ours.latents.shape == (1, 4, 2, 2, 2) and len(ours.seen) == 2 * 4
    assert_adapter_matches(ours, ref)
    for spec in ("wan2.1-t2v-480p", "mochi"):  # Wan's own grid with shift 5; Mochi's linear-quadratic rule
        run = wan(FlowschedScheduler(spec), steps=6)
        assert torch.isfinite(run.latents).all() and not torch.allclose(run.latents, ref.latents)
        expected = from_spec(spec, num_steps=6)
        # two model calls per step (classifier-free guidance), each fed the rule's model timesteps (Wan: int64
        # truncated t * 1000; Mochi: (1 - t) * 1000, its model's convention)
        fed = expected.model_timesteps().astype(np.float32)
        np.testing.assert_allclose(run.seen, np.repeat(fed, 2), rtol=1e-6)


@pytest.mark.skipif(not diffusers_has(UniPCMultistepScheduler.set_timesteps, "sigmas"),
                    reason="UniPC takes given sigmas from diffusers 0.37 on")
def test_wan_pipeline_keeps_its_unipc_solver_on_a_flowsched_schedule():
    """Wan's diffusers checkpoints ship UniPCMultistepScheduler with flow sigmas. with_schedule keeps UniPC and hands
    it the schedule's sigmas: the run equals diffusers' UniPC given those sigmas directly (set_timesteps(sigmas=...),
    shift 1), bit for bit in the sigmas, the timesteps fed and each multistep update; Euler steps on the same
    schedule give another sample."""
    from diffusers import WanPipeline

    transformer = _tiny_wan()
    seen = _record_timesteps(transformer)
    prompt = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(1))

    def run(scheduler):
        pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, scheduler=scheduler, transformer=transformer)
        call = {"num_frames": 5, "num_inference_steps": 6, "guidance_scale": 2.0}
        return Run(pipe, seen, prompt_embeds=prompt, negative_prompt_embeds=torch.zeros_like(prompt), **call)

    flow = {"prediction_type": "flow_prediction", "use_flow_sigmas": True}
    spec = "shifted:alpha=3"
    ours = run(with_schedule(UniPCMultistepScheduler(**flow, flow_shift=5.0), spec))
    sigmas = from_spec(spec, num_steps=6).t[:-1]

    def direct():  # diffusers' UniPC, given the sigmas whatever the pipeline asks for
        sch = UniPCMultistepScheduler(**flow, flow_shift=1.0)
        sch.set_timesteps = lambda n=None, device=None: UniPCMultistepScheduler.set_timesteps(
            sch, device=device, sigmas=sigmas)
        return sch

    ref = run(direct())
    assert torch.equal(ours.scheduler.sigmas, ref.scheduler.sigmas)
    assert torch.equal(ours.scheduler.timesteps, ref.scheduler.timesteps)
    assert ours.seen == ref.seen and ours.seen[:2] == [999.0, 999.0]  # UniPC's 1 - 1e-6, truncated
    replay = direct()
    replay.set_timesteps(6)
    for begin in ours.log.begin:
        replay.set_begin_index(begin)
    for v, t, x, want in ours.log.steps:
        assert torch.equal(replay.step(v, t, x, return_dict=False)[0], want)
    torch.testing.assert_close(ours.latents, ref.latents, atol=PIPELINE_ATOL, rtol=0)
    euler = run(FlowschedScheduler(spec))
    assert not torch.allclose(euler.latents, ours.latents)  # the solver is UniPC's, not Euler steps


@pytest.mark.filterwarnings("ignore:In CPU autocast:UserWarning")
def test_mochi_pipeline_preset_with_mochis_config():
    """Mochi's pipeline passes its linear-quadratic sigmas to diffusers' scheduler with invert_sigmas=True. The
    flowsched 'mochi' preset, with the config taken from that scheduler, walks the same values."""
    from diffusers import MochiPipeline, MochiTransformer3DModel

    torch.manual_seed(0)
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        pooled_projection_dim=16,
        in_channels=4,
        text_embed_dim=16,
        time_embed_dim=4,
        max_sequence_length=16,
    )
    prompt = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(1))
    seen = _record_timesteps(transformer)

    def run(scheduler):
        pipe = MochiPipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None, transformer=transformer)
        mask = torch.ones(1, 6, dtype=torch.long)
        call = {"num_frames": 7, "num_inference_steps": 6, "guidance_scale": 1.0}
        return Run(pipe, seen, prompt_embeds=prompt, prompt_attention_mask=mask, **call)

    ref = run(FlowMatchEulerDiscreteScheduler(invert_sigmas=True))
    ours = run(FlowschedScheduler.from_config(ref.scheduler.config, schedule="mochi"))
    assert ours.latents.shape == (1, 4, 2, 2, 2) and len(ours.seen) == 6
    assert_adapter_matches(ours, ref)
    # the model was fed (1 - t) * 1000 for Mochi's t: 0 first (t = 1, pure noise)
    t = schedules.linear_quadratic(6).t
    np.testing.assert_allclose(ours.seen, (1 - t[:-1]) * 1000, atol=1e-3)


def test_cogview4_pipeline_feeds_its_unshifted_integer_timesteps():
    """CogView4 passes timesteps int(linspace(1000, 1, N)), sigmas = timesteps / 1000 and a linear mu; diffusers
    0.42.1 feeds the model the integer grid (1000, 667, 334, 1 for 4 steps) and steps on the shifted sigmas."""
    needs_pipeline("CogView4Pipeline")
    from diffusers import CogView4Pipeline, CogView4Transformer2DModel

    torch.manual_seed(0)
    transformer = CogView4Transformer2DModel(
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        text_embed_dim=16,
        time_embed_dim=8,
        condition_dim=4,
        sample_size=8,
        rope_axes_dim=(4, 4),
    )
    prompt = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(1))
    seen = _record_timesteps(transformer)

    def run(scheduler):
        pipe = CogView4Pipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer,
                                scheduler=scheduler)
        call = {"num_inference_steps": 4, "guidance_scale": 2.0}
        return Run(pipe, seen, size=32, prompt_embeds=prompt, negative_prompt_embeds=torch.zeros_like(prompt), **call)

    config = {"use_dynamic_shifting": True, "time_shift_type": "linear", "base_shift": 0.25, "max_shift": 0.75}
    ref = run(FlowMatchEulerDiscreteScheduler(**config))
    ours = run(FlowschedScheduler.from_config(ref.scheduler.config))
    assert ours.seen == [1000.0, 1000.0, 667.0, 667.0, 334.0, 334.0, 1.0, 1.0]  # cond and uncond per step
    assert_adapter_matches(ours, ref)
