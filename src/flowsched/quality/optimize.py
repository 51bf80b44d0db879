"""Optimised schedules: the ``N + 1`` values of ``t`` that minimise a measured error for a fixed step count.

- :func:`optimize_schedule`: L-BFGS-B over the step-size logits (:func:`schedule_from_logits`) for an analytic data
  model (:class:`~flowsched.quality.GaussianField`: exact gradient; :class:`~flowsched.quality.GaussianMixture`:
  finite differences plus a global phase) or any batched objective ``f(ts[S, N + 1]) -> [S]``.
- :func:`teacher_search`: your own velocity model, by Optimal Stepsize Sampling's dynamic programming against a
  teacher trajectory (Pei, Hu, Gu 2025, arXiv 2503.21774).
- :func:`best_shift`: the best pure static shift; :func:`objective_for`: the batched objective of a data model.

How the search works and what it was measured to achieve: docs/quality-models.md ("Optimised schedules").
Conventions: docs/conventions.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._limits import MAX_STEPS, step_count
from .._optional import progress_bar
from .._validate import boolean, choice, is_torch_tensor, nonnegative_int, positive_int, positive_real
from ..sampling import (
    DETERMINISTIC,
    CheckPolicy,
    call_velocity,
    check_finite,
    euler,
    get_sampler,
    nfe,
    schedule_values,
)
from ..schedule import Schedule, check_t
from ..schedules import linear, shifted
from ..shift import time_shift

BatchObjective = Callable[[np.ndarray], np.ndarray]

#: Step-size logits are kept in [-LOGIT_BOUND, LOGIT_BOUND] by the optimiser.
LOGIT_BOUND = 15.0

#: Shifts :func:`best_shift` searches by default (``alpha`` in ``[lo, hi]``, log-spaced, then refined).
SHIFT_BOUNDS = (0.02, 1000.0)

#: Extra starting points :func:`optimize_schedule` takes from its global phase when ``restarts`` is not given and
#: the objective has no exact gradient (mixtures, custom objectives). Gaussian fields default to 0: their
#: objective has one basin (every start lands on the same value, benchmarks/results/quality.md section 3.1).
DEFAULT_RESTARTS = 3

#: L-BFGS-B iterations of each start's first, short run when several starts compete; only the best continues.
SHORT_RUN = 10

__all__ = [
    "DEFAULT_RESTARTS",
    "KL_NOT_ADVICE",
    "SHIFT_BOUNDS",
    "FieldObjective",
    "advice_objective",
    "best_shift",
    "Objective",
    "logits_from_schedule",
    "objective_for",
    "optimize_schedule",
    "pathwise_objective",
    "schedule_from_logits",
    "stepsize_search",
    "StepsizePath",
    "teacher_grid",
    "teacher_search",
]


# -- parameterisation ---------------------------------------------------------------------------------------


def schedule_from_logits(logits: np.ndarray, t_start: float = 1.0, t_end: float = 0.0) -> np.ndarray:
    """Map ``N`` step-size logits (any reals, last axis) to ``N + 1`` strictly monotone values of ``t``.

    Step ``i`` covers the fraction ``softmax(logits)[i]`` of ``[t_end, t_start]``, so every real vector gives a
    valid schedule that starts at ``t_start`` and ends at ``t_end`` exactly. Shapes: ``[..., N] -> [..., N + 1]``.
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    d = np.exp(z)
    d /= d.sum(axis=-1, keepdims=True)
    frac = np.cumsum(d, axis=-1)[..., :-1]
    shape = z.shape[:-1] + (1,)
    return np.concatenate(
        [np.full(shape, t_start), t_start + (t_end - t_start) * frac, np.full(shape, t_end)], axis=-1
    )


def logits_from_schedule(t: np.ndarray | Schedule) -> np.ndarray:
    """Inverse of :func:`schedule_from_logits` (logits centred to mean 0): ``[N + 1] -> [N]``."""
    t = check_t(t.t if isinstance(t, Schedule) else t, "t", decreasing=False)
    z = np.log(np.diff(t) / (t[-1] - t[0]))
    return z - z.mean()


def _logit_grad(logits: np.ndarray, grad_t: np.ndarray, t_start: float, t_end: float) -> np.ndarray:
    """Chain rule from d(objective)/d(t_j), j = 1 .. N - 1, to d(objective)/d(logits)."""
    z = logits - logits.max()
    d = np.exp(z)
    d /= d.sum()
    # t_j = t_start + (t_end - t_start) * sum_{i < j} d_i, for interior j = 1 .. N - 1.
    g_inner = np.zeros_like(d)
    g_inner[:-1] = np.cumsum(grad_t[1:-1][::-1])[::-1]
    g_d = (t_end - t_start) * g_inner
    return d * (g_d - np.dot(d, g_d))


