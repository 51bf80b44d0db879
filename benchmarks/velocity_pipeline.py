"""A minimal diffusers pipeline around a velocity network ``v(x, t)`` on ``[B, C, H, W]`` images: the benchmark's
trained networks (``benchmarks/trained_net.py``) sampled, and tuned with ``flowsched.integrations.diffusers.tune``,
the way diffusers' flow pipelines run.

It does what Flux's and SD3's pipelines do around their transformer, minus the prompt: draws the noise with
``randn_tensor`` from the ``generator`` (or takes ``latents``), calls ``scheduler.set_timesteps``, then for each of
``scheduler.timesteps`` calls the network at ``t = timestep / num_train_timesteps`` and
``latents = scheduler.step(v, timestep, latents)``. Convention (docs/conventions.md): ``t = 1`` noise,
``v = eps - x0``.

    pipe = VelocityPipeline(net, FlowMatchEulerDiscreteScheduler(shift=3.0), sample_shape=(1, 16, 16))
    images = pipe(num_inference_steps=8, num_images_per_prompt=4, generator=torch.Generator().manual_seed(0)).images
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor


class VelocityPipeline(DiffusionPipeline):
    """``net(x, t)``: a torch module taking ``x`` ``[B, C, H, W]`` and ``t`` ``[B]`` in [0, 1], returning the
    velocity; ``scheduler``: a diffusers flow-matching scheduler; ``sample_shape``: ``[C, H, W]`` of one sample."""

    model_cpu_offload_seq = "net"

    def __init__(self, net: torch.nn.Module, scheduler: Any, sample_shape: Sequence[int] = (1, 16, 16)) -> None:
        super().__init__()
        shape = [int(s) for s in sample_shape]
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"sample_shape must be [C, H, W] of positive sizes, got {list(sample_shape)}")
        self.register_modules(net=net, scheduler=scheduler)
        self.register_to_config(sample_shape=shape)

    @torch.no_grad()
    def __call__(
        self,
        num_inference_steps: int = 50,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pt",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """``num_images_per_prompt`` samples; ``output_type`` ``"pt"`` or ``"latent"`` (the same here: the network
        works on pixels) returns the ``[B, C, H, W]`` tensor, ``"np"`` a numpy array ``[B, H, W, C]``."""
        if output_type not in ("pt", "latent", "np"):
            raise ValueError(f"output_type must be 'pt', 'latent' or 'np', got {output_type!r}")
        weight = next(self.net.parameters(), None)  # a plain torch module: no .device or .dtype of its own
        device, dtype = (weight.device, weight.dtype) if weight is not None else (torch.device("cpu"), torch.float32)
        shape = (num_images_per_prompt, *self.config.sample_shape)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents.to(device=device, dtype=dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        self.scheduler.set_begin_index(0)
        scale = float(self.scheduler.config.num_train_timesteps)
        for timestep in self.progress_bar(self.scheduler.timesteps):
            v = self.net(latents, timestep.expand(latents.shape[0]).to(dtype) / scale)
            latents = self.scheduler.step(v, timestep, latents, return_dict=False)[0]
        images = latents.permute(0, 2, 3, 1).float().cpu().numpy() if output_type == "np" else latents
        return ImagePipelineOutput(images=images) if return_dict else (images,)
