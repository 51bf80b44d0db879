"""What a schedule costs in quality, measured on data models whose flow is known exactly.

Writes ``benchmarks/results/quality.md`` and ``benchmarks/results/quality.png``:

1. Errors of linear, Open-Sora 2.0's rule, Flux's rule, the best pure shift, auto-shift and the optimised schedule
   at 10, 20, 30 and 50 Euler steps for Open-Sora 256px and 768px at 129 frames and a 1024^2 image, on the
   Gaussian field of each latent grid (default spectrum, relative squared W2).
2. The same comparison on the 16-D Gaussian mixture (pathwise RMSE against an RK4 reference), in and out of sample.
3. The optimiser's goals: landing within 1% of the best value from several starts; time to optimise 10 steps on
   the 768px field; the teacher-trajectory search (OSS) against the mixture's analytic optimum; a tiny learned
   flow-matching MLP.
4. Auto-shift against the Open-Sora, Flux and SD3 rules across image resolutions and frame counts.
5. Deterministic vs stochastic samplers (Euler, ancestral at eta 0.5 and 1, stochastic Euler) at 4-50 steps on the
   256px and 768px fields (exact) and the mixture (Monte Carlo), and the five strength conventions at strengths
   0.3, 0.6, 0.9 (error of reconstructing the data distribution from a noised latent).

    python benchmarks/quality.py            # about three minutes on 2 cores
    python benchmarks/quality.py --quick    # skips the mixture at 20 steps and the learned model
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

from flowsched import LatentGeometry, schedules
from flowsched.quality import GaussianField, GaussianMixture, auto_shift, optimize_schedule, teacher_search
from flowsched.quality.optimize import FieldObjective, best_shift

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_MD = os.path.join(HERE, "results", "quality.md")
OUT_PNG = os.path.join(HERE, "results", "quality.png")
STEPS = (10, 20, 30, 50)

SETTINGS = {
    "Open-Sora 256px, 129 frames": (192, 336, 129, "hunyuan"),
    "Open-Sora 768px, 129 frames": (576, 1024, 129, "hunyuan"),
    "1024x1024 image": (1024, 1024, 1, "flux"),
}


def geometry(h, w, f, vae):
    return LatentGeometry.from_pixels(h, w, f, vae)


def rule_alphas(geo: LatentGeometry) -> dict[str, float]:
    """The peers' shifts at this geometry. Flux is an image model: its mu line is applied to ONE latent frame's
    token count. SD3 ships 3.0 at 1024^2; its paper's sqrt(m/n) argument moves it with the pixel count."""
    return {
        "Open-Sora rule": schedules.opensora_alpha(geo.image_seq_len, geo.latent_frames),
        "Flux rule": math.exp(schedules.flux_mu(geo.image_seq_len)),
        "SD3 rule": 3.0 * math.sqrt(geo.padded_height * geo.padded_width / 1024**2),
    }


def fmt(x: float) -> str:
    return f"{x:.4g}"


# -- 1. the field tables ------------------------------------------------------------------------------------------


def field_tables(lines: list[str], curves: dict) -> dict:
    lines += [
        "## 1. Schedules on the Gaussian field of each latent grid",
        "",
        "Data model: `GaussianField(geometry)`, Gaussian data on the latent grid `[T', H', W']` with the default "
        "power-law spectrum `(k_t^2 + k_y^2 + k_x^2 + 1)^-1` (gamma 2, k0 1, w_t 1), mean variance 1. "
        "Metric: relative squared W2 of the exact Euler output (lower is better; exact, no sampling noise). "
        "'best shift' minimises this metric over static shifts at each N; 'auto-shift' is what "
        "`flowsched schedule --flow-shift auto` picks (the same model and metric, so the same numbers here); "
        "'optimized' is `optimize_schedule(N, field)` started from the best shift. Flux's rule uses one latent "
        "frame's token count (Flux is an image model); `schedules.flux` gives the same alpha.",
        "",
    ]
    summary = {}
    for label, (h, w, f, vae) in SETTINGS.items():
        geo = geometry(h, w, f, vae)
        field = GaussianField(geo)
        alphas = rule_alphas(geo)
        rows: dict[str, list[str]] = {
            "linear": [],
            f"Open-Sora rule (alpha {alphas['Open-Sora rule']:.3g})": [],
            f"Flux rule (alpha {alphas['Flux rule']:.3g})": [],
            "best shift": [],
            "auto-shift": [],
            "optimized": [],
            "optimized / best shift": [],
        }
        errs: dict[str, list[float]] = {k: [] for k in ("linear", "Open-Sora rule", "Flux rule", "best shift",
                                                        "optimized")}
        for n in STEPS:
            lin = field.error(schedules.linear(n))
            osr = field.error(schedules.shifted(n, alphas["Open-Sora rule"]))
            flx = field.error(schedules.flux(n, geo.image_seq_len))
            a_best, e_best = best_shift(n, FieldObjective(field))
            a_auto = auto_shift(geo, n)
            e_auto = field.error(schedules.shifted(n, a_auto))
            opt = optimize_schedule(n, field)
            e_opt = field.error(opt)
            for key, val in zip(rows, (lin, osr, flx, None, None, e_opt, e_opt / e_best), strict=True):
                if val is not None:
                    rows[key].append(fmt(val))
            rows["best shift"].append(f"{fmt(e_best)} (alpha {a_best:.3g})")
            rows["auto-shift"].append(f"{fmt(e_auto)} (alpha {a_auto:.3g})")
            for key, val in zip(errs, (lin, osr, flx, e_best, e_opt), strict=True):
                errs[key].append(val)
        curves[label] = errs
        summary[label] = {"ratio10": float(rows["optimized / best shift"][0]), "geo": geo}
        lines += [
            f"### {label}: latent grid {field.shape}, {field.num_modes:,} modes",
            "",
            "| schedule | " + " | ".join(f"N={n}" for n in STEPS) + " |",
            "| --- | " + " | ".join("---:" for _ in STEPS) + " |",
            *[f"| {k} | " + " | ".join(v) + " |" for k, v in rows.items()],
            "",
        ]
    return summary


