"""``flowsched evaluate``: the error of schedules at several step counts on an analytic data model."""

from __future__ import annotations

import json

from ._common import Formatter, add_geometry_options, positive_float, positive_int, warn

EPILOG = """\
examples:
  flowsched evaluate                                  # linear vs Open-Sora's rule, 768px 129f field, 10-50 steps
  flowsched evaluate --schedule linear --schedule opensora-2.0-768px --schedule auto \\
      --schedule shifted:alpha=3 --steps 10,20,30,50 --plot out/error.png
  flowsched evaluate --model mixture --metric sliced_w2 --samples 2048 --steps 4,8,16,32

data models (--model):
  field      Gaussian data on the preset's latent grid [T', H', W'] with a 1/f^gamma spectrum (--gamma, --k0,
             --w-t) or one fitted to your latents (--latents FILE.safetensors). Euler's error is exact (no
             sampling noise). Metrics: w2 (relative squared W2, variance-weighted: structure; default) and kl
             (mean per-mode KL: texture).
  mixture    the 16-D, 8-mode Gaussian mixture of the reference notes (modes on a sphere of radius 3, std 0.15);
  mixture2d  8 modes on a circle of radius 2, std 0.2. Metrics: rmse (pathwise, against an RK4 reference from
             the same noise; default), sliced_w2 (against true samples; its noise floor is printed), modes
             (fraction of samples landing in a different mode than the reference).

schedules (--schedule, repeatable): a family or preset spec as in `flowsched compare` (linear,
shifted:alpha=3, flux, karras:t_min=0.002, wan2.1-t2v-480p, a JSON file ...) built at each --steps; 'rule' (or
the --preset name) is the preset's own rule at the chosen size; 'auto' is the shift with the least error on the
chosen model and metric. Families that need image_seq_len, num_frames or seq_len get them from the geometry.
"""

MODELS = ("field", "mixture", "mixture2d")


def _steps(text: str) -> list[int]:
    import argparse

    try:
        values = [positive_int(x) for x in text.split(",") if x.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected step counts like 10,20,30,50, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one step count, got {text!r}")
    return values


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="error of schedules against steps on an analytic data model (table + plot)",
        description="Measure what a schedule costs in quality: run each schedule at each step count on a data "
        "model whose flow is known exactly and print the error (lower is better).",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    add_geometry_options(p)
    p.add_argument("--schedule", action="append", metavar="SPEC", help="schedule to score (repeatable; default: "
                   "linear and the preset's rule)")
    p.add_argument("--steps", type=_steps, default="10,20,30,50", help="comma-separated step counts")
    add_model_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--plot", metavar="FILE", help="write an error-against-steps plot (.png, .svg or .pdf)")
    o.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)


def add_model_options(p) -> None:
    """``--model`` and its settings (shared with ``optimize``)."""
    m = p.add_argument_group("data model")
    m.add_argument("--model", choices=MODELS, default="field", help="analytic data model")
    m.add_argument("--metric", help="field: w2 | kl; mixtures: rmse | sliced_w2 | modes (default: w2 / rmse)")
    m.add_argument("--gamma", type=float, default=2.0, help="field: spectral slope, variance ~ |k|^-gamma")
    m.add_argument("--k0", type=positive_float, default=1.0, help="field: low-frequency roll-off")
    m.add_argument("--w-t", type=float, default=1.0,
                   help="field: weight of temporal frequency (large = frames nearly identical, 0 = independent)")
    m.add_argument("--latents", metavar="FILE", help="field: fit the spectrum to latents in a .safetensors file "
                   "([..., T', H', W']; the field then has their grid)")
    m.add_argument("--latents-key", help="tensor name in --latents when it holds several")
    m.add_argument("--samples", type=positive_int, default=1024, help="mixtures: number of noises")
    m.add_argument("--seed", type=int, default=0, help="mixtures: seed of noises, true samples and projections")
    m.add_argument("--sampler", choices=("euler", "heun"), default="euler", help="mixtures: sampler (field: euler)")


