"""Property tests over the public API: valid input (built valid by construction) never gives NaN, inf or a broken
invariant; invalid input (one argument broken by construction) always raises ValueError/TypeError naming it.

Each property runs inside a plain test that counts the examples reaching each branch and asserts the counts, so a
strategy that stops producing valid (or invalid) input makes the test fail instead of passing vacuously."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowsched import LatentGeometry, opensora, schedules
from flowsched.geometry import VAES, FrameCountWarning
from flowsched.noise import noise
from flowsched.spec import FAMILIES, from_spec

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values that are wrong for a positive-integer argument, each for a reason a user could hit.
BAD_COUNTS = st.sampled_from([0, -1, -(2**40), 2.0, 1.5, True, False, None, "8", float("nan"), float("inf")])
# Values that are wrong for a shift alpha (must be a finite real > 0).
BAD_ALPHAS = st.sampled_from([0.0, -2.0, float("nan"), float("inf"), -float("inf"), "3", True])


def _raises_naming(call, name: str) -> None:
    """``call()`` must raise ValueError or TypeError whose message names ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except (ValueError, TypeError) as exc:
        assert name in str(exc), f"{type(exc).__name__} does not name {name!r}: {exc}"
    else:
        raise AssertionError(f"no error for a bad {name}")


# -- Open-Sora's schedule: valid by construction -----------------------------------------------------------------


@st.composite
def opensora_args(draw) -> dict:
    """Arguments Open-Sora accepts and whose rule gives a positive shift: base/max shift in [0.5, 5] keep the
    line positive for every token count up to 4096 (at 1 token it is at least 0.5 - 255/3840 * 4.5 > 0.2)."""
    args = {
        "num_steps": draw(st.integers(1, 400)),
        "image_seq_len": draw(st.integers(1, 4096)),
        "num_frames": draw(st.integers(1, 200)),
    }
    kind = draw(st.sampled_from(["rule", "line", "alpha", "off"]))
    if kind == "line":
        args["base_shift"] = draw(st.floats(0.5, 5.0))
        args["max_shift"] = draw(st.floats(0.5, 5.0))
    elif kind == "alpha":
        args["shift_alpha"] = draw(st.floats(1e-3, 1e3))
    elif kind == "off":
        args["shift"] = False
        args["shift_alpha"] = draw(st.one_of(st.none(), st.floats(1e-3, 1e3)))
    return args


def _family(args: dict):
    """The float64 family for Open-Sora's arguments: its shift_alpha is the family's alpha; shift=False is the
    linear grid."""
    if args.get("shift") is False:
        return schedules.linear(args["num_steps"])
    line = {k: args[k] for k in ("base_shift", "max_shift") if k in args}
    return schedules.opensora(args["num_steps"], args["image_seq_len"], args["num_frames"], args.get("shift_alpha"),
                              **line)


def test_opensora_schedules_on_valid_input_are_finite_and_ordered():
    count = {"valid": 0}

    @SETTINGS
    @given(args=opensora_args())
    def check(args):
        n = args["num_steps"]
        out = opensora.get_schedule(**args)
        assert len(out) == n + 1 and all(math.isfinite(x) for x in out)
        assert abs(out[0] - 1.0) <= 2.4e-7 and out[-1] == 0.0
        assert all(a >= b for a, b in itertools.pairwise(out))  # float32: neighbours near 1 may round equal
        sched = _family(args)
        assert np.all(np.isfinite(sched.t)) and np.all(np.diff(sched.t) < 0)
        assert sched.t[0] == 1.0 and sched.t[-1] == 0.0
        np.testing.assert_allclose(sched.t, out, atol=3e-7, rtol=0)  # the float64 family agrees
        count["valid"] += 1

    check()
    assert count["valid"] == 120


