"""Which elements a portable-noise call generates, cut into *runs* of consecutive counter indices.

Element numbering is ``docs/portable-noise.md`` section 1.3: within one sample, a 4-D sample ``[C, T, H, W]`` is
numbered frame-major and every other rank in C order. A box ``region`` of a tensor ``[B, *sample]`` is cut into runs
that are contiguous both in the output (C order) and in that numbering, so each run is a stretch of consecutive
Philox blocks. Backends receive the runs, never the shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Layout",
    "counter_order",
]


def counter_order(sample_shape: Sequence[int]) -> tuple[int, ...]:
    """The axes of one sample in the order that numbers its elements (outermost first).

    A 4-D sample ``[C, T, H, W]`` is numbered frame-major, ``(T, C, H, W)``, so that adding frames never changes
    earlier ones; every other rank (an image ``[C, H, W]``, a token sequence, ...) is numbered in C order.
    An image ``[C, H, W]`` thus gets the same values as the video ``[C, 1, H, W]``.
    """
    k = len(sample_shape)
    return (1, 0, 2, 3) if k == 4 else tuple(range(k))


class Layout:
    """A box ``region`` of a tensor ``[B, *sample]`` cut into runs of equal length :attr:`run_length`.

    ``ranges`` holds one ``range`` per axis (batch first), already checked against ``shape``. Run ``r`` fills output
    elements ``r * run_length .. (r + 1) * run_length - 1`` (flat, C order) with the consecutive counter indices that
    start at its :meth:`runs` start, in the sample of its batch position.
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
        """(batch positions, counter-order start index) of runs ``first .. first + count - 1``, both ``int64``."""
        dims = self.counts[: 1 + len(self.outer_axes)]
        idx = np.unravel_index(np.arange(first, first + count, dtype=np.int64), dims)
        start = np.full(count, self.run_base, dtype=np.int64)
        for j, axis in enumerate(self.outer_axes, start=1):
            rng = self.ranges[axis]
            start += (rng.start + rng.step * idx[j]) * self.strides[axis - 1]
        rng = self.ranges[0]
        return rng.start + rng.step * idx[0], start

    def work_items(self, chunk: int) -> list[tuple[int, int, int, int]]:
        """``(first run, number of runs, offset in run, length)`` pieces of about ``chunk`` elements, in output
        order: several whole runs, or one piece of a run longer than ``chunk`` (cut at whole blocks where possible).
        Piece ``(first, count, offset, length)`` fills output elements ``first * run_length + offset`` onwards."""
        length = self.run_length
        items = []
        if length >= chunk:
            pieces = -(-length // chunk)
            size = -(-length // pieces)
            size += -size % 4  # whole blocks where possible
            for r in range(self.num_runs):
                for off in range(0, length, size):
                    items.append((r, 1, off, min(size, length - off)))
        else:
            per = max(1, chunk // length)
            for r in range(0, self.num_runs, per):
                items.append((r, min(per, self.num_runs - r), 0, length))
        return items

    def run_groups(self, max_runs: int) -> list[tuple[int, int]]:
        """``(first run, number of runs)`` groups of at most ``max_runs`` runs, in output order: a kernel that reads a
        table of run starts gets at most ``max_runs`` entries at a time, so the table stays a fixed size."""
        return [(r, min(max_runs, self.num_runs - r)) for r in range(0, self.num_runs, max_runs)]
