"""Seeing schedules: matplotlib figures and a text plot for the terminal.

Convention (docs/conventions.md): ``t = 1`` is noise, ``t = 0`` is data; a schedule is the ``N + 1`` values of ``t`` a
sampler visits. Three views are offered, each against the step index ``i = 0 .. N``:

* ``"t"``: the schedule itself;
* ``"logsnr"``: the log signal-to-noise ratio of ``x_t = (1 - t) x0 + t eps``,
  ``log((1 - t)^2 / t^2) = 2 log((1 - t) / t)`` (infinite at ``t = 0`` and ``t = 1``; those points are left out);
* ``"dt"``: the size of each step, ``|t[i+1] - t[i]|``, drawn at the step's start ``i``.

Per-frame schedules (:class:`~flowsched.frames.FrameSchedule`) are drawn as heatmaps of ``t`` over step x frame with
their update mask: :func:`terminal_heatmap` (text) and :func:`frame_schedule_figure` / :func:`plot_frame_schedules`.

numpy only at import: matplotlib is imported when a figure is drawn (the ``plot`` extra).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._limits import check_bytes, max_bytes_default
from ._optional import require
from ._validate import choice, positive_int
from .frames import FrameSchedule
from .schedule import Schedule

__all__ = [
    "FORMATS",
    "PANELS",
    "X_AXES",
    "check_panels",
    "default_label",
    "frame_schedule_figure",
    "image_format",
    "labelled",
    "log_snr",
    "plot_frame_schedules",
    "plot_schedules",
    "save_figure",
    "schedule_figure",
    "shift_summary",
    "terminal_heatmap",
    "terminal_plot",
]

#: Names accepted in ``panels``, in the order they are usually drawn.
PANELS = ("t", "logsnr", "dt")

#: The x axis of every panel: the step index, or the fraction of the schedule done (``i / N``).
X_AXES = ("step", "progress")

#: Markers of the terminal plot, one per schedule (the first is ``●``).
MARKERS = ("●", "○", "▲", "◆", "■", "×", "+", "*")

FORMATS = ("png", "svg", "pdf")

#: Characters of the terminal heatmap of a frame schedule, from clean (t = 0) to noise (t = 1).
RAMP = " .:-=+*#%@"


# -- inputs ---------------------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shift_summary(schedule: Schedule) -> str:
    """``alpha=3.158 (mu=1.15), N=28``: the schedule's shift (and Flux-style ``mu`` when it has one) and ``N``."""
    params = schedule.params
    parts = []
    if _number(params.get("alpha")):
        text = f"alpha={params['alpha']:.4g}"
        if _number(params.get("mu")):
            text += f" (mu={params['mu']:.4g})"
        parts.append(text)
    elif _number(params.get("mu")):
        parts.append(f"mu={params['mu']:.4g}")
    parts.append(f"N={schedule.num_steps}")
    return ", ".join(parts)


def default_label(schedule: Schedule) -> str:
    """A short legend label: the family, its shift (``alpha``; ``mu`` too when the rule has one) and ``N``."""
    return f"{schedule.name} {shift_summary(schedule)}"


def labelled(schedules: Any, argument: str = "schedules") -> list[tuple[str, Schedule]]:
    """Normalise a schedule, a sequence of schedules, or a ``{label: schedule}`` mapping to ``[(label, schedule)]``.

    Unlabelled schedules get :func:`default_label`. Raises ``TypeError``/``ValueError`` naming ``argument``.
    """
    if isinstance(schedules, Schedule):
        items: list[tuple[Any, Any]] = [(None, schedules)]
    elif isinstance(schedules, Mapping):
        items = list(schedules.items())
    elif isinstance(schedules, Sequence) and not isinstance(schedules, (str, bytes)):
        items = [(None, s) for s in schedules]
    else:
        raise TypeError(
            f"{argument} must be a Schedule, a list of Schedules or a {{label: Schedule}} mapping, "
            f"got {type(schedules).__name__}"
        )
    if not items:
        raise ValueError(f"{argument} must hold at least one schedule, got an empty {type(schedules).__name__}")
    out = []
    for i, (label, schedule) in enumerate(items):
        if not isinstance(schedule, Schedule):
            where = f"entry {label!r}" if label is not None else f"item {i}"
            raise TypeError(
                f"{argument} {where} must be a flowsched Schedule, got {type(schedule).__name__} "
                "(wrap a list of t values with flowsched.Schedule(t))"
            )
        if label is None:
            label = default_label(schedule)
        elif not isinstance(label, str) or not label:
            raise TypeError(f"{argument} labels must be non-empty strings, got {label!r}")
        out.append((label, schedule))
    return out


