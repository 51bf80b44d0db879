"""flowsched's schedule advice checked on trained velocity networks, on real photographs, at 8 to 64 px.

For each resolution's network (``benchmarks/trained/velocity-<R>px``, trained by ``train_velocity.py``) and each
step count N in {4, 8, 16, 32}, Euler samples from fixed evaluation noises are scored two ways:

- RMSE against a fine teacher (Heun, 64 steps on shift 3; its own error
  against 128 steps is reported) from the same noises: per-sample squared errors, so
  every comparison between schedules is paired;
- sliced W2 in pixel space (``flowsched.quality.sliced_w2``, 256 directions) against held-out crops, with its
  noise floor (two held-out halves of the same size) and a train-vs-held-out reference.

Standard errors: a paired bootstrap over the evaluation noises (RMSE, and each schedule's ratio to the best
static shift), and over noises and held-out crops together (sliced W2; own projections, the same formula).

Schedules: linear; static shifts on a half-octave grid (the empirical optimum interpolated by a parabola in
``log alpha``); the Flux, SD3 (static 3) and Open-Sora rules at ``(R / 2)^2`` tokens (a patch-2 transformer on the
data grid); ``auto_shift`` on the Gaussian field fitted to the training crops (``fit_spectrum``; metric W2 and
KL), and the same with the zero-frequency term replaced by its ring-1 neighbours (a prototype fit, not in the
library); ``optimize_schedule`` on the fitted field; ``teacher_search`` (OSS, its default linear Euler teacher of
max(100, 4 N) steps) on the network with search noises disjoint from the evaluation noises. Diagnostics: where
each schedule's error lies in frequency (network against field), the best shift per frequency band, and the
spectral KL of the samples.

    python benchmarks/trained.py                      # every resolution with a network: 7-15 min each (loaded 2 cores)
    python benchmarks/trained.py --quick              # fewer noises and shifts: about 5 minutes
    python benchmarks/trained.py --resolutions 8 16   # measure some resolutions only (raw JSON per resolution)
    python benchmarks/trained.py --report-only        # assemble the report from the raw JSON files
    python benchmarks/trained.py --oss-only --resolutions 16   # re-run only the OSS rows of a saved run
    python benchmarks/trained.py --fine-grid 8 32 1.414 2   # error on 9 shifts in [1.414, 2] at 8 px, N=32

Writes ``benchmarks/results/trained.md``, ``trained.png`` (best shift against resolution), ``trained-curves.png``
(loss curves, sample grids) and ``trained-<R>px.json`` (every number; ``--quick``: ``trained-quick*``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trained_data import RESOLUTIONS, CropSource  # noqa: E402
from trained_net import load_config, load_velocity_net, weights_path  # noqa: E402

from flowsched import schedules  # noqa: E402
from flowsched.quality import (  # noqa: E402
    GaussianField,
    auto_shift,
    fit_spectrum,
    optimize_schedule,
    sliced_w2,
    teacher_search,  # noqa: E402
)
from flowsched.quality.optimize import FieldObjective, best_shift  # noqa: E402
from flowsched.sampling import euler, heun  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
STEPS = (4, 8, 16, 32)
TEACHER = {"steps": 64, "alpha": 3.0}
SETTINGS = {
    "full": {"n_eval": 256, "n_search": 64, "oss_teacher": None, "grid": [2 ** (k / 2) for k in range(-2, 9)],
             "boot": 200, "fit": 4096, "teacher_check": 64},
    "quick": {"n_eval": 64, "n_search": 16, "oss_teacher": None, "grid": [2.0**k for k in range(-1, 5)],
              "boot": 50, "fit": 1024, "teacher_check": 16},
}
SEEDS = {"eval": 1, "search": 2, "held": 3, "fit": 4, "boot": 5}
OSS = "teacher_search (OSS)"


# -- the network as a velocity -------------------------------------------------------------------------------


def velocity_of(net: torch.nn.Module, chunk: int = 512):
    """``v(x, t)`` for flowsched's samplers: the network under ``no_grad``, in chunks of ``chunk`` samples."""

    @torch.no_grad()
    def v(x: torch.Tensor, t: float) -> torch.Tensor:
        return torch.cat([net(x[i : i + chunk], t) for i in range(0, x.shape[0], chunk)])

    return v


def noises(n: int, resolution: int, seed: int) -> torch.Tensor:
    """``n`` standard normal states ``[n, 1, R, R]`` from torch's CPU generator seeded with ``seed``."""
    return torch.randn((n, 1, resolution, resolution), generator=torch.Generator().manual_seed(seed))


