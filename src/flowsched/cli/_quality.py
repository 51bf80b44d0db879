"""Analytic data models on the command line, shared by ``evaluate`` and ``optimize``."""

from __future__ import annotations

import argparse

from ._common import CliError, arg_type, nonnegative_float, positive_float, positive_int, warn

__all__ = [
    "add_model_options",
    "check_model_options",
    "sampler_options",
    "sampler_text",
    "setup",
    "show_progress",
]

MODELS = ("field", "mixture", "mixture2d")


def add_model_options(p: argparse.ArgumentParser, *, euler_only: bool = False) -> None:
    """``--model`` and its settings, and the sampler scored: ``--sampler`` (the samplers of
    :data:`flowsched.sampling.SAMPLERS`), ``--eta``, ``--s-noise``. ``euler_only`` (``optimize``, which finds Euler
    schedules with the mixtures' rmse): no sampler options and only the metrics it can optimise, so the help offers
    what works."""
    m = p.add_argument_group("data model")
    m.add_argument("--model", choices=MODELS, default="field", help="analytic data model")
    # optimize gives advice, and the field's KL is not advice (docs/quality-models.md, "On trained networks")
    fields, mixtures = ("w2", "rmse") if euler_only else ("w2 | kl", "rmse | sliced_w2 | modes")
    m.add_argument("--metric", help=f"field: {fields}; mixtures: {mixtures} (default: w2 / rmse)")
    m.add_argument("--gamma", type=float, default=2.0, help="field: spectral slope, variance ~ |k|^-gamma")
    m.add_argument("--k0", type=positive_float, default=1.0, help="field: low-frequency roll-off")
    m.add_argument("--w-t", type=float, default=1.0,
                   help="field: weight of temporal frequency (large = frames nearly identical, 0 = independent)")
    m.add_argument("--latents", metavar="FILE", help="field: fit the spectrum to latents in a .safetensors file "
                   "([..., T', H', W']; the field then has their grid)")
    m.add_argument("--latents-key", help="tensor name in --latents when it holds several")
    m.add_argument("--samples", type=positive_int, default=1024, help="mixtures: number of noises")
    m.add_argument("--seed", type=int, default=0, help="mixtures: seed of noises, true samples and projections")
    if euler_only:
        p.set_defaults(sampler="euler", eta=None, s_noise=None, advice=True)
    else:
        _add_sampler_options(m)


def _add_sampler_options(m) -> None:
    from ..sampling import MAX_S_NOISE, SAMPLERS, check_s_noise  # numpy only

    s_noise = arg_type(float, lambda _, value: check_s_noise(value),
                       f"a number from 0 to {MAX_S_NOISE:g} (1 keeps the marginals exact)")
    m.add_argument("--sampler", choices=tuple(SAMPLERS), default="euler",
                   help="the sampler scored: euler (default), heun (mixtures only), euler_ancestral (with --eta, "
                   "--s-noise) or stochastic_euler; on a mixture the stochastic ones are scored by sliced_w2 only "
                   "(the default metric there), on the field exactly")
    m.add_argument("--eta", type=nonnegative_float, default=None,
                   help="euler_ancestral: share of each step re-noised (default 1; 0 is Euler)")
    m.add_argument("--s-noise", type=s_noise, default=None,
                   help="euler_ancestral: scale of the fresh noise (default 1, which keeps the marginals exact)")


def check_model_options(args: argparse.Namespace) -> None:
    """Contradictions between the data-model options, refused before any work: each combination a model cannot
    score gets one line that says what it can."""
    from ..quality import field, mixture
    from ..sampling import STOCHASTIC

    if args.model == "field" and args.sampler not in field.SAMPLERS:
        raise CliError(
            f"--sampler {args.sampler} is for the mixtures; the field's closed form covers "
            f"{', '.join(field.SAMPLERS)}"
        )
    if args.sampler != "euler_ancestral":
        for flag, value in (("--eta", args.eta), ("--s-noise", args.s_noise)):
            if value is not None:
                raise CliError(f"{flag} is an option of --sampler euler_ancestral, not of --sampler {args.sampler}")
    if args.metric is not None:
        accepted = field.METRICS if args.model == "field" else mixture.METRICS
        if getattr(args, "advice", False) and args.metric == "kl":
            raise CliError(
                "--metric kl is not offered for optimising: on networks trained on real photographs the KL-optimal "
                "schedule was the worst in every cell (docs/quality-models.md, 'On trained networks'); use --metric "
                "w2 (the default); flowsched evaluate --metric kl still measures it"
            )
        if args.metric not in accepted:
            raise CliError(
                f"--metric must be one of {', '.join(accepted)} for --model {args.model}, got {args.metric!r}"
            )
        if args.model != "field" and args.sampler in STOCHASTIC and args.metric != "sliced_w2":
            raise CliError(
                f"--metric {args.metric} compares each sample with the ODE solution from the same noise, which "
                f"--sampler {args.sampler} leaves by design: use --metric sliced_w2 (the default for it)"
            )
    if args.model != "field":
        for flag, value in (("--latents", args.latents), ("--latents-key", args.latents_key)):
            if value is not None:
                raise CliError(f"{flag} fits a Gaussian field; it cannot be combined with --model {args.model}")


def sampler_options(args: argparse.Namespace) -> dict:
    """The ``sampler`` keyword arguments of the models' ``error`` (``eta`` and ``s_noise`` for euler_ancestral,
    defaults 1)."""
    if args.sampler != "euler_ancestral":
        return {"sampler": args.sampler}
    return {
        "sampler": args.sampler,
        "eta": 1.0 if args.eta is None else args.eta,
        "s_noise": 1.0 if args.s_noise is None else args.s_noise,
    }


def sampler_text(args: argparse.Namespace) -> str:
    """``euler_ancestral (eta 0.5, s_noise 1)``: the sampler as the commands print it."""
    opts = sampler_options(args)
    extra = ", ".join(f"{k} {v:g}" for k, v in opts.items() if k != "sampler")
    return args.sampler + (f" ({extra})" if extra else "")


def setup(args: argparse.Namespace):
    """``(preset, geometry, model, metric)`` from the geometry and data-model options; frame-count warnings are
    printed here. A mixture scored with a stochastic sampler defaults to ``sliced_w2`` (the only metric that
    measures it)."""
    from ..quality.scoring import default_metric
    from ..sampling import STOCHASTIC
    from ._geometry import resolve_geometry

    preset, geometry = resolve_geometry(args)
    for w in geometry.warnings:
        warn(w)
    model = _model(args, geometry)
    metric = args.metric
    if metric is None:
        metric = "sliced_w2" if args.model != "field" and args.sampler in STOCHASTIC else default_metric(model)
    return preset, geometry, model, metric


def _model(args: argparse.Namespace, geometry):
    from ..quality import GaussianField, GaussianMixture

    if args.model == "field":
        if args.latents:
            try:
                return GaussianField.from_latents(args.latents, key=args.latents_key)
            except ValueError as exc:  # the file's own problem: say which option named it
                raise CliError(f"--latents {args.latents!r}: {exc}") from None
        return GaussianField(geometry, gamma=args.gamma, k0=args.k0, w_t=args.w_t)
    return GaussianMixture.standard() if args.model == "mixture" else GaussianMixture.ring2d()


def show_progress() -> bool:
    """A progress bar on stderr only when a person watches it (a terminal) and tqdm is installed (it is the
    ``progress`` extra; without it the commands run the same, silently)."""
    import sys

    from .._optional import available

    return sys.stderr.isatty() and available("tqdm")
