"""The numba backend of portable noise: a compiled CPU kernel on a thread pool (``pip install 'flowsched[fast]'``).

The output is cut into pieces of :data:`PIECE` elements, handed out to :func:`flowsched.backends.default_threads`
threads as they free up; the compiled kernel releases the GIL (``nogil=True``). It stages each chunk of
:data:`CHUNK` elements so the compiler can vectorise every loop:

1. Philox4x32-10 into a ``uint32`` word buffer, one block per four words, all arithmetic in ``uint64`` (a
   32 x 32-bit product is exact there; mixing signed and unsigned integers would promote to float64);
2. the central branch for every value, written as float32 to the output;
3. the indices of the tail words (outside ``CENTRAL_FIRST .. CENTRAL_LAST``), then the tail branch on those alone,
   with the exponent/mantissa split of the logarithm read from the float64 bit pattern (spec section 1.6).

The operations and their order are those of ``docs/portable-noise.md``. The kernel is compiled without
``fastmath`` (so no fused multiply-add and no reassociation; ``tests/test_numba_backend.py`` checks the machine code)
and with ``error_model="numpy"`` (no zero-division branch per division, which would block vectorisation; it changes
no value). Nothing is compiled when this module is imported: the first call compiles (a few seconds), and with
``cache=True`` later processes load the compiled code from numba's cache (``NUMBA_CACHE_DIR`` if set, else next to
this file, else the user's cache directory). Where no cache directory is writable, the kernels are compiled in
every process, after one warning.

Python threads rather than numba's ``parallel=True``: on Linux without TBB, numba's parallel loops run on GNU
OpenMP, which terminates a forked child process that runs one (``fork()`` after noise in the parent, then noise in
a ``torch.multiprocessing`` or ``DataLoader`` worker); choosing numba's fork-safe layer would change it for every
other numba user in the process. A thread pool made per call is fork-safe and hands out pieces dynamically, which
also keeps both cores busy when another process slows one down.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import Backend, Job, default_threads
from .constants import (
    AS241_A,
    AS241_B,
    AS241_C,
    AS241_D,
    CENTRAL_FIRST,
    CENTRAL_LAST,
    CONST1,
    CONST2,
    LN2,
    LOG_SERIES,
    MASK32,
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_W0,
    PHILOX_W1,
    SQRT_HALF_BITS,
)

try:
    import numba
except Exception as exc:  # noqa: BLE001 - not installed, or broken (e.g. built for another numpy): say which
    numba = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = ""

__all__ = [
    "BACKEND",
    "CHUNK",
    "MAX_RUNS",
    "PIECE",
    "normal_from_words",
]

#: Output elements per kernel stage: the word, index and float64 scratch buffers stay in a core's L2 cache.
CHUNK = 2**13
#: Output elements per work item handed to a thread (and cast from float32 on its own for other dtypes).
PIECE = 2**17
#: Runs per run table: bounds the table of run starts the kernel reads.
MAX_RUNS = 2**20

_CACHE_WARNED = False


def _jit(**options: Any):
    """``numba.njit`` with ``cache=True``, falling back to no cache (one warning) when numba finds no writable
    cache directory; ``error_model="numpy"``, never ``fastmath``."""

    def decorate(fn):
        global _CACHE_WARNED
        if numba is None:
            return fn
        try:
            return numba.njit(cache=True, error_model="numpy", **options)(fn)
        except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
            if not _CACHE_WARNED:
                _CACHE_WARNED = True
                warnings.warn(
                    f"flowsched: numba cannot cache the portable-noise kernels ({exc}); they are compiled in every "
                    "process (a few seconds). Set NUMBA_CACHE_DIR to a writable directory to cache them.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return numba.njit(cache=False, error_model="numpy", **options)(fn)

    return decorate


_U64 = np.uint64
_M0, _M1, _W0, _W1 = _U64(PHILOX_M0), _U64(PHILOX_M1), _U64(PHILOX_W0), _U64(PHILOX_W1)
_LOW, _S32 = _U64(MASK32), _U64(32)
_A, _B, _C, _D, _LOG = AS241_A, AS241_B, AS241_C, AS241_D, LOG_SERIES
_Q_OFFSET = 0.5 - 2.0**31  # q = (u + 0.5 - 2**31) * 2**-32, exact
_Q_SCALE = 2.0**-32


@_jit(inline="always")
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of one counter (``uint64`` words below ``2**32``)."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _LOW, (p0 >> _S32) ^ c3 ^ k1, p0 & _LOW
        k0 = (k0 + _W0) & _LOW
        k1 = (k1 + _W1) & _LOW
    return c0, c1, c2, c3


@_jit(inline="always")
def _horner8(c, x):
    return ((((((c[0] * x + c[1]) * x + c[2]) * x + c[3]) * x + c[4]) * x + c[5]) * x + c[6]) * x + c[7]


@_jit(inline="always")
def _horner12(c, x):
    acc = c[0] * x + c[1]
    acc = acc * x + c[2]
    acc = acc * x + c[3]
    acc = acc * x + c[4]
    acc = acc * x + c[5]
    acc = acc * x + c[6]
    acc = acc * x + c[7]
    acc = acc * x + c[8]
    acc = acc * x + c[9]
    acc = acc * x + c[10]
    return acc * x + c[11]


@_jit()
def _full_blocks(dst, b, c2, c3, key0, key1):
    """The words of blocks ``b, b + 1, ...`` into ``dst`` (a whole number of blocks): the vectorised loop."""
    for f in range(dst.shape[0] >> 2):
        bb = _U64(b + f)
        x0, x1, x2, x3 = _philox(bb & _LOW, bb >> _S32, c2, c3, key0, key1)
        dst[4 * f] = x0
        dst[4 * f + 1] = x1
        dst[4 * f + 2] = x2
        dst[4 * f + 3] = x3


@_jit()
def _words(u, j0, starts, sample_words, length, k0, k1, stream):
    """Words of output elements ``j0 .. j0 + len(u) - 1`` of a run table (``starts``, ``sample_words``, ``length``)
    into ``u``; each block's four words are computed once."""
    n = u.shape[0]
    key0, key1, c3 = _U64(k0), _U64(k1), _U64(stream)
    k = 0
    j = j0
    while k < n:
        r = j // length
        off = j - r * length
        end = k + min(length - off, n - k)
        i = starts[r] + off
        c2 = _U64(sample_words[r])
        b = i >> 2
        t = k
        lead = i & 3
        if lead != 0:  # the run starts inside a block
            bb = _U64(b)
            x = _philox(bb & _LOW, bb >> _S32, c2, c3, key0, key1)
            for w in range(lead, 4):
                if t < end:
                    u[t] = x[w]
                    t += 1
            b += 1
        full = (end - t) >> 2
        _full_blocks(u[t : t + 4 * full], b, c2, c3, key0, key1)
        t += 4 * full
        if t < end:  # the run ends inside a block
            bb = _U64(b + full)
            x = _philox(bb & _LOW, bb >> _S32, c2, c3, key0, key1)
            for w in range(end - t):
                u[t + w] = x[w]
        j += end - k
        k = end


