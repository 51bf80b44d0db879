"""Train the benchmark's small velocity networks (one per resolution) on real photographs; never run by the tests.

Data: :mod:`trained_data` (13 photographs bundled in scikit-learn and scikit-image, grayscale 128-pixel crops
block-averaged to the resolution, a spatial held-out split). Network: :mod:`trained_net` (a U-Net on an 8 x 8
grid: ``patch = resolution / 8`` pixels per cell).

Loss: rectified flow (Liu et al. 2022; docs/conventions.md): ``x_t = (1 - t) x0 + t eps``, target ``v = eps - x0``,
mean squared error, with ``t`` drawn uniformly in [0, 1] (every time weighted alike, no logit-normal emphasis, so
the network is equally trained wherever a schedule puts its steps). AdamW, linear warm-up then cosine decay of
the learning rate, gradient clipping at 1, an exponential moving average of the weights (the saved network).
A fixed seed: the same command gives the same network on the same machine, torch version and thread count.

The validation loss is the same loss on fixed held-out crops at fixed ``t`` (16 strata) and fixed noise, so its
curve is deterministic and comparable across checkpoints.

    python benchmarks/train_velocity.py --resolution 16            # writes benchmarks/trained/velocity-16px.*
    python benchmarks/train_velocity.py --resolution 8 --steps 200  # a smoke run

Threads: one by default. On the shared 2-core development machine two torch threads ran 10-20x slower than one
whenever another process held the second core (OpenMP threads wait on each other); ``--threads 2`` on a quiet one.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trained_data import FOV, CropSource  # noqa: E402
from trained_net import VelocityUNet, num_parameters, save_velocity_net, weights_path  # noqa: E402

#: Per resolution: channels per level, time-embedding width, patch (pixels per grid cell) and training steps.
ARCHITECTURE = {
    8: {"channels": (32, 48, 64), "emb_dim": 64, "patch": 1},
    16: {"channels": (32, 48, 64), "emb_dim": 64, "patch": 2},
    32: {"channels": (32, 48, 64), "emb_dim": 64, "patch": 4},
    64: {"channels": (32, 48, 64), "emb_dim": 64, "patch": 8},
}
DEFAULTS = {"steps": 3000, "batch": 64, "lr": 2e-3, "warmup": 200, "ema": 0.999, "seed": 0}
VAL_SIZE, VAL_EVERY, LOG_EVERY = 1024, 500, 100


def flow_loss(net: torch.nn.Module, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Rectified-flow loss: ``mean |net(x_t, t) - (eps - x0)|^2`` with ``x_t = (1 - t) x0 + t eps``."""
    tb = t[:, None, None, None]
    xt = (1.0 - tb) * x0 + tb * eps
    return ((net(xt, t) - (eps - x0)) ** 2).mean()


def learning_rate(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 1% of ``lr`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def validation_set(source: CropSource, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed held-out crops, stratified ``t`` (16 strata, midpoints) and fixed noise for the validation loss."""
    x0 = torch.from_numpy(source.held_out(VAL_SIZE, seed + 1000))
    g = torch.Generator().manual_seed(seed + 1000)
    t = ((torch.arange(VAL_SIZE) % 16).float() + 0.5) / 16
    return x0, t, torch.randn(x0.shape, generator=g)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
        pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)


def train(resolution: int, *, steps: int, batch: int, lr: float, warmup: int, ema_decay: float, seed: int,
          log=print) -> tuple[VelocityUNet, dict]:
    """Train one network; returns (the EMA network, a record: loss curves, time, settings)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, resolution])
    source = CropSource(resolution)
    net = VelocityUNet(resolution, **ARCHITECTURE[resolution])
    ema = VelocityUNet(resolution, **ARCHITECTURE[resolution])
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    val = validation_set(source, seed)
    g = torch.Generator().manual_seed(seed)
    curve, val_curve, window = [], [], []
    start = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, steps, lr, warmup)
        x0 = torch.from_numpy(source.train(batch, rng))
        loss = flow_loss(net, x0, torch.rand(batch, generator=g), torch.randn(x0.shape, generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema_update(ema, net, min(ema_decay, (1.0 + step) / (10.0 + step)))
        window.append(loss.item())
        if (step + 1) % LOG_EVERY == 0:
            curve.append([step + 1, float(np.mean(window))])
            window = []
        if (step + 1) % VAL_EVERY == 0 or step + 1 == steps:
            with torch.no_grad():
                val_curve.append([step + 1, flow_loss(ema, *val).item()])
            log(f"{resolution}px step {step + 1}/{steps}: train {curve[-1][1] if curve else float('nan'):.4f} "
                f"val(EMA) {val_curve[-1][1]:.4f}  {time.perf_counter() - start:.0f} s")
    record = {
        "data": {"fov": FOV, "images": source.names, "mean": source.mean, "std": source.std,
                 "normalisation": "(luma - mean) / std, luma in [0, 1] (BT.601)"},
        "training": {"steps": steps, "batch": batch, "lr": lr, "warmup": warmup, "ema": ema_decay, "seed": seed,
                     "t_sampling": "uniform", "loss": "rectified flow, v = eps - x0",
                     "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - start, 1),
                     "torch": torch.__version__, "machine": platform.machine()},
        "parameters": num_parameters(ema),
        "loss_curve": curve,
        "val_curve": val_curve,
    }
    return ema.eval(), record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolution", type=int, required=True, choices=sorted(ARCHITECTURE))
    ap.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="path without extension (default benchmarks/trained/velocity-<R>px)")
    args = ap.parse_args(argv)
    for name in ("steps", "batch", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if not args.lr > 0:
        ap.error(f"--lr must be > 0, got {args.lr}")
    torch.set_num_threads(args.threads)
    out = args.out or weights_path(args.resolution)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    net, record = train(args.resolution, steps=args.steps, batch=args.batch, lr=args.lr, warmup=DEFAULTS["warmup"],
                        ema_decay=DEFAULTS["ema"], seed=args.seed)
    save_velocity_net(net, out, record)
    print(f"wrote {out}.safetensors ({record['parameters']} parameters) and {out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
