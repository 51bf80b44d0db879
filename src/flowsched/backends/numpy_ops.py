"""The numpy backend of portable noise: whole-array ufuncs on cache-sized chunks, on a thread pool.

Always available; the fallback when numba is not installed. Philox4x32-10 runs on ``uint64`` arrays (a 32 x 32-bit
product is exact in 64 bits), the transform on ``float64`` arrays in the operation order of the specification
(``docs/portable-noise.md``), using the exact rewrites of its section 1.6. Every full-size step writes into
per-thread buffers reused across chunks, so a chunk's data stays in a core's cache; numpy releases the GIL inside
each call, so threads overlap (about 1.2-1.5x on 2 cores: each call takes the GIL back).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import Backend, Job, default_threads
from .constants import (
    AS241_A,
    AS241_B,
    AS241_C,
    AS241_D,
    CONST1,
    CONST2,
    LN2,
    LOG_SERIES,
    MASK32,
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_W0,
    PHILOX_W1,
    R_CENTRAL_MIN,
    ROUNDS,
    SQRT_HALF_BITS,
)
from .layout import Layout

__all__ = [
    "BACKEND",
    "CPU_CHUNK",
    "CPU_THREADED_CHUNK",
    "counters",
    "normal_from_q",
    "normal_from_words",
    "philox_numpy",
    "philox_rounds",
    "tail_values",
    "to_q",
]

#: Elements per work item: small enough that the float64 scratch stays in a core's L2 cache.
CPU_CHUNK = 2**16
#: Elements per work item with several threads: twice as many numpy calls per GIL hand-over pay for the extra
#: cache misses (measured: 2 threads about 12% faster than with CPU_CHUNK, 1 thread about 10% slower).
CPU_THREADED_CHUNK = 2**17


def philox_numpy(c0, c1, c2, c3, key: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Philox4x32-10 on numpy integer arrays holding 32-bit words (broadcast together); returns ``[..., 4]``
    ``uint32`` words. The 64-bit products are exact in ``uint64``; all work arrays are contiguous ``uint64``.
    """
    x = philox_rounds(c0, c1, c2, c3, key, Workspace())
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


def philox_rounds(c0, c1, c2, c3, key: tuple[int, int], work: Workspace) -> list[np.ndarray]:
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
        for buf, a in zip((x0, x1, x2, x3), arrays, strict=True):
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


def counters(blk0: np.ndarray, nb: int, sample_words: np.ndarray, stream: int, work: Workspace):
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


def _horner(coefficients: Sequence[float], x: np.ndarray, out: np.ndarray) -> np.ndarray:
    mul, add = np.multiply, np.add
    mul(x, coefficients[0], out)
    add(out, coefficients[1], out)
    for c in coefficients[2:]:
        mul(out, x, out)
        add(out, c, out)
    return out


def normal_from_q(q: np.ndarray, work: Workspace) -> np.ndarray:
    """float64 ``z`` for float64 ``q = p - 0.5`` (1-D), the operations and their order are those of
    :func:`flowsched.philox.ppnd16`. Returns a ``work`` buffer; ``q`` is overwritten (it holds ``B(r)`` at the end).

    Every full-length step writes into one of three buffers (``q``, ``r``, ``num``), so a chunk's float64 data
    stays in a core's cache; the tail branch runs on the gathered tail elements only.
    """
    n = q.shape[0]
    r, num = work.array("r", n), work.array("num", n)
    np.multiply(q, q, r)
    np.subtract(CONST1, r, r)  # r = 0.180625 - q*q
    _horner(AS241_A, r, num)
    np.multiply(num, q, num)  # q * A(r)
    tail = np.flatnonzero(np.less(r, R_CENTRAL_MIN, work.array("tail", n, np.bool_)))  # |q| > 0.425
    qt = np.take(q, tail, out=work.array("tail_q", tail.shape[0]))
    np.divide(num, _horner(AS241_B, r, q), num)
    if tail.shape[0]:
        num[tail] = tail_values(qt, work)
    return num


def tail_values(qt: np.ndarray, work: Workspace) -> np.ndarray:
    """The tail branch of :func:`flowsched.philox.ppnd16` for the tail elements' ``q`` (rewrites of section 1.6).

    The exponent/mantissa split of ``s = 0.5 - |q|`` (a positive normal float64) comes from its bits: with
    ``d = bits(s) - bits(SQRT_HALF)``, ``e = d >> 52`` and ``m = s * 2**-e`` (``bits(s) - (e << 52)``) is the
    ``m, e`` of :func:`flowsched.philox.exact_log` after its ``m < SQRT_HALF`` step.
    ``-L(s)`` is ``(-e) * LN2 - t * P``.
    """
    t = qt.shape[0]
    s = np.abs(qt, out=work.array("tail_s", t))
    np.subtract(0.5, s, s)  # min(p, 1 - p), exact
    bits = s.view(np.int64)
    e = np.subtract(bits, SQRT_HALF_BITS, out=work.array("tail_e", t, np.int64))
    np.right_shift(e, 52, e)
    m = np.left_shift(e, 52, out=work.array("tail_m", t, np.int64))
    np.subtract(bits, m, m)
    m = m.view(np.float64)
    np.negative(e, e)
    neg_log = np.multiply(e, LN2, out=s, dtype=np.float64)  # (-e) * LN2
    x = np.subtract(m, 1.0, out=work.array("tail_x", t))
    np.add(m, 1.0, m)
    np.divide(x, m, x)  # (m - 1) / (m + 1)
    series = _horner(LOG_SERIES, np.multiply(x, x, m), work.array("tail_p", t))
    np.multiply(series, x, series)
    np.subtract(neg_log, series, neg_log)  # -L(s)
    r = np.sqrt(neg_log, neg_log)
    np.subtract(r, CONST2, r)
    num = _horner(AS241_C, r, series)
    np.divide(num, _horner(AS241_D, r, x), num)
    return np.copysign(num, qt, num)


