"""tune and fitted_shift on a pipeline: the benchmark's trained networks (benchmarks/trained/, 8, 16 and 32 px) in
the minimal diffusers pipeline (benchmarks/velocity_pipeline.py) whose own scheduler is diffusers'
FlowMatchEulerDiscreteScheduler with SD3's static shift 3, scored the way a user of those functions sees them.

For each resolution and step count N: the RMSE against a fine Euler teacher (a linear grid of --teacher steps) on
held-out noises the pipeline draws itself (seed 11), of

- the pipeline's own sampler at N (shift 3 on diffusers' grid),
- static shifts on a grid, and the best of them,
- ``fitted_shift(pipe, N)``: auto-shift on a Gaussian field fitted to 256 samples of the pipeline (50 steps, seeds
  5 to 8),
- ``tune(pipe, num_inference_steps=N)``: OSS with a linear 100-step teacher on 16 noises (seed 3; held-out noises
  of its own, seed 4), every schedule walked by the pipeline through flowsched's probe scheduler.

Ratios to the best static shift with a paired bootstrap standard error (200 resamples of the noises).

    python benchmarks/tune.py            # writes benchmarks/results/tune.md (a few minutes on 2 CPU cores)
    python benchmarks/tune.py --quick    # fewer noises, 8 and 16 px, N = 4 and 8
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _report import write_report  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402
from trained_net import load_velocity_net, weights_path  # noqa: E402
from velocity_pipeline import VelocityPipeline  # noqa: E402

from flowsched import schedules  # noqa: E402
from flowsched.integrations.diffusers import PipelineVelocity, fitted_shift, tune  # noqa: E402

SHIFTS = (1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0)
BOOT = 200


def squared_errors(x: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    """Per-noise mean squared error, float64 ``[n]``."""
    return (x.double() - ref.double()).square().flatten(1).mean(1).numpy()


def ratio(sq: np.ndarray, best: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
    """RMSE ratio to the best static shift and its paired bootstrap SE."""
    boot = np.sqrt(sq[idx].mean(1) / best[idx].mean(1))
    return float(np.sqrt(sq.mean() / best.mean())), float(boot.std())


def measure(resolution: int, steps: list[int], noises: int) -> list[dict]:
    pipe = VelocityPipeline(load_velocity_net(weights_path(resolution)), FlowMatchEulerDiscreteScheduler(shift=3.0),
                            sample_shape=(1, resolution, resolution))
    oracle = PipelineVelocity(pipe)
    teacher = oracle.walk(None, [schedules.linear(ARGS.teacher)], num_samples=noises, seed=11)
    target = teacher.finals[0]
    idx = np.random.default_rng(0).integers(0, noises, size=(BOOT, noises))
    rows = []
    for n in steps:
        start = time.perf_counter()
        static = oracle.walk(teacher.noise, [schedules.shifted(n, a) for a in SHIFTS]).finals
        static_sq = [squared_errors(x, target) for x in static]
        k = int(np.argmin([s.mean() for s in static_sq]))
        best = static_sq[k]
        own, _ = oracle.pipeline_run(n, noise=teacher.noise)
        fitted = fitted_shift(pipe, n, num_samples=256, batch_size=64, seed=5, sample_steps=50)
        tuned = tune(pipe, num_inference_steps=n, teacher_steps=100, num_samples=16, seed=3, progress=False)
        walks = oracle.walk(teacher.noise, [fitted, tuned]).finals
        rows.append({
            "resolution": resolution, "n": n, "best_alpha": SHIFTS[k], "best_rmse": float(np.sqrt(best.mean())),
            "default": ratio(squared_errors(own, target), best, idx),
            "fitted_alpha": fitted.params["alpha"], "fitted": ratio(squared_errors(walks[0], target), best, idx),
            "tuned": ratio(squared_errors(walks[1], target), best, idx),
            "tune_calls": tuned.params["pipeline_calls"], "tune_evaluations": tuned.params["evaluations"],
            "seconds": time.perf_counter() - start,
        })
        print(rows[-1], flush=True)
    return rows


def report(rows: list[dict], seconds: float, noises: int) -> str:
    def cell(pair: tuple[float, float]) -> str:
        return f"{pair[0]:.3f} ± {pair[1]:.3f}"

    lines = [
        "# tune and fitted_shift on the trained networks' pipelines",
        "",
        f"Written by `python benchmarks/tune.py{' --quick' if ARGS.quick else ''}` (CPython "
        f"{platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPU(s), "
        f"{torch.get_num_threads()} torch thread(s)) in {seconds / 60:.1f} min. Method: the module docstring of "
        "`benchmarks/tune.py`; the networks and data: `trained.md`.",
        "",
        f"RMSE against a linear {ARGS.teacher}-step Euler teacher on {noises} held-out noises, as a ratio to the best "
        f"static shift of {', '.join(map(str, SHIFTS))} (paired bootstrap SE). The pipeline's own schedule is "
        "diffusers' FlowMatchEuler with shift 3.",
        "",
        "| resolution | N | best static shift (RMSE) | pipeline's own (shift 3) | fitted_shift (its alpha) | tune | "
        "tune's cost: pipeline calls, evaluations |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['resolution']} px | {r['n']} | {r['best_alpha']} ({r['best_rmse']:.4f}) | {cell(r['default'])} | "
            f"{cell(r['fitted'])} ({r['fitted_alpha']:.2f}) | {cell(r['tuned'])} | {r['tune_calls']}, "
            f"{r['tune_evaluations']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(1)  # small networks: more threads only contend on the shared cores
    resolutions, steps, noises = ((8, 16), [4, 8], 64) if ARGS.quick else ((8, 16, 32), [4, 8, 16], 256)
    start = time.perf_counter()
    rows = [row for r in resolutions for row in measure(r, steps, noises)]
    write_report("tune.md", report(rows, time.perf_counter() - start, noises))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer noises, 8 and 16 px, N = 4 and 8")
    parser.add_argument("--teacher", type=int, default=200, help="steps of the evaluation teacher (default 200)")
    ARGS = parser.parse_args()
    main()
