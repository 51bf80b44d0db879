"""``flowsched schedule``: the timestep schedule for a preset at your size and step count (no torch)."""

from __future__ import annotations

import csv
import io
import os

from ._common import CliError, add_command, warn
from ._geometry import add_geometry_options, resolve_geometry
from ._output import STDOUT, Output, check_outputs, write_text
from ._schedules import (
    add_schedule_options,
    add_strength_options,
    build_partial,
    check_schedule_options,
    check_strength_options,
    schedule_summary,
    strength_summary,
    text_plot,
)

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched schedule                                    # Open-Sora 2.0 768px, 129 frames, 50 steps
  flowsched schedule --preset opensora-2.0-256px --steps 30 --csv > schedule.csv
  flowsched schedule --flow-shift 5 --steps 20 --out out/shift5.json   # a static shift alpha=5, saved as JSON
  flowsched schedule --flow-shift auto --steps 10        # the W2-optimal shift for a Gaussian-field model
  flowsched schedule --preset flux.1-dev --steps 28 --strength 0.6 --convention comfyui   # img2img, denoise 0.6

t = 1 is pure noise, t = 0 is data; the 'timestep' column is what the model is fed: t * 1000 for most models,
the rule's own values for CogView4 (unshifted integers), Wan and Sana (truncated integers) and Mochi (1 - t).
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "schedule",
        help="the N+1 values of t a sampler visits, as a table, JSON, CSV or terminal plot",
        description="Print the schedule a model uses at your resolution, length and step count: each "
        "step's t (the diffusers 'sigma'), the model timestep and the step size.",
        epilog=EPILOG,
    )
    add_geometry_options(p)
    add_schedule_options(p)
    add_strength_options(p)
    o = p.add_argument_group("output")
    fmt = o.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json", action="store_true", help="print the schedule as JSON (loadable with Schedule.from_json)"
    )
    fmt.add_argument("--csv", action="store_true", help="print step,t,timestep,dt as CSV")
    o.add_argument(
        "--out",
        metavar="FILE",
        help="write the schedule to FILE instead of printing it: FILE.json (loadable with Schedule.from_json) or "
        "FILE.csv, by the suffix (`-`: standard output, CSV with --csv, else JSON)",
    )
    o.add_argument("--no-plot", action="store_true", help="table only, no terminal plot")
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


def to_csv(schedule) -> str:
    """``step,t,timestep,dt`` rows; floats as ``repr`` (they round-trip exactly)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "t", "timestep", "dt"])
    t, fed = schedule.t, schedule.model_timesteps()
    for i, ti in enumerate(t):
        last = i + 1 == t.size
        w.writerow(
            [i, repr(float(ti)), "" if last else repr(float(fed[i])), "" if last else repr(float(t[i + 1] - ti))]
        )
    return buf.getvalue()


#: What ``--out`` writes, by the file name's suffix.
FORMATS = {".json": "json", ".csv": "csv"}
SCHEDULE_SUFFIXES = tuple(FORMATS)


def file_format(args) -> str:
    """``csv`` or ``json``: what ``--out`` writes. The file name's suffix picks it; ``-`` (standard output) and a
    name without a suffix take ``--csv`` (else JSON)."""
    asked = "csv" if args.csv else "json"
    if args.out in (None, STDOUT):
        return asked
    return FORMATS.get(os.path.splitext(args.out)[1].lower(), asked)


def check_format(args) -> None:
    """``--csv``/``--json`` must agree with the format ``--out``'s suffix picks (a .json file holding CSV is the
    mistake this refuses)."""
    fmt = file_format(args)
    for flag, name in (("--csv", "csv"), ("--json", "json")):
        if getattr(args, name) and fmt != name:
            raise CliError(
                f"{flag} asks for {name.upper()} but --out {args.out!r} names a {fmt.upper()} file; drop {flag} or "
                f"name the file .{name}"
            )


def run(args) -> int:
    check_outputs(Output(args.out, "--out", SCHEDULE_SUFFIXES, text=True, bare=True))
    check_format(args)
    check_schedule_options(args)
    check_strength_options(args)
    preset, geometry = resolve_geometry(args)
    schedule = build_partial(args, preset, geometry)
    for w in geometry.warnings:
        warn(w)
    from ..diagnostics import strength_warnings

    for w in strength_warnings(schedule):  # only the strength's warning here (`compare` shows the others)
        warn(w)
    if args.out is not None:
        text = to_csv(schedule) if file_format(args) == "csv" else schedule.to_json(indent=2) + "\n"
        write_text(args.out, text)
        if args.out != STDOUT:
            print(f"wrote {args.out} ({file_format(args)}, {schedule.num_steps} steps)")
        return 0
    if args.json:
        print(schedule.to_json(indent=2))
        return 0
    if args.csv:
        print(to_csv(schedule), end="")
        return 0
    print(f"preset         {preset.name} ({preset.model})")
    g = geometry
    print(f"geometry       {g.height}x{g.width}, {g.num_frames} frame(s) -> T'={g.latent_frames}, "
          f"image_seq_len={g.image_seq_len}")
    print(schedule_summary(schedule))
    if args.strength is not None:
        print(strength_summary(schedule))
    print()
    print(table(schedule))
    if not args.no_plot:
        print()
        print(text_plot(schedule))
    return 0