# -- objectives ---------------------------------------------------------------------------------------------


class FieldObjective:
    """A :class:`~flowsched.quality.GaussianField`'s exact Euler error as a batched objective, with its gradient.

    ``__call__`` takes ``[S, N + 1]`` schedules and returns the field's ``error_batch`` (metric ``"w2"`` or
    ``"kl"``). :meth:`value_and_grad` adds the exact gradient with respect to every ``t_j``: mode ``k`` leaves
    with ``ln g_k = sum_i ln f_{k,i}``, ``f_{k,i} = 1 + h_i a_k(t_i)``, ``h_i = t_{i+1} - t_i``, and an interior
    ``t_j`` ends step ``j - 1`` and starts step ``j``, so

        d ln g_k / d t_j = a_k(t_{j-1}) / f_{k,j-1} + (h_j a_k'(t_j) - a_k(t_j)) / f_{k,j}

    (zero at the two endpoints, which the optimiser keeps fixed). Cost ``O(N * levels)`` per call.
    """

    def __init__(self, field: Any, metric: str = "w2") -> None:
        from .field import METRICS, GaussianField

        if not isinstance(field, GaussianField):
            raise TypeError(f"field must be a GaussianField, got {type(field).__name__}")
        self.field = field
        self.metric = choice("metric", metric, METRICS)

    def __call__(self, ts: np.ndarray) -> np.ndarray:
        return self.field.error_batch(np.atleast_2d(ts), self.metric)

    def value_and_grad(self, t: np.ndarray) -> tuple[float, np.ndarray]:
        field = self.field
        t = np.asarray(t, dtype=np.float64)
        value = float(self(t[None])[0])
        ell = field.log_gain_ratio(t[None])[0]  # ln(g_k / sqrt(lambda_k))
        lam = field.levels[:, None]
        tt = t[None, :-1]
        h = np.diff(t)[None, :]
        num = tt - (1.0 - tt) * lam
        den = (1.0 - tt) ** 2 * lam + tt**2
        a = num / den
        da = ((1.0 + lam) * den - num * (2.0 * tt - 2.0 * (1.0 - tt) * lam)) / den**2
        f = 1.0 + h * a  # > 0 for every step inside [0, 1]
        dlog = a[:, :-1] / f[:, :-1] + (h[:, 1:] * da[:, 1:] - a[:, 1:]) / f[:, 1:]
        if self.metric == "w2":  # sum c lam expm1(ell)^2 / total
            w = 2.0 * field.counts * field.levels * np.expm1(ell) * np.exp(ell) / field.total_variance
        else:  # sum c (expm1(2 ell) - 2 ell) / (2 M)
            w = field.counts * np.expm1(2.0 * ell) / field.num_modes
        grad = np.zeros_like(t)
        grad[1:-1] = w @ dlog
        return value, grad


def _mean_squared_distance(x: Any, ref: Any) -> float:
    diff = x - ref
    return float((diff * diff).sum()) / int(x.shape[0])


def pathwise_objective(velocity: Callable[[Any, float], Any], noise: Any, reference: Any) -> BatchObjective:
    """A batched objective: mean over samples of ``||euler(velocity, noise, ts[s]) - reference||**2``.

    ``noise`` is ``[n, ...]`` (numpy or torch); ``reference`` is the accurate solution from the same noise (for a
    :class:`~flowsched.quality.GaussianMixture`, its ``reference_solution(noise)``; for a model, a fine-step
    solve). Each schedule costs ``N`` velocity calls on the whole batch.
    """
    if tuple(reference.shape) != tuple(noise.shape):
        raise ValueError(f"reference must have the shape of noise, {tuple(noise.shape)}, got {tuple(reference.shape)}")

    def objective(ts: np.ndarray) -> np.ndarray:
        ts = np.atleast_2d(np.asarray(ts, dtype=np.float64))
        return np.array([_mean_squared_distance(euler(velocity, noise, row), reference) for row in ts])

    return objective


class Objective(NamedTuple):
    """What :func:`objective_for` returns: the batched objective, its exact ``value_and_grad(t)`` or None, a
    description of the model and the metric."""

    fn: BatchObjective
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]] | None
    description: str
    metric: str