# -- 2. the mixture -----------------------------------------------------------------------------------------------


def mixture_table(lines: list[str], steps: tuple[int, ...], n: int) -> dict:
    mix = GaussianMixture.standard()
    lines += [
        "## 2. Schedules on the 16-D Gaussian mixture",
        "",
        f"Data model: `GaussianMixture.standard()` ({mix!r}: 8 equal-weight modes on a sphere of radius 3 in "
        f"16-D, std 0.15). Metric: pathwise RMSE of Euler against the mixture's RK4 reference from the same noise, "
        f"over {n} noises (lower is better). The optimiser and the best shift are fitted on the noises of seed 0 "
        "('in sample'); 'held out' scores the same schedules on the noises of seed 1. The peers' shifts are "
        "listed for scale only: they were never meant for this data.",
        "",
        "| schedule | " + " | ".join(f"N={s} in sample | N={s} held out" for s in steps) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in steps) + " |",
    ]
    rows: dict[str, list[str]] = {}
    out = {}
    for s in steps:
        fit = optimize_schedule(s, mix, num_samples=n, seed=0)
        objective = lambda ts: np.array([mix.error(t, num_samples=n, seed=0) for t in ts])  # noqa: E731
        a_best, _ = best_shift(s, objective)  # the same search as the optimiser's start
        cands = {
            "linear": schedules.linear(s),
            "SD3 shipped shift (alpha 3)": schedules.shifted(s, 3.0),
            "Open-Sora 256px rule (alpha 5.73)": schedules.shifted(s, 5.7264),
            "best shift": schedules.shifted(s, a_best),
            "optimized": fit,
        }
        for key, sched in cands.items():
            rows.setdefault(key, [key])
            note = f" (alpha {a_best:.3g})" if key == "best shift" else ""
            rows[key] += [
                fmt(mix.error(sched, num_samples=n, seed=0)) + note, fmt(mix.error(sched, num_samples=n, seed=1))
            ]
        out[s] = {
            "optimized": mix.error(fit, num_samples=n, seed=0),
            "best shift": mix.error(cands["best shift"], num_samples=n, seed=0),
            "held out optimized": mix.error(fit, num_samples=n, seed=1),
            "held out best shift": mix.error(cands["best shift"], num_samples=n, seed=1),
            "schedule": fit,
        }
    for values in rows.values():
        lines.append("| " + " | ".join(values) + " |")
    lines.append("")
    return out


# -- 3. goals -----------------------------------------------------------------------------------------------------


