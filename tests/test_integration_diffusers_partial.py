"""FlowschedScheduler with stochastic_sampling=True and in diffusers' image-to-image and video-to-video pipelines.

References: diffusers 0.42.1's FlowMatchEulerDiscreteScheduler (stochastic_sampling=True) given the same generator,
and real pipelines (FluxImg2ImgPipeline, StableDiffusion3Img2ImgPipeline, WanVideoToVideoPipeline) assembled from
tiny random components (nothing downloaded). As in test_integration_diffusers.py, what the adapter owns (sigmas, fed
timesteps, each step replayed on diffusers' recorded model outputs) is compared bit for bit and whole-pipeline
latents within PIPELINE_ATOL (CPU matmuls may take other code paths between runs).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from _peers import diffusers_at_least, diffusers_has
from flowsched.integrations.diffusers import FlowschedScheduler
from flowsched.noise import step_noise
from flowsched.sampling import stochastic_euler
from flowsched.strength import partial
from test_integration_diffusers import PIPELINE_ATOL, Run, _record_timesteps, _tiny_wan, needs_pipeline

#: diffusers' stochastic step draws its noise from the step's generator from 0.39 on (torch's global generator
#: before, from 0.34, when stochastic_sampling arrived).
needs_generator_noise = pytest.mark.skipif(not diffusers_at_least("0.39"),
                                           reason="the stochastic step honours the generator from diffusers 0.39 on")
needs_stochastic = pytest.mark.skipif(
    not diffusers_has(FlowMatchEulerDiscreteScheduler.__init__, "stochastic_sampling"),
    reason="stochastic_sampling arrived in diffusers 0.34",
)


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


# -- stochastic_sampling ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, call",
    [
        ({"shift": 3.0}, {"num_inference_steps": 8}),
        ({"use_dynamic_shifting": True}, {"num_inference_steps": 6, "mu": 1.15}),
        ({"shift": 5.0, "shift_terminal": 0.1}, {"num_inference_steps": 5}),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@needs_generator_noise
def test_stochastic_step_is_diffusers_given_the_same_generator(config, call, dtype):
    ref = FlowMatchEulerDiscreteScheduler(**config, stochastic_sampling=True)
    ours = FlowschedScheduler.from_config(ref.config)
    assert ours.config.stochastic_sampling is True and "noise_seed" not in ours.config
    for sch in (ref, ours):
        sch.set_timesteps(**call)
    assert torch.equal(ours.sigmas, ref.sigmas)
    g_ref, g_ours = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    x_ref = x_ours = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0)).to(dtype)
    for i, t in enumerate(ref.timesteps):
        v = (torch.sin(x_ref.float()) - 0.1 * i).to(dtype)  # any model output, the same for both
        x_ref = ref.step(v, t, x_ref, generator=g_ref).prev_sample
        x_ours = ours.step(v, t, x_ours, generator=g_ours).prev_sample
        assert x_ours.dtype == dtype and torch.equal(x_ours, x_ref)
    assert torch.equal(g_ours.get_state(), g_ref.get_state())  # the same draws, the last step's too


@pytest.fixture(scope="module")
def tiny_flux():
    """Tiny random Flux components (as the flux fixture of test_integration_diffusers.py) and a maker for the
    text-to-image and image-to-image pipelines."""
    from diffusers import AutoencoderKL, FluxImg2ImgPipeline, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=1,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5,
    )
    g = torch.Generator().manual_seed(1)
    embeds = {
        "prompt_embeds": torch.randn(1, 8, 32, generator=g),
        "pooled_prompt_embeds": torch.randn(1, 32, generator=g),
    }
    image = torch.rand(1, 3, 16, 16, generator=g)
    seen = _record_timesteps(transformer)
    none = dict.fromkeys(("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"))

    def run(scheduler, *, img2img=False, seed=None, steps=6, **call):
        cls = FluxImg2ImgPipeline if img2img else FluxPipeline
        pipe = cls(scheduler=scheduler, vae=vae, transformer=transformer, **none)
        if img2img:
            call["image"] = image
        if seed is not None:
            torch.manual_seed(seed)  # Flux calls step() without a generator: the step noise is torch's global one
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*render size is ignored")
            return Run(pipe, seen, **embeds, num_inference_steps=steps, guidance_scale=3.5, **call)

    return run


@needs_stochastic
def test_flux_pipeline_with_stochastic_sampling(tiny_flux):
    """The same pipeline call, the same global seed: the adapter draws the step noise diffusers draws."""
    ref = tiny_flux(FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, stochastic_sampling=True), seed=11)
    ours = tiny_flux(FlowschedScheduler.from_config(ref.scheduler.config), seed=11)
    assert torch.equal(ours.scheduler.sigmas, ref.scheduler.sigmas) and ours.seen == ref.seen
    torch.manual_seed(11)
    replayed = ref.log.replay(FlowschedScheduler.from_config(ref.scheduler.config))
    for got, (_, _, _, want) in zip(replayed, ref.log.steps, strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(ours.latents, ref.latents, atol=PIPELINE_ATOL, rtol=0)
    plain = tiny_flux(FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True), seed=11)
    assert not torch.allclose(plain.latents, ref.latents)  # the re-noising steps did something


@needs_stochastic
def test_noise_seed_is_portable_step_noise_and_equals_stochastic_euler():
    """With noise_seed the run's k-th step draws step_noise(seed, shape, k): the adapter's steps equal
    flowsched.sampling.stochastic_euler(seed=...) on the same float32 schedule values, bit for bit, whatever
    generator the pipeline passes; an image-to-image run starting at step 3 draws stream 1 + 0 first."""
    ours = FlowschedScheduler("shifted:alpha=3", stochastic_sampling=True, noise_seed=21)
    ours.set_timesteps(7)
    sig = ours.sigmas.double().numpy()

    def velocity(x, t):
        return torch.sin(x) - 0.3 * x + t

    x0 = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    x = x0
    for i, t in enumerate(ours.timesteps):
        g = torch.Generator().manual_seed(1000 + i)  # a generator per step: must not matter
        x = ours.step(velocity(x, float(sig[i])), t, x, generator=g).prev_sample
    assert torch.equal(x, stochastic_euler(velocity, x0, sig, seed=21))
    # image-to-image: begin at step 3, the first step draws stream 1 + 0
    ours.set_timesteps(7)
    ours.set_begin_index(3)
    v = velocity(x0, float(sig[3]))
    out = ours.step(v, ours.timesteps[3], x0).prev_sample
    s3, s4 = ours.sigmas[3], ours.sigmas[4]
    assert torch.equal(out, (1.0 - s4) * (x0 - s3 * v) + s4 * step_noise(21, tuple(x0.shape), 0))
    assert ours.config.noise_seed == 21
    back = FlowschedScheduler.from_config(ours.config)
    assert back.config.noise_seed == 21 and back.config.schedule == "shifted:alpha=3"


# -- image-to-image and video-to-video pipelines ----------------------------------------------------------------


def test_flux_img2img_with_the_adapter(tiny_flux):
    call = {"img2img": True, "steps": 7, "strength": 0.6}
    ref = tiny_flux(FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True), **call)
    ours = tiny_flux(FlowschedScheduler.from_config(ref.scheduler.config), **call)
    assert torch.equal(ours.scheduler.sigmas, ref.scheduler.sigmas) and ours.seen == ref.seen
    assert ours.log.begin == ref.log.begin == [2]  # int(7 - 7 * 0.6) = 2: 5 steps from the third sigma
    replayed = ref.log.replay(FlowschedScheduler.from_config(ref.scheduler.config))
    for got, (_, _, _, want) in zip(replayed, ref.log.steps, strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(ours.latents, ref.latents, atol=PIPELINE_ATOL, rtol=0)
    cut = partial(ours.scheduler.schedule, 7, 0.6)  # flowsched's "diffusers" convention on the walked schedule
    np.testing.assert_array_equal(_f32(ours.seen), _f32(cut.t[:-1]))  # Flux feeds timestep / 1000 = t
    # a flowsched schedule in the same pipeline: the model sees the partial schedule's values
    run = tiny_flux(FlowschedScheduler("shifted:alpha=3"), **call)
    np.testing.assert_allclose(run.seen, _f32(partial("shifted:alpha=3", 7, 0.6).t[:-1]), rtol=1e-6)
    assert torch.isfinite(run.latents).all()


@pytest.mark.skipif(not diffusers_at_least("0.33"), reason="SD3 img2img reads its tokenizer before diffusers 0.33")
def test_sd3_img2img_with_the_adapter():
    from diffusers import AutoencoderKL, SD3Transformer2DModel, StableDiffusion3Img2ImgPipeline

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=16, out_channels=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=4,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5,
    )
    seen = _record_timesteps(transformer)
    g = torch.Generator().manual_seed(1)
    embeds = {
        "prompt_embeds": torch.randn(1, 8, 32, generator=g),
        "pooled_prompt_embeds": torch.randn(1, 16, generator=g),
    }
    image = torch.rand(1, 3, 16, 16, generator=g)
    encoders = {f"{k}{i}": None for k in ("text_encoder", "tokenizer") for i in ("", "_2", "_3")}

    def run(scheduler):
        pipe = StableDiffusion3Img2ImgPipeline(transformer=transformer, scheduler=scheduler, vae=vae, **encoders)
        return Run(pipe, seen, **embeds, image=image, strength=0.6, num_inference_steps=7, guidance_scale=1.0)

    ref = run(FlowMatchEulerDiscreteScheduler(shift=3.0))
    ours = run(FlowschedScheduler.from_config(ref.scheduler.config))
    assert torch.equal(ours.scheduler.sigmas, ref.scheduler.sigmas) and ours.seen == ref.seen and len(ours.seen) == 5
    for got, (_, _, _, want) in zip(ref.log.replay(FlowschedScheduler.from_config(ref.scheduler.config)),
                                    ref.log.steps, strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(ours.latents, ref.latents, atol=PIPELINE_ATOL, rtol=0)
    cut = partial("diffusers_default:alpha=3,double_shift=true", 7, 0.6)  # SD3's default grid, diffusers' rule
    np.testing.assert_allclose(ours.seen, _f32(cut.model_timesteps()), rtol=1e-6)


def test_wan_video_to_video_with_the_adapter():
    """Wan v2v floors the strength (int(7 * 0.6) = 4 steps), sets no begin index and noises the video latents with
    the scheduler's scale_noise (FlowMatchEuler has no add_noise), looked up from the first kept timestep."""
    needs_pipeline("WanVideoToVideoPipeline")
    from diffusers import AutoencoderKLWan, WanVideoToVideoPipeline
    from PIL import Image

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )
    transformer = _tiny_wan()
    seen = _record_timesteps(transformer)
    prompt = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(1))
    rng = np.random.default_rng(2)
    video = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(5)]

    def run(scheduler):
        pipe = WanVideoToVideoPipeline(tokenizer=None, text_encoder=None, vae=vae, scheduler=scheduler,
                                       transformer=transformer)
        return Run(pipe, seen, video=video, prompt_embeds=prompt, negative_prompt_embeds=torch.zeros_like(prompt),
                   num_inference_steps=7, strength=0.6, guidance_scale=2.0)

    ref = run(FlowMatchEulerDiscreteScheduler(shift=5.0))
    ours = run(FlowschedScheduler.from_config(ref.scheduler.config))
    assert ours.seen == ref.seen and len(ours.seen) == 2 * 4 and ours.log.begin == ref.log.begin == []
    for got, (_, _, _, want) in zip(ref.log.replay(FlowschedScheduler.from_config(ref.scheduler.config)),
                                    ref.log.steps, strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(ours.latents, ref.latents, atol=PIPELINE_ATOL, rtol=0)
    cut = partial("flow_match_euler:shift=5", 7, 0.6, convention="diffusers-floor")
    np.testing.assert_allclose(ours.seen[::2], _f32(cut.model_timesteps()), rtol=1e-6)
