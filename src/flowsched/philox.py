"""Counter-based Philox4x32-10 and an exact-operation inverse normal CDF: the two halves of portable noise.

Portable noise is a pure function of ``(seed, sample_index, stream, element index)``; the full bit-level
specification is ``docs/portable-noise.md``. In short:

* **Philox4x32-10** as defined by Random123 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy
  as 1, 2, 3", SC11): a 128-bit counter ``(c0, c1, c2, c3)`` and a 64-bit key ``(k0, k1)`` give four 32-bit words.
  Key ``(seed mod 2**32, seed >> 32)``; counter ``(block mod 2**32, block >> 32, sample_index, stream)``.
* Element ``i`` of a sample (frame-major index, see :func:`counter_order`) takes word ``i % 4`` of block ``i // 4``.
* A word ``u`` becomes ``p = (u + 0.5) * 2**-32`` (exact in float64) and ``z = Phi^-1(p)`` by Wichura's
  algorithm AS241 (PPND16, Applied Statistics 37(3), 1988, 477-484) evaluated in float64 with only ``+ - * /``,
  ``sqrt`` and a logarithm built from an exact exponent/mantissa split and a series; ``z`` is rounded to float32.
  IEEE 754 rounds each of these operations the same way on every machine, so every backend on every device gives
  the same bits (no library ``log``/``erfinv``, whose last bits differ between libraries, and no fused
  multiply-add).

This module holds the scalar pure-Python reference (:func:`philox4x32_10`, :func:`normal_from_word`,
:func:`normal_scalar`), the argument checks, and :func:`generate`, which hands a region to the backend that
:func:`flowsched.backends.select` chooses. The backends (numpy, numba, torch, triton) live in
:mod:`flowsched.backends`, one module each; tests check them bit for bit against this reference and each other.
numpy's own ``np.random.Philox`` is the 4x64 variant and cannot serve here.

This module needs numpy; torch, numba and triton are imported only by the backends that use them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _validate as v
from . import backends
from .backends import BackendStatus, Job
from .backends.constants import (
    AS241_A,
    AS241_B,
    AS241_C,
    AS241_D,
    AS241_E,
    AS241_F,
    CONST1,
    CONST2,
    LN2,
    LOG_SERIES,
    MASK32,
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_W0,
    PHILOX_W1,
    ROUNDS,
    SEED_LIMIT,
    SPLIT1,
    SPLIT2,
    SQRT_HALF,
    WORD_LIMIT,
)
from .backends.layout import Layout, counter_order

__all__ = [
    "BACKENDS",
    "Layout",
    "available_backends",
    "check_seed",
    "check_word",
    "counter_order",
    "element_index",
    "exact_log",
    "generate",
    "key_from_seed",
    "locate_word",
    "normal_from_word",
    "normal_scalar",
    "philox4x32_10",
    "philox4x32_10_inverse",
    "ppnd16",
]

#: What ``backend=`` accepts: ``"auto"`` and every backend's name.
BACKENDS = backends.CHOICES

# -- scalar reference --------------------------------------------------------------------------------------------


def _horner(coefficients: Sequence[float], x: float) -> float:
    acc = coefficients[0]
    for c in coefficients[1:]:
        acc = acc * x + c
    return acc


def exact_log(x: float) -> float:
    """Natural log of ``x > 0`` from exact operations only (the operation order of the spec).

    ``x = m * 2**e`` with ``m`` in ``[0.5, 1)`` (an exact split); if ``m < SQRT_HALF`` then ``m = 2m, e = e - 1``;
    ``ln x = e * LN2 + s * P(s*s)`` with ``s = (m - 1) / (m + 1)`` and the series :data:`LOG_SERIES`.
    """
    m, e = math.frexp(x)
    if m < SQRT_HALF:
        m, e = m + m, e - 1
    s = (m - 1.0) / (m + 1.0)
    return float(e) * LN2 + s * _horner(LOG_SERIES, s * s)


def ppnd16(p: float) -> float:
    """``Phi^-1(p)`` for ``0 < p < 1`` by AS241 (PPND16) in float64, with :func:`exact_log` (scalar reference)."""
    q = p - 0.5
    if abs(q) <= SPLIT1:
        r = CONST1 - q * q
        return q * _horner(AS241_A, r) / _horner(AS241_B, r)
    r = p if q < 0 else 1.0 - p
    r = math.sqrt(-exact_log(r))
    if r <= SPLIT2:
        x = r - CONST2
        z = _horner(AS241_C, x) / _horner(AS241_D, x)
    else:
        x = r - SPLIT2
        z = _horner(AS241_E, x) / _horner(AS241_F, x)
    return -z if q < 0 else z


def _to_float32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def normal_from_word(u: int) -> float:
    """The float32 normal (as a Python float) that the 32-bit word ``u`` maps to (scalar reference)."""
    return _to_float32(ppnd16((u + 0.5) * 2.0**-32))


# -- scalar Philox (reference) -----------------------------------------------------------------------------------


def philox4x32_10(counter: Sequence[int], key: Sequence[int], rounds: int = ROUNDS) -> tuple[int, int, int, int]:
    """Random123's Philox4x32 block function on Python integers: 4 counter words, 2 key words -> 4 words.

    Each round: ``(hi0, lo0) = M0 * c0``, ``(hi1, lo1) = M1 * c2`` (64-bit products), then
    ``c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)``; the key gains ``(W0, W1)`` mod 2**32 between rounds.
    """
    if len(counter) != 4 or len(key) != 2:
        raise ValueError(f"philox4x32_10 needs 4 counter words and 2 key words, got {len(counter)} and {len(key)}")
    c = [v.nonnegative_int(f"counter[{i}]", w) for i, w in enumerate(counter)]
    k0, k1 = (v.nonnegative_int(f"key[{i}]", w) for i, w in enumerate(key))
    if max(c + [k0, k1]) > MASK32:
        raise ValueError(f"philox4x32_10 words must be 32-bit (< 2**32), got counter {counter} and key {key}")
    for _ in range(v.positive_int("rounds", rounds)):
        p0, p1 = PHILOX_M0 * c[0], PHILOX_M1 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK32, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK32]
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return c[0], c[1], c[2], c[3]


def philox4x32_10_inverse(output: Sequence[int], key: Sequence[int], rounds: int = ROUNDS) -> tuple[int, int, int, int]:
    """The counter that :func:`philox4x32_10` maps to ``output`` under ``key``: Philox is a bijection of the counter
    for a fixed key, because ``M0`` and ``M1`` are odd (invertible mod ``2**32``).

    Each round is undone from its low products: ``c2 = lo1 * M1**-1``, ``c0 = lo0 * M0**-1`` (mod ``2**32``), then
    ``c1 = out0 ^ hi1 ^ k0`` and ``c3 = out2 ^ hi0 ^ k1`` with that round's key. Builds test vectors: the counter
    (so the seed, sample index, stream and element index) that yields a chosen word, such as the FMA-sensitive
    words of ``docs/portable-noise.md``.
    """
    if len(output) != 4 or len(key) != 2:
        raise ValueError(
            f"philox4x32_10_inverse needs 4 output words and 2 key words, got {len(output)} and {len(key)}"
        )
    c = [v.nonnegative_int(f"output[{i}]", w) for i, w in enumerate(output)]
    k0, k1 = (v.nonnegative_int(f"key[{i}]", w) for i, w in enumerate(key))
    if max(c + [k0, k1]) > MASK32:
        raise ValueError(f"philox4x32_10_inverse words must be 32-bit (< 2**32), got output {output} and key {key}")
    rounds = v.positive_int("rounds", rounds)
    inv0, inv1 = pow(PHILOX_M0, -1, 2**32), pow(PHILOX_M1, -1, 2**32)
    for r in range(rounds - 1, -1, -1):
        rk0, rk1 = (k0 + r * PHILOX_W0) & MASK32, (k1 + r * PHILOX_W1) & MASK32
        c2 = (c[1] * inv1) & MASK32
        c0 = (c[3] * inv0) & MASK32
        c = [c0, c[0] ^ ((PHILOX_M1 * c2) >> 32) ^ rk0, c2, c[2] ^ ((PHILOX_M0 * c0) >> 32) ^ rk1]
    return c[0], c[1], c[2], c[3]


def locate_word(word: int, *, rng_seed: int = 0) -> tuple[int, int, int, int]:
    """``(seed, sample_index, stream, index)`` whose element ``index`` of sample ``sample_index`` in ``stream`` takes
    the 32-bit ``word``: a test vector for any backend, built with :func:`philox4x32_10_inverse` from a key and three
    other output words drawn from ``random.Random(rng_seed)``.

    The counter's block words come out uniformly random, so ``index`` is huge; it is kept below ``2**63`` (the int64
    counter indices of the backends): a ``(1, 2**63)`` tensor with ``region=(slice(None), slice(index, index + 1))``
    holds the word. About one draw in eight qualifies.
    """
    import random

    word = check_word("word", word)
    rng = random.Random(v.nonnegative_int("rng_seed", rng_seed))
    while True:
        seed, position = rng.getrandbits(64), rng.randrange(4)
        out = [rng.getrandbits(32) for _ in range(4)]
        out[position] = word
        c0, c1, c2, c3 = philox4x32_10_inverse(out, key_from_seed(seed))
        index = 4 * ((c1 << 32) | c0) + position
        if index < 2**63:
            return seed, c2, c3, index


# -- argument checks ---------------------------------------------------------------------------------------------


def check_seed(name: str, seed: Any) -> int:
    """A portable-noise seed: an integer in ``[0, 2**64)`` (it becomes the 64-bit Philox key)."""
    if not v.is_int(seed):
        raise TypeError(f"{name} must be an integer in [0, 2**64), got {seed!r} ({type(seed).__name__})")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(
            f"{name} must be an integer in [0, 2**64) for portable noise (the 64-bit Philox key), got {seed}"
        )
    return int(seed)


def check_word(name: str, value: Any) -> int:
    """A sample index or stream: an integer in ``[0, 2**32)`` (one 32-bit counter word)."""
    value = v.nonnegative_int(name, value)
    if value >= WORD_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**32) (a 32-bit Philox counter word), got {value}")
    return value


def key_from_seed(seed: int) -> tuple[int, int]:
    """The Philox key ``(seed mod 2**32, seed >> 32)`` of a seed in ``[0, 2**64)``."""
    seed = check_seed("seed", seed)
    return seed & MASK32, seed >> 32


def element_index(sample_shape: Sequence[int], position: Sequence[int]) -> int:
    """The counter-order index of the element at ``position`` (output order) of a sample of ``sample_shape``."""
    index = 0
    for axis in counter_order(sample_shape):
        index = index * sample_shape[axis] + position[axis]
    return index


def normal_scalar(seed: int, sample_index: int, stream: int, index: int) -> float:
    """Element ``index`` of sample ``sample_index`` in ``stream`` (scalar reference, float32 value)."""
    block = v.nonnegative_int("index", index) // 4
    if block >= SEED_LIMIT:
        raise ValueError(f"index must be below 2**66, got {index}")
    counter = (block & MASK32, block >> 32, check_word("sample_index", sample_index), check_word("stream", stream))
    return normal_from_word(philox4x32_10(counter, key_from_seed(seed))[index % 4])


# -- vectorised backends -----------------------------------------------------------------------------------------
#
# A backend provides ``blocks(blk0, nb, sample_words, stream, key) -> [R, nb * 4]`` (the 32-bit words of blocks
# blk0[r] .. blk0[r] + nb - 1 for run r, in element order), ``to_q(words) -> float64`` and the array operations the


# -- generating a region -----------------------------------------------------------------------------------------


def available_backends() -> dict[str, BackendStatus]:
    """What this machine has: for each backend (``numpy``, ``numba``, ``torch``, ``triton``) whether it runs here,
    on which devices, and what it runs on or why not (a package that does not import, no CUDA device).

    ``print(*available_backends().values(), sep="\n")`` prints one line per backend. Imports numba and triton (when
    installed) to find out whether they work.
    """
    return backends.available()


def generate(
    layout: Layout,
    seed: int,
    sample_words: Sequence[int] | np.ndarray,
    stream: int,
    out: Any,
    *,
    backend: str = "auto",
    threads: int | None = None,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Fill the flat, C-contiguous torch tensor ``out`` (``layout.numel`` values, any float dtype, on any device)
    with the portable normals of ``layout``. ``sample_words[b]`` is the counter's sample word of batch position
    ``b``. ``backend`` is one of :data:`BACKENDS`, chosen by :func:`flowsched.backends.select` for ``out``'s
    device; a host backend (numpy, numba) serving another device generates on the CPU and copies.

    ``threads`` and ``chunk`` tune the CPU backends and never change a value; ``progress`` is called with the
    number of elements finished as they finish.
    """
    import torch

    chosen = backends.select(backend, out.device, layout.numel)
    job = Job(layout, key_from_seed(seed), np.asarray(sample_words, dtype=np.int64), check_word("stream", stream),
              threads=threads, chunk=chunk, progress=progress)
    if chosen.host and out.device.type != "cpu":
        host = torch.empty(out.shape, dtype=out.dtype)
        chosen.generate(job, host)
        out.copy_(host)
        return
    chosen.generate(job, out)