def rule_alphas(resolution: int) -> dict[str, float]:
    """The peers' shifts at ``(R / 2)^2`` tokens (unclamped, as the peers compute them below 256 tokens)."""
    tokens = (resolution // 2) ** 2
    return {
        "Flux rule": math.exp(schedules.flux_mu(tokens)),
        "SD3 static": 3.0,
        "Open-Sora rule": schedules.opensora_alpha(tokens, 1),
    }


# -- the fitted field and its variants -------------------------------------------------------------------------


def fitted_fields(train: np.ndarray) -> dict[str, GaussianField]:
    """The field ``fit_spectrum`` fits to the training crops ``[n, 1, R, R]`` (radial average), and prototypes:
    its zero-frequency variance replaced by the ring-1 variance ("no DC"), and the sign-flip average ("grid")."""
    lam = fit_spectrum(train[:, 0], image=True)
    no_dc = lam.copy()
    no_dc[0, 0, 0] = lam[0, 0, 1]
    return {
        "fitted": GaussianField(variances=lam),
        "fitted, no DC": GaussianField(variances=no_dc),
        "fitted, grid average": GaussianField(variances=fit_spectrum(train[:, 0], image=True, average="grid")),
    }


def analytic_schedules(fields: dict[str, GaussianField], n: int) -> dict[str, dict]:
    """Every schedule flowsched derives from the data alone, for ``n`` steps: label -> {schedule, alpha}."""
    out = {}
    for (label, field), metric in [((k, f), m) for k, f in fields.items() for m in ("w2", "kl")]:
        if label == "fitted, grid average" and metric == "kl":
            continue
        # the KL-optimal shift is no longer advice (auto_shift refuses it): measured here with the same search
        a = auto_shift(field, n) if metric == "w2" else best_shift(n, FieldObjective(field, "kl"))[0]
        out[f"auto-shift {metric.upper()} ({label})"] = {"schedule": schedules.shifted(n, a), "alpha": a}
    opt = optimize_schedule(n, fields["fitted"])
    out["optimize_schedule (fitted, W2)"] = {"schedule": opt, "alpha": None}
    opt = optimize_schedule(n, fields["fitted, no DC"])
    out["optimize_schedule (fitted, no DC, W2)"] = {"schedule": opt, "alpha": None}
    return out


# -- metrics ---------------------------------------------------------------------------------------------------


def radial_bands(resolution: int) -> tuple[np.ndarray, list[str]]:
    """Band index of each FFT mode ``[R, R]``: 0 the zero frequency, then octaves of the radius |k|: [1, 2),
    [2, 4), ... (integer frequencies)."""
    k = np.abs(np.fft.fftfreq(resolution) * resolution)
    r = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    band = np.where(r == 0, 0, np.floor(np.log2(np.maximum(r, 1.0))).astype(int) + 1)
    labels = ["DC"] + [f"radius {2 ** (b - 1)}-{2 ** b}" for b in range(1, band.max() + 1)]
    return band, labels


def mode_power(x: np.ndarray) -> np.ndarray:
    """``|FFT(x)_k|^2 / R^2`` per sample and mode, ``[n, R, R]`` (the per-element variance convention of
    ``fit_spectrum``)."""
    return np.abs(np.fft.fft2(x[:, 0])) ** 2 / (x.shape[-1] * x.shape[-2])


def band_sums(power: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Sum of ``power[..., R, R]`` over each band: ``[..., bands]``."""
    flat = power.reshape(*power.shape[:-2], -1)
    return np.stack([flat[..., band.ravel() == b].sum(-1) for b in range(band.max() + 1)], axis=-1)


def bootstrap_indices(n: int, boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, (boot, n))


def rmse_stats(sq: np.ndarray, idx: np.ndarray, best: int) -> dict[str, np.ndarray]:
    """Per-sample squared errors ``sq[S, n]`` -> RMSE per schedule, its bootstrap SE, and the ratio to schedule
    ``best`` with its paired SE (the same resampled noises for both)."""
    rmse = np.sqrt(sq.mean(1))
    boot = np.sqrt(sq[:, idx].mean(2))  # [S, B]
    ratio = boot / boot[best][None]
    return {"rmse": rmse, "rmse_se": boot.std(1, ddof=1), "ratio": rmse / rmse[best], "ratio_se": ratio.std(1, ddof=1)}


def sw2_stats(samples: list[np.ndarray], ref: np.ndarray, boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliced W2 of each sample set ``[n, 1, R, R]`` against ``ref`` (flowsched's ``sliced_w2``, 256 directions)
    and its SE by a bootstrap over samples and reference together (128 own directions, paired across sets)."""
    flat = [s.reshape(s.shape[0], -1).astype(np.float64) for s in samples]
    ref = ref.reshape(ref.shape[0], -1).astype(np.float64)
    value = np.array([sliced_w2(f, ref) for f in flat])
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((ref.shape[1], 128))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    proj = [f @ theta for f in flat]
    pref = ref @ theta
    out = np.empty((len(flat), boot))
    for b in range(boot):
        i, j = rng.integers(0, ref.shape[0], (2, ref.shape[0]))
        pr = np.sort(pref[j], axis=0)
        for s, p in enumerate(proj):
            out[s, b] = math.sqrt(np.mean((np.sort(p[i], axis=0) - pr) ** 2))
    return value, out.std(1, ddof=1)


def interpolated_optimum(alphas: list[float], values: np.ndarray) -> tuple[float, float, str]:
    """The minimum of ``values`` over the shift grid, refined by a parabola through the grid minimum and its two
    neighbours in ``log alpha``: (alpha*, value at the parabola's vertex, "" or "<=" / ">=" at a grid edge)."""
    k = int(np.argmin(values))
    if k == 0 or k == len(alphas) - 1:
        return alphas[k], float(values[k]), "<=" if k == 0 else ">="
    x = np.log(alphas[k - 1 : k + 2])
    c2, c1, c0 = np.polyfit(x, values[k - 1 : k + 2], 2)
    if c2 <= 0:
        return alphas[k], float(values[k]), ""
    xv = float(np.clip(-c1 / (2 * c2), x[0], x[-1]))
    return math.exp(xv), float(c0 + c1 * xv + c2 * xv * xv), ""


# -- measuring one resolution ----------------------------------------------------------------------------------


class Setup:
    """Everything one resolution's measurement shares: the network, noises, teacher, held-out crops, fields."""

    def __init__(self, resolution: int, mode: str, log=print) -> None:
        cfg = SETTINGS[mode]
        self.resolution, self.cfg, self.log = resolution, cfg, log
        self.net_config = load_config(weights_path(resolution))
        self.velocity = velocity_of(load_velocity_net(weights_path(resolution)))
        source = CropSource(resolution)
        n = cfg["n_eval"]
        self.train = source.train_fixed(cfg["fit"], SEEDS["fit"])
        held = source.held_out(2 * n + cfg["fit"], SEEDS["held"])
        self.held_a, self.held_b, held_big = held[:n], held[n : 2 * n], held[2 * n :]
        self.data_spectrum = fit_spectrum(held_big[:, 0], image=True)
        self.noise = noises(n, resolution, SEEDS["eval"])
        self.search_noise = noises(cfg["n_search"], resolution, SEEDS["search"])
        self.fields = fitted_fields(self.train)
        self.band, self.band_labels = radial_bands(resolution)
        start = time.perf_counter()
        teacher = schedules.shifted(TEACHER["steps"], TEACHER["alpha"])
        self.teacher = heun(self.velocity, self.noise, teacher).numpy()
        m = cfg["teacher_check"]
        fine = heun(self.velocity, self.noise[:m], schedules.shifted(2 * TEACHER["steps"], TEACHER["alpha"]))
        self.teacher_rmse = float(np.sqrt(np.mean((fine.numpy() - self.teacher[:m]) ** 2)))
        self.seconds = {"teacher": time.perf_counter() - start}
        log(f"{resolution}px: teacher done in {self.seconds['teacher']:.0f} s (its own RMSE {self.teacher_rmse:.2e})")

    def run(self, schedule) -> np.ndarray:
        return euler(self.velocity, self.noise, schedule).numpy()

    def references(self) -> dict[str, float]:
        """Sliced W2 floors (held-out half against half; training crops against held-out) and the spectral KL of
        held-out crops against the larger held-out set."""
        n = self.held_a.shape[0]
        flat = [x.reshape(n, -1).astype(np.float64) for x in (self.held_a, self.held_b, self.train[:n])]
        return {
            "sw2_floor": sliced_w2(flat[1], flat[0]),
            "sw2_train": sliced_w2(flat[2], flat[0]),
            "kl_floor": spectral_kl_of(self.held_a, self.data_spectrum),
            "mean_square": float(np.mean(self.train.astype(np.float64) ** 2)),
        }


def spectral_kl_of(samples: np.ndarray, data_spectrum: np.ndarray) -> float:
    """Mean per-mode ``KL(N(0, v_gen) || N(0, v_data))``, both spectra radially averaged by ``fit_spectrum``: the
    field's "kl" metric measured on samples (the texture a sampler gets right or wrong)."""
    r = fit_spectrum(samples[:, 0].astype(np.float64), image=True) / data_spectrum
    return float(np.mean(0.5 * (r - 1.0 - np.log(r))))


def field_band_errors(field: GaussianField, schedule, band: np.ndarray) -> np.ndarray:
    """The field's exact Euler error per band, ``sum_k lambda_k (gain_k - 1)^2 / R^2`` over the band's modes: the
    per-pixel mean squared error against the exact flow from the same noise (Parseval), as the network's."""
    err = field.variances * (field.gains(schedule) - 1.0) ** 2
    return band_sums(err[0], band) / band.size


def schedule_set(setup: Setup, n: int) -> dict[str, dict]:
    """label -> {schedule, alpha, kind}: linear, the shift grid, the peers' rules, flowsched's analytic advice and
    OSS on the network (search noises only)."""
    out = {"linear": {"schedule": schedules.linear(n), "alpha": 1.0, "kind": "linear"}}
    for a in setup.cfg["grid"]:
        out[f"shift {a:.3g}"] = {"schedule": schedules.shifted(n, a), "alpha": a, "kind": "grid"}
    for label, a in rule_alphas(setup.resolution).items():
        out[f"{label} ({a:.3g})"] = {"schedule": schedules.shifted(n, a), "alpha": a, "kind": "rule"}
    for label, item in analytic_schedules(setup.fields, n).items():
        out[label] = {**item, "kind": "flowsched"}
    out[OSS] = oss_item(setup, n)
    return out


def oss_item(setup: Setup, n: int) -> dict:
    """OSS on the network at ``n`` steps, searched on the search noises only, with its cost."""
    start = time.perf_counter()
    oss = teacher_search(setup.velocity, setup.search_noise, n, teacher=setup.cfg["oss_teacher"])
    return {"schedule": oss, "alpha": None, "kind": "oss", "nfe": oss.params["nfe"],
            "teacher_steps": oss.params["teacher_steps"], "seconds": time.perf_counter() - start}


def remeasure_oss(path: str, log=print) -> None:
    """Re-run only the OSS rows of a saved resolution (``--oss-only``) with the current settings' teacher, scored
    beside the saved best static shift, and rewrite the raw JSON. Cheaper than a full run (no grid, no fields'
    advice) and equal to it row for row: the best static shift's RMSE is checked against the saved one."""
    with open(path, encoding="utf-8") as f:
        rec = json.load(f)
    setup = Setup(rec["resolution"], rec["mode"], log)
    old_seconds = 0.0
    for key, step in rec["steps"].items():
        n, best = int(key), step["best_label"]
        saved = step["rows"][best]
        items = {best: {"schedule": schedules.shifted(n, saved["alpha"]), "alpha": saved["alpha"], "kind": "grid"},
                 OSS: oss_item(setup, n)}
        rows, _ = score_rows(setup, n, items, [0])
        drift = abs(rows[best]["rmse"] / saved["rmse"] - 1.0)
        if drift > 1e-4:
            raise SystemExit(f"{rec['resolution']}px N={n}: the best shift's RMSE {rows[best]['rmse']:.6g} is not "
                             f"the saved {saved['rmse']:.6g}; re-run the whole resolution instead")
        old_seconds += step["rows"][OSS].get("seconds", 0.0)
        step["rows"][OSS] = rows[OSS]
        log(f"{rec['resolution']}px N={n}: OSS ({items[OSS]['teacher_steps']}-step teacher) at "
            f"{rows[OSS]['ratio']:.3f} ± {rows[OSS]['ratio_se']:.3f} of the best static shift")
    rec["settings"]["oss_teacher"] = setup.cfg["oss_teacher"]
    rec["oss_remeasured"] = True
    new_seconds = sum(step["rows"][OSS]["seconds"] for step in rec["steps"].values())
    rec["seconds"]["total"] += new_seconds - old_seconds
    from flowsched._io import atomic_write_text

    atomic_write_text(path, json.dumps(rec) + "\n")


def score_rows(setup: Setup, n: int, items: dict[str, dict], among: list[int]) -> tuple[dict[str, dict], int]:
    """label -> every number of one schedule at ``n`` steps (RMSE against the teacher and its ratio to the best
    of the schedules at indices ``among`` with paired SEs, sliced W2 with SE, error per frequency band for the
    network and the fitted field, spectral KL), and the index of that best. The bootstrap draws do not depend on
    which schedules are scored together, so a row scored with only the best static shift beside it equals the row
    of a full run."""
    labels = list(items)
    samples = [setup.run(items[k]["schedule"]).astype(np.float32) for k in labels]
    sq = np.stack([((x - setup.teacher) ** 2).reshape(x.shape[0], -1).mean(1) for x in samples])
    best = among[int(np.argmin(np.sqrt(sq[among].mean(1))))]
    idx = bootstrap_indices(sq.shape[1], setup.cfg["boot"], SEEDS["boot"] + n)
    stats = rmse_stats(sq, idx, best)
    sw2, sw2_se = sw2_stats(samples, setup.held_a, setup.cfg["boot"] // 2, SEEDS["boot"] + 100 + n)
    field = setup.fields["fitted"]
    rows = {}
    for i, k in enumerate(labels):
        sched = items[k]["schedule"]
        rows[k] = {
            "kind": items[k]["kind"], "alpha": items[k]["alpha"], "t": [float(v) for v in sched.t],
            **{key: float(val[i]) for key, val in stats.items()},
            "sw2": float(sw2[i]), "sw2_se": float(sw2_se[i]),
            "spectral_kl": spectral_kl_of(samples[i], setup.data_spectrum),
            "band_mse": band_sums(mode_power(samples[i] - setup.teacher).mean(0), setup.band).tolist(),
            "field_band_mse": field_band_errors(field, sched, setup.band).tolist(),
            "field_rmse": math.sqrt(field.error(sched) * field.total_variance / setup.band.size),
            **({"nfe": items[k]["nfe"], "seconds": items[k]["seconds"]} if "nfe" in items[k] else {}),
        }
    return rows, best


def measure_steps(setup: Setup, n: int) -> dict:
    """Every schedule at ``n`` steps on the network (:func:`score_rows`) and the empirical optimum."""
    start = time.perf_counter()
    items = schedule_set(setup, n)
    labels = list(items)
    grid = [i for i, k in enumerate(labels) if items[k]["kind"] == "grid"]
    rows, best = score_rows(setup, n, items, grid)
    alphas = [items[labels[i]]["alpha"] for i in grid]
    a_star, v_star, edge = interpolated_optimum(alphas, np.array([rows[labels[i]]["rmse"] for i in grid]))
    near = [a for a, i in zip(alphas, grid, strict=True) if rows[labels[i]]["ratio"] <= 1.01]
    setup.log(f"{setup.resolution}px N={n}: best shift {a_star:.3g} ({time.perf_counter() - start:.0f} s)")
    return {"rows": rows, "best_label": labels[best], "alpha_star": a_star, "rmse_star": v_star, "edge": edge,
            "within_1pct": [min(near), max(near)], "samples_grid": grid, "seconds": time.perf_counter() - start}


def measure_resolution(resolution: int, mode: str, log=print) -> dict:
    """One resolution: its setup, every step count, the reference numbers and a grid of 100-step samples."""
    start = time.perf_counter()
    setup = Setup(resolution, mode, log)
    steps = {str(n): measure_steps(setup, n) for n in STEPS}
    for rec in steps.values():
        rec.pop("samples_grid")
    demo = euler(setup.velocity, setup.noise[:8], schedules.shifted(100, 3.0)).numpy()
    fitted = setup.fields["fitted"].variances
    return {
        "resolution": resolution,
        "mode": mode,
        "tokens": (resolution // 2) ** 2,
        "settings": {k: v for k, v in setup.cfg.items() if k != "grid"},
        "grid": setup.cfg["grid"],
        "teacher": {**TEACHER, "sampler": "heun", "rmse_vs_double": setup.teacher_rmse},
        "network": {k: setup.net_config[k] for k in ("channels", "patch", "parameters", "training",
                                                     "loss_curve", "val_curve")},
        "references": setup.references(),
        "dc_share": float(fitted[0, 0, 0] / fitted.sum()),
        "distinct_variances": int(setup.fields["fitted"].levels.size),
        "band_labels": setup.band_labels,
        "band_modes": np.bincount(setup.band.ravel()).tolist(),
        "steps": steps,
        "demo_samples": demo[:, 0].round(4).tolist(),
        "demo_data": setup.held_a[:8, 0].round(4).tolist(),
        "seconds": {**setup.seconds, "total": time.perf_counter() - start},
    }


# -- the report ------------------------------------------------------------------------------------------------

ADVICE = ("auto-shift W2 (fitted)", "auto-shift W2 (fitted, no DC)", "auto-shift KL (fitted)",
          "optimize_schedule (fitted, W2)", OSS)


def oss_teacher_words(steps: int | None) -> str:
    if steps is None:
        return "teacher_search's default linear Euler teacher (max(100, 4 N) steps)"
    return f"a linear {steps}-step Euler teacher"


def row_order(rows: dict) -> list[str]:
    """Report order: linear, the best grid shift, the rules, flowsched's advice, OSS (grid rows left out)."""
    return [k for kind in ("linear", "rule", "flowsched", "oss") for k, r in rows.items() if r["kind"] == kind]


def cell(r: dict, key: str = "ratio") -> str:
    a = f" (α {r['alpha']:.3g})" if r.get("alpha") and r["kind"] == "flowsched" else ""
    return f"{r[key]:.3f} ± {r[key + '_se']:.3f}{a}"


def verdict(ratio: float, se: float, tol: float = 0.03) -> bool:
    """Within ``tol`` of the best static shift, or within one standard error of it where that is larger."""
    return ratio - 1.0 <= max(tol, se)


def resolution_section(rec: dict) -> list[str]:
    R, steps = rec["resolution"], rec["steps"]
    net, ref = rec["network"], rec["references"]
    head = "| schedule | " + " | ".join(f"N={n}" for n in steps) + " |"
    sep = "| --- | " + " | ".join("---:" for _ in steps) + " |"
    first = steps[next(iter(steps))]["rows"]
    last = steps[next(reversed(steps))]
    best32 = last["rows"][last["best_label"]]
    lines = [
        f"### {R} x {R} px ({rec['tokens']} tokens at patch 2; network {net['parameters']:,} parameters, patch "
        f"{net['patch']}, {net['training']['steps']} steps in {net['training']['seconds']:.0f} s, final validation "
        f"loss {net['val_curve'][-1][1]:.4f})",
        "",
        f"Teacher RMSE against Heun at twice its steps: {rec['teacher']['rmse_vs_double']:.1e}. Zero-frequency "
        f"share of the fitted variance: {rec['dc_share']:.1%}; {rec['distinct_variances']} distinct variances. "
        f"Do the samples look like the data? Spectral KL of the N=32 samples on the best shift "
        f"{best32['spectral_kl']:.4f} against the held-out floor {ref['kl_floor']:.4f}"
        + (" (far above it: the network has not learned the data's spectrum; read this resolution with care)."
           if best32["spectral_kl"] > 20 * ref["kl_floor"] else "."),
        "",
        "RMSE against the teacher, as a ratio to the best static shift on the grid (paired bootstrap SE):",
        "",
        head, sep,
        "| best static shift: RMSE (grid α; interpolated α*) | " + " | ".join(
            f"{s['rows'][s['best_label']]['rmse']:.4f} ± {s['rows'][s['best_label']]['rmse_se']:.4f} "
            f"(α {s['rows'][s['best_label']]['alpha']:.3g}; α* {s['edge']}{s['alpha_star']:.3g})"
            for s in steps.values()) + " |",
        "| shifts within 1% of the best | " + " | ".join(
            f"{s['within_1pct'][0]:.3g}-{s['within_1pct'][1]:.3g}" for s in steps.values()) + " |",
        *[f"| {k} | " + " | ".join(cell(s["rows"][k]) for s in steps.values()) + " |" for k in row_order(first)],
        "",
        f"Sliced W2 against {rec['settings']['n_eval']} held-out crops (bootstrap SE); noise floor (held-out half "
        f"against half) {ref['sw2_floor']:.4f}, training crops against held-out {ref['sw2_train']:.4f}:",
        "",
        head, sep,
        *[f"| {k} | " + " | ".join(f"{s['rows'][k]['sw2']:.4f} ± {s['rows'][k]['sw2_se']:.4f}" for s in
                                   steps.values()) + " |"
          for k in [next(iter(steps.values()))["best_label"], *row_order(first)]],
        "",
    ]
    return lines


def goals(records: list[dict]) -> list[str]:
    """The goals at a glance: fitted auto-shift within 3% (or SE) of the best static shift everywhere; the
    optimised schedule never worse than its auto-shift start; what the KL variant does."""
    lines = ["| goal | resolution | " + " | ".join(f"N={n}" for n in STEPS) + " | met |",
             "| --- | --- | " + " | ".join("---:" for _ in STEPS) + " | --- |"]
    for label, other in [("auto-shift W2 (fitted)", None), ("auto-shift W2 (fitted, no DC)", None),
                         ("optimize_schedule (fitted, W2)", "auto-shift W2 (fitted)"),
                         ("optimize_schedule (fitted, no DC, W2)", "auto-shift W2 (fitted, no DC)"),
                         ("auto-shift KL (fitted)", None)]:
        for rec in records:
            cells, ok = [], True
            for n in STEPS:
                r = rec["steps"][str(n)]["rows"]
                ratio, se = r[label]["ratio"], r[label]["ratio_se"]
                if other is None:
                    good = verdict(ratio, se)
                else:  # never worse than the start: the ratio of the two, within one SE
                    good = ratio <= r[other]["ratio"] + max(se, r[other]["ratio_se"])
                ok &= good
                cells.append(f"{ratio:.3f} ± {se:.3f}{'' if good else ' ✗'}")
            goal = (f"{label} within 3% (or 1 SE) of the best static shift" if other is None
                    else f"{label} no worse than {other}")
            lines.append(f"| {goal} | {rec['resolution']} px | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    return lines


def grid_rows(rows: dict) -> list[dict]:
    return [r for r in rows.values() if r["kind"] == "grid"]


def band_optimum(rows: dict, b: int, key: str) -> str:
    """The grid shift minimising the error in band ``b`` (``key``: "band_mse" network, "field_band_mse" field),
    interpolated."""
    g = grid_rows(rows)
    a, _, edge = interpolated_optimum([r["alpha"] for r in g], np.array([r[key][b] for r in g]))
    return f"{edge}{a:.3g}"


def shift_summary(records: list[dict]) -> list[str]:
    lines = ["| resolution | " + " | ".join(f"N={n}" for n in STEPS) + " |",
             "| --- | " + " | ".join("---:" for _ in STEPS) + " |"]
    for rec in records:
        st = [rec["steps"][str(n)] for n in STEPS]
        lines.append(f"| **{rec['resolution']} px**: empirical best shift α* (within 1%) | " + " | ".join(
            f"{s['edge']}{s['alpha_star']:.3g} ({s['within_1pct'][0]:.3g}-{s['within_1pct'][1]:.3g})"
            for s in st) + " |")
        for label in ("auto-shift W2 (fitted)", "auto-shift W2 (fitted, no DC)", "auto-shift W2 (fitted, grid "
                      "average)", "auto-shift KL (fitted)", "auto-shift KL (fitted, no DC)"):
            lines.append(f"| {label} | " + " | ".join(
                f"{s['rows'][label]['alpha']:.3g} ({s['rows'][label]['ratio']:.3f})" for s in st) + " |")
        rules = ", ".join(f"{k} {v:.3g}" for k, v in rule_alphas(rec["resolution"]).items())
        lines.append(f"| peers' rules at {rec['tokens']} tokens | {rules} | | | |")
    return lines


def field_vs_network(records: list[dict], n: int = 8) -> list[str]:
    """Magnitudes (network RMSE against the field's predicted RMSE at the best shift) and where the error lies."""
    lines = [f"At N = {n}, on the best static shift of the grid: the network's RMSE against the teacher, the "
             "fitted field's exact RMSE for the same schedule, and each frequency band's share of the squared error "
             "(network / field); then the shift that minimises each band's error alone (network / field).", ""]
    for rec in records:
        s = rec["steps"][str(n)]
        r = s["rows"][s["best_label"]]
        tot_n, tot_f = sum(r["band_mse"]), sum(r["field_band_mse"])
        lines += [f"**{rec['resolution']} px** (best shift {r['alpha']:.3g}): network RMSE {r['rmse']:.4f}, field "
                  f"RMSE {r['field_rmse']:.4f}.", "",
                  "| band | modes | share of squared error (network / field) | best shift for the band (network / "
                  "field) |", "| --- | ---: | ---: | ---: |"]
        for b, lab in enumerate(rec["band_labels"]):
            lines.append(f"| {lab} | {rec['band_modes'][b]} | {r['band_mse'][b] / tot_n:.1%} / "
                         f"{r['field_band_mse'][b] / tot_f:.1%} | {band_optimum(s['rows'], b, 'band_mse')} / "
                         f"{band_optimum(s['rows'], b, 'field_band_mse')} |")
        lines.append("")
    return lines


def kl_section(records: list[dict]) -> list[str]:
    """The spectral KL of the samples (the field's "kl" metric measured on the network): which shift it prefers."""
    lines = ["| resolution | " + " | ".join(f"N={n}" for n in STEPS) + " |",
             "| --- | " + " | ".join("---:" for _ in STEPS) + " |"]
    for rec in records:
        cells_best, cells_kl = [], []
        for n in STEPS:
            rows = rec["steps"][str(n)]["rows"]
            g = grid_rows(rows)
            a, v, edge = interpolated_optimum([r["alpha"] for r in g], np.array([r["spectral_kl"] for r in g]))
            kl = rows["auto-shift KL (fitted)"]
            cells_best.append(f"{edge}{a:.3g} ({min(r['spectral_kl'] for r in g):.4f})")
            cells_kl.append(f"{kl['alpha']:.3g} ({kl['spectral_kl']:.4f})")
        floor = rec["references"]["kl_floor"]
        lines.append(f"| {rec['resolution']} px: shift minimising the samples' spectral KL (its KL) | "
                     + " | ".join(cells_best) + " |")
        lines.append(f"| {rec['resolution']} px: auto-shift KL (its spectral KL; floor {floor:.4f}) | "
                     + " | ".join(cells_kl) + " |")
    return lines


def shift_figure(records: list[dict], path: str) -> None:
    """Best shift against resolution, one panel per N: the empirical optimum (bar: shifts within 1% of the best),
    auto-shift (fitted, W2 and KL; no-DC prototype) and the peers' rules."""
    from matplotlib.figure import Figure

    from flowsched.plot import save_figure

    res = [r["resolution"] for r in records]
    fig = Figure(figsize=(12.0, 7.5), layout="constrained")
    for ax, n in zip(fig.subplots(2, 2).ravel(), STEPS, strict=True):
        st = [r["steps"][str(n)] for r in records]
        lo = [s["alpha_star"] - s["within_1pct"][0] for s in st]
        hi = [s["within_1pct"][1] - s["alpha_star"] for s in st]
        ax.errorbar(res, [s["alpha_star"] for s in st], yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], marker="o",
                    capsize=4, linewidth=2.2, color="black", label="empirical best (bar: within 1%)")
        for label, style in [("auto-shift W2 (fitted)", "s-"), ("auto-shift W2 (fitted, no DC)", "s--"),
                             ("auto-shift KL (fitted)", "v:")]:
            ax.plot(res, [s["rows"][label]["alpha"] for s in st], style, label=label)
        for label in rule_alphas(8):
            ax.plot(res, [rule_alphas(r)[label] for r in res], "x-.", alpha=0.7, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(res, [f"{r} px" for r in res])
        ax.set_xlabel("resolution (tokens at patch 2: (R/2)^2)")
        ax.set_ylabel("shift α")
        ax.set_title(f"N = {n} Euler steps", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)


def curves_figure(records: list[dict], path: str) -> None:
    """Loss curves (training, per 100 steps; validation of the EMA network) and, per resolution, 8 samples of
    100 Euler steps on shift 3 above 8 held-out crops."""
    from matplotlib.figure import Figure

    from flowsched.plot import save_figure

    fig = Figure(figsize=(12.0, 3.0 + 2.2 * len(records)), layout="constrained")
    axes = fig.subplots(1 + len(records), 1, gridspec_kw={"height_ratios": [1.6] + [1.0] * len(records)})
    for rec in records:
        c, v = np.array(rec["network"]["loss_curve"]), np.array(rec["network"]["val_curve"])
        line, = axes[0].plot(c[:, 0], c[:, 1], alpha=0.6, label=f"{rec['resolution']} px train")
        axes[0].plot(v[:, 0], v[:, 1], "o-", color=line.get_color(), label=f"{rec['resolution']} px validation")
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("rectified-flow loss")
    axes[0].grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    for ax, rec in zip(axes[1:], records, strict=True):
        s, d = np.array(rec["demo_samples"]), np.array(rec["demo_data"])
        top, bottom = np.concatenate(list(s), axis=1), np.concatenate(list(d), axis=1)
        ax.imshow(np.concatenate([top, bottom], axis=0), cmap="gray", vmin=-2.5, vmax=2.5, interpolation="nearest")
        ax.set_title(f"{rec['resolution']} px: 100-step samples (top) and held-out crops (bottom)", fontsize=9)
        ax.axis("off")
    save_figure(fig, path)


def setup_lines(records: list[dict], quick: bool, seconds: float) -> list[str]:
    """The data, networks and evaluation settings, from the raw records."""
    tag = "-quick" if quick else ""
    rec0 = records[0]
    cfg, net = rec0["settings"], rec0["network"]
    return [
        "# Schedule advice on trained networks: real photographs at " + ", ".join(
            f"{r['resolution']}" for r in records) + " px",
        "",
        f"Written by `python benchmarks/trained.py{' --quick' if quick else ''}` ({platform.python_implementation()} "
        f"{platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPU(s), "
        f"1 torch thread) in {seconds / 60:.1f} min of measurement (raw numbers: `trained{tag}-<R>px.json`). "
        "Findings and the proposed library changes: `trained-findings.md`.",
        "",
        "## Setup",
        "",
        "- Data: 13 photographs bundled in scikit-learn 1.9.1 (china, flower) and scikit-image 0.26.0 (astronaut, "
        "brick, camera, chelsea, clock, coffee, coins, grass, gravel, moon, rocket), grayscale, 128 x 128 crops "
        "block-averaged to each resolution (one field of view), normalised to zero mean and unit variance at the "
        "native resolution (mean square after averaging: " + ", ".join(
            f"{r['references']['mean_square']:.2f} at {r['resolution']} px" for r in records) + "); held out: "
        "the right 35% of every image.",
        f"- Networks (`benchmarks/trained/`): a U-Net on an 8 x 8 grid (patch R / 8), {net['parameters']:,} "
        f"parameters, rectified-flow loss with t uniform in [0, 1], {net['training']['steps']} AdamW steps of "
        f"{net['training']['batch']} crops, EMA weights; loss curves and samples in `trained{tag}-curves.png`.",
        f"- Evaluation: {cfg['n_eval']} noises (torch seed {SEEDS['eval']}); teacher Heun {TEACHER['steps']} steps on "
        f"shift {TEACHER['alpha']:g}; OSS searched on {cfg['n_search']} other noises (seed {SEEDS['search']}, "
        f"disjoint) with {oss_teacher_words(cfg['oss_teacher'])}"
        + (" (the OSS rows re-run alone with `--oss-only`: the same noises and bootstrap draws, their run time from "
           "that run)" if any(r.get("oss_remeasured") for r in records) else "")
        + f"; {cfg['boot']} bootstrap resamples; "
        f"fields fitted to {cfg['fit']} training crops. Shift grid: " + ", ".join(f"{a:.3g}" for a in rec0["grid"])
        + ". Rules at (R/2)^2 tokens, unclamped.",
        "",
    ]


def report(records: list[dict], quick: bool, seconds: float) -> str:
    tag = "-quick" if quick else ""
    lines = [
        *setup_lines(records, quick, seconds),
        "## Goals at a glance",
        "",
        *goals(records),
        "",
        "The reference is the best shift of the grid, measured; the networks' error is jagged in the shift (up to "
        "10% between shifts 4% apart: `trained-findings.md`), so a miss of a few percent can be a lucky grid point.",
        "",
        f"## Best shift against resolution (figure: `trained{tag}.png`)",
        "",
        "Cells: the shift and, in brackets, its RMSE as a ratio to the best static shift's.",
        "",
        *shift_summary(records),
        "",
        "## Every schedule, per resolution",
        "",
    ]
    for rec in records:
        lines += resolution_section(rec)
    lines += ["## Where the error lies: network against fitted field", "", *field_vs_network(records), "",
              "## The KL variant: the samples' spectral KL", "",
              "The mean per-mode KL between the samples' radially averaged spectrum and the held-out data's: the "
              "field's `kl` metric measured on the network's samples.", "", *kl_section(records), "",
              "## Run time", "",
              "| resolution | teacher | N=4 | N=8 | N=16 | N=32 | OSS searches | total |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for rec in records:
        st = [rec["steps"][str(n)] for n in STEPS]
        oss = sum(s["rows"][OSS]["seconds"] for s in st)
        lines.append(f"| {rec['resolution']} px | {rec['seconds']['teacher']:.0f} s | "
                     + " | ".join(f"{s['seconds']:.0f} s" for s in st) + f" | {oss:.0f} s | "
                     f"{rec['seconds']['total']:.0f} s |")
    return "\n".join(lines) + "\n"


def fine_grid(resolution: int, num_steps: int, low: float, high: float, count: int = 9) -> list[str]:
    """RMSE against the teacher on a fine log grid of shifts in ``[low, high]`` (ratios to the best of them, paired
    SEs): how smooth the network's error is in the shift. Prints and returns the lines."""
    setup = Setup(resolution, "full", log=lambda m: None)
    alphas = np.exp(np.linspace(math.log(low), math.log(high), count))
    sq = np.stack([((setup.run(schedules.shifted(num_steps, a)) - setup.teacher) ** 2).reshape(
        setup.noise.shape[0], -1).mean(1) for a in alphas])
    idx = bootstrap_indices(sq.shape[1], setup.cfg["boot"], SEEDS["boot"])
    st = rmse_stats(sq, idx, int(np.argmin(sq.mean(1))))
    lines = [f"{resolution} px, N={num_steps}: shift -> RMSE / best RMSE (paired SE)"]
    lines += [f"  {a:.4g}: {r:.3f} ± {e:.3f}" for a, r, e in zip(alphas, st["ratio"], st["ratio_se"], strict=True)]
    print("\n".join(lines))
    return lines


def raw_path(resolution: int, quick: bool) -> str:
    return os.path.join(RESULTS, f"trained{'-quick' if quick else ''}-{resolution}px.json")


def available() -> list[int]:
    """Resolutions whose network is saved (``benchmarks/trained/velocity-<R>px.safetensors``)."""
    return [r for r in RESOLUTIONS if os.path.exists(weights_path(r) + ".safetensors")]


def main(argv: list[str] | None = None) -> int:
    from flowsched._io import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer noises, shifts and bootstrap resamples")
    ap.add_argument("--resolutions", type=int, nargs="+", default=None,
                    help="measure only these (default: every resolution with a saved network); then report")
    ap.add_argument("--report-only", action="store_true", help="assemble the report from the raw JSON files")
    ap.add_argument("--oss-only", action="store_true",
                    help="re-run only the OSS rows of the saved resolutions with the current teacher; then report")
    ap.add_argument("--fine-grid", type=float, nargs=4, metavar=("R", "N", "LOW", "HIGH"), default=None,
                    help="only print the error on 9 shifts from LOW to HIGH at R px and N steps (smoothness)")
    args = ap.parse_args(argv)
    if args.fine_grid:
        r, n, low, high = args.fine_grid
        if int(r) not in available() or n < 1 or not 0 < low < high:
            ap.error(f"--fine-grid needs a trained resolution {available()}, N >= 1 and 0 < LOW < HIGH")
        torch.set_num_threads(1)
        fine_grid(int(r), int(n), low, high)
        return 0
    saved = available()
    todo = [] if args.report_only else (args.resolutions or saved)
    missing = [r for r in todo if r not in saved]
    if missing:
        ap.error(f"no saved network for {missing} px (saved: {saved}); train one with benchmarks/train_velocity.py")
    torch.set_num_threads(1)  # benchmarks/train_velocity.py: two threads ran 10-20x slower on the shared machine
    for r in todo:
        if args.oss_only:
            if not os.path.exists(raw_path(r, args.quick)):
                ap.error(f"--oss-only needs a saved run at {r} px; run without it first")
            remeasure_oss(raw_path(r, args.quick))
            continue
        rec = measure_resolution(r, "quick" if args.quick else "full")
        atomic_write_text(raw_path(r, args.quick), json.dumps(rec) + "\n")
    records = []
    for r in saved:
        if os.path.exists(raw_path(r, args.quick)):
            with open(raw_path(r, args.quick), encoding="utf-8") as f:
                records.append(json.load(f))
    if not records:
        ap.error("no raw results to report; run without --report-only first")
    seconds = sum(r["seconds"]["total"] for r in records)
    tag = "-quick" if args.quick else ""
    text = report(records, args.quick, seconds)
    atomic_write_text(os.path.join(RESULTS, f"trained{tag}.md"), text)
    shift_figure(records, os.path.join(RESULTS, f"trained{tag}.png"))
    curves_figure(records, os.path.join(RESULTS, f"trained{tag}-curves.png"))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
