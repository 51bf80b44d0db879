"""Tiny diffusers pipelines for the tune tests, from randomly initialised components (nothing is downloaded; prompt
embeddings are passed in), each with its velocity written out the way the pipeline's denoising loop computes it
(diffusers 0.42.1: the transformer call, the timestep it is fed, classifier-free guidance), as an independent
reference for what a probe scheduler records. Also the benchmark's minimal pipeline around a velocity network
(benchmarks/velocity_pipeline.py) and an analytic velocity network to put in it."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


class Tiny(NamedTuple):
    """A pipeline, the ``__call__`` arguments it is run with, the latent shape of one sample in its loop's layout,
    ``velocity(x, t)``: its guided velocity at the state ``x`` (``[B, ...]``) and ``t`` (a float), computed
    outside the pipeline, and the ``__call__`` argument that makes a batch of two samples."""

    pipe: Any
    kwargs: dict
    sample_shape: tuple[int, ...]
    velocity: Callable[[torch.Tensor, float], torch.Tensor]
    two_samples: dict


def _fed(t: float) -> torch.Tensor:
    """The 0-d float32 timestep FlowMatchEuler (and the probe) feeds for ``t``: ``float32(t) * 1000``."""
    return torch.tensor(np.float32(t)) * 1000


def flux(scheduler: Any = None, dtype: torch.dtype = torch.float32) -> Tiny:
    """FluxPipeline: 16x16 pixels (VAE factor 1) -> 64 packed tokens of 4 channels; timestep / 1000 fed; the
    prompt embeddings broadcast over the batch (the pipeline does not repeat given embeddings). ``dtype``: the
    components' and embeddings' dtype (the pipeline's latents follow the transformer's)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=1,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5,
    )
    g = torch.Generator().manual_seed(1)
    embeds = {"prompt_embeds": torch.randn(1, 8, 32, generator=g).to(dtype),
              "pooled_prompt_embeds": torch.randn(1, 32, generator=g).to(dtype)}
    scheduler = scheduler or FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    none = dict.fromkeys(("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"))
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, transformer=transformer, **none).to(dtype)
    kwargs = {**embeds, "height": 16, "width": 16, "guidance_scale": 3.5}

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        b = x.shape[0]
        timestep = _fed(t).expand(b).to(x.dtype)
        return transformer(
            hidden_states=x, timestep=timestep / 1000, guidance=None,
            pooled_projections=embeds["pooled_prompt_embeds"], encoder_hidden_states=embeds["prompt_embeds"],
            txt_ids=torch.zeros(8, 3, dtype=x.dtype),
            img_ids=pipe._prepare_latent_image_ids(b, 8, 8, x.device, x.dtype),
            joint_attention_kwargs=None, return_dict=False,
        )[0]

    return Tiny(pipe, kwargs, (64, 4), velocity, {"num_images_per_prompt": 2})


def sd3(scheduler: Any = None, batch: int = 2, dtype: torch.dtype = torch.float32) -> Tiny:
    """StableDiffusion3Pipeline with classifier-free guidance (scale 4): 8x8 latents of 4 channels; ``batch``
    prompts' embeddings (one sample per prompt), the negative ones first in the guided batch; ``dtype`` as for
    :func:`flux`."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        caption_projection_dim=16, joint_attention_dim=16, pooled_projection_dim=16, out_channels=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=4,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5,
    )
    g = torch.Generator().manual_seed(1)
    pos, neg = (torch.randn(batch, 6, 16, generator=g).to(dtype) for _ in range(2))
    pooled, neg_pooled = (torch.randn(batch, 16, generator=g).to(dtype) for _ in range(2))
    none = dict.fromkeys(("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3",
                          "tokenizer_3"))
    pipe = StableDiffusion3Pipeline(scheduler=scheduler or FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
                                    transformer=transformer, **none).to(dtype)
    kwargs = {"prompt_embeds": pos, "negative_prompt_embeds": neg, "pooled_prompt_embeds": pooled,
              "negative_pooled_prompt_embeds": neg_pooled, "height": 8, "width": 8, "guidance_scale": 4.0}

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        both = torch.cat([x] * 2)
        out = transformer(
            hidden_states=both, timestep=_fed(t).expand(both.shape[0]), encoder_hidden_states=torch.cat([neg, pos]),
            pooled_projections=torch.cat([neg_pooled, pooled]), joint_attention_kwargs=None, return_dict=False,
        )[0]
        uncond, cond = out.chunk(2)
        return uncond + 4.0 * (cond - uncond)

    return Tiny(pipe, kwargs, (4, 8, 8), velocity, {"num_images_per_prompt": 2 // batch})


def wan(scheduler: Any = None, dtype: torch.dtype = torch.float32) -> Tiny:
    """WanPipeline (text-to-video) with classifier-free guidance (scale 2, two transformer calls): 5 frames of
    16x16 -> latents [4, 2, 2, 2]; it calls set_timesteps(N) and set_begin_index(0) and reads scheduler.sigmas[i];
    ``dtype`` as for :func:`flux` (Wan casts the latents it feeds to the transformer's dtype)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, text_dim=16,
        freq_dim=16, ffn_dim=16, num_layers=1, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    prompt = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(1)).to(dtype)
    negative = torch.zeros_like(prompt)
    pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer,
                       scheduler=scheduler or FlowMatchEulerDiscreteScheduler(shift=5.0)).to(dtype)
    kwargs = {"prompt_embeds": prompt, "negative_prompt_embeds": negative, "num_frames": 5, "height": 16,
              "width": 16, "guidance_scale": 2.0}

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        timestep, x = _fed(t).expand(x.shape[0]), x.to(dtype)
        cond = transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=prompt, attention_kwargs=None,
                           return_dict=False)[0]
        uncond = transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=negative,
                             attention_kwargs=None, return_dict=False)[0]
        return uncond + 2.0 * (cond - uncond)

    return Tiny(pipe, kwargs, (4, 2, 2, 2), velocity, {"num_videos_per_prompt": 2})


# -- the benchmark's minimal pipeline, around an analytic velocity ------------------------------------------------


def benchmark_module(name: str) -> Any:
    """A module of ``benchmarks/`` (``velocity_pipeline``, ``trained_net``)."""
    import importlib

    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def velocity_pipeline_class() -> type:
    """``benchmarks/velocity_pipeline.py``'s ``VelocityPipeline``."""
    return benchmark_module("velocity_pipeline").VelocityPipeline


class GaussianVelocity(torch.nn.Module):
    """The exact velocity of Gaussian data ``x0 ~ N(0, diag(lam))`` (per pixel): with ``x_t = (1 - t) x0 + t eps``,
    ``E[eps - x0 | x_t] = (t - (1 - t) lam) x_t / ((1 - t)^2 lam + t^2)``. A network-shaped stand-in: ``forward(x,
    t)`` takes ``x`` ``[B, C, H, W]`` and ``t`` ``[B]``."""

    def __init__(self, lam: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("lam", lam)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        return (t - (1 - t) * self.lam) * x / ((1 - t) ** 2 * self.lam + t**2)