def log_snr(t: np.ndarray) -> np.ndarray:
    """``log((1 - t)^2 / t^2)`` for ``x_t = (1 - t) x0 + t eps``, float64; ``+inf`` at ``t = 0``, ``-inf`` at 1."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 2.0 * (np.log1p(-t) - np.log(t))


def _x(schedule: Schedule, x: str, n: int | None = None) -> np.ndarray:
    """The x coordinates of the first ``n`` (default all ``N + 1``) points."""
    i = np.arange(schedule.t.size if n is None else n, dtype=np.float64)
    return i / schedule.num_steps if x == "progress" else i


# -- terminal -------------------------------------------------------------------------------------------------


def terminal_plot(schedule_or_list: Any, width: int = 60, height: int = 12) -> str:
    """A text plot of ``t`` against the step index: markers on a character grid.

    Args:
        schedule_or_list: a :class:`Schedule`, a list of them, or a ``{label: Schedule}`` mapping. Each schedule
            gets its own marker (``●``, ``○``, ``▲`` ...); with more than one, a legend follows the plot.
        width: columns of the plotting area (>= 10). Point ``i`` of a schedule with ``N`` steps is drawn in
            column ``round(i * (width - 1) / N_max)``.
        height: rows of the plotting area (>= 3). ``t`` is drawn in row ``round((1 - t) * (height - 1))``,
            so the labelled rows 1.0, 0.5 and 0.0 are exact.

    Returns:
        The plot as one string (lines joined by newlines, no trailing newline).
    """
    items = labelled(schedule_or_list, "schedule_or_list")
    width = positive_int("width", width)
    height = positive_int("height", height)
    if width < 10:
        raise ValueError(f"width must be at least 10 columns, got {width}")
    if height < 3:
        raise ValueError(f"height must be at least 3 rows, got {height}")
    n_max = max(s.num_steps for _, s in items)
    grid = [[" "] * width for _ in range(height)]
    # Draw the first schedule last so that it wins where markers overlap.
    for k in reversed(range(len(items))):
        t = items[k][1].t
        cols = np.rint(np.arange(t.size) * (width - 1) / n_max).astype(int)
        rows = np.rint((1.0 - t) * (height - 1)).astype(int)
        for r, c in zip(rows, cols, strict=True):
            grid[r][c] = MARKERS[k % len(MARKERS)]
    labels = {0: "1.0", int(round((height - 1) / 2)): "0.5", height - 1: "0.0"}
    lines = ["  t"]
    for r, row in enumerate(grid):
        axis = f"{labels[r]} ┤" if r in labels else "    │"
        lines.append((axis + "".join(row)).rstrip())
    lines.append("    └" + "─" * width + "► step")
    ticks = [" "] * (width + 8)
    for value in (0, n_max // 2, n_max):
        text = str(value)
        col = 5 + int(round(value * (width - 1) / n_max))
        start = min(col, len(ticks) - len(text)) if value == n_max else col
        ticks[start : start + len(text)] = list(text)
    lines.append("".join(ticks).rstrip())
    if len(items) > 1:
        lines.append("")
        lines.extend(f"  {MARKERS[k % len(MARKERS)]} {label}" for k, (label, _) in enumerate(items))
    return "\n".join(lines)


# -- matplotlib -----------------------------------------------------------------------------------------------


def check_panels(panels: Any) -> tuple[str, ...]:
    """``panels`` (a list, or a comma-separated string such as ``"t,dt"``) as a tuple of :data:`PANELS` names;
    ``ValueError`` for an empty list, an unknown name or a repeat."""
    if isinstance(panels, str):
        panels = tuple(p.strip() for p in panels.split(",") if p.strip())
    if not isinstance(panels, (tuple, list)) or not panels:
        raise ValueError(f"panels must be a non-empty list drawn from {', '.join(PANELS)}; got {panels!r}")
    for p in panels:
        choice("panels entry", p, PANELS)
    if len(set(panels)) != len(panels):
        raise ValueError(f"panels must not repeat a panel, got {list(panels)}")
    return tuple(panels)


def image_format(path: str | os.PathLike) -> str:
    """The image format a file name asks for (``"png"``, ``"svg"`` or ``"pdf"``, from its suffix); ``ValueError``
    for another suffix, ``TypeError`` for a non-path. Every figure writer checks its path with it before drawing."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (str or os.PathLike), got {type(path).__name__}")
    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if suffix not in FORMATS:
        accepted = ", ".join("." + f for f in FORMATS)
        raise ValueError(f"path must end in one of {accepted} (the image format), got {os.fspath(path)!r}")
    return suffix


