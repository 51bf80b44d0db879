"""Tuning on a diffusers pipeline: quality.stepsize_search (OSS's dynamic programme asked for a round at a time),
PipelineVelocity (a probe scheduler makes the pipeline a velocity oracle) and tune.

Independent references: each tiny pipeline's guided velocity written out from its denoising loop
(tests/_tiny_pipelines.py), diffusers' own FlowMatchEulerDiscreteScheduler stepping the same sigmas, Euler and the
exhaustive two-step search written out here, teacher_search on the same velocity and noise, and the analytic
velocity of Gaussian data. What the probe records is compared bit for bit: the same transformer calls on the same
tensors in the same process. Whole-pipeline results against another scheduler's run are compared with a tolerance.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from diffusers import (  # noqa: E402
    DDIMScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

import _tiny_pipelines as tiny  # noqa: E402
from _peers import StepLog  # noqa: E402
from flowsched import Schedule, schedules  # noqa: E402
from flowsched.integrations import _tune  # noqa: E402
from flowsched.integrations._tune import PipelineVelocity, tune  # noqa: E402
from flowsched.integrations.diffusers import FlowschedScheduler  # noqa: E402
from flowsched.quality import stepsize_search, teacher_search  # noqa: E402

#: Whole-pipeline results after a few tiny forwards (values of order 1), compared across two schedulers' runs.
PIPELINE_ATOL = 1e-5


def _euler(v, x, ts):
    """Euler written out: ``x <- x + (t_next - t) v(x, t)``."""
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        x = x + (float(t_next) - float(t)) * v(x, float(t))
    return x


def _blob_velocity(x, t):
    """A nonlinear velocity: data at -1 and +1 with std 0.3 (two-Gaussian posterior mean), numpy ``[n, 1]``."""
    mus, s2 = np.array([-1.0, 1.0]), 0.09
    var = (1 - t) ** 2 * s2 + t**2
    logp = -0.5 * (x[..., None] - (1 - t) * mus) ** 2 / var
    w = np.exp(logp - logp.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return (w * (((t - (1 - t) * s2) * x[..., None] - t * mus) / var)).sum(-1)


def _teacher_states(v, noise, grid):
    states = [noise]
    for t, t_next in zip(grid[:-1], grid[1:], strict=True):
        states.append(states[-1] + (t_next - t) * v(states[-1], t))
    return states


# -- quality.stepsize_search ------------------------------------------------------------------------------------


def test_stepsize_search_asks_for_each_round_at_once():
    grid = schedules.linear(10).t
    noise = np.random.default_rng(0).normal(size=(16, 1))
    states = _teacher_states(_blob_velocity, noise, grid)
    rounds = []

    def velocities(m, xs, ts):
        rounds.append((m, list(ts)))
        return [_blob_velocity(x, t) for x, t in zip(xs, ts, strict=True)]

    path = stepsize_search(velocities, states, grid, 4)
    # round 0 at the noise alone; then every kept grid point a later step can still leave: N_T - M + 1 of them
    assert [m for m, _ in rounds] == [0, 1, 2, 3]
    assert rounds[0][1] == [1.0]
    for m, ts in rounds[1:]:
        assert ts == [float(t) for t in grid[m : m + 10 - 4 + 1]]
    assert path.calls == 1 + 3 * 7 == sum(len(ts) for _, ts in rounds)
    assert path.t[0] == 1.0 and path.t[-1] == 0.0 and np.all(np.diff(path.t) < 0)
    np.testing.assert_array_equal(path.t, grid[path.indices])
    np.testing.assert_allclose(path.final, _euler(_blob_velocity, noise, path.t), rtol=0, atol=1e-12)


def test_stepsize_search_with_two_steps_is_the_exhaustive_optimum():
    grid = schedules.linear(12).t
    noise = np.random.default_rng(1).normal(size=(64, 1))
    states = _teacher_states(_blob_velocity, noise, grid)
    path = stepsize_search(lambda m, xs, ts: [_blob_velocity(x, t) for x, t in zip(xs, ts, strict=True)],
                           states, grid, 2)
    errors = [np.sum((_euler(_blob_velocity, noise, [1.0, grid[j], 0.0]) - states[-1]) ** 2) for j in range(1, 12)]
    assert path.indices == [0, 1 + int(np.argmin(errors)), 12]


def test_stepsize_search_refuses_bad_input():
    grid = schedules.linear(4).t
    states = [np.zeros((2, 1))] * 5
    ok = lambda m, xs, ts: [np.zeros_like(x) for x in xs]  # noqa: E731
    with pytest.raises(ValueError, match="states must hold the teacher's state at each of the 5 grid points"):
        stepsize_search(ok, states[:4], grid, 2)
    with pytest.raises(ValueError, match="num_steps must be at most the teacher's 4 steps, got 5"):
        stepsize_search(ok, states, grid, 5)
    with pytest.raises(ValueError, match="grid"):
        stepsize_search(ok, states, [1.0, 0.5, 0.2], 1)
    with pytest.raises(TypeError, match="velocities must be callable"):
        stepsize_search(None, states, grid, 2)
    with pytest.raises(ValueError, match="returned 0 velocities for the 1 states of round 0"):
        stepsize_search(lambda m, xs, ts: [], states, grid, 2)
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\) for a state of shape \(2, 1\)"):
        stepsize_search(lambda m, xs, ts: [np.zeros((2, 3)) for _ in xs], states, grid, 2)


# -- PipelineVelocity: what the probe records ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(name, dtype) for dtype in ("float32", "bfloat16") for name in ("flux", "sd3",
                                                                                                     "wan")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def tiny_pipe(request):
    name, dtype = request.param
    return getattr(tiny, name)(dtype=getattr(torch, dtype))


def test_probe_velocities_are_the_pipelines_guided_velocity_bit_for_bit(tiny_pipe):
    """One pipeline call evaluates three given states at three t; each recorded velocity is the transformer call
    (plus classifier-free guidance for SD3 and Wan) the pipeline makes, written out by hand, bit for bit; in a
    bfloat16 pipeline too (states it can represent; the probe hands velocities back as float32 copies)."""
    oracle = PipelineVelocity(tiny_pipe.pipe, **tiny_pipe.kwargs)
    dtype = tiny_pipe.pipe.transformer.dtype
    g = torch.Generator().manual_seed(5)
    states = [torch.randn(2, *tiny_pipe.sample_shape, generator=g).to(dtype).float() for _ in range(3)]
    ts = [0.9, 0.55, 0.2]
    got = oracle.velocities(states, ts)
    with torch.no_grad():
        want = [tiny_pipe.velocity(x.to(dtype), t) for x, t in zip(states, ts, strict=True)]
    for a, b in zip(got, want, strict=True):
        assert b.dtype == dtype and a.dtype == torch.float32 and torch.equal(a, b.float())
    assert oracle.calls == 1 and oracle.evaluations == 3
    assert torch.equal(oracle(states[1], 0.55), want[1].float())  # v(x, t): the flowsched.sampling contract


def test_probe_trajectory_steps_like_diffusers_flow_match_euler(tiny_pipe):
    """A teacher run from the pipeline's own seeded noise: it starts from the noise the pipeline draws with that
    generator, feeds float32(t) * 1000, and each state is diffusers' FlowMatchEuler step on the same sigmas, in the
    pipeline's dtype (a bfloat16 velocity makes a bfloat16 state)."""
    fed = []
    transformer = tiny_pipe.pipe.transformer
    hook = transformer.register_forward_pre_hook(lambda m, a, kw: fed.append(kw["timestep"].reshape(-1)[0].item()),
                                                 with_kwargs=True)
    try:
        grid = schedules.shifted(4, 2.0)
        run = PipelineVelocity(tiny_pipe.pipe, **tiny_pipe.kwargs).trajectory(grid, num_samples=2, seed=3)
    finally:
        hook.remove()
    plain = FlowMatchEulerDiscreteScheduler()
    own = StepLog(plain)  # the pipeline's first state when it samples with that generator itself
    tiny_pipe.pipe.scheduler, kept = plain, tiny_pipe.pipe.scheduler
    try:
        tiny_pipe.pipe(**tiny_pipe.kwargs, **tiny_pipe.two_samples, num_inference_steps=1, output_type="latent",
                       generator=torch.Generator().manual_seed(3))
    finally:
        tiny_pipe.pipe.scheduler = kept
    assert torch.equal(run.states[0], own.steps[0][2].float())
    assert len(run.states) == 5 and len(run.velocities) == 4
    ref = FlowMatchEulerDiscreteScheduler()
    ref.set_timesteps(sigmas=grid.t[:-1].astype(np.float32))
    assert torch.equal(ref.sigmas, torch.from_numpy(grid.t.astype(np.float32)))
    want = ref.timesteps
    if "Flux" in type(tiny_pipe.pipe).__name__:  # Flux feeds timestep / 1000, in the latents' dtype
        want = (want.to(transformer.dtype) / 1000).float()
    calls = 2 if "Wan" in type(tiny_pipe.pipe).__name__ else 1  # Wan calls its transformer twice per step
    np.testing.assert_allclose(fed, np.repeat(want.numpy(), calls), rtol=1e-7)
    ref.set_begin_index(0)
    dtype = transformer.dtype
    for k in range(4):
        step = ref.step(run.velocities[k].to(dtype), ref.timesteps[k], run.states[k], return_dict=False)[0]
        assert step.dtype == dtype and torch.equal(step.float(), run.states[k + 1])