@_jit()
def _transform(u, out, tail, q_buf, s_buf, e_buf):
    """float32 normals of the words ``u`` into ``out``: the central branch for all, then the tail branch on the
    tail words (operation order of the spec; ``tail``, ``q_buf``, ``s_buf``, ``e_buf`` are scratch of ``len(u)``)."""
    n = u.shape[0]
    for k in range(n):
        q = (np.float64(u[k]) + _Q_OFFSET) * _Q_SCALE
        r = CONST1 - q * q
        out[k] = np.float32((q * _horner8(_A, r)) / _horner8(_B, r))
    nt = 0
    for k in range(n):  # gather the tail: indices and q
        if u[k] < CENTRAL_FIRST or u[k] > CENTRAL_LAST:
            tail[nt] = k
            q_buf[nt] = (np.float64(u[k]) + _Q_OFFSET) * _Q_SCALE
            nt += 1
    if nt == 0:
        return
    qt, s, exps = q_buf[:nt], s_buf[:nt], e_buf[:nt]
    for t in range(nt):
        s[t] = 0.5 - abs(qt[t])  # min(p, 1 - p), exact
    bits = s.view(np.int64)
    for t in range(nt):  # s = m * 2**e with m in [sqrt(1/2), sqrt(2)): spec section 1.6
        e = (bits[t] - SQRT_HALF_BITS) >> 52
        exps[t] = e
        bits[t] = bits[t] - (e << 52)
    m = s  # s's buffer now holds the mantissas m
    for t in range(nt):  # contiguous arrays only: this loop vectorises
        mt = m[t]
        x = (mt - 1.0) / (mt + 1.0)
        neg_log = np.float64(-exps[t]) * LN2 - x * _horner12(_LOG, x * x)  # -L(s) = (-e) * LN2 - x * P
        y = math.sqrt(neg_log) - CONST2
        qt[t] = math.copysign(_horner8(_C, y) / _horner8(_D, y), qt[t])
    for t in range(nt):
        out[tail[t]] = np.float32(qt[t])


