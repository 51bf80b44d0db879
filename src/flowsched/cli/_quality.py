"""Analytic data models on the command line, shared by ``evaluate`` and ``optimize``."""

from __future__ import annotations

import argparse

from ._common import CliError, positive_float, positive_int, warn

MODELS = ("field", "mixture", "mixture2d")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model`` and its settings."""
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


def check_model_options(args: argparse.Namespace) -> None:
    """Contradictions between the data-model options, refused before any work."""
    if args.model == "field" and args.sampler != "euler":
        raise CliError("--sampler heun is for the mixtures; the field's closed form is Euler's")
    if args.metric is not None:
        from ..quality import field, mixture

        accepted = field.METRICS if args.model == "field" else mixture.METRICS
        if args.metric not in accepted:
            raise CliError(
                f"--metric must be one of {', '.join(accepted)} for --model {args.model}, got {args.metric!r}"
            )
    if args.model != "field":
        for flag, value in (("--latents", args.latents), ("--latents-key", args.latents_key)):
            if value is not None:
                raise CliError(f"{flag} fits a Gaussian field; it cannot be combined with --model {args.model}")


def setup(args: argparse.Namespace):
    """``(preset, geometry, model, metric)`` from the geometry and data-model options; frame-count warnings are
    printed here."""
    from ..quality.evaluate import default_metric
    from ._geometry import resolve_geometry

    preset, geometry = resolve_geometry(args)
    for w in geometry.warnings:
        warn(w)
    model = _model(args, geometry)
    return preset, geometry, model, args.metric or default_metric(model)


def _model(args: argparse.Namespace, geometry):
    from ..quality import GaussianField, GaussianMixture

    if args.model == "field":
        if args.latents:
            return GaussianField.from_latents(args.latents, key=args.latents_key)
        return GaussianField(geometry, gamma=args.gamma, k0=args.k0, w_t=args.w_t)
    return GaussianMixture.standard() if args.model == "mixture" else GaussianMixture.ring2d()


def show_progress() -> bool:
    """A progress bar on stderr only when a person watches it (a terminal) and tqdm is installed (it is the
    ``progress`` extra; without it the commands run the same, silently)."""
    import sys

    from .._optional import available

    return sys.stderr.isatty() and available("tqdm")