def test_a_walk_is_what_flowsched_scheduler_samples():
    """An Euler walk through the probe ends where the pipeline ends when it samples the same schedule with
    FlowschedScheduler from the same noise."""
    t = tiny.flux()
    oracle = PipelineVelocity(t.pipe, **t.kwargs)
    schedule = schedules.shifted(3, 3.0)
    walks = oracle.walk(None, [schedule, schedules.linear(2)], num_samples=2, seed=7)
    assert oracle.calls == 1 and oracle.evaluations == 5 and len(walks.finals) == 2
    original = t.pipe.scheduler
    t.pipe.scheduler = FlowschedScheduler.from_config(original.config, schedule=schedule)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*render size is ignored")
            out = t.pipe(**t.kwargs, num_inference_steps=3, latents=walks.noise, output_type="latent").images
    finally:
        t.pipe.scheduler = original
    torch.testing.assert_close(walks.finals[0], out, atol=PIPELINE_ATOL, rtol=0)
    assert not torch.allclose(walks.finals[1], out)


def test_the_pipelines_scheduler_and_config_are_put_back():
    t = tiny.wan()
    scheduler, config = t.pipe.scheduler, dict(t.pipe.config)
    t.pipe.set_progress_bar_config(desc="mine")
    oracle = PipelineVelocity(t.pipe, **t.kwargs)
    x = torch.zeros(1, *t.sample_shape)
    oracle.velocities([x], [0.5])
    assert t.pipe.scheduler is scheduler and dict(t.pipe.config) == config
    assert t.pipe._progress_bar_config == {"desc": "mine"}

    def meddle(pipe, i, timestep, kwargs):  # a callback that moves the latents: not what the probe handed over
        return {"latents": kwargs["latents"] + 1.0}

    bad = PipelineVelocity(t.pipe, **t.kwargs, callback_on_step_end=meddle)
    with pytest.raises(ValueError, match="WanPipeline changed the latents between steps"):
        bad.velocities([x, x], [0.5, 0.25])
    assert t.pipe.scheduler is scheduler and dict(t.pipe.config) == config


