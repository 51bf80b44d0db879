"""The numba backend: its transform against the numpy one word for word, no fused multiply-add in its machine code,
and the fallback when no compile cache directory is writable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowsched import philox
from flowsched.backends import numba_cpu, numpy_ops

numba = pytest.importorskip("numba")

EDGE_WORDS = sorted(
    {0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1, 0x20F8A25E, 0xDF075DA1}
    | {w + d for w in (322122547, 3972844748) for d in range(-3, 4)}
    | {2**k for k in range(32)}
)


def test_transform_matches_numpy_on_edges_tails_and_random_words():
    rng = np.random.default_rng(12)
    words = np.concatenate([
        np.array(EDGE_WORDS, dtype=np.uint64),
        np.arange(2**16, dtype=np.uint64),  # the far tail, where the logarithm works hardest
        np.uint64(2**32 - 1) - np.arange(2**16, dtype=np.uint64),
        rng.integers(0, 2**32, 500_000, dtype=np.uint64),
    ])
    ours = numba_cpu.normal_from_words(words)
    assert np.array_equal(ours.view(np.uint32), numpy_ops.normal_from_words(words).view(np.uint32))
    # and against the scalar reference on the edges
    assert [float(x) for x in ours[: len(EDGE_WORDS)]] == [philox.normal_from_word(w) for w in EDGE_WORDS]


def test_transform_any_length_and_threads():
    words = np.random.default_rng(3).integers(0, 2**32, 10_001, dtype=np.uint64)
    expected = numpy_ops.normal_from_words(words)
    for n in (0, 1, 7, 8191, 8193, 10_001):
        for threads in (1, 3):
            assert np.array_equal(numba_cpu.normal_from_words(words[:n], threads=threads), expected[:n])


def _fresh_asm(dispatcher, *args) -> str:
    """Machine code of a fresh compile of ``dispatcher``'s function with its own options (a kernel loaded from
    numba's cache cannot be inspected)."""
    options = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**options)(dispatcher.py_func)
    fresh(*args)
    return "\n".join(fresh.inspect_asm().values())


def test_no_fused_multiply_add_in_the_kernels():
    # Fusing a*b + c changes the float32 output of two words; the kernels must keep every * and + rounded.
    for dispatcher in (numba_cpu._transform, numba_cpu._words):
        assert not dispatcher.targetoptions.get("fastmath"), dispatcher
        assert dispatcher.targetoptions.get("error_model") == "numpy"
    n = 64
    u = np.arange(n, dtype=np.uint32) * np.uint32(67_108_859)
    asm = _fresh_asm(numba_cpu._transform, u, np.empty(n, np.float32), *numba_cpu._scratch(n))
    assert re.search(r"\bv?divpd\b|\bv?divsd\b", asm), "not the transform's code"
    assert not re.findall(r"\bv?f(n?m(add|sub))\w*", asm)


@pytest.mark.slow
def test_unwritable_cache_still_works_with_one_warning(tmp_path):
    # Only the user-provided locator, pointed below a regular file: numba finds no cache directory at all.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator",
               NUMBA_CACHE_DIR=str(blocker / "cache"))
    code = (
        "import warnings, torch\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    from flowsched.noise import portable_noise\n"
        "    x = portable_noise((2, 3, 4, 5), 7, backend='numba')\n"
        "    y = portable_noise((2, 3, 4, 5), 7, backend='numba')\n"
        "ours = [str(w.message) for w in caught if 'flowsched' in str(w.message)]\n"
        "assert len(ours) == 1 and 'cannot cache' in ours[0] and 'NUMBA_CACHE_DIR' in ours[0], ours\n"
        "assert torch.equal(x, portable_noise((2, 3, 4, 5), 7, backend='numpy')) and torch.equal(x, y)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_spec_sweep_script_on_a_range_across_the_branch_boundary():
    # `make spec-sweep` runs tests/spec_sweep.py on all 2**32 words; here a range around the first central word
    sweep = Path(__file__).resolve().parent / "spec_sweep.py"
    result = subprocess.run([sys.executable, str(sweep), "--start", "0x13300000", "--stop", "0x13340000"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "262144 words, 0 differ" in result.stdout
    bad = subprocess.run([sys.executable, str(sweep), "--start", "5", "--stop", "5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--start < --stop" in bad.stderr
