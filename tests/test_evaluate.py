"""Scoring schedules: the models' error methods, VelocityModel, error_table, plot_error_vs_steps, and the
`flowsched evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from flowsched import get_preset, schedules
from flowsched.cli import main
from flowsched.quality import (
    GaussianField,
    GaussianMixture,
    VelocityModel,
    error_table,
    plot_error_vs_steps,
)


@pytest.fixture(scope="module")
def ring():
    return GaussianMixture.ring2d()


def _rmse(out, ref):
    return np.sqrt(np.mean(np.sum((out - ref) ** 2, axis=1)))


def euler_by_hand(v, x, ts):
    """Open-Sora's denoise loop written out (independent of flowsched.sampling)."""
    ts = [float(t) for t in ts]
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        x = x + (t_next - t) * v(x, t)
    return x


def heun_by_hand(v, x, ts):
    """Heun's method (Karras et al. 2022, Algorithm 1), its last step to t = 0 an Euler step, written out."""
    ts = [float(t) for t in ts]
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        d = v(x, t)
        x_pred = x + (t_next - t) * d
        x = x_pred if t_next == 0 else x + (t_next - t) * (d + v(x_pred, t_next)) / 2
    return x


def test_velocity_model_with_given_reference(ring):
    noise = ring.noise(50, 1)
    ref = ring.reference_solution(noise)
    s = schedules.linear(6)
    model = VelocityModel(ring.velocity, noise, reference=ref)
    assert model.error(s) == pytest.approx(_rmse(euler_by_hand(ring.velocity, noise, s), ref), rel=1e-12)
    # Heun on the schedule under test
    assert model.error(s, sampler="heun") == pytest.approx(_rmse(heun_by_hand(ring.velocity, noise, s), ref),
                                                           rel=1e-12)


def test_velocity_model_teacher_agrees_with_the_analytic_reference(ring):
    # The generic path (a 100-step Heun teacher) scores like the mixture's RK4 reference path.
    s = schedules.shifted(8, 1.5)
    analytic = ring.error(s, num_samples=200, seed=2)
    generic = VelocityModel(ring.velocity, ring.noise(200, 2)).error(s)
    assert generic == pytest.approx(analytic, rel=0.02)


def test_velocity_model_with_torch_tensors(ring):
    noise = torch.tensor(ring.noise(20, 0))
    value = VelocityModel(ring.velocity, noise, teacher=50).error(schedules.linear(5))
    ref = heun_by_hand(ring.velocity, noise.numpy(), schedules.linear(50))
    out = euler_by_hand(ring.velocity, noise.numpy(), schedules.linear(5))
    assert value == pytest.approx(_rmse(out, ref), rel=1e-10)


def test_error_table_runs_the_teacher_once(ring):
    calls = []

    def v(x, t):
        calls.append(t)
        return ring.velocity(x, t)

    model = VelocityModel(v, ring.noise(16, 0), teacher=20)
    table = error_table({"linear": schedules.linear, "shift2": lambda n: schedules.shifted(n, 2.0)}, [2, 4], model)
    assert list(table) == ["linear", "shift2"] and all(len(vals) == 2 for vals in table.values())
    # teacher: 20-step Heun = 39 calls; then 2 + 4 Euler steps for each of the 2 schedules
    assert len(calls) == 39 + 2 * (2 + 4)
    field = GaussianField((1, 8, 8))
    t2 = error_table({"lin": schedules.linear}, [3, 5], lambda s: field.error(s, "kl"))
    assert t2["lin"] == [field.error(schedules.linear(3), "kl"), field.error(schedules.linear(5), "kl")]
    t3 = error_table({"lin": schedules.linear}, [3], field)  # a data model: its error with its default metric
    assert t3["lin"] == [field.error(schedules.linear(3), "w2")]


def test_removed_forms_are_errors(ring):
    """flowsched is 0.x: the old evaluate(schedule, model, metric, **kw), error_table's metric and keywords, and the
    n= keyword of the mixture's methods are gone, not shims."""
    import flowsched.quality

    assert not hasattr(flowsched.quality, "evaluate")
    field = GaussianField((1, 4, 4))
    with pytest.raises(TypeError):
        error_table({"lin": schedules.linear}, [3], field, "kl")
    with pytest.raises(TypeError, match="unexpected keyword argument 'n'"):
        ring.error(schedules.linear(4), n=32)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n'"):
        ring.noise(n=5)


