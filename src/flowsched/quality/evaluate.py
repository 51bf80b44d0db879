"""One entry point to score a schedule: :func:`evaluate` against an analytic data model or your own velocity model,
:func:`error_table` for several schedules at several step counts, :func:`plot_error_vs_steps` to draw it.

Convention (DESIGN.md): ``t = 1`` noise, ``t = 0`` data; every error here is "lower is better".
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._validate import choice, positive_int
from ..sampling import euler, heun, progress_bar
from ..schedule import Schedule
from .field import GaussianField
from .mixture import GaussianMixture

SAMPLERS = {"euler": euler, "heun": heun}

#: The teacher used by :func:`evaluate` for a velocity callable when no ``reference`` is given.
DEFAULT_TEACHER_STEPS = 100

__all__ = [
    "DEFAULT_TEACHER_STEPS",
    "default_metric",
    "error_table",
    "evaluate",
    "plot_error_vs_steps",
    "teacher_reference",
]


def default_metric(model: Any) -> str:
    """The metric :func:`evaluate` uses when none is given: ``"w2"`` for a field, ``"rmse"`` otherwise."""
    return "w2" if isinstance(model, GaussianField) else "rmse"


def _rmse(a: Any, b: Any) -> float:
    """``sqrt(mean_i ||a_i - b_i||^2)``: the first axis indexes samples, the norm runs over the rest."""
    if type(a).__module__.startswith("torch"):
        a = a.detach().double().cpu().numpy()
    if type(b).__module__.startswith("torch"):
        b = b.detach().double().cpu().numpy()
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"reference has shape {b.shape} but the sampler returned {a.shape}; they must match")
    diff = (a - b).reshape(a.shape[0], -1) if a.ndim > 1 else (a - b)[:, None]
    return float(math.sqrt(np.mean(np.sum(diff**2, axis=1))))


def evaluate(
    schedule: Schedule | Sequence[float] | np.ndarray,
    model: GaussianField | GaussianMixture | Callable[[Any, float], Any],
    metric: str | None = None,
    **kw: Any,
) -> float:
    """The error of sampling with ``schedule``, lower is better. Dispatches on ``model``:

    * :class:`GaussianField`: exact Euler error, ``metric`` ``"w2"`` (default) or ``"kl"``; no keywords.
    * :class:`GaussianMixture`: ``metric`` ``"rmse"`` (default), ``"sliced_w2"`` or ``"modes"``; keywords
      ``n`` (noises, default 1024), ``seed`` (0) and ``sampler`` (``"euler"`` or ``"heun"``), as in
      :meth:`GaussianMixture.error`.
    * a velocity callable ``v(x, t)`` (your model; see :mod:`flowsched.sampling`): the pathwise error
      ``sqrt(mean_i ||x_i - x_ref_i||^2)`` (``metric="rmse"``, the only one; ``i`` runs over the first axis of
      ``noise``) of ``sampler`` on ``schedule`` against a reference from the same noise. Keywords:

      - ``noise`` (required): the start states at ``t = 1``, numpy array or torch tensor ``[n, ...]``;
      - ``reference``: the "true" outputs for that noise (same shape), e.g. from a long run you saved; if
        omitted, a teacher run computes them: ``teacher`` (a Schedule, or a step count for the linear grid;
        default ``DEFAULT_TEACHER_STEPS`` = 100) with ``teacher_sampler`` (default ``"heun"``, 199 calls);
      - ``sampler``: ``"euler"`` (default) or ``"heun"`` for the schedule under test.

      The teacher costs model calls: pass ``reference`` when you score several schedules on the same noise
      (or use :func:`error_table`, which computes it once).
    """
    if isinstance(model, GaussianField):
        if kw:
            raise TypeError(f"evaluate on a GaussianField takes no keywords, got {sorted(kw)}")
        return model.error(schedule, "w2" if metric is None else metric)
    if isinstance(model, GaussianMixture):
        unknown = set(kw) - {"n", "seed", "sampler"}
        if unknown:
            raise TypeError(f"evaluate on a GaussianMixture accepts n, seed and sampler, got {sorted(unknown)}")
        return model.error(schedule, metric="rmse" if metric is None else metric, **kw)
    if callable(model):
        return _evaluate_velocity(schedule, model, "rmse" if metric is None else metric, **kw)
    raise TypeError(
        f"model must be a GaussianField, a GaussianMixture or a velocity callable v(x, t), got {type(model).__name__}"
    )


def _evaluate_velocity(
    schedule: Any,
    velocity: Callable[[Any, float], Any],
    metric: str,
    *,
    noise: Any = None,
    reference: Any = None,
    teacher: Schedule | int = DEFAULT_TEACHER_STEPS,
    teacher_sampler: str = "heun",
    sampler: str = "euler",
) -> float:
    choice("metric", metric, ("rmse",))
    if noise is None:
        raise ValueError("evaluate on a velocity callable needs noise= (the start states at t = 1, [n, ...])")
    run = SAMPLERS[choice("sampler", sampler, tuple(SAMPLERS))]
    if reference is None:
        reference = teacher_reference(velocity, noise, teacher, teacher_sampler)
    return _rmse(run(velocity, noise, schedule), reference)


def teacher_reference(
    velocity: Callable[[Any, float], Any],
    noise: Any,
    teacher: Schedule | int = DEFAULT_TEACHER_STEPS,
    sampler: str = "heun",
    *,
    progress: bool = False,
) -> Any:
    """The teacher's outputs for ``noise``: ``sampler`` on ``teacher`` (a Schedule, or a step count for the
    linear grid ``linspace(1, 0, N + 1)``)."""
    from ..schedules import linear

    if not isinstance(teacher, Schedule):
        teacher = linear(positive_int("teacher", teacher))
    run = SAMPLERS[choice("teacher_sampler", sampler, tuple(SAMPLERS))]
    return run(velocity, noise, teacher, progress=progress)


def error_table(
    makers: Mapping[str, Callable[[int], Schedule]],
    steps: Sequence[int],
    model: Any,
    metric: str | None = None,
    *,
    progress: bool = False,
    **kw: Any,
) -> dict[str, list[float]]:
    """``{label: [error at each step count]}`` for schedules made by ``makers[label](num_steps)``.

    For a velocity callable the teacher reference is computed once and reused for every cell.
    """
    if not isinstance(makers, Mapping) or not makers:
        raise TypeError("makers must be a non-empty mapping {label: function(num_steps) -> Schedule}")
    steps = [positive_int("steps entry", n) for n in steps]
    if not steps:
        raise ValueError("steps must hold at least one step count")
    if not isinstance(model, (GaussianField, GaussianMixture)) and callable(model) and kw.get("reference") is None:
        if kw.get("noise") is None:
            raise ValueError("evaluate on a velocity callable needs noise= (the start states at t = 1, [n, ...])")
        kw["reference"] = teacher_reference(
            model,
            kw["noise"],
            kw.pop("teacher", DEFAULT_TEACHER_STEPS),
            kw.pop("teacher_sampler", "heun"),
            progress=progress,
        )
    cells = [(label, n) for label in makers for n in steps]
    bar = progress_bar(len(cells), progress, "evaluate", "schedule")
    out: dict[str, list[float]] = {label: [] for label in makers}
    try:
        for label, n in cells:
            out[label].append(evaluate(makers[label](n), model, metric, **kw))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def plot_error_vs_steps(
    results: Mapping[str, Sequence[float | None]],
    steps: Sequence[int],
    path: str | os.PathLike,
    *,
    ylabel: str = "error",
    title: str | None = None,
    floor: float | None = None,
    dpi: int = 110,
) -> str:
    """Write a plot of error against step count (``results`` as returned by :func:`error_table`; ``None`` marks a
    cell that was not scored, e.g. a fixed-length schedule at another N).

    Several step counts: a log-log line per schedule. One step count: a horizontal bar per schedule with its value
    written on it (a log axis over one point has no ticks to read). ``floor``: a reference line (e.g. the
    sliced-W2 noise floor). The suffix of ``path`` picks the format (.png, .svg, .pdf); written atomically.
    Returns ``path`` as a string."""
    from .._io import atomic_write_bytes
    from ..plot import _format

    fmt = _format(path)  # check the path before drawing
    fig = _error_figure(results, steps, ylabel=ylabel, title=title, floor=floor)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=positive_int("dpi", dpi))
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


def _error_figure(
    results: Mapping[str, Sequence[float | None]],
    steps: Sequence[int],
    *,
    ylabel: str = "error",
    title: str | None = None,
    floor: float | None = None,
) -> Any:
    """The matplotlib Figure :func:`plot_error_vs_steps` writes."""
    from .._optional import require

    steps = [positive_int("steps entry", n) for n in steps]
    if not steps:
        raise ValueError("steps must hold at least one step count")
    if not isinstance(results, Mapping) or not results:
        raise TypeError("results must be a non-empty mapping {label: [error at each step count]}")
    for label, values in results.items():
        if len(values) != len(steps):
            raise ValueError(f"results[{label!r}] has {len(values)} values for {len(steps)} step counts")
        for v in values:
            if v is not None and not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"results[{label!r}] must hold finite errors >= 0 or None, got {v!r}")
    Figure = require("matplotlib.figure", "plotting").Figure

    if len(steps) == 1:
        fig = _bar_chart(Figure, results, steps[0], ylabel, floor)
    else:
        fig = Figure(figsize=(6.0, 4.4), layout="constrained")
        ax = fig.subplots()
        for label, values in results.items():
            xs = [n for n, v in zip(steps, values) if v is not None]
            ys = [v for v in values if v is not None]
            ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.3, label=label)
        if floor is not None:
            ax.axhline(floor, color="grey", linestyle="--", linewidth=1.0, label="noise floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(set(steps)))
        ax.set_xticklabels([str(n) for n in sorted(set(steps))])
        # No minor ticks on the step axis (the step counts are labelled); the error axis keeps them, so a span
        # under one decade still has labelled ticks.
        ax.xaxis.set_minor_locator(require("matplotlib.ticker", "plotting").NullLocator())
        ax.set_xlabel("sampler steps N")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.axes[0].set_title(title or "Error against steps")
    return fig


def _bar_chart(Figure: Any, results: Mapping[str, Sequence[float | None]], n: int, xlabel: str, floor: float | None):
    """One horizontal bar per scored schedule at a single step count ``n``, its value written at the bar's end."""
    scored = [(label, float(values[0])) for label, values in results.items() if values[0] is not None]
    fig = Figure(figsize=(6.0, 1.2 + 0.45 * max(len(scored), 1)), layout="constrained")
    ax = fig.subplots()
    labels = [label for label, _ in scored]
    values = [v for _, v in scored]
    ys = np.arange(len(scored))
    ax.barh(ys, values, height=0.6, color="C0")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()  # first schedule on top, as in the table
    top = max(values + ([floor] if floor is not None else []) + [0.0])
    for y, v in zip(ys, values):
        ax.text(v + 0.01 * top, y, f"{v:.4g}", va="center", fontsize="small")
    if floor is not None:
        ax.axvline(floor, color="grey", linestyle="--", linewidth=1.0, label="noise floor")
        ax.legend(fontsize="small", loc="lower right")
    ax.set_xlim(0, 1.15 * top if top > 0 else 1.0)
    ax.set_xlabel(f"{xlabel} at N = {n} (lower is better)")
    ax.grid(True, axis="x", alpha=0.3)
    return fig
