"""A device kernel checked on its device before it is trusted: a few thousand values against the numpy reference.

A compiled GPU kernel can be miscompiled by one compiler version for one GPU: a contracted multiply-add, a
float64 constant turned into float32. Such a kernel still gives plausible noise, so nothing else would notice. Before
``backend="auto"`` first uses a device kernel (Triton) on a device in a process, and whenever ``backend="triton"`` is
asked for, :func:`check` generates the regions of :data:`CASES` with it and compares every bit with the numpy
backend on the CPU. The cases cover each variant the Triton kernel compiles (long runs whole blocks at a time, long
runs element by element, short runs), a block counter that crosses ``2**32``, and the two FMA-sensitive words
(``docs/portable-noise.md``, "Accuracy": the only two of the 2**32 words whose float32 output changes when the
transform's multiply-adds are fused), whose float32 bits the specification fixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import Backend, Job, get
from .layout import Layout

__all__ = [
    "CASES",
    "Case",
    "check",
]


@dataclass(frozen=True)
class Case:
    """One region to generate: elements ``start .. start + length - 1`` of a ``(1, size)`` tensor, or a whole small
    ``shape`` when ``start`` is None (batch position ``b`` is sample ``sample_word + b``)."""

    label: str
    shape: tuple[int, ...]
    seed: int
    sample_word: int = 0
    stream: int = 0
    start: int | None = None
    length: int = 0
    #: ``(offset in the region, float32 bits)`` the specification fixes, checked besides the reference.
    expected: tuple[int, int] | None = None

    def job(self) -> Job:
        if self.start is None:
            ranges = [range(n) for n in self.shape]
        else:
            ranges = [range(1), range(self.start, self.start + self.length)]
        key = (self.seed & 0xFFFFFFFF, self.seed >> 32)
        words = np.arange(self.sample_word, self.sample_word + len(ranges[0]), dtype=np.int64)
        return Job(Layout(self.shape, ranges), key, words, self.stream)


def _fma_case(word: int, bits: int, seed: int, sample_word: int, stream: int, index: int) -> Case:
    """2048 values around counter index ``index`` (where ``word`` is drawn), starting on a block boundary."""
    start = index - index % 4 - 1024
    return Case(f"FMA-sensitive word {word:#010x}", (1, 2**63), seed, sample_word, stream, start, 2048,
                (index - start, bits))


#: The regions every device kernel must reproduce. The FMA cases' ``(seed, sample word, stream, index)`` are
#: ``flowsched.philox.locate_word(word)`` (tests check it), so the kernel meets each word inside a long run.
CASES: tuple[Case, ...] = (
    _fma_case(0x20F8A25E, 0xBF90E904, 7106521602475165645, 657747477, 3438599384, 8573357070610880711),
    _fma_case(0xDF075DA1, 0x3F90E904, 16751726038647824248, 3306424418, 1570908045, 4783148412036726305),
    Case("block counter crossing 2**32", (1, 2**35), 3, start=2**34 - 2048, length=4096),
    Case("a long run starting inside a block", (1, 10_000), 2**64 - 1, 7, 2**32 - 1, start=3, length=2051),
    Case("short runs of a small video latent [2, 3, 2, 5, 6]", (2, 3, 2, 5, 6), 42),
)


def check(backend: Backend, device: Any) -> str | None:
    """``None`` when ``backend`` gives the numpy reference's bits for every case of :data:`CASES` on ``device``
    (float32 output), else one line saying which case and which value differed, or how the kernel failed."""
    import torch

    reference = get("numpy")
    for case in CASES:
        job = case.job()
        want = torch.empty(job.layout.numel, dtype=torch.float32)
        reference.generate(job, want)
        try:
            out = torch.empty(job.layout.numel, dtype=torch.float32, device=device)
            backend.generate(job, out)
            got = out.cpu()
        except Exception as exc:  # noqa: BLE001 - a kernel that does not compile or launch fails the check
            return f"{case.label}: the kernel failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        got_bits, want_bits = got.view(torch.int32).numpy(), want.view(torch.int32).numpy()
        wrong = np.flatnonzero(got_bits != want_bits)
        if wrong.size:
            i = int(wrong[0])
            return (
                f"{case.label}: {wrong.size} of {want_bits.size} values differ, the first at offset {i} "
                f"(bits {int(got_bits[i]) & 0xFFFFFFFF:#010x}, expected {int(want_bits[i]) & 0xFFFFFFFF:#010x})"
            )
        if case.expected is not None:
            offset, bits = case.expected
            if int(want_bits[offset]) & 0xFFFFFFFF != bits:  # pragma: no cover - the numpy reference itself is wrong
                return f"{case.label}: the numpy reference gives {int(want_bits[offset]) & 0xFFFFFFFF:#010x}"
    return None
