"""GaussianMixture: exact velocity against independent formulas, exact flows, reference solution, metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from flowsched import schedules
from flowsched.quality import GaussianMixture, sliced_w2
from flowsched.sampling import euler


def velocity_first_form(m: GaussianMixture, x: np.ndarray, t: float) -> np.ndarray:
    """v = (x - E[x0 | x_t]) / t, with the posterior mean summed over components (docs/quality-models.md), written with
    explicit per-component Gaussian densities (no shared algebra with the library's affine form)."""
    u = 1 - t
    d = x.shape[-1]
    dens = []
    post = []
    for mu, s, pi in zip(m.means, m.stds, m.weights, strict=True):
        S = u * u * s * s + t * t
        r2 = ((x - u * mu) ** 2).sum(-1)
        dens.append(math.log(pi) - 0.5 * d * math.log(2 * math.pi * S) - r2 / (2 * S))
        post.append(mu + u * s * s / S * (x - u * mu))
    dens = np.stack(dens, -1)
    w = np.exp(dens - dens.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    D = (w[..., None] * np.stack(post, -2)).sum(-2)
    return (x - D) / t


@pytest.fixture(scope="module")
def uneven():
    rng = np.random.default_rng(3)
    return GaussianMixture(rng.standard_normal((5, 3)) * 2, [0.1, 0.3, 0.5, 0.2, 1.0], [1, 2, 3, 1, 0.5])


@pytest.mark.parametrize("t", [0.999, 0.7, 0.3, 0.05, 0.003])
def test_velocity_matches_posterior_mean_form(uneven, t):
    x = np.random.default_rng(0).standard_normal((64, 3)) * 2
    np.testing.assert_allclose(uneven.velocity(x, t), velocity_first_form(uneven, x, t), rtol=1e-9, atol=1e-10)


def test_velocity_limits_and_torch(uneven):
    x = np.random.default_rng(1).standard_normal((10, 3))
    # t = 1: v = x - sum_k pi_k mu_k ; t = 0: v = -x (the point is the data, eps - x0 with eps unknown -> 0)
    np.testing.assert_allclose(uneven.velocity(x, 1.0), x - uneven.weights @ uneven.means, rtol=1e-12)
    np.testing.assert_allclose(uneven.velocity(x, 0.0), -x, rtol=1e-12)
    xt = torch.tensor(x)
    for t in (0.9, 0.2):
        vt = uneven.velocity(xt, t)
        assert isinstance(vt, torch.Tensor) and vt.dtype == torch.float64
        np.testing.assert_allclose(vt.numpy(), uneven.velocity(x, t), rtol=1e-12)
    v32 = uneven.velocity(xt.float(), 0.5)
    assert v32.dtype == torch.float32
    np.testing.assert_allclose(v32.numpy(), uneven.velocity(x, 0.5), rtol=1e-4, atol=1e-5)
    # batched leading axes
    assert uneven.velocity(x.reshape(2, 5, 3), 0.4).shape == (2, 5, 3)


def test_single_gaussian_reference_matches_exact_flow():
    # One component: the ODE is linear and x_t = (1 - t) mu + sqrt((1 - t)^2 s^2 + t^2) eps (docs/quality-models.md).
    mu, s = np.array([[0.5, -1.0]]), 0.3
    m = GaussianMixture(mu, s)
    eps = np.random.default_rng(2).standard_normal((50, 2))
    ref, est = m.reference_solution(eps, rtol=1e-9, return_error=True)
    np.testing.assert_allclose(ref, mu + s * eps, atol=1e-9)
    assert est < 1e-9
    half = m.reference_solution(eps, t_end=0.5)
    np.testing.assert_allclose(half, 0.5 * mu + math.sqrt(0.25 * s * s + 0.25) * eps, atol=1e-8)


def test_reference_transports_noise_to_the_mixture():
    # The exact flow pushes N(0, I) to the data: the reference outputs are as close to true samples as two true
    # sample sets are to each other, and the modes are hit with their weights.
    m = GaussianMixture.ring2d(4, radius=3.0, std=0.3)
    m = GaussianMixture(m.means, m.stds, [0.1, 0.2, 0.3, 0.4])
    n = 2000
    ref = m.reference_solution(m.noise(n, 0))
    floor = m.noise_floor(n)
    assert sliced_w2(ref, m.sample(n)) < 2.0 * floor
    freq = np.bincount(m.mode_of(ref), minlength=4) / n
    np.testing.assert_allclose(freq, m.weights, atol=0.03)


def test_reference_error_estimate_is_honest():
    m = GaussianMixture.standard()
    eps = m.noise(64, 0)
    coarse, est = m.reference_solution(eps, rtol=1e-5, return_error=True)
    fine = m.reference_solution(eps, rtol=1e-9)
    assert np.abs(coarse - fine).max() <= 3 * est
    assert est < 1e-5


def test_euler_on_mixture_converges_and_reproduces_the_reference_lesson():
    # docs/quality-models.md (standard mixture): alpha ~ 1-2 is best and alpha = 12 clearly worse.
    m = GaussianMixture.standard()
    n = 256
    lin = [m.error(schedules.linear(N), num_samples=n) for N in (4, 8, 16, 32)]
    assert all(a > b for a, b in itertools.pairwise(lin))
    for metric in ("rmse", "sliced_w2"):
        assert m.error(schedules.shifted(8, 12.0), num_samples=n, metric=metric) > 1.5 * m.error(
            schedules.shifted(8, 1.5), num_samples=n, metric=metric
        )
    modes = {a: m.error(schedules.shifted(4, a), num_samples=n, metric="modes") for a in (12.0, 1.0)}
    assert modes[12.0] > modes[1.0]


def test_error_uses_the_sampler_on_the_same_noise():
    m = GaussianMixture.ring2d()
    sched = schedules.shifted(6, 2.0)
    out = euler(m.velocity, m.noise(100, 7), sched)
    ref = m.reference_solution(m.noise(100, 7))
    expected = np.sqrt(np.mean(np.sum((out - ref) ** 2, -1)))
    assert m.error(sched, num_samples=100, seed=7) == pytest.approx(expected, rel=1e-12)
    # Heun (second order) beats Euler at the same step count on a fine grid
    fine = schedules.linear(40)
    assert m.error(fine, num_samples=100, sampler="heun") < m.error(fine, num_samples=100)
    # 40 Euler steps put (almost) every sample in the same mode as the reference
    assert 0.0 <= m.error(fine, num_samples=100, metric="modes") <= 0.05


def test_sliced_w2_properties():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 4))
    assert sliced_w2(a, a) == 0.0
    assert sliced_w2(a, a[::-1]) == pytest.approx(0.0, abs=1e-12)  # order does not matter
    delta = np.array([1.0, -2.0, 0.5, 0.0])
    # a shift by delta: each 1-D W2 is |delta . theta|, and E[(delta . theta)^2] = |delta|^2 / d
    got = sliced_w2(a, a + delta, projections=20000)
    assert got == pytest.approx(np.linalg.norm(delta) / 2.0, rel=0.03)


