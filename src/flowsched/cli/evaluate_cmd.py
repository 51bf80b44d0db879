"""``flowsched evaluate``: the error of schedules at several step counts on an analytic data model."""

from __future__ import annotations

import json

from ._common import CliError, add_command, need, step_counts
from ._geometry import add_geometry_options
from ._output import Output, check_outputs, image_suffixes
from ._quality import add_model_options, check_model_options, sampler_options, sampler_text, setup, show_progress

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched evaluate                                  # linear vs Open-Sora's rule, 768px 129f field, 10-50 steps
  flowsched evaluate --schedule linear --schedule opensora-2.0-768px --schedule auto \\
      --schedule shifted:alpha=3 --steps 10,20,30,50 --plot out/error.png
  flowsched evaluate --model mixture --metric sliced_w2 --samples 2048 --steps 4,8,16,32
  flowsched evaluate --sampler euler_ancestral --eta 0.5 --s-noise 1 --schedule shifted:alpha=3
  flowsched evaluate --model mixture --sampler stochastic_euler --samples 2048    # scored by sliced_w2

data models (--model):
  field      Gaussian data on the preset's latent grid [T', H', W'] with a 1/f^gamma spectrum (--gamma, --k0,
             --w-t) or one fitted to your latents (--latents FILE.safetensors). Euler's error is exact (no
             sampling noise). Metrics: w2 (relative squared W2, variance-weighted: structure; default) and kl
             (mean per-mode KL: texture).
  mixture    the 16-D, 8-mode Gaussian mixture of docs/quality-models.md (modes on a sphere of radius 3, std 0.15);
  mixture2d  8 modes on a circle of radius 2, std 0.2. Metrics: rmse (pathwise, against an RK4 reference from
             the same noise; default), sliced_w2 (against true samples; its noise floor is printed), modes
             (fraction of samples landing in a different mode than the reference).

