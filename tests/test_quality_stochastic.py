"""The quality models on stochastic samplers and image-to-image starts.

The field's closed form (a variance recursion per mode) is checked against an independent exact computation, a dense
covariance propagation of the sampler's linear maps in real space with the Gaussian W2 and KL of the full covariance
matrices, to 1e-9; and against Monte Carlo runs of the real samplers (flowsched.sampling with the field's velocity)
within their standard errors. The mixture is Monte Carlo with a stated noise floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from flowsched import schedules
from flowsched.quality import GaussianField, GaussianMixture
from flowsched.quality.mixture import _rng
from flowsched.sampling import ancestral_coefficients, euler, euler_ancestral, stochastic_euler
from flowsched.strength import partial

CASES = [
    ("euler", {}),
    ("euler_ancestral", {"eta": 1.0}),
    ("euler_ancestral", {"eta": 0.5, "s_noise": 0.7}),
    ("euler_ancestral", {"eta": 0.0}),
    ("stochastic_euler", {}),
]


def _dense(field: GaussianField, t: np.ndarray, sampler: str, eta=1.0, s_noise=1.0, start="noise"):
    """Output covariance of the sampler in real space, built from dense n x n operators, and the W2 / KL of
    N(0, cov) against N(0, C0) computed from the full matrices (no per-mode formula)."""
    lam = field.variances
    n, shape = lam.size, lam.shape
    basis = np.eye(n).reshape(n, *shape)

    def op(diag):  # the real-space matrix of "multiply Fourier mode k by diag[k]"
        out = np.fft.ifftn(np.fft.fftn(basis, axes=(1, 2, 3)) * diag, axes=(1, 2, 3)).real
        return out.reshape(n, n).T

    eye = np.eye(n)
    c_data = op(lam)
    cov = eye.copy() if start == "noise" else (1 - t[0]) ** 2 * c_data + t[0] ** 2 * eye
    for i in range(t.size - 1):
        tc, tn = float(t[i]), float(t[i + 1])
        a = (tc - (1 - tc) * lam) / ((1 - tc) ** 2 * lam + tc**2)
        x0 = eye - tc * op(a)  # x0_hat = x - t v
        add = 0.0
        if tn == 0:
            m = x0
        elif sampler == "euler":
            m = eye + (tn - tc) * op(a)
        elif sampler == "stochastic_euler":
            m, add = (1 - tn) * x0, tn**2
        else:
            down, up, renoise = ancestral_coefficients(tc, tn, eta)
            m = down * eye + (1 - down) * x0
            if eta > 0:
                m, add = up * m, (s_noise * renoise) ** 2
        cov = m @ cov @ m.T + add * eye

    def sqrt_psd(mat):
        w, v = np.linalg.eigh(0.5 * (mat + mat.T))
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root = sqrt_psd(c_data)
    w2 = np.trace(cov + c_data - 2 * sqrt_psd(root @ cov @ root)) / np.trace(c_data)
    inv = np.linalg.inv(c_data)
    kl = 0.5 * (np.trace(inv @ cov) - n + np.linalg.slogdet(c_data)[1] - np.linalg.slogdet(cov)[1]) / n
    return w2, kl


@pytest.mark.parametrize("sampler, kwargs", CASES)
@pytest.mark.parametrize("start", ["noise", "data"])
def test_field_closed_form_equals_dense_covariance_propagation(sampler, kwargs, start):
    field = GaussianField((2, 3, 4), gamma=2.0)
    for n in (1, 3, 8):
        if n == 1 and start == "noise":
            continue  # one step from pure noise returns the mean: KL is +inf
        sched = schedules.shifted(n, 2.5) if start == "noise" else partial("shifted:alpha=2.5", n, 0.7)
        w2_ref, kl_ref = _dense(field, sched.t, sampler, start=start, **kwargs)
        w2 = field.error(sched, "w2", sampler=sampler, start=start, **kwargs)
        kl = field.error(sched, "kl", sampler=sampler, start=start, **kwargs)
        assert w2 == pytest.approx(w2_ref, rel=1e-9, abs=1e-15)
        assert kl == pytest.approx(kl_ref, rel=1e-9, abs=1e-15)


def test_field_deterministic_cases_reduce_to_euler():
    field = GaussianField((1, 16, 16))
    s = schedules.shifted(10, 2.0)
    assert field.error(s, sampler="euler_ancestral", eta=0.0) == pytest.approx(field.error(s), rel=1e-12)
    # from data at t0 = 1 is from noise
    assert field.error(s, start="data", sampler="stochastic_euler") == field.error(s, sampler="stochastic_euler")
    np.testing.assert_allclose(field.gains(s, sampler="euler"), field.gains(s), rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("sampler, kwargs", [c for c in CASES if c[0] != "euler"] + [("euler", {})])
def test_field_closed_form_agrees_with_monte_carlo_of_the_real_sampler(sampler, kwargs):
    """Run the actual sampler (flowsched.sampling, the field's FFT velocity, portable per-step noise) on 3000
    samples of an 8 x 8 field and compare each distinct variance's empirical output variance with the closed form:
    every z-score within 5 (the standard error is estimated from the per-sample averages)."""
    field = GaussianField((1, 8, 8))
    sched = partial("shifted:alpha=2", 6, 0.8)
    m = 3000
    x0 = field.sample(m, seed=1)
    eps = np.random.default_rng(2).standard_normal(x0.shape)
    x = (1 - sched.t[0]) * x0 + sched.t[0] * eps  # the image-to-image start
    run = {"euler": euler, "euler_ancestral": euler_ancestral, "stochastic_euler": stochastic_euler}[sampler]
    extra = {} if sampler == "euler" or kwargs.get("eta") == 0.0 else {"seed": 9}
    out = run(field.velocity, x, sched, allow_partial=True, **kwargs, **extra)
    power = np.abs(np.fft.fftn(out, axes=(-3, -2, -1))) ** 2 / field.num_modes  # [m, 1, 8, 8]: E = V_k
    want = field.gains(sched, sampler=sampler, start="data", **kwargs) ** 2 * field.variances
    idx = np.searchsorted(field.levels, field.variances.ravel())
    for level in range(field.levels.size):
        modes = np.flatnonzero(idx == level)
        per_sample = power.reshape(m, -1)[:, modes].mean(axis=1)
        se = per_sample.std(ddof=1) / np.sqrt(m)
        z = (per_sample.mean() - want.ravel()[modes[0]]) / se
        assert abs(z) < 5, (level, z)


def test_field_bad_input():
    field = GaussianField((1, 4, 4))
    s = schedules.shifted(5, 2.0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        field.error(s, sampler="heun")
    with pytest.raises(ValueError, match="start must be one of"):
        field.error(s, start="latent")
    with pytest.raises(ValueError, match="eta must be a finite number >= 0"):
        field.error(s, sampler="euler_ancestral", eta=-1.0)
    with pytest.raises(ValueError, match="too large"):
        field.error(s, sampler="euler_ancestral", eta=50.0)


def test_mixture_stochastic_samplers_and_image_to_image_starts():
    mix = GaussianMixture.standard()
    s = schedules.shifted(12, 2.0)
    floor = mix.noise_floor(1024)
    for sampler, kw in (("euler_ancestral", {"eta": 0.5}), ("stochastic_euler", {})):
        a = mix.error(s, metric="sliced_w2", num_samples=1024, sampler=sampler, **kw)
        assert a == mix.error(s, metric="sliced_w2", num_samples=1024, sampler=sampler, **kw)  # a function of seed
        assert floor < a < 1.0
        assert a != mix.error(s, metric="sliced_w2", num_samples=1024, seed=1, sampler=sampler, **kw)
    # the run's per-step noise is the sampler's portable noise of the same seed
    out = mix.run(s, num_samples=64, seed=3, sampler="stochastic_euler")
    want = stochastic_euler(mix.velocity, mix.noise(64, 3), s, seed=3)
    np.testing.assert_array_equal(out, want)
    # image-to-image: at strength 1 the data start is the noise start; at a low strength each output keeps the
    # mode (the "content") of the data sample it started from (stream 5 of the seed); at strength 1 it does not
    np.testing.assert_array_equal(mix.run(s, num_samples=64, start="data"), mix.run(s, num_samples=64))
    x0 = mix._draw(256, _rng(0, 5))[0]
    cut = partial("shifted:alpha=2", 40, 0.05)
    low = mix.run(cut, num_samples=256, start="data")
    assert np.mean(mix.mode_of(low) == mix.mode_of(x0)) > 0.99
    assert np.mean(mix.mode_of(mix.run(s, num_samples=256, start="data")) == mix.mode_of(x0)) < 0.5
    with pytest.raises(ValueError, match="use metric='sliced_w2'"):
        mix.error(s, metric="rmse", sampler="euler_ancestral")
    with pytest.raises(ValueError, match="use metric='sliced_w2'"):
        mix.error(cut, metric="modes", start="data")
    with pytest.raises(ValueError, match="options of sampler='euler_ancestral'"):
        mix.error(s, metric="sliced_w2", sampler="stochastic_euler", eta=0.5)
