"""Pieces shared by the CLI commands: error exit, argument types, preset/geometry options, output helpers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


class CliError(Exception):
    """A usage problem the user can fix; printed as one line, exit status 2."""


def fail(message: str, status: int = 2) -> int:
    print(f"flowsched: error: {message}", file=sys.stderr)
    return status


# -- argparse types: messages name the value and what is accepted ------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the examples' line breaks and show defaults."""


def add_command(sub, name: str, help: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=Formatter)


# -- geometry options ---------------------------------------------------------------------------------------


def add_geometry_options(p: argparse.ArgumentParser, *, batch: bool = False) -> None:
    """``--preset`` plus overrides of its height, width, frames and VAE."""
    from ..presets import DEFAULT_PRESET

    g = p.add_argument_group("what to generate (defaults come from the preset)")
    g.add_argument("--preset", default=DEFAULT_PRESET, help="model preset; `flowsched presets` lists them")
    g.add_argument("--height", type=positive_int, help="pixel height (rounded up to a multiple of pixels per token)")
    g.add_argument("--width", type=positive_int, help="pixel width (rounded up likewise)")
    g.add_argument("--frames", type=positive_int, help="pixel frames (use r*k+1 for causal video VAEs; 1 = image)")
    g.add_argument("--vae", help="override the preset's VAE (hunyuan, dcae-f32t4c128, flux, wan2.1, wan2.2, ...)")
    g.add_argument("--strict", action="store_true", help="make a frame count the VAE cannot decode exactly an error")
    if batch:
        g.add_argument("--batch", type=positive_int, default=1, help="number of samples B")


def resolve_geometry(args: argparse.Namespace):
    """(preset, geometry) from ``--preset`` and its overrides. Frame-count warnings go into geometry.warnings."""
    import warnings

    from ..geometry import LatentGeometry, get_vae
    from ..presets import get_preset

    preset = get_preset(args.preset)
    vae = get_vae(args.vae) if getattr(args, "vae", None) else get_vae(preset.vae)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CLI prints geometry.warnings itself
        geometry = LatentGeometry.from_pixels(
            preset.height if args.height is None else args.height,
            preset.width if args.width is None else args.width,
            preset.num_frames if args.frames is None else args.frames,
            vae,
            getattr(args, "batch", 1),
            strict=getattr(args, "strict", False),
        )
    return preset, geometry


# -- schedules given on the command line -------------------------------------------------------------------

#: Steps for a family spec that names none when --steps is not given (presets and files keep their own).
FAMILY_STEPS = 50


def add_steps_option(p: argparse.ArgumentParser) -> None:
    """``--steps`` for commands that take schedule specs (see :func:`load_specs`)."""
    p.add_argument(
        "--steps",
        type=positive_int,
        help=f"step count N for every schedule that does not fix its own; unset: each preset's own, "
        f"{FAMILY_STEPS} for families",
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


# -- output ---------------------------------------------------------------------------------------------------


def check_writable(path: str | None, flag: str) -> None:
    """Fail before any work when ``path`` (an output file named by ``flag``) cannot be written.

    The nearest existing folder on the way to ``path`` must accept a new file (probed for real, so read-only
    mounts and special file systems are caught too); missing folders below it are created at write time.
    """
    import os
    import tempfile

    if not path:
        return
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path!r} is a folder; give a file name")
    probe = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"{flag} {path!r} cannot be written: {probe!r} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ValueError(
            f"{flag} {path!r} cannot be written: {probe!r} does not accept files ({exc.strerror})"
        ) from None


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
