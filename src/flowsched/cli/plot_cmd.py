"""``flowsched plot``: a PNG comparing schedules (t, log-SNR and step size against the step)."""

from __future__ import annotations

from ._common import add_command, need, positive_int
from ._output import Output, check_outputs, image_suffixes
from ._schedules import add_spec_steps_option, load_specs

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched plot opensora-2.0-768px wan2.1-t2v-720p hunyuanvideo ltx-video --out video.png
  flowsched plot linear shifted:alpha=3 shifted:alpha=7 --steps 30 --panels t,dt --out shifts.png
  flowsched plot flux.1-dev mine.json --x progress --label "Flux dev" --label "my schedule" --out flux.png

Each SCHEDULE is a preset name (`flowsched presets`), a spec FAMILY:key=value,... (shifted:alpha=3,
flux:image_seq_len=4096, karras:t_min=0.002, flow_match_euler:shift=3 ...) or a JSON schedule file
(`flowsched schedule --out mine.json`). Presets use their default size; give another with
PRESET:height=480,width=832,frames=81. t = 1 is noise, t = 0 is data;
log-SNR = log((1-t)^2 / t^2).
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "plot",
        help="write a PNG comparing schedules: t, log-SNR and step size against the step",
        description="Draw any number of schedules side by side (one panel per view, one line per schedule) "
        "and write the figure as PNG (or SVG/PDF by the file suffix).",
        epilog=EPILOG,
    )
    p.add_argument("schedules", nargs="+", metavar="SCHEDULE", help="preset name, FAMILY:key=value spec, or JSON file")
    p.add_argument("--out", "-o", default="schedules.png", help="image to write (.png, .svg or .pdf)")
    add_spec_steps_option(p)
    p.add_argument(
        "--panels",
        default="t,logsnr,dt",
        help="comma-separated views to draw, in order: t (schedule), logsnr (log-SNR), dt (step size)",
    )
    p.add_argument(
        "--x",
        choices=("step", "progress"),
        default="step",
        help="x axis: the step index i, or the progress i/N (compares different step counts)",
    )
    p.add_argument(
        "--label",
        action="append",
        metavar="TEXT",
        help="legend label, once per SCHEDULE in order; unset: the spec with its shift and N",
    )
    p.add_argument("--title", help="figure title; unset: 'Sampling schedules'")
    p.add_argument("--dpi", type=positive_int, default=110, help="resolution of the PNG")
    p.add_argument("--terminal", action="store_true", help="also print a text plot of t against the step")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..plot import check_panels, plot_schedules, shift_summary, terminal_plot

    check_outputs(Output(args.out, "--out", image_suffixes()))
    try:
        check_panels(args.panels)
    except ValueError as exc:
        raise ValueError(f"--panels: {exc}") from None
    if args.label is not None and len(args.label) != len(args.schedules):
        raise ValueError(
            f"--label was given {len(args.label)} time(s) for {len(args.schedules)} schedule(s); "
            "give one per SCHEDULE or none"
        )
    need("matplotlib", "flowsched plot")
    loaded = load_specs(args.schedules, args.steps)
    labels = args.label or [f"{spec}: {shift_summary(s)}" for spec, s in loaded]
    if len(set(labels)) != len(labels):
        raise ValueError("two schedules have the same label; pass --label once per SCHEDULE to tell them apart")
    figure = dict(zip(labels, (s for _, s in loaded), strict=True))
    path = plot_schedules(figure, args.out, panels=args.panels, title=args.title, x=args.x, dpi=args.dpi)
    for label, s in figure.items():
        nonzero = s.t[s.t > 0]
        print(f"{label:<48}  t {s.t[0]:.4f} -> {nonzero[-1]:.4f} -> {s.t[-1]:g}")
    if args.terminal:
        print()
        print(terminal_plot(figure))
    print(f"wrote {path} ({len(figure)} schedule(s); panels {args.panels})")
    return 0
