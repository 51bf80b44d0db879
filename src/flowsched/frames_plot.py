"""Seeing frame schedules: a heatmap of ``t`` over step x frame with the update mask, as a figure or as text.

numpy only at import: matplotlib is imported when a figure is drawn (the ``plot`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._optional import require
from ._validate import positive_int
from .frames import FrameSchedule

#: Characters of the terminal heatmap from clean (t = 0) to noise (t = 1).
RAMP = " .:-=+*#%@"


__all__ = ["RAMP", "frame_schedule_figure", "plot_frame_schedules", "terminal_heatmap"]


def _items(schedules: Any) -> list[tuple[str, FrameSchedule]]:
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
    items = _items(schedules)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {type(title).__name__}")
    Figure = require("matplotlib.figure", "plotting a frame schedule").Figure
    fig = Figure(figsize=(3.6 * len(items) + 1.2, 5.2), layout="constrained")
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    image = None
    for ax, (label, fs) in zip(axes, items):
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
    from .plot import image_format, save_figure

    fmt = image_format(path)  # check the path before drawing
    fig = frame_schedule_figure(schedules, title=title)

    return save_figure(fig, path, dpi=dpi, fmt=fmt)
