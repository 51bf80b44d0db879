"""Samplers: Open-Sora step semantics, convergence order against exact flows, numpy/torch parity, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import schedules
from flowsched.sampling import euler, heun, nfe, schedule_values


def gaussian_velocity(mu: float, s: float):
    """Exact velocity for 1-D data N(mu, s^2), written from the posterior mean (docs/quality-models.md, first form):
    v = (x - E[x0 | x_t]) / t with E[x0 | x_t] = mu + (1 - t) s^2 (x - (1 - t) mu) / ((1 - t)^2 s^2 + t^2)."""

    def v(x, t):
        S = (1 - t) ** 2 * s**2 + t**2
        d = mu + (1 - t) * s**2 * (x - (1 - t) * mu) / S
        return (x - d) / t

    return v


def exact_flow(eps, mu: float, s: float, t: float):
    """The exact flow of the linear ODE: x_t = (1 - t) mu + sqrt((1 - t)^2 s^2 + t^2) eps."""
    return (1 - t) * mu + math.sqrt((1 - t) ** 2 * s**2 + t**2) * eps


def test_euler_is_the_opensora_loop():
    # The loop written out by hand, as in Open-Sora's denoise: img = img + (t_prev - t_curr) * pred.
    sched = schedules.opensora(7, 252, 33)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 4))
    vel = lambda x, t: np.sin(x) * t - 0.3 * x  # noqa: E731
    expected = x0.copy()
    ts = sched.to_list()
    for t_curr, t_prev in zip(ts[:-1], ts[1:], strict=True):
        expected = expected + (t_prev - t_curr) * vel(expected, t_curr)
    np.testing.assert_array_equal(euler(vel, x0, sched), expected)


def test_euler_matches_diffusers_flow_match_euler_scheduler():
    # The peer implementation: diffusers' FlowMatchEulerDiscreteScheduler driven with our sigmas (float32 inside).
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = schedules.shifted(7, 3.0)
    peer = FlowMatchEulerDiscreteScheduler()
    peer.set_timesteps(sigmas=sched.t[:-1].tolist())  # diffusers appends the terminal 0 itself
    vel = lambda x, t: torch.sin(x) - t * x  # noqa: E731
    x = torch.linspace(-2, 2, 8)
    y = x.clone()
    for i, timestep in enumerate(peer.timesteps):
        y = peer.step(vel(y, float(peer.sigmas[i])), timestep, y).prev_sample
    torch.testing.assert_close(euler(vel, x, sched), y, rtol=0, atol=2e-6)


def test_euler_torch_matches_numpy_and_keeps_dtype():
    sched = schedules.linear(9)
    vel_np = lambda x, t: np.cos(x) - t * x  # noqa: E731
    vel_t = lambda x, t: torch.cos(x) - t * x  # noqa: E731
    x = np.linspace(-2, 2, 10)
    out_np = euler(vel_np, x, sched)
    out_t = euler(vel_t, torch.tensor(x), sched)
    assert out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=0, atol=1e-14)
    out_h = heun(vel_t, torch.tensor(x, dtype=torch.float32), sched)
    assert out_h.dtype == torch.float32


def test_euler_first_order_heun_second_order_on_exact_gaussian_flow():
    mu, s = 0.7, 0.4
    v = gaussian_velocity(mu, s)
    eps = np.array([-1.5, 0.2, 1.1])
    # stop at t = 0.05 so Heun's corrector is used on every step (the final Euler step would cap its order)
    target = exact_flow(eps, mu, s, 0.05)
    errs_e, errs_h = [], []
    for n in (20, 40, 80):
        ts = np.linspace(1.0, 0.05, n + 1)
        errs_e.append(np.abs(euler(v, eps, ts, allow_partial=True) - target).max())
        errs_h.append(np.abs(heun(v, eps, ts, allow_partial=True) - target).max())
    for a, b in itertools.pairwise(errs_e):
        assert 1.7 < a / b < 2.3  # first order
    for a, b in itertools.pairwise(errs_h):
        assert 3.4 < a / b < 4.6  # second order


def test_final_euler_step_returns_posterior_mean():
    # From t to 0 an Euler step gives x - t v = E[x0 | x_t] exactly (docs/conventions.md).
    mu, s, t1 = 0.3, 0.5, 0.2
    v = gaussian_velocity(mu, s)
    x = np.array([0.1, -0.4])
    out = euler(v, x, [t1, 0.0], allow_partial=True)
    S = (1 - t1) ** 2 * s**2 + t1**2
    np.testing.assert_allclose(out, mu + (1 - t1) * s**2 * (x - (1 - t1) * mu) / S, rtol=1e-13)


def test_heun_counts_nfe_and_calls_back():
    calls = []
    seen = []

    def v(x, t):
        calls.append(t)
        return -x

    sched = schedules.linear(5)
    heun(v, np.ones(2), sched, callback=lambda i, t, tn, x: seen.append((i, t, tn)))
    assert len(calls) == nfe("heun", 5) == 9
    assert calls[-1] == pytest.approx(0.2)  # last call is the Euler predictor at t_{N-1}; never at t = 0
    assert 0.0 not in calls
    assert [s[0] for s in seen] == list(range(5))
    assert seen[-1][2] == 0.0
    calls.clear()
    euler(v, np.ones(2), sched)
    assert len(calls) == nfe("euler", 5) == 5


def test_progress_bar_goes_to_stderr(capsys):
    euler(lambda x, t: -x, np.ones(2), schedules.linear(3), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.floats(0.2, 20.0))
def test_linear_velocity_euler_matches_product_formula(n, alpha):
    # v = a(t) x with a constant in x: Euler multiplies by prod (1 + h_i a(t_i)); computed in log space.
    a = lambda t: 1.0 / (1.0 + t)  # noqa: E731
    u = np.linspace(1.0, 0.0, n + 1)
    ts = np.clip(alpha * u / (1 + (alpha - 1) * u), 0.0, 1.0)
    out = euler(lambda x, t: a(t) * x, np.array([1.0]), ts)
    logs = sum(math.log1p((ts[i + 1] - ts[i]) * a(ts[i])) for i in range(n))
    assert out[0] == pytest.approx(math.exp(logs), rel=1e-12)


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", [euler, heun])
def test_non_monotone_schedule_names_index(sampler):
    with pytest.raises(ValueError, match=r"strictly decreasing.*schedule\[1\]=0\.5 is followed by schedule\[2\]=0\.7"):
        sampler(lambda x, t: x, np.ones(1), [1.0, 0.5, 0.7, 0.0])
    with pytest.raises(ValueError, match="strictly decreasing"):
        sampler(lambda x, t: x, np.ones(1), [0.0, 0.5, 1.0])  # increasing: a reversed list
    with pytest.raises(ValueError, match="strictly decreasing"):
        sampler(lambda x, t: x, np.ones(1), [1.0, 0.5, 0.5, 0.0])


@pytest.mark.parametrize("sampler", [euler, heun])
def test_wrong_endpoints(sampler):
    with pytest.raises(ValueError, match=r"start at t_0 = 1.*0\.9"):
        sampler(lambda x, t: x, np.ones(1), [0.9, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"end at t_N = 0.*0\.1"):
        sampler(lambda x, t: x, np.ones(1), [1.0, 0.5, 0.1])
    # allowed explicitly
    sampler(lambda x, t: -x, np.ones(1), [0.9, 0.5, 0.1], allow_partial=True)
    with pytest.raises(ValueError, match=r"\[0, 1\] .*schedule\[0\]=1\.5"):
        sampler(lambda x, t: x, np.ones(1), [1.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="at least 2"):
        sampler(lambda x, t: x, np.ones(1), [1.0])
    with pytest.raises(ValueError, match="finite"):
        sampler(lambda x, t: x, np.ones(1), [1.0, float("nan"), 0.0])


def test_endpoints_within_float32_rounding_pass_unchanged():
    ts = schedule_values([1.0 - 1e-7, 0.5, 1e-8])
    assert ts[0] == 1.0 - 1e-7 and ts[-1] == 1e-8  # accepted, values untouched
    with pytest.raises(ValueError, match="start at t_0 = 1"):
        schedule_values([1.0 - 1e-5, 0.5, 0.0])


# Heun first meets t = 0.5 in the corrector of step 1 (from 0.75 to 0.5); Euler at the start of step 2.
WHERE = {euler: r"step 2 \(t=0\.5\)", heun: r"step 1 \(t=0\.5, Heun corrector\)"}


@pytest.mark.parametrize("sampler", [euler, heun])
def test_velocity_wrong_shape_names_step_and_t(sampler):
    def v(x, t):
        return x[:1] if t < 0.6 else -x

    with pytest.raises(ValueError, match=rf"shape \(1,\) at {WHERE[sampler]}.*must match x, \(3,\)"):
        sampler(v, np.ones(3), schedules.linear(4))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("sampler", [euler, heun])
def test_velocity_nan_names_step_and_t(sampler, bad):
    def v(x, t):
        out = -x.clone()
        if t < 0.6:
            out[0] = bad
        return out

    with pytest.raises(ValueError, match=rf"NaN or inf at {WHERE[sampler]}"):
        sampler(v, torch.ones(3), schedules.linear(4), check="every")
    # the default checks the first call and the result: caught, without naming the step
    with pytest.raises(ValueError, match=r"result holds NaN or inf.*check='every'"):
        sampler(v, torch.ones(3), schedules.linear(4))
    # check="none" looks at shapes only
    out = sampler(v, torch.ones(3), schedules.linear(4), check="none")
    assert not bool(torch.isfinite(out).all())


@pytest.mark.parametrize("sampler", [euler, heun])
def test_first_velocity_call_is_checked_for_nan(sampler):
    with pytest.raises(ValueError, match=r"NaN or inf at step 0 \(t=1\.0\)"):
        sampler(lambda x, t: x * float("nan"), np.ones(2), schedules.linear(3))


@pytest.mark.parametrize("check,expected", [("first", 2), ("every", 4), ("none", 0)])
def test_finiteness_checks_per_run(monkeypatch, check, expected):
    """check="first" asks once for the first velocity and once for the result, not once per call."""
    from flowsched import sampling

    seen = []
    real = sampling._all_finite
    monkeypatch.setattr(sampling, "_all_finite", lambda v: seen.append(1) or real(v))
    euler(lambda x, t: -x, torch.ones(2), schedules.linear(4), check=check)
    assert len(seen) == expected


def test_bad_arguments():
    with pytest.raises(TypeError, match="velocity must be callable"):
        euler(None, np.ones(2), [1.0, 0.0])
    with pytest.raises(TypeError, match="x must be a numpy array or a torch tensor"):
        euler(lambda x, t: x, [1.0, 2.0], [1.0, 0.0])
    with pytest.raises(TypeError, match="floating-point"):
        euler(lambda x, t: x, np.ones(2, dtype=int), [1.0, 0.0])
    with pytest.raises(TypeError, match="schedule must be a Schedule or a sequence"):
        euler(lambda x, t: x, np.ones(2), "linear")
    with pytest.raises(TypeError, match="must return a torch tensor"):
        euler(lambda x, t: np.ones(2), torch.ones(2), [1.0, 0.0])
    with pytest.raises(ValueError, match="sampler must be"):
        nfe("rk4", 3)
    with pytest.raises(ValueError, match="check must be one of 'first', 'every', 'none'"):
        euler(lambda x, t: -x, np.ones(2), [1.0, 0.0], check="always")
