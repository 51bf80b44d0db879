"""The ``flowsched`` command line. Thin: parse, call the library, print or write.

Each command lives in its own module with ``register(subparsers)`` (adds its parser; must import nothing
heavy) and ``run(args) -> int``. Commands never import each other: what several share lives in the modules below
them (``_common``: errors, parser, argument types; ``_output``: output files; ``_geometry``, ``_schedules``,
``_noise``, ``_quality``: the options of one concern each).

Every refusal is one line on stderr, ``flowsched: error: ...``, with exit status 2: argument errors, library
errors (``ValueError``/``TypeError``), a missing optional package (an ``ImportError`` naming the extra that
installs it) and file-system errors. ``--help`` prints the usage. A traceback is a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = [
    "COMMANDS",
    "build_parser",
    "main",
]

#: Command modules in the order ``--help`` lists them.
COMMANDS = ("plan", "schedule", "shape", "noise", "presets", "plot", "compare", "evaluate", "optimize", "frames")

DESCRIPTION = """\
Seeded latent noise and timestep schedules for flow-matching image and video samplers.

Start with `flowsched plan` (the whole Open-Sora 2.0 plan for a 768px, 129-frame video), then
`flowsched presets` to see the models it knows. Every command has its own --help with examples.
"""


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from ._common import Parser

    parser = Parser(
        prog="flowsched",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"flowsched {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}_cmd")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ._common import CliError, fail

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return 0
        return int(args.run(args) or 0)
    except (CliError, ValueError, TypeError, ImportError) as exc:
        return fail(str(exc))
    except BrokenPipeError:  # `flowsched ... | head`
        return 0
    except MemoryError:  # what the size checks let through, on a machine with less memory than the budget
        return fail("out of memory: this machine could not allocate what the command needs; ask for less, or lower "
                    "FLOWSCHED_MAX_BYTES so that flowsched refuses such sizes up front")
    except OSError as exc:  # a file-system error the checks before the work could not foresee (disk full, ...)
        where = f" ({exc.filename})" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}")
    except KeyboardInterrupt:
        return fail("interrupted", status=130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
