"""euler_frames (flowsched.sampling): per-frame Euler and Self-Forcing's stochastic sampler; fixed frames stay
bit-identical; per-step noise, check modes and errors as the other samplers; the chunks of a long video draw exactly
the whole video's portable noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowsched import frames, sampling, schedules
from flowsched.frames import FrameSchedule
from flowsched.noise import portable_noise, step_noise
from flowsched.sampling import euler_frames


def toy_model(calls=None):
    """A velocity that depends on x and on each frame's t (frames on axis 2): ``0.5 x t + sin(x)``."""

    def model(x, t):
        if calls is not None:
            calls.append((tuple(x.shape), np.asarray(t.cpu() if torch.is_tensor(t) else t).copy()))
        if torch.is_tensor(x):
            return 0.5 * x * t.to(x.dtype).reshape(1, 1, -1, 1, 1) + torch.sin(x)
        return 0.5 * x * t.astype(x.dtype).reshape(1, 1, -1, 1, 1) + np.sin(x)

    return model


def scalar_model(x, t):
    """The same velocity with a scalar t, for flowsched.sampling.euler."""
    if torch.is_tensor(x):
        return 0.5 * x * t + torch.sin(x)
    return 0.5 * x * np.asarray(t, dtype=x.dtype) + np.sin(x)


@pytest.mark.parametrize("kind", ["numpy32", "numpy64", "torch32", "torch64"])
def test_synchronous_schedule_is_euler_bit_for_bit(kind):
    base = schedules.shifted(7, 3.0)
    fs = frames.full_sequence(base, 4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5, 6))
    if kind.startswith("numpy"):
        x = x.astype(np.float32 if kind == "numpy32" else np.float64)
    else:
        x = torch.tensor(x, dtype=torch.float32 if kind == "torch32" else torch.float64)
    out = euler_frames(toy_model(), x, fs)
    ref = sampling.euler(scalar_model, x, base)
    if torch.is_tensor(x):
        assert torch.equal(out, ref) and out.dtype == x.dtype
    else:
        assert np.array_equal(out, ref) and out.dtype == x.dtype


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_frames_that_do_not_move_are_bit_identical(backend):
    fs = frames.diffusion_forcing(frames.skyreels_base(6, 5.0), 8, causal_block_size=2, ar_step=2, prefix_frames=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 8, 3, 3)).astype(np.float32)
    if backend == "torch":
        x = torch.tensor(x)
    states = [x]
    euler_frames(toy_model(), x, fs, callback=lambda r, t, tn, xr: states.append(xr))
    assert len(states) == fs.num_steps + 1
    for r in range(fs.num_steps):
        a, b = np.asarray(states[r]), np.asarray(states[r + 1])
        still = ~fs.update[r]
        assert np.array_equal(a[:, :, still], b[:, :, still]), r  # bit for bit
        assert not np.array_equal(a[:, :, fs.update[r]], b[:, :, fs.update[r]])
    assert np.array_equal(np.asarray(states[-1])[:, :, :2], np.asarray(x)[:, :, :2])  # the prefix is untouched


def test_model_sees_the_window_and_per_frame_t():
    fs = frames.blockwise([1000, 500], 3, block_frames=2, alpha=3.0)
    calls = []
    x = np.zeros((1, 1, 6, 2, 2))
    euler_frames(toy_model(calls), x, fs, seed=0, stochastic=True)
    assert [c[0][2] for c in calls] == [2, 2, 4, 4, 6, 6]
    for r, (_, t) in enumerate(calls):
        assert np.array_equal(t, fs.t[r, : fs.window[r, 1]]) and t.dtype == np.float64


def test_prefix_fed_noised_with_fresh_noise_and_kept_clean():
    fs = frames.diffusion_forcing(schedules.linear(3), 4, prefix_frames=2, addnoise_condition=20)
    x = np.random.default_rng(2).standard_normal((1, 1, 4, 2, 2))
    eps = [np.full_like(x, 10.0 + r) for r in range(fs.num_steps)]
    seen = []

    def model(xw, t):
        seen.append(xw.copy())
        return np.zeros_like(xw)

    out = euler_frames(model, x, fs, noise=lambda r, x_r: eps[r])
    for r, xw in enumerate(seen):
        np.testing.assert_array_equal(xw[:, :, :2], (1 - 0.02) * x[:, :, :2] + 0.02 * eps[r][:, :, :2])
        if r == 0:
            np.testing.assert_array_equal(xw[:, :, 2:], x[:, :, 2:])
    assert np.array_equal(out[:, :, :2], x[:, :, :2])