def _draw(ax: Any, panel: str, label: str, schedule: Schedule, x: str) -> None:
    style = {"label": label, "marker": "o", "markersize": 2.5, "linewidth": 1.2}
    if panel == "t":
        ax.plot(_x(schedule, x), schedule.t, **style)
    elif panel == "logsnr":
        y = log_snr(schedule.t)
        keep = np.isfinite(y)
        ax.plot(_x(schedule, x)[keep], y[keep], **style)
    else:
        ax.plot(_x(schedule, x, schedule.num_steps), np.abs(schedule.dt), **style)


_YLABEL = {
    "t": "t  (1 = noise, 0 = data)",
    "logsnr": "log-SNR  log((1-t)² / t²)",
    "dt": "step size |t[i+1] - t[i]|",
}
_PANEL_TITLE = {"t": "schedule", "logsnr": "log signal-to-noise ratio", "dt": "step size"}


def schedule_figure(
    schedules: Any,
    *,
    panels: Sequence[str] = PANELS,
    title: str | None = None,
    x: str = "step",
) -> Any:
    """The matplotlib ``Figure`` that :func:`plot_schedules` writes (for callers who want to adjust it).

    One axes per panel, one line per schedule in each (in the given order), a shared legend and a title.
    The figure is not attached to pyplot, so it needs no display and leaves no global state behind.
    """
    items = labelled(schedules)
    panels = check_panels(panels)
    choice("x", x, X_AXES)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {type(title).__name__}")
    Figure = require("matplotlib.figure", "plotting").Figure

    fig = Figure(figsize=(4.6 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        for label, schedule in items:
            _draw(ax, panel, label, schedule, x)
        ax.set_title(_PANEL_TITLE[panel])
        ax.set_xlabel("step i" if x == "step" else "progress i / N")
        ax.set_ylabel(_YLABEL[panel])
        ax.grid(True, alpha=0.3)
        if panel == "dt":
            ax.set_ylim(bottom=0)
    if title is None:
        title = "Sampling schedules" if len(items) > 1 else items[0][0]
    fig.suptitle(title)
    # One legend for the whole figure, below the panels, so no panel's curves are hidden.
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(items), 3), fontsize="small", frameon=False)
    return fig


def plot_schedules(
    schedules: Any,
    path: str | os.PathLike,
    *,
    panels: Sequence[str] = PANELS,
    title: str | None = None,
    x: str = "step",
    dpi: int = 110,
) -> str:
    """Write a figure comparing schedules: one panel per view in ``panels``, a shared legend and a title.

    Args:
        schedules: a :class:`Schedule`, a list of them (labelled by :func:`default_label`), or a
            ``{label: Schedule}`` mapping.
        path: the image file; its suffix picks the format (``.png``, ``.svg`` or ``.pdf``). Written atomically.
        panels: any of ``"t"`` (t against step), ``"logsnr"`` (log((1-t)^2/t^2) against step) and ``"dt"``
            (step size against step), in the order drawn; a comma-separated string is accepted too.
        title: the figure title (default: "Sampling schedules", or the label of a single schedule).
        x: ``"step"`` (the step index ``i``) or ``"progress"`` (``i / N``, to compare different step counts).
        dpi: resolution of raster output.

    Returns:
        ``path`` as a string.
    """
    fmt = image_format(path)  # check the path before drawing
    fig = schedule_figure(schedules, panels=panels, title=title, x=x)
    return save_figure(fig, path, dpi=dpi, fmt=fmt)