def objective_for(model: Any, metric: str | None = None, *, num_samples: int = 1024, seed: int = 0) -> Objective:
    """The batched objective ``f(ts[S, N + 1]) -> [S]`` that :func:`optimize_schedule` and
    :func:`~flowsched.quality.auto_shift` minimise for ``model``:

    * a :class:`~flowsched.quality.GaussianField` (or a :class:`FieldObjective`): its exact Euler error,
      ``metric`` ``"w2"`` (default) or ``"kl"``, with the exact gradient;
    * a :class:`~flowsched.quality.GaussianMixture`: its pathwise ``"rmse"`` over ``num_samples`` noises drawn with
      ``seed`` (against its cached reference solution), Euler batched over schedules;
    * a callable: used as the batched objective itself (``metric`` is only recorded; default ``"custom"``).
    """
    from .field import GaussianField
    from .mixture import GaussianMixture

    if isinstance(model, FieldObjective):
        return Objective(model, model.value_and_grad, repr(model.field), model.metric)
    if isinstance(model, GaussianField):
        obj = FieldObjective(model, "w2" if metric is None else metric)
        return Objective(obj, obj.value_and_grad, repr(model), obj.metric)
    if isinstance(model, GaussianMixture):
        metric = "rmse" if metric is None else choice("metric", metric, ("rmse",))
        num_samples = positive_int("num_samples", num_samples)
        noise, reference = model.noise(num_samples, seed), model.reference(num_samples, seed)
        chunk = max(1, 32768 // num_samples)

        def rmse(ts: np.ndarray) -> np.ndarray:
            ts = np.atleast_2d(np.asarray(ts, dtype=np.float64))
            out = [model.euler_rows(noise, ts[i : i + chunk]) - reference for i in range(0, ts.shape[0], chunk)]
            return np.concatenate([np.sqrt((d * d).sum(-1).mean(-1)) for d in out])

        return Objective(rmse, None, f"{repr(model)}, {num_samples} noises, seed {seed}", metric)
    if callable(model):
        name = getattr(model, "__name__", type(model).__name__)
        return Objective(model, None, name, "custom" if metric is None else metric)
    raise TypeError(
        "objective must be a GaussianField, a GaussianMixture or a batched objective f(ts[S, N+1]) -> [S] "
        f"(for a velocity model use teacher_search); got {type(model).__name__}"
    )


#: Why the field's per-mode KL is measured but never minimised for advice.
KL_NOT_ADVICE = (
    "metric='kl' is not offered as advice: on networks trained on real photographs the KL-optimal shift (0.35-0.5) "
    "was the worst schedule in every cell, 1.45-3.3x the best static shift's error, and it lost on the samples' own "
    "KL too (docs/quality-models.md, 'On trained networks'); use metric='w2' (the default). GaussianField.error(..., "
    "'kl') still measures it"
)


def advice_objective(model: Any, metric: str | None = None, **options: Any) -> Objective:
    """:func:`objective_for` for the functions that advise a schedule (:func:`optimize_schedule`,
    :func:`~flowsched.quality.auto_shift`): a field's ``"kl"`` is refused with :data:`KL_NOT_ADVICE`."""
    from .field import GaussianField

    if metric == "kl" and isinstance(model, (GaussianField, FieldObjective)):
        raise ValueError(KL_NOT_ADVICE)
    return objective_for(model, metric, **options)


def _evaluate(objective: BatchObjective, ts: np.ndarray) -> np.ndarray:
    ts = np.atleast_2d(ts)
    out = np.asarray(objective(ts), dtype=np.float64).reshape(-1)
    if out.shape != (ts.shape[0],):
        raise ValueError(f"objective must return one value per schedule, {ts.shape[0]}, got shape {out.shape}")
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise ValueError(f"objective returned {out[bad[0]]} for the schedule {ts[bad[0]].tolist()}")
    return out


# -- one-parameter search: the best pure shift --------------------------------------------------------------


def best_shift(
    num_steps: int,
    objective: BatchObjective,
    *,
    bounds: tuple[float, float] = SHIFT_BOUNDS,
    grid: int = 48,
) -> tuple[float, float]:
    """The shift ``alpha`` whose schedule ``shifted(num_steps, alpha)`` minimises ``objective``, and its value.

    A log-spaced grid of ``grid`` shifts in ``bounds`` is evaluated as one batch; the best grid point is then
    refined by a bounded Brent search on ``log(alpha)`` between its neighbours (relative tolerance ~1e-5).
    A result at a bound means the optimum may lie outside it.
    """
    from .._optional import require

    minimize_scalar = require("scipy.optimize", "the shift search (best_shift, auto_shift)").minimize_scalar

    num_steps = step_count("num_steps", num_steps)
    lo, hi = (positive_real("bounds[0]", bounds[0]), positive_real("bounds[1]", bounds[1]))
    if not lo < hi:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    grid = positive_int("grid", grid)
    alphas = np.exp(np.linspace(math.log(lo), math.log(hi), max(grid, 3)))
    base = np.linspace(1.0, 0.0, num_steps + 1)
    values = _evaluate(objective, np.stack([time_shift(base, a) for a in alphas]))
    k = int(np.argmin(values))
    left, right = math.log(alphas[max(k - 1, 0)]), math.log(alphas[min(k + 1, alphas.size - 1)])
    res = minimize_scalar(
        lambda s: float(_evaluate(objective, time_shift(base, math.exp(s))[None])[0]),
        bounds=(left, right),
        method="bounded",
        options={"xatol": 1e-5},
    )
    if res.fun <= values[k]:
        return float(math.exp(res.x)), float(res.fun)
    return float(alphas[k]), float(values[k])


# -- L-BFGS-B over the step-size logits ---------------------------------------------------------------------


def _minimize(
    objective: BatchObjective,
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]] | None,
    t0: np.ndarray,
    *,
    maxiter: int,
    fd_step: float,
    bar: Any,
) -> tuple[np.ndarray, float]:
    """Run L-BFGS-B from ``t0``; returns the best (t, value) seen, never worse than ``t0``."""
    from .._optional import require

    minimize = require("scipy.optimize", "the schedule optimiser (L-BFGS-B)").minimize

    t_start, t_end = float(t0[0]), float(t0[-1])
    n = t0.size - 1
    best = {"f": math.inf, "t": t0}

    def record(t: np.ndarray, f: float) -> None:
        if f < best["f"] and np.all(np.diff(t) * np.sign(t_end - t_start) > 0):
            best["f"], best["t"] = f, t

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        t = schedule_from_logits(z, t_start, t_end)
        if value_and_grad is not None:
            f, grad_t = value_and_grad(t)
            gz = _logit_grad(z, grad_t, t_start, t_end)
        else:
            # Central differences in logit space: one batch of 2N + 1 schedules.
            eye = fd_step * np.eye(n)
            zs = np.concatenate([z[None], z + eye, z - eye])
            vals = _evaluate(objective, schedule_from_logits(zs, t_start, t_end))
            f = float(vals[0])
            gz = (vals[1 : n + 1] - vals[n + 1 :]) / (2.0 * fd_step)
        record(t, f)
        return f, gz

    def step(_z: np.ndarray) -> None:
        bar.update(1)
        bar.set_postfix(error=f"{best['f']:.6g}", refresh=False)

    # Bounded logits keep every step at least e^-30 / N of the interval: t stays strictly monotone in float64.
    minimize(
        fun,
        np.clip(logits_from_schedule(t0), -LOGIT_BOUND, LOGIT_BOUND),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOGIT_BOUND, LOGIT_BOUND)] * n,
        callback=step,
        options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-10, "maxcor": 20},
    )
    return best["t"], best["f"]


