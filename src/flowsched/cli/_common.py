"""What every command shares: the one-line error, the parser, argument types, printing, optional packages.

Bottom of the CLI: imports only ``flowsched._validate`` and ``flowsched._limits`` (standard library) at module level
(command modules import it while ``--help`` is being built, so it must stay cheap).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .. import _limits
from .. import _validate as v

__all__ = [
    "add_command",
    "arg_type",
    "CliError",
    "fail",
    "integer",
    "need",
    "nonnegative_float",
    "Parser",
    "positive_float",
    "positive_int",
    "print_json",
    "step_count",
    "step_counts",
    "warn",
]


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

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse's, except that options no parser knows point to the help of the command they were given to
        (argparse reports them from the top parser, whose help does not list them)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            where = f"{self.prog} {command}" if command else self.prog
            raise CliError(f"unrecognized arguments: {' '.join(extras)} (see `{where} --help`)")
        return parsed


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


# -- argparse types: the library's checks, argparse's one-line message -------------------------------------------


def arg_type(parse: Callable[[str], Any], check: Callable[[str, Any], Any], accepted: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``parse`` the text, then apply a :mod:`flowsched._validate` rule ``check(name, value)``
    (the same rule the library applies); either failing is argparse's one-line error, which names the option:
    ``argument --eta: expected a finite number >= 0, got '-1'``."""

    def convert(text: str) -> Any:
        try:
            return check("value", parse(text))
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None

    convert.__name__ = accepted  # how argparse names the type, should it ever need to
    return convert


positive_int = arg_type(lambda text: int(text, 10), v.positive_int, "a positive integer")
positive_float = arg_type(float, v.positive_real, "a finite number > 0")
nonnegative_float = arg_type(float, v.nonnegative_real, "a finite number >= 0")
#: ``--steps``: the library's step-count rule (:func:`flowsched._limits.step_count`).
step_count = arg_type(
    lambda text: int(text, 10),
    _limits.step_count,
    f"a step count from 1 to {_limits.MAX_STEPS} (models are trained on 1000 timesteps; no sampler runs more)",
)


def integer(text: str) -> int:
    """Any integer, in any base Python reads (``42``, ``0x2a``); the command checks its range."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def step_counts(text: str) -> list[int]:
    """``10,20,30`` -> ``[10, 20, 30]`` (step counts, repeats dropped, order kept)."""
    try:
        values = [step_count(x.strip()) for x in text.split(",") if x.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected step counts from 1 to {_limits.MAX_STEPS} like 10,20,30,50, got {text!r}"
        ) from None
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