def test_stochastic_step_uses_portable_noise_on_stream_1_plus_step():
    fs = frames.blockwise([1000, 750, 500], 2, block_frames=1, alpha=5.0)
    x = portable_noise((1, 2, 2, 3, 3), 11)  # stream 0: the initial noise
    states = [x]
    model = toy_model()
    euler_frames(model, x, fs, seed=11, stochastic=True, callback=lambda r, t, tn, xr: states.append(xr))
    for r in range(fs.num_steps):
        s, e = fs.window[r]
        cur = states[r]
        v = model(cur[:, :, s:e], torch.tensor(fs.t[r, s:e], dtype=torch.float32))
        (m,) = np.flatnonzero(fs.update[r])
        t, tn = fs.t[r, m], fs.t[r + 1, m]
        x0 = cur[:, :, m] - torch.tensor(t, dtype=torch.float32) * v[:, :, m - s]
        expect = torch.tensor(1 - tn, dtype=torch.float32) * x0
        if tn > 0:
            eps = portable_noise((1, 2, 2, 3, 3), 11, stream=1 + r)
            expect = expect + torch.tensor(tn, dtype=torch.float32) * eps[:, :, m]
        assert torch.equal(states[r + 1][:, :, m], expect), r


def test_long_video_chunk_noise_is_a_region_of_the_whole():
    """A 40-frame video made as two chunks (frames 0-23, then 16-39 with 8 frames of overlap) draws exactly the
    noise of the whole video: each chunk's initial and per-step noise is a region of the whole tensor's."""
    whole = (1, 4, 40, 6, 8)
    for stream in (0, 1, 7):
        full = portable_noise(whole, 5, stream=stream)
        for a, b in ((0, 24), (16, 40)):
            part = portable_noise(whole, 5, stream=stream, region={2: slice(a, b)})
            assert torch.equal(part, full[:, :, a:b])
    # and the first chunk alone is the 24-frame video (frame-major numbering)
    assert torch.equal(portable_noise((1, 4, 24, 6, 8), 5), portable_noise(whole, 5)[:, :, :24])


def test_errors_name_the_step_and_frame():
    fs = frames.diffusion_forcing(schedules.linear(4), 3, ar_step=1)
    x = np.zeros((1, 1, 3, 2, 2))

    def nan_on_frame_1_at_step_2(xw, t):
        v = np.zeros_like(xw)
        if t[0] < 0.6:  # frame 0 has reached index 2
            v[:, :, 1] = np.nan
        return v

    with pytest.raises(ValueError, match=r"NaN or inf at step 2 for frame 1 \(t=0\.75\)"):
        euler_frames(nan_on_frame_1_at_step_2, x, fs, check="every")
    with pytest.raises(ValueError, match=r"result holds NaN or inf.*check='every' to name the step and the frame"):
        euler_frames(nan_on_frame_1_at_step_2, x, fs)  # check="first": found in the result
    assert np.isnan(euler_frames(nan_on_frame_1_at_step_2, x, fs, check="none")).any()
    with pytest.raises(ValueError, match="check must be one of"):
        euler_frames(toy_model(), x, fs, check="sometimes")
    with pytest.raises(ValueError, match=r"model returned shape \(1, 1, 2, 2, 2\) at step 0"):
        euler_frames(lambda xw, t: xw[:, :, :2], x, fs)
    with pytest.raises(ValueError, match="x has 4 frames along frame_dim=2"):
        euler_frames(toy_model(), np.zeros((1, 1, 4, 2, 2)), fs)
    with pytest.raises(ValueError, match="frame_dim must be an axis of x"):
        euler_frames(toy_model(), x, fs, frame_dim=5)
    with pytest.raises(ValueError, match="stochastic=True re-noises every step: pass seed= .* or noise="):
        euler_frames(toy_model(), x, fs, stochastic=True)
    with pytest.raises(TypeError, match="got the integer 7; for portable per-step noise pass seed=7"):
        euler_frames(toy_model(), x, fs, noise=7, stochastic=True)  # the old form
    with pytest.raises(ValueError, match="not both"):
        euler_frames(toy_model(), x, fs, noise=lambda r, x: x, seed=1, stochastic=True)
    with pytest.raises(ValueError, match=r"noise returned shape \(1, 1, 2, 2, 2\) at step 0"):
        euler_frames(toy_model(), x, fs, noise=lambda r, x: x[:, :, :2], stochastic=True)
    with pytest.raises(ValueError, match="sample_index values must be integers"):
        euler_frames(toy_model(), x, fs, seed=1, sample_index=-1, stochastic=True)
    with pytest.raises(TypeError, match="got the integer 3"):
        euler_frames(toy_model(), x, fs, noise=3)  # checked even when no step needs noise
    with pytest.raises(TypeError, match="model must be callable"):
        euler_frames(None, x, fs)
    with pytest.raises(TypeError, match="x must hold floating-point values"):
        euler_frames(toy_model(), np.zeros((1, 1, 3, 2, 2), dtype=np.int64), fs)
    with pytest.raises(TypeError, match="model must return a torch tensor"):
        euler_frames(lambda xw, t: np.zeros(xw.shape), torch.zeros(1, 1, 3, 2, 2), fs)
    prefixed = frames.diffusion_forcing(schedules.linear(3), 4, prefix_frames=2, addnoise_condition=20)
    with pytest.raises(ValueError, match="feeds the prefix frames to the model noised to t=0.02"):
        euler_frames(toy_model(), np.zeros((1, 1, 4, 2, 2)), prefixed)


