"""The shared checks and helpers every module uses: check_t (one checker of schedule values, one message style),
the Schedule's recorded model timesteps, is_torch_tensor, boolean, the SAMPLERS table, call_velocity,
progress_bar, image_format and objective_for."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from flowsched import Schedule, schedules
from flowsched._optional import progress_bar
from flowsched._validate import boolean, is_torch_tensor, suggestion
from flowsched.plot import image_format
from flowsched.quality import GaussianField, GaussianMixture, objective_for
from flowsched.sampling import SAMPLERS, call_velocity, euler, get_sampler, heun
from flowsched.schedule import ENDPOINT_TOL, check_t

# -- check_t: each rule, its message ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,kwargs,exc,match",
    [
        ([1.0], {}, ValueError, r"t must hold at least 2 values"),
        ([], {"min_size": 1}, ValueError, r"t must hold at least 1 value, got 0"),
        ([[1.0, 0.0]], {}, ValueError, r"t must be one-dimensional.*shape \(1, 2\)"),
        ([1.0, 0.0], {"rows": True}, ValueError, r"t must be \[S, N \+ 1\]"),
        ("abc", {}, TypeError, r"t must be a sequence of numbers"),
        ([1.0, float("nan"), 0.0], {}, ValueError, r"t must be finite; t\[1\]=nan"),
        ([1.0, 1.5, 0.0], {}, ValueError, r"t must lie in \[0, 1\] .*t\[1\]=1\.5"),
        ([1.0, 0.5, 0.0], {"positive": True}, ValueError, r"t must lie in \(0, 1\] .*t\[2\]=0\.0"),
        ([1.0, 0.5, 0.5, 0.0], {}, ValueError, r"strictly decreasing .*t\[1\]=0\.5 is followed by t\[2\]=0\.5"),
        ([0.0, 0.5, 1.0], {}, ValueError, r"strictly decreasing .*t\[0\]=0\.0 is followed by t\[1\]=0\.5"),
        ([0.0, 0.5, 0.4], {"decreasing": False}, ValueError, r"strictly monotone.*t\[1\]=0\.5 and t\[2\]=0\.4"),
        ([0.9, 0.5, 0.0], {"start": 1.0}, ValueError, r"t must start at t_0 = 1 \(pure noise\); t\[0\]=0\.9"),
        ([1.0, 0.5, 0.1], {"end": 0.0, "hint": "try X"}, ValueError, r"end at t_N = 0 \(data\); t\[2\]=0\.1; try X"),
        ([[1.0, 0.5, 0.0], [1.0, 0.6, 0.7]], {"rows": True}, ValueError,
         r"t\[1, 1\]=0\.6 is followed by t\[1, 2\]=0\.7"),
        ([[1.0, 0.0], [1.0, 0.2]], {"rows": True, "end": 0.0}, ValueError, r"t\[1, 1\]=0\.2"),
    ],
)
def test_check_t_rules_and_messages(values, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_t(values, **kwargs)


def test_check_t_accepts_and_returns_float64():
    out = check_t([1, 0.5, 0])
    assert out.dtype == np.float64 and out.tolist() == [1.0, 0.5, 0.0]
    assert check_t([0.0, 0.5, 1.0], decreasing=False).tolist() == [0.0, 0.5, 1.0]  # inverted schedules
    # endpoints within the tolerance pass unchanged (float32-derived schedules)
    assert check_t([1 - ENDPOINT_TOL / 2, 0.5, ENDPOINT_TOL / 2], start=1.0, end=0.0)[0] == 1 - ENDPOINT_TOL / 2
    assert check_t([0.3], positive=True, min_size=1).tolist() == [0.3]
    assert check_t(schedules.linear(2)).tolist() == [1.0, 0.5, 0.0]


def test_every_schedule_entry_point_uses_the_same_words():
    """The same bad list gives the same sentence, only the argument name differs."""
    from flowsched.quality import GaussianField
    from flowsched.sampling import schedule_values

    bad = [1.0, 0.3, 0.6, 0.0]
    messages = []
    for call in (lambda: Schedule(bad), lambda: schedules.from_list(bad), lambda: schedule_values(bad),
                 lambda: GaussianField((1, 2, 2)).error(bad)):
        with pytest.raises(ValueError) as info:
            call()
        name, rest = str(info.value).split(" must ", 1)
        messages.append(rest.replace(f"{name}[", "NAME["))
    assert messages[1] == messages[2] == messages[3], messages
    want = "be strictly decreasing (t = 1 is noise, t = 0 is data); NAME[1]=0.3 is followed by NAME[2]=0.6"
    assert messages[1] == want
    assert "strictly monotone" in messages[0]  # a Schedule may also be increasing (inverted)


# -- Schedule.timesteps ------------------------------------------------------------------------------------------


def test_recorded_timesteps_round_trip_and_are_checked():
    s = Schedule([1.0, 0.6, 0.2, 0.0], name="x", timesteps=[1000, 667, 334])
    assert s.model_timesteps().tolist() == [1000.0, 667.0, 334.0]
    assert s.model_timesteps(1.0).tolist() == [1.0, 0.667, 0.334]
    assert Schedule.from_json(s.to_json()) == s
    assert Schedule.from_json(s.to_json()).timesteps.tolist() == [1000.0, 667.0, 334.0]
    assert s != Schedule([1.0, 0.6, 0.2, 0.0], name="x")  # the fed values are part of the value
    with pytest.raises(ValueError, match="read-only"):
        s.timesteps[0] = 3.0
    with pytest.raises(ValueError, match=r"timesteps must hold N = 3 values"):
        Schedule([1.0, 0.6, 0.2, 0.0], timesteps=[1000, 667])
    with pytest.raises(ValueError, match=r"timesteps must be finite and >= 0; timesteps\[1\]=-1\.0"):
        Schedule([1.0, 0.6, 0.2, 0.0], timesteps=[1000, -1, 3])
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        s.model_timesteps(0)
    # without recorded values: t * scale, the terminal never fed
    assert schedules.linear(2).model_timesteps().tolist() == [1000.0, 500.0]


def test_warps_drop_recorded_timesteps():
    """A warp changes t; the recorded values belonged to the rule that made the old t."""
    s = schedules.cogview4(4, 4096)
    assert s.timesteps is not None
    assert schedules.warp(s, 2.0).timesteps is None


# -- small helpers --------------------------------------------------------------------------------------------------


def test_is_torch_tensor_without_importing_torch():
    assert is_torch_tensor(torch.ones(1)) and not is_torch_tensor(np.ones(1)) and not is_torch_tensor(torch.float32)
    code = "import sys, numpy; from flowsched._validate import is_torch_tensor; " \
           "print(is_torch_tensor(numpy.ones(2)), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_boolean_and_suggestion():
    assert boolean("flag", np.True_) is True and boolean("flag", False) is False
    for bad in (1, 0, "yes", None):
        with pytest.raises(TypeError, match="flag must be True or False"):
            boolean("flag", bad)
    assert suggestion("shiftd", ["shifted", "linear"]) == " Did you mean 'shifted'?"
    assert suggestion("ab", ["abc", "abd", "x"]) == " Did you mean one of abc, abd?"
    assert suggestion("zzzz", ["abc"]) == ""


def test_one_sampler_table():
    from flowsched.sampling import DETERMINISTIC, euler_ancestral, stochastic_euler

    assert SAMPLERS == {"euler": euler, "heun": heun, "euler_ancestral": euler_ancestral,
                        "stochastic_euler": stochastic_euler}
    assert get_sampler("heun") is heun
    with pytest.raises(ValueError, match="teacher_sampler must be one of 'euler', 'heun'; got 'rk4'"):
        get_sampler("rk4", "teacher_sampler", DETERMINISTIC)
    with pytest.raises(ValueError, match="teacher_sampler must be one of 'euler', 'heun'; got 'euler_ancestral'"):
        get_sampler("euler_ancestral", "teacher_sampler", DETERMINISTIC)


def test_call_velocity_checks():
    x = np.ones(3)
    assert np.array_equal(call_velocity(lambda x, t: -x, x, 0.5), -x)
    assert call_velocity(lambda x, t: [1.0, 2.0, 3.0], x, 0.5).dtype == np.float64  # lists become arrays
    with pytest.raises(ValueError, match=r"shape \(2,\) at step 4 \(t=0\.5, extra\)"):
        call_velocity(lambda x, t: x[:2], x, 0.5, step=4, stage=", extra")
    with pytest.raises(ValueError, match="NaN or inf at step 0"):
        call_velocity(lambda x, t: x * np.inf, x, 0.5)
    assert np.isinf(call_velocity(lambda x, t: x * np.inf, x, 0.5, finite=False)).all()
    with pytest.raises(TypeError, match="must return a torch tensor"):
        call_velocity(lambda x, t: np.ones(3), torch.ones(3), 0.5)


def test_progress_bar_is_a_context_manager_that_closes():
    with progress_bar(3, False, "off") as bar:
        bar.update(1)
        bar.set_postfix(a=1)
    with pytest.raises(RuntimeError), progress_bar(3, True, "on") as bar:
        raise RuntimeError
    assert bar.disable or bar.n == 0  # closed: tqdm sets disable on close


def test_progress_bar_without_with():
    bar = progress_bar(2, False, "off")  # a bar with update and close, without a with block
    bar.update(1)
    bar.close()


def test_image_format():
    assert image_format("a/b.PNG") == "png" and image_format("x.svg") == "svg"
    with pytest.raises(ValueError, match="must end in one of .png, .svg, .pdf"):
        image_format("x.jpg")
    with pytest.raises(TypeError, match="path must be a file name"):
        image_format(3)


def test_objective_for():
    field = GaussianField((1, 4, 4))
    obj = objective_for(field, "kl")
    ts = np.stack([schedules.linear(4).t, schedules.shifted(4, 2.0).t])
    assert obj.metric == "kl" and obj.value_and_grad is not None
    assert np.array_equal(obj.fn(ts), field.error_batch(ts, "kl"))
    mix = GaussianMixture.ring2d()
    obj = objective_for(mix, num_samples=16, seed=1)
    assert obj.value_and_grad is None and obj.metric == "rmse"
    assert obj.fn(ts)[0] == pytest.approx(mix.error(schedules.linear(4), num_samples=16, seed=1), rel=1e-12)
    with pytest.raises(TypeError, match="teacher_search"):
        objective_for("velocity")