@pytest.mark.parametrize(
    "scheduler, match",
    [
        (DDIMScheduler(), "is a DDIMScheduler .* not a flow-matching scheduler"),
        (EulerDiscreteScheduler(prediction_type="v_prediction"), "prediction_type='v_prediction'"),
        (UniPCMultistepScheduler(use_flow_sigmas=True), "prediction_type='epsilon'"),
        (FlowMatchEulerDiscreteScheduler(stochastic_sampling=True), "stochastic_sampling=True"),
    ],
)
def test_schedulers_that_are_not_deterministic_flow_schedulers_are_refused(scheduler, match):
    t = tiny.wan(scheduler)
    with pytest.raises(ValueError, match=match):
        PipelineVelocity(t.pipe, **t.kwargs)
    with pytest.raises(ValueError, match=match):
        tune(t.pipe, num_inference_steps=2, teacher_steps=4, **t.kwargs)


def test_bad_arguments_are_refused_before_any_pipeline_call():
    t = tiny.wan()
    with pytest.raises(TypeError, match="pipe must be a diffusers pipeline"):
        PipelineVelocity(object())
    with pytest.raises(ValueError, match="latents, num_inference_steps must not be given"):
        PipelineVelocity(t.pipe, latents=None, num_inference_steps=4)
    oracle = PipelineVelocity(t.pipe, **t.kwargs)
    x = torch.zeros(1, *t.sample_shape)
    with pytest.raises(ValueError, match="t must hold one value per state"):
        oracle.velocities([x, x], [0.5])
    with pytest.raises(ValueError, match=r"t must be a flat list of values in \[0, 1\]"):
        oracle.velocities([x], [1.5])
    with pytest.raises(ValueError, match="states must share one shape"):
        oracle.velocities([x, torch.zeros(2, *t.sample_shape)], [0.5, 0.2])
    with pytest.raises(ValueError, match="give noise, or num_samples and seed"):
        oracle.walk(x, [[1.0, 0.0]], seed=0)
    with pytest.raises(ValueError, match="schedules"):
        oracle.walk(x, [[0.9, 0.0]])
    with pytest.raises(ValueError, match="num_inference_steps must be at most the teacher's 4 steps, got 5"):
        tune(t.pipe, num_inference_steps=5, teacher_steps=4, **t.kwargs)
    with pytest.raises(TypeError, match="num_samples must be a positive integer"):
        tune(t.pipe, num_inference_steps=2, teacher_steps=4, num_samples=1.5, **t.kwargs)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        tune(t.pipe, num_inference_steps=2, teacher_steps=4, seed=-1, **t.kwargs)
    with pytest.raises(TypeError, match="refine must be True or False"):
        tune(t.pipe, num_inference_steps=2, teacher_steps=4, refine=1, **t.kwargs)
    assert oracle.calls == 0