def test_plot_error_vs_steps(tmp_path):
    path = plot_error_vs_steps({"a": [0.1, 0.01], "b": [0.2, 0.03]}, [10, 20], tmp_path / "e.png", floor=0.005)
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="must end in one of"):
        plot_error_vs_steps({"a": [0.1]}, [10], tmp_path / "e.txt")
    with pytest.raises(ValueError, match=r"results\['a'\] has 1 values for 2 step counts"):
        plot_error_vs_steps({"a": [0.1]}, [10, 20], tmp_path / "e.png")


def test_bad_input(ring):
    field = GaussianField((1, 4, 4))
    s = schedules.linear(3)
    with pytest.raises(TypeError, match="noise must be the start states"):
        VelocityModel(ring.velocity, None)
    with pytest.raises(ValueError, match="metric must be one of"):
        VelocityModel(ring.velocity, ring.noise(4)).error(s, metric="w2")
    with pytest.raises(ValueError, match="reference has shape"):
        VelocityModel(ring.velocity, ring.noise(4), reference=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="teacher_sampler must be one of"):
        VelocityModel(ring.velocity, ring.noise(4), teacher_sampler="rk4")
    with pytest.raises(ValueError, match="strictly decreasing"):
        field.error([1.0, 0.2, 0.4, 0.0])
    with pytest.raises(ValueError, match="NaN or inf at step 0"):
        VelocityModel(lambda x, t: x * np.nan, ring.noise(4), reference=np.zeros((4, 2))).error(s)
    with pytest.raises(TypeError, match="score must be"):
        error_table({"lin": schedules.linear}, [3], "field")


# -- CLI ----------------------------------------------------------------------------------------------------------