def multistart(lines: list[str]) -> tuple[list[float], float]:
    from flowsched import Schedule

    lines += [
        "## 3. Goals",
        "",
        "### 3.1 The optimiser lands within 1% of the best value found from several starts",
        "",
        "Gaussian field, W2. Starts: the best shift, linear, the Open-Sora rule, and 5 random schedules "
        "(interior values uniform in (0, 1), seed 0). 'spread' is the worst start's final value over the best's. "
        "Fields default to `restarts=0` (one basin, as the spreads show); mixtures to 3 restarts.",
        "",
        "| setting | N | best final value | worst final value | spread |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rng = np.random.default_rng(0)
    verdicts = []
    for label, (h, w, f, vae) in SETTINGS.items():
        geo = geometry(h, w, f, vae)
        field = GaussianField(geo)
        for n in (10, 50):
            starts = ["best-shift", "linear", schedules.shifted(n, rule_alphas(geo)["Open-Sora rule"])]
            starts += [Schedule(np.r_[1.0, np.sort(rng.uniform(0, 1, n - 1))[::-1], 0.0]) for _ in range(5)]
            values = [optimize_schedule(n, field, start=s).params["value"] for s in starts]
            spread = max(values) / min(values)
            verdicts.append(spread)
            lines.append(f"| {label} | {n} | {min(values):.6g} | {max(values):.6g} | {spread:.5f} |")
    mix = GaussianMixture.standard()
    starts = ["best-shift", "linear", schedules.shifted(10, 5.7264), schedules.shifted(10, 0.5)]
    starts += [Schedule(np.r_[1.0, np.sort(rng.uniform(0, 1, 9))[::-1], 0.0]) for _ in range(4)]
    plain, robust, seconds = [], [], []
    for s in starts:
        plain.append(optimize_schedule(10, mix, num_samples=512, start=s, restarts=0))
        t0 = time.perf_counter()
        robust.append(optimize_schedule(10, mix, num_samples=512, start=s))
        seconds.append(time.perf_counter() - t0)
    plain_v = [r.params["value"] for r in plain]
    robust_v = [r.params["value"] for r in robust]
    best_all = min(plain_v + robust_v)
    mixture_spread = max(robust_v) / best_all
    best, worst = plain[int(np.argmin(plain_v))], plain[int(np.argmax(plain_v))]
    path = [mix.error((1 - lam) * worst.t + lam * best.t, num_samples=512) for lam in np.linspace(0, 1, 6)]
    evals = [r.params["evaluations"] for r in robust]
    plain_evals = [r.params["evaluations"] for r in plain]
    lines += [
        f"| 16-D mixture, RMSE, 512 noises, `restarts=0` (plain L-BFGS-B from each start) | 10 | {min(plain_v):.6g} "
        f"| {max(plain_v):.6g} | {max(plain_v) / best_all:.5f} |",
        f"| 16-D mixture, RMSE, 512 noises, default (global phase + 3 restarts) | 10 | {min(robust_v):.6g} "
        f"| {max(robust_v):.6g} | {mixture_spread:.5f} |",
        "",
        "Mixture starts: the best shift, linear, alpha 5.73 (Open-Sora 256px rule), alpha 0.5, and 4 random "
        "schedules; spread is over the best value of all 16 runs. Final value per start, `restarts=0`: "
        + ", ".join(f"{v:.4g}" for v in plain_v)
        + "; default: "
        + ", ".join(f"{v:.4g}" for v in robust_v)
        + ". Along the straight line from the worst `restarts=0` result to the best (6 points) the error is "
        + ", ".join(f"{v:.4g}" for v in path)
        + ": where it rises before it falls, the two are separate local minima, and the start decides which one "
        "plain L-BFGS-B reaches. The default global phase scores about 400 schedules in batches (shifts of a "
        "two-parameter family of step-size shapes, and random perturbations of the best of them and of the "
        "starts), runs 10 L-BFGS-B iterations from the given start, the best shift, linear and the 3 best distinct "
        f"candidates, and continues only the best: {min(evals)}-{max(evals)} schedules scored per call, "
        f"{statistics.median(seconds):.1f} s median per call (max {max(seconds):.1f} s), against "
        f"{min(plain_evals)}-{max(plain_evals)} schedules for a plain run.",
        "",
    ]
    return verdicts, mixture_spread


def timing(lines: list[str], repeats: int) -> dict:
    geo = geometry(576, 1024, 129, "hunyuan")
    optimize_schedule(10, GaussianField(geo))  # warm-up: imports (scipy), caches
    walls, cpus, build, search = [], [], [], []
    for _ in range(repeats):
        cpu, start = time.process_time(), time.perf_counter()
        field = GaussianField(geo)
        t_built = time.perf_counter()
        best_shift(10, FieldObjective(field))
        t_searched = time.perf_counter()
        optimize_schedule(10, field)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        build.append(t_built - start)
        search.append(t_searched - t_built)
    med = statistics.median(walls)
    lines += [
        "### 3.2 Time to optimise 10 steps on the 768px, 129-frame field",
        "",
        f"Latent grid (33, 72, 128) = 304,128 modes, W2, exact gradients, L-BFGS-B from the best shift. Wall time of "
        f"building the field and calling `optimize_schedule(10, field)` (which runs its own best-shift search), "
        f"median of {repeats} after one warm-up, {os.cpu_count()} CPU(s), load average "
        f"{os.getloadavg()[0]:.2f} at the end.",
        "",
        "| part | median (s) |",
        "| --- | ---: |",
        f"| build the field (spectrum, distinct variances) | {statistics.median(build):.3f} |",
        f"| one best-shift search (part of the optimiser's start) | {statistics.median(search):.3f} |",
        f"| **total: field + optimize_schedule** | **{med:.3f}** (max {max(walls):.3f}; "
        f"CPU {statistics.median(cpus):.3f}) |",
        "",
        "Goal: at most 2 s on 2 cores.",
        "",
    ]
    return {"median": med, "max": max(walls)}


def oss(lines: list[str], n: int) -> dict:
    mix = GaussianMixture.standard()
    noise = mix.noise(n, 0)
    optimum = optimize_schedule(10, mix, num_samples=n, seed=0)
    e_opt = optimum.params["value"]
    lines += [
        "### 3.3 Teacher-trajectory search (OSS) on the mixture's exact velocity, 10 steps",
        "",
        f"Same mixture and metric as section 2 ({n} noises, seed 0). The analytic optimum is "
        f"`optimize_schedule(10, mixture)` (exact reference, RMSE {e_opt:.4g}). `teacher_search` only sees the "
        "velocity: it runs a teacher, then the dynamic programme of Optimal Stepsize Sampling (arXiv 2503.21774) "
        "picks 10 of the teacher's grid points; `refine=True` then moves them off the grid with L-BFGS-B against "
        "the teacher's final state (`maxiter` iterations). NFE counts every velocity call on the batch. "
        "`teacher_search(velocity, noise, 10, refine=True)` with 30 iterations (the 30-iteration rows): "
        "the DP alone stays about 20% above the optimum.",
        "",
        "| method | teacher | RMSE | / optimum | NFE | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    out = {}
    runs = [(False, 100, "euler", 0), (False, 100, "heun", 0), (False, 200, "euler", 0)]
    runs += [(True, 100, "euler", k) for k in (5, 10, 30)] + [(True, 100, "heun", 30)]
    for refine, teacher, sampler, maxiter in runs:
        start = time.perf_counter()
        s = teacher_search(
            mix.velocity, noise, 10, teacher=teacher, teacher_sampler=sampler, refine=refine, maxiter=maxiter or 30
        )
        sec = time.perf_counter() - start
        e = mix.error(s, num_samples=n, seed=0)
        name = f"OSS DP + L-BFGS refinement ({maxiter} iterations)" if refine else "OSS DP"
        lines.append(
            f"| {name} | {sampler}, {teacher} linear steps | {e:.4g} | {e / e_opt:.3f} | {s.params['nfe']} | "
            f"{sec:.1f} |"
        )
        out[(refine, teacher, sampler, maxiter)] = (e / e_opt, s.params["nfe"])
    rounded = np.round(optimum.t * 100) / 100  # the optimum moved to the nearest points of the 100-step grid
    e_round = mix.error(rounded, num_samples=n, seed=0)
    lines += [
        "",
        f"Linear at 10 steps: RMSE {mix.error(schedules.linear(10), num_samples=n, seed=0):.4g}. "
        "The analytic optimum moved "
        f"to the nearest points of the 100-step linear teacher grid scores {e_round:.4g} ({e_round / e_opt:.3f}x): "
        "the grid holds a near-optimal chain, and what the DP alone misses is lost in its pruning (it keeps one "
        "student state per step count and grid point, the one closest to the teacher there, which is not the "
        "one that ends best).",
        "",
    ]
    return out


def learned(lines: list[str]) -> dict:
    """The test's tiny flow-matching MLP, with its numbers (tests/test_learned_mlp.py asserts them)."""
    import torch

    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from test_learned_mlp import objective_for, train_velocity  # the test's own model, data and reference

    torch.set_num_threads(1)  # a tiny model: more threads only contend
    velocity = train_velocity()
    _, fit = objective_for(velocity, seed=1)
    _, held = objective_for(velocity, seed=2)
    lin = schedules.linear(8)
    alpha, _ = best_shift(8, fit)
    opt = optimize_schedule(8, fit)
    rows = {"linear": lin, f"best shift (alpha {alpha:.3g})": schedules.shifted(8, alpha), "optimized": opt}
    lines += [
        "### 3.4 A tiny learned model",
        "",
        "The MLP of `tests/test_learned_mlp.py` (3 -> 64 -> 64 -> 2, SiLU, trained 800 Adam steps on 6 modes on a "
        "circle of radius 2, std 0.15, seed 0). Error: mean squared distance of 8-step Euler to a 200-step Heun "
        "solve of the same learned ODE from the same 512 noises (seed 1 fits, seed 2 is held out).",
        "",
        "| schedule | fitted noises | held-out noises |",
        "| --- | ---: | ---: |",
    ]
    for k, s in rows.items():
        lines.append(f"| {k} | {fit(s.t[None])[0]:.4g} | {held(s.t[None])[0]:.4g} |")
    lines.append("")
    return {}


# -- 4. auto-shift against the rules ---------------------------------------------------------------------------------


def autoshift_table(lines: list[str]) -> None:
    cases = [
        ("256x256 image", 256, 256, 1, "flux"),
        ("512x512 image", 512, 512, 1, "flux"),
        ("768x768 image", 768, 768, 1, "flux"),
        ("1024x1024 image", 1024, 1024, 1, "flux"),
        ("2048x2048 image", 2048, 2048, 1, "flux"),
        ("192x336 (256px 16:9), 1 frame", 192, 336, 1, "hunyuan"),
        ("192x336, 33 frames", 192, 336, 33, "hunyuan"),
        ("192x336, 129 frames", 192, 336, 129, "hunyuan"),
        ("576x1024 (768px 16:9), 1 frame", 576, 1024, 1, "hunyuan"),
        ("576x1024, 33 frames", 576, 1024, 33, "hunyuan"),
        ("576x1024, 65 frames", 576, 1024, 65, "hunyuan"),
        ("576x1024, 129 frames", 576, 1024, 129, "hunyuan"),
    ]
    lines += [
        "## 4. Auto-shift against the peers' rules",
        "",
        "alpha of each rule and the auto-shift (W2-optimal on `GaussianField(geometry)`, default spectrum) at 10, 20 "
        "and 50 Euler steps. 'auto, static frames' uses the same spectrum with `w_t = 1e4`, so temporal "
        "frequencies carry almost no variance (nearly identical frames), at 20 steps. Open-Sora: "
        "`(1 + 2 (L - 256) / 3840) * sqrt(T')`, L one frame's tokens; Flux: `exp(mu)`, mu on the line "
        "(256, 0.5)-(4096, 1.15) in L, one frame (image model); SD3: `3 * sqrt(H W / 1024^2)`, SD3's shipped 3.0 "
        "at 1024^2 moved by its paper's sqrt(m / n) resolution argument (image model, no frame factor).",
        "",
        "| geometry | latent grid | Open-Sora | Flux | SD3 | auto N=10 | auto N=20 | auto N=50 | auto, static frames |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, h, w, f, vae in cases:
        geo = geometry(h, w, f, vae)
        r = rule_alphas(geo)
        autos = [auto_shift(geo, n) for n in (10, 20, 50)]
        static = auto_shift(GaussianField(geo, w_t=1e4), 20) if geo.latent_frames > 1 else autos[1]
        grid = (geo.latent_frames, geo.latent_height, geo.latent_width)
        lines.append(
            f"| {label} | {grid} | {r['Open-Sora rule']:.3g} | {r['Flux rule']:.3g} | {r['SD3 rule']:.3g} | "
            + " | ".join(f"{a:.3g}" for a in autos)
            + f" | {static:.3g} |"
        )
    lines.append("")


# -- 5. stochastic samplers and partial schedules ----------------------------------------------------------------

SAMPLER_STEPS = (4, 8, 16, 32, 50)
SAMPLER_ROWS = {
    "Euler (deterministic)": ("euler", {}),
    "ancestral, eta 0.5": ("euler_ancestral", {"eta": 0.5}),
    "ancestral, eta 1": ("euler_ancestral", {"eta": 1.0}),
    "stochastic Euler": ("stochastic_euler", {}),
}
STRENGTHS = (0.3, 0.6, 0.9)
PARTIAL_BASE = ("shifted:alpha=3", 28)  # SD3's shipped shift and step count


def sampler_field_tables(lines: list[str]) -> dict:
    """Closed-form W2 of each sampler on the 256px and 768px fields: at Euler's best shift, and at its own."""
    lines += [
        "## 5. Stochastic samplers and partial schedules",
        "",
        "### 5.1 Deterministic vs stochastic samplers on the Gaussian fields (exact)",
        "",
        "Data model: the Gaussian fields of section 1. Every sampler here maps Gaussian noise to a Gaussian, mode by "
        "mode, so its output variance follows a recursion per mode and the error is exact, with no sampling noise "
        "(`GaussianField.error(schedule, sampler=...)`, docs/quality-models.md; checked against a dense covariance "
        "propagation to 1e-9 and Monte Carlo of the real samplers in `tests/test_quality_stochastic.py`). Metric: "
        "relative squared W2 (lower is better). 'ancestral' is ComfyUI's RF Euler ancestral step "
        "(`flowsched.sampling.euler_ancestral`, s_noise 1), 'stochastic Euler' diffusers' `stochastic_sampling` "
        "(`stochastic_euler`). Two schedule choices: Euler's best static shift at each N for every sampler (the same "
        "schedule), and each sampler at its own best static shift (alpha in brackets).",
        "",
    ]
    out: dict = {}
    for label in ("Open-Sora 256px, 129 frames", "Open-Sora 768px, 129 frames"):
        h, w, f, vae = SETTINGS[label]
        field = GaussianField(geometry(h, w, f, vae))
        same: dict[str, list[str]] = {k: [] for k in SAMPLER_ROWS}
        own: dict[str, list[str]] = {k: [] for k in SAMPLER_ROWS}
        values: dict = {k: {} for k in SAMPLER_ROWS}
        for n in SAMPLER_STEPS:
            a_euler, _ = best_shift(n, FieldObjective(field))
            sched = schedules.shifted(n, a_euler)
            for key, (sampler, kw) in SAMPLER_ROWS.items():
                e_same = field.error(sched, sampler=sampler, **kw)

                def objective(ts, field=field, sampler=sampler, kw=kw):
                    return field.error_batch(ts, "w2", sampler=sampler, **kw)

                a_own, e_own = best_shift(n, objective)
                same[key].append(fmt(e_same))
                own[key].append(f"{fmt(e_own)} ({a_own:.3g})")
                values[key][n] = (e_same, e_own, a_own)
        out[label] = values
        head = "| sampler | " + " | ".join(f"N={n}" for n in SAMPLER_STEPS) + " |"
        rule = "| --- | " + " | ".join("---:" for _ in SAMPLER_STEPS) + " |"
        lines += [
            f"#### {label}: latent grid {field.shape}",
            "",
            "W2 on Euler's best shift (the same schedule for every sampler):",
            "",
            head,
            rule,
            *[f"| {k} | " + " | ".join(v) + " |" for k, v in same.items()],
            "",
            "W2 on each sampler's own best shift (alpha):",
            "",
            head,
            rule,
            *[f"| {k} | " + " | ".join(v) + " |" for k, v in own.items()],
            "",
        ]
    return out


def sampler_mixture_table(lines: list[str], num_samples: int, seeds: tuple[int, ...]) -> dict:
    """Monte Carlo sliced W2 of each sampler on the mixture, averaged over seeds, with the noise floor."""
    mix = GaussianMixture.standard()
    floor = [mix.noise_floor(num_samples, seed=s) for s in seeds]
    floor_mean = float(np.mean(floor))
    floor_se = float(np.std(floor, ddof=1) / math.sqrt(len(seeds)))
    lines += [
        "### 5.2 The same samplers on the 16-D Gaussian mixture (Monte Carlo)",
        "",
        f"Data model: `GaussianMixture.standard()`. Metric: sliced W2 to fresh true samples (lower is better), "
        f"{num_samples} samples, mean over seeds {', '.join(map(str, seeds))} +- its standard error; schedule "
        f"`shifted(N, 2)` (near Euler's best shift on this data, section 2) for every sampler; the stochastic "
        f"samplers' per-step noise is portable noise of the seed. Noise floor (two independent true sets of this "
        f"size): {floor_mean:.4f} +- {floor_se:.4f}; a perfect sampler scores about that.",
        "",
        "| sampler | " + " | ".join(f"N={n}" for n in SAMPLER_STEPS) + " |",
        "| --- | " + " | ".join("---:" for _ in SAMPLER_STEPS) + " |",
    ]
    out: dict = {"floor": floor_mean}
    for key, (sampler, kw) in SAMPLER_ROWS.items():
        cells, out[key] = [], {}
        for n in SAMPLER_STEPS:
            vals = [
                mix.error(schedules.shifted(n, 2.0), metric="sliced_w2", num_samples=num_samples, seed=s,
                          sampler=sampler, **kw)
                for s in seeds
            ]
            mean, se = float(np.mean(vals)), float(np.std(vals, ddof=1) / math.sqrt(len(vals)))
            out[key][n] = (mean, se)
            cells.append(f"{mean:.4f} +- {se:.4f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    return out


def partial_tables(lines: list[str], num_samples: int, seeds: tuple[int, ...]) -> dict:
    """Image-to-image: each strength convention at strengths 0.3, 0.6, 0.9 on the same base schedule."""
    from flowsched.strength import CONVENTIONS, partial

    spec, n = PARTIAL_BASE
    fields = {
        label: GaussianField(geometry(*SETTINGS[label]))
        for label in ("Open-Sora 256px, 129 frames", "Open-Sora 768px, 129 frames")
    }
    mix = GaussianMixture.standard()
    lines += [
        "### 5.3 Partial schedules: starting from a noised data sample, per strength convention",
        "",
        f"Base schedule `{spec}` at N = {n} (SD3's shipped shift and steps), Euler. Each convention cuts it at the "
        "strength its own way (`flowsched.strength.partial`); the data sample `x0` is noised to the first value, "
        "`x = (1 - t0) x0 + t0 eps`, and the sampler runs the rest. Error: the distance of the output distribution "
        "to the data distribution (an exact sampler scores 0 on the fields, the noise floor on the mixture); fields: "
        "exact relative squared W2 (`GaussianField.error(schedule, start=\"data\")`); mixture: sliced W2, "
        f"{num_samples} samples, mean over seeds {', '.join(map(str, seeds))}. 'start t' and 'steps' are the "
        "same strength's different meanings: a lower start keeps more of the latent, more steps cost more model "
        "calls.",
        "",
        "| strength | convention | start t | steps | " + " | ".join(f"W2, {k.split(',')[0]}" for k in fields)
        + " | sliced W2, mixture |",
        "| ---: | --- | ---: | ---: | " + " | ".join("---:" for _ in fields) + " | ---: |",
    ]
    out: dict = {}
    for strength in STRENGTHS:
        for conv in CONVENTIONS:
            cut = partial(spec, n, strength, convention=conv)
            errs = [f.error(cut, start="data") for f in fields.values()]
            mixed = float(np.mean([
                mix.error(cut, metric="sliced_w2", num_samples=num_samples, seed=s, start="data") for s in seeds
            ]))
            out[(strength, conv)] = (float(cut.t[0]), cut.num_steps, errs, mixed)
            lines.append(
                f"| {strength:g} | {conv} | {cut.t[0]:.3f} | {cut.num_steps} | "
                + " | ".join(fmt(e) for e in errs) + f" | {mixed:.4f} |"
            )
    lines.append("")
    return out


def stochastic_section(lines: list[str], quick: bool) -> None:
    """Section 5: samplers on the fields and the mixture, partial schedules, and which wins where."""
    num_samples, seeds = (2048, (0, 1)) if quick else (8192, (0, 1, 2, 3))
    field = sampler_field_tables(lines)
    mixture = sampler_mixture_table(lines, num_samples, seeds)
    partial_tables(lines, num_samples, seeds)
    lines += ["### 5.4 Which wins where (read off 5.1 and 5.2)", "", *sampler_verdict(field, mixture), ""]


def sampler_verdict(field: dict, mixture: dict) -> list[str]:
    """Plain sentences: which sampler wins where, read off the tables above."""
    out = []
    for label, values in field.items():
        wins_same = [min(values, key=lambda k: values[k][n][0]) for n in SAMPLER_STEPS]
        wins_own = [min(values, key=lambda k: values[k][n][1]) for n in SAMPLER_STEPS]
        out.append(
            f"- {label} field: lowest W2 on Euler's best shift at N = "
            + ", ".join(f"{n}: {w}" for n, w in zip(SAMPLER_STEPS, wins_same, strict=True))
            + "; each at its own best shift: "
            + ", ".join(f"{n}: {w}" for n, w in zip(SAMPLER_STEPS, wins_own, strict=True))
            + "."
        )
    samplers = [k for k in mixture if k != "floor"]
    wins = []
    for n in SAMPLER_STEPS:
        best = min(samplers, key=lambda k: mixture[k][n][0])
        tied = [k for k in samplers if k != best and mixture[k][n][0] - 2 * mixture[k][n][1] <= mixture[best][n][0]]
        wins.append(f"{n}: {best}" + (f" (within 2 standard errors: {', '.join(tied)})" if tied else ""))
    out.append("- mixture: lowest sliced W2 at N = " + "; ".join(wins) + ".")
    return out


# -- figure ---------------------------------------------------------------------------------------------------------


def figure(curves: dict, mixture: dict) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    from flowsched.plot import save_figure

    fig = Figure(figsize=(13.0, 7.6), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (label, errs) in zip(axes.ravel(), curves.items(), strict=True):
        for name, values in errs.items():
            ax.plot(STEPS, values, marker="o", markersize=3.5, linewidth=1.3, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(STEPS, [str(s) for s in STEPS])
        ax.set_xlabel("Euler steps N")
        ax.set_ylabel("relative squared W2")
        ax.set_title(f"Gaussian field: {label}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    first = min(mixture)
    i = np.arange(first + 1)
    ax.plot(i, schedules.linear(first).t, marker=".", label="linear")
    ax.plot(i, mixture[first]["schedule"].t, marker=".", label="optimized on the mixture (RMSE)")
    geo = geometry(576, 1024, 129, "hunyuan")
    ax.plot(i, optimize_schedule(first, GaussianField(geo)).t, marker=".", label="optimized on the 768px field (W2)")
    ax.plot(i, schedules.shifted(first, rule_alphas(geo)["Open-Sora rule"]).t, marker=".",
            label="Open-Sora 768px rule")
    ax.set_xlabel("step i")
    ax.set_ylabel("t (1 = noise)")
    ax.set_title(f"{first}-step schedules", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, OUT_PNG)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="mixture at 10 steps only, no learned model")
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats")
    ap.add_argument("--stochastic-only", action="store_true",
                    help="print section 5 (stochastic samplers, partial schedules) alone; writes nothing")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.stochastic_only:
        lines: list[str] = []
        stochastic_section(lines, args.quick)
        print("\n".join(lines))
        print(f"({time.perf_counter() - started:.0f} s)")
        return 0
    lines = [
        "# Quality: what a schedule costs",
        "",
        f"Written by `python benchmarks/quality.py{' --quick' if args.quick else ''}` "
        f"({platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPU(s)). Every number is for the data model named above its table; none is a claim "
        "about a trained video model.",
        "",
    ]
    curves: dict = {}
    summary = field_tables(lines, curves)
    mix_n = 512
    mixture = mixture_table(lines, (10,) if args.quick else (10, 20), mix_n)
    spreads, mixture_spread = multistart(lines)
    times = timing(lines, args.repeats)
    oss_ratios = oss(lines, mix_n)
    if not args.quick:
        learned(lines)
    autoshift_table(lines)
    stochastic_section(lines, args.quick)
    figure(curves, mixture)
    m10 = mixture[10]
    best_oss = min(r for r, _ in oss_ratios.values())
    dp_only = min(r for (refine, *_), (r, _) in oss_ratios.items() if not refine)
    within = [(nfe, r) for (refine, *_), (r, nfe) in oss_ratios.items() if refine and r <= 1.05]
    cheapest = f"{min(within)[0]} calls ({min(within)[1]:.3f}x)" if within else "no refined run"
    if dp_only <= 1.05:
        oss_verdict = "yes"
    else:
        oss_verdict = "with the refinement only" if best_oss <= 1.05 else "no"
    lines[4:4] = [
        "## Goals at a glance",
        "",
        "| goal | measured | met |",
        "| --- | --- | --- |",
        f"| optimiser within 1% of the best value from several starts | field: worst spread {max(spreads):.5f}; "
        f"mixture: {mixture_spread:.4f} (section 3.1) | field {'yes' if max(spreads) <= 1.01 else 'no'}, mixture "
        f"{'yes' if mixture_spread <= 1.01 else 'no'} |",
        "| optimised 10 steps never worse than the best shift (field) | optimized / best shift at N=10: "
        + ", ".join(f"{v['ratio10']:.3f}" for v in summary.values())
        + f" | {'yes' if all(v['ratio10'] <= 1 for v in summary.values()) else 'no'} |",
        f"| ... and clearly better on the mixture | RMSE {m10['optimized']:.4g} vs best shift {m10['best shift']:.4g} "
        f"in sample ({m10['optimized'] / m10['best shift']:.3f}x); held out {m10['held out optimized']:.4g} vs "
        f"{m10['held out best shift']:.4g} | {'yes' if m10['optimized'] < 0.9 * m10['best shift'] else 'no'} |",
        f"| optimise 10 steps on the 768px field in at most 2 s | median {times['median']:.3f} s, max "
        f"{times['max']:.3f} s (section 3.2) | {'yes' if times['max'] <= 2 else 'no'} |",
        f"| teacher-trajectory search within 5% of the mixture's analytic optimum | OSS DP alone: {dp_only:.3f}x; "
        f"with refinement: {best_oss:.3f}x; within 5% from {cheapest} "
        f"(section 3.3) | {oss_verdict} |",
        "",
    ]
    lines += [f"Total run time {time.perf_counter() - started:.0f} s. Figure: `quality.png`.", ""]
    from flowsched._io import atomic_write_text

    atomic_write_text(OUT_MD, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
