"""Auto-shift: the measured best static shift, as a library function, a schedule and the CLI's --flow-shift auto."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from flowsched import LatentGeometry, schedules
from flowsched.cli import main
from flowsched.quality import GaussianField
from flowsched.quality.autoshift import auto_shift, auto_shift_schedule


def dense_argmin(field, num_steps, metric="w2", lo=0.1, hi=100.0, n=1500):
    """Brute force: the field's own error on a dense log grid of shifts."""
    alphas = np.exp(np.linspace(np.log(lo), np.log(hi), n))
    errors = [field.error(schedules.shifted(num_steps, a), metric) for a in alphas]
    k = int(np.argmin(errors))
    return alphas[k], errors[k]


@pytest.mark.parametrize("given", ["geometry", "field"])
def test_auto_shift_is_the_minimum_over_a_dense_grid(given):
    geo = LatentGeometry.from_pixels(256, 256, 1, "flux")  # 32 x 32 latent cells
    field = GaussianField(geo)
    alpha = auto_shift(geo if given == "geometry" else field, 8)  # a geometry stands for its default field
    best_alpha, best_error = dense_argmin(field, 8)
    assert alpha == pytest.approx(best_alpha, rel=5e-3)
    assert field.error(schedules.shifted(8, alpha)) <= best_error * (1 + 1e-9)


def test_the_field_kl_is_measured_but_not_advice():
    # on networks trained on real photographs the KL-optimal shift was the worst schedule in every cell
    # (benchmarks/results/trained.md): auto_shift and optimize_schedule refuse it, GaussianField.error measures it
    from flowsched.quality import optimize_schedule

    field = GaussianField((1, 16, 16))
    with pytest.raises(ValueError, match="metric='kl' is not offered as advice.*use metric='w2'"):
        auto_shift(field, 8, metric="kl")
    with pytest.raises(ValueError, match="metric='kl' is not offered as advice"):
        optimize_schedule(8, field, metric="kl")
    assert field.error(schedules.shifted(8, 2.0), "kl") > 0


def test_w2_optimal_shift_grows_with_resolution_and_kl_prefers_less_shift():
    # docs/quality-models.md, "Gaussian field": on a 1/f^2 spectrum the W2-optimal shift grows with the side
    # length, and the per-mode KL prefers alpha < 1.
    alphas = [auto_shift(LatentGeometry.from_pixels(s, s, 1, "flux"), 10) for s in (128, 512, 2048)]
    assert alphas[0] < alphas[1] < alphas[2]
    assert alphas[0] > 1.0
    geo = LatentGeometry.from_pixels(512, 512, 1, "flux")
    assert dense_argmin(GaussianField(geo), 10, "kl")[0] < 1.0


def test_temporally_static_video_approaches_sqrt_frames_times_the_image_shift():
    # Frames that are nearly identical (variance only at k_t = 0, w_t huge) act like sqrt(T') more observations
    # of one image: the equal-uncertainty argument behind Open-Sora's sqrt(T') factor.
    video = GaussianField((9, 16, 16), w_t=1e8)
    image = GaussianField((1, 16, 16))
    ratio = auto_shift(video, 20) / auto_shift(image, 20)
    assert ratio == pytest.approx(3.0, rel=0.15)


def test_auto_shift_schedule_records_the_search():
    geo = LatentGeometry.from_pixels(192, 336, 1, "flux")
    s = auto_shift_schedule(geo, 12)
    alpha = auto_shift(geo, 12)
    np.testing.assert_array_equal(s.t, schedules.shifted(12, alpha).t)
    assert s.params["alpha"] == alpha
    assert s.params["auto_metric"] == "w2" and "GaussianField" in s.params["auto_model"]
    assert s.params["auto_value"] == pytest.approx(GaussianField(geo).error(s), rel=1e-12)


def test_auto_shift_rejects_bad_input():
    with pytest.raises(TypeError, match="model must be a data model .* or a LatentGeometry.*got tuple"):
        auto_shift((1, 8, 8), 10)
    with pytest.raises(TypeError, match="got NoneType"):
        auto_shift(None, 10)
    with pytest.raises(ValueError, match="num_steps"):
        auto_shift(LatentGeometry.from_pixels(64, 64, 1, "flux"), 0)
    with pytest.raises(ValueError, match="metric"):
        auto_shift(LatentGeometry.from_pixels(64, 64, 1, "flux"), 4, metric="fid")


def test_cli_flow_shift_auto(capsys):
    assert main(["schedule", "--preset", "opensora-2.0-256px", "--flow-shift", "auto", "--steps", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    geo = LatentGeometry.from_pixels(192, 336, 129, "hunyuan")
    assert doc["params"]["alpha"] == pytest.approx(auto_shift(geo, 10), rel=1e-12)
    assert len(doc["t"]) == 11
    assert main(["plan", "--preset", "opensora-2.0-256px", "--flow-shift", "AUTO", "--steps", "6", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["alpha"] == pytest.approx(auto_shift(geo, 6), rel=1e-12)


def test_cli_flow_shift_auto_errors_are_one_line(capsys):
    assert main(["schedule", "--flow-shift", "auto", "--no-shift"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-shift" in err
    assert main(["schedule", "--flow-shift", "often"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "got 'often'" in err


def test_schedule_command_with_auto_shift_does_not_import_torch():
    code = (
        "import sys, io, contextlib\n"
        "from flowsched.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['schedule', '--flow-shift', 'auto', '--steps', '4', '--json']) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