def test_standard_mixture_is_the_reference_one():
    m = GaussianMixture.standard()
    assert (m.num_components, m.dim) == (8, 16)
    np.testing.assert_allclose(np.linalg.norm(m.means, axis=1), 3.0)
    assert np.all(m.stds == 0.15) and np.allclose(m.weights, 1 / 8)
    r = GaussianMixture.ring2d(6, radius=2.0)
    np.testing.assert_allclose(np.linalg.norm(r.means, axis=1), 2.0)


# -- bad input -------------------------------------------------------------------------------------------------


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"means must have shape \[K, d\]"):
        GaussianMixture(np.ones(3), 0.1)
    with pytest.raises(ValueError, match="stds must be finite and > 0"):
        GaussianMixture(np.ones((2, 2)), [0.1, 0.0])
    with pytest.raises(ValueError, match="stds must be one number or 2"):
        GaussianMixture(np.ones((2, 2)), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="weights must be finite, >= 0"):
        GaussianMixture(np.ones((2, 2)), 0.1, [1, -1])
    m = GaussianMixture.ring2d()
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 2\]"):
        m.velocity(np.ones((4, 3)), 0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        m.velocity(np.ones((4, 2)), 1.5)
    with pytest.raises(ValueError, match="strictly decreasing"):
        m.error([1.0, 0.2, 0.5, 0.0], num_samples=8)
    with pytest.raises(ValueError, match="end at t_N = 0"):
        m.error([1.0, 0.5, 0.2], num_samples=8)
    with pytest.raises(ValueError, match="metric must be one of"):
        m.error(schedules.linear(2), num_samples=8, metric="fid")
    with pytest.raises(ValueError, match="sampler must be one of"):
        m.error(schedules.linear(2), num_samples=8, sampler="rk4")
    with pytest.raises(ValueError, match="t_end must be < 1"):
        m.reference_solution(np.ones((2, 2)), t_end=1.0)
