"""All 2**32 words through the compiled (numba) transform against the numpy transform, bit for bit (`make spec-sweep`).

The test suite checks chosen and random words; this checks every word a portable-noise element can take. It needs
the `fast` extra (numba). About a minute on 2 cores, most of it in the numpy transform. Exit status 1 on any
difference, with the first differing words printed.

    python tests/spec_sweep.py                      # every word
    python tests/spec_sweep.py --stop 0x1000000     # words 0 .. 2**24 - 1 only
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from flowsched.backends import default_threads, numba_cpu, numpy_ops

BLOCK = 2**22  # words per task
PIECE = 2**16  # words per numpy pass: the float64 scratch stays in cache

_local = threading.local()


def numpy_block(words: np.ndarray) -> np.ndarray:
    work = getattr(_local, "work", None)
    if work is None:
        work = _local.work = numpy_ops.Workspace()
    out = np.empty(words.shape[0], np.float32)
    with np.errstate(all="ignore"):  # the central formula is also evaluated (and discarded) on tail words
        for lo in range(0, words.shape[0], PIECE):
            piece = words[lo : lo + PIECE]
            q = numpy_ops.to_q(piece, work.array("q", piece.shape[0]))
            out[lo : lo + piece.shape[0]] = numpy_ops.normal_from_q(q, work)
    return out


def check(start: int, stop: int) -> tuple[int, list[int]]:
    words = np.arange(start, stop, dtype=np.uint32)
    compiled = numba_cpu.normal_from_words(words, threads=1)
    reference = numpy_block(words)
    differ = np.flatnonzero(compiled.view(np.uint32) != reference.view(np.uint32))
    return int(differ.shape[0]), [start + int(i) for i in differ[:5]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", type=lambda s: int(s, 0), default=0, help="first word (default 0)")
    ap.add_argument("--stop", type=lambda s: int(s, 0), default=2**32, help="one past the last word (default 2**32)")
    ap.add_argument("--threads", type=int, default=default_threads(), help="worker threads (default: the cores)")
    args = ap.parse_args()
    if not 0 <= args.start < args.stop <= 2**32:
        print(f"spec_sweep: error: need 0 <= --start < --stop <= 2**32, got {args.start} and {args.stop}",
              file=sys.stderr)
        return 2
    if numba_cpu.numba is None:
        print(f"spec_sweep: error: {numba_cpu.BACKEND.missing()}", file=sys.stderr)
        return 2
    numba_cpu.normal_from_words(np.arange(8, dtype=np.uint32))  # compile (or load) before timing
    tasks = [(lo, min(lo + BLOCK, args.stop)) for lo in range(args.start, args.stop, BLOCK)]
    total, first, done = 0, [], 0
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.threads)) as pool:
        for (lo, hi), (count, examples) in zip(tasks, pool.map(lambda t: check(*t), tasks), strict=True):
            total += count
            first += examples[: 5 - len(first)]
            done += hi - lo
            if done % 2**28 == 0 or hi == args.stop:
                print(f"  {done:>10d} words checked, {total} differ ({time.perf_counter() - began:.0f} s)", flush=True)
    seconds = time.perf_counter() - began
    print(f"words {args.start:#x} .. {args.stop - 1:#x}: {args.stop - args.start} words, {total} differ between the "
          f"numba and the numpy transform; {seconds:.1f} s on {args.threads} threads")
    if total:
        print("first differing words: " + ", ".join(f"{w:#010x}" for w in first))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