@st.composite
def broken_opensora_args(draw) -> tuple[dict, str]:
    """Valid arguments with exactly one broken: (arguments, the name the error must mention)."""
    args = draw(opensora_args())
    name = draw(st.sampled_from(["num_steps", "image_seq_len", "num_frames", "shift_alpha", "shift"]))
    if name == "shift_alpha":
        args.pop("shift", None)
        args["shift_alpha"] = draw(BAD_ALPHAS)
    elif name == "shift":
        args["shift"] = draw(st.sampled_from([1, 0, "yes", None]))
    else:
        args[name] = draw(BAD_COUNTS)
    return args, name


def test_opensora_schedules_on_invalid_input_raise_naming_the_argument():
    count = {"invalid": 0}

    @SETTINGS
    @given(case=broken_opensora_args())
    def check(case):
        args, name = case
        _raises_naming(lambda: opensora.get_schedule(**args), name)
        if name != "shift":  # Open-Sora's switch; the family has none (the linear grid is schedules.linear)
            args.pop("shift", None)
            _raises_naming(lambda: _family(args), "alpha" if name == "shift_alpha" else name)
        count["invalid"] += 1

    check()
    assert count["invalid"] == 120


# -- every family reachable from a spec -------------------------------------------------------------------------


@st.composite
def family_spec(draw) -> tuple[str, dict]:
    """(family, keyword arguments) valid for that family by construction."""
    name = draw(st.sampled_from(sorted(FAMILIES)))
    n = draw(st.integers(2, 120))
    tokens = draw(st.integers(256, 16384))
    kw: dict = {"num_steps": n}
    if name == "shifted":
        kw["alpha"] = draw(st.floats(0.05, 50.0))
    elif name in ("opensora",):
        kw.update(image_seq_len=tokens, num_frames=draw(st.integers(1, 64)))
    elif name in ("flux", "cogview4"):
        kw["image_seq_len"] = tokens
    elif name == "ltx":
        kw["seq_len"] = draw(st.integers(1024, 40000))
    elif name in ("karras", "exponential", "polyexponential", "beta", "kl_optimal"):
        lo = draw(st.floats(1e-4, 0.2))
        kw.update(t_min=lo, t_max=draw(st.floats(0.5, 1.0)))
        if name == "polyexponential":
            kw["rho"] = draw(st.floats(0.2, 8.0))
    elif name == "comfyui":
        # the schedulers that return N + 1 values at N <= 120 (ddim_uniform: docs/schedules.md, tests/test_comfyui.py)
        kw["scheduler"] = draw(st.sampled_from(["simple", "sgm_uniform", "karras", "exponential", "beta", "normal",
                                                "linear_quadratic", "kl_optimal"]))
        kw["mu" if draw(st.booleans()) else "alpha"] = draw(st.floats(0.2, 2.5))
    elif name == "grid":
        kw["kind"] = draw(st.sampled_from(["linear", "wan", "unipc", "diffusers"]))
    elif name in ("diffusers_default", "flow_sigmas"):
        kw["alpha"] = draw(st.floats(0.2, 20.0))
    elif name == "flow_match_euler":
        kw["shift"] = draw(st.floats(0.2, 20.0))
        if draw(st.booleans()):
            kw.update(use_dynamic_shifting=True, mu=draw(st.floats(-1.0, 3.0)))
    elif name == "linear_quadratic":
        kw["threshold_noise"] = draw(st.floats(0.005, 0.2))
    return name, kw


def test_every_family_on_valid_input_gives_a_finite_decreasing_schedule():
    count: dict[str, int] = {}

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=family_spec())
    def check(case):
        name, kw = case
        s = FAMILIES[name](**kw)
        assert s.num_steps == kw["num_steps"]
        assert np.all(np.isfinite(s.t)) and np.all(np.diff(s.t) < 0) and s.t[-1] == 0.0 and s.t[0] <= 1.0
        fed = s.model_timesteps()
        assert fed.shape == (s.num_steps,) and np.all(np.isfinite(fed)) and np.all(fed >= 0)
        text = f"{name}:" + ",".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in kw.items())
        assert from_spec(text.replace("'", "")) == s  # the spec language builds the same value
        count[name] = count.get(name, 0) + 1

    check()
    assert sum(count.values()) == 400
    assert set(count) == set(FAMILIES), f"families never drawn: {set(FAMILIES) - set(count)}"


