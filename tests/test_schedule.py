"""The Schedule value type and the first schedule families."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsched import Schedule, opensora, schedules


def test_schedule_basics():
    s = Schedule([1.0, 0.75, 0.5, 0.0], name="custom", params={"note": "x"})
    assert s.num_steps == 3 and len(s) == 4
    assert s.dt.tolist() == [-0.25, -0.25, -0.5]
    assert s.model_timesteps().tolist() == [1000.0, 750.0, 500.0]
    assert s.model_timesteps(1.0).tolist() == [1.0, 0.75, 0.5]
    assert s.to_list() == [1.0, 0.75, 0.5, 0.0] and all(type(v) is float for v in s.to_list())
    assert s.t.dtype == np.float64
    with pytest.raises(ValueError):
        s.t[0] = 0.3  # read-only
    with pytest.raises(AttributeError):
        s.name = "other"  # frozen
    with pytest.raises(TypeError):
        s.params["note"] = "y"


def test_to_torch():
    import torch

    s = schedules.linear(4)
    assert torch.equal(s.to_torch(), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    assert s.to_torch(dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize(
    "t,match",
    [
        ([1.0], "at least 2"),
        ([1.0, 0.5, 0.6, 0.0], "strictly monotone"),
        ([1.0, 1.0, 0.0], "strictly monotone"),
        ([1.2, 0.5, 0.0], r"\[0, 1\]"),
        ([1.0, float("nan"), 0.0], "finite"),
        ([[1.0, 0.0]], "one-dimensional"),
    ],
)
def test_schedule_rejects_bad_values(t, match):
    with pytest.raises(ValueError, match=match):
        Schedule(t)


def test_schedule_rejects_bad_params():
    with pytest.raises(TypeError, match="parameter .x."):
        Schedule([1.0, 0.0], params={"x": object()})
    with pytest.raises(ValueError, match="finite"):
        Schedule([1.0, 0.0], params={"x": float("nan")})


@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=60, unique=True),
    st.floats(0.1, 50),
)
def test_json_round_trip_is_exact(values, alpha):
    s = Schedule(sorted(values, reverse=True), name="custom", params={"alpha": alpha, "tag": "t", "flag": True})
    back = Schedule.from_json(s.to_json())
    assert back == s and np.array_equal(back.t, s.t)


def test_json_file_round_trip_and_bare_list(tmp_path):
    s = schedules.opensora(30, 2304, 33)
    path = tmp_path / "sub" / "s.json"
    s.to_json(path)
    assert Schedule.from_json(path) == s
    assert Schedule.from_json("[1, 0.5, 0]").to_list() == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="cannot read"):
        Schedule.from_json(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="format"):
        Schedule.from_json('{"format": "other", "t": [1, 0]}')


@given(st.integers(1, 500), st.floats(0.05, 200))
def test_shifted_matches_formula_and_is_monotone(n, alpha):
    s = schedules.shifted(n, alpha)
    grid = [1 - i / n for i in range(n + 1)]
    expected = [alpha * x / (1 + (alpha - 1) * x) for x in grid]
    np.testing.assert_allclose(s.t, expected, rtol=1e-13, atol=1e-15)
    assert s.t[0] == 1.0 and s.t[-1] == 0.0 and np.all(np.diff(s.t) < 0)


@given(st.integers(1, 200), st.integers(1, 20000), st.integers(1, 64))
def test_float64_opensora_agrees_with_compat(n, seq, frames):
    s = schedules.opensora(n, seq, frames)
    np.testing.assert_allclose(s.t, opensora.get_schedule(n, seq, frames), atol=1e-6, rtol=0)
    alpha = (1 + (seq - 256) * 2 / 3840) * math.sqrt(frames)
    assert s.params["alpha"] == pytest.approx(alpha, rel=1e-12)


def test_linear_and_opensora_options():
    assert schedules.linear(4).to_list() == [1.0, 0.75, 0.5, 0.25, 0.0]
    s = schedules.opensora(4, 4096, 33, alpha=3.0)
    assert s.params["alpha"] == 3.0 and s == Schedule.from_json(s.to_json())


@pytest.mark.parametrize(
    "fn,kwargs,exc,match",
    [
        (schedules.linear, {"num_steps": 0}, ValueError, "num_steps"),
        (schedules.shifted, {"num_steps": 10, "alpha": 0.0}, ValueError, "alpha"),
        (schedules.shifted, {"num_steps": 10, "alpha": float("inf")}, ValueError, "alpha"),
        (schedules.opensora, {"num_steps": 10, "image_seq_len": 0, "num_frames": 1}, ValueError, "image_seq_len"),
        (schedules.opensora, {"num_steps": 10, "image_seq_len": 1, "num_frames": 1, "alpha": -1.0}, ValueError,
         "alpha"),
    ],
)
def test_families_reject_bad_input(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(**kwargs)
