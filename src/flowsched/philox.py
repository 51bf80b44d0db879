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
  IEEE 754 rounds each of these operations the same way on every machine, so numpy, torch on CPU and torch on
  CUDA give the same bits (no library ``log``/``erfinv``, whose last bits differ between libraries, and no fused
  multiply-add).

Three implementations share one operation order: a scalar pure-Python reference (:func:`philox4x32_10`,
:func:`normal_from_word`), a numpy backend and a torch backend (any device). Tests check them bit for bit.
numpy's own ``np.random.Philox`` is the 4x64 variant and cannot serve here.

This module needs numpy; torch is imported only by the torch backend.
"""

from __future__ import annotations

import functools
import math
import os
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import _validate as v

# -- constants (Random123, philox.h) ----------------------------------------------------------------------------

PHILOX_M0 = 0xD2511F53  #: round multiplier applied to counter word 0
PHILOX_M1 = 0xCD9E8D57  #: round multiplier applied to counter word 2
PHILOX_W0 = 0x9E3779B9  #: key schedule increment of key word 0 (golden ratio)
PHILOX_W1 = 0xBB67AE85  #: key schedule increment of key word 1 (sqrt(3) - 1)
ROUNDS = 10
MASK32 = 0xFFFFFFFF
WORD_LIMIT = 2**32  #: sample indices and streams are 32-bit counter words
SEED_LIMIT = 2**64  #: seeds are 64-bit keys

# -- AS241 PPND16 coefficients (Wichura 1988), highest degree first for Horner's rule ----------------------------

#: |q| <= 0.425, r = 0.180625 - q*q: z = q * A(r) / B(r)
AS241_A = (
    2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4, 4.5921953931549871457e4,
    1.3731693765509461125e4, 1.9715909503065514427e3, 1.3314166789178437745e2, 3.3871328727963666080e0,
)
AS241_B = (
    5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4, 2.1213794301586595867e4,
    5.3941960214247511077e3, 6.8718700749205790830e2, 4.2313330701600911252e1, 1.0,
)
#: r = sqrt(-log(min(p, 1 - p))) <= 5, x = r - 1.6: |z| = C(x) / D(x)
AS241_C = (
    7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1, 1.27045825245236838258e0,
    3.64784832476320460504e0, 5.76949722146069140550e0, 4.63033784615654529590e0, 1.42343711074968357734e0,
)
AS241_D = (
    1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2, 1.48103976427480074590e-1,
    6.89767334985100004550e-1, 1.67638483018380384940e0, 2.05319162663775882187e0, 1.0,
)
#: r > 5, x = r - 5: |z| = E(x) / F(x). Unreachable for portable noise (p >= 2**-33 gives r < 4.78); kept so that
#: :func:`ppnd16` is the whole algorithm.
AS241_E = (
    2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3, 2.65321895265761230930e-2,
    2.96560571828504891230e-1, 1.78482653991729133580e0, 5.46378491116411436990e0, 6.65790464350110377720e0,
)
AS241_F = (
    2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5, 7.86869131145613259100e-4,
    1.48753612908506148525e-2, 1.36929880922735805310e-1, 5.99832206555887937690e-1, 1.0,
)
SPLIT1 = 0.425
SPLIT2 = 5.0
CONST1 = 0.180625
CONST2 = 1.6

# -- the exact-operation logarithm ------------------------------------------------------------------------------

#: ln(m) = s * (L0 + s2 * (L1 + ...)) with s = (m - 1) / (m + 1), s2 = s * s, L_k = float64(2 / (2k + 1)), k = 0..11.
#: m lies in [sqrt(1/2), sqrt(2)), so |s| <= 0.1716 and the truncation error is below 1e-19 relative.
LOG_SERIES = tuple(2.0 / (2 * k + 1) for k in range(11, -1, -1))
LN2 = float.fromhex("0x1.62e42fefa39efp-1")  #: float64 nearest to ln 2
SQRT_HALF = float.fromhex("0x1.6a09e667f3bcdp-1")  #: float64 nearest to sqrt(1/2): mantissas below it are doubled


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


def counter_order(sample_shape: Sequence[int]) -> tuple[int, ...]:
    """The axes of one sample in the order that numbers its elements (outermost first).

    A 4-D sample ``[C, T, H, W]`` is numbered frame-major, ``(T, C, H, W)``, so that adding frames never changes
    earlier ones; every other rank (an image ``[C, H, W]``, a token sequence, ...) is numbered in C order.
    An image ``[C, H, W]`` thus gets the same values as the video ``[C, 1, H, W]``.
    """
    k = len(sample_shape)
    return (1, 0, 2, 3) if k == 4 else tuple(range(k))


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
# transform needs. The transform (``_normal_from_q``) is written once for both, so the operation order is shared.


class _NumpyBackend:
    name = "numpy"

    @staticmethod
    def _counters(blk0: np.ndarray, nb: int, sample_words: np.ndarray, stream: int, work: _Workspace):
        """Counter words of blocks ``blk0[r] .. blk0[r] + nb - 1``: ``c0`` is ``[R, nb]``, the others per run."""
        blk0 = blk0.astype(np.uint64)
        low = blk0 & np.uint64(MASK32)
        if np.all(low + np.uint64(nb) <= np.uint64(2**32)):  # no run crosses a 2**32 block
            c0 = np.add(low[:, None], work.arange(nb), out=work.array("c0", (blk0.shape[0], nb), np.uint64))
            c1 = (blk0 >> np.uint64(32))[:, None]
        else:
            blk = blk0[:, None] + np.arange(nb, dtype=np.uint64)[None, :]
            c0, c1 = blk & np.uint64(MASK32), blk >> np.uint64(32)
        return c0, c1, sample_words.astype(np.uint64)[:, None], np.uint64(stream)

    def blocks(self, blk0: np.ndarray, nb: int, sample_words: np.ndarray, stream: int, key: tuple[int, int]):
        counters = self._counters(blk0, nb, sample_words, stream, _Workspace())
        return philox_numpy(*counters, key).reshape(blk0.shape[0], nb * 4)

    @staticmethod
    def to_q(words: np.ndarray, out: np.ndarray) -> np.ndarray:
        # q = p - 0.5 = (u + 0.5 - 2**31) * 2**-32: both steps exact in float64.
        np.add(words, 0.5 - 2.0**31, out=out.reshape(words.shape), dtype=np.float64)
        out *= 2.0**-32
        return out


def philox_numpy(c0, c1, c2, c3, key: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Philox4x32-10 on numpy integer arrays holding 32-bit words (broadcast together); returns ``[..., 4]``
    ``uint32`` words. The 64-bit products are exact in ``uint64``; all work arrays are contiguous ``uint64``.
    """
    x = _philox_rounds_numpy(c0, c1, c2, c3, key, _Workspace())
    if out is None:
        out = np.empty(x[0].shape + (4,), dtype=np.uint32)
    for j in range(4):
        out[..., j] = x[j]
    return out


