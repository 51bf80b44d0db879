"""``flowsched optimize``: the schedule with the least error on an analytic data model, written as JSON."""

from __future__ import annotations

import json
import time

from .._validate import nonnegative_int
from ._common import CliError, add_command, arg_type, need, positive_int, step_count
from ._geometry import add_geometry_options
from ._output import STDOUT, Output, check_outputs, image_suffixes, write_text
from ._quality import add_model_options, check_model_options, setup, show_progress

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched optimize --steps 10 --out out/opt10.json       # Open-Sora 2.0 768px 129f field, W2 error
  flowsched optimize --model mixture --steps 8 --samples 512 --out out/mixture8.json
  flowsched optimize --preset opensora-2.0-256px --steps 20 --start linear --start shifted:alpha=3

The result is a flowsched schedule JSON (name "optimized", with the data model, metric, start and error in its
params). Use it wherever a schedule is accepted: `flowsched evaluate --schedule out/opt10.json --steps 10`,
Schedule.from_json in Python, the diffusers adapter. For your own velocity model use the library:
flowsched.quality.teacher_search(velocity, noise, N) (the teacher-trajectory search of OSS).

The optimiser is L-BFGS-B over the softmax of N step-size logits, started from the best pure shift (and any
--start), so the result is never worse than the starts. On the field the gradient is exact; on the mixtures it
is central differences of the pathwise RMSE over --samples fixed noises. A mixture's error has local minima, so
there a global phase first scores about 400 schedules and adds the 3 best distinct ones (and linear) as starts
(--restarts): the same optimum from any start, a few seconds at N = 10 with 512 samples.
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "optimize",
        help="the N-step schedule with the least error on a data model, saved as JSON",
        description="Find the N + 1 values of t that minimise a data model's error for an Euler sampler, compare "
        "it with the linear schedule, the preset's rule and the best pure shift, and write it as a schedule "
        "JSON.",
        epilog=EPILOG,
    )
    add_geometry_options(p)
    p.add_argument(
        "--steps", type=step_count, default=10, metavar="N", help="sampler steps N of the schedule to find"
    )
    add_model_options(p, euler_only=True)
    g = p.add_argument_group("optimiser")
    g.add_argument(
        "--start",
        action="append",
        metavar="SPEC",
        help="starting schedule (repeatable): best-shift (default), linear, or a spec / JSON file as in "
        "`flowsched compare`; the best result wins",
    )
    g.add_argument("--maxiter", type=positive_int, default=500, help="L-BFGS-B iterations per start")
    g.add_argument(
        "--restarts",
        type=restarts_count,
        default="auto",
        metavar="K",
        help="extra starts from a global search over ~400 schedules; auto: 0 on the field (one basin), 3 on the "
        "mixtures (their error has local minima); 0 = only --start",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        metavar="FILE.json",
        help="write the optimised schedule here (`-`: print it to standard output; the report then goes to stderr)",
    )
    o.add_argument("--json", action="store_true", help="print the comparison and the schedule as JSON")
    o.add_argument("--plot", metavar="FILE", help="write a plot of the compared schedules (.png, .svg or .pdf)")
    p.set_defaults(run=run)


_restarts = arg_type(lambda text: int(text, 10), nonnegative_int, "'auto' or an integer >= 0")


def restarts_count(text: str) -> int | None:
    """``--restarts``: ``auto`` (None: the optimiser's default for the model) or an integer >= 0."""
    return None if text == "auto" else _restarts(text)


def _starts(args, num_steps: int) -> list:
    from ..spec import from_spec

    out = []
    for spec in args.start or ["best-shift"]:
        if spec in ("best-shift", "linear"):
            out.append(spec)
        else:
            out.append(from_spec(spec, num_steps=num_steps))
    return out


def check(args) -> None:
    """Everything that can be refused, before any work."""
    check_outputs(
        Output(args.out, "--out", (".json",), text=True, bare=True), Output(args.plot, "--plot", image_suffixes())
    )
    if args.out == STDOUT and args.json:
        raise CliError("--out - and --json would both print to standard output; give --out a file name")
    check_model_options(args)
    if args.model != "field":
        metric = args.metric or "rmse"
        if metric != "rmse":
            raise CliError(
                f"--metric {metric} cannot be optimised on a mixture (sliced_w2 is noisy, modes is a count); use rmse"
            )
    need("scipy", "flowsched optimize (L-BFGS-B)")
    if args.plot:
        need("matplotlib", "--plot")


def run(args) -> int:
    import contextlib
    import sys

    from .. import schedules
    from ..quality import auto_shift_schedule, optimize_schedule
    from ..quality.field import GaussianField

    check(args)
    preset, geometry, model, metric = setup(args)
    is_field = isinstance(model, GaussianField)
    n = args.steps
    starts = _starts(args, n)  # a bad --start fails here, before the search
    kw = {} if is_field else {"num_samples": args.samples, "seed": args.seed}
    started = time.perf_counter()
    result = optimize_schedule(
        n, model, metric=metric, start=starts, num_samples=args.samples, seed=args.seed,
        maxiter=args.maxiter, restarts=args.restarts, progress=show_progress(),
    )
    seconds = time.perf_counter() - started
    rows = {
        "linear": schedules.linear(n),
        f"{preset.name} rule": preset.schedule(geometry, n),
        "best shift": auto_shift_schedule(model, n, metric=metric, num_samples=args.samples, seed=args.seed),
        "optimized": result,
    }
    errors = {label: model.error(s, metric=metric, **kw) for label, s in rows.items()}
    figure = None
    if args.plot:  # drawn before anything is written: a failed draw leaves neither file
        from ..plot import schedule_figure

        figure = schedule_figure(rows)
    if args.out:
        write_text(args.out, result.to_json(indent=2) + "\n")
    if figure is not None:
        from ..plot import save_figure

        save_figure(figure, args.plot)
    if args.json:
        doc = {
            "model": repr(model),
            "metric": metric,
            "num_steps": n,
            "seconds": seconds,
            "errors": errors,
            "alpha": {k: s.params.get("alpha") for k, s in rows.items()},
            "schedule": result.to_dict(),
            "files": [f for f in (args.out, args.plot) if f],
        }
        print(json.dumps(doc, indent=2))
        return 0
    # With --out - the schedule JSON owns standard output; the report goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.out == STDOUT else contextlib.nullcontext():
        _report(args, model, metric, n, seconds, result, rows, errors, is_field)
    return 0


def _report(args, model, metric, n, seconds, result, rows, errors, is_field) -> None:
    where = f"latent grid {model.shape}" if is_field else f"{args.samples} noises, seed {args.seed}"
    print(f"model      {model!r}, {where}")
    print(f"metric     {metric} (lower is better), Euler, N = {n}")
    print(f"optimized  in {seconds:.2f} s from {result.params['start']}")
    print()
    width = max(len(k) for k in rows)
    best = errors["optimized"]
    print(f"{'schedule':<{width}}  {'alpha':>8}  {'error':>10}  {'/ optimized':>11}")
    for label, s in rows.items():
        alpha = s.params.get("alpha")
        a = f"{alpha:8.4g}" if isinstance(alpha, float) else f"{'-':>8}"
        print(f"{label:<{width}}  {a}  {errors[label]:10.4g}  {errors[label] / best:11.3f}")
    print()
    print("t  " + ", ".join(f"{v:.4f}" for v in result.t))
    for path, what in ((args.out, "schedule"), (args.plot, "plot")):
        if path and path != STDOUT:
            print(f"wrote {what:<8} {path}")