@_jit(inline="always")
def _scratch(m):
    """Tail indices, tail q, s (then mantissas) and exponents: scratch for :func:`_transform` of ``m`` words."""
    return np.empty(m, np.int64), np.empty(m, np.float64), np.empty(m, np.float64), np.empty(m, np.int64)


@_jit(nogil=True)
def _fill(out, j0, starts, sample_words, length, k0, k1, stream):
    """Output elements ``j0 .. j0 + len(out) - 1`` of a run table into ``out``, chunk by chunk."""
    n = out.shape[0]
    u = np.empty(min(CHUNK, n), np.uint32)
    tail, q_buf, s_buf, e_buf = _scratch(u.shape[0])
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        _words(u[:m], j0 + lo, starts, sample_words, length, k0, k1, stream)
        _transform(u[:m], out[lo : lo + m], tail, q_buf, s_buf, e_buf)


@_jit(nogil=True)
def _fill_from_words(words, out):
    n = out.shape[0]
    tail, q_buf, s_buf, e_buf = _scratch(min(CHUNK, n))
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        _transform(words[lo : lo + m], out[lo : lo + m], tail, q_buf, s_buf, e_buf)


def _run(tasks: list, threads: int | None) -> Iterator:
    """Run the callables ``tasks`` on a pool of ``threads`` threads made for this call (fork-safe), yielding their
    results in order."""
    nthreads = min(threads or default_threads(), len(tasks))
    if nthreads <= 1:
        for task in tasks:
            yield task()
        return
    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        yield from pool.map(lambda task: task(), tasks)


def normal_from_words(words: np.ndarray, threads: int | None = None) -> np.ndarray:
    """float32 normals of an array of 32-bit words (any integer dtype holding values in ``[0, 2**32)``), by the
    compiled transform on ``threads`` threads."""
    _require()
    words = np.asarray(words)
    flat = np.ascontiguousarray(words.reshape(-1), dtype=np.uint32)
    out = np.empty(flat.shape[0], np.float32)
    tasks = [
        functools.partial(_fill_from_words, flat[lo : lo + PIECE], out[lo : lo + PIECE])
        for lo in range(0, flat.shape[0], PIECE)
    ]
    for _ in _run(tasks, threads):
        pass
    return out.reshape(words.shape)


def _require() -> None:
    if numba is None:
        raise RuntimeError(NumbaBackend().missing())


class NumbaBackend(Backend):
    name = "numba"

    def missing(self) -> str | None:
        if numba is not None:
            return None
        return (
            f"it needs numba, which does not import here ({_IMPORT_ERROR}): pip install 'flowsched[fast]' "
            "(or numba), or use backend='numpy'"
        )

    def version(self) -> str:
        return f"numba {numba.__version__}, {default_threads()} threads"

    def generate(self, job: Job, out: Any) -> None:
        """Pieces of :data:`PIECE` elements on ``job.threads`` threads; for a non-float32 output each piece is
        generated into a float32 buffer and cast on its own (no float32 copy of the whole output)."""
        import torch

        _require()
        layout = job.layout
        length = layout.run_length
        direct = out.dtype == torch.float32
        target = out.numpy() if direct else None
        buffers = threading.local()
        k0, k1 = job.key

        def piece(starts, words, lo: int, j: int, m: int) -> int:
            if direct:
                _fill(target[lo + j : lo + j + m], j, starts, words, length, k0, k1, job.stream)
                return m
            buf = getattr(buffers, "f32", None)
            if buf is None:
                buf = buffers.f32 = np.empty(PIECE, np.float32)
            _fill(buf[:m], j, starts, words, length, k0, k1, job.stream)
            out[lo + j : lo + j + m].copy_(torch.from_numpy(buf[:m]))
            return m

        for first, count in layout.run_groups(MAX_RUNS):
            starts, words = job.run_table(first, count)
            lo, total = first * length, count * length
            tasks = [
                functools.partial(piece, starts, words, lo, j, min(PIECE, total - j)) for j in range(0, total, PIECE)
            ]
            for done in _run(tasks, job.threads):
                job.done(done)
        self.warm = True


BACKEND = NumbaBackend()
