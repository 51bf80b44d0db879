"""The time shift's one home (flowsched.shift): each form against an independent expectation (the formula in exact
rational arithmetic, torch's own float32 evaluation, the inverse property), its bad-input handling, and a scan of the
package that fails when the shift is written anywhere else."""

from __future__ import annotations

import ast
import math
import pathlib
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flowsched
from flowsched.shift import (
    alpha_from_mu,
    time_shift,
    time_shift_inverse,
    time_shift_mu,
    time_shift_peer,
)

ALPHAS = [0.05, 0.5, 1.0, 1.15, 3.0, 5.0, 7.3, 12.0, 1e3]
GRID = np.concatenate([np.linspace(0.0, 1.0, 101), [1e-9, 1e-4, 0.999, 1.0 - 1e-9]])


def _exact(t: float, alpha: float) -> float:
    """alpha t / (1 + (alpha - 1) t) in exact rational arithmetic, rounded once to float64."""
    a, x = Fraction(alpha), Fraction(t)
    return float(a * x / (1 + (a - 1) * x))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_time_shift_is_the_formula_with_exact_ends(alpha):
    got = time_shift(GRID, alpha)
    want = np.array([_exact(t, alpha) for t in GRID])
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)  # a few float64 roundings
    assert got[0] == 0.0 and got[100] == 1.0 and got.dtype == np.float64
    assert float(time_shift(1.0, alpha)) == 1.0 and float(time_shift(0.0, alpha)) == 0.0


def test_the_peer_order_can_miss_one_where_the_exact_form_cannot():
    """Why flowsched's own values use t / (t + (1 - t) / alpha): the peers' order need not give 1 at t = 1."""
    misses = [a for a in np.linspace(0.1, 20.0, 2000) if float(time_shift_peer(np.float64(1.0), a)) != 1.0]
    assert misses, "no alpha where alpha * 1 / (1 + (alpha - 1) * 1) rounds below 1"
    assert all(float(time_shift(1.0, a)) == 1.0 for a in misses)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_peer_order_in_float64_is_within_rounding_of_the_formula(alpha):
    got = time_shift_peer(GRID, alpha)
    want = np.array([_exact(t, alpha) for t in GRID])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)  # 1 + (alpha - 1) t cancels for small alpha
    assert got.dtype == np.float64


@pytest.mark.parametrize("alpha", [3, 0.5, 1.15, 3.0, 5.0, 7.3, 11.872096136179, 12.0])
def test_peer_order_on_a_torch_tensor_is_torchs_float32_evaluation(alpha):
    """A torch tensor keeps torch's arithmetic (Open-Sora's get_schedule); dtype=float32 reproduces it in numpy."""
    t = torch.linspace(1, 0, 51)
    torch_values = alpha * t / (1 + (alpha - 1) * t)  # what Open-Sora and diffusers write on a float32 tensor
    got = time_shift_peer(t, alpha)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert torch.equal(got, torch_values)
    numpy32 = time_shift_peer(t.numpy(), alpha, dtype=np.float32)
    assert numpy32.dtype == np.float32
    np.testing.assert_array_equal(numpy32, torch_values.numpy())


def test_peer_order_float32_on_diffusers_training_grid():
    """diffusers' FlowMatchEuler __init__: sigmas = (arange(T, 0, -1) / T) shifted on a float32 tensor."""
    for alpha in (3.0, 7.3, 0.5):
        sigmas = torch.arange(1000, 0, -1, dtype=torch.float32) / 1000
        want = (alpha * sigmas / (1 + (alpha - 1) * sigmas)).numpy()
        np.testing.assert_array_equal(time_shift_peer(sigmas.numpy(), alpha, dtype=np.float32), want)
        # a scalar, as flowsched.diffusers_rules takes sigma_min
        assert time_shift_peer(np.float32(1e-3), alpha, dtype=np.float32) == want[-1]


@pytest.mark.parametrize("mu", [-1.0, 0.0, 0.5, 1.15, 2.3])
def test_mu_form_is_the_shift_by_e_mu_and_linear_mu(mu):
    t = GRID[1:]  # the form's 1/t: the value at 0 is checked below
    np.testing.assert_allclose(time_shift_mu(t, mu), [_exact(x, math.exp(mu)) for x in t], rtol=1e-15, atol=0)
    if mu > 0:
        np.testing.assert_allclose(time_shift_mu(t, mu, time_shift_type="linear"), [_exact(x, mu) for x in t],
                                   rtol=1e-15, atol=0)
    assert time_shift_mu(np.array([0.0, 1.0]), mu).tolist() == [0.0, 1.0]


def test_mu_form_with_sigma_is_the_power_law():
    t = np.linspace(0.05, 1.0, 20)
    a, sigma = math.exp(0.8), 1.7
    np.testing.assert_allclose(time_shift_mu(t, 0.8, sigma=sigma), [a / (a + (1 / x - 1) ** sigma) for x in t],
                               rtol=1e-15)


@settings(max_examples=200, deadline=None)
@given(t=st.floats(0.0, 1.0), alpha=st.floats(1e-3, 1e3))
def test_inverse_undoes_the_shift(t, alpha):
    back = float(time_shift_inverse(time_shift(t, alpha), alpha))
    assert back == pytest.approx(t, rel=1e-11, abs=1e-15)