def to_q(words: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float64 ``q = p - 0.5 = (u + 0.5 - 2**31) * 2**-32`` of 32-bit words into ``out``: both steps exact."""
    np.add(words, 0.5 - 2.0**31, out=out.reshape(words.shape), dtype=np.float64)
    out *= 2.0**-32
    return out


def normal_from_words(words: np.ndarray) -> np.ndarray:
    """float32 normals of an array of 32-bit words (any integer dtype holding values in ``[0, 2**32)``)."""
    words = np.asarray(words)
    q = to_q(words.reshape(-1), np.empty(words.size))
    with np.errstate(all="ignore"):  # the central formula is also evaluated (and discarded) on tail elements
        return normal_from_q(q, Workspace()).astype(np.float32).reshape(words.shape)


def item_values(layout: Layout, item, sample_words: np.ndarray, stream: int, key: tuple[int, int], work: Workspace):
    """float64 values of one work item (see :meth:`Layout.work_items`), and the ``(R, nb)`` shape when they come
    word-major (all words 0 of the item's ``R * nb`` blocks, then words 1, ...) instead of in element order."""
    first, count, offset, length = item
    batch_pos, starts = layout.runs(first, count)
    starts = starts + offset
    blk0, shift = starts >> 2, starts & 3
    uniform = bool(np.all(shift == shift[0]))
    lead = int(shift[0]) if uniform else 3
    nb = (lead + length + 3) >> 2
    n = count * length
    if uniform and lead == 0 and length == 4 * nb:  # whole blocks: the common case
        # Word-major: each word array converts to q contiguously; the strided interleave happens once, in the
        # float32 output copy. Exact: q = (u + 0.5 - 2**31) * 2**-32 (u < 2**32, so the int64 view is u).
        x = philox_rounds(*counters(blk0, nb, sample_words[batch_pos], stream, work), key, work)
        q = work.array("q", n)
        m = count * nb
        for j in range(4):
            np.add(x[j].reshape(-1).view(np.int64), 0.5 - 2.0**31, q[j * m : (j + 1) * m])
        np.multiply(q, 2.0**-32, q)
        return normal_from_q(q, work), (count, nb)
    # Runs that start or end inside a block: whole blocks, then the run's words picked out of them.
    words = philox_numpy(*counters(blk0, nb, sample_words[batch_pos], stream, Workspace()), key)
    words = words.reshape(count, nb * 4)
    if uniform:
        words = words[:, lead : lead + length]
    else:
        words = np.take_along_axis(words, shift[:, None] + np.arange(length, dtype=np.int64)[None, :], axis=1)
    return normal_from_q(to_q(words, work.array("q", n)), work), None


class NumpyBackend(Backend):
    name = "numpy"

    def version(self) -> str:
        return f"numpy {np.__version__}, {default_threads()} threads"

    def generate(self, job: Job, out: Any) -> None:
        """Chunks of about ``job.chunk`` elements on ``job.threads`` threads, each cast from float32 to ``out``'s
        dtype on its own (so no float32 copy of a whole non-float32 output is made)."""
        import torch

        layout = job.layout
        nthreads = job.threads or default_threads()
        items = layout.work_items(job.chunk or (CPU_CHUNK if nthreads == 1 else CPU_THREADED_CHUNK))
        length = layout.run_length
        out_np = out.numpy() if out.dtype == torch.float32 else None
        sample_words = np.asarray(job.sample_words, dtype=np.int64)
        work_arrays = Workspace()

        def work(item) -> int:
            first, count, offset, n = item
            with np.errstate(all="ignore"):  # discarded central-branch values on tail elements may overflow
                z, word_major = item_values(layout, item, sample_words, job.stream, job.key, work_arrays)
            lo = first * length + offset
            if out_np is not None:
                dest = out_np[lo : lo + count * n]
            else:
                dest = work_arrays.array("f32", count * n, np.float32)
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
                job.done(work(item))
            return
        with ThreadPoolExecutor(max_workers=nthreads) as pool:
            for done in pool.map(work, items):
                job.done(done)


BACKEND = NumpyBackend()


class Workspace(threading.local):
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