#: matplotlib's Agg renderer draws less than 2^16 pixels along each side of an image.
MAX_PIXELS_PER_SIDE = 2**16 - 1


def check_dpi(dpi: Any, size_inches: Sequence[float]) -> int:
    """``dpi`` checked for a figure of ``size_inches`` (width, height), before anything is drawn: at most
    :data:`MAX_PIXELS_PER_SIDE` pixels per side, and the image (about 8 bytes per pixel: the RGBA canvas and the
    encoder's copy) within the memory budget of :mod:`flowsched._limits`. The refusal names the largest dpi that
    passes both. Returns ``dpi``."""
    dpi = positive_int("dpi", dpi)
    w_in, h_in = (float(v) for v in size_inches)

    def pixels(d: int) -> tuple[int, int]:
        return round(w_in * d), round(h_in * d)

    limit = max_bytes_default()
    most = min(int(MAX_PIXELS_PER_SIDE / max(w_in, h_in)), int(math.sqrt(limit / (8 * w_in * h_in))) + 1)
    while most > 1 and 8 * math.prod(pixels(most)) > limit:
        most -= 1
    w, h = pixels(dpi)
    if max(w, h) > MAX_PIXELS_PER_SIDE:
        raise ValueError(
            f"dpi={dpi} makes this {w_in:g} x {h_in:g}-inch figure {w} x {h} pixels; matplotlib draws at most "
            f"{MAX_PIXELS_PER_SIDE} pixels per side: use dpi <= {most}"
        )
    nbytes = 8 * w * h
    how = f"use dpi <= {most} or set FLOWSCHED_MAX_BYTES={nbytes} to allow it"
    check_bytes(f"dpi={dpi}: a {w} x {h}-pixel image", nbytes, about=True, how=how)
    return dpi


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 110, fmt: str | None = None) -> str:
    """Write a matplotlib figure atomically: rendered to bytes first, so a failed draw leaves no partial file.

    ``path``'s suffix picks the format (``.png``, ``.svg``, ``.pdf``) unless ``fmt`` names it. Returns ``path``.
    """
    fmt = image_format(path) if fmt is None else choice("fmt", fmt, FORMATS)
    check_dpi(dpi, fig.get_size_inches())
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    from ._io import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


# -- frame schedules -----------------------------------------------------------------------------------------


def _frame_items(schedules: Any) -> list[tuple[str, FrameSchedule]]:
    if isinstance(schedules, FrameSchedule):
        return [(schedules.describe(), schedules)]
    if isinstance(schedules, Mapping):
        items = list(schedules.items())
    elif isinstance(schedules, Sequence) and not isinstance(schedules, (str, bytes)):
        items = [(s.describe() if isinstance(s, FrameSchedule) else "", s) for s in schedules]
    else:
        raise TypeError(
            f"schedules must be a FrameSchedule, a list of them or a {{label: FrameSchedule}} mapping, got "
            f"{type(schedules).__name__}"
        )
    if not items:
        raise ValueError("schedules is empty: give at least one FrameSchedule")
    for label, fs in items:
        if not isinstance(fs, FrameSchedule):
            raise TypeError(f"every schedule must be a FrameSchedule, got {type(fs).__name__} for {label!r}")
    return [(str(label), fs) for label, fs in items]


