"""Schedules on the command line: the preset's schedule with ``--steps``/``--shift``/``--flow-shift``
(``schedule``, ``plan``) and schedule specs (``compare``, ``plot``). numpy only: no torch."""

from __future__ import annotations

import argparse
from typing import Any

from .._validate import real
from ._common import CliError, arg_type, need, positive_float, step_count, warn

__all__ = [
    "add_schedule_options",
    "add_spec_steps_option",
    "add_strength_options",
    "build_partial",
    "check_schedule_options",
    "check_strength_options",
    "conventions",
    "load_specs",
    "schedule_summary",
    "strength_summary",
    "strength_value",
    "text_plot",
]

# -- the preset's schedule: `schedule` and `plan` -----------------------------------------------------------


def shift_value(text: str):
    """``auto`` or a positive number."""
    return "auto" if text.strip().lower() == "auto" else positive_float(text)


def add_schedule_options(p: argparse.ArgumentParser) -> None:
    """``--steps``, ``--shift/--no-shift``, ``--flow-shift``."""
    g = p.add_argument_group("schedule")
    g.add_argument("--steps", type=step_count, metavar="N", help="sampler steps N (default: the preset's)")
    g.add_argument(
        "--shift",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="apply the model's time shift (--no-shift: plain linspace(1, 0, N+1); cannot be combined with "
        "--flow-shift)",
    )
    g.add_argument(
        "--flow-shift",
        type=shift_value,
        metavar="ALPHA|auto",
        help="use this shift alpha instead of the preset's rule (Open-Sora's flow_shift; not Flux's mu); "
        "'auto': the alpha with the least W2 error on a Gaussian field with a 1/f^2 spectrum on the latent grid "
        "(flowsched.quality.auto_shift, needs scipy); a field fitted to your own latents is better advice: "
        "`flowsched evaluate --latents FILE --schedule auto`",
    )


def check_schedule_options(args: argparse.Namespace) -> None:
    """Refuse contradictions and missing packages before any work."""
    if args.flow_shift is not None and not args.shift:
        given = "auto" if args.flow_shift == "auto" else f"{args.flow_shift:g}"
        raise CliError(
            f"--no-shift asks for the unshifted schedule and --flow-shift {given} for a shifted one; give one of them"
        )
    if args.flow_shift == "auto":
        need("scipy", "--flow-shift auto (the shift search)")


def build_schedule(args: argparse.Namespace, preset, geometry):
    """The schedule the options ask for: the preset's rule, a fixed ``--flow-shift``, ``auto``, or no shift."""
    if args.flow_shift == "auto":
        from ..quality.autoshift import auto_shift_schedule

        return auto_shift_schedule(geometry, args.steps or preset.num_steps)
    return preset.schedule(geometry, args.steps, alpha=args.flow_shift, apply_shift=args.shift)


# -- partial schedules: `schedule --strength`, `plan --init` ------------------------------------------------------


def conventions() -> tuple[str, ...]:
    from ..strength import CONVENTIONS  # numpy only

    return tuple(CONVENTIONS)


