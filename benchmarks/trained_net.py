"""The benchmark's small velocity network: a plain torch U-Net ``v(x, t)`` for one-channel square images, with a
safetensors + JSON loader.

Convention (docs/conventions.md): ``x_t = (1 - t) x0 + t eps``, ``t = 1`` noise, the network predicts
``v = eps - x0``. ``forward(x, t)`` takes ``x`` ``[B, 1, R, R]`` and ``t`` a float or a ``[B]`` tensor in [0, 1]
(embedded as ``1000 t``, as flow transformers are fed).

Architecture: ``patch x patch`` pixels folded into channels (``pixel_unshuffle``, as a transformer patchifies;
the network then runs at ``R / patch``), a convolution in, ``len(channels)`` levels of one residual block each
(GroupNorm, SiLU, 3x3 convolutions, the time embedding added as a per-channel bias), 2x average-pool down between
levels, a middle block, the mirror path up with skip connections (nearest upsampling), a convolution out
initialised to zero, unfolded back to pixels.

    net = load_velocity_net("benchmarks/trained/velocity-16px")   # reads .safetensors and .json
    v = net(x, 0.5)
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "trained")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of ``1000 t``: ``[B] -> [B, dim]`` (half cosines, half sines, periods up to 10^4)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added between, a 1x1 convolution on the skip if widths
    differ."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class VelocityUNet(nn.Module):
    """``v(x, t)`` on ``[B, 1, R, R]`` images. ``channels``: widths per level (one 2x downsampling between levels,
    so ``R`` must be divisible by ``2 ** (len(channels) - 1)``); ``emb_dim``: time-embedding width."""

    def __init__(
        self, resolution: int, channels: tuple[int, ...] = (32, 64, 96), emb_dim: int = 128, patch: int = 1
    ) -> None:
        super().__init__()
        if resolution % (patch * 2 ** (len(channels) - 1)):
            raise ValueError(f"resolution {resolution} is not divisible by patch {patch} * 2^{len(channels) - 1}")
        self.config = {"resolution": resolution, "channels": list(channels), "emb_dim": emb_dim, "patch": patch}
        self.emb_dim, self.patch = emb_dim, patch
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(patch * patch, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        c_prev = channels[0]
        for c in channels:
            self.down.append(ResBlock(c_prev, c, emb_dim))
            c_prev = c
        self.mid = ResBlock(c_prev, c_prev, emb_dim)
        self.up = nn.ModuleList()
        for c in reversed(channels):
            self.up.append(ResBlock(c_prev + c, c, emb_dim))
            c_prev = c
        self.norm_out = nn.GroupNorm(min(8, c_prev), c_prev)
        self.conv_out = nn.Conv2d(c_prev, patch * patch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        if not torch.is_tensor(t) or t.ndim == 0:
            t = torch.full((x.shape[0],), float(t), device=x.device)
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim))
        h = self.conv_in(F.pixel_unshuffle(x, self.patch))
        skips = []
        for i, block in enumerate(self.down):
            if i:
                h = F.avg_pool2d(h, 2)
            h = block(h, emb)
            skips.append(h)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up):
            if i:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(h))), self.patch)


def num_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def weights_path(resolution: int) -> str:
    """``benchmarks/trained/velocity-<R>px`` (without extension)."""
    return os.path.join(WEIGHTS, f"velocity-{resolution}px")


def save_velocity_net(net: VelocityUNet, path: str, extra: dict | None = None) -> None:
    """Write ``path.safetensors`` (float32 weights) and ``path.json`` (the constructor's config plus ``extra``:
    training settings, data normalisation, loss curve), each atomically."""
    from safetensors.torch import save_file

    from flowsched._io import atomic_write_text

    tmp = path + ".safetensors.tmp"
    save_file({k: v.detach().float().contiguous() for k, v in net.state_dict().items()}, tmp)
    os.replace(tmp, path + ".safetensors")
    atomic_write_text(path + ".json", json.dumps({**net.config, **(extra or {})}, indent=1) + "\n")


def load_config(path: str) -> dict:
    with open(path + ".json", encoding="utf-8") as f:
        return json.load(f)


def load_velocity_net(path: str) -> VelocityUNet:
    """The network saved at ``path`` (``path.safetensors`` + ``path.json``), in eval mode, float32 on the CPU."""
    from safetensors.torch import load_file

    cfg = load_config(path)
    net = VelocityUNet(cfg["resolution"], tuple(cfg["channels"]), cfg["emb_dim"], cfg["patch"])
    net.load_state_dict(load_file(path + ".safetensors"))
    return net.eval()