def _starts(num_steps: int, start: Any, objective: BatchObjective) -> list[tuple[str, np.ndarray]]:
    items = list(start) if isinstance(start, (list, tuple)) else [start]
    if not items:
        raise ValueError("start must name at least one starting schedule")
    out = []
    for item in items:
        if isinstance(item, Schedule):
            if item.num_steps != num_steps:
                raise ValueError(f"start schedule has {item.num_steps} steps; num_steps is {num_steps}")
            t = item.t if item.t[0] > item.t[-1] else item.t[::-1]
            out.append((item.describe(), t))
        elif item == "best-shift":
            alpha, _ = best_shift(num_steps, objective)
            out.append((f"best-shift alpha={alpha:.6g}", shifted(num_steps, alpha).t))
        elif item == "linear":
            out.append(("linear", linear(num_steps).t))
        else:
            raise ValueError(
                f"start must be 'best-shift', 'linear', a Schedule or a list of them, got {item!r}"
            )
    return out


def _candidate_pool(
    num_steps: int, objective: BatchObjective, anchors: list[tuple[str, np.ndarray]], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The global phase: many schedules scored in a few batches, returned as (schedules, values, labels).

    A family covers the shapes local minima differ by (how many steps the schedule spends near ``t = 0`` and
    near ``t = 1``): every shift ``alpha = 2^-5 .. 2^5`` (11 values) applied to schedules whose step-size logits
    are a quadratic ``c1 x + c2 x^2`` in the step position ``x`` in (-1, 1) (``c1, c2`` in
    ``{-3, -1.5, 0, 1.5, 3}``; ``c1 = c2 = 0`` is the pure shift, linear at ``alpha = 1``): 275 schedules. Then
    Gaussian perturbations of the step-size logits (scales 0.3, 0.7 and 1.5; 16 each, ``numpy`` generator
    ``seed``) around the best family member and around each anchor (the starts): ``48 * (1 + len(anchors))``.
    """
    x = (np.arange(num_steps) + 0.5) / num_steps * 2.0 - 1.0
    coefs = (-3.0, -1.5, 0.0, 1.5, 3.0)
    alphas = 2.0 ** np.arange(-5.0, 6.0)
    cands, labels = [], []
    for c1 in coefs:
        for c2 in coefs:
            base = schedule_from_logits(c1 * x + c2 * x * x)
            for a in alphas:
                cands.append(time_shift(base, a))
                labels.append(f"family alpha={a:.3g} c1={c1:g} c2={c2:g}")
    cands = np.stack(cands)
    values = _evaluate(objective, cands)
    rng = np.random.default_rng(seed)
    centres = [(labels[int(np.argmin(values))], cands[int(np.argmin(values))]), *anchors]
    extra, extra_labels = [], []
    for label, t in centres:
        z = np.clip(logits_from_schedule(t), -LOGIT_BOUND, LOGIT_BOUND)
        for scale in (0.3, 0.7, 1.5):
            extra.append(schedule_from_logits(z + scale * rng.standard_normal((16, num_steps))))
            extra_labels += [f"perturbed ({label}) scale={scale:g} #{k}" for k in range(16)]
    extra = np.concatenate(extra)
    return (
        np.concatenate([cands, extra]),
        np.concatenate([values, _evaluate(objective, extra)]),
        labels + extra_labels,
    )


def _pick_distinct(
    cands: np.ndarray, values: np.ndarray, taken: list[np.ndarray], count: int, min_distance: float = 0.5
) -> list[int]:
    """Indices of the ``count`` best candidates whose step-size logits lie at least ``min_distance`` (L2) from
    each other and from the ``taken`` schedules, so that restarts explore different basins."""
    kept = [logits_from_schedule(t) for t in taken]
    out: list[int] = []
    for i in np.argsort(values, kind="stable"):
        if len(out) == count:
            break
        z = logits_from_schedule(cands[i])
        if all(np.linalg.norm(z - k) >= min_distance for k in kept):
            kept.append(z)
            out.append(int(i))
    return out


def optimize_schedule(
    num_steps: int,
    objective: Any,
    *,
    metric: str | None = None,
    start: Any = "best-shift",
    restarts: int | None = None,
    num_samples: int = 1024,
    seed: int = 0,
    maxiter: int = 500,
    progress: bool = False,
) -> Schedule:
    """The ``num_steps``-step Euler schedule that minimises ``objective`` (method: docs/quality-models.md).

    Args:
        num_steps: steps ``N``.
        objective: a :class:`~flowsched.quality.GaussianField` (metric ``"w2"``; ``"kl"`` is not advice: see
            :data:`KL_NOT_ADVICE`), a
            :class:`~flowsched.quality.GaussianMixture` (metric ``"rmse"`` over ``num_samples`` noises drawn with
            ``seed``), or a batched objective ``f(ts[S, N + 1]) -> [S]`` (see :func:`objective_for`). For your
            own velocity model use :func:`teacher_search`.
        metric: the data model's metric; recorded in the result.
        start: ``"best-shift"`` (default), ``"linear"``, a :class:`Schedule`, or a list of these; each start is
            optimised and the best result returned, never worse than its start.
        restarts: extra starts from the global phase (``0``: only ``start``); default 0 for a Gaussian field (one
            basin), :data:`DEFAULT_RESTARTS` otherwise.
        num_samples, seed: a mixture's fixed noises; ``seed`` also seeds the global phase (deterministic results).
        maxiter: L-BFGS-B iterations per start.
        progress: a progress bar on stderr.

    Returns:
        ``Schedule(name="optimized")`` with params ``num_steps``, ``objective``, ``metric``, ``method``
        (``"lbfgs"``), ``start`` (where the winner came from), ``start_value``, ``value``, ``restarts`` and
        ``evaluations`` (schedules scored, all phases).
    """
    num_steps = step_count("num_steps", num_steps)
    maxiter = positive_int("maxiter", maxiter)
    fn, value_and_grad, description, metric = advice_objective(objective, metric, num_samples=num_samples, seed=seed)
    if restarts is None:
        restarts = 0 if value_and_grad is not None else DEFAULT_RESTARTS
    restarts = nonnegative_int("restarts", restarts)
    if num_steps == 1:  # the only schedule is (1, 0): nothing to search
        restarts = 0
    counted = _Counted(fn)
    starts = _all_starts(num_steps, start, restarts, counted, seed)
    # Several starts without an exact gradient: short runs pick the basin, then the best one converges.
    first = maxiter if len(starts) == 1 or value_and_grad is not None else min(maxiter, SHORT_RUN)
    with progress_bar(None, progress, "optimize", "iter") as bar:
        results = []
        for label, t0 in starts:
            f0 = float(_evaluate(counted, t0[None])[0])
            t, f = _minimize(counted, value_and_grad, t0, maxiter=first, fd_step=1e-4, bar=bar)
            results.append((f, label, f0, t) if f <= f0 else (f0, label, f0, t0))  # never worse than its start
        f, label, f0, t = min(results, key=lambda r: r[0])
        if first < maxiter:
            t, f = _minimize(counted, value_and_grad, t, maxiter=maxiter, fd_step=1e-4, bar=bar)
    params = {"num_steps": num_steps, "objective": description, "metric": metric, "method": "lbfgs", "start": label,
              "start_value": f0, "value": f, "restarts": restarts, "evaluations": counted.count}
    return Schedule(t, name="optimized", params=params)


def _all_starts(num_steps: int, start: Any, restarts: int, objective: BatchObjective,
                seed: int) -> list[tuple[str, np.ndarray]]:
    """The given starts; with ``restarts``, also best-shift and linear (where not given) and the ``restarts`` best
    distinct schedules of the global phase."""
    starts = _starts(num_steps, start, objective)
    if not restarts:
        return starts
    given = start if isinstance(start, (list, tuple)) else [start]
    named = {g for g in given if isinstance(g, str)}
    standard = [name for name in ("best-shift", "linear") if name not in named]
    if standard:
        starts += _starts(num_steps, standard, objective)
    cands, values, labels = _candidate_pool(num_steps, objective, starts, seed)
    return starts + [(labels[i], cands[i]) for i in _pick_distinct(cands, values, [t for _, t in starts], restarts)]


class _Counted:
    """A batched objective that counts the schedules it scores."""

    def __init__(self, fn: BatchObjective) -> None:
        self.fn, self.count = fn, 0

    def __call__(self, ts: np.ndarray) -> np.ndarray:
        ts = np.atleast_2d(ts)
        self.count += ts.shape[0]
        return self.fn(ts)


# -- teacher-trajectory dynamic programming (Optimal Stepsize Sampling) --------------------------------------


def _stack(xs: Sequence[Any]) -> Any:
    if is_torch_tensor(xs[0]):
        import torch

        return torch.stack(list(xs))
    return np.stack(xs)


def _sq_dist_per_candidate(cands: Any, target: Any) -> np.ndarray:
    """``[C, n, ...]`` candidates against ``[n, ...]``: summed squared distance per candidate, float64."""
    d = cands - target[None]
    d = (d * d).reshape(d.shape[0], -1).sum(1)
    if hasattr(d, "detach"):
        d = d.detach().double().cpu().numpy()
    return np.asarray(d, dtype=np.float64)


def teacher_search(
    velocity: Callable[[Any, float], Any],
    noise: Any,
    num_steps: int,
    *,
    teacher: int | Schedule | None = None,
    teacher_sampler: str = "euler",
    refine: bool = False,
    maxiter: int = 30,
    progress: bool = False,
    check: str = "first",
) -> Schedule:
    """Optimal Stepsize Sampling (Pei, Hu, Gu 2025, arXiv 2503.21774): a ``num_steps``-step Euler schedule whose
    states track a fine teacher trajectory of the same velocity model, found by dynamic programming over the
    teacher's grid points (method and cost: docs/quality-models.md). Costs ``N_T + 1 + (M - 1)(N_T - M + 1)``
    velocity calls, at most ``(M + 1) N_T``; memory holds ``N_T + 1`` states of the batch.

    Args:
        velocity: ``v(x, t)`` with ``t`` a Python float (:mod:`flowsched.sampling` contract; checked each call).
        noise: ``[n, ...]`` starting states at ``t = 1`` (numpy or torch); one schedule is found for the batch.
        num_steps: student steps ``M`` (``1 <= M <= N_T``).
        teacher: teacher steps ``N_T`` or a teacher Schedule (decreasing from 1 to 0); default ``max(100, 4 M)``
            linear steps (:func:`teacher_grid`).
        teacher_sampler: ``"euler"`` (OSS's choice, ``N_T`` calls) or ``"heun"`` (a more accurate teacher,
            ``2 N_T - 1`` calls).
        refine: then move the ``M - 1`` interior values off the teacher grid with L-BFGS-B against the teacher's
            final state; about ``(2M + 1) * M`` velocity calls per iteration, counted in ``nfe``.
        maxiter: L-BFGS-B iterations of the refinement.
        progress: progress bar over the ``M + 1`` rounds of velocity calls (and the refinement's iterations).
        check: NaN/inf checks of the velocity, as in :func:`flowsched.sampling.euler` (``"first"``: the teacher's
            first call and result, and the search's first round; ``"every"``; ``"none"``). Shapes: every call.

    Returns:
        ``Schedule(name="optimized")`` with params ``method`` (``"oss"`` or ``"oss+lbfgs"``), ``teacher_steps``,
        ``num_samples``, ``nfe`` (velocity calls, all included) and ``value`` (mean squared distance of the
        student's result to the teacher's final state, over samples).
    """
    sampler = get_sampler(teacher_sampler, "teacher_sampler", DETERMINISTIC)
    num_steps = step_count("num_steps", num_steps)
    maxiter = positive_int("maxiter", maxiter)
    refine = boolean("refine", refine)
    policy = CheckPolicy(check)
    if policy.mode != "none":
        check_finite("noise", noise)
    grid, teacher_name = teacher_grid(teacher, num_steps)
    n_t = grid.size - 1
    if num_steps > n_t:
        raise ValueError(f"num_steps must be at most the teacher's {n_t} steps, got {num_steps}")
    with progress_bar(num_steps + 1 + (maxiter if refine else 0), progress, "teacher search", "round") as bar:
        states = [noise]  # the teacher's state at every grid point
        sampler(velocity, noise, grid, callback=lambda i, t, t_next, x: states.append(x), check=check)
        bar.update(1)
        path = _stepsize_search(_one_by_one(velocity, policy, bar), states, grid, num_steps)
        t, value = path.t, _mean_squared_distance(path.final, states[-1])
        used = nfe(teacher_sampler, n_t) + path.calls
        if not math.isfinite(value):
            raise ValueError("teacher_search: the student's states hold NaN or inf (run with check='every')")
        if refine and num_steps > 1:
            t, value, calls = _refine(velocity, noise, states[-1], t, maxiter, bar)
            used += calls
    return Schedule(
        t,
        name="optimized",
        params={
            "num_steps": num_steps,
            "objective": f"teacher trajectory ({teacher_name})",
            "metric": "teacher-mse",
            "method": "oss+lbfgs" if refine else "oss",
            "teacher_sampler": teacher_sampler,
            "teacher_steps": n_t,
            "num_samples": int(noise.shape[0]),
            "nfe": used,
            "value": value,
        },
    )


def _one_by_one(velocity: Callable[[Any, float], Any], policy: CheckPolicy, bar: Any) -> RoundVelocities:
    """A round of the search as one checked velocity call per state (NaN/inf as ``policy`` says, once per round)."""

    def round_velocities(m: int, xs: list[Any], ts: list[float]) -> list[Any]:
        finite = policy.due("search round")
        out = [call_velocity(velocity, x, t, step=m, finite=finite) for x, t in zip(xs, ts, strict=True)]
        bar.update(1)
        return out

    return round_velocities


def teacher_grid(teacher: int | Schedule | None, num_steps: int, name: str = "teacher") -> tuple[np.ndarray, str]:
    """The grid an OSS search for ``num_steps`` student steps may stop on, and its description: a Schedule from 1 to
    0, ``linspace(1, 0, N_T + 1)`` for a step count ``N_T``, or for ``None`` the default ``N_T = max(100, 4 M)``
    (at most :data:`flowsched._limits.MAX_STEPS`).
    A linear teacher of too few steps has too few points near ``t = 1`` for a large ``M``: with 50 of them, OSS's
    32-step schedules were 1.08x (16 px) and 1.44x (32 px) the best static shift's error on the trained networks
    (docs/quality-models.md, "On trained networks")."""
    if teacher is None:
        teacher = min(max(100, 4 * num_steps), MAX_STEPS)
    if isinstance(teacher, Schedule):
        grid = schedule_values(teacher)
        described = teacher.describe()
    else:
        grid = linear(step_count(name, teacher)).t
        described = f"linear N={grid.size - 1}"
    return grid, described


class StepsizePath(NamedTuple):
    """What :func:`stepsize_search` returns: the schedule (``t``, ``M + 1`` values of the teacher's grid), their
    grid ``indices``, the student's ``final`` state and the velocity ``calls`` the search spent."""

    t: np.ndarray
    indices: list[int]
    final: Any
    calls: int


#: ``velocities(round, states, t) -> list``: the velocity at each of a search round's states (``round`` counts
#: from 0; ``states[k]`` is ``[n, ...]`` at ``t[k]``, in grid order), as many as it was given.
RoundVelocities = Callable[[int, list[Any], list[float]], list[Any]]


def stepsize_search(velocities: RoundVelocities, states: Sequence[Any], grid: Schedule | np.ndarray,
                    num_steps: int) -> StepsizePath:
    """Optimal Stepsize Sampling's dynamic programme (Pei, Hu, Gu 2025, arXiv 2503.21774) over a teacher
    trajectory that is already known: the ``num_steps``-step Euler schedule, on the teacher's grid points, whose
    result lies closest to the teacher's final state. :func:`teacher_search` runs the teacher and calls it; call it
    yourself when the velocities of a round are cheaper asked for together (a pipeline evaluating them in one
    call, a batch on a device).

    Args:
        velocities: ``velocities(round, states, t)``, called once per round (``M`` rounds, the states of a round
            known before it starts), returning the velocity ``v = eps - x0`` at each ``states[k]`` and ``t[k]``.
            Round 0 asks for the velocity at ``states[0]`` alone; round ``m >= 1`` at ``N_T - M + 1`` states.
        states: the teacher's states at every grid point, ``N_T + 1`` arrays or tensors ``[n, ...]`` (the first is
            the noise at ``t = 1``, the last the teacher's result at ``t = 0``).
        grid: the teacher's ``N_T + 1`` values of ``t``, decreasing from 1 to 0.
        num_steps: student steps ``M`` (``1 <= M <= N_T``).

    Returns:
        :class:`StepsizePath`; ``calls`` is ``1 + (M - 1)(N_T - M + 1)``.
    """
    grid = check_t(grid.t if isinstance(grid, Schedule) else grid, "grid", start=1.0, end=0.0)
    num_steps = positive_int("num_steps", num_steps)
    if not callable(velocities):
        raise TypeError(f"velocities must be callable as velocities(round, states, t), got {velocities!r}")
    states = list(states)
    if len(states) != grid.size:
        raise ValueError(f"states must hold the teacher's state at each of the {grid.size} grid points, got "
                         f"{len(states)}")
    if num_steps > grid.size - 1:
        raise ValueError(f"num_steps must be at most the teacher's {grid.size - 1} steps, got {num_steps}")
    return _stepsize_search(velocities, states, grid, num_steps)


def _round(velocities: RoundVelocities, m: int, xs: list[Any], ts: list[float]) -> list[Any]:
    """One round's velocities, checked: one per state, each of the state's shape."""
    out = list(velocities(m, xs, ts))
    if len(out) != len(xs):
        raise ValueError(f"velocities returned {len(out)} velocities for the {len(xs)} states of round {m}")
    for k, (v, x) in enumerate(zip(out, xs, strict=True)):
        if tuple(getattr(v, "shape", ())) != tuple(x.shape):
            raise ValueError(f"velocities returned shape {tuple(getattr(v, 'shape', ()))} for a state of shape "
                             f"{tuple(x.shape)} (round {m}, t = {ts[k]:.6g})")
    return out


def _stepsize_search(velocities: RoundVelocities, states: list[Any], grid: np.ndarray,
                     num_steps: int) -> StepsizePath:
    """OSS's dynamic programme over the teacher's grid points (``states``: the teacher's state at each). Round ``m``
    keeps, for each grid point ``j``, the best state ``m`` student steps can reach there; the last round must land
    on ``t = 0``. One :func:`_round` of velocities per round, at every kept state."""
    n_t = grid.size - 1
    kept: dict[int, Any] = {0: states[0]}
    parents: list[dict[int, int]] = []  # per round: the grid point each kept state jumped from
    calls = 0
    for m in range(1, num_steps + 1):
        last = n_t - (num_steps - m)  # a later point leaves too few grid points for the remaining steps
        src = [i for i in sorted(kept) if i < last]
        vel = dict(zip(src, _round(velocities, m - 1, [kept[i] for i in src], [float(grid[i]) for i in src]),
                       strict=True))
        calls += len(src)
        kept, back = _best_jumps(kept, vel, grid, [n_t] if m == num_steps else range(m, last + 1), states)
        parents.append(back)
    path = [n_t]
    for back in reversed(parents):
        path.append(back[path[-1]])
    path = path[::-1]
    return StepsizePath(grid[path], path, kept[n_t], calls)


def _best_jumps(kept: dict[int, Any], vel: dict[int, Any], grid: np.ndarray, targets: Sequence[int],
                states: list[Any]) -> tuple[dict[int, Any], dict[int, int]]:
    """For each target grid point ``j``: of the Euler jumps ``x_i + (t_j - t_i) v_i`` from the kept states at
    ``i < j``, the one closest to the teacher's state at ``j`` (squared distance summed over the batch), and its
    ``i``."""
    best: dict[int, Any] = {}
    back: dict[int, int] = {}
    for j in targets:
        src = [i for i in vel if i < j]
        cands = _stack([kept[i] + float(grid[j] - grid[i]) * vel[i] for i in src])
        k = int(np.argmin(_sq_dist_per_candidate(cands, states[j])))
        best[j], back[j] = cands[k], src[k]
    return best, back


def _refine(velocity: Callable[[Any, float], Any], noise: Any, target: Any, t: np.ndarray, maxiter: int,
            bar: Any) -> tuple[np.ndarray, float, int]:
    """L-BFGS-B moves the interior values of ``t`` off the teacher's grid, against the teacher's final state
    ``target``; returns the schedule, its value and the velocity calls spent."""
    calls = 0

    def counted(x: Any, tt: float) -> Any:
        nonlocal calls
        calls += 1
        return velocity(x, tt)

    t, value = _minimize(pathwise_objective(counted, noise, target), None, t, maxiter=maxiter, fd_step=1e-4, bar=bar)
    return t, value, calls
