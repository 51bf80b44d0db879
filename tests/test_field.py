"""GaussianField: exact Euler error checked against independent computations and the reference values of
docs/quality-models.md."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import get_preset, schedules
from flowsched.quality import GaussianField, fit_spectrum
from flowsched.sampling import euler


def spectrum_by_loops(shape, gamma, k0, w_t):
    """The default spectrum written out mode by mode (no broadcasting, no fftfreq)."""
    T, H, W = shape
    lam = np.empty(shape)

    def freq(i, n):  # integer frequency of index i on an axis of length n, as in the FFT
        return i if i <= (n - 1) // 2 else i - n

    for a in range(T):
        for b in range(H):
            for c in range(W):
                kt, ky, kx = freq(a, T), freq(b, H), freq(c, W)
                lam[a, b, c] = (w_t * kt * kt + ky * ky + kx * kx + k0 * k0) ** (-gamma / 2)
    return lam / lam.mean()


def metrics_from_gains(g, lam):
    """The two metrics from per-mode output std g, straight from their definitions."""
    w2 = np.sum((g - np.sqrt(lam)) ** 2) / np.sum(lam)
    r = g**2 / lam
    kl = np.mean(0.5 * (r - 1 - np.log(r)))
    return w2, kl


def diagonal_velocity(lam):
    """Exact velocity of each Fourier mode, from the posterior mean (docs/quality-models.md, first form):
    v = (x - E[x0 | x_t]) / t,  E[x0 | x_t] = (1 - t) lam x / ((1 - t)^2 lam + t^2)."""

    def v(x, t):
        return (x - (1 - t) * lam * x / ((1 - t) ** 2 * lam + t**2)) / t

    return v


def test_default_spectrum_matches_loops():
    field = GaussianField((3, 5, 4), gamma=3.0, k0=0.5, w_t=4.0)
    np.testing.assert_allclose(field.variances, spectrum_by_loops((3, 5, 4), 3.0, 0.5, 4.0), rtol=1e-13)
    assert field.variances.mean() == pytest.approx(1.0, rel=1e-14)
    assert field.counts.sum() == field.num_modes == 60


@pytest.mark.parametrize("w_t, low, high", [(0.0, -0.05, 0.05), (1e4, 0.99, 1.0)])
def test_w_t_large_makes_frames_alike_and_zero_makes_them_independent(w_t, low, high):
    # Draw real fields with the spectrum (filter white noise in Fourier space) and correlate neighbouring frames.
    field = GaussianField((8, 16, 16), w_t=w_t)
    lam = field.variances.reshape(8, 16, 16)
    white = np.random.default_rng(0).standard_normal((64, 8, 16, 16))
    x = np.fft.ifftn(np.sqrt(lam) * np.fft.fftn(white, axes=(1, 2, 3)), axes=(1, 2, 3)).real
    a, b = x[:, :-1].ravel(), x[:, 1:].ravel()
    assert low < np.corrcoef(a, b)[0, 1] < high


@pytest.mark.parametrize("metric", ["w2", "kl"])
def test_agrees_with_euler_run_on_each_mode(metric):
    # Independent: run the sampler on the diagonal linear ODE of every mode (300k modes, 50 steps) and compute
    # the metric from the output amplitudes of a unit start; no grouping of equal variances, no log space.
    geo = get_preset("opensora-2.0-768px").geometry()
    field = GaussianField(geo)
    lam = field.variances.ravel()
    sched = schedules.opensora(50, geo.image_seq_len, geo.latent_frames)
    g = euler(diagonal_velocity(lam), np.ones_like(lam), sched)
    expected = metrics_from_gains(g, lam)[0 if metric == "w2" else 1]
    assert field.error(sched, metric) == pytest.approx(expected, rel=1e-9)


def test_agrees_with_40_digit_arithmetic():
    # Independent of float64 rounding: the product formula, term by term, in 40-digit arithmetic.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    field = GaussianField((2, 8, 8), gamma=2.5, w_t=0.5)
    lam = field.variances.ravel()
    for sched in (schedules.opensora(50, 1024, 2), schedules.shifted(7, 0.4)):
        ts = [mpmath.mpf(float(x)) for x in sched.t]
        num = den = kl = mpmath.mpf(0)
        for value in lam:
            v = mpmath.mpf(float(value))
            g = mpmath.mpf(1)
            for t, tn in zip(ts[:-1], ts[1:], strict=True):
                g *= 1 + (tn - t) * (t - (1 - t) * v) / ((1 - t) ** 2 * v + t**2)
            num += (g - mpmath.sqrt(v)) ** 2
            den += v
            kl += (g * g / v - 1 - mpmath.log(g * g / v)) / 2
        assert field.error(sched) == pytest.approx(float(num / den), rel=1e-12)
        assert field.error(sched, "kl") == pytest.approx(float(kl / lam.size), rel=1e-12)


@pytest.mark.parametrize("sampler_dtype", [np.float64, torch.float64])
def test_agrees_with_fft_sampling_of_a_real_field(sampler_dtype):
    # Independent: sample a real field, run Euler in pixel space with an FFT velocity, read the per-mode
    # gains off the spectra of output and input.
    shape = (4, 6, 5)
    lam = spectrum_by_loops(shape, 2.5, 1.0, 0.3)
    field = GaussianField(variances=lam)
    sched = schedules.shifted(12, 3.0)
    eps = np.random.default_rng(1).standard_normal(shape)
    x = torch.tensor(eps) if sampler_dtype is torch.float64 else eps
    out = euler(field.velocity, x, sched)
    out = out.numpy() if isinstance(out, torch.Tensor) else out
    g = np.abs(np.fft.fftn(out) / np.fft.fftn(eps))
    np.testing.assert_allclose(g / np.sqrt(lam), field.gains(sched), rtol=1e-10)
    w2, kl = metrics_from_gains(g, lam)
    assert field.error(sched) == pytest.approx(w2, rel=1e-9)
    assert field.error(sched, "kl") == pytest.approx(kl, rel=1e-9)


def test_exact_flow_limit_and_monotone_convergence():
    # Euler converges to the exact flow, so the error goes to 0 as N grows (first order: W2 ~ 1/N^2).
    field = GaussianField((1, 16, 16))
    errs = [field.error(schedules.linear(n)) for n in (50, 100, 200, 400)]
    assert all(a > b for a, b in itertools.pairwise(errs))
    ratios = [a / b for a, b in itertools.pairwise(errs)]
    assert 3.5 < ratios[-1] < 4.5


@pytest.mark.parametrize(
    "res, alpha_star, rel_w2_lin, rel_w2_star, alpha_kl",
    # docs/quality-models.md, Gaussian field reference values (2-D field 1/(|k|^2 + 1), N = 25; relW2 is the
    # square root of our squared "w2")
    [(16, 1.43, 0.060, 0.057, 0.80), (64, 2.24, 0.096, 0.071, 0.69), (256, 3.85, 0.206, 0.100, 0.62)],
)
def test_reproduces_reference_measurements(res, alpha_star, rel_w2_lin, rel_w2_star, alpha_kl):
    field = GaussianField((1, res, res))
    alphas = np.exp(np.linspace(math.log(0.5), math.log(20.0), 300))
    ts = np.stack([schedules.shifted(25, a).t for a in alphas])
    w2 = field.error_batch(ts)
    kl = field.error_batch(ts, "kl")
    assert alphas[w2.argmin()] == pytest.approx(alpha_star, rel=0.02)
    assert alphas[kl.argmin()] == pytest.approx(alpha_kl, rel=0.03)
    assert math.sqrt(field.error(schedules.linear(25))) == pytest.approx(rel_w2_lin, abs=0.0015)
    assert math.sqrt(w2.min()) == pytest.approx(rel_w2_star, abs=0.0015)


def gains_by_product(ts, lam):
    """Euler's per-mode output std from a unit start, g = prod_i (1 + h_i a(t_i)) with a(t) = (t - (1 - t) lam) /
    ((1 - t)^2 lam + t^2) (docs/quality-models.md), mode by mode: no grouping of equal variances, no log space."""
    g = np.ones_like(lam)
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        g = g * (1 + (t_next - t) * (t - (1 - t) * lam) / ((1 - t) ** 2 * lam + t**2))
    return g


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.05, 30.0), min_size=1, max_size=5), st.integers(2, 12))
def test_each_row_of_a_batch_is_its_own_schedule_s_error(alphas, n):
    field = GaussianField((2, 6, 7), w_t=0.3)
    lam = field.variances.ravel()
    ts = np.stack([schedules.shifted(n, a).t for a in alphas])
    for metric, column in (("w2", 0), ("kl", 1)):
        batch = field.error_batch(ts, metric)
        expected = [metrics_from_gains(gains_by_product(row, lam), lam)[column] for row in ts]
        np.testing.assert_allclose(batch, expected, rtol=1e-9)
        assert (batch >= 0).all()


def test_one_step_returns_the_mean():
    # From t = 1 straight to 0 Euler returns E[x0] = 0 for every mode: W2 is the whole variance (1), KL infinite.
    field = GaussianField((2, 6, 7), w_t=0.3)
    np.testing.assert_allclose(field.error_batch([[1.0, 0.0], [1.0, 0.0]]), [1.0, 1.0], rtol=1e-15)
    assert field.error([1.0, 0.0], "kl") == math.inf


def test_start_below_one_is_scored():
    # t_0 < 1 is not refused: the noise is used as if it were x_{t_0}, and that mismatch is part of the score
    field = GaussianField((1, 8, 8))
    g = diagonal_velocity(field.variances.ravel())
    out = euler(g, np.ones(field.num_modes), [0.99, 0.5, 0.0], allow_partial=True)
    assert field.error([0.99, 0.5, 0.0]) == pytest.approx(metrics_from_gains(out, field.variances.ravel())[0])


# -- fitting ---------------------------------------------------------------------------------------------------


def test_fit_recovers_spectrum_from_samples(tmp_path):
    from safetensors.torch import save_file

    truth = GaussianField((3, 16, 16), gamma=2.0, w_t=2.0)
    rng = np.random.default_rng(5)
    eps = rng.standard_normal((64, 3, 16, 16))  # the field by its definition: filter white noise
    x = np.fft.ifftn(np.fft.fftn(eps, axes=(1, 2, 3)) * np.sqrt(truth.variances), axes=(1, 2, 3)).real
    path = tmp_path / "latents.safetensors"
    save_file({"latents": torch.tensor(x[:, None], dtype=torch.float32)}, str(path))  # [B, C=1, T, H, W]
    fitted = fit_spectrum(path, average="grid")
    # 64 samples x up to 8 sign flips per group: a typical group averages hundreds of squared coefficients
    # (a few percent error); the self-conjugate modes (k = -k on every axis) only 64 (about 18 %).
    log_ratio = np.abs(np.log(fitted / truth.variances))
    assert np.median(log_ratio) < 0.08
    assert np.quantile(log_ratio, 0.99) < 0.4
    assert fitted.mean() == pytest.approx(np.mean((x - x.mean()) ** 2), rel=1e-5)  # Parseval, the data centred
    field = GaussianField.from_latents(str(path))
    assert field.shape == (3, 16, 16)
    assert field.error(schedules.linear(20)) == pytest.approx(truth.error(schedules.linear(20)), rel=0.1)


def test_fit_image_latents_and_keys(tmp_path):
    from safetensors.torch import save_file

    x = torch.randn(2, 4, 8, 8)
    path = tmp_path / "two.safetensors"
    save_file({"a": x, "b": x.clone()}, str(path))
    with pytest.raises(ValueError, match="choose one with key"):
        fit_spectrum(path)
    with pytest.raises(ValueError, match="key 'c' is not in"):
        fit_spectrum(path, key="c")
    lam = fit_spectrum(path, key="a", image=True, average="none")
    assert lam.shape == (1, 8, 8)
    # Parseval: the mean variance is the mean square of the data less each channel's mean (axis 1 of [B, C, H, W])
    centred = x.double() - x.double().mean(dim=(0, 2, 3), keepdim=True)
    assert lam.mean() == pytest.approx(float((centred**2).mean()), rel=1e-12)
    raw = fit_spectrum(path, key="a", image=True, average="none", center=False)
    assert raw.mean() == pytest.approx(float((x.double() ** 2).mean()), rel=1e-12)


def test_fit_does_not_see_the_data_mean():
    # Euler's error does not depend on the data's mean (the field is zero-mean), so neither may the fit: a mean
    # left in would land in the zero-frequency variance and inflate the advised shift
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 2, 3, 8, 8)) * np.array([1.0, 0.5])[None, :, None, None, None]
    offset = np.array([1.9, -4.0])[None, :, None, None, None]  # one mean per channel
    fitted = fit_spectrum(x)
    assert np.allclose(fit_spectrum(x + offset), fitted, rtol=1e-9, atol=0)
    raw = fit_spectrum(x + offset, center=False)  # the old second moment: the means in the zero frequency
    assert raw[0, 0, 0] > 50 * fitted[0, 0, 0]
    assert np.allclose(raw.ravel()[1:], fitted.ravel()[1:], rtol=1e-9)  # and nowhere else
    field, inflated = GaussianField(variances=fitted), GaussianField(variances=raw)
    from flowsched.quality import auto_shift

    assert auto_shift(inflated, 8) > 2 * auto_shift(field, 8)


def test_fit_of_one_centred_sample_says_what_to_do():
    one = np.random.default_rng(1).standard_normal((1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"center=True leaves no zero-frequency variance.*fit a batch"):
        fit_spectrum(one)
    assert fit_spectrum(one, center=False).shape == (4, 8, 8)


def test_fit_refuses_pickle_and_constant_latents(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        fit_spectrum(tmp_path / "latents.pt")
    with pytest.raises(ValueError, match="zero power"):
        fit_spectrum(np.zeros((1, 4, 4, 4)), center=False)
    with pytest.raises(ValueError, match="no zero-frequency variance"):
        fit_spectrum(np.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match="at least 3 axes"):
        fit_spectrum(np.ones((4, 4)))
    with pytest.raises(ValueError, match="is not a file"):
        fit_spectrum(tmp_path / "missing.safetensors")


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf")])
def test_non_positive_variances(bad):
    lam = np.ones((2, 3, 4))
    lam[1, 2, 0] = bad
    with pytest.raises(ValueError, match=r"variances must be (> 0|finite)"):
        GaussianField(variances=lam)


def test_bad_schedules_and_arguments():
    field = GaussianField((1, 4, 4))
    with pytest.raises(ValueError, match=r"strictly decreasing.*schedule\[1\]=0\.3 is followed by schedule\[2\]=0\.6"):
        field.error([1.0, 0.3, 0.6, 0.0])
    with pytest.raises(ValueError, match=r"ts\[1, 0\]=0\.0 is followed by ts\[1, 1\]=0\.5"):
        field.error_batch([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    with pytest.raises(ValueError, match="end at t_N = 0"):
        field.error([1.0, 0.5, 0.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        field.error([1.2, 0.5, 0.0])
    with pytest.raises(ValueError, match="metric must be one of"):
        field.error([1.0, 0.0], metric="fid")
    with pytest.raises(ValueError, match="shape"):
        field.error_batch([1.0, 0.0])
    with pytest.raises(ValueError, match="grid must have 3 sizes"):
        GaussianField((16, 16))
    with pytest.raises(ValueError, match=r"grid\[1\] must be a positive integer"):
        GaussianField((1, 0, 4))
    with pytest.raises(ValueError, match="they must agree"):
        GaussianField((1, 4, 4), variances=np.ones((1, 4, 5)))
    with pytest.raises(ValueError, match="needs a grid"):
        GaussianField()