_M0, _M1 = np.array(PHILOX_M0, np.uint64), np.array(PHILOX_M1, np.uint64)
_LOW, _SHIFT = np.array(MASK32, np.uint64), np.array(32, np.uint64)


@functools.lru_cache(maxsize=32)
def _round_keys(key: tuple[int, int]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The key of each round as 0-d ``uint64`` arrays (numpy dispatches those faster than scalars)."""
    k0, k1 = key
    return tuple(
        (np.array((k0 + r * PHILOX_W0) & MASK32, np.uint64), np.array((k1 + r * PHILOX_W1) & MASK32, np.uint64))
        for r in range(ROUNDS)
    )


_STACKED_M = np.array([PHILOX_M0, PHILOX_M1], np.uint64)


@functools.lru_cache(maxsize=32)
def _round_keys_stacked(key: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """The key of each round as a ``uint64`` pair ``(k0, k1)``."""
    return tuple(np.array([k0, k1], np.uint64) for k0, k1 in _round_keys(key))


def _philox_rounds_numpy(c0, c1, c2, c3, key: tuple[int, int], work: _Workspace) -> list[np.ndarray]:
    """The four output words of Philox4x32-10 as separate contiguous ``uint64`` arrays (``work`` buffers).

    When only ``c0`` varies along the last axis (the block's low word; the others are per-run constants of shape
    ``[..., 1]``), the first rounds mix constants into constants, and those parts are computed once per run.
    Every full-size operation writes into a preallocated buffer (positional ``out``: the cheapest numpy call).
    """
    mul, shr, band, bxor = np.multiply, np.right_shift, np.bitwise_and, np.bitwise_xor
    arrays = [np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    # Words 0 and 2 live stacked in xs, words 1 and 3 in ys, the products (p1, p0) in ps: the later rounds then
    # treat both halves of a round in one call per operation (half the calls, and measurably faster).
    xs, ys, ps = (work.array(name, (2, *shape), np.uint64) for name in ("philox_x", "philox_y", "philox_p"))
    (x0, x2), (x1, x3), (p1, p0) = xs, ys, ps
    keys = _round_keys(key)
    first = 0
    narrow = len(shape) > 0 and shape[-1] > 1 and all(a.ndim == 0 or a.shape[-1] == 1 for a in arrays[1:])
    if narrow:
        c0, c1, c2, c3 = arrays
        # round 1: the c2 product and the new words 0 and 1 are per-run constants
        mul(c0, _M0, p0)
        q1 = c2 * _M1
        y0 = (q1 >> _SHIFT) ^ c1 ^ keys[0][0]
        y1 = q1 & _LOW
        shr(p0, _SHIFT, x2)
        bxor(x2, c3 ^ keys[0][1], x2)
        band(p0, _LOW, x3)
        # round 2: the word-0 product is a per-run constant
        q0 = y0 * _M0
        mul(x2, _M1, p1)
        shr(p1, _SHIFT, x0)
        bxor(x0, y1 ^ keys[1][0], x0)
        band(p1, _LOW, x1)
        bxor(x3, (q0 >> _SHIFT) ^ keys[1][1], x2)  # hi0 ^ x3 ^ k1
        y3 = q0 & _LOW
        # round 3: word 3 is still a per-run constant
        mul(x0, _M0, p0)
        mul(x2, _M1, p1)
        shr(p1, _SHIFT, x0)
        bxor(x0, x1, x0)
        bxor(x0, keys[2][0], x0)
        band(p1, _LOW, x1)
        shr(p0, _SHIFT, x2)
        bxor(x2, y3 ^ keys[2][1], x2)
        band(p0, _LOW, x3)
        first = 3
    else:
        for buf, a in zip((x0, x1, x2, x3), arrays):
            buf[...] = a
    column = (2,) + (1,) * len(shape)
    multipliers, reversed_ps = _STACKED_M.reshape(column), ps[::-1]
    for k in _round_keys_stacked(key)[first:]:
        mul(xs, multipliers, reversed_ps)  # (p0, p1) = (M0 * x0, M1 * x2), stored as ps = (p1, p0)
        shr(ps, _SHIFT, xs)  # (hi1, hi0)
        bxor(xs, ys, xs)  # (hi1 ^ x1, hi0 ^ x3)
        bxor(xs, k.reshape(column), xs)  # new (x0, x2)
        band(ps, _LOW, ys)  # new (x1, x3) = (lo1, lo0)
    return [x0, x1, x2, x3]


class _TorchBackend:
    name = "torch"

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.device = torch, device
        self.mul, self.add, self.div, self.sqrt = torch.mul, torch.add, torch.div, torch.sqrt
        self.where, self.frexp, self.copysign = torch.where, torch.frexp, torch.copysign

    def empty(self, n: int):
        return self.torch.empty(n, dtype=self.torch.float64, device=self.device)

    @staticmethod
    def rsub(x, c: float):
        x *= -1.0
        x += c  # (-x) + c rounds exactly like c - x: negation is exact
        return x

    def nonzero(self, mask):
        return self.torch.nonzero(mask).reshape(-1)

    def to_f64(self, x):
        return x.to(self.torch.float64)

    def abs(self, x, out):
        return self.torch.abs(x, out=out)

    def blocks(self, blk0: np.ndarray, nb: int, sample_words: np.ndarray, stream: int, key: tuple[int, int]):
        torch = self.torch
        base = torch.from_numpy(blk0.astype(np.int64)).to(self.device)
        blk = base[:, None] + torch.arange(nb, dtype=torch.int64, device=self.device)[None, :]
        c2 = torch.from_numpy(sample_words.astype(np.int64)).to(self.device)[:, None]
        c3 = torch.tensor(stream, dtype=torch.int64, device=self.device)  # keep every operand on the device
        words = philox_torch(blk & MASK32, blk >> 32, c2, c3, key)
        return words.reshape(blk.shape[0], nb * 4)

    def to_q(self, words, out):
        view = out.reshape(words.shape)
        view.copy_(words)  # int64 -> float64, exact below 2**53
        view += 0.5 - 2.0**31
        out *= 2.0**-32
        return out


def _mulhilo_torch(x, m: int):
    """High and low 32-bit words of ``x * m`` for int64 tensors ``x < 2**32``: torch has no unsigned 32x32->64
    multiply, so ``m`` is split into 16-bit halves and every int64 product stays below ``2**49`` (exact everywhere).
    """
    a = x * (m & 0xFFFF)
    b = x * (m >> 16)
    t = a + ((b & 0xFFFF) << 16)
    return (b >> 16) + (t >> 32), t & MASK32


def philox_torch(c0, c1, c2, c3, key: tuple[int, int]):
    """Philox4x32-10 on int64 tensors holding 32-bit words (broadcast); returns ``[..., 4]`` int64 words."""
    import torch

    k0, k1 = key
    x0, x1, x2, x3 = (torch.as_tensor(c, dtype=torch.int64) for c in (c0, c1, c2, c3))
    for _ in range(ROUNDS):
        hi0, lo0 = _mulhilo_torch(x0, PHILOX_M0)
        hi1, lo1 = _mulhilo_torch(x2, PHILOX_M1)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    shape = torch.broadcast_shapes(x0.shape, x1.shape, x2.shape, x3.shape)
    return torch.stack([x.expand(shape) for x in (x0, x1, x2, x3)], dim=-1)


def _horner_into(xp, coefficients: Sequence[float], x, out):
    xp.mul(x, coefficients[0], out=out)
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= x
        out += c
    return out


def _tail_magnitude(xp, s):
    """|z| for the tail branch, from ``s = min(p, 1 - p)`` (operation order of :func:`ppnd16`)."""
    m, e = xp.frexp(s)
    e = xp.to_f64(e)
    small = m < SQRT_HALF
    m = xp.where(small, m + m, m)
    e = xp.where(small, e - 1.0, e)
    t = m - 1.0
    m += 1.0
    t /= m  # t = (m - 1) / (m + 1)
    lg = _horner_into(xp, LOG_SERIES, xp.mul(t, t, out=m), s)
    lg *= t
    e *= LN2
    e += lg  # ln s
    e *= -1.0
    r = xp.sqrt(e, out=e)
    r -= CONST2
    num = _horner_into(xp, AS241_C, r, lg)
    den = _horner_into(xp, AS241_D, r, t)
    num /= den
    return num


def _central_r(u: int) -> float:
    q = (u + 0.5) * 2.0**-32 - 0.5
    return CONST1 - q * q


#: Words 322122547 .. 3972844748 take the central branch (|q| <= 0.425). ``r = 0.180625 - q*q`` falls
#: monotonically with |q| and differs between neighbouring words, so ``|q| > 0.425`` is exactly ``r`` below
#: its value at the outermost central word: the branch test reuses ``r`` instead of a pass computing ``|q|``.
_R_CENTRAL_MIN = _central_r(322122547)
assert _central_r(322122546) < _R_CENTRAL_MIN == _central_r(3972844748) > _central_r(3972844749)


def _normal_from_q(xp, q):
    """float64 ``z`` for float64 ``q = p - 0.5`` (1-D), torch backend (numpy: :func:`_normal_from_q_numpy`)."""
    n = q.shape[0]
    r, num, den = xp.empty(n), xp.empty(n), xp.empty(n)
    xp.mul(q, q, out=r)
    xp.rsub(r, CONST1)  # r = 0.180625 - q*q
    _horner_into(xp, AS241_A, r, num)
    _horner_into(xp, AS241_B, r, den)
    num *= q
    num /= den
    tail = xp.nonzero(r < _R_CENTRAL_MIN)  # the same as |q| > 0.425 (see _R_CENTRAL_MIN)
    if tail.shape[0]:
        qt = q[tail]
        s = xp.abs(qt, out=xp.empty(qt.shape[0]))
        s *= -1.0
        s += 0.5  # min(p, 1 - p) = 0.5 - |q|, exact
        # AS241 negates z when q < 0; copysign is the same exact operation.
        num[tail] = xp.copysign(_tail_magnitude(xp, s), qt)
    return num


def _horner_numpy(coefficients: Sequence[float], x: np.ndarray, out: np.ndarray) -> np.ndarray:
    mul, add = np.multiply, np.add
    mul(x, coefficients[0], out)
    add(out, coefficients[1], out)
    for c in coefficients[2:]:
        mul(out, x, out)
        add(out, c, out)
    return out


#: float64 bit pattern of SQRT_HALF: ``bits(x) - _SQRT_HALF_BITS >> 52`` is the exponent ``e`` of the log split.
_SQRT_HALF_BITS = int(np.float64(SQRT_HALF).view(np.int64))


def _normal_from_q_numpy(q: np.ndarray, work: _Workspace) -> np.ndarray:
    """float64 ``z`` for float64 ``q = p - 0.5`` (1-D), numpy backend; the operations and their order are those
    of :func:`ppnd16`. Returns a ``work`` buffer; ``q`` is overwritten (it holds ``B(r)`` at the end).

    Every full-length step writes into one of three buffers (``q``, ``r``, ``num``), so a chunk's float64 data
    stays in a core's cache; the tail branch runs on the gathered tail elements only.
    """
    n = q.shape[0]
    r, num = work.array("r", n), work.array("num", n)
    np.multiply(q, q, r)
    np.subtract(CONST1, r, r)  # r = 0.180625 - q*q
    _horner_numpy(AS241_A, r, num)
    np.multiply(num, q, num)  # q * A(r)
    tail = np.flatnonzero(np.less(r, _R_CENTRAL_MIN, work.array("tail", n, np.bool_)))  # |q| > 0.425
    qt = np.take(q, tail, out=work.array("tail_q", tail.shape[0]))
    np.divide(num, _horner_numpy(AS241_B, r, q), num)
    if tail.shape[0]:
        num[tail] = _tail_numpy(qt, work)
    return num


def _tail_numpy(qt: np.ndarray, work: _Workspace) -> np.ndarray:
    """The tail branch of :func:`ppnd16` for the tail elements' ``q`` (numpy; rewrites of spec section 1.6).

    The exponent/mantissa split of ``s = 0.5 - |q|`` (a positive normal float64) comes from its bits: with
    ``d = bits(s) - bits(SQRT_HALF)``, ``e = d >> 52`` and ``m = s * 2**-e`` (``bits(s) - (e << 52)``) is the
    ``m, e`` of :func:`exact_log` after its ``m < SQRT_HALF`` step. ``-L(s)`` is ``(-e) * LN2 - t * P``.
    """
    t = qt.shape[0]
    s = np.abs(qt, out=work.array("tail_s", t))
    np.subtract(0.5, s, s)  # min(p, 1 - p), exact
    bits = s.view(np.int64)
    e = np.subtract(bits, _SQRT_HALF_BITS, out=work.array("tail_e", t, np.int64))
    np.right_shift(e, 52, e)
    m = np.left_shift(e, 52, out=work.array("tail_m", t, np.int64))
    np.subtract(bits, m, m)
    m = m.view(np.float64)
    np.negative(e, e)
    neg_log = np.multiply(e, LN2, out=s, dtype=np.float64)  # (-e) * LN2
    x = np.subtract(m, 1.0, out=work.array("tail_x", t))
    np.add(m, 1.0, m)
    np.divide(x, m, x)  # (m - 1) / (m + 1)
    series = _horner_numpy(LOG_SERIES, np.multiply(x, x, m), work.array("tail_p", t))
    np.multiply(series, x, series)
    np.subtract(neg_log, series, neg_log)  # -L(s)
    r = np.sqrt(neg_log, neg_log)
    np.subtract(r, CONST2, r)
    num = _horner_numpy(AS241_C, r, series)
    np.divide(num, _horner_numpy(AS241_D, r, x), num)
    return np.copysign(num, qt, num)


def normal_from_words_numpy(words: np.ndarray) -> np.ndarray:
    """float32 normals for an array of 32-bit words (numpy backend)."""
    words = np.asarray(words)
    q = _NumpyBackend.to_q(words.reshape(-1), np.empty(words.size))
    with np.errstate(all="ignore"):  # the central formula is also evaluated (and discarded) on tail elements
        return _normal_from_q_numpy(q, _Workspace()).astype(np.float32).reshape(words.shape)


def normal_from_words_torch(words, device: Any = None):
    """float32 normals for a tensor of 32-bit words held in int64 (torch backend, any device)."""
    import torch

    words = torch.as_tensor(words, dtype=torch.int64, device=device)
    xp = _TorchBackend(words.device)
    q = xp.to_q(words.reshape(-1), xp.empty(words.numel()))
    return _normal_from_q(xp, q).to(torch.float32).reshape(words.shape)


_NUMPY = _NumpyBackend()

# -- layout: which elements, in which runs ------------------------------------------------------------------------


class Layout:
    """A box ``region`` of a tensor ``[B, *sample]`` cut into *runs*: stretches that are contiguous both in the
    output (C order) and in the counter order of a sample, so that each run is generated from consecutive blocks.

    ``ranges`` holds one ``range`` per axis (batch first), already checked against ``shape``.
    """

    def __init__(self, shape: Sequence[int], ranges: Sequence[range]) -> None:
        self.shape = tuple(shape)
        self.ranges = tuple(ranges)
        sample = self.shape[1:]
        order = counter_order(sample)
        strides = [0] * len(sample)
        acc = 1
        for axis in reversed(order):
            strides[axis] = acc
            acc *= sample[axis]
        self.strides = strides
        self.counts = tuple(len(r) for r in self.ranges)
        # covered: trailing sample axes whose elements form one contiguous stretch of counter indices.
        covered = 0
        run = 1
        for axis in range(len(sample) - 1, -1, -1):
            rng = self.ranges[axis + 1]
            if rng.step != 1:
                break
            if covered == 0:
                if strides[axis] != 1:
                    break
            else:
                inner = axis + 1
                if len(self.ranges[inner + 1]) != sample[inner] or strides[axis] != strides[inner] * sample[inner]:
                    break
            covered += 1
            run *= len(rng)
        self.run_length = run
        self.outer_axes = list(range(1, len(sample) + 1 - covered))  # sample axes (tensor numbering) enumerating runs
        self.run_base = sum(self.ranges[a + 1].start * strides[a] for a in range(len(sample) - covered, len(sample)))
        self.num_runs = math.prod(self.counts[: 1 + len(self.outer_axes)])

    @property
    def numel(self) -> int:
        return math.prod(self.counts)

    def runs(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(batch positions, counter-order start index) of runs ``first .. first + count - 1``."""
        dims = self.counts[: 1 + len(self.outer_axes)]
        idx = np.unravel_index(np.arange(first, first + count, dtype=np.int64), dims)
        start = np.full(count, self.run_base, dtype=np.int64)
        for j, axis in enumerate(self.outer_axes, start=1):
            rng = self.ranges[axis]
            start += (rng.start + rng.step * idx[j]) * self.strides[axis - 1]
        rng = self.ranges[0]
        return rng.start + rng.step * idx[0], start


def _work_items(layout: Layout, chunk: int) -> list[tuple[int, int, int, int]]:
    """(first run, number of runs, offset in run, length) pieces of about ``chunk`` elements, in output order."""
    length = layout.run_length
    items = []
    if length >= chunk:
        pieces = -(-length // chunk)
        size = -(-length // pieces)
        size += -size % 4  # whole blocks where possible
        for r in range(layout.num_runs):
            for off in range(0, length, size):
                items.append((r, 1, off, min(size, length - off)))
    else:
        per = max(1, chunk // length)
        for r in range(0, layout.num_runs, per):
            items.append((r, min(per, layout.num_runs - r), 0, length))
    return items


def _generate_item(xp, layout: Layout, item, sample_words: np.ndarray, stream: int, key: tuple[int, int], work):
    """float64 (numpy) or float32 (torch) values of one work item, and the ``(R, nb)`` shape when the numpy values
    come word-major (all words 0 of the item's ``R * nb`` blocks, then words 1, ...) instead of element order."""
    first, count, offset, length = item
    batch_pos, starts = layout.runs(first, count)
    starts = starts + offset
    blk0, shift = starts >> 2, starts & 3
    uniform = bool(np.all(shift == shift[0]))
    lead = int(shift[0]) if uniform else 3
    nb = (lead + length + 3) >> 2
    n = count * length
    if xp.name == "numpy" and uniform and lead == 0 and length == 4 * nb:  # whole blocks: the common case
        # Word-major: each word array converts to q contiguously; the strided interleave happens once, in the
        # float32 output copy. Exact: q = (u + 0.5 - 2**31) * 2**-32 (u < 2**32, so the int64 view is u).
        x = _philox_rounds_numpy(*xp._counters(blk0, nb, sample_words[batch_pos], stream, work), key, work)
        q = work.array("q", n)
        m = count * nb
        for j in range(4):
            np.add(x[j].reshape(-1).view(np.int64), 0.5 - 2.0**31, q[j * m : (j + 1) * m])
        np.multiply(q, 2.0**-32, q)
        return _normal_from_q_numpy(q, work), (count, nb)
    words = xp.blocks(blk0, nb, sample_words[batch_pos], stream, key)
    if uniform:
        words = words[:, lead : lead + length]
    else:
        cols = shift[:, None] + np.arange(length, dtype=np.int64)[None, :]
        if xp.name == "numpy":
            words = np.take_along_axis(words, cols, axis=1)
        else:
            words = xp.torch.gather(words, 1, xp.torch.from_numpy(cols).to(words.device))
    if xp.name == "numpy":
        return _normal_from_q_numpy(xp.to_q(words, work.array("q", n)), work), None
    return _normal_from_q(xp, xp.to_q(words, xp.empty(n))).to(xp.torch.float32), None


class _Workspace(threading.local):
    """Per-thread arrays reused across work items: fresh large arrays cost page faults and allocator work every
    time. ``array(name, shape, dtype)`` lends the buffer ``name`` (grown when needed); one name, one use at a time.
    """

    def array(self, name: str, shape: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        n = math.prod(shape) if isinstance(shape, tuple) else shape
        buffers = self.__dict__.setdefault("buffers", {})
        buf = buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.shape[0] < n:
            buf = buffers[name] = np.empty(max(n, 1), dtype=dtype)
        return buf[:n].reshape(shape)

    def arange(self, n: int) -> np.ndarray:
        """``0 .. n - 1`` as ``uint64``."""
        buf = self.__dict__.get("_arange")
        if buf is None or buf.shape[0] < n:
            buf = self.__dict__["_arange"] = np.arange(max(n, 1), dtype=np.uint64)
        return buf[:n]


def default_threads() -> int:
    """CPU threads for the numpy backend: ``FLOWSCHED_THREADS`` if set, else the usable cores (at most 8)."""
    raw = os.environ.get("FLOWSCHED_THREADS")
    if raw is not None:
        try:
            return max(1, int(raw))
        except ValueError:
            raise ValueError(f"FLOWSCHED_THREADS must be a positive integer, got {raw!r}") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


#: Elements per work item: small enough that the float64 scratch stays in a core's L2 cache on CPU.
CPU_CHUNK = 2**16
#: Elements per work item with several numpy threads: twice as many numpy calls per GIL hand-over pay for the
#: extra cache misses (measured: 2 threads about 12% faster than with CPU_CHUNK, 1 thread about 10% slower).
CPU_THREADED_CHUNK = 2**17
TORCH_CPU_CHUNK = 2**18
GPU_CHUNK = 2**22


def generate(
    layout: Layout,
    seed: int,
    sample_words: np.ndarray,
    stream: int,
    out: Any,
    *,
    backend: str = "numpy",
    threads: int | None = None,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Fill the flat, C-contiguous torch tensor ``out`` (``layout.numel`` values, any float dtype) with the
    portable normals of ``layout``. ``sample_words[b]`` is the counter's sample word of batch position ``b``.

    Chunks of about ``chunk`` elements are generated independently (numpy: on ``threads`` threads; the values
    never depend on the chunking or threading) and cast to ``out.dtype`` straight from float32.
    """
    import torch

    key = key_from_seed(seed)
    sample_words = np.asarray(sample_words, dtype=np.int64)
    nthreads = 1 if backend != "numpy" else (threads or default_threads())
    if backend == "numpy":
        xp = _NUMPY
        chunk = chunk or (CPU_CHUNK if nthreads == 1 else CPU_THREADED_CHUNK)
    else:
        xp = _TorchBackend(out.device)
        chunk = chunk or (TORCH_CPU_CHUNK if out.device.type == "cpu" else GPU_CHUNK)
    items = _work_items(layout, chunk)
    length = layout.run_length
    out_np = out.numpy() if backend == "numpy" and out.dtype == torch.float32 else None
    work_arrays = _Workspace()

    def work(item) -> int:
        first, count, offset, n = item
        with np.errstate(all="ignore"):  # discarded central-branch values on tail elements may overflow
            z, word_major = _generate_item(xp, layout, item, sample_words, stream, key, work_arrays)
        lo = first * length + offset
        if backend != "numpy":
            out[lo : lo + count * n].copy_(z)
            return count * n
        dest = out_np[lo : lo + count * n] if out_np is not None else work_arrays.array("f32", count * n, np.float32)
        if word_major is None:
            np.copyto(dest, z, casting="same_kind")
        else:  # z holds word j of every block at z[j * m : (j + 1) * m]
            runs, nb = word_major
            m = runs * nb
            view = dest.reshape(runs, nb, 4)
            for j in range(4):
                np.copyto(view[..., j], z[j * m : (j + 1) * m].reshape(runs, nb), casting="same_kind")
        if out_np is None:
            out[lo : lo + count * n].copy_(torch.from_numpy(dest))
        return count * n

    if nthreads <= 1 or len(items) <= 1:
        for item in items:
            done = work(item)
            if progress:
                progress(done)
        return
    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        for done in pool.map(work, items):
            if progress:
                progress(done)