# -- geometry ---------------------------------------------------------------------------------------------------


@st.composite
def geometry_args(draw) -> dict:
    vae = draw(st.sampled_from(sorted(VAES)))
    spec = VAES[vae]
    frames = 1 if spec.is_image_only else draw(st.integers(1, 400))
    return {
        "height": draw(st.integers(1, 8192)),
        "width": draw(st.integers(1, 8192)),
        "num_frames": frames,
        "vae": vae,
        "num_samples": draw(st.integers(1, 64)),
    }


def test_geometry_on_valid_input():
    count = {"valid": 0, "warned": 0}

    @SETTINGS
    @given(args=geometry_args())
    def check(args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = LatentGeometry.from_pixels(**args)
        count["warned"] += any(issubclass(w.category, FrameCountWarning) for w in caught)
        assert all(isinstance(s, int) and s > 0 for s in g.noise_shape)
        assert g.padded_height >= args["height"] and g.padded_width >= args["width"]
        assert g.padded_height % g.vae.pixels_per_token == 0 and g.padded_width % g.vae.pixels_per_token == 0
        assert g.seq_len == g.latent_frames * g.image_seq_len and g.noise_shape[0] == args["num_samples"]
        assert (g.decoded_frames == args["num_frames"]) == (not g.warnings)
        count["valid"] += 1

    check()
    assert count["valid"] == 120
    assert 0 < count["warned"] < 120  # both frame-count branches were reached


def test_geometry_on_invalid_input_raises_naming_the_argument():
    count = {"invalid": 0}

    @SETTINGS
    @given(args=geometry_args(), name=st.sampled_from(["height", "width", "num_frames", "num_samples", "vae"]),
           bad=BAD_COUNTS)
    def check(args, name, bad):
        args[name] = "no-such-vae" if name == "vae" else bad
        _raises_naming(lambda: LatentGeometry.from_pixels(**args), name if name != "vae" else "no-such-vae")
        count["invalid"] += 1

    check()
    assert count["invalid"] == 120


# -- noise -------------------------------------------------------------------------------------------------------


def test_noise_on_valid_input_is_finite_with_the_asked_shape():
    count = {"valid": 0}

    @settings(max_examples=60, deadline=None)
    @given(
        shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
        seed=st.integers(-(2**63), 2**64 - 1),
        per_sample=st.sampled_from([None, True]),
    )
    def check(shape, seed, per_sample):
        if per_sample and seed + shape[0] - 1 > 2**64 - 1:
            seed -= shape[0]  # per-sample seeds seed + i must stay in range: keep the input valid
        x = noise(tuple(shape), seed, per_sample_seeds=per_sample)
        assert tuple(x.shape) == tuple(shape) and bool(torch.isfinite(x).all())
        count["valid"] += 1

    check()
    assert count["valid"] == 60


def test_noise_per_sample_seeds_on_a_1d_shape():
    """Found by the property test above: each sample of a 1-D shape is a 0-d draw of its own generator."""
    x = noise((3,), 5, per_sample_seeds=True)
    assert tuple(x.shape) == (3,)
    for i in range(3):  # sample i is the first value of generator seed + i
        assert x[i] == torch.randn(1, generator=torch.Generator().manual_seed(5 + i))[0]


def test_noise_on_invalid_input_raises():
    count = {"invalid": 0}

    @settings(max_examples=60, deadline=None)
    @given(
        which=st.sampled_from(["shape", "seed"]),
        bad_shape=st.lists(st.integers(-3, 0), min_size=1, max_size=4),
        bad_seed=st.one_of(st.integers(2**64, 2**70), st.integers(-(2**70), -(2**63) - 1), st.floats(), st.none()),
    )
    def check(which, bad_shape, bad_seed):
        if which == "shape":
            _raises_naming(lambda: noise(tuple(bad_shape), 0), "shape")
        else:
            _raises_naming(lambda: noise((1, 2), bad_seed), "seed")
        count["invalid"] += 1

    check()
    assert count["invalid"] == 60