# -- tune -------------------------------------------------------------------------------------------------------

#: Per-pixel variances of the analytic data: a spread of scales, so that where the steps go matters.
LAM = torch.logspace(-2.5, 0.5, 16).reshape(1, 4, 4)


def _gaussian_pipe(scheduler=None, invert=False):
    net = tiny.GaussianVelocity(LAM)
    if invert:  # a network in Mochi's convention: fed s = 1 - t, predicting -v (diffusers then steps on 1 - t)
        plain = net
        net = InvertedVelocity(plain)
    pipeline = tiny.velocity_pipeline_class()
    return pipeline(net, scheduler or FlowMatchEulerDiscreteScheduler(invert_sigmas=invert), sample_shape=(1, 4, 4))


class InvertedVelocity(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, s):
        return -self.inner(x, 1 - s)


@pytest.fixture(scope="module")
def tuned():
    pipe = _gaussian_pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pipe, tune(pipe, num_inference_steps=4, teacher_steps=24, num_samples=8, seed=2, progress=False)


def test_tune_finds_the_schedule_teacher_search_finds_on_the_same_velocity_and_noise(tuned):
    pipe, schedule = tuned
    noise = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(2))  # what the pipeline draws
    net = pipe.net

    def velocity(x, t):
        return net(x, torch.full((x.shape[0],), np.float32(t) * 1000 / 1000.0))

    reference = teacher_search(velocity, noise, 4, teacher=24)
    np.testing.assert_array_equal(schedule.t, reference.t)
    assert schedule.params["value"] == pytest.approx(reference.params["value"], rel=1e-5)