def _strength(name: str, value: float) -> float:
    value = real(name, value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return value


#: ``--strength``: a number in (0, 1].
strength_value = arg_type(float, _strength, "a strength in (0, 1] (1 = from pure noise)")


def add_strength_options(p: argparse.ArgumentParser, *, init: bool = False) -> None:
    """``--strength`` and ``--convention`` (and ``--init``/``--init-key`` for ``plan``)."""
    g = p.add_argument_group("start from a given latent (image-to-image, video-to-video)")
    if init:
        g.add_argument(
            "--init",
            metavar="LATENT.safetensors",
            help="the clean latent to start from, shaped like the noise [B, C, T', H, W] (safetensors only); the "
            "plan noises it to the partial schedule's first t; needs --strength",
        )
        g.add_argument("--init-key", metavar="KEY", help="which tensor of --init (default: its only tensor)")
    g.add_argument(
        "--strength",
        type=strength_value,
        metavar="S",
        help="start from a latent at this strength in (0, 1] (1 = pure noise): the partial schedule of --convention",
    )
    g.add_argument(
        "--convention",
        choices=conventions(),
        default=None,
        help="whose strength rule: diffusers (Flux/SD3 img2img, default), diffusers-floor (Wan v2v, LTX), comfyui "
        "(KSampler denoise), diffsynth (DiffSynth-Studio, Self-Forcing), framepack",
    )


def check_strength_options(args: argparse.Namespace) -> None:
    if args.convention is not None and args.strength is None:
        raise CliError(f"--convention {args.convention} needs --strength S (the strength it applies to)")
    if getattr(args, "init", None) is not None and args.strength is None:
        raise CliError("--init needs --strength S: the strength the latent is noised at (1 = pure noise)")
    if getattr(args, "init_key", None) is not None and getattr(args, "init", None) is None:
        raise CliError("--init-key needs --init LATENT.safetensors")


def base_maker(args: argparse.Namespace, preset, geometry):
    """``num_steps -> Schedule``: the options' schedule at any step count (the comfyui rule rebuilds it)."""

    def make(n: int):
        if args.flow_shift == "auto":
            from ..quality.autoshift import auto_shift_schedule

            return auto_shift_schedule(geometry, n)
        return preset.schedule(geometry, n, alpha=args.flow_shift, apply_shift=args.shift)

    return make


def build_partial(args: argparse.Namespace, preset, geometry):
    """The schedule the options ask for, cut to ``--strength`` under ``--convention`` when given."""
    if args.strength is None:
        return build_schedule(args, preset, geometry)
    from ..strength import partial

    steps = args.steps or preset.num_steps
    convention = args.convention or "diffusers"
    make = base_maker(args, preset, geometry)
    # DiffSynth re-applies the base's shift to its squeezed grid: the shift this base was built with
    alpha = make(steps).params.get("alpha") if convention == "diffsynth" else None
    return partial(make, steps, args.strength, convention=convention, alpha=alpha)


def strength_summary(schedule) -> str:
    """``strength  S (convention C): starts at t = ..., step B of a M-step schedule; N steps run``."""
    p = schedule.params
    return (
        f"strength       {p['strength']:g} (convention {p['convention']}): starts at t = {schedule.t[0]:.6f}, "
        f"step {p['begin_index']} of a {p['base_steps']}-step schedule; {schedule.num_steps} steps run"
    )


def schedule_summary(schedule) -> str:
    """``schedule  NAME, N steps, shift alpha = A`` (and where an auto shift came from)."""
    p = schedule.params
    alpha = p.get("alpha")
    head = f"schedule       {schedule.name}, {schedule.num_steps} steps"
    if alpha is not None:
        head += f", shift alpha = {alpha:.6g}"
    if "auto_metric" in p:
        head += f" (auto: least {p['auto_metric']} error on {p['auto_model']})"
        if "gamma=2.0, k0=1.0, w_t=1.0" in p["auto_model"]:
            head += "\n" + AUTO_DEFAULT_FIELD_NOTE
    return head


#: What --flow-shift auto's data model is worth (docs/quality-models.md, "On trained networks").
AUTO_DEFAULT_FIELD_NOTE = (
    "note           the default 1/f^2 field, not your data: on networks trained on photographs its shift was about "
    "half the best (1.4 against 2.8-3.5 at 16 px); fitted to the data it came within 3% of the best shift's "
    "error in 11 of 12 cases (flowsched evaluate --latents FILE --schedule auto)"
)


def text_plot(schedule) -> str:
    """The terminal plot with one column per step when that fits (no gaps between markers)."""
    from ..plot import terminal_plot

    n = schedule.num_steps
    width = n * max(1, 40 // n) + 1 if n <= 59 else 60
    return terminal_plot(schedule, width=max(width, 10))


# -- schedule specs: `compare` and `plot` --------------------------------------------------------------------

#: Steps for a family spec that names none when --steps is not given (presets and files keep their own).
FAMILY_STEPS = 50


def add_spec_steps_option(p: argparse.ArgumentParser) -> None:
    """``--steps`` for commands that take schedule specs (see :func:`load_specs`)."""
    p.add_argument(
        "--steps",
        type=step_count,
        metavar="N",
        help="step count N for every SPEC that does not fix its own with steps=..; unset: each preset's own "
        f"count, {FAMILY_STEPS} for families (JSON files and lists always keep theirs)",
    )


def load_specs(specs: list[str], steps: int | None) -> list[tuple[str, Any]]:
    """``[(spec, Schedule)]`` via :func:`flowsched.spec.from_spec`; every spec is built before anything is
    printed, so a bad one fails first. Family specs without a step count get ``steps`` or :data:`FAMILY_STEPS`.
    Warnings (a frame count the VAE cannot decode exactly, ...) are printed with the spec they are about."""
    import warnings as _warnings

    from ..spec import FAMILIES, from_spec

    out = []
    for spec in specs:
        family = spec.partition(":")[0].strip() in FAMILIES
        n = steps if steps is not None or not family else FAMILY_STEPS
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            schedule = from_spec(spec, num_steps=n)
        for w in caught:
            warn(f"{spec}: {w.message}")
        out.append((spec, schedule))
    return out
