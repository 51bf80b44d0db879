"""Optional dependencies: imported where they are used, and a one-line answer naming the extra when missing.

``pip install flowsched`` installs numpy, torch and safetensors. Everything else is an extra of pyproject.toml:
``quality`` (scipy: the shift search, the schedule optimiser, the beta schedule and ComfyUI's
``comfyui:scheduler=beta``), ``plot`` (matplotlib: figures), ``progress`` (tqdm: progress bars, :func:`progress_bar`),
``diffusers`` (the scheduler adapter), ``fast`` (numba: the compiled CPU kernel of portable noise). This module is at
the bottom of the stack: any module may import it, and it imports nothing of flowsched.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = [
    "EXTRAS",
    "MissingDependency",
    "available",
    "install_hint",
    "progress_bar",
    "require",
]

#: The extra of pyproject.toml that installs each optional top-level package.
EXTRAS = {"scipy": "quality", "matplotlib": "plot", "tqdm": "progress", "diffusers": "diffusers", "numba": "fast"}


class MissingDependency(ImportError):
    """An optional package is not installed. The message names the extra that installs it."""


def install_hint(package: str) -> str:
    """``pip install 'flowsched[EXTRA]'`` for an optional top-level ``package``."""
    if package not in EXTRAS:
        raise ValueError(f"package must be one of {', '.join(sorted(EXTRAS))}, got {package!r}")
    return f"pip install 'flowsched[{EXTRAS[package]}]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"scipy.optimize"``) of an optional package, for ``purpose`` (e.g. "the beta
    schedule").

    Raises :class:`MissingDependency` (an ``ImportError``) whose one-line message names the package and the extra
    that installs it, when the package is not installed. An ImportError about some other module (a broken
    install of the package itself) is raised as it is.
    """
    package = module.partition(".")[0]
    hint = install_hint(package)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in ("", package):
            raise
        raise MissingDependency(f"{purpose} needs {package}, which is not installed: {hint}", name=package) from exc


def available(package: str) -> bool:
    """Whether the optional top-level ``package`` can be found, without importing it."""
    install_hint(package)  # validates the name
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


class _NoBar:
    """What :func:`progress_bar` gives when it is switched off: the calls a bar takes, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(total: int | None, enabled: bool, desc: str, unit: str = "step") -> Any:
    """A tqdm bar on stderr, or a bar that does nothing when ``enabled`` is false. Use it as a context manager,
    ``with progress_bar(total, enabled, desc) as bar: ... bar.update(1)``, which closes it on the way out
    (exceptions included); ``update``, ``set_postfix`` and ``close`` also work without ``with``."""
    if not enabled:
        return _NoBar()
    tqdm = require("tqdm.auto", "a progress bar").tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