samplers (--sampler): euler (default); heun (mixtures only: the field's closed form has no Heun);
euler_ancestral (ComfyUI's RF ancestral step, --eta 0-1 re-noised per step, --s-noise the noise scale) and
stochastic_euler (diffusers' stochastic_sampling) on both models: exactly on the field (w2, kl), by Monte Carlo on
a mixture, where only sliced_w2 measures them (rmse and modes follow one noise's ODE path, which a stochastic
sampler leaves by design); there the per-step noise is portable noise of --seed. 'auto' searches Euler's best
shift, so it is scored with --sampler euler only.

schedules (--schedule, repeatable): a family or preset spec as in `flowsched compare` (linear,
shifted:alpha=3, flux, karras:t_min=0.002, wan2.1-t2v-480p, a JSON file ...) built at each step count; 'rule'
(or the --preset name) is the preset's own rule at the chosen size; 'auto' is the shift with the least error on
the chosen model and metric (needs scipy). Families that need image_seq_len, num_frames or seq_len get them from
the geometry. A schedule with a fixed step count (a JSON file or list, a spec with steps=..) is scored once, at
its own N: its row shows '-' under the other step counts, and its N is added to the columns.
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "evaluate",
        help="error of schedules against steps on an analytic data model (table + plot)",
        description="Measure what a schedule costs in quality: run each schedule at each step count on a data "
        "model whose flow is known exactly and print the error (lower is better).",
        epilog=EPILOG,
    )
    add_geometry_options(p)
    p.add_argument("--schedule", action="append", metavar="SPEC", help="schedule to score (repeatable; default: "
                   "linear and the preset's rule)")
    p.add_argument(
        "--step-counts",
        "--steps",
        dest="steps",
        type=step_counts,
        default="10,20,30,50",
        metavar="N,N,...",
        help="the step counts N to score every schedule at, comma-separated (--steps is the same option)",
    )
    add_model_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--plot", metavar="FILE", help="write an error-against-steps plot (.png, .svg or .pdf)")
    o.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)


def _row(spec: str, args, preset, geometry, model, metric, first_n: int):
    """One --schedule value: ``(maker, None)`` with a function num_steps -> Schedule, or ``(None, schedule)`` for a
    schedule whose step count is fixed (it ignores the asked N). A bad spec fails here, before any scoring."""
    from ..spec import from_spec

    if spec in ("rule", preset.name):
        return (lambda n: preset.schedule(geometry, n)), None
    if spec == "auto":
        from ..quality import auto_shift_schedule

        chosen_by = "w2" if metric == "kl" else metric  # the field's KL is measured, never advice: auto is W2's shift

        def auto(n):
            return auto_shift_schedule(model, n, metric=chosen_by, num_samples=args.samples, seed=args.seed)

        return auto, None
    # Families that take image_seq_len, num_frames or seq_len get them from the geometry unless the spec sets them.
    sizes = {"image_seq_len": geometry.image_seq_len, "num_frames": geometry.latent_frames, "seq_len": geometry.seq_len}

    def build(n: int):
        return from_spec(spec, num_steps=n, defaults=sizes)

    built = build(first_n)  # at a step count that is used anyway
    if built.num_steps != first_n or build(first_n + 1).num_steps != first_n + 1:
        return None, built  # it keeps its own N whatever is asked
    return build, None


def _columns(steps: list[int], fixed: list[int]) -> list[int]:
    """The asked step counts, plus the own N of each fixed-length schedule (kept sorted when the asked were)."""
    extra = [n for n in dict.fromkeys(fixed) if n not in steps]
    if not extra:
        return list(steps)
    return sorted(steps + extra) if steps == sorted(steps) else steps + sorted(extra)


def _cell(value) -> str:
    return f"{'-':>10}" if value is None else f"{value:10.4g}"


def check(args) -> list[str]:
    """Everything that can be refused, before any work (outputs, option contradictions, missing packages, repeated
    schedules); returns the --schedule values."""
    check_outputs(Output(args.plot, "--plot", image_suffixes()))
    check_model_options(args)
    specs = list(args.schedule or ["linear", "rule"])
    repeated = sorted({s for s in specs if specs.count(s) > 1})
    if repeated:
        raise CliError(f"--schedule {repeated[0]} is given more than once; give each schedule once")
    if args.plot:
        need("matplotlib", "--plot")
    if "auto" in specs:
        if args.sampler != "euler":
            raise CliError(
                f"--schedule auto finds Euler's best shift; it is not the best for --sampler {args.sampler}: give "
                "the shifts to compare (--schedule shifted:alpha=A) or use --sampler euler"
            )
        need("scipy", "--schedule auto (the shift search)")
    return specs


def run(args) -> int:
    from ..quality import GaussianField, plot_error_vs_steps

    specs = check(args)
    preset, geometry, model, metric = setup(args)
    if args.schedule is None:
        specs = ["linear", preset.name]
    results, columns, fixed = _score(args, specs, preset, geometry, model, metric)
    floor = model.noise_floor(args.samples, args.seed) if metric == "sliced_w2" else None
    if args.json:
        doc = {"model": repr(model), "metric": metric, "sampler": sampler_options(args), "steps": columns,
               "errors": results}
        print(json.dumps(doc if floor is None else {**doc, "noise_floor": floor}, indent=2))
    else:
        where = f"latent grid {model.shape}" if isinstance(model, GaussianField) else f"{args.samples} noises"
        _print_table(args, model, where, metric, floor, results, columns, fixed)
    if args.plot:
        title = f"{metric} error on {args.model}" + (f", {preset.name} grid" if args.model == "field" else "")
        plot_error_vs_steps(results, columns, args.plot, ylabel=metric, title=title, floor=floor)
        if not args.json:
            print(f"plot    {args.plot}")
    return 0


def _score(args, specs, preset, geometry, model, metric):
    """``(results, columns, fixed)``: each spec's errors at each column's step count (None where a fixed-length
    schedule was not scored), the step counts, and the fixed-length schedules by spec."""
    import warnings

    from ..quality import GaussianField, error_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = {spec: _row(spec, args, preset, geometry, model, metric, args.steps[0]) for spec in specs}
    fixed = {spec: s for spec, (_, s) in rows.items() if s is not None}
    columns = _columns(args.steps, [s.num_steps for s in fixed.values()])
    opts = sampler_options(args)
    kw = opts if isinstance(model, GaussianField) else {"num_samples": args.samples, "seed": args.seed, **opts}

    def score(s):
        return model.error(s, metric=metric, **kw)

    makers = {spec: maker for spec, (maker, _) in rows.items() if maker is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = error_table(makers, columns, score, progress=show_progress()) if makers else {}
        for spec, s in fixed.items():
            value = score(s)
            scored[spec] = [value if n == s.num_steps else None for n in columns]
    return {spec: scored[spec] for spec in specs}, columns, fixed


def _print_table(args, model, where, metric, floor, results, columns, fixed) -> None:
    print(f"model   {model!r}, {where}")
    print(f"metric  {metric} (lower is better){'' if metric != 'sliced_w2' else f'; noise floor {floor:.4g}'}")
    print(f"sampler {sampler_text(args)}")
    width = max(len("schedule"), *(len(s) for s in results))
    print(f"{'schedule':<{width}}  " + "  ".join(f"{f'N={n}':>10}" for n in columns))
    for label, values in results.items():
        print(f"{label:<{width}}  " + "  ".join(_cell(v) for v in values))
    if fixed:
        print(f"note    {', '.join(fixed)}: fixed step count, scored at its own N only ('-' elsewhere)")
