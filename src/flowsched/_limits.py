"""What every public function refuses before it allocates: one policy for the whole library.

* A **step count** (a schedule's ``N``, a teacher's, the size of a model's timestep table) is at most
  :data:`MAX_STEPS`. Models are trained on 1000 timesteps and samplers run from 1 to about 1000 steps; ten times
  the training grid distinguishes nothing more, and a count beyond it is a typo (``--steps 1000000000`` would ask
  for 7.5 GiB before the first step).
* Anything else whose size the caller chooses (noise, a Gaussian field's grid, a mixture's samples, a figure's
  pixels) is **estimated in bytes first** and refused above the memory budget, with the estimate in the message:
  ``max_bytes=`` where a function takes it, else the environment variable ``FLOWSCHED_MAX_BYTES``, else
  :data:`DEFAULT_MAX_BYTES` (8 GiB).

Standard library only: this module sits at the bottom of the stack.
"""

from __future__ import annotations

import os
from typing import Any

from ._validate import positive_int

__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "MAX_STEPS", "check_bytes", "format_bytes", "max_bytes_default",
           "step_count"]

#: The largest step count any function accepts (see the module docstring).
MAX_STEPS = 10_000
#: The memory budget when neither ``max_bytes=`` nor ``FLOWSCHED_MAX_BYTES`` says otherwise, in bytes.
DEFAULT_MAX_BYTES = 8 * 2**30
#: The environment variable that sets the memory budget for the process.
MAX_BYTES_ENV = "FLOWSCHED_MAX_BYTES"


def step_count(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` if it is a step count in ``[1, MAX_STEPS]``, else raise naming ``name``."""
    value = positive_int(name, value)
    if value > MAX_STEPS:
        raise ValueError(
            f"{name} must be at most {MAX_STEPS} (models are trained on 1000 timesteps; no sampler runs more "
            f"steps), got {value}"
        )
    return value


def max_bytes_default() -> int:
    """The memory budget in force: ``FLOWSCHED_MAX_BYTES`` if set, else :data:`DEFAULT_MAX_BYTES`."""
    raw = os.environ.get(MAX_BYTES_ENV)
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):
        raise ValueError(f"the environment variable {MAX_BYTES_ENV} must be a byte count, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"the environment variable {MAX_BYTES_ENV} must be positive, got {raw!r}")
    return value


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def check_bytes(
    what: str, nbytes: int, max_bytes: int | None = None, *, how: str | None = None, about: bool = False
) -> int:
    """Refuse, before allocating, ``what`` when it needs more than the budget; return ``nbytes``.

    ``max_bytes`` is the caller's ``max_bytes=`` argument (None: :func:`max_bytes_default`). The message says what
    was asked for (``what``, e.g. "noise of shape (1, 16, 33, 72, 128) in torch.float32"), the size (``about``: an
    estimate of the peak, not one exact array), the limit and ``how`` to allow it (default: set
    ``FLOWSCHED_MAX_BYTES``).
    """
    limit = max_bytes_default() if max_bytes is None else positive_int("max_bytes", max_bytes)
    nbytes = int(nbytes)
    if nbytes > limit:
        how = f"set {MAX_BYTES_ENV}={nbytes} to allow it" if how is None else how
        raise ValueError(
            f"{what} needs {'about ' if about else ''}{nbytes} bytes ({format_bytes(nbytes)}), above the limit of "
            f"{limit} bytes "
            f"({format_bytes(limit)}); {how}"
        )
    return nbytes
