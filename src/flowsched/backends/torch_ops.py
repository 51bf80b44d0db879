"""The torch backend of portable noise: torch operations on any device, in chunks.

Philox4x32-10 runs on ``int64`` tensors (torch has no unsigned 32 x 32 -> 64-bit multiply, so one factor is split
into 16-bit halves and every product stays below ``2**49``); the transform runs on ``float64`` tensors in the
operation order of the specification (``docs/portable-noise.md``). Each operation is one kernel launch, so on a GPU
this backend costs milliseconds where the fused Triton kernel costs a fraction of one; it is the fallback for
devices without Triton and a cross-check of the others. torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import Backend, Job
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
    SQRT_HALF,
)

__all__ = [
    "BACKEND",
    "CPU_CHUNK",
    "DEVICE_CHUNK",
    "mulhilo",
    "normal_from_q",
    "normal_from_words_torch",
    "philox_torch",
    "to_q",
]

#: Elements per chunk on the CPU and on other devices: bounds the int64/float64 temporaries.
CPU_CHUNK = 2**18
DEVICE_CHUNK = 2**22


def mulhilo(x, m: int):
    """High and low 32-bit words of ``x * m`` for int64 tensors ``x < 2**32``: ``m`` is split into 16-bit halves so
    every int64 product stays below ``2**49`` (exact on every device; spec section 1.6)."""
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
        hi0, lo0 = mulhilo(x0, PHILOX_M0)
        hi1, lo1 = mulhilo(x2, PHILOX_M1)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    shape = torch.broadcast_shapes(x0.shape, x1.shape, x2.shape, x3.shape)
    return torch.stack([x.expand(shape) for x in (x0, x1, x2, x3)], dim=-1)


def _horner(coefficients: Sequence[float], x, out):
    import torch

    torch.mul(x, coefficients[0], out=out)
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= x
        out += c
    return out


def _tail_magnitude(s):
    """|z| of the tail branch from ``s = min(p, 1 - p)`` (operation order of :func:`flowsched.philox.ppnd16`)."""
    import torch

    m, e = torch.frexp(s)
    e = e.to(torch.float64)
    small = m < SQRT_HALF
    m = torch.where(small, m + m, m)
    e = torch.where(small, e - 1.0, e)
    t = m - 1.0
    m += 1.0
    t /= m  # t = (m - 1) / (m + 1)
    lg = _horner(LOG_SERIES, torch.mul(t, t, out=m), s)  # the series in s2 = t*t
    lg *= t
    e *= LN2
    e += lg  # ln s
    e *= -1.0
    r = torch.sqrt(e, out=e)
    r -= CONST2
    num = _horner(AS241_C, r, lg)
    den = _horner(AS241_D, r, t)
    num /= den
    return num


def normal_from_q(q):
    """float64 ``z`` for a 1-D float64 tensor ``q = p - 0.5`` (operation order of :func:`flowsched.philox.ppnd16`)."""
    import torch

    r, num, den = (torch.empty_like(q) for _ in range(3))
    torch.mul(q, q, out=r)
    r *= -1.0
    r += CONST1  # (-(q*q)) + 0.180625 rounds exactly like 0.180625 - q*q: negation is exact
    _horner(AS241_A, r, num)
    _horner(AS241_B, r, den)
    num *= q
    num /= den
    tail = torch.nonzero(r < R_CENTRAL_MIN).reshape(-1)  # the same as |q| > 0.425 (see R_CENTRAL_MIN)
    if tail.shape[0]:
        qt = q[tail]
        s = torch.abs(qt)
        s *= -1.0
        s += 0.5  # min(p, 1 - p) = 0.5 - |q|, exact
        # AS241 negates z when q < 0; copysign is the same exact operation.
        num[tail] = torch.copysign(_tail_magnitude(s), qt)
    return num


def to_q(words):
    """float64 ``q = (u + 0.5 - 2**31) * 2**-32`` of an int64 tensor of 32-bit words, flattened: exact."""
    import torch

    q = words.reshape(-1).to(torch.float64)  # exact below 2**53
    q += 0.5 - 2.0**31
    q *= 2.0**-32
    return q


def normal_from_words_torch(words, device: Any = None):
    """float32 normals for a tensor of 32-bit words held in int64 (any device)."""
    import torch

    words = torch.as_tensor(words, dtype=torch.int64, device=device)
    return normal_from_q(to_q(words)).to(torch.float32).reshape(words.shape)


def _run_words(starts: np.ndarray, sample_words: np.ndarray, length: int, stream: int, key, device):
    """int64 words of runs of ``length`` consecutive counter indices from ``starts`` (``[R, length]``)."""
    import torch

    blk0, shift = starts >> 2, starts & 3
    uniform = bool(np.all(shift == shift[0]))
    lead = int(shift[0]) if uniform else 3
    nb = (lead + length + 3) >> 2
    base = torch.from_numpy(blk0).to(device)
    blk = base[:, None] + torch.arange(nb, dtype=torch.int64, device=device)[None, :]
    c2 = torch.from_numpy(sample_words).to(device)[:, None]
    c3 = torch.tensor(stream, dtype=torch.int64, device=device)  # keep every operand on the device
    words = philox_torch(blk & MASK32, blk >> 32, c2, c3, key).reshape(blk.shape[0], nb * 4)
    if uniform:
        return words[:, lead : lead + length]
    cols = torch.from_numpy(shift[:, None] + np.arange(length, dtype=np.int64)[None, :]).to(device)
    return torch.gather(words, 1, cols)


class TorchBackend(Backend):
    name = "torch"
    host = False
    device_types = None

    def version(self) -> str:
        import torch

        return f"torch {torch.__version__}"

    def generate(self, job: Job, out: Any) -> None:
        """Chunks of about ``job.chunk`` elements (default :data:`CPU_CHUNK` on the CPU, :data:`DEVICE_CHUNK`
        elsewhere), one after another on ``out``'s device."""
        import torch

        layout = job.layout
        chunk = job.chunk or (CPU_CHUNK if out.device.type == "cpu" else DEVICE_CHUNK)
        length = layout.run_length
        for first, count, offset, n in layout.work_items(chunk):
            starts, words = job.run_table(first, count)
            w = _run_words(starts + offset, words, n, job.stream, job.key, out.device)
            lo = first * length + offset
            out[lo : lo + count * n].copy_(normal_from_q(to_q(w)).to(torch.float32))
            job.done(count * n)


BACKEND = TorchBackend()
