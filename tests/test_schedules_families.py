"""Schedule families against independent expectations: the peers' own code where it installs (diffusers),
the papers' formulas written another way, invariants (hypothesis), and the bad-input contract."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import Schedule, spec
from flowsched import diffusers_rules as D
from flowsched import schedules as S

# -- base grids ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_grids(n):
    np.testing.assert_allclose(S.grid(n).t, np.linspace(1, 0, n + 1), atol=1e-15)
    np.testing.assert_allclose(S.grid(n).t, S.linear(n).t, atol=1e-15)
    wan = S.grid(n, "wan").t
    np.testing.assert_allclose(wan[:-1], [0.999 * (1 - i / n) for i in range(n)], atol=1e-15)
    dif = S.grid(n, "diffusers").t
    assert dif[0] == 1.0 and dif[-1] == 0.0 and (n == 1 or dif[-2] == pytest.approx(0.001))
    uni = S.grid(n, "unipc").t
    np.testing.assert_allclose(uni[:-1], 1 - np.arange(n) * 0.999 / n, atol=1e-15)


def test_grid_kind_diffusers_is_the_unshifted_default_path():
    from diffusers import FlowMatchEulerDiscreteScheduler

    sch = FlowMatchEulerDiscreteScheduler()
    sch.set_timesteps(20)
    np.testing.assert_allclose(S.grid(20, "diffusers").t, sch.sigmas.numpy(), atol=1e-6, rtol=0)


def test_diffusers_default_single_and_double_shift():
    single = D.diffusers_default(50, 3.0)
    double = D.diffusers_default(50, 3.0, double_shift=True)
    shift = lambda t, a: a * t / (1 + (a - 1) * t)  # noqa: E731
    assert single.t[-2] == pytest.approx(shift(0.001, 3.0))  # 0.002994, docs/schedules.md reference numbers
    assert single.t[-2] == pytest.approx(0.002994, abs=1e-6)
    assert double.t[-2] == pytest.approx(shift(shift(0.001, 3.0), 3.0))  # 0.008929
    assert double.t[-2] == pytest.approx(0.008929, abs=1e-6)
    np.testing.assert_allclose(double.t, D.flow_match_euler(50, shift=3.0).t, atol=1e-9)
    # with alpha = 1 the two coincide
    np.testing.assert_array_equal(D.diffusers_default(9, 1.0).t, D.diffusers_default(9, 1.0, double_shift=True).t)


# -- warps ----------------------------------------------------------------------------------------------------------


@given(alpha=st.floats(0.1, 50), n=st.integers(1, 80))
@settings(max_examples=40, deadline=None)
def test_warp_is_the_sd3_shift(alpha, n):
    t = np.linspace(1, 0, n + 1)
    w = S.warp(S.linear(n), alpha)
    # SD3 paper form: t' = alpha t / (1 + (alpha - 1) t); equivalently 1/t' - 1 = (1/t - 1) / alpha
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose((1 / w.t[:-1] - 1) * alpha, 1 / t[:-1] - 1, rtol=1e-9, atol=1e-12)
    assert w.t[0] == 1 and w.t[-1] == 0 and w.params["alpha"] == alpha


@given(mu=st.floats(-2, 4), sigma=st.floats(0.3, 3), n=st.integers(2, 60))
@settings(max_examples=40, deadline=None)
def test_warp_mu(mu, sigma, n):
    base = S.linear(n)
    t = base.t[:-1]
    got = S.warp_mu(base, mu, sigma=sigma).t
    expect = 1 / (1 + np.exp(-mu) * (1 / t - 1) ** sigma)  # BFL time_shift divided through by exp(mu)
    np.testing.assert_allclose(got[:-1], expect, rtol=1e-12)
    assert got[-1] == 0
    np.testing.assert_allclose(S.warp_mu(base, mu).t, S.warp(base, math.exp(mu)).t, rtol=1e-12, atol=1e-15)
    if mu > 1e-6:  # linear mu is alpha itself; a subnormal alpha collapses every t to 0 (rightly refused)
        np.testing.assert_allclose(S.warp_mu(base, mu, time_shift_type="linear").t, S.warp(base, mu).t, rtol=1e-12)


def test_stretch_matches_diffusers_method():
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    sch = FlowMatchEulerDiscreteScheduler(shift_terminal=0.1)
    pts = S.warp_mu(S.linear(30), 2.5)
    ours = S.stretch_to_terminal(pts, 0.1)
    theirs = sch.stretch_shift_to_terminal(torch.tensor(pts.t[:-1], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours.t[:-1], theirs, atol=1e-12)
    assert ours.t[0] == 1.0 and ours.t[-2] == pytest.approx(0.1) and ours.t[-1] == 0.0


def test_invert_is_mochi_convention():
    s = S.invert(S.linear_quadratic(10))
    np.testing.assert_allclose(s.t, 1 - S.linear_quadratic(10).t)
    assert s.t[0] == 0 and s.t[-1] == 1 and s.params["inverted"] is True


# -- resolution rules -------------------------------------------------------------------------------------------------


def test_flux_mu_line_and_clamp():
    assert S.flux_mu(256) == pytest.approx(0.5) and S.flux_mu(4096) == pytest.approx(1.15)
    assert S.flux_mu(16384) == pytest.approx(0.5 + 0.65 * (16384 - 256) / 3840)  # 3.23, extrapolated (note 1.2)
    assert S.flux_mu(16384) == pytest.approx(3.23, abs=0.01)
    assert S.flux_mu(16384, clamp=True) == pytest.approx(1.15)
    assert S.flux_mu(64, clamp=True) == pytest.approx(0.5)
    # LTX uses the same line over F'*H'*W' (docs/schedules.md: 7392 tokens -> mu 3.2302)
    assert S.flux_mu(7392, 0.95, 2.05, 1024, 4096) == pytest.approx(3.2302, abs=1e-4)


def test_opensora_alpha_clamp():
    assert S.opensora_alpha(2304, 33) == pytest.approx((2304 / 1920 + 13 / 15) * math.sqrt(33))
    assert S.opensora_alpha(64, 1) == pytest.approx(1 + (64 - 256) * 2 / 3840)  # unclamped: below 1
    assert S.opensora_alpha(64, 1, clamp=True) == 1.0
    assert S.opensora_alpha(9000, 4, clamp=True) == pytest.approx(6.0)


def test_cogview4_mu():
    assert S.cogview4_mu(4096) == pytest.approx(3.25)  # 1024^2
    assert S.cogview4_mu(16384) == pytest.approx(0.25 + 0.75 * 8)
    assert S.cogview4_mu(16384, clamp=True) == pytest.approx(3.25)


def test_ltx_and_flux_families_without_clamp_match_their_rules():
    s = S.ltx(20, 7392)
    base = S.warp_mu(S.linear(20), S.flux_mu(7392, 0.95, 2.05, 1024, 4096))
    np.testing.assert_allclose(s.t, S.stretch_to_terminal(base, 0.1).t, atol=1e-12)
    assert S.ltx(20, 7392, clamp=True).params["mu"] == pytest.approx(2.05)
    assert S.ltx(20, 7392, terminal=None).t[-2] == pytest.approx(base.t[-2])


# -- noise-level families ---------------------------------------------------------------------------------------------


@given(n=st.integers(2, 60), lo=st.floats(1e-4, 0.2), hi=st.floats(0.5, 1.0), rho=st.floats(1.0, 10.0))
@settings(max_examples=30, deadline=None)
def test_karras_is_linear_in_t_to_the_one_over_rho(n, lo, hi, rho):
    s = S.karras(n, hi, lo, rho).t[:-1]
    root = s ** (1 / rho)
    np.testing.assert_allclose(np.diff(root), np.full(n - 1, (lo ** (1 / rho) - hi ** (1 / rho)) / (n - 1)),
                               rtol=1e-7, atol=1e-12)
    assert s[0] == pytest.approx(hi) and s[-1] == pytest.approx(lo)


@given(n=st.integers(2, 60), lo=st.floats(1e-4, 0.2), hi=st.floats(0.5, 1.0))
@settings(max_examples=30, deadline=None)
def test_exponential_and_kl_optimal(n, lo, hi):
    e = S.exponential(n, hi, lo).t[:-1]
    np.testing.assert_allclose(np.diff(np.log(e)), math.log(lo / hi) / (n - 1), rtol=1e-9)
    k = S.kl_optimal(n, hi, lo).t[:-1]
    np.testing.assert_allclose(np.diff(np.arctan(k)), (math.atan(lo) - math.atan(hi)) / (n - 1), rtol=1e-9)


def test_beta_against_scipy_stats():
    from scipy import stats

    for n in (1, 2, 10, 30):
        got = S.beta(n, 0.99, 0.01).t[:-1]
        q = np.array([stats.beta.ppf(x, 0.6, 0.6) for x in 1 - np.linspace(0, 1, n)])
        np.testing.assert_allclose(got, 0.01 + q * 0.98, atol=1e-12)
    assert S.kl_optimal(1).t.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("n", [2, 3, 10, 64, 101])
@pytest.mark.parametrize("tn", [0.025, 0.1])
def test_linear_quadratic_matches_genmo_via_diffusers(n, tn):
    from diffusers.pipelines.mochi.pipeline_mochi import linear_quadratic_schedule

    np.testing.assert_allclose(S.linear_quadratic(n, tn).t, [*linear_quadratic_schedule(n, tn), 0.0], atol=1e-12)


def test_linear_quadratic_shape_and_comfyui_variant():
    s = S.linear_quadratic(64)
    L = 32
    u = 1 - s.t
    np.testing.assert_allclose(np.diff(u[: L + 1]), 0.025 / L, rtol=1e-9)  # linear part reaches tn at i = L
    assert u[-1] == pytest.approx(1.0)
    assert S.linear_quadratic(1, variant="comfyui").t.tolist() == [1.0, 0.0]
    c = S.linear_quadratic(12, variant="comfyui", t_max=0.9)
    np.testing.assert_allclose(c.t, 0.9 * S.linear_quadratic(12).t, atol=1e-15)
    with pytest.raises(ValueError, match="num_steps must be >= 2 for variant='mochi'"):
        S.linear_quadratic(1)
    with pytest.raises(ValueError, match="linear_steps"):
        S.linear_quadratic(10, linear_steps=10)


# -- interpolation and user lists ------------------------------------------------------------------------------------


def test_loglinear_interp():
    ex = S.exponential(10, 1.0, 0.01)
    np.testing.assert_allclose(S.loglinear_interp(ex, 25).t, S.exponential(25, 1.0, 0.01).t, rtol=1e-12)
    np.testing.assert_allclose(S.loglinear_interp(ex, 10).t, ex.t, rtol=1e-12)
    shipped = [1.0, 0.9937, 0.9875, 0.9812, 0.9750, 0.9094, 0.7250]  # LTX 0.9.8 distilled (note 3.5)
    s = S.loglinear_interp(S.from_list(shipped, append_zero=True), 12)
    assert s.num_steps == 12 and s.t[0] == 1.0 and s.t[-2] == 0.725 and s.t[-1] == 0.0
    assert np.all(np.diff(s.t) < 0)
    assert S.loglinear_interp([1.0, 0.5, 0.0], 1).t.tolist() == [1.0, 0.0]


def test_from_list_and_json_spec(tmp_path):
    s = S.from_list([1, 0.6, 0.2, 0])
    assert s.num_steps == 3 and s.name == "custom"
    assert S.from_list([1, 0.6, 0.2], append_zero=True) .t.tolist() == [1, 0.6, 0.2, 0]
    path = tmp_path / "mine.json"
    S.shifted(12, 3.0).to_json(path)
    assert spec.from_spec(str(path)) == S.shifted(12, 3.0)
    assert spec.from_spec("[1, 0.5, 0]").t.tolist() == [1, 0.5, 0]


def test_family_and_preset_names_never_collide():
    from flowsched.presets import PRESETS

    assert not set(spec.FAMILIES) & set(PRESETS)


def test_from_spec_forms():
    assert spec.from_spec("shifted:alpha=3,steps=30") == S.shifted(30, 3.0)
    assert spec.from_spec("shifted:alpha=3", num_steps=8) == S.shifted(8, 3.0)
    assert spec.from_spec("flow_match_euler:steps=28,shift=3") == D.flow_match_euler(28, shift=3.0)
    assert spec.from_spec("karras:steps=10,t_min=0.002,rho=5") == S.karras(10, t_min=0.002, rho=5)
    assert spec.from_spec("grid:steps=4,kind=wan") == S.grid(4, "wan")
    assert spec.from_spec("flow_match_euler:sigmas=1;0.5;0.25,shift=2").num_steps == 3
    from flowsched.presets import get_preset

    p = get_preset("flux.1-dev")
    assert spec.from_spec("flux.1-dev") == p.schedule()
    assert spec.from_spec("preset:flux.1-dev,steps=12,height=768,width=768") == p.schedule(p.geometry(768, 768), 12)
    assert spec.from_spec("flux.1-dev:steps=12,alpha=2") == p.schedule(None, 12, alpha=2.0)
    assert spec.from_spec("flux.1-dev:steps=12,shift_alpha=2") == p.schedule(None, 12, alpha=2.0)
    # diffusers' config calls alpha `shift`; a spec may say either
    assert spec.from_spec("flow_match_euler:steps=28,alpha=3") == D.flow_match_euler(28, shift=3.0)


# -- invariants over every family ---------------------------------------------------------------------------


@given(n=st.integers(1, 80), seq=st.integers(16, 40000), alpha=st.floats(0.2, 30))
@settings(max_examples=40, deadline=None)
def test_families_are_monotone_schedules_from_noise_to_data(n, seq, alpha):
    made = [S.grid(n), S.grid(n, "wan"), S.grid(n, "unipc"), D.diffusers_default(n, alpha),
            D.diffusers_default(n, alpha, double_shift=True), S.flux(n, seq), S.cogview4(n, seq),
            S.karras(n), S.exponential(n), S.beta(n), S.kl_optimal(n), S.linear_quadratic(n, variant="comfyui")]
    if n > 1:
        made.append(S.ltx(n, seq))
    for s in made:
        assert isinstance(s, Schedule) and s.num_steps == n
        assert np.all(np.diff(s.t) < 0) and s.t[-1] == 0.0 and s.t[0] <= 1.0
        assert s.t.dtype == np.float64


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: S.from_list([1, 0.7, 0.8, 0]), r"values must be strictly decreasing.*values\[1\]=0.7"),
        (lambda: S.from_list([1.2, 0.5, 0]), r"values must lie in \[0, 1\].*values\[0\]=1.2"),
        (lambda: S.from_list([1, 0.5, 0], append_zero=True), r"values must lie in \(0, 1\]"),
        (lambda: S.from_list([1, float("nan"), 0]), "values must be finite"),
        (lambda: S.from_list([1.0]), "at least 2"),
        (lambda: D.flow_match_euler(3, sigmas=[1, 0.2, 0.5]), r"sigmas must be strictly decreasing"),
        (lambda: D.flow_match_euler(3, sigmas=[1, 0.5, 0.0]), r"sigmas must lie in \(0, 1\]"),
        (lambda: D.flow_match_euler(4, sigmas=[1, 0.5, 0.2]), "num_steps=4 but sigmas \\(or timesteps\\) hold 3"),
        (lambda: D.flow_match_euler(10, use_dynamic_shifting=True), "mu must be passed when use_dynamic_shifting"),
        (lambda: D.flow_match_euler(10, use_karras_sigmas=True, use_beta_sigmas=True),
         "use_karras_sigmas and use_beta_sigmas are mutually exclusive"),
        (lambda: D.flow_match_euler(10, time_shift_type="cosine"), "time_shift_type must be"),
        (lambda: D.flow_match_euler(1, shift_terminal=0.1), "shift_terminal needs"),
        (lambda: D.flow_match_euler(10, shift_terminal=1.5), "shift_terminal must lie strictly between 0 and 1"),
        (lambda: D.flow_match_euler(10, shift=-1.0), "shift must be a finite number > 0"),
        (lambda: D.flow_match_euler(10, num_train_timesteps=1), "num_train_timesteps=1"),
        (lambda: D.flow_match_euler(None), "num_steps must be given"),
        (lambda: S.karras(10, 0.5, 0.8), "t_min < t_max"),
        (lambda: S.warp_mu(S.linear(3), -1.0, time_shift_type="linear"), "mu must be > 0"),
        (lambda: S.grid(5, "cosine"), "kind must be one of"),
        (lambda: spec.from_spec("shifted:alpha=3,steps=30,beta=2"), "shifted takes no parameter 'beta'"),
        (lambda: spec.from_spec("shifted:steps=30"), "shifted needs alpha"),
        (lambda: spec.from_spec("shiftd:alpha=3"), "Did you mean 'shifted'"),
        (lambda: spec.from_spec("shifted:alpha"), "expected key=value"),
        (lambda: spec.from_spec("flux.1-dev:guidance=3"), "a preset accepts steps"),
    ],
)
def test_bad_input_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: D.flow_match_euler(10, use_karras=True), "'use_karras' is not a FlowMatchEulerDiscreteScheduler"),
        (lambda: S.karras(2.5), "num_steps must be a positive integer"),
        (lambda: S.from_list("abc"), "values must be a sequence of numbers"),
        (lambda: D.flow_match_euler(5, invert_sigmas="yes"), "invert_sigmas must be True or False"),
    ],
)
def test_bad_input_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize("n", [0, -3])
@pytest.mark.parametrize(
    "family",
    [S.linear, S.grid, S.karras, S.exponential, S.beta, S.kl_optimal, S.linear_quadratic,
     lambda n: S.flux(n, 4096), lambda n: S.ltx(n, 4096), lambda n: S.cogview4(n, 4096),
     lambda n: D.diffusers_default(n, 3.0), lambda n: D.flow_match_euler(n, shift=3.0),
     lambda n: S.loglinear_interp(S.linear(4), n)],
)
def test_num_steps_below_one(family, n):
    with pytest.raises(ValueError, match=f"num_steps must be a positive integer, got {n}"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            family(n)
