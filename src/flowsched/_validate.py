"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, unusable value) with a
message that names the argument, shows the value received and says what is accepted. Pure standard library:
this module sits at the bottom of the stack and must not import numpy or torch.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

__all__ = [
    "TORCH_SEED_MAX",
    "TORCH_SEED_MIN",
    "boolean",
    "choice",
    "closest",
    "is_int",
    "is_torch_tensor",
    "nonnegative_int",
    "nonnegative_real",
    "positive_int",
    "positive_real",
    "real",
    "suggestion",
    "torch_seed",
    "unit_open",
]

# torch.Generator.manual_seed accepts [-2**63, 2**64): negative seeds are reinterpreted as unsigned.
TORCH_SEED_MIN = -(2**63)
TORCH_SEED_MAX = 2**64 - 1


def is_int(value: Any) -> bool:
    """True for an integer (Python or numpy) that is not a bool: True as a size or a seed is always a mistake."""
    if type(value) is int:  # the common case, without the abstract-base-class check (about 10x quicker)
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_torch_tensor(value: Any) -> bool:
    """True for a ``torch.Tensor``; never imports torch (a tensor cannot exist before torch was imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def boolean(name: str, value: Any) -> bool:
    """Return ``value`` as a ``bool`` if it is ``True`` or ``False`` (numpy's bool too), else raise naming ``name``.

    1, 0, "yes" and None are refused: a truthy stand-in for a flag is usually a misplaced argument.
    """
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if not (isinstance(value, bool) or numpy_bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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


def unit_open(name: str, value: Any) -> float:
    """Return ``value`` as a ``float`` strictly between 0 and 1, else raise naming ``name``."""
    value = real(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def nonnegative_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float`` >= 0, else raise naming ``name``."""
    value = real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
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


def suggestion(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    """A hint for an unknown name, starting with a space (or ``""``): the candidates that start with ``word``
    when there are any (``wan`` -> every ``wan...``), else the closest one ("Did you mean ...?")."""
    starting = [c for c in candidates if word and c.startswith(word) and c != word]
    if len(starting) == 1:
        return f" Did you mean {starting[0]!r}?"
    if starting:
        return f" Did you mean one of {', '.join(starting)}?"
    hint = closest(word, candidates)
    return f" Did you mean {hint!r}?" if hint else ""


def closest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate closest to ``word`` (for "did you mean" hints), or None when nothing is close."""
    import difflib

    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.4)
    return found[0] if found else None