def test_tune_reports_its_cost_and_score_and_beats_the_default(tuned):
    pipe, schedule = tuned
    p = schedule.params
    m, n_t = 4, 24
    assert schedule.name == "tuned" and p["method"] == "oss" and p["num_steps"] == m
    assert p["pipeline"] == "VelocityPipeline" and p["scheduler"] == "FlowMatchEulerDiscreteScheduler"
    assert p["pipeline_calls"] == m + 3
    assert p["evaluations"] == 2 * n_t + (m - 1) * (n_t - m + 1) + 2 * m
    assert p["held_out_seed"] == 3 and p["held_out_samples"] == 8 and p["teacher"] == "linear N=24"
    # diffusers' rule without a shift: sigmas linspace(1000, 1, N) / 1000, then the terminal 0
    np.testing.assert_allclose(p["default_t"], np.r_[np.linspace(1000, 1, 4) / 1000, 0.0], atol=1e-7)
    assert 0 < p["rmse"] < p["default_rmse"]
    assert Schedule.from_json(schedule.to_json()) == schedule
    json.loads(schedule.to_json())


def test_tune_scores_what_the_pipeline_then_samples(tuned):
    """The held-out RMSE tune reports is the pipeline's own run with FlowschedScheduler(schedule=tuned), against
    a fine Euler run of the same velocity from the same noise (written out here)."""
    pipe, schedule = tuned
    noise = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    original = pipe.scheduler
    pipe.scheduler = FlowschedScheduler.from_config(original.config, schedule=schedule)
    try:
        out = pipe(num_inference_steps=4, latents=noise, output_type="latent").images
    finally:
        pipe.scheduler = original
    net = pipe.net
    teacher = _euler(lambda x, t: net(x, torch.full((8,), float(np.float32(t)))), noise, schedules.linear(24).t)
    rmse = float((out.double() - teacher.double()).square().mean().sqrt())
    assert rmse == pytest.approx(schedule.params["rmse"], rel=1e-4)


@pytest.mark.parametrize("name", ["flux", "sd3", "wan"])
def test_tune_in_a_bfloat16_pipeline_scores_what_the_pipeline_then_samples(name):
    """In bfloat16 (velocities, guidance and states in the pipeline's dtype): the held-out RMSEs tune reports are
    those of the pipeline's own runs, stepped by diffusers' FlowMatchEuler code, from the noise it draws with the
    held-out seed: FlowschedScheduler with the tuned schedule, and the pipeline's own scheduler, each against the
    teacher's grid sampled the same way."""
    t = getattr(tiny, name)(dtype=torch.bfloat16)
    schedule = tune(t.pipe, num_inference_steps=4, teacher_steps=16, num_samples=2, seed=0, progress=False,
                    **t.kwargs)

    def sample(chosen, steps):
        kept = t.pipe.scheduler
        if chosen is not None:
            t.pipe.scheduler = FlowschedScheduler.from_config(kept.config, schedule=chosen)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*render size is ignored")
                out = t.pipe(**t.kwargs, **t.two_samples, num_inference_steps=steps, output_type="latent",
                             generator=torch.Generator().manual_seed(1))
        finally:
            t.pipe.scheduler = kept
        latents = out.frames if name == "wan" else out.images
        assert latents.dtype == torch.bfloat16
        return latents.double()

    teacher = sample(schedules.linear(16), 16)
    # Equal to the last bit here; the tolerance leaves room for bfloat16 matmul paths that change with memory
    # alignment, 10x below what a probe that stepped in float32 (not cast to bfloat16) changes: 4.7%.
    for chosen, key in [(schedule, "rmse"), (None, "default_rmse")]:
        rmse = float((sample(chosen, 4) - teacher).square().mean().sqrt())
        assert rmse == pytest.approx(schedule.params[key], rel=5e-3)
    assert schedule.params["rmse"] < schedule.params["default_rmse"]


def test_tune_is_reproducible(tuned):
    pipe, schedule = tuned
    again = tune(pipe, num_inference_steps=4, teacher_steps=24, num_samples=8, seed=2, progress=False)
    assert again == schedule


