"""``flowsched schedule``: the timestep schedule for a preset at your size and step count (no torch)."""

from __future__ import annotations

import csv
import io

from ._common import (
    Formatter,
    add_geometry_options,
    positive_float,
    positive_int,
    resolve_geometry,
    warn,
)

EPILOG = """\
examples:
  flowsched schedule                                    # Open-Sora 2.0 768px, 129 frames, 50 steps
  flowsched schedule --preset opensora-2.0-256px --steps 30 --csv > schedule.csv
  flowsched schedule --flow-shift 5 --steps 20 --json   # a static shift alpha=5 instead of the rule
  flowsched schedule --flow-shift auto --steps 10        # the W2-optimal shift for a Gaussian-field model

t = 1 is pure noise, t = 0 is data; the 'timestep' column is what the model is fed: t * 1000 for most models,
the rule's own values for CogView4 (unshifted integers), Wan and Sana (truncated integers) and Mochi (1 - t).
"""


def add_schedule_options(p) -> None:
    """``--steps``, ``--shift/--no-shift``, ``--flow-shift`` (shared with ``plan``)."""
    g = p.add_argument_group("schedule")
    g.add_argument("--steps", type=positive_int, help="sampler steps N (default: the preset's)")
    g.add_argument(
        "--shift",
        action=argparse_bool(),
        default=True,
        help="apply the model's time shift (--no-shift: plain linspace(1, 0, N+1))",
    )
    g.add_argument(
        "--flow-shift",
        type=shift_value,
        metavar="ALPHA|auto",
        help="use this shift alpha instead of the preset's rule (Open-Sora's flow_shift; not Flux's mu); "
        "'auto': the alpha with the least W2 error on a Gaussian field with a 1/f^2 spectrum on the latent grid "
        "(flowsched.quality.auto_shift; `flowsched optimize` for other data models)",
    )


def shift_value(text: str):
    """``auto`` or a positive number."""
    return "auto" if text.strip().lower() == "auto" else positive_float(text)


def argparse_bool():
    import argparse

    return argparse.BooleanOptionalAction


def build_schedule(args, preset, geometry):
    if args.flow_shift == "auto":
        if not args.shift:
            raise ValueError("--flow-shift auto chooses a shift; it cannot be combined with --no-shift")
        from ..quality.autoshift import auto_shift_schedule

        return auto_shift_schedule(geometry, args.steps or preset.num_steps)
    return preset.schedule(geometry, args.steps, shift=args.shift, shift_alpha=args.flow_shift)


def register(sub) -> None:
    p = sub.add_parser(
        "schedule",
        help="the N+1 values of t a sampler visits, as a table, JSON, CSV or terminal plot",
        description="Print the schedule a model uses at your resolution, length and step count: each "
        "step's t (the diffusers 'sigma'), the model timestep and the step size.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    add_geometry_options(p)
    add_schedule_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json", action="store_true", help="print the schedule as JSON (loadable with Schedule.from_json)"
    )
    out.add_argument("--csv", action="store_true", help="print step,t,timestep,dt as CSV")
    p.add_argument("--no-plot", action="store_true", help="table only, no terminal plot")
    p.set_defaults(run=run)


def table(schedule) -> str:
    """Fixed-width table of step, t, model timestep and step size."""
    lines = [f"{'step':>4}  {'t':>10}  {'timestep':>10}  {'dt':>10}"]
    t, fed = schedule.t, schedule.model_timesteps()
    for i, ti in enumerate(t):
        dt = f"{t[i + 1] - ti:10.6f}" if i + 1 < t.size else " " * 10
        ts = f"{fed[i]:10.4f}" if i + 1 < t.size else f"{'(end)':>10}"
        lines.append(f"{i:>4}  {ti:10.6f}  {ts}  {dt}")
    return "\n".join(lines)


def text_plot(schedule) -> str:
    """The terminal plot with one column per step when that fits (no gaps between markers, like the seed's)."""
    from ..plot import terminal_plot

    n = schedule.num_steps
    width = n * max(1, 40 // n) + 1 if n <= 59 else 60
    return terminal_plot(schedule, width=max(width, 10))


def summary(schedule) -> str:
    p = schedule.params
    alpha = p.get("alpha")
    head = f"schedule       {schedule.name}, {schedule.num_steps} steps"
    if alpha is not None:
        head += f", shift alpha = {alpha:.6g}"
    if "auto_metric" in p:
        head += f" (auto: least {p['auto_metric']} error on {p['auto_model']})"
    return head


def run(args) -> int:
    preset, geometry = resolve_geometry(args)
    schedule = build_schedule(args, preset, geometry)
    for w in geometry.warnings:
        warn(w)
    if args.json:
        print(schedule.to_json(indent=2))
        return 0
    if args.csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "t", "timestep", "dt"])
        t, fed = schedule.t, schedule.model_timesteps()
        for i, ti in enumerate(t):
            last = i + 1 == t.size
            w.writerow(
                [i, repr(float(ti)), "" if last else repr(float(fed[i])), "" if last else repr(float(t[i + 1] - ti))]
            )
        print(buf.getvalue(), end="")
        return 0
    print(f"preset         {preset.name} ({preset.model})")
    g = geometry
    print(f"geometry       {g.height}x{g.width}, {g.num_frames} frame(s) -> T'={g.latent_frames}, ", end="")
    print(f"image_seq_len={g.image_seq_len}")
    print(summary(schedule))
    print()
    print(table(schedule))
    if not args.no_plot:
        print()
        print(text_plot(schedule))
    return 0