def setup(args):
    """``(preset, geometry, model, metric)`` from the geometry and data-model options (shared with ``optimize``);
    frame-count warnings are printed here."""
    from ..quality.evaluate import default_metric
    from ._common import resolve_geometry

    preset, geometry = resolve_geometry(args)
    for w in geometry.warnings:
        warn(w)
    model = _model(args, geometry)
    return preset, geometry, model, args.metric or default_metric(model)


def _model(args, geometry):
    from ..quality import GaussianField, GaussianMixture

    if args.model == "field":
        if args.sampler != "euler":
            raise ValueError("--sampler heun is for the mixtures; the field's closed form is Euler's")
        if args.latents:
            return GaussianField.from_latents(args.latents, key=args.latents_key)
        return GaussianField(geometry, gamma=args.gamma, k0=args.k0, w_t=args.w_t)
    return GaussianMixture.standard() if args.model == "mixture" else GaussianMixture.ring2d()


def _maker(spec: str, args, preset, geometry, model, metric):
    """A function num_steps -> Schedule for one --schedule value."""
    from ..spec import FAMILIES, from_spec

    if spec in ("rule", preset.name):
        return lambda n: preset.schedule(geometry, n)
    if spec == "auto":
        from ..quality import auto_shift_schedule

        return lambda n: auto_shift_schedule(geometry, n, model, metric, num_samples=args.samples, seed=args.seed)
    head = spec.partition(":")[0].strip()
    family = FAMILIES.get(head)
    if family is not None:
        import inspect

        params = inspect.signature(family).parameters
        given = spec.partition(":")[2]
        extra = {
            "image_seq_len": geometry.image_seq_len,
            "num_frames": geometry.latent_frames,
            "seq_len": geometry.seq_len,
        }
        fill = [f"{k}={v}" for k, v in extra.items() if k in params and f"{k}=" not in given]
        if fill:
            spec = f"{head}:{','.join(filter(None, [given.strip(), *fill]))}"
    from_spec(spec, num_steps=1)  # fail fast on a bad spec, before any work
    return lambda n: from_spec(spec, num_steps=n)


def run(args) -> int:
    import warnings

    from ..quality import GaussianField, error_table, plot_error_vs_steps
    from ._common import check_writable

    check_writable(args.plot, "--plot")
    preset, geometry, model, metric = setup(args)
    specs = args.schedule or ["linear", preset.name]
    makers = {spec: _maker(spec, args, preset, geometry, model, metric) for spec in specs}
    kw = {} if isinstance(model, GaussianField) else {"num_samples": args.samples, "seed": args.seed,
                                                        "sampler": args.sampler}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = error_table(makers, args.steps, lambda s: model.error(s, metric=metric, **kw), progress=True)
    floor = None
    if metric == "sliced_w2":
        floor = model.noise_floor(args.samples, args.seed)
    where = f"latent grid {model.shape}" if isinstance(model, GaussianField) else f"{args.samples} noises"
    if args.json:
        doc = {"model": repr(model), "metric": metric, "steps": args.steps, "errors": results}
        if floor is not None:
            doc["noise_floor"] = floor
        print(json.dumps(doc, indent=2))
    else:
        print(f"model   {model!r}, {where}")
        print(f"metric  {metric} (lower is better){'' if metric != 'sliced_w2' else f'; noise floor {floor:.4g}'}")
        width = max(len("schedule"), *(len(s) for s in results))
        print(f"{'schedule':<{width}}  " + "  ".join(f"{f'N={n}':>10}" for n in args.steps))
        for label, values in results.items():
            print(f"{label:<{width}}  " + "  ".join(f"{v:10.4g}" for v in values))
    if args.plot:
        title = f"{metric} error on {args.model}" + (f", {preset.name} grid" if args.model == "field" else "")
        plot_error_vs_steps(results, args.steps, args.plot, ylabel=metric, title=title, floor=floor)
        if not args.json:
            print(f"plot    {args.plot}")
    return 0
