"""What Self-Forcing's and CausVid's inference loops feed their model, against flowsched's blockwise presets.

Recorded data: ``tests/data/self_forcing/inference_loop.json`` (guandeh17/Self-Forcing @33593df) and
``tests/data/causvid/inference_loop.json`` (tianweiy/CausVid @ca21150), every model call and every re-noising
call of the peers' own loops, with ``warp_denoising_step`` on and off (tests/data/README.md says how).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from flowsched.spec import frame_schedule_from_spec

DATA = os.path.join(os.path.dirname(__file__), "data")

# The peers compute their warped table in float32 (linspace, shift, * 1000); flowsched computes the same formula in
# float64. Across every entry of their table at shifts 1, 3, 5, 7.3 and 8 the two differ by at most 2.1e-7
# relatively, below two float32 ulps (2^-22).
F32 = 2.0**-22

#: which preset each peer configuration is
PRESET = {
    "self_forcing_dmd.yaml": "self-forcing",
    "self_forcing_sid.yaml": "self-forcing",
    "wan_causal_dmd.yaml": "causvid",
    "wan_causal_ode.yaml": "causvid",
    "wan_causal_dmd_warp_4step_cfg2.yaml": "causvid-4step-warp",
}


def _runs():
    out = []
    for peer in ("self_forcing", "causvid"):
        with open(os.path.join(DATA, peer, "inference_loop.json"), encoding="utf-8") as fh:
            doc = json.load(fh)
        for run in doc["runs"]:
            rid = f"{peer}-{run['config']}-warp{run['warp_denoising_step']}-prefix{run['prefix_frames']}"
            out.append(pytest.param(run, id=rid))
    return out


RUNS = _runs()


def _schedule(run):
    """The preset of the run's configuration with the run's warp, block count and given frames."""
    bf = run["num_frame_per_block"]
    blocks = (run["prefix_frames"] + run["generated_frames"]) // bf
    warp = "true" if run["warp_denoising_step"] else "false"
    spec = f"{PRESET[run['config']]}:blocks={blocks},warp={warp},prefix_frames={run['prefix_frames']}"
    fs = frame_schedule_from_spec(spec)
    assert fs.base.num_steps == len(run["denoising_step_list"])
    return fs


def _same(ours, theirs, dtype):
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if dtype == "torch.int64":  # the integers themselves
        assert np.array_equal(ours, theirs), (ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=F32, atol=0)


@pytest.mark.parametrize("run", RUNS)
def test_every_model_call_gets_the_peer_timestep(run):
    fs = _schedule(run)
    fed = fs.model_timesteps()
    s = fs.base.num_steps
    pb = run["prefix_frames"] // run["num_frame_per_block"]
    bf = run["num_frame_per_block"]
    steps = [c for c in run["generator_calls"] if c["role"].startswith("step")]
    assert len(steps) == fs.num_steps  # one model call per step, in the same order
    for r, call in enumerate(steps):
        first = call["first_frame"]
        block = first // bf
        assert r == (block - pb) * s + int(call["role"].split()[1])
        assert fs.window[r].tolist() == [0, first + bf]
        assert fs.update[r, first:first + bf].all() and not fs.update[r, :first].any()
        _same(fed[r, first:first + bf], call["timestep"], call["timestep_dtype"])
        # the frames before the block reach the model through the KV cache, filled at timestep 0 (the peers'
        # "cache" call after each block and the single call of a given block)
        assert np.all(fed[r, :first] == 0.0)
    others = [c for c in run["generator_calls"] if not c["role"].startswith("step")]
    assert all(set(c["timestep"]) == {0} for c in others)


@pytest.mark.parametrize("run", RUNS)
def test_the_steps_and_the_renoising_use_the_peer_sigmas(run):
    fs = _schedule(run)
    tol = dict(rtol=F32, atol=0)
    # t of a block at each of its steps is the sigma the peer's x0 conversion uses for the fed timestep ...
    np.testing.assert_allclose(fs.base.t[:-1], run["step_x0_sigma"], **tol)
    # ... and the sigma each re-noising call uses (after steps 0 .. n-2); the last step goes to 0
    np.testing.assert_allclose(fs.base.t[1:-1], run["renoise_sigma"], **tol)
    assert fs.base.t[-1] == 0.0
    _same(fs.base.model_timesteps(), run["step_timestep"], run["step_timestep_dtype"])
    _same(fs.base.model_timesteps()[1:], run["renoise_timestep"], run["step_timestep_dtype"])
    calls = iter(run["add_noise_calls"])
    bf = run["num_frame_per_block"]
    for r in range(fs.num_steps):
        moved = np.flatnonzero(fs.update[r])
        if fs.t[r + 1, moved[0]] > 0.0:  # a re-noising step
            call = next(calls)
            assert moved.size == bf and len(call["sigma"]) in (1, bf)
            np.testing.assert_allclose(fs.t[r + 1, moved], call["sigma"][0], **tol)
    assert next(calls, None) is None


def test_without_the_warp_the_model_gets_the_listed_integers():
    # the gap issue: Self-Forcing's [1000, 750, 500, 250] at shift 5 without the warp is fed 250, not 251.60 (the
    # nearest table entry, which is the t the step lands on)
    fs = frame_schedule_from_spec("self-forcing:warp=false")
    assert fs.base.model_timesteps().tolist() == [1000.0, 750.0, 500.0, 250.0]
    assert fs.base.t[3] * 1000 == pytest.approx(251.59744, abs=1e-5)
    causvid = frame_schedule_from_spec("causvid")
    assert causvid.base.model_timesteps().tolist() == [1000.0, 757.0, 522.0]
    assert causvid.model_timesteps()[:3, 0].tolist() == [1000.0, 757.0, 522.0]
    # with the warp the fed value is 1000 t
    warped = frame_schedule_from_spec("self-forcing")
    np.testing.assert_array_equal(warped.base.model_timesteps(), warped.base.t[:-1] * 1000)


def test_model_timesteps_scale():
    fs = frame_schedule_from_spec("causvid:blocks=2")
    np.testing.assert_allclose(fs.model_timesteps(1.0)[:3, 0], [1.0, 0.757, 0.522], rtol=1e-15, atol=0)
    assert fs.model_timesteps(1.0)[-1, :3].tolist() == [0.0, 0.0, 0.0]