def terminal_heatmap(fs: FrameSchedule, *, max_rows: int = 60, max_frames: int = 100) -> str:
    """Text heatmap: one line per row of ``t`` (the state before each step), one character per frame, from
    ``RAMP[-1]`` (t = 1, noise) down to ``" "`` (t = 0, clean); the right margin says how many frames the step
    moves. Long schedules show ``max_rows`` evenly spaced rows and wide ones ``max_frames`` evenly spaced frames,
    and say so."""
    if not isinstance(fs, FrameSchedule):
        raise TypeError(f"fs must be a FrameSchedule, got {type(fs).__name__}")
    max_rows = positive_int("max_rows", max_rows)
    max_frames = positive_int("max_frames", max_frames)
    rows = np.arange(fs.num_steps + 1)
    if rows.size > max_rows:
        rows = np.unique(np.linspace(0, fs.num_steps, max_rows).round().astype(int))
    cols = np.arange(fs.num_frames)
    if cols.size > max_frames:
        cols = np.unique(np.linspace(0, fs.num_frames - 1, max_frames).round().astype(int))
    levels = np.clip(np.ceil(fs.t * (len(RAMP) - 1)).astype(int), 0, len(RAMP) - 1)
    width = len(str(fs.num_steps))
    lines = [f"{'step':>{width + 1}} |{'frames ->'.ljust(cols.size)}| moves"]
    for r in rows:
        cells = "".join(RAMP[levels[r, c]] for c in cols)
        moves = int(fs.update[r].sum()) if r < fs.num_steps else 0
        lines.append(f"{r:>{width + 1}} |{cells}| {moves if r < fs.num_steps else 'end'}")
    notes = [f"t: '{RAMP[-1]}' = 1 (noise) ... '{RAMP[1]}' <= {1 / (len(RAMP) - 1):.2g}, ' ' = 0 (clean)"]
    if rows.size < fs.num_steps + 1:
        notes.append(f"{rows.size} of {fs.num_steps + 1} rows shown")
    if cols.size < fs.num_frames:
        notes.append(f"{cols.size} of {fs.num_frames} frames shown")
    if fs.prefix_frames:
        notes.append(f"frames 0-{fs.prefix_frames - 1} are given (prefix) at t={fs.prefix_level:g}")
    lines.append("; ".join(notes))
    return "\n".join(lines)


def frame_schedule_figure(schedules: Any, *, title: str | None = None) -> Any:
    """A matplotlib ``Figure``: one panel per schedule, ``t`` as colour over frame (x) and step (y, downwards),
    the frames each step moves outlined in white (the update mask), given prefix frames hatched."""
    items = _frame_items(schedules)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {type(title).__name__}")
    Figure = require("matplotlib.figure", "plotting a frame schedule").Figure
    fig = Figure(figsize=(3.6 * len(items) + 1.2, 5.2), layout="constrained")
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    image = None
    for ax, (label, fs) in zip(axes, items, strict=True):
        r, f = fs.num_steps, fs.num_frames
        image = ax.imshow(fs.t, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
                          extent=(-0.5, f - 0.5, r + 0.5, -0.5))
        # the update mask: a cell (row r, frame f) is outlined when step r moves frame f
        # (padded with zeros so the outline closes at the edges; the 0.5 level runs along the cell edges)
        mask = np.zeros((r + 3, f + 2))
        mask[1 : r + 1, 1 : f + 1] = fs.update
        ax.contour(np.arange(-1, f + 1), np.arange(-1, r + 2), mask, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_xlim(-0.5, f - 0.5)
        ax.set_ylim(r + 0.5, -0.5)
        if fs.prefix_frames:
            ax.axvspan(-0.5, fs.prefix_frames - 0.5, fill=False, hatch="//", edgecolor="0.85", linewidth=0)
        ax.set_title(label, fontsize="small")
        ax.set_xlabel("latent frame")
        ax.set_ylabel("step (model call)")
    fig.colorbar(image, ax=list(axes), label="t  (1 = noise, 0 = data)", shrink=0.8)
    fig.suptitle(title or ("Frame schedules" if len(items) > 1 else items[0][0]))
    return fig


def plot_frame_schedules(schedules: Any, path: str | os.PathLike, *, title: str | None = None, dpi: int = 110) -> str:
    """Write :func:`frame_schedule_figure` to ``path`` (``.png``, ``.svg`` or ``.pdf``), atomically. Returns it."""
    fmt = image_format(path)  # check the path before drawing
    fig = frame_schedule_figure(schedules, title=title)
    return save_figure(fig, path, dpi=dpi, fmt=fmt)