def test_tune_on_an_inverted_pipeline_finds_the_same_schedule(tuned):
    """invert_sigmas (Mochi): the scheduler holds 1 - t and the network predicts -v; the probe feeds (1 - t) * 1000
    and records v, so the search sees the same flow."""
    pipe, schedule = tuned
    inverted = tune(_gaussian_pipe(invert=True), num_inference_steps=4, teacher_steps=24, num_samples=8, seed=2,
                    progress=False)
    np.testing.assert_array_equal(inverted.t, schedule.t)
    assert inverted.params["rmse"] == pytest.approx(schedule.params["rmse"], rel=1e-4)


def test_tune_with_refinement_never_ends_worse_on_its_search_noises(tuned):
    pipe, schedule = tuned
    refined = tune(pipe, num_inference_steps=4, teacher_steps=24, num_samples=8, seed=2, refine=True, maxiter=3,
                   progress=False)
    assert refined.params["method"] == "oss+lbfgs"
    assert refined.params["value"] <= schedule.params["value"]
    assert refined.params["pipeline_calls"] > schedule.params["pipeline_calls"]


def test_tune_says_so_when_the_pipelines_own_schedule_is_better(tuned, monkeypatch):
    pipe, _ = tuned
    monkeypatch.setattr(_tune, "_held_out", lambda *a: _tune._Score(0.2, 0.1, [1.0, 0.0]))
    with pytest.warns(UserWarning, match=r"worse than VelocityPipeline's own FlowMatchEulerDiscreteScheduler at 1 "
                                         r"steps on 2 held-out noises \(RMSE against the teacher 0.2, the "
                                         r"pipeline's 0.1\)"):
        schedule = tune(pipe, num_inference_steps=1, teacher_steps=3, num_samples=2, progress=False)
    assert schedule.params["rmse"] == 0.2 and schedule.params["default_rmse"] == 0.1


def test_tune_shows_a_progress_bar_over_pipeline_calls(tuned, capsys):
    pipe, _ = tuned
    tune(pipe, num_inference_steps=2, teacher_steps=4, num_samples=2)
    err = capsys.readouterr().err
    assert "tune:" in err and "/5 " in err and "pipeline call" in err  # M + 3 = 5 calls


def test_tune_keeps_a_unipc_pipelines_own_sampler_as_the_default():
    """Wan's diffusers checkpoints ship UniPC with flow sigmas: the search runs on Euler walks, the default is
    scored with UniPC itself (the pipeline's own sampler)."""
    unipc = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = _gaussian_pipe(unipc)
    schedule = tune(pipe, num_inference_steps=4, teacher_steps=12, num_samples=4, progress=False)
    own = UniPCMultistepScheduler.from_config(unipc.config)
    own.set_timesteps(4)
    np.testing.assert_allclose(schedule.params["default_t"], own.sigmas.double().numpy(), rtol=0, atol=0)
    assert schedule.params["scheduler"] == "UniPCMultistepScheduler" and type(pipe.scheduler) is type(unipc)


# -- fitted_shift -------------------------------------------------------------------------------------------------


def _stationary_latents(lam, count, seed):
    """``count`` samples ``[count, 1, H, W]`` of the stationary Gaussian field with per-mode variance ``lam``
    (``[H, W]``, symmetric under k -> -k): white noise coloured in Fourier space, so ``E|FFT(x)_k|^2 / (HW) =
    lam_k``."""
    white = np.random.default_rng(seed).normal(size=(count, 1, *lam.shape))
    return np.real(np.fft.ifftn(np.sqrt(lam) * np.fft.fftn(white, axes=(-2, -1)), axes=(-2, -1)))


