"""Score schedules: :class:`VelocityModel` (your own velocity model, scored like the analytic data models),
:func:`error_table` for several schedules at several step counts, :func:`plot_error_vs_steps` to draw it.

Every data model has an ``error(schedule, ...)`` method whose signature says what it takes:
:meth:`GaussianField.error <flowsched.quality.GaussianField.error>` (``metric``),
:meth:`GaussianMixture.error <flowsched.quality.GaussianMixture.error>` (``metric``, ``num_samples``, ``seed``,
``sampler``) and :meth:`VelocityModel.error` (``metric``, ``sampler``). Conventions: docs/conventions.md; every
error here is "lower is better".
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._limits import step_count
from .._optional import progress_bar
from .._validate import choice, is_torch_tensor, positive_int
from ..sampling import DETERMINISTIC, check_finite, get_sampler
from ..schedule import Schedule
from .field import GaussianField
from .mixture import GaussianMixture

#: The teacher :class:`VelocityModel` uses when no ``reference`` is given.
DEFAULT_TEACHER_STEPS = 100

__all__ = [
    "DEFAULT_TEACHER_STEPS",
    "VelocityModel",
    "default_metric",
    "error_table",
    "plot_error_vs_steps",
    "teacher_reference",
]

Score = Callable[[Schedule], float]


def default_metric(model: Any) -> str:
    """The metric a model's ``error`` uses when none is given: ``"w2"`` for a field, ``"rmse"`` otherwise."""
    return "w2" if isinstance(model, GaussianField) else "rmse"


def _numpy(x: Any) -> np.ndarray:
    return x.detach().double().cpu().numpy() if is_torch_tensor(x) else np.asarray(x, dtype=np.float64)


def _rmse(a: Any, b: Any) -> float:
    """``sqrt(mean_i ||a_i - b_i||^2)``: the first axis indexes samples, the norm runs over the rest."""
    a, b = _numpy(a), _numpy(b)
    if a.shape != b.shape:
        raise ValueError(f"reference has shape {b.shape} but the sampler returned {a.shape}; they must match")
    diff = (a - b).reshape(a.shape[0], -1) if a.ndim > 1 else (a - b)[:, None]
    return float(math.sqrt(np.mean(np.sum(diff**2, axis=1))))


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
        teacher = linear(step_count("teacher", teacher))
    return get_sampler(sampler, "teacher_sampler", DETERMINISTIC)(velocity, noise, teacher, progress=progress)


class VelocityModel:
    """Your velocity model ``v(x, t)`` (the :mod:`flowsched.sampling` contract) with fixed start noise, scored like
    the analytic data models: :meth:`error` is the pathwise ``"rmse"`` ``sqrt(mean_i ||x_i - x_ref_i||^2)`` of a
    sampler on a schedule against reference outputs from the same noise.

    Args:
        velocity: ``v(x, t) -> v``.
        noise: the start states at ``t = 1``, numpy array or torch tensor ``[n, ...]``.
        reference: the "true" outputs for that noise (same shape), e.g. saved from a long run. If omitted, a
            teacher run computes them once, on first use: ``teacher`` (a Schedule, or a step count for the linear
            grid; default :data:`DEFAULT_TEACHER_STEPS`) with ``teacher_sampler`` (default ``"heun"``: 199 calls).
        progress: show the teacher run's progress bar.
    """

    def __init__(
        self,
        velocity: Callable[[Any, float], Any],
        noise: Any,
        *,
        reference: Any = None,
        teacher: Schedule | int = DEFAULT_TEACHER_STEPS,
        teacher_sampler: str = "heun",
        progress: bool = False,
    ) -> None:
        if not callable(velocity):
            raise TypeError(f"velocity must be callable as velocity(x, t), got {type(velocity).__name__}")
        if noise is None or not hasattr(noise, "shape"):
            raise TypeError(f"noise must be the start states at t = 1, an array or tensor [n, ...], got {noise!r:.60}")
        get_sampler(teacher_sampler, "teacher_sampler", DETERMINISTIC)
        if not isinstance(teacher, Schedule):
            step_count("teacher", teacher)
        if reference is not None and tuple(reference.shape) != tuple(noise.shape):
            raise ValueError(f"reference has shape {tuple(reference.shape)}; it must match noise, {tuple(noise.shape)}")
        check_finite("noise", noise)
        if reference is not None:
            check_finite("reference", reference)
        self.velocity, self.noise = velocity, noise
        self.teacher, self.teacher_sampler, self.progress = teacher, teacher_sampler, progress
        self._reference = reference

    @property
    def reference(self) -> Any:
        """The reference outputs (given, or the teacher's, computed on first use and kept)."""
        if self._reference is None:
            self._reference = teacher_reference(
                self.velocity, self.noise, self.teacher, self.teacher_sampler, progress=self.progress
            )
        return self._reference

    def error(self, schedule: Schedule | Sequence[float] | np.ndarray, *, metric: str = "rmse",
              sampler: str = "euler") -> float:
        """``sampler`` (``"euler"`` or ``"heun"``: a pathwise error needs a deterministic sampler) on ``schedule``
        from :attr:`noise`, against :attr:`reference`; ``metric`` ``"rmse"`` (the only one)."""
        choice("metric", metric, ("rmse",))
        run = get_sampler(sampler, accepted=DETERMINISTIC)
        return _rmse(run(self.velocity, self.noise, schedule), self.reference)

    def __repr__(self) -> str:
        name = getattr(self.velocity, "__name__", type(self.velocity).__name__)
        return f"VelocityModel({name}, noise {tuple(self.noise.shape)})"


