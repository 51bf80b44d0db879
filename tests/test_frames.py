"""flowsched.frames: the FrameSchedule value type and its families, against values recorded from each peer's code.

Recorded data (tests/data/README.md says how each file was made, from which commit): SkyReels-V2
``generate_timestep_matrix`` over a grid, Diffusion Forcing's scheduling matrices, MAGI-1's model calls, and the
Self-Forcing / CausVid step lists.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsched import frames, schedules
from flowsched.frames import FrameSchedule
from flowsched.presets import FRAME_PRESETS, get_frame_preset
from flowsched.schedule import Schedule
from flowsched.spec import FRAME_FAMILIES, frame_preset_spec, frame_schedule_from_spec, from_spec

DATA = os.path.join(os.path.dirname(__file__), "data")


def load(path: str) -> dict:
    with open(os.path.join(DATA, path), encoding="utf-8") as fh:
        return json.load(fh)


# -- SkyReels-V2 ---------------------------------------------------------------------------------------------------

SKY_TEMPLATES = load("skyreels_v2/templates.json")
SKY_FULL = load("skyreels_v2/timestep_matrix.json")
SKY_GRID = load("skyreels_v2/timestep_matrix_grid.json")


def sky_base(n: int, shift: float) -> Schedule:
    return frames.skyreels_base(n, shift)


def sky_schedule(case: dict, base: Schedule) -> FrameSchedule:
    """Our call for one recorded parameter set. SkyReels treats ``num_pre_ready // block`` whole blocks as prefix;
    flowsched refuses a prefix that is not whole blocks, so the recorded cases are called with that many frames."""
    cb = case["casual_block_size"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tail frames dropped: tested on its own below
        return frames.diffusion_forcing(
            base,
            case["num_frames"],
            causal_block_size=cb,
            ar_step=case["ar_step"],
            prefix_frames=case["num_pre_ready"] // cb * cb,
            window=case["base_num_frames"],
        )


def sky_digest(out: dict) -> str:
    """The digest the recording used (tests/data/README.md): sha256 of the compact JSON of the four values (the
    file stores its first hex digits)."""
    payload = [
        out["step_matrix"].tolist(),
        out["step_index"].tolist(),
        out["update_mask"].tolist(),
        [list(p) for p in out["valid_interval"]],
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize("rec", SKY_TEMPLATES["templates"], ids=lambda r: f"N{r['num_inference_steps']}-s{r['shift']}")
def test_skyreels_base_is_the_unipc_template(rec):
    base = sky_base(rec["num_inference_steps"], rec["shift"])
    # the model is fed int64(sigma * 1000); the solver integrates float32 sigmas
    assert np.trunc(base.t[:-1] * 1000).astype(np.int64).tolist() == rec["timesteps_int64"]
    assert np.array_equal(base.t.astype(np.float32), np.array(rec["sigmas_float32"], dtype=np.float32))
    assert base.model_timesteps().tolist() == rec["timesteps_int64"]  # what the model is fed
    fs = frames.diffusion_forcing(base, 3, causal_block_size=1, ar_step=1)
    fed = fs.model_timesteps()
    for r in range(fs.num_steps):  # every frame is fed its step's template integer (1000 * 0 once clean)
        want = [rec["timesteps_int64"][i] if i < base.num_steps else 0 for i in fs.index[r]]
        assert fed[r].tolist() == want


# cases in which SkyReels returns an update mask that moves a frame outside its own valid interval (window
# smaller than the prefix); flowsched refuses them (see test_skyreels_window_smaller_than_prefix_is_refused)
def _inconsistent(case: dict) -> bool:
    mask = np.array(case["step_update_mask"], dtype=bool)
    cols = np.arange(mask.shape[1])
    iv = np.array(case["valid_interval"])
    return bool((mask & ((cols < iv[:, :1]) | (cols >= iv[:, 1:]))).any())


@pytest.mark.parametrize("case", SKY_FULL["full_cases"], ids=lambda c: "-".join(
    str(c[k]) for k in ("num_inference_steps", "shift", "num_frames", "base_num_frames", "ar_step", "num_pre_ready",
                        "casual_block_size")))
def test_skyreels_full_cases(case):
    base = sky_base(case["num_inference_steps"], case["shift"])
    if _inconsistent(case):
        with pytest.raises(ValueError, match="window=.* too small for prefix_frames"):
            sky_schedule(case, base)
        return
    out = frames.to_skyreels(sky_schedule(case, base))
    assert out["step_matrix"].tolist() == case["step_matrix"]
    assert out["step_index"].tolist() == case["step_index"]
    assert out["update_mask"].astype(int).tolist() == case["step_update_mask"]
    assert [list(p) for p in out["valid_interval"]] == case["valid_interval"]


def test_skyreels_whole_grid_digests():
    """Every parameter set of the recorded grid (both templates): the same four values, or a refusal where
    SkyReels refuses (or returns the window-smaller-than-prefix matrix, which flowsched refuses)."""
    cols = SKY_GRID["columns"]
    bases = {(n, s): sky_base(n, s) for n in (4, 10, 30) for s in (5.0, 8.0)}
    matched = refused = 0
    window_refusals = []
    for row in SKY_GRID["rows"]:
        case = dict(zip(cols, row, strict=True))
        for shift, key in ((5.0, "digest_shift5"), (8.0, "digest_shift8")):
            base = bases[(case["num_inference_steps"], shift)]
            try:
                fs = sky_schedule(case, base)
            except ValueError as exc:
                if case["error"] == -1:
                    assert "too small for prefix_frames" in str(exc), (case, exc)
                    window_refusals.append(case)
                else:
                    refused += 1
                continue
            assert case["error"] == -1, f"SkyReels refuses {case} ({SKY_GRID['errors'][case['error']]})"
            out = frames.to_skyreels(fs)
            assert out["step_matrix"].shape == (case["rows"], case["cols"])
            assert sky_digest(out).startswith(case[key]) and len(case[key]) >= 12, case  # a prefix of the sha256
            matched += 1
    assert matched > 1800 and refused > 1000
    # the refused window cases are exactly the recorded full cases whose mask leaves the interval
    inconsistent = {
        tuple(c[k] for k in ("num_inference_steps", "num_frames", "base_num_frames", "ar_step", "num_pre_ready",
                             "casual_block_size"))
        for c in SKY_FULL["full_cases"] if _inconsistent(c)
    }
    seen = {tuple(c[k] for k in ("num_inference_steps", "num_frames", "base_num_frames", "ar_step", "num_pre_ready",
                                 "casual_block_size")) for c in window_refusals}
    assert inconsistent <= seen and len(seen) == 6


@pytest.mark.parametrize("n,blocks,ar", [(30, 5, 5), (10, 8, 1), (4, 6, 3), (30, 25, 0), (10, 4, 10)])
def test_skyreels_closed_form(n, blocks, ar):
    """Without a prefix and with ar_step <= N: index[r, b] = clip(r - b * ar_step, 0, N) over N + (B - 1) ar rows."""
    fs = frames.diffusion_forcing(schedules.shifted(n, 5.0), blocks, ar_step=ar)
    r = np.arange(n + (blocks - 1) * ar + 1)[:, None]
    b = np.arange(blocks)[None, :]
    assert np.array_equal(fs.index, np.clip(r - b * ar, 0, n))
    assert fs.num_steps == n + (blocks - 1) * ar


def test_skyreels_ar_step_above_n_starts_when_the_previous_block_is_clean():
    n = 4
    fs = frames.diffusion_forcing(schedules.shifted(n, 3.0), 3, ar_step=40)
    r = np.arange(n * 3 + 1)[:, None]
    assert np.array_equal(fs.index, np.clip(r - np.arange(3)[None, :] * n, 0, n))


def test_skyreels_addnoise_condition_sets_the_prefix_level():
    fs = frames.diffusion_forcing(sky_base(30, 8.0), 25, causal_block_size=5, ar_step=5, prefix_frames=5,
                                  addnoise_condition=20)
    assert fs.prefix_frames == 5 and fs.prefix_level == 0.02 and fs.prefix_noise
    assert np.all(fs.t[:, :5] == 0.02) and not fs.update[:, :5].any()
    assert np.all(fs.model_timesteps()[:, :5] == 20.0)


def test_skyreels_tail_frames_warn_with_the_count_to_use():
    match = r"num_frames=27 is not a multiple of causal_block_size=5.*use num_frames=25 or 30"
    with pytest.warns(UserWarning, match=match):
        fs = frames.diffusion_forcing(sky_base(4, 5.0), 27, causal_block_size=5, ar_step=2)
    assert fs.num_frames == 25


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"ar_step": -1}, ValueError, "ar_step must be a non-negative integer, got -1"),
        ({"ar_step": 1.5}, TypeError, "ar_step"),
        ({"causal_block_size": 0}, ValueError, "causal_block_size must be a positive integer, got 0"),
        ({"causal_block_size": 11}, ValueError, "num_frames=10 is smaller than causal_block_size=11"),
        ({"prefix_frames": 12}, ValueError, "prefix_frames=12 leaves nothing to generate"),
        ({"prefix_frames": 10}, ValueError, "prefix_frames=10 leaves nothing to generate"),
        ({"prefix_frames": 3, "causal_block_size": 2}, ValueError,
         "not a multiple of causal_block_size=2.*pass prefix_frames=2 or 4"),
        ({"addnoise_condition": 20}, ValueError, "prefix_frames is 0"),
        ({"addnoise_condition": 1000, "prefix_frames": 1}, ValueError,
         r"addnoise_condition must be a timestep in \[0, 1000\)"),
        ({"window": 4, "ar_step": 1}, ValueError, "SkyReels-V2 requires ar_step >= 3"),
        ({"window": 1, "causal_block_size": 2}, ValueError, "window=1 is smaller than causal_block_size=2"),
    ],
)
def test_diffusion_forcing_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        frames.diffusion_forcing(sky_base(10, 8.0), 10, **kwargs)


def test_diffusion_forcing_needs_a_schedule():
    with pytest.raises(TypeError, match="base must be a flowsched Schedule"):
        frames.diffusion_forcing([1.0, 0.5, 0.0], 4)


# -- Diffusion Forcing (Chen et al.) ---------------------------------------------------------------------------

DF = load("diffusion_forcing/scheduling_matrix.json")


@pytest.mark.parametrize(
    "case", [c for c in DF["cases"] if c["scheduling_matrix"] != "trapezoid"],
    ids=lambda c: f"{c['scheduling_matrix']}-K{c['sampling_timesteps']}-H{c['horizon']}-u{c['uncertainty_scale']}",
)
def test_diffusion_forcing_matrices(case):
    k, h, mode = case["sampling_timesteps"], case["horizon"], case["scheduling_matrix"]
    base = schedules.linear(k)
    if mode == "pyramid":
        fs = frames.pyramid(base, h, u=case["uncertainty_scale"])
    else:
        fs = getattr(frames, mode)(base, h)
    levels = np.array(case["matrix"])
    assert np.array_equal(fs.index, k - levels)  # level k is base.t[K - k]
    assert np.array_equal(fs.t, base.t[k - levels])


def test_pyramid_prefix_frames_are_context_at_level_zero():
    fs = frames.pyramid(schedules.linear(4), 5, u=1.0, prefix_frames=2)
    ref = frames.pyramid(schedules.linear(4), 3, u=1.0)
    assert np.array_equal(fs.index[:, 2:], ref.index) and np.all(fs.t[:, :2] == 0.0)


def test_pyramid_bad_input():
    with pytest.raises(ValueError, match="u .* must be >= 0, got -1.0"):
        frames.pyramid(schedules.linear(4), 3, u=-1.0)
    with pytest.raises(ValueError, match="prefix_frames=3 leaves nothing to generate"):
        frames.pyramid(schedules.linear(4), 3, u=1.0, prefix_frames=3)


# -- MAGI-1 --------------------------------------------------------------------------------------------------------

MAGI = load("magi1/schedule.json")


@pytest.mark.parametrize("rec", [r for r in MAGI["init_t"] if r["num_steps"] != 12], ids=lambda r: str(r["num_steps"]))
def test_magi_base_is_init_t(rec):
    ours = frames.magi_base(rec["num_steps"], 3.0).t
    # MAGI computes its grid in float32 (the S = 8 grid even ends at 1.0000001192); ours is float64
    np.testing.assert_allclose(1.0 - ours, np.array(rec["t"]), rtol=0, atol=3e-7)


# not covered: the 12-step distilled grid and a prefix that is not whole chunks (MAGI overwrites part of a chunk)
WALKS = [w for w in MAGI["walks"] if w["num_steps"] != 12 and w["prefix_latent_frames"] % 6 == 0]


@pytest.mark.parametrize("walk", WALKS, ids=lambda w: f"S{w['num_steps']}-P{w['prefix_latent_frames']}")
def test_staircase_is_magi_walk(walk):
    """Each recorded model call of MAGI-1's SampleTransport.walk: the chunks it denoises, their t and the window."""
    s, c, cw, w = walk["num_steps"], walk["chunk_num"], walk["chunk_width"], walk["window_size"]
    prefix = walk["prefix_latent_frames"] // cw
    fs = frames.staircase(frames.magi_base(s), c, chunk_frames=cw, window=w, prefix_chunks=prefix)
    cols = walk["forward_call_columns"]
    calls = [dict(zip(cols, row, strict=True)) for row in walk["forward_calls"]]
    calls = [k for k in calls if not k["extract_prefix_video_feature"]]  # the one-off KV-cache call of the prefix
    assert len(calls) == fs.num_steps == walk["total_forward_step"]
    for r, call in enumerate(calls):
        ts = call["timestep"][1:] if call["fwd_extra_1st_chunk"] else call["timestep"]
        first = call["slice_point"] + (1 if call["fwd_extra_1st_chunk"] else 0)
        chunks = list(range(first, call["range_num"]))
        assert len(chunks) == len(ts)
        ours = 1.0 - fs.t[r, [j * cw for j in chunks]]
        np.testing.assert_allclose(ours, ts, rtol=0, atol=3e-7)  # MAGI's t is float32
        moved = sorted({f // cw for f in np.flatnonzero(fs.update[r])})
        assert moved == chunks
        assert fs.window[r].tolist() == [0, call["range_num"] * cw]
    # each generated chunk walks from MAGI t = 0 to 1 (its recorded total Euler displacement with unit velocity)
    for j, total in enumerate(walk["per_chunk_last_frame_sum_of_delta_t"]):
        f = j * cw + cw - 1
        expected = 0.0 if j < prefix else fs.t[0, f] - fs.t[-1, f]
        assert total == pytest.approx(expected, abs=3e-7)
    if prefix:
        assert np.allclose(fs.t[:, : prefix * cw], 1.0 - 0.9999) and not fs.prefix_noise


def test_staircase_bad_input():
    with pytest.raises(ValueError, match="too short: 2 step"):
        frames.staircase(frames.magi_base(2), 4, window=4)
    with pytest.raises(ValueError, match="not a multiple of window=4.*use 8 or 12"):
        frames.staircase(frames.magi_base(10), 4, window=4)
    with pytest.raises(ValueError, match="prefix_chunks=4 leaves nothing"):
        frames.staircase(frames.magi_base(16), 4, prefix_chunks=4)


# -- Self-Forcing / CausVid ----------------------------------------------------------------------------------------


def _few_step_records():
    out = []
    for peer in ("self_forcing", "causvid"):
        for rec in load(f"{peer}/denoising_steps.json")["records"]:
            shift = rec.get("model_kwargs_timestep_shift") or rec["scheduler"]["shift"]
            out.append(pytest.param(rec, shift, id=f"{peer}-{rec['config']}-shift{shift}"))
    return out


@pytest.mark.parametrize("rec,shift", _few_step_records())
def test_blockwise_base_is_the_peer_step_list(rec, shift):
    base = frames.blockwise_base(rec["denoising_step_list_config"], alpha=shift, warp=rec["warp_denoising_step"])
    # the sigmas the peers re-noise with (add_noise) are the t values; theirs are float32
    np.testing.assert_allclose(base.t[:-1], rec["add_noise_sigma"], rtol=0, atol=1e-7)
    if rec["warp_denoising_step"]:  # the warped list is also what the model is fed
        np.testing.assert_allclose(base.t[:-1] * 1000, rec["denoising_step_list"], rtol=0, atol=1e-4)


def test_blockwise_blocks_follow_one_another():
    fs = frames.blockwise([1000, 750, 500, 250], 3, block_frames=2, alpha=5.0)
    assert fs.num_steps == 12 and fs.num_frames == 6
    r = np.arange(13)[:, None]
    assert np.array_equal(fs.index, np.repeat(np.clip(r - np.arange(3)[None, :] * 4, 0, 4), 2, axis=1))
    # the model sees the current block and the clean blocks before it
    assert fs.window[:, 1].tolist() == [2] * 4 + [4] * 4 + [6] * 4


def test_blockwise_bad_input():
    with pytest.raises(ValueError, match="strictly decreasing"):
        frames.blockwise_base([1000, 500, 750])
    with pytest.raises(ValueError, match=r"steps\[0\] must lie in \(0, 1000\]"):
        frames.blockwise_base([1500, 500])
    with pytest.raises(ValueError, match="prefix_frames=2 is not a multiple of block_frames=3"):
        frames.blockwise([1000, 500], 3, prefix_frames=2)


# -- the value type --------------------------------------------------------------------------------------------------


def test_json_round_trip_is_exact(tmp_path):
    fs = frames.diffusion_forcing(sky_base(10, 8.0), 12, causal_block_size=3, ar_step=4, prefix_frames=3,
                                  addnoise_condition=20, window=9)
    back = FrameSchedule.from_json(fs.to_json())
    assert back == fs and np.array_equal(back.t, fs.t) and np.array_equal(back.window, fs.window)
    path = tmp_path / "fs.json"
    fs.to_json(path)
    assert FrameSchedule.from_json(str(path)) == fs
    data = json.loads(fs.to_json())
    data["t"][3][5] = 0.5
    with pytest.raises(ValueError, match="'t' does not match"):
        FrameSchedule.from_dict(data)


def test_value_type_is_immutable_and_checked():
    base = schedules.linear(3)
    fs = FrameSchedule(base, [[0, 0], [1, 0], [2, 1], [3, 2], [3, 3]])
    with pytest.raises(ValueError):
        fs.t[0, 0] = 0.5
    assert fs.update.tolist() == [[True, False], [True, True], [True, True], [False, True]]
    assert fs.frame(1) == Schedule(base.t, name="custom", params={"frame": 1})
    assert fs.model_timesteps().shape == (4, 2) and fs.steps_per_frame().tolist() == [3, 3]
    with pytest.raises(ValueError, match="frame 0 goes from index 2 at row 2 to 1 at row 3"):
        FrameSchedule(base, [[0, 0], [1, 0], [2, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"index must lie in \[0, 3\]"):
        FrameSchedule(base, [[0, 4], [1, 4]])
    with pytest.raises(ValueError, match="step 0 moves frame 1, which lies outside its window"):
        FrameSchedule(base, [[0, 0], [1, 1]], window=[[0, 1]])
    with pytest.raises(ValueError, match="prefix frame 0 must have index 3"):
        FrameSchedule(base, [[0, 0], [1, 1]], prefix_frames=1)
    with pytest.raises(ValueError, match="frame 0 is a prefix frame"):
        FrameSchedule(base, [[3, 0], [3, 1]], prefix_frames=1).frame(0)


# -- specs and presets -------------------------------------------------------------------------------------------------


def test_spec_equals_the_function():
    fs = frame_schedule_from_spec("diffusion_forcing:steps=30,shift=8,frames=25,ar_step=5,causal_block_size=5")
    assert fs == frames.diffusion_forcing(sky_base(30, 8.0), 25, causal_block_size=5, ar_step=5)
    assert frame_schedule_from_spec("skyreels-v2-df-540p-async") == fs
    bw = frame_schedule_from_spec("blockwise:steps=1000;750;500;250,blocks=7,shift=5")
    assert bw == frames.blockwise([1000, 750, 500, 250], 7, alpha=5.0)
    assert frame_schedule_from_spec("self-forcing") == bw
    assert frame_schedule_from_spec("blockwise:steps=1000,blocks=2") == frames.blockwise([1000], 2)
    assert frame_schedule_from_spec("magi-1-4.5b:chunks=6").num_frames == 36
    assert frame_schedule_from_spec("pyramid:steps=4,frames=3,u=1") == frames.pyramid(
        schedules.shifted(4, 1.0), 3, u=1.0
    )
    windowed = frame_schedule_from_spec("diffusion_forcing:steps=10,frames=20,causal_block_size=5,ar_step=5,window=10")
    assert windowed == frames.diffusion_forcing(sky_base(10, 8.0), 20, causal_block_size=5, ar_step=5, window=10)
    assert frame_schedule_from_spec("diffusion_forcing:window=none") == frames.diffusion_forcing(sky_base(30, 8.0), 25)


def test_the_shift_of_a_frame_spec_is_alpha_in_any_spelling():
    want = frames.diffusion_forcing(sky_base(30, 5.0), 25, causal_block_size=5, ar_step=5)
    for key in ("alpha", "shift", "flow_shift", "shift_alpha"):
        assert frame_schedule_from_spec(f"skyreels-v2-df-540p-async:{key}=5") == want, key
    assert "alpha=8.0" in frame_preset_spec("skyreels-v2-df-540p-async")
    assert frame_schedule_from_spec("magi-1-24b:shift=2").base == frames.magi_base(32, 2.0)
    with pytest.raises(ValueError, match="shift=true: shift is the shift alpha, a number > 0, not a switch"):
        frame_schedule_from_spec("pyramid:shift=true")
    with pytest.raises(ValueError, match="alpha=2 and shift=3 each set the shift alpha"):
        frame_schedule_from_spec("staircase:alpha=2,shift=3")


def test_spec_reads_its_own_json(tmp_path):
    fs = frame_schedule_from_spec("staircase:steps=8,chunks=3,chunk_frames=2,window=2,prefix_chunks=1")
    path = tmp_path / "fs.json"
    fs.to_json(path)
    assert frame_schedule_from_spec(str(path)) == fs
    assert frame_schedule_from_spec(fs.to_json()) == fs


def test_every_preset_is_data_and_matches_its_spec():
    assert set(FRAME_PRESETS) >= {"skyreels-v2-df-540p", "skyreels-v2-df-540p-async", "skyreels-v2-df-720p",
                                  "skyreels-v2-df-720p-async", "magi-1-4.5b", "self-forcing", "causvid"}
    for p in FRAME_PRESETS.values():
        assert p.family in FRAME_FAMILIES and p.source, p.name
        fs = frame_schedule_from_spec(p.name)
        assert frame_schedule_from_spec(frame_preset_spec(p)) == fs, p.name
        assert frame_schedule_from_spec(frame_preset_spec(p.name)) == fs, p.name
        assert get_frame_preset(p.name) is p
    with pytest.raises(TypeError):
        FRAME_PRESETS["causvid"].params["alpha"] = 5.0  # read-only data


def test_spec_errors():
    with pytest.raises(ValueError, match="Did you mean 'pyramid'"):
        frame_schedule_from_spec("pyramd:steps=3")
    with pytest.raises(ValueError, match="takes no parameter 'ar'"):
        frame_schedule_from_spec("diffusion_forcing:ar=3")
    with pytest.raises(ValueError, match=r"frame preset causvid\).*takes no parameter 'chunks'"):
        frame_schedule_from_spec("causvid:chunks=3")
    with pytest.raises(ValueError, match="expected key=value"):
        frame_schedule_from_spec("pyramid:steps")
    with pytest.raises(ValueError, match="given twice"):
        frame_schedule_from_spec("pyramid:steps=3,steps=4")
    with pytest.raises(TypeError, match="steps\\[0\\] must be a positive integer"):
        frame_schedule_from_spec("blockwise:steps=999.5;500")
    with pytest.raises(TypeError, match="non-empty string"):
        frame_schedule_from_spec("")
    # the two spec kinds point at each other
    with pytest.raises(ValueError, match="'shifted' is a schedule family .*not a frame schedule"):
        frame_schedule_from_spec("shifted:alpha=3")
    with pytest.raises(ValueError, match="'flux.1-dev' is a model preset"):
        frame_schedule_from_spec("flux.1-dev")
    with pytest.raises(ValueError, match="'self-forcing' is a frame preset, a per-frame schedule.*flowsched frames"):
        from_spec("self-forcing")
    with pytest.raises(ValueError, match="'pyramid' is a frame family"):
        from_spec("pyramid:steps=3")
    with pytest.raises(ValueError, match="unknown. Did you mean 'causvid'"):
        get_frame_preset("causvd")
    with pytest.raises(ValueError, match="'sana' is a model preset"):
        get_frame_preset("sana")


def test_max_cells_refuses_huge_matrices():
    with pytest.raises(ValueError, match="cells, above the limit"):
        frames.diffusion_forcing(sky_base(30, 8.0), 100_000, ar_step=5, max_cells=10_000)
    assert math.isfinite(frames.MAX_CELLS)


# -- invariants (hypothesis) --------------------------------------------------------------------------------

@given(
    n=st.integers(1, 12),
    blocks=st.integers(1, 8),
    cb=st.integers(1, 4),
    ar=st.integers(0, 15),
    pb=st.integers(0, 3),
)
def test_diffusion_forcing_invariants(n, blocks, cb, ar, pb):
    pb = min(pb, blocks - 1)
    base = schedules.shifted(n, 3.0)
    fs = frames.diffusion_forcing(base, blocks * cb, causal_block_size=cb, ar_step=ar, prefix_frames=pb * cb)
    gen = slice(pb * cb, None)
    # every generated frame walks the whole base schedule once, one base step per move
    assert np.all(fs.steps_per_frame()[gen] == n)
    assert np.all(fs.t[0, gen] == base.t[0]) and np.all(fs.t[-1] == 0.0)
    # block b + 1 starts min(ar_step, N) rows after block b (a block waits for the previous one to be clean)
    assert fs.num_steps == n + (blocks - pb - 1) * min(ar, n)
    # frames of one block move together; prefix frames never move
    assert np.array_equal(fs.update, np.repeat(fs.update[:, ::cb], cb, axis=1))
    assert not fs.update[:, : pb * cb].any()
    assert FrameSchedule.from_json(fs.to_json()) == fs