def test_fitted_shift_recovers_the_shift_of_the_field_the_latents_come_from():
    """Latents drawn from a known stationary field: the shift fitted to 400 of them is the shift auto_shift picks
    on the field itself, to within what 400 samples resolve."""
    from flowsched.quality import GaussianField, auto_shift
    from flowsched.quality.field import power_law_spectrum

    lam = power_law_spectrum((1, 16, 16), gamma=2.5, k0=1.0, w_t=1.0)
    true = auto_shift(GaussianField(variances=lam), 8)
    fitted = _tune.fitted_shift(torch.from_numpy(_stationary_latents(lam[0], 400, 0)), 8)
    assert fitted.name == "shifted" and fitted.num_steps == 8
    assert fitted.params["alpha"] == pytest.approx(true, rel=0.03)
    assert fitted.params["fitted_from"] == "given latents" and fitted.params["latent_shape"] == [1, 16, 16]
    assert fitted.params["auto_metric"] == "w2"


def test_fitted_shift_of_a_pipeline_fits_what_its_own_sampler_produces():
    """Five samples, two per pipeline call: the pipeline's own runs from seeds 1, 2 and 3."""
    pipe = _gaussian_pipe(FlowMatchEulerDiscreteScheduler(shift=3.0))
    from_pipe = _tune.fitted_shift(pipe, 6, num_samples=5, batch_size=2, seed=1, sample_steps=20)
    own = torch.cat([
        pipe(num_inference_steps=20, num_images_per_prompt=n, generator=torch.Generator().manual_seed(seed),
             output_type="latent").images
        for seed, n in ((1, 2), (2, 2), (3, 1))
    ])
    from_latents = _tune.fitted_shift(own, 6)
    assert from_pipe.t.tolist() == from_latents.t.tolist()
    assert from_pipe.params["fitted_from"] == "VelocityPipeline samples (5, seeds 1+, 20 steps)"
    default = _tune.fitted_shift(pipe, 6, num_samples=2, seed=1)  # the pipeline's default step count: 50
    assert default.params["fitted_from"].endswith("50 steps)")


def test_fitted_shift_needs_spatial_latents():
    t = tiny.flux()
    with pytest.raises(ValueError, match=r"got shape \[2, 64, 4\]: packed latents .* need unpack="):
        _tune.fitted_shift(t.pipe, 4, num_samples=2, sample_steps=2, **t.kwargs)
    unpacked = _tune.fitted_shift(t.pipe, 4, num_samples=2, sample_steps=2, **t.kwargs,
                                  unpack=lambda x: t.pipe._unpack_latents(x, 16, 16, t.pipe.vae_scale_factor))
    assert unpacked.params["latent_shape"] == [1, 16, 16]
    with pytest.raises(ValueError, match="guidance_scale: pipeline arguments, but source is latents"):
        _tune.fitted_shift(np.zeros((2, 1, 4, 4)), 4, guidance_scale=2.0)
    with pytest.raises(TypeError, match="source must be a diffusers pipeline, or latents"):
        _tune.fitted_shift([1.0, 2.0], 4)
    with pytest.raises(TypeError, match="unpack must be callable"):
        _tune.fitted_shift(np.zeros((2, 1, 4, 4)), 4, unpack=3)


def test_a_schedule_tuned_on_flux_records_its_mu_and_the_scheduler_warns_at_another_size():
    """Flux passes mu (from its token count) to set_timesteps: the tuned schedule records it, so FlowschedScheduler
    is quiet at the size it was tuned at and warns at another."""
    t = tiny.flux()
    schedule = tune(t.pipe, num_inference_steps=2, teacher_steps=4, num_samples=1, progress=False, **t.kwargs)
    config = t.pipe.scheduler.config
    base, top = config["base_image_seq_len"], config["max_image_seq_len"]
    slope = (config["max_shift"] - config["base_shift"]) / (top - base)
    assert schedule.params["mu"] == pytest.approx(config["base_shift"] + slope * (64 - base))  # 64 tokens
    assert schedule.params["pipeline"] == "FluxPipeline" and schedule.params["height"] == 16
    original = t.pipe.scheduler
    t.pipe.scheduler = FlowschedScheduler.from_config(config, schedule=schedule)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t.pipe(**t.kwargs, num_inference_steps=2, output_type="latent")
        with pytest.warns(UserWarning, match="render size is ignored"):
            t.pipe(**{**t.kwargs, "height": 32, "width": 32}, num_inference_steps=2, output_type="latent")
    finally:
        t.pipe.scheduler = original
