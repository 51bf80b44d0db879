"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, unusable value) with a
message that names the argument, shows the value received and says what is accepted. Pure standard library:
this module sits at the bottom of the stack and must not import numpy or torch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

# torch.Generator.manual_seed accepts [-2**63, 2**64): negative seeds are reinterpreted as unsigned.
TORCH_SEED_MIN = -(2**63)
TORCH_SEED_MAX = 2**64 - 1


def is_int(value: Any) -> bool:
    """True for an integer (Python or numpy) that is not a bool: True as a size or a seed is always a mistake."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1, else raise naming ``name``."""
    if not is_int(value):
        if isinstance(value, float) and value.is_integer() and value >= 1:
            raise TypeError(f"{name} must be a positive integer, got the float {value!r}; pass {int(value)}")
        raise TypeError(f"{name} must be a positive integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0, else raise naming ``name``."""
    if not is_int(value):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def real(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def positive_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float`` > 0, else raise naming ``name``."""
    value = real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def torch_seed(name: str, value: Any) -> int:
    """Return ``value`` if ``torch.Generator.manual_seed`` accepts it: an integer in [-2**63, 2**64)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if not TORCH_SEED_MIN <= value <= TORCH_SEED_MAX:
        raise ValueError(
            f"{name} must be an integer in [-2**63, 2**64 - 1] (what torch.Generator.manual_seed accepts), got {value}"
        )
    return int(value)


def choice(name: str, value: Any, accepted: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``accepted``, else raise naming ``name`` and listing the choices."""
    if value not in accepted:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, accepted))}; got {value!r}")
    return value


def closest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate closest to ``word`` (for "did you mean" hints), or None when nothing is close."""
    import difflib

    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.4)
    return found[0] if found else None
