"""``flowsched frames``: a per-frame schedule (diffusion forcing, autoregressive video) as a heatmap, JSON or CSV."""

from __future__ import annotations

import csv
import io
import shlex

from ._common import add_command, need, positive_int
from ._output import Output, check_outputs, image_suffixes

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched frames skyreels-v2-df-540p-async                 # SkyReels-V2 DF, ar_step 5, as a text heatmap
  flowsched frames diffusion_forcing:steps=30,frames=25,ar_step=5,causal_block_size=5 --json > df.json
  flowsched frames pyramid:steps=20,frames=16,u=2 --csv > pyramid.csv
  flowsched frames 'blockwise:steps=1000;750;500;250,blocks=7' --csv  # a list: quote the spec (see below)
  flowsched frames skyreels-v2-df-540p skyreels-v2-df-540p-async --plot out/frames.png
  flowsched frames                                            # list the frame presets

Each SCHEDULE is a frame preset, a spec FAMILY:key=value,... (families: diffusion_forcing, pyramid,
full_sequence, autoregressive, staircase, blockwise) or a JSON file written by --json. Lists are ';'-separated
and a shell ends a command at ';', so quote a spec that holds a list: 'blockwise:steps=1000;750;500;250';
flowsched prints specs quoted that way. max_cells=N in a spec raises the size limit (rows x frames). The frame
presets, with their sources and specs, are listed by `flowsched frames` and in the "frame schedules" table of
`flowsched presets` (--json: entries with "kind": "frame"). t = 1 is noise, t = 0 is data; row r is every
latent frame's t before step r (one model call per step). The model is fed t * 1000, except where the rule feeds
other timesteps (CausVid and Self-Forcing without warp: their integer steps); the timestep column of --csv is
what the model is fed.
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "frames",
        help="a per-frame schedule (diffusion forcing, autoregressive video): heatmap, JSON, CSV or PNG",
        description="Print a frame schedule: the t of every latent frame before every step, as a terminal "
        "heatmap (step x frame), JSON or CSV, or draw it with its update mask (--plot). Without SCHEDULE: "
        "list the frame presets (also listed by `flowsched presets`).",
        epilog=EPILOG,
    )
    p.add_argument("schedules", nargs="*", metavar="SCHEDULE", help="frame preset, FAMILY:key=value spec or JSON file")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the schedule as JSON (FrameSchedule.from_json)")
    out.add_argument("--csv", action="store_true",
                     help="print step,frame,t,timestep,update as CSV, one line per cell (timestep: what the model is "
                     "fed)")
    p.add_argument("--plot", metavar="PATH", help="also draw the heatmaps with their update masks (.png, .svg, .pdf)")
    p.add_argument("--title", help="figure title for --plot")
    p.add_argument("--max-rows", type=positive_int, default=60, help="rows of the terminal heatmap before it samples")
    p.set_defaults(run=run)


def _load(specs: list[str]):
    import warnings

    from ..spec import frame_schedule_from_spec

    loaded = []
    notes = []
    for spec in specs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fs = frame_schedule_from_spec(spec)
        notes += [f"{spec}: {w.message}" for w in caught]
        loaded.append((spec, fs))
    return loaded, notes


def _presets() -> str:
    from ..presets import FRAME_PRESETS
    from ..spec import frame_schedule_from_spec

    lines = [f"{'name':<28}{'family':<19}{'R':>5}{'F':>5}  source"]
    for p in FRAME_PRESETS.values():
        fs = frame_schedule_from_spec(p.name)
        lines.append(f"{p.name:<28}{p.family:<19}{fs.num_steps:>5}{fs.num_frames:>5}  {p.source}")
    lines.append("")
    lines.append("R: steps (model calls); F: latent frames. `flowsched frames NAME` prints one; `flowsched presets` "
                 "lists them with their specs.")
    return "\n".join(lines)


def _summary(spec: str, fs) -> str:
    per = fs.steps_per_frame()
    gen = per[fs.prefix_frames:]
    b = fs.base
    own = fs.spec()
    lines = [
        f"frame schedule {shlex.quote(spec)}",
        f"spec           {shlex.quote(own) if own is not None else fs.describe()}",
        f"base           {b.name}, N = {b.num_steps} (t {b.t[0]:.6g} -> {b.t[-1]:g})",
        f"steps          R = {fs.num_steps} model calls, F = {fs.num_frames} latent frames, "
        f"{gen.min()}{'' if gen.min() == gen.max() else f'-{gen.max()}'} steps per generated frame",
    ]
    if b.timesteps is not None:
        fed = ", ".join(f"{v:g}" for v in b.model_timesteps())
        lines.append(f"fed            the model is fed {fed} (the rule's timesteps, not 1000 t)")
    if fs.prefix_frames:
        how = "fed noised with fresh noise each step" if fs.prefix_noise and fs.prefix_level > 0 else "fed clean"
        lines.append(f"prefix         frames 0-{fs.prefix_frames - 1} given, held at t = {fs.prefix_level:g} ({how})")
    full = (fs.window[:, 0] == 0) & (fs.window[:, 1] == fs.num_frames)
    if not full.all():
        lines.append(f"window         the model sees frames [{fs.window[0, 0]}, {fs.window[0, 1]}) at step 0, "
                     f"[{fs.window[-1, 0]}, {fs.window[-1, 1]}) at the last step")
    return "\n".join(lines)


def _csv(fs) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "frame", "t", "timestep", "update"])
    last = fs.num_steps
    fed = fs.model_timesteps()
    for r in range(last + 1):
        for f in range(fs.num_frames):
            t = float(fs.t[r, f])
            if r < last:
                w.writerow([r, f, repr(t), repr(float(fed[r, f])), int(fs.update[r, f])])
            else:
                w.writerow([r, f, repr(t), "", ""])
    return buf.getvalue()


def run(args) -> int:
    from ._common import warn

    if not args.schedules:
        if args.json or args.csv or args.plot:
            raise ValueError("--json, --csv and --plot need a SCHEDULE (a frame preset or a spec)")
        print(_presets())
        return 0
    if (args.json or args.csv) and len(args.schedules) > 1:
        raise ValueError(f"--json and --csv print one schedule; got {len(args.schedules)} SCHEDULEs")
    if args.plot and len(set(args.schedules)) != len(args.schedules):
        raise ValueError("the same SCHEDULE is given twice; --plot needs distinct ones")
    check_outputs(Output(args.plot, "--plot", image_suffixes()))
    if args.plot:
        need("matplotlib", "flowsched frames --plot")
    loaded, notes = _load(args.schedules)
    for note in notes:
        warn(note)
    if args.json:
        print(loaded[0][1].to_json(indent=2))
    elif args.csv:
        print(_csv(loaded[0][1]), end="")
    else:
        from ..plot import terminal_heatmap

        for i, (spec, fs) in enumerate(loaded):
            if i:
                print()
            print(_summary(spec, fs))
            print()
            print(terminal_heatmap(fs, max_rows=args.max_rows))
    if args.plot:
        from ..plot import plot_frame_schedules

        path = plot_frame_schedules(dict(loaded), args.plot, title=args.title)
        if not (args.json or args.csv):
            print(f"\nwrote {path} ({len(loaded)} frame schedule(s))")
    return 0
