"""FrameField: the exact output distribution of euler_frames on a temporally correlated Gaussian field.

Checked three independent ways: (1) against a dense computation on the whole tiny grid (full covariance matrix
in real space, no Fourier grouping, scipy's sqrtm and the textbook W2 formula) to 1e-9; (2) against
GaussianField.error for schedules that move every frame together (the diagonal closed form); (3) against a
Monte Carlo run of the real sampler with the field's exact velocity, within its sampling noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from flowsched import frames, schedules
from flowsched.quality.field import GaussianField
from flowsched.quality.frames import FrameField
from flowsched.sampling import euler_frames


def dense_output(field: GaussianField, fs, stochastic: bool):
    """Covariance (real space, all T'H'W' elements) of euler_frames' output, from the field's full covariance."""
    lam = field.variances
    t_, h, w = lam.shape
    d = lam.size
    basis = np.eye(d).reshape(d, t_, h, w)
    m = np.fft.ifftn(np.fft.fftn(basis, axes=(1, 2, 3)) * np.sqrt(lam), axes=(1, 2, 3)).real.reshape(d, d).T
    c = m @ m.T  # x0 = m @ white noise
    frame_of = np.repeat(np.arange(t_), h * w)
    p_cov = np.eye(d)
    pre = frame_of < fs.prefix_frames
    p_cov[np.ix_(pre, pre)] = c[np.ix_(pre, pre)]
    lvl = fs.prefix_level if fs.prefix_noise else 0.0
    for r in range(fs.num_steps):
        s, e = fs.window[r]
        win = np.flatnonzero((frame_of >= s) & (frame_of < e))
        mov = np.flatnonzero(fs.update[r][frame_of])
        if mov.size == 0:
            continue
        tt = fs.t[r, frame_of[win]]
        a = 1 - tt
        cw = c[np.ix_(win, win)]
        vel = (np.diag(tt) - cw @ np.diag(a)) @ np.linalg.inv(np.diag(a) @ cw @ np.diag(a) + np.diag(tt**2))
        q = np.where(frame_of[win] < fs.prefix_frames, 1 - lvl, 1.0)
        ell = np.where(frame_of[win] < fs.prefix_frames, lvl, 0.0)
        loc = np.searchsorted(win, mov)
        gm = np.eye(d)
        km = np.zeros((d, d))
        tn, t0 = fs.t[r + 1, frame_of[mov]], fs.t[r, frame_of[mov]]
        vq = vel @ np.diag(q)
        vl = vel @ np.diag(ell)
        if stochastic:
            gm[mov, :] = 0.0
            gm[np.ix_(mov, win)] = (1 - tn)[:, None] * (np.diag(q)[loc] - t0[:, None] * vq[loc])
            km[np.ix_(mov, win)] = (1 - tn)[:, None] * (np.diag(ell)[loc] - t0[:, None] * vl[loc])
            km[mov, mov] += tn
        else:
            gm[np.ix_(mov, win)] += (tn - t0)[:, None] * vq[loc]
            km[np.ix_(mov, win)] = (tn - t0)[:, None] * vl[loc]
        p_cov = gm @ p_cov @ gm.T + km @ km.T
    return p_cov, c


def dense_metrics(p_cov, c):
    root = scipy.linalg.sqrtm(c)
    cross = scipy.linalg.sqrtm(root @ p_cov @ root)
    w2 = (np.trace(p_cov) + np.trace(c) - 2 * np.trace(cross).real) / np.trace(c)
    d = c.shape[0]
    kl = 0.5 * (np.trace(np.linalg.solve(c, p_cov)) - d + np.linalg.slogdet(c)[1] - np.linalg.slogdet(p_cov)[1]) / d
    return w2, kl


GRID = (5, 4, 3)


def cases():
    base = schedules.shifted(4, 2.0)
    return [
        pytest.param(frames.diffusion_forcing(base, 5, ar_step=1), False, id="ar_step1"),
        pytest.param(frames.pyramid(base, 5, u=1.5), False, id="pyramid"),
        pytest.param(frames.diffusion_forcing(base, 5, ar_step=2, prefix_frames=1, addnoise_condition=100), False,
                     id="prefix-addnoise"),
        pytest.param(frames.staircase(frames.magi_base(4, 3.0), 5, chunk_frames=1, window=2, prefix_chunks=1), False,
                     id="staircase-clean-prefix"),
        pytest.param(frames.blockwise([1000, 600, 300], 5, block_frames=1, alpha=3.0), True, id="blockwise-stochastic"),
        pytest.param(frames.diffusion_forcing(base, 5, ar_step=2, window=3), False, id="sliding-window"),
    ]


@pytest.mark.parametrize("fs,stochastic", cases())
def test_closed_form_equals_dense_computation(fs, stochastic):
    field = GaussianField(GRID, w_t=0.3)
    ff = FrameField(field)
    p_cov, c = dense_output(field, fs, stochastic)
    w2, kl = dense_metrics(p_cov, c)
    assert ff.error(fs, "w2", stochastic=stochastic) == pytest.approx(w2, rel=1e-9)
    assert ff.error(fs, "kl", stochastic=stochastic) == pytest.approx(kl, rel=1e-9)
    # a subset of frames: the joint distribution of those frames only
    sel = np.repeat(np.arange(5), 12) >= 2
    w2s, kls = dense_metrics(p_cov[np.ix_(sel, sel)], c[np.ix_(sel, sel)])
    assert ff.error(fs, "w2", stochastic=stochastic, frames=slice(2, None)) == pytest.approx(w2s, rel=1e-9)
    assert ff.error(fs, "kl", stochastic=stochastic, frames=[2, 3, 4]) == pytest.approx(kls, rel=1e-9)


@pytest.mark.parametrize("w_t", [0.0, 1.0, 1e4])
def test_synchronous_equals_the_diagonal_closed_form(w_t):
    field = GaussianField((6, 8, 5), w_t=w_t)
    ff = FrameField(field)
    base = schedules.shifted(10, 3.0)
    fs = frames.full_sequence(base, 6)
    assert ff.error(fs) == pytest.approx(field.error(base), rel=1e-9)
    assert ff.error(fs, "kl") == pytest.approx(field.error(base, "kl"), rel=1e-9)


@pytest.mark.parametrize("stochastic", [False, True])
def test_monte_carlo_of_the_real_sampler_agrees(stochastic):
    """euler_frames with FrameField.velocity on 20,000 samples: every entry of the empirical output covariance
    within 5 standard errors of the closed form, and clearly away from the data covariance (the test can fail)."""
    field = GaussianField(GRID, w_t=0.3)
    ff = FrameField(field)
    if stochastic:
        fs = frames.blockwise([1000, 500], 5, block_frames=1, alpha=2.0)
    else:
        fs = frames.diffusion_forcing(schedules.shifted(3, 2.0), 5, ar_step=1, prefix_frames=1, addnoise_condition=150)
    n = 20_000
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 1, *GRID))
    x[:, 0, :1] = ff.sample(n, seed=8)[:, :1]  # prefix frames start as data
    step_rng = np.random.default_rng(9)
    out = euler_frames(lambda xw, t: ff.velocity(xw, t), x, fs, noise=lambda r, x: step_rng.standard_normal(x.shape),
                       stochastic=stochastic)
    y = out.reshape(n, -1)
    emp = y.T @ y / n  # the mean is zero by symmetry
    p_cov, c = dense_output(field, fs, stochastic)
    se = np.sqrt((np.outer(np.diag(p_cov), np.diag(p_cov)) + p_cov**2) / n)
    assert np.max(np.abs(emp - p_cov) / se) < 5.0
    se_c = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)
    assert np.max(np.abs(emp - c) / se_c) > 10.0


def test_frame_errors_and_bad_input():
    field = GaussianField(GRID)
    ff = FrameField(field)
    fs = frames.diffusion_forcing(schedules.shifted(4, 2.0), 5, ar_step=2)
    per = ff.frame_errors(fs)
    assert per.shape == (5,) and np.all(per > 0)
    assert per[0] == pytest.approx(ff.error(fs, frames=[0]), rel=1e-12)
    with pytest.raises(ValueError, match="the frame schedule has 6 frames but the field has T'=5"):
        ff.error(frames.full_sequence(schedules.linear(3), 6))
    with pytest.raises(ValueError, match="metric must be one of"):
        ff.error(fs, "w1")
    with pytest.raises(ValueError, match=r"frames must lie in \[0, 5\)"):
        ff.error(fs, frames=[7])
    with pytest.raises(TypeError, match="FrameSchedule"):
        ff.error(schedules.linear(3))
