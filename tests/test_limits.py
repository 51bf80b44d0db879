"""The one limit policy (flowsched._limits): step counts up to MAX_STEPS, everything else estimated in bytes and held
to the memory budget the user can raise (max_bytes=, FLOWSCHED_MAX_BYTES); the estimates are upper bounds of what the
work really allocates (measured with tracemalloc, which sees numpy's buffers); data that is not numbers is refused with
its count and first position; the remedies the messages give work."""

from __future__ import annotations

import math
import re
import tracemalloc

import numpy as np
import pytest

from flowsched import _limits, schedules
from flowsched.quality import GaussianField, GaussianMixture
from flowsched.sampling import MAX_S_NOISE, check_finite, check_s_noise
from flowsched.strength import partial

# -- step counts ---------------------------------------------------------------------------------------------------


def test_step_counts_up_to_the_limit_are_accepted_and_one_more_is_refused():
    assert _limits.MAX_STEPS == 10_000
    assert schedules.linear(_limits.MAX_STEPS).num_steps == _limits.MAX_STEPS
    with pytest.raises(ValueError, match=r"num_steps must be at most 10000 \(.*\), got 10001"):
        schedules.linear(_limits.MAX_STEPS + 1)
    with pytest.raises(TypeError, match="num_steps must be a positive integer"):
        schedules.linear(True)


def test_the_cli_step_limit_is_the_library_one(capsys, tmp_path):
    from flowsched.cli import main

    assert main(["schedule", "--steps", str(_limits.MAX_STEPS), "--out", str(tmp_path / "s.json")]) == 0
    assert main(["schedule", "--steps", str(_limits.MAX_STEPS + 1)]) == 2
    err = capsys.readouterr().err
    assert "argument --steps: expected a step count from 1 to 10000" in err and err.count("\n") == 1


def test_comfyui_strength_down_to_the_base_limit_and_no_further():
    # ComfyUI builds its base at int(N / s) steps: N / MAX_STEPS is the smallest denoise that fits
    cut = partial("shifted:alpha=3", 28, 0.0028, convention="comfyui")
    assert cut.params["base_steps"] == int(28 / 0.0028) <= _limits.MAX_STEPS and cut.num_steps == 28
    with pytest.raises(ValueError) as info:
        partial("shifted:alpha=3", 28, 0.00279, convention="comfyui")
    message = str(info.value)
    assert "strength=0.00279" in message and "above the limit of 10000" in message and ">= 0.0028" in message


def test_a_cut_that_keeps_no_step_offers_a_remedy_that_works():
    with pytest.raises(ValueError, match="or use at least 5 steps") as info:
        partial("shifted:alpha=3", 3, 0.2, convention="diffusers-floor")  # int(3 * 0.2) = 0 steps
    assert "raise strength to at least 0.333" in str(info.value)
    assert partial("shifted:alpha=3", 5, 0.2, convention="diffusers-floor").num_steps == 1  # int(5 * 0.2) = 1
    assert partial("shifted:alpha=3", 3, 1 / 3, convention="diffusers-floor").num_steps == 1
    with pytest.raises(ValueError) as info:  # no step count within the limit keeps a step: only the strength helps
        partial("shifted:alpha=3", 3, 1e-300, convention="diffusers-floor")
    assert "use at least" not in str(info.value) and "raise strength to at least 0.333" in str(info.value)


# -- the memory budget ---------------------------------------------------------------------------------------------


