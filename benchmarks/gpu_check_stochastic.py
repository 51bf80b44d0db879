"""Stochastic sampling trajectories across devices: the GPU check for the stochastic samplers.

``stochastic_trajectory_check()`` is meant to be called from ``benchmarks/gpu_check.py``; it also runs alone:

    python benchmarks/gpu_check_stochastic.py              # CPU against CUDA (skips without a CUDA device)
    python benchmarks/gpu_check_stochastic.py --device cpu  # smoke test: CPU against CPU

What it checks, float32, every step's state bit for bit (``flowsched.sampling`` with ``seed=``: step ``i`` draws
portable noise on stream ``1 + i``, docs/portable-noise.md):

- ``euler_ancestral`` (eta 1 and 0.5, s_noise 0.9) and ``stochastic_euler`` on the CPU (numpy backend of the noise)
  and on the device (torch backend of the noise);
- on the device, the batch against each sample run alone with its ``sample_index`` (batch-size independence);
- numpy arrays against torch tensors on the CPU.

The velocity is elementwise and uses only ``+``, ``-`` and ``*`` (IEEE-exact on every device, unlike ``sin`` or a
matmul), so any difference would come from the samplers or their noise.
"""

from __future__ import annotations

import argparse
import json
import sys


def _velocity(x, t):
    return 0.7 * x - 0.2 * x * x + (t - 0.5)


def stochastic_trajectory_check(
    device: str = "cuda",
    *,
    seed: int = 2024,
    shape: tuple[int, ...] = (3, 16, 5, 24, 40),
    num_steps: int = 12,
) -> dict:
    """Run the stochastic samplers on the CPU and on ``device`` from the same seed and compare every step.

    Returns ``{"device", "skipped"}`` when ``device`` is CUDA and none is available, else
    ``{"device", "shape", "num_steps", "checks": [{"name", "steps", "equal", "max_abs_diff"}], "ok"}``.
    """
    import numpy as np
    import torch

    from flowsched import schedules
    from flowsched.noise import portable_noise
    from flowsched.sampling import euler_ancestral, stochastic_euler

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return {"device": device, "skipped": "no CUDA device"}
    sched = schedules.shifted(num_steps, 3.0)
    runs = {
        "euler_ancestral eta=1": (euler_ancestral, {"eta": 1.0}),
        "euler_ancestral eta=0.5 s_noise=0.9": (euler_ancestral, {"eta": 0.5, "s_noise": 0.9}),
        "stochastic_euler": (stochastic_euler, {}),
    }

    def trajectory(run, kwargs, x, **extra):
        states = []
        run(_velocity, x, sched, seed=seed, callback=lambda i, t, tn, s: states.append(_host(s)), **kwargs, **extra)
        return states

    def _host(s):
        return s.detach().to("cpu").numpy().copy() if isinstance(s, torch.Tensor) else np.array(s)

    def compare(name, a, b):
        diffs = [float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) for x, y in zip(a, b)]
        equal = len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
        return {"name": name, "steps": len(a), "equal": equal, "max_abs_diff": max(diffs) if diffs else 0.0}

    x_cpu = portable_noise(shape, seed)  # the initial noise: stream 0 of the same seed
    x_dev = portable_noise(shape, seed, device=dev)
    checks = [compare("initial noise, cpu vs " + str(dev), [x_cpu.numpy()], [_host(x_dev)])]
    for label, (run, kwargs) in runs.items():
        cpu = trajectory(run, kwargs, x_cpu.clone())
        on_dev = trajectory(run, kwargs, x_dev.clone())
        checks.append(compare(f"{label}: cpu vs {dev}", cpu, on_dev))
        alone = [trajectory(run, kwargs, x_dev[b : b + 1].clone(), sample_index=b) for b in range(shape[0])]
        stacked = [np.concatenate([alone[b][i] for b in range(shape[0])]) for i in range(num_steps)]
        checks.append(compare(f"{label}: batch {shape[0]} vs one sample at a time on {dev}", on_dev, stacked))
        as_numpy = trajectory(run, kwargs, x_cpu.numpy().copy())
        checks.append(compare(f"{label}: numpy vs torch on cpu", as_numpy, cpu))
    return {
        "device": str(dev),
        "shape": list(shape),
        "num_steps": num_steps,
        "checks": checks,
        "ok": all(c["equal"] for c in checks),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="device to compare with the CPU (default cuda)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    result = stochastic_trajectory_check(args.device)
    if args.json:
        print(json.dumps(result, indent=2))
    elif "skipped" in result:
        print(f"stochastic trajectories: skipped ({result['skipped']})")
    else:
        print(f"stochastic trajectories, shape {result['shape']}, {result['num_steps']} steps, float32:")
        for c in result["checks"]:
            verdict = "bit-identical" if c["equal"] else f"DIFFERENT (max |diff| {c['max_abs_diff']:.3g})"
            print(f"  {c['name']}: {verdict}")
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
