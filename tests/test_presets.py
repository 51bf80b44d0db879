"""Every preset against an independent source: diffusers' own scheduler driven the way the model's pipeline
drives it (config, sigmas, and the pipeline's own mu function), a re-derivation of the original repository's
formula, or the reference numbers of docs/schedules.md. Plus the preset API and the CLI path."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from flowsched import schedules as S
from flowsched.geometry import VAES
from flowsched.presets import PRESETS, RULES, get_preset

pytest.importorskip("diffusers")
from diffusers import (  # noqa: E402
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)

from _peers import diffusers_fme  # noqa: E402

ATOL = 1e-6


def fme(num_steps, mu=None, sigmas=None, **config):
    return diffusers_fme(num_steps, mu=mu, sigmas=sigmas, **config)[0]


def sched(name, **kw):
    p = get_preset(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        geo = p.geometry(kw.pop("height", None), kw.pop("width", None), kw.pop("frames", None))
    return p.schedule(geo, kw.pop("steps", None), **kw), geo


# -- image models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hw,steps", [((1024, 1024), None), ((768, 1360), 50), ((2048, 2048), 20)])
def test_flux_dev_matches_flux_pipeline(hw, steps):
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    s, geo = sched("flux.1-dev", height=hw[0], width=hw[1], steps=steps)
    n = s.num_steps
    seq = (hw[0] // 16) * (hw[1] // 16)  # FluxPipeline: (H / vae_scale / 2) * (W / vae_scale / 2)
    assert geo.seq_len == seq
    mu = calculate_shift(seq, 256, 4096, 0.5, 1.15)
    want = fme(n, mu=mu, sigmas=np.linspace(1.0, 1 / n, n), shift=3.0, use_dynamic_shifting=True)
    np.testing.assert_allclose(s.t, want, atol=ATOL, rtol=0)


def test_flux_schnell_is_unshifted_flux_path():
    s, _ = sched("flux.1-schnell")
    assert s.num_steps == 4
    np.testing.assert_allclose(s.t, fme(4, sigmas=np.linspace(1.0, 1 / 4, 4), shift=1.0), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["sd3-medium", "sd3.5-large"])
@pytest.mark.parametrize("steps", [None, 10, 50])
def test_sd3_matches_default_scheduler_path(name, steps):
    s, _ = sched(name, steps=steps)
    np.testing.assert_allclose(s.t, fme(s.num_steps, shift=3.0), atol=ATOL, rtol=0)
    assert s.params["double_shift"] is True


def test_cogview4_matches_pipeline():
    from diffusers.pipelines.cogview4.pipeline_cogview4 import calculate_shift

    for hw, steps in [((1024, 1024), None), ((768, 1344), 30)]:
        s, geo = sched("cogview4-6b", height=hw[0], width=hw[1], steps=steps)
        n = s.num_steps
        seq = (hw[0] // 8) * (hw[1] // 8) // 4
        assert geo.image_seq_len == seq
        ts = np.linspace(1000, 1.0, n).astype(np.int64).astype(np.float32)
        mu = calculate_shift(seq, 256, 0.25, 0.75)
        want = fme(n, mu=mu, sigmas=ts / 1000, use_dynamic_shifting=True, time_shift_type="linear",
                   base_shift=0.25, max_shift=0.75)
        np.testing.assert_allclose(s.t, want, atol=ATOL, rtol=0)
    s, _ = sched("cogview4-6b")
    assert s.params["alpha"] == pytest.approx(3.25)  # docs/schedules.md, reference numbers
    np.testing.assert_allclose(s.t[-3:], [0.06517, 0.00324, 0.0], atol=1e-5)


@pytest.mark.parametrize("steps", [1, 4, 30, 50])
def test_cogview4_model_timesteps_are_what_the_pipeline_feeds(steps):
    """diffusers' own scheduler driven the way CogView4Pipeline drives it (its timesteps, sigmas and mu passed to
    its own retrieve_timesteps): the timesteps the model gets equal the preset's, bit for bit."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.cogview4.pipeline_cogview4 import calculate_shift, retrieve_timesteps

    config = dict(use_dynamic_shifting=True, time_shift_type="linear", base_shift=0.25, max_shift=0.75,
                  base_image_seq_len=256)
    sch = FlowMatchEulerDiscreteScheduler(**config)
    seq = (1024 // 8) * (1024 // 8) // 4
    timesteps = np.linspace(1000, 1.0, steps).astype(np.int64).astype(np.float32)  # pipeline_cogview4.py
    mu = calculate_shift(seq, 256, 0.25, 0.75)
    fed, _ = retrieve_timesteps(sch, steps, "cpu", timesteps, timesteps / 1000, mu=mu)
    s, _ = sched("cogview4-6b", steps=steps)
    np.testing.assert_array_equal(s.model_timesteps(), fed.numpy().astype(np.float64))
    np.testing.assert_allclose(s.t, sch.sigmas.numpy(), atol=ATOL, rtol=0)
    if steps == 4:
        assert s.model_timesteps().tolist() == [1000.0, 667.0, 334.0, 1.0]  # the numbers, unshifted
    # the same through flowsched's own FlowMatchEuler re-implementation with the pipeline's arguments
    from flowsched.diffusers_rules import flow_match_euler

    again = flow_match_euler(steps, mu=mu, sigmas=timesteps / 1000, timesteps=timesteps, **config)
    np.testing.assert_array_equal(again.model_timesteps(), s.model_timesteps())
    # and through the diffusers adapter walking the preset (what CogView4Pipeline would feed with it swapped in)
    from flowsched.integrations.diffusers import FlowschedScheduler

    adapter = FlowschedScheduler("cogview4-6b")
    retrieve_timesteps(adapter, steps, "cpu", timesteps, timesteps / 1000, mu=mu)
    assert adapter.timesteps.dtype == fed.dtype
    np.testing.assert_array_equal(adapter.timesteps.numpy(), fed.numpy())


def test_mochi_model_timesteps_are_inverted():
    """MochiPipeline runs FlowMatchEuler with invert_sigmas=True: the model is fed (1 - t) * 1000."""
    from diffusers.pipelines.mochi.pipeline_mochi import linear_quadratic_schedule

    s, _ = sched("mochi")
    _, fed = diffusers_fme(s.num_steps, sigmas=np.array(linear_quadratic_schedule(s.num_steps, 0.025)),
                           invert_sigmas=True)
    np.testing.assert_allclose(s.model_timesteps(), fed, atol=2e-4, rtol=0)  # float32 rounding of values up to 1000
    assert s.model_timesteps()[0] == 0.0 and np.all(np.diff(s.model_timesteps()) > 0)


@pytest.mark.parametrize("name", ["flux.1-dev", "sd3-medium", "hunyuanvideo", "ltx-video", "lumina2"])
def test_other_presets_feed_t_times_1000(name):
    """FlowMatchEuler pipelines feed scheduler.timesteps = sigma * 1000 (Lumina2's pipeline turns that into
    1 - t / 1000 itself): no recorded timesteps."""
    s, _ = sched(name)
    assert s.timesteps is None
    np.testing.assert_array_equal(s.model_timesteps(), s.t[:-1] * 1000.0)


def test_lumina2_static_shift_six():
    s, _ = sched("lumina2")
    n = s.num_steps
    np.testing.assert_allclose(s.t, fme(n, mu=1.0, sigmas=np.linspace(1.0, 1 / n, n), shift=6.0), atol=ATOL, rtol=0)


def test_sana_matches_dpm_solver_flow_sigmas():
    s, _ = sched("sana")
    dpm = DPMSolverMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0)
    dpm.set_timesteps(s.num_steps)
    np.testing.assert_allclose(s.t, dpm.sigmas.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_array_equal(s.model_timesteps(), dpm.timesteps.numpy())  # int64, truncated
    assert s.t[0] == pytest.approx(0.999666, abs=1e-6) and s.t[-2] == pytest.approx(0.13624, abs=1e-5)


# -- video models -----------------------------------------------------------------------------------------------


def wan_original(n, shift):
    """Wan-Video/Wan2.1 wan/utils/fm_solvers_unipc.py (commit 9737cba9): the float32 training grid 1 - k/1000 gives
    sigma_max = float32(0.999) and sigma_min = 0; set_timesteps takes linspace(max, min, N + 1)[:-1], shifts it in
    float64 and feeds the model int64(sigma * 1000) (truncation). Returns (t with the terminal 0, timesteps)."""
    s = np.linspace(float(np.float32(0.999)), 0.0, n + 1)[:-1]
    s = shift * s / (1 + (shift - 1) * s)
    return np.append(s, 0.0), (s * 1000).astype(np.int64).astype(np.float64)


@pytest.mark.parametrize(
    "name,alpha,steps",
    [("wan2.1-t2v-480p", 5.0, 50), ("wan2.1-t2v-720p", 5.0, 50), ("wan2.1-i2v-480p", 3.0, 40),
     ("wan2.1-i2v-720p", 5.0, 40), ("wan2.2-t2v-a14b", 12.0, 40), ("wan2.2-i2v-a14b", 5.0, 40),
     ("wan2.2-ti2v-5b", 5.0, 50)],
)
def test_wan_presets_follow_the_original_grid(name, alpha, steps):
    s, _ = sched(name)
    assert s.num_steps == steps and s.params["alpha"] == alpha
    t, fed = wan_original(steps, alpha)
    np.testing.assert_array_equal(s.t, t)
    np.testing.assert_array_equal(s.model_timesteps(), fed)


def test_wan_reference_numbers_and_diffusers_unipc_grid():
    s, _ = sched("wan2.1-t2v-720p")
    assert s.t[0] == pytest.approx(0.9998, abs=1e-4) and s.t[-2] == pytest.approx(0.092507, abs=1e-6)
    # diffusers' UniPC flow grid is the 'unipc' grid; diffusers lowers a first sigma of 1 by 1e-6 (avoids log 0)
    uni = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    uni.set_timesteps(50)
    ours = S.warp(S.grid(50, "unipc"), 5.0).t
    np.testing.assert_allclose(ours[1:], uni.sigmas.numpy()[1:], atol=ATOL, rtol=0)
    assert ours[0] - uni.sigmas.numpy()[0] == pytest.approx(1e-6, abs=1e-7)
    assert np.max(np.abs(ours - s.t)) == pytest.approx(0.0043, abs=2e-4)  # note 1.5: grids differ by 0.0043


@pytest.mark.parametrize(
    "name,shift",
    [("hunyuanvideo", 7.0), ("hunyuanvideo-1.5-480p-t2v", 5.0), ("hunyuanvideo-1.5-480p-i2v", 5.0),
     ("hunyuanvideo-1.5-720p-t2v", 9.0), ("hunyuanvideo-1.5-720p-i2v", 7.0)],
)
def test_hunyuanvideo_matches_pipeline(name, shift):
    s, _ = sched(name)
    n = s.num_steps
    np.testing.assert_allclose(s.t, fme(n, sigmas=np.linspace(1.0, 0.0, n + 1)[:-1], shift=shift), atol=ATOL, rtol=0)


def test_ltx_matches_pipeline():
    from diffusers.pipelines.ltx.pipeline_ltx import calculate_shift

    config = dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                  max_image_seq_len=4096, shift_terminal=0.1)
    for h, w, f, steps in [(512, 704, 161, None), (480, 640, 65, 30)]:
        s, geo = sched("ltx-video", height=h, width=w, frames=f, steps=steps)
        n = s.num_steps
        seq = ((f - 1) // 8 + 1) * (h // 32) * (w // 32)
        assert geo.seq_len == seq
        mu = calculate_shift(seq, 1024, 4096, 0.95, 2.05)
        np.testing.assert_allclose(s.t, fme(n, mu=mu, sigmas=np.linspace(1, 1 / n, n), **config), atol=ATOL, rtol=0)
    s, _ = sched("ltx-video")
    assert s.params["mu"] == pytest.approx(3.2302, abs=1e-4)  # docs/schedules.md, reference numbers
    np.testing.assert_allclose(s.t[-5:], [0.57344, 0.47802, 0.33558, 0.1, 0.0], atol=1e-5)


def test_mochi_matches_pipeline_inverted_scheduler():
    from diffusers.pipelines.mochi.pipeline_mochi import linear_quadratic_schedule

    s, _ = sched("mochi")
    n = s.num_steps
    inverted = fme(n, sigmas=np.array(linear_quadratic_schedule(n, 0.025)), invert_sigmas=True)
    np.testing.assert_allclose(s.t, 1.0 - inverted, atol=ATOL, rtol=0)
    np.testing.assert_allclose(s.t[[0, 1, 32, 63, 64]], [1.0, 0.99922, 0.975, 0.05923, 0.0], atol=1e-5)


@pytest.mark.parametrize(
    "name,alpha,first5,last5",
    [
        ("opensora-2.0-256px", 5.7325948, [1, 0.9964526, 0.9927841, 0.9889881, 0.9850579],
         [0.3326600, 0.2678875, 0.1928051, 0.1047382, 0]),
        ("opensora-2.0-768px", 11.872096136179, [1, 0.99828395, 0.99650264, 0.9946523, 0.99272881],
         [0.50796026, 0.43110492, 0.3309563, 0.19503347, 0]),
        ("opensora-2.0-dcae", 6.5996633, [1, 0.9969172, 0.9937262, 0.9904210, 0.9869954],
         [0.3646291, 0.2963965, 0.2156776, 0.1186997, 0]),
    ],
)
def test_opensora_presets_reference_numbers(name, alpha, first5, last5):
    s, _ = sched(name)
    assert s.params["alpha"] == pytest.approx(alpha, abs=1e-6)
    np.testing.assert_allclose(s.t[:5], first5, atol=1e-6)
    np.testing.assert_allclose(s.t[-5:], last5, atol=1e-6)


# -- the preset table itself ---------------------------------------------------------------------------------------


def test_required_presets_exist():
    for name in ["opensora-2.0-256px", "opensora-2.0-768px", "opensora-2.0-dcae", "flux.1-dev", "flux.1-schnell",
                 "sd3-medium", "sd3.5-large", "wan2.1-t2v-480p", "wan2.1-t2v-720p", "wan2.1-i2v-480p",
                 "wan2.1-i2v-720p", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b", "wan2.2-ti2v-5b", "hunyuanvideo",
                 "hunyuanvideo-1.5-480p-t2v", "hunyuanvideo-1.5-720p-t2v", "ltx-video", "mochi", "cogview4-6b", "sana",
                 "lumina2"]:
        assert name in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_consistent(name):
    p = PRESETS[name]
    assert p.vae in VAES and p.rule in RULES and p.source
    s, geo = sched(name)
    assert s.num_steps == p.num_steps and len(s.t) == p.num_steps + 1
    if name != "opensora-2.0-dcae":  # Open-Sora's own config asks for 128 frames (125 decoded; see notes)
        assert geo.decoded_frames == p.num_frames, "default frame count must decode exactly"
    assert (geo.padded_height, geo.padded_width) == (p.height, p.width), "default size must need no padding"
    # user overrides: other steps, and alpha replaces the rule's shift
    assert sched(name, steps=7)[0].num_steps == 7
    s2, _ = sched(name, steps=12, alpha=2.0)
    assert s2.params["alpha"] == 2.0 and s2.num_steps == 12
    np.testing.assert_array_equal(sched(name, apply_shift=False)[0].t, np.linspace(1, 0, p.num_steps + 1))
    with pytest.raises(ValueError, match="apply_shift=False asks for the unshifted grid and alpha=2"):
        sched(name, alpha=2.0, apply_shift=False)


def test_schedule_keywords_are_checked():
    p = get_preset("wan2.1-t2v-480p")
    with pytest.raises(TypeError, match="apply_shift must be True or False, got 1"):
        p.schedule(apply_shift=1)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0, got -1.0"):
        p.schedule(alpha=-1.0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_through_the_cli(name, capsys):
    from flowsched.cli import main

    assert main(["schedule", "--preset", name, "--json"]) == 0
    data = __import__("json").loads(capsys.readouterr().out)
    assert len(data["t"]) == PRESETS[name].num_steps + 1
    assert main(["schedule", "--preset", name, "--steps", "9", "--no-plot"]) == 0


def test_cli_takes_the_users_geometry(capsys):
    import json

    from flowsched.cli import main

    assert main(["schedule", "--preset", "flux.1-dev", "--height", "768", "--width", "768", "--steps", "50",
                 "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["t"]
    assert t[-2] == pytest.approx(0.0454272, abs=1e-6)  # docs/schedules.md: BFL Flux at 2304 tokens, 50 steps
    assert math.isclose(t[0], 1.0)


def test_presets_command_table_and_json(capsys):
    import json

    from flowsched.cli import main
    from flowsched.presets import FRAME_PRESETS

    assert main(["presets", "--no-sources"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["preset", "model", "VAE"]
    # the model table, a blank line, the frame-schedule title, a blank line, the frame table
    assert len(lines) == 2 + len(PRESETS) + 3 + 2 + len(FRAME_PRESETS)
    assert lines[2 + len(PRESETS) + 1].startswith("frame schedules")
    flux_row = next(line for line in lines if line.startswith("flux.1-dev "))
    assert "mu=1.15 (exp) -> alpha=3.158" in flux_row and "1024x1024" in flux_row
    assert main(["presets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out) if r["kind"] == "model"}
    assert set(rows) == set(PRESETS)
    assert rows["ltx-video"]["mu"] == pytest.approx(S.flux_mu(7392, 0.95, 2.05, 1024, 4096))
    assert all(r["source"] for r in rows.values())
    assert main(["presets"]) == 0
    assert "sources:" in capsys.readouterr().out
