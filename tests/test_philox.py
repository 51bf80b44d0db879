"""Philox4x32-10 and the exact-operation AS241 transform: known answers, backends bit for bit, accuracy."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import philox
from flowsched.backends import torch_ops

# Random123's known-answer vectors (kat_vectors, philox4x32 10 rounds), as quoted in the issue.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]

words32 = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_known_answers_scalar(counter, key, expected):
    assert philox.philox4x32_10(counter, key) == expected


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_known_answers_numpy_and_torch(counter, key, expected):
    got_np = philox.philox_numpy(*(np.array([c]) for c in counter), key)
    assert tuple(int(w) for w in got_np[0]) == expected
    got_t = philox.philox_torch(*(torch.tensor([c]) for c in counter), key)
    assert tuple(int(w) for w in got_t[0]) == expected


def _mulhilo_reference(a: int, b: int) -> tuple[int, int]:
    product = a * b
    return product >> 32, product & 0xFFFFFFFF


@given(st.lists(words32, min_size=1, max_size=50), st.sampled_from([philox.PHILOX_M0, philox.PHILOX_M1, 0xFFFFFFFF, 1]))
def test_torch_mulhilo_is_exact(xs, m):
    hi, lo = torch_ops.mulhilo(torch.tensor(xs, dtype=torch.int64), m)
    assert [(int(h), int(l)) for h, l in zip(hi, lo)] == [_mulhilo_reference(x, m) for x in xs]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(words32, words32, words32, words32), min_size=1, max_size=40), words32, words32)
def test_backends_match_scalar_on_random_counters(counters, k0, k1):
    cols = list(zip(*counters))
    expected = [philox.philox4x32_10(c, (k0, k1)) for c in counters]
    got_np = philox.philox_numpy(*(np.array(c, dtype=np.uint64) for c in cols), (k0, k1))
    got_t = philox.philox_torch(*(torch.tensor(c, dtype=torch.int64) for c in cols), (k0, k1))
    assert [tuple(int(w) for w in row) for row in got_np] == expected
    assert [tuple(int(w) for w in row) for row in got_t] == expected


def test_key_and_counter_layout():
    seed = 2**32 * 7 + 5
    assert philox.key_from_seed(seed) == (5, 7)
    # block 2**32 + 3 of sample 9, stream 2: counter (3, 1, 9, 2); index 4 * block + 1 takes word 1.
    block = 2**32 + 3
    expected = philox.philox4x32_10((3, 1, 9, 2), (5, 7))[1]
    value = philox.normal_scalar(seed, 9, 2, 4 * block + 1)
    assert value == philox.normal_from_word(expected)


# -- the transform -------------------------------------------------------------------------------------------


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@given(st.floats(1e-300, 1e300))
def test_exact_log_close_to_math_log(x):
    assert math.isclose(philox.exact_log(x), math.log(x), rel_tol=4e-16, abs_tol=4e-16)


def test_exact_log_exact_at_powers_of_two():
    for e in range(-60, 60):
        assert philox.exact_log(2.0**e) == e * philox.LN2


def test_log_series_and_constants():
    assert philox.LN2 == math.log(2)
    assert philox.SQRT_HALF == math.sqrt(0.5)
    assert philox.LOG_SERIES[-1] == 2.0 and philox.LOG_SERIES[0] == 2.0 / 23


def test_ppnd16_against_scipy_ndtri():
    from scipy.special import ndtri

    p = np.concatenate([np.linspace(1e-12, 1 - 1e-12, 20001), np.logspace(-300, -1, 500)])
    ours = np.array([philox.ppnd16(float(x)) for x in p])
    ref = ndtri(p)
    # AS241 is accurate to about 1e-16 relative; ndtri (Cephes) to a few ulps.
    np.testing.assert_allclose(ours, ref, rtol=2e-15, atol=1e-300)
    assert philox.ppnd16(0.5) == 0.0


def test_ppnd16_against_mpmath_in_the_tails():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for p in (2.0**-33, 1e-9, 3e-5, 0.01, 0.075, 0.0749, 0.5 - 2**-20, 0.99, 1 - 2.0**-33):
        exact = float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(p) - 1))
        assert math.isclose(philox.ppnd16(p), exact, rel_tol=1e-15), p


def test_far_tail_branch_is_unreachable_for_words():
    # p >= 2**-33 keeps r = sqrt(-log p) below AS241's split at 5, so only the first two branches run.
    assert math.sqrt(-math.log(0.5 * 2.0**-32)) < philox.SPLIT2


# Words at and around the branch boundaries plus extremes: |q| <= 0.425 switches at u = 2**31 -+ 0.425 * 2**32.
EDGE_WORDS = sorted(
    {0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1}
    | {w + d for w in (322122547, 3972844748) for d in range(-3, 4)}
    | {2**k for k in range(32)}
)


def test_vectorised_transform_matches_scalar_on_edges_and_random_words():
    rng = np.random.default_rng(11)
    words = np.concatenate([np.array(EDGE_WORDS, dtype=np.uint64), rng.integers(0, 2**32, 3000, dtype=np.uint64)])
    expected = np.array([philox.normal_from_word(int(w)) for w in words], dtype=np.float32)
    got_np = philox.normal_from_words_numpy(words)
    got_t = philox.normal_from_words_torch(torch.from_numpy(words.astype(np.int64)))
    assert np.array_equal(got_np, expected)
    assert np.array_equal(got_t.numpy(), expected)


def test_transform_is_odd_and_monotone():
    rng = np.random.default_rng(5)
    u = np.sort(rng.integers(0, 2**32, 20000, dtype=np.uint64))
    z = philox.normal_from_words_numpy(u)
    assert np.all(np.diff(z) >= 0)
    mirror = philox.normal_from_words_numpy(np.uint64(2**32 - 1) - u)
    assert np.array_equal(mirror, -z)  # p and 1 - p are exact mirrors


def test_branch_boundary_matches_float64_comparison():
    # The central branch is taken exactly when |q| <= 0.425 in float64.
    for w in EDGE_WORDS:
        q = (w + 0.5) * 2.0**-32 - 0.5
        central = abs(q) <= 0.425
        z = philox.normal_from_word(w)
        r = 0.180625 - q * q
        central_value = _f32(q * philox._horner(philox.AS241_A, r) / philox._horner(philox.AS241_B, r))
        if central:
            assert z == central_value


# -- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counter, key, exc, match",
    [
        ((0, 0, 0), (0, 0), ValueError, "4 counter words"),
        ((0, 0, 0, 2**32), (0, 0), ValueError, "32-bit"),
        ((0, 0, 0, -1), (0, 0), ValueError, r"counter\[3\]"),
        ((0, 0, 0, 0), (0, 1.5), TypeError, r"key\[1\]"),
    ],
)
def test_scalar_philox_bad_input(counter, key, exc, match):
    with pytest.raises(exc, match=match):
        philox.philox4x32_10(counter, key)


@pytest.mark.parametrize(
    "seed, exc", [(-1, ValueError), (2**64, ValueError), (1.0, TypeError), (True, TypeError), ("7", TypeError)]
)
def test_seed_checks(seed, exc):
    with pytest.raises(exc, match=r"seed .*\[0, 2\*\*64\)"):
        philox.key_from_seed(seed)


@pytest.mark.parametrize("value, exc", [(-1, ValueError), (2**32, ValueError), (0.5, TypeError)])
def test_word_checks(value, exc):
    with pytest.raises(exc, match="stream"):
        philox.normal_scalar(0, 0, value, 0)


def test_default_threads_env(monkeypatch):
    monkeypatch.setenv("FLOWSCHED_THREADS", "3")
    assert philox.default_threads() == 3
    monkeypatch.setenv("FLOWSCHED_THREADS", "many")
    with pytest.raises(ValueError, match="FLOWSCHED_THREADS"):
        philox.default_threads()