def test_the_budget_is_raised_and_lowered_by_the_environment(monkeypatch):
    mixture, schedule = GaussianMixture.standard(), schedules.linear(4)
    need = 1024 * 8 * (16 * 16 + 4 * 8)  # the estimate of the rmse run: 8 (16 d + 4 K) bytes per sample
    monkeypatch.setenv("FLOWSCHED_MAX_BYTES", str(need - 1))
    with pytest.raises(ValueError) as info:
        mixture.error(schedule, num_samples=1024)
    assert f"needs about {need} bytes" in str(info.value) and f"FLOWSCHED_MAX_BYTES={need}" in str(info.value)
    monkeypatch.setenv("FLOWSCHED_MAX_BYTES", str(need))
    assert math.isfinite(mixture.error(schedule, num_samples=1024))
    monkeypatch.setenv("FLOWSCHED_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="FLOWSCHED_MAX_BYTES must be a byte count, got 'lots'"):
        mixture.error(schedule, num_samples=1024)


def test_check_bytes_says_what_the_size_and_the_limit_are():
    assert _limits.check_bytes("x", 2048, max_bytes=2048) == 2048
    with pytest.raises(ValueError) as info:
        _limits.check_bytes("a thing", 3 * 2**30, max_bytes=2**30, about=True)
    assert str(info.value) == (
        "a thing needs about 3221225472 bytes (3.0 GiB), above the limit of 1073741824 bytes (1.0 GiB); set "
        "FLOWSCHED_MAX_BYTES=3221225472 to allow it"
    )


def _peak(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("metric", [pytest.param("rmse", marks=pytest.mark.slow), "sliced_w2"])  # rmse: RK4, ~3 s
@pytest.mark.parametrize("make", [GaussianMixture.standard, GaussianMixture.ring2d], ids=["16-D", "2-D"])
def test_the_mixture_estimate_bounds_what_the_work_allocates(metric, make):
    # the growth of the peak per sample (two sizes, so fixed costs cancel) against the estimate per sample
    def peak(n: int) -> int:
        mixture = make()  # fresh: nothing cached
        return _peak(lambda: mixture.error(schedules.linear(6), metric=metric, num_samples=n))

    mixture = make()
    per_sample = 8 * (16 * mixture.dim + 4 * mixture.num_components + (4 * 256 if metric == "sliced_w2" else 0))
    peak(64)  # warm: first-call allocations of numpy and the imports are not the work's
    slope = (peak(512) - peak(128)) / 384
    assert slope <= per_sample <= 4 * slope  # an upper bound, not a wild one


def test_the_field_estimate_bounds_what_building_it_allocates():
    _peak(lambda: GaussianField((2, 8, 8)))  # warm
    small, large = (2, 48, 80), (8, 48, 80)
    slope = (_peak(lambda: GaussianField(large)) - _peak(lambda: GaussianField(small))) / (6 * 48 * 80)
    assert slope <= 32 <= 4 * slope  # 32 bytes per cell, the estimate of flowsched.quality.field


def test_figure_pixels_and_memory_are_checked_before_drawing(monkeypatch):
    from flowsched.plot import MAX_PIXELS_PER_SIDE, check_dpi

    monkeypatch.setenv("FLOWSCHED_MAX_BYTES", str(10**12))
    assert check_dpi(MAX_PIXELS_PER_SIDE, (1.0, 0.5)) == MAX_PIXELS_PER_SIDE  # 65535 x 32768 pixels: allowed
    with pytest.raises(ValueError, match=r"65536 x 32768 pixels; matplotlib draws at most 65535 pixels per side"):
        check_dpi(MAX_PIXELS_PER_SIDE + 1, (1.0, 0.5))
    monkeypatch.setenv("FLOWSCHED_MAX_BYTES", str(8 * 1000 * 500 - 1))
    with pytest.raises(ValueError, match=r"dpi=1000: a 1000 x 500-pixel image needs about 4000000 bytes") as info:
        check_dpi(1000, (1.0, 0.5))
    (most,) = re.findall(r"use dpi <= (\d+)", str(info.value))  # the remedy offered works, and is the largest
    assert int(most) == 999 and check_dpi(int(most), (1.0, 0.5)) == 999


# -- values ----------------------------------------------------------------------------------------------------------


def test_s_noise_up_to_comfyuis_range():
    assert MAX_S_NOISE == 100.0 and check_s_noise(100) == 100.0
    field = GaussianField((1, 8, 8))
    assert math.isfinite(field.error(schedules.linear(4), sampler="euler_ancestral", s_noise=MAX_S_NOISE))
    with pytest.raises(ValueError, match=r"s_noise must be at most 100 .*, got 100.5"):
        check_s_noise(100.5)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_check_finite_counts_and_places_the_first_bad_value(kind):
    x = np.zeros((2, 3, 4))
    x[1, 0, 2] = np.nan
    x[1, 2, 0] = -np.inf
    x[0, 2, 3] = np.inf  # the first in C order
    if kind == "torch":
        import torch

        x = torch.from_numpy(x)
    with pytest.raises(ValueError) as info:
        check_finite("latent", x)
    assert str(info.value) == (
        "latent holds 3 NaN or infinite values (the first at index (0, 2, 3)); data must be finite"
    )
    finite = x[:, :1, :2]  # no bad value in this corner
    assert check_finite("latent", finite) is finite