def test_progress_and_only_in_sampling():
    assert not hasattr(frames, "euler_frames")  # frames holds the value and the families
    fs = FrameSchedule(schedules.linear(2), [[0, 0], [1, 0], [2, 1], [2, 2]])
    out = euler_frames(lambda x, t: np.zeros_like(x), np.ones((1, 1, 2, 1, 1)), fs, progress=True)
    assert np.array_equal(out, np.ones((1, 1, 2, 1, 1)))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_noise_api_is_the_other_samplers(backend):
    """seed= draws step r's noise exactly as euler_ancestral/stochastic_euler do (step_noise, stream 1 + r) and a
    noise callable gets (r, x) with x the whole current state; the same trajectory either way."""
    fs = frames.blockwise([1000, 600], 2, block_frames=2, alpha=3.0)
    x0 = portable_noise((2, 1, 4, 3, 3), 21)
    x = x0 if backend == "torch" else x0.numpy()
    seen = []

    def noise(r, state):
        seen.append((r, tuple(state.shape), type(state)))
        eps = step_noise(21, tuple(state.shape), r)
        return eps if backend == "torch" else eps.numpy()

    a = euler_frames(toy_model(), x, fs, stochastic=True, seed=21)
    b = euler_frames(toy_model(), x, fs, stochastic=True, noise=noise)
    assert type(a) is type(x) and np.array_equal(np.asarray(a), np.asarray(b))
    # noise is drawn only for steps that land above t = 0 (block b's last step goes to 0)
    assert [r for r, _, _ in seen] == [0, 2] and all(shape == (2, 1, 4, 3, 3) for _, shape, _ in seen)
    assert all(kind is type(x) for _, _, kind in seen)


def test_batch_and_sample_index_give_the_same_samples():
    """A batch of 2 equals each sample run alone with its portable sample index (noise is per sample)."""
    fs = frames.diffusion_forcing(schedules.linear(4), 4, causal_block_size=2, ar_step=1, prefix_frames=2,
                                  addnoise_condition=50)
    x = portable_noise((2, 2, 4, 3, 3), 8)
    both = euler_frames(toy_model(), x, fs, stochastic=True, seed=8)
    for b in range(2):
        alone = euler_frames(toy_model(), x[b : b + 1], fs, stochastic=True, seed=8, sample_index=b)
        assert torch.equal(alone, both[b : b + 1]), b


def test_first_check_looks_at_the_first_call_and_the_result():
    """check='first' names the step and frame when the FIRST call is bad; a bad later call is found in the result."""
    fs = frames.diffusion_forcing(schedules.linear(3), 2, ar_step=1)
    x = np.zeros((1, 1, 2, 1, 1))
    with pytest.raises(ValueError, match=r"NaN or inf at step 0 for frame 0 \(t=1\.0\)"):
        euler_frames(lambda xw, t: np.full_like(xw, np.inf), x, fs)
    frozen = FrameSchedule(schedules.linear(2), [[0, 0], [1, 0], [2, 0], [2, 1], [2, 2]])

    def nan_for_a_frame_that_stays(xw, t):
        v = np.zeros_like(xw)
        v[:, :, 1] = np.nan  # frame 1 does not move at step 0: not an error
        return v

    with pytest.raises(ValueError, match="result holds NaN or inf"):
        euler_frames(nan_for_a_frame_that_stays, x, frozen)
    out = euler_frames(nan_for_a_frame_that_stays, x, frozen, check="none")  # frame 1 moves at steps 2 and 3
    assert np.isnan(out[:, :, 1]).all() and np.array_equal(out[:, :, 0], np.zeros((1, 1, 1, 1)))


def test_progress_bar_needs_tqdm(monkeypatch):
    import sys

    from flowsched._optional import MissingDependency

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    fs = FrameSchedule(schedules.linear(2), [[0, 0], [1, 0], [2, 1], [2, 2]])
    with pytest.raises(MissingDependency, match=r"pip install 'flowsched\[progress\]'"):
        euler_frames(lambda x, t: np.zeros_like(x), np.ones((1, 1, 2, 1, 1)), fs, progress=True)
