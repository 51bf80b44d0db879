"""What every command shares: the one-line error, the parser, argument types, printing, optional packages.

Bottom of the CLI: imports nothing of flowsched at module level (command modules import it while ``--help`` is
being built, so it must stay cheap).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


class CliError(Exception):
    """A usage problem the user can fix; printed as one line, exit status 2."""


def fail(message: str, status: int = 2) -> int:
    """Print ``flowsched: error: MESSAGE`` as one line on stderr; return ``status``."""
    one_line = " ".join(str(message).split())
    print(f"flowsched: error: {one_line}", file=sys.stderr)
    return status


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a bad argument raises :class:`CliError` (printed by ``main`` as one line,
    exit 2) instead of printing the usage block. ``--help`` still prints the usage."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see `{self.prog} --help`)")


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the examples' line breaks and show defaults that say something: not ``None`` (unset: the help says
    what happens then) and not the ``False`` of an on/off flag."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def add_command(sub, name: str, *, help: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """The parser of one command, with the shared formatter (each command's ``register`` calls this)."""
    return sub.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=Formatter)


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


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def step_counts(text: str) -> list[int]:
    """``10,20,30`` -> ``[10, 20, 30]`` (positive, repeats dropped, order kept)."""
    try:
        values = [positive_int(x.strip()) for x in text.split(",") if x.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive step counts like 10,20,30,50, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one step count, got {text!r}")
    return list(dict.fromkeys(values))


# -- optional packages -------------------------------------------------------------------------------------


def need(module: str, purpose: str) -> None:
    """Import an optional ``module`` now, before any work: a missing package is a one-line error naming the
    extra (``flowsched._optional.MissingDependency``, an ImportError ``main`` prints as one line)."""
    from .._optional import require

    require(module, purpose)


# -- printing ---------------------------------------------------------------------------------------------------


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