def test_cli_field_json_matches_library(capsys, tmp_path):
    plot = tmp_path / "err.png"
    rc = main(["evaluate", "--preset", "opensora-2.0-256px", "--steps", "10,20", "--schedule", "linear",
               "--schedule", "rule", "--schedule", "shifted:alpha=3", "--json", "--plot", str(plot)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    preset = get_preset("opensora-2.0-256px")
    geo = preset.geometry()
    field = GaussianField(geo)
    assert doc["metric"] == "w2" and doc["steps"] == [10, 20]
    for n, got in zip([10, 20], doc["errors"]["rule"], strict=True):
        assert got == pytest.approx(field.error(preset.schedule(geo, n)), rel=1e-12)
    assert doc["errors"]["shifted:alpha=3"][0] == pytest.approx(field.error(schedules.shifted(10, 3.0)), rel=1e-12)
    assert plot.stat().st_size > 1000


def test_cli_table_fills_geometry_for_families(capsys):
    rc = main(["evaluate", "--preset", "opensora-2.0-256px", "--steps", "8", "--schedule", "flux",
               "--schedule", "opensora", "--metric", "kl"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "metric  kl" in out and "flux" in out
    geo = get_preset("opensora-2.0-256px").geometry()
    expected = GaussianField(geo).error(schedules.opensora(8, geo.image_seq_len, geo.latent_frames), "kl")
    row = next(line for line in out.splitlines() if line.startswith("opensora "))
    assert float(row.split()[-1]) == pytest.approx(expected, rel=1e-3)


def test_cli_mixture_sliced_w2_prints_floor(capsys):
    rc = main(["evaluate", "--model", "mixture2d", "--metric", "sliced_w2", "--samples", "64", "--steps", "4,8",
               "--schedule", "linear"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "noise floor" in out and "N=4" in out and "N=8" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--schedule", "nosuchfamily"], "neither a family nor a preset"),
        (["--model", "field", "--sampler", "heun"], "--sampler heun is for the mixtures; the field's closed form"),
        (["--metric", "rmse"], "metric must be one of"),
        (["--schedule", "[1, 0.5, 0.7, 0]"], "strictly"),
    ],
)
def test_cli_errors_are_one_line(capsys, argv, message):
    rc = main(["evaluate", "--steps", "4", *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- `flowsched evaluate --sampler`: the stochastic samplers ---------------------------------------------------

SMALL_FIELD = ["--preset", "opensora-2.0-256px", "--frames", "1"]  # 192x336, one frame: a tiny grid


def test_cli_sampler_choices_are_read_from_the_library_table(monkeypatch, capsys):
    """The CLI keeps no copy: a sampler added to flowsched.sampling.SAMPLERS is a --sampler choice."""
    from flowsched import sampling

    monkeypatch.setitem(sampling.SAMPLERS, "midpoint", sampling.heun)
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--sampler {euler,heun,euler_ancestral,stochastic_euler,midpoint}" in out


@pytest.mark.parametrize(
    "argv, kwargs",
    [
        (["--sampler", "euler_ancestral", "--eta", "0.5", "--s-noise", "1"],
         {"sampler": "euler_ancestral", "eta": 0.5, "s_noise": 1.0}),
        (["--sampler", "euler_ancestral"], {"sampler": "euler_ancestral", "eta": 1.0, "s_noise": 1.0}),
        (["--sampler", "euler_ancestral", "--eta", "0.3", "--s-noise", "0.9"],
         {"sampler": "euler_ancestral", "eta": 0.3, "s_noise": 0.9}),
        (["--sampler", "stochastic_euler"], {"sampler": "stochastic_euler"}),
    ],
)
def test_cli_field_scores_the_stochastic_samplers_exactly(capsys, argv, kwargs):
    rc = main(["evaluate", *SMALL_FIELD, "--steps", "6,12", "--schedule", "shifted:alpha=3", "--metric", "kl",
               *argv, "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sampler"] == kwargs and doc["metric"] == "kl"
    field = GaussianField(get_preset("opensora-2.0-256px").geometry(num_frames=1))
    for n, got in zip([6, 12], doc["errors"]["shifted:alpha=3"], strict=True):
        assert got == field.error(schedules.shifted(n, 3.0), "kl", **kwargs)
        assert got != field.error(schedules.shifted(n, 3.0), "kl")  # not Euler's number


def test_cli_mixture_stochastic_defaults_to_sliced_w2(capsys):
    rc = main(["evaluate", "--model", "mixture2d", "--samples", "64", "--steps", "4", "--schedule", "linear",
               "--sampler", "euler_ancestral", "--eta", "0.5", "--seed", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "metric  sliced_w2" in out and "noise floor" in out and "sampler euler_ancestral (eta 0.5, s_noise 1)" in out
    expected = GaussianMixture.ring2d().error(schedules.linear(4), metric="sliced_w2", num_samples=64, seed=3,
                                             sampler="euler_ancestral", eta=0.5)
    row = next(line for line in out.splitlines() if line.startswith("linear "))
    assert float(row.split()[-1]) == pytest.approx(expected, rel=1e-3)  # the table prints 4 digits


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sampler", "heun"], "--sampler heun is for the mixtures; the field's closed form covers euler, "
                                "euler_ancestral, stochastic_euler"),
        (["--model", "mixture2d", "--sampler", "stochastic_euler", "--metric", "rmse"],
         "--metric rmse compares each sample with the ODE solution from the same noise, which --sampler "
         "stochastic_euler leaves by design: use --metric sliced_w2"),
        (["--model", "mixture2d", "--sampler", "euler_ancestral", "--metric", "modes"], "use --metric sliced_w2"),
        (["--eta", "0.5"], "--eta is an option of --sampler euler_ancestral, not of --sampler euler"),
        (["--sampler", "stochastic_euler", "--s-noise", "0.5"], "--s-noise is an option of --sampler euler_ancestral"),
        (["--sampler", "euler_ancestral", "--eta", "-1"], "expected a finite number >= 0"),
        (["--sampler", "euler_ancestral", "--schedule", "auto"], "--schedule auto finds Euler's best shift"),
        (["--sampler", "euler_ancestral", "--eta", "3", "--schedule", "linear"], "eta=3.0 is too large"),
    ],
)
def test_cli_sampler_combinations_a_model_cannot_score(capsys, argv, message):
    rc = main(["evaluate", *SMALL_FIELD, "--steps", "4", *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_optimize_offers_no_sampler_options(capsys, tmp_path):
    # optimize finds Euler schedules: it has no --sampler, --eta or --s-noise, and says so in one line
    for argv in (["--sampler", "heun"], ["--sampler", "euler"], ["--eta", "0.5"], ["--s-noise", "1"]):
        rc = main(["optimize", *SMALL_FIELD, "--model", "mixture2d", *argv, "--out", str(tmp_path / "o.json")])
        err = capsys.readouterr().err
        assert rc == 2 and f"unrecognized arguments: {' '.join(argv)} (see `flowsched optimize --help`)" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_evaluate_help_names_the_samplers(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--sampler {euler,heun,euler_ancestral,stochastic_euler}" in out
    assert "--eta ETA" in out and "--s-noise S_NOISE" in out and "only sliced_w2 measures them" in out