def test_inverse_is_the_shift_by_one_over_alpha_with_exact_ends():
    for alpha in ALPHAS:
        want = [float(Fraction(t) / (Fraction(alpha) - (Fraction(alpha) - 1) * Fraction(t))) for t in GRID]
        # alpha - (alpha - 1) t cancels near t = 1: relative error up to about alpha ulps
        np.testing.assert_allclose(time_shift_inverse(GRID, alpha), want, rtol=max(1e-14, alpha * 4e-16), atol=0)
        assert time_shift_inverse(np.array([0.0, 1.0]), alpha).tolist() == [0.0, 1.0]


def test_alpha_from_mu():
    assert alpha_from_mu(1.15) == math.exp(1.15)
    assert alpha_from_mu(3.25, "linear") == 3.25


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda: time_shift(0.5, 0.0), ValueError, "alpha must be a finite number > 0, got 0.0"),
        (lambda: time_shift(0.5, float("nan")), ValueError, "alpha must be a finite number"),
        (lambda: time_shift(0.5, "3"), TypeError, "alpha must be a real number"),
        (lambda: time_shift("half", 3.0), TypeError, "t must be a number or an array of numbers"),
        (lambda: time_shift_peer([0.5], -1.0), ValueError, "alpha must be a finite number > 0"),
        (lambda: time_shift_peer([0.5], 3.0, dtype=np.int32), TypeError, "dtype must be a numpy floating dtype"),
        (lambda: time_shift_peer([0.5], 3.0, dtype="nope"), TypeError, "dtype must be a numpy floating dtype"),
        (lambda: time_shift_inverse(0.5, True), TypeError, "alpha must be a real number"),
        (lambda: alpha_from_mu(800.0), ValueError, "mu must give a finite alpha = e^mu > 0, got mu=800.0"),
        (lambda: alpha_from_mu(-800.0), ValueError, "mu must give a finite alpha = e^mu > 0"),
        (lambda: alpha_from_mu(-1.0, "linear"), ValueError, "mu must be > 0 with time_shift_type='linear'"),
        (lambda: alpha_from_mu(1.0, "cosine"), ValueError, "time_shift_type must be 'exponential' or 'linear'"),
        (lambda: alpha_from_mu(None), TypeError, "mu must be a real number"),
        (lambda: time_shift_mu([0.5], 1.0, sigma=0.0), ValueError, "sigma must be a finite number > 0"),
    ],
)
def test_bad_input_names_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


# -- one home: the shift is written in flowsched/shift.py and nowhere else -----------------------------------------

#: The shift's forms as ``ast.unparse`` writes a division: ``a * t / (1 + (a - 1) * t)`` (and ``/ 1000``),
#: ``t / (t + (1 - t) / a)`` (and ``* a``), ``t / (a - (a - 1) * t)``, ``a / (a + (1 / t - 1))`` and a float32
#: ``(np.float32(1.0) + np.float32(a - 1.0) * t)``.
SHIFT_FORMS = (
    r"/ \(1(\.0)? \+ \([^()]+ - 1(\.0)?\) [*/] ",
    r"/ \(\w+ \+ \(1(\.0)? - \w+\) [*/] ",
    r"/ \(\w+ - \(\w+ - 1(\.0)?\) \* ",
    r"/ \(\w+ \+ \(1(\.0)? / ",
    r"\+ np\.float32\(\w+ - 1(\.0)?\) \* ",
)

ROOT = pathlib.Path(flowsched.__file__).parent

#: The shift's one home.
NOT_SCANNED = {"shift.py"}


def _written_shifts(text: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            code = ast.unparse(node)
            if any(re.search(p, code) for p in SHIFT_FORMS):
                found.append(f"line {node.lineno}: {code}")
    return found


def test_the_scan_finds_every_form_it_looks_for():
    samples = [
        "y = alpha * t / (1 + (alpha - 1) * t)",
        "y = shift * s / (1.0 + (shift - 1.0) * s)",
        "y = alpha * (1 / 1000) / (1 + (alpha - 1) / 1000)",
        "y = t / (t + (1.0 - t) / alpha)",
        "y = x / (x + (1.0 - x) * shift)",
        "y = t / (alpha - (alpha - 1.0) * t)",
        "y = a / (a + (1.0 / t - 1.0) ** sigma)",
        "y = a * t / (np.float32(1.0) + np.float32(alpha - 1.0) * t)",
    ]
    for code in samples:
        assert _written_shifts(code), code
    assert not _written_shifts('"""alpha * t / (1 + (alpha - 1) * t) in a docstring"""\ny = (1 - t) / 2\n')


def test_no_module_but_shift_writes_the_shift():
    written = {}
    for path in sorted(ROOT.rglob("*.py")):
        if path.name not in NOT_SCANNED:
            found = _written_shifts(path.read_text(encoding="utf-8"))
            if found:
                written[str(path.relative_to(ROOT))] = found
    assert not written, f"call flowsched.shift instead: {written}"