def error_table(
    makers: Mapping[str, Callable[[int], Schedule]],
    steps: Sequence[int],
    score: GaussianField | GaussianMixture | VelocityModel | Score,
    *,
    progress: bool = False,
) -> dict[str, list[float]]:
    """``{label: [error at each step count]}`` for the schedules ``makers[label](num_steps)``.

    ``score`` is a data model (a :class:`GaussianField`, :class:`GaussianMixture` or :class:`VelocityModel`: its
    ``error`` with its default metric) or any function ``schedule -> float``, e.g.
    ``lambda s: mixture.error(s, metric="sliced_w2", num_samples=2048)``. A :class:`VelocityModel` computes its
    teacher once for the whole table.
    """
    if not isinstance(makers, Mapping) or not makers:
        raise TypeError("makers must be a non-empty mapping {label: function(num_steps) -> Schedule}")
    steps = [step_count("steps entry", n) for n in steps]
    if not steps:
        raise ValueError("steps must hold at least one step count")
    if isinstance(score, (GaussianField, GaussianMixture, VelocityModel)):
        fn = score.error
    elif callable(score):
        fn = score
    else:
        raise TypeError(
            "score must be a GaussianField, GaussianMixture, VelocityModel or a function schedule -> error, got "
            f"{type(score).__name__}"
        )
    cells = [(label, n) for label in makers for n in steps]
    out: dict[str, list[float]] = {label: [] for label in makers}
    with progress_bar(len(cells), progress, "evaluate", "schedule") as bar:
        for label, n in cells:
            out[label].append(float(fn(makers[label](n))))
            bar.update(1)
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
    from ..plot import image_format, save_figure

    fmt = image_format(path)  # check the path before drawing
    positive_int("dpi", dpi)
    fig = _error_figure(results, steps, ylabel=ylabel, title=title, floor=floor)
    return save_figure(fig, path, dpi=dpi, fmt=fmt)


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

    steps = [step_count("steps entry", n) for n in steps]
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
            xs = [n for n, v in zip(steps, values, strict=True) if v is not None]
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
    for y, v in zip(ys, values, strict=True):
        ax.text(v + 0.01 * top, y, f"{v:.4g}", va="center", fontsize="small")
    if floor is not None:
        ax.axvline(floor, color="grey", linestyle="--", linewidth=1.0, label="noise floor")
        ax.legend(fontsize="small", loc="lower right")
    ax.set_xlim(0, 1.15 * top if top > 0 else 1.0)
    ax.set_xlabel(f"{xlabel} at N = {n} (lower is better)")
    ax.grid(True, axis="x", alpha=0.3)
    return fig

