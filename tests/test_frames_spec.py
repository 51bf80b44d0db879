"""Frame-schedule specs: what a schedule prints about itself is a spec that builds it again, and the spec's errors
and warnings name the keys the user typed."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import frames, schedules
from flowsched.frames import FrameSchedule
from flowsched.presets import FRAME_PRESETS
from flowsched.spec import FRAME_FAMILIES, frame_schedule_from_spec

VARIANTS = [
    "diffusion_forcing:steps=10,frames=12,causal_block_size=3,ar_step=4,prefix_frames=3,addnoise_condition=20,window=9",
    "diffusion_forcing:steps=7,alpha=2.5,frames=11,causal_block_size=5,ar_step=9",
    "pyramid:steps=7,alpha=0.3333333333333333,frames=5,u=0.5,prefix_frames=1",
    "full_sequence:steps=3,frames=4,prefix_frames=2",
    "autoregressive:steps=2,alpha=3,frames=3",
    "staircase:steps=12,alpha=4.5,chunks=3,chunk_frames=2,window=2,prefix_chunks=1,clean_t=0.95",
    "blockwise:steps=1000;600;200,alpha=7.3,warp=false,blocks=3,block_frames=2,prefix_frames=2",
    "blockwise:steps=1200;700;1,alpha=3,num_train_timesteps=1200,blocks=2",
    "causvid:warp=true,blocks=4",
]


def _build(spec: str) -> FrameSchedule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # frames past whole blocks, MAGI-1's 12-step note
        return frame_schedule_from_spec(spec)


@pytest.mark.parametrize("spec", [*FRAME_FAMILIES, *FRAME_PRESETS, *VARIANTS])
def test_what_a_schedule_prints_is_a_spec_that_builds_it(spec):
    fs = _build(spec)
    printed = str(fs)
    assert printed == fs.spec() and printed.startswith(f"{fs.name}:")
    back = _build(printed)
    assert back == fs and np.array_equal(back.t, fs.t) and back.base == fs.base
    # describe() and repr() lead with the same spec
    assert fs.describe() == f"{printed} R={fs.num_steps} F={fs.num_frames}"
    assert repr(fs) == f"FrameSchedule({fs.describe()})"
    # and it survives JSON (params, base and all)
    assert str(FrameSchedule.from_json(fs.to_json())) == printed


def test_the_spec_uses_the_spec_keys():
    fs = frame_schedule_from_spec("magi-1-4.5b")
    assert str(fs) == "staircase:steps=64,alpha=3.0,chunks=4,chunk_frames=6,window=4,prefix_chunks=0,clean_t=0.9999"
    fs = frame_schedule_from_spec("self-forcing")
    assert str(fs) == ("blockwise:steps=1000;750;500;250,alpha=5.0,warp=true,num_train_timesteps=1000,blocks=7,"
                       "block_frames=3,prefix_frames=0")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 9),
    alpha=st.floats(0.05, 20.0, allow_nan=False),
    frames_=st.integers(1, 6),
    u=st.floats(0.0, 3.0, allow_nan=False),
)
def test_python_built_schedules_on_their_spec_base_print_an_exact_spec(n, alpha, frames_, u):
    fs = frames.pyramid(schedules.shifted(n, alpha), frames_, u=u)
    assert frame_schedule_from_spec(str(fs)) == fs
    bw = frames.blockwise([1000, 400], 2, alpha=alpha, warp=False)
    assert frame_schedule_from_spec(str(bw)) == bw


def test_no_spec_for_a_schedule_no_spec_builds():
    # a family on another base: the spec would build a different base
    fs = frames.pyramid(schedules.linear(5), 3, u=1.0)
    assert fs.spec() is None and str(fs) == fs.describe() and "on base linear" in fs.describe()
    assert frames.diffusion_forcing(schedules.shifted(8, 3.0), 4).spec() is None
    # a hand-made index
    custom = FrameSchedule(schedules.linear(2), [[0, 0], [1, 0], [2, 2]])
    assert custom.spec() is None and custom.describe().startswith("custom(")


@pytest.mark.parametrize(
    "spec,error,says",
    [
        ("diffusion_forcing:frames=0", ValueError, "frames must be a positive integer, got 0"),
        ("diffusion_forcing:frames=2.5", TypeError, "frames must be a positive integer"),
        ("diffusion_forcing:frames=3,causal_block_size=5", ValueError, "frames=3 is smaller than causal_block_size=5"),
        ("pyramid:frames=3,prefix_frames=3", ValueError, "out of frames=3"),
        ("staircase:chunks=0", ValueError, "chunks must be a positive integer"),
        ("staircase:chunks=2,prefix_chunks=2", ValueError, "out of chunks=2"),
        ("staircase:steps=10", ValueError, "steps // window steps per stage"),
        ("staircase:steps=2", ValueError, "steps / window steps per stage"),
        ("blockwise:blocks=0", ValueError, "blocks must be a positive integer"),
        ("self-forcing:steps=1000;1500", ValueError, r"steps\[1\] must lie in \(0, 1000\]"),
    ],
)
def test_errors_name_the_keys_the_spec_uses(spec, error, says):
    with pytest.raises(error) as info:
        frame_schedule_from_spec(spec)
    message = str(info.value)
    assert message.startswith("frame schedule spec") and f"{spec!r}: " in message
    assert re.search(says, message)
    for name in ("num_frames", "num_chunks", "num_blocks", "num_steps"):
        assert name not in message


def test_warnings_name_the_keys_the_spec_uses():
    with pytest.warns(UserWarning) as caught:
        fs = frame_schedule_from_spec("diffusion_forcing:frames=27,causal_block_size=5")
    assert fs.num_frames == 25
    (w,) = caught
    text = str(w.message)
    assert "frames=27 is not a multiple of causal_block_size=5" in text and "use frames=25 or 30" in text
    assert "num_frames" not in text
    # the Python API keeps its own names
    with pytest.warns(UserWarning, match="num_frames=27 is not a multiple"):
        frames.diffusion_forcing(frames.skyreels_base(30), 27, causal_block_size=5)


def test_the_size_limit_names_a_key_the_spec_takes():
    # 200 frames in blocks of 1 starting 5 rows apart on 30 steps: 30 + 199 * 5 + 1 = 1026 rows, 205200 cells of
    # 17 bytes (t, index, update) = 3.3 MiB
    spec = "diffusion_forcing:steps=30,frames=200,ar_step=5"
    with pytest.raises(ValueError, match=r"= 205200 cells, above the limit max_cells=100 \(about 3\.3 MiB\)"):
        frame_schedule_from_spec(spec + ",max_cells=100")
    with pytest.raises(ValueError) as info:
        frame_schedule_from_spec(spec + ",max_cells=205199")
    assert str(info.value).endswith("max_cells=205200 allows it")
    fs = frame_schedule_from_spec(spec + ",max_cells=205200")  # exactly what the message says is enough
    assert fs.index.size == 205200 and str(fs) == frame_schedule_from_spec(spec).spec()
    for family in FRAME_FAMILIES:
        with pytest.raises(ValueError, match="above the limit max_cells=1 "):
            frame_schedule_from_spec(f"{family}:max_cells=1")


def test_the_default_limit_guards_the_memory():
    with pytest.raises(ValueError, match=r"above the limit max_cells=50000000 \(about 791\.7 GiB\)"):
        frame_schedule_from_spec("diffusion_forcing:frames=100000,ar_step=5")
