"""A schedule tuned on your own diffusers flow pipeline, with the pipeline itself as the velocity oracle.

A pipeline's velocity is its transformer plus what the pipeline does around it (classifier-free guidance, guidance
embeddings, prompt encodings, latent packing), different in every pipeline. All of it is done by the time the
pipeline calls ``scheduler.step(v, t, x)``. So a *probe* scheduler that sets the pipeline's timesteps and, at each
``step``, records ``v`` and hands back the next state it wants evaluated turns any flow pipeline (Flux, SD3, Wan,
LTX-Video, HunyuanVideo, CogView4 ...) into a velocity oracle with no per-model code:

* :class:`PipelineVelocity`: the oracle. ``velocities(states, t)`` evaluates given states in one pipeline call,
  ``walk(noise, schedules)`` runs Euler walks in one call, ``trajectory(grid, ...)`` a teacher from the pipeline's
  own seeded noise; called as ``v(x, t)`` it is a velocity for every flowsched sampler (one call per velocity).
* :func:`tune`: Optimal Stepsize Sampling's dynamic programme (:func:`flowsched.quality.stepsize_search`) on the
  oracle, one pipeline call per round, scored on held-out seeds against the pipeline's own schedule.

The probe keeps what pipelines read from a scheduler consistent with the timesteps it sets: ``timesteps``
(``float32(t) * num_train_timesteps``, as :class:`FlowschedScheduler` feeds a schedule), ``sigmas`` (the ``t`` of
each evaluation, then a terminal), ``order = 1``, ``init_noise_sigma = 1``, ``set_begin_index``,
``index_for_timestep``, ``scale_noise`` (diffusers' own) and the pipeline scheduler's config keys (Flux and SD3 read
``base_shift``, ``use_dynamic_shifting`` ... to compute ``mu``). Conventions: docs/conventions.md (``t = 1`` noise,
``v = eps - x0``); method, cost and limits: docs/tune.md.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerOutput

from .._io import read_safetensors_tensor
from .._optional import progress_bar
from .._validate import TORCH_SEED_MAX, boolean, nonnegative_int, positive_int
from ..quality import GaussianField, auto_shift_schedule, fit_spectrum, optimize_schedule, stepsize_search
from ..quality.optimize import teacher_grid
from ..schedule import Schedule, check_t

__all__ = ["PipelineVelocity", "Trajectory", "Walks", "fitted_shift", "tune"]

#: ``__call__`` arguments the oracle sets itself on every pipeline call.
_RESERVED = ("num_inference_steps", "latents", "generator", "output_type", "num_images_per_prompt",
             "num_videos_per_prompt", "sigmas", "timesteps", "return_dict")

#: The pipeline ``__call__`` argument that repeats each prompt, by name (images, videos).
_PER_PROMPT = ("num_images_per_prompt", "num_videos_per_prompt")


# -- the probe: a scheduler that chooses the states the pipeline evaluates --------------------------------------


class _Plan:
    """What one pipeline call evaluates: ``t`` (the ``K`` values of ``t``, in order), ``starts`` (evaluation index
    -> the state handed to the pipeline there, ``None`` for the pipeline's own noise; every other evaluation's state
    is the Euler step from the one before) and, for Euler walks, ``t_next`` (where each evaluation steps to; a walk
    ends where the next evaluation is a start, or at the last)."""

    def __init__(self, t: np.ndarray, starts: Mapping[int, Any], t_next: np.ndarray | None = None,
                 keep_states: bool = False) -> None:
        self.t, self.starts, self.t_next, self.keep_states = t, dict(starts), t_next, keep_states

    @classmethod
    def walks(cls, noise: Any, rows: Sequence[np.ndarray], keep_states: bool = False) -> _Plan:
        """Euler walks of the schedules ``rows`` (each ``N_r + 1`` values), one after the other, each from
        ``noise``."""
        offsets = np.cumsum([0] + [row.size - 1 for row in rows[:-1]])
        t = np.concatenate([row[:-1] for row in rows])
        t_next = np.concatenate([row[1:] for row in rows])
        return cls(t, dict.fromkeys(offsets.tolist(), noise), t_next, keep_states)


class _Probe(FlowMatchEulerDiscreteScheduler):
    """The pipeline's scheduler for one call of a :class:`_Plan`: ``set_timesteps`` sets the plan's timesteps
    whatever the pipeline asks for (it records ``mu``), ``step`` records the velocity and returns the next state the
    plan wants evaluated. Checks that the pipeline evaluates exactly what it was handed."""

    order = 1
    init_noise_sigma = 1.0  # pipelines written for other schedulers scale their initial noise by it

    def __init__(self, config: Mapping[str, Any], plan: _Plan, owner: str) -> None:
        super().__init__()
        self.register_to_config(**{k: v for k, v in config.items() if not k.startswith("_")})
        self.plan, self.owner, self.mu = plan, owner, None
        self.inverted = bool(self.config.get("invert_sigmas", False))
        self.velocities: list[torch.Tensor] = []
        self.states: list[torch.Tensor] = []
        self.finals: list[torch.Tensor] = []
        self.first: torch.Tensor | None = None
        self._k, self._expected = 0, plan.starts.get(0)

    def _sigma(self, t: np.ndarray, device: Any) -> torch.Tensor:
        """diffusers' sigmas for flowsched ``t``: ``float32(t)``, or ``1 - float32(t)`` with ``invert_sigmas``."""
        s = torch.from_numpy(np.asarray(t, dtype=np.float32))
        return (1.0 - s if self.inverted else s).to(device)

    def set_timesteps(self, num_inference_steps: int | None = None, device: Any = None, sigmas: Any = None,
                      mu: float | None = None, timesteps: Any = None) -> None:
        """The plan's ``K`` timesteps, ``float32(sigma) * num_train_timesteps`` as FlowMatchEuler feeds them; the
        pipeline's ``sigmas``, ``timesteps`` and step count are ignored, its ``mu`` recorded."""
        plan = self.plan
        self.mu = None if mu is None else float(mu)
        sig = self._sigma(plan.t, device)
        self._next = None if plan.t_next is None else self._sigma(plan.t_next, device)
        terminal = self._next[-1:] if self._next is not None else self._sigma(np.zeros(1), device)
        self.sigmas = torch.cat([sig, terminal])
        self.timesteps = sig * self.config.num_train_timesteps
        self.num_inference_steps = plan.t.size
        self._step_index, self._begin_index, self._k = None, None, 0
        self._expected = plan.starts.get(0)

    def set_begin_index(self, begin_index: int = 0) -> None:
        if begin_index != 0:
            raise ValueError(
                f"{self.owner} starts its loop at step {begin_index} (image-to-image with strength < 1?); tune and "
                "PipelineVelocity drive pipelines that run every step from noise"
            )
        super().set_begin_index(0)

    def _check_step(self, k: int, timestep: Any, sample: torch.Tensor, per_token: Any) -> None:
        """The pipeline evaluates what the plan set: the ``k``-th timestep, at the state handed to it."""
        if per_token is not None:
            raise ValueError(f"{self.owner} steps with per-token timesteps (a conditioned pipeline); tune and "
                             "PipelineVelocity drive pipelines whose tokens share one t")
        if k >= self.plan.t.size:
            raise ValueError(f"{self.owner} called scheduler.step() more than the {self.plan.t.size} times set")
        fed, want = float(torch.as_tensor(timestep).reshape(-1)[0]), float(self.timesteps[k])
        if fed != want:
            raise ValueError(f"{self.owner} passed timestep {fed!r} to step {k} where the probe set {want!r}; it "
                             "does not walk its scheduler's timesteps in order")
        expected = self._expected
        if expected is not None and not torch.equal(sample, expected.to(sample.device, sample.dtype)):
            raise ValueError(
                f"{self.owner} changed the latents between steps (step {k}): an inpainting or conditioned "
                "pipeline? tune and PipelineVelocity need the state the scheduler returns to be the next one evaluated"
            )

    def _euler(self, sample: torch.Tensor, model_output: torch.Tensor, k: int) -> torch.Tensor:
        """FlowMatchEuler's step in its arithmetic: float32 ``sample + (sigma_next - sigma) * model_output``, cast
        to the model output's dtype."""
        dt = self._next[k] - self.sigmas[k]
        return (sample.to(torch.float32) + dt * model_output).to(model_output.dtype)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any,
             per_token_timesteps: Any = None, return_dict: bool = True, **kwargs: Any) -> Any:
        """Record ``v`` at the state evaluated, return the state the plan evaluates next (the last step returns
        the walk's final state, or the state itself)."""
        k, plan = self._k, self.plan
        self._check_step(k, timestep, sample, per_token_timesteps)
        if k == 0:
            self.first = sample.detach().to(torch.float32, copy=True)
        v = -model_output if self.inverted else model_output  # diffusers steps on 1 - t there
        self.velocities.append(v.detach().to(torch.float32, copy=True))
        if plan.keep_states:
            self.states.append(sample.detach().to(torch.float32, copy=True))
        out = sample if plan.t_next is None else self._euler(sample, model_output, k)
        ends = k + 1 == plan.t.size or k + 1 in plan.starts
        if plan.t_next is not None and ends:
            self.finals.append(out.detach().to(torch.float32, copy=True))
        if k + 1 in plan.starts:
            start = plan.starts[k + 1]
            out = (self.first if start is None else start).to(sample.device, model_output.dtype)
        self._k = self._step_index = k + 1
        self._expected = out
        return SchedulerOutput(prev_sample=out) if return_dict else (out,)

    def finish(self) -> None:
        if self._k != self.plan.t.size:
            raise ValueError(f"{self.owner} stopped after {self._k} of the {self.plan.t.size} steps set "
                             "(interrupted, or a callback ended it?)")


class _LastStep:
    """Wraps a scheduler's ``step`` to keep the state it returns last: the pipeline's own sampler's result."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler, self.inner, self.final, self.calls = scheduler, scheduler.step, None, 0
        scheduler.step = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.inner(*args, **kwargs)
        self.final = out[0] if isinstance(out, tuple) else out.prev_sample
        self.calls += 1
        return out


# -- the pipeline as a velocity oracle --------------------------------------------------------------------------


def _flow_scheduler(scheduler: Any, owner: str) -> Mapping[str, Any]:
    """The config of a pipeline scheduler tune can stand in for, or a clear error: a flow-matching scheduler (the
    FlowMatch family, flowsched's, or a multistep one with ``use_flow_sigmas``) with deterministic steps."""
    config = getattr(scheduler, "config", None)
    if not isinstance(config, Mapping) or not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"{owner}.scheduler must be a diffusers scheduler, got {type(scheduler).__name__}")
    names = [c.__name__ for c in type(scheduler).__mro__]
    flow = any(n.startswith(("FlowMatch", "Flowsched")) for n in names) or config.get("use_flow_sigmas") is True
    if not flow or config.get("prediction_type", "flow_prediction") != "flow_prediction":
        raise ValueError(
            f"{owner}.scheduler is a {type(scheduler).__name__} (prediction_type="
            f"{config.get('prediction_type', 'flow_prediction')!r}, use_flow_sigmas={config.get('use_flow_sigmas')}"
            "), not a flow-matching scheduler: tune and PipelineVelocity drive flow-matching pipelines (a FlowMatch* "
            "scheduler, or one with use_flow_sigmas=True and prediction_type='flow_prediction')"
        )
    if config.get("stochastic_sampling"):
        raise ValueError(f"{owner}.scheduler has stochastic_sampling=True; tune compares deterministic samplers "
                         "against a teacher: set it to False on a copy of the scheduler")
    return config


def _prompt_count(kwargs: Mapping[str, Any]) -> int:
    """How many prompts a pipeline call holds: one per string of ``prompt``, else the batch of ``prompt_embeds``."""
    prompt = kwargs.get("prompt")
    if isinstance(prompt, (list, tuple)):
        return max(len(prompt), 1)
    embeds = kwargs.get("prompt_embeds")
    if prompt is None and isinstance(embeds, torch.Tensor) and embeds.ndim > 0:
        return int(embeds.shape[0])
    return 1


class Trajectory(NamedTuple):
    """An Euler trajectory: ``states`` (``N + 1`` float32 tensors ``[B, ...]`` in the pipeline's latent layout,
    from the noise to the result) and ``velocities`` (``N``, ``v = eps - x0`` at each state but the last)."""

    states: list[torch.Tensor]
    velocities: list[torch.Tensor]


class Walks(NamedTuple):
    """Euler walks from one noise: ``noise`` (float32 ``[B, ...]``) and each schedule's ``finals`` state."""

    noise: torch.Tensor
    finals: list[torch.Tensor]


class PipelineVelocity:
    """A diffusers flow pipeline as a velocity ``v(x, t)`` (``v = eps - x0``, ``t = 1`` noise), computed by the
    pipeline itself: its guidance, conditioning and packing, exactly as when it samples.

    Each method makes one pipeline call, with a probe scheduler that sets the ``t`` values asked for and hands the
    pipeline the states to evaluate (the pipeline's own scheduler is put back afterwards, on errors too). States are
    in the latent layout of the pipeline's denoising loop (packed tokens for Flux), a batch of ``B`` samples:
    ``B`` must be a multiple of the prompt count, the rest goes to ``num_images_per_prompt`` (or
    ``num_videos_per_prompt``). What the pipeline is fed: ``float32(t) * num_train_timesteps``, as
    :class:`FlowschedScheduler` feeds a schedule. Works for pipelines whose velocity depends on the state and ``t``
    only (not on the step index: turn off step caches and step-index guidance schedules) that run every step from
    noise (text-to-image and text-to-video).

    Args:
        pipe: a diffusers pipeline whose ``scheduler`` is a flow-matching scheduler.
        **call_kwargs: the pipeline's ``__call__`` arguments (``prompt``, ``height``, ``guidance_scale`` ...),
            passed on every call. ``num_inference_steps``, ``latents``, ``generator``, ``output_type``, the
            per-prompt count, ``sigmas``, ``timesteps`` and ``return_dict`` are the oracle's to set.

    Attributes: ``calls`` (pipeline calls made) and ``evaluations`` (velocity evaluations on the batch: one
    transformer forward each, two with classifier-free guidance).
    """

    def __init__(self, pipe: Any, **call_kwargs: Any) -> None:
        if not callable(pipe) or not hasattr(pipe, "scheduler"):
            raise TypeError(
                f"pipe must be a diffusers pipeline (callable, with a scheduler), got {type(pipe).__name__}"
            )
        self.pipe, self.name = pipe, type(pipe).__name__
        self.config = _flow_scheduler(pipe.scheduler, self.name)
        taken = sorted(set(call_kwargs) & set(_RESERVED))
        if taken:
            raise ValueError(f"{', '.join(taken)} must not be given: tune and PipelineVelocity set "
                             f"{', '.join(_RESERVED)} on each pipeline call themselves")
        self.kwargs = call_kwargs
        params = inspect.signature(pipe.__call__).parameters
        self._per_prompt = next((p for p in _PER_PROMPT if p in params), None)
        self._output_type = "output_type" in params
        self._prompts = _prompt_count(call_kwargs)
        self.calls = self.evaluations = 0
        self._mu: float | None = None
        self._bar = progress_bar(None, False, "")

    # -- one pipeline call ------------------------------------------------------------------------------------
    def _call(self, scheduler: Any, steps: int, latents: torch.Tensor | None, count: int, seed: int | None) -> None:
        if count % self._prompts:
            raise ValueError(f"the batch must be a multiple of the {self._prompts} prompts, got {count} samples")
        kwargs = {**self.kwargs, "num_inference_steps": steps}
        if self._output_type:
            kwargs["output_type"] = "latent"
        if self._per_prompt is not None:
            kwargs[self._per_prompt] = count // self._prompts
        elif count != self._prompts:
            raise ValueError(f"{self.name}.__call__ takes no num_images_per_prompt: the batch must hold one sample "
                             f"per prompt ({self._prompts}), got {count}")
        if latents is not None:
            kwargs["latents"] = latents
        if seed is not None:
            kwargs["generator"] = torch.Generator().manual_seed(seed)
        with _swapped_scheduler(self.pipe, scheduler):
            self.pipe(**kwargs)
        self.calls += 1
        self._bar.update(1)

    def _run(self, plan: _Plan, count: int, seed: int | None) -> _Probe:
        probe = _Probe(self.config, plan, self.name)
        self._call(probe, plan.t.size, plan.starts.get(0), count, seed)
        probe.finish()
        self.evaluations += plan.t.size
        self._mu = probe.mu
        return probe

    # -- what it evaluates ------------------------------------------------------------------------------------
    def velocities(self, states: Sequence[torch.Tensor], t: Sequence[float]) -> list[torch.Tensor]:
        """The velocity at each ``states[k]`` (``[B, ...]``, one batch size for all) at ``t[k]``, float32, in one
        pipeline call of ``len(states)`` steps."""
        states = _check_states(states)
        t = _check_times(t)
        if t.size != len(states):
            raise ValueError(f"t must hold one value per state ({len(states)}), got {t.size}")
        return self._run(_Plan(t, dict(enumerate(states))), states[0].shape[0], None).velocities

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``v(x, t)``: the :mod:`flowsched.sampling` contract (one pipeline call)."""
        return self.velocities([x], [t])[0]

    def walk(self, noise: torch.Tensor | None, schedules: Sequence[Schedule | Sequence[float]], *,
             num_samples: int | None = None, seed: int | None = None) -> Walks:
        """Euler walks of ``schedules`` (each decreasing from 1 to 0), each from ``noise``, in one pipeline call;
        steps in FlowMatchEuler's arithmetic, so a walk is what ``FlowschedScheduler(schedule=...)`` samples.
        ``noise=None``: the pipeline draws ``num_samples`` noises itself from ``torch.Generator().manual_seed(seed)``
        (what it samples with that generator)."""
        rows = [_check_row(s, f"schedules[{i}]") for i, s in enumerate(schedules)]
        if not rows:
            raise ValueError("schedules must hold at least one schedule")
        count, seed = _noise_source(noise, num_samples, seed)
        probe = self._run(_Plan.walks(noise, rows), count, seed)
        return Walks(probe.first, probe.finals)

    def trajectory(self, schedule: Schedule | Sequence[float], *, noise: torch.Tensor | None = None,
                   num_samples: int | None = None, seed: int | None = None) -> Trajectory:
        """The Euler walk of ``schedule`` with every state and velocity kept (a teacher), in one pipeline call;
        ``noise``, ``num_samples`` and ``seed`` as for :meth:`walk`. Memory: ``N + 1`` states of the batch."""
        row = _check_row(schedule, "schedule")
        count, seed = _noise_source(noise, num_samples, seed)
        probe = self._run(_Plan.walks(noise, [row], keep_states=True), count, seed)
        return Trajectory(probe.states + probe.finals, probe.velocities)

    def pipeline_run(self, num_inference_steps: int, *, noise: torch.Tensor | None = None,
                     num_samples: int | None = None, seed: int | None = None) -> tuple[torch.Tensor, Any]:
        """The pipeline's own sampler (a copy of its scheduler, its own rule) at ``num_inference_steps``, from
        ``noise`` or from ``num_samples`` noises it draws from ``seed`` (as for :meth:`walk`): the result (float32,
        the loop's layout) and the scheduler as it ran."""
        steps = positive_int("num_inference_steps", num_inference_steps)
        count, seed = _noise_source(noise, num_samples, seed)
        scheduler = copy.deepcopy(self.pipe.scheduler)
        last = _LastStep(scheduler)
        self._call(scheduler, steps, noise, count, seed)
        self.evaluations += last.calls
        del scheduler.step  # the instance attribute: the copy's own step again
        return last.final.detach().to(torch.float32, copy=True), scheduler

    @property
    def mu(self) -> float | None:
        """The ``mu`` the pipeline passed to ``set_timesteps`` on its last probe call (Flux, SD3 with dynamic
        shifting: from the render size), or None."""
        return self._mu


def _check_states(states: Sequence[Any]) -> list[torch.Tensor]:
    states = list(states)
    if not states or not all(isinstance(x, torch.Tensor) for x in states):
        raise TypeError("states must be a non-empty list of torch tensors [B, ...] in the pipeline's latent layout")
    shape = tuple(states[0].shape)
    if len(shape) < 2 or any(tuple(x.shape) != shape for x in states):
        raise ValueError(f"states must share one shape [B, ...] (batch first), got {[tuple(x.shape) for x in states]}")
    return states


def _check_times(t: Any) -> np.ndarray:
    try:
        arr = np.array(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"t must be a list of numbers, got {t!r:.80}") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr) & (arr >= 0) & (arr <= 1)):
        raise ValueError(f"t must be a flat list of values in [0, 1] (t = 1 is noise), got {t!r:.80}")
    return arr


def _check_row(schedule: Any, name: str) -> np.ndarray:
    values = schedule.t if isinstance(schedule, Schedule) else schedule
    return check_t(values, name, start=1.0, end=0.0)


def _noise_source(noise: Any, num_samples: Any, seed: Any) -> tuple[int, int | None]:
    """``(batch, generator seed)`` of a walk: from ``noise``, or drawn by the pipeline from ``seed``."""
    if noise is not None:
        if num_samples is not None or seed is not None:
            raise ValueError("give noise, or num_samples and seed (the pipeline then draws the noise), not both")
        return _check_states([noise])[0].shape[0], None
    if num_samples is None or seed is None:
        raise ValueError("without noise, give num_samples and seed: the pipeline draws the noise from them")
    return positive_int("num_samples", num_samples), _seed("seed", seed)


def _seed(name: str, seed: Any) -> int:
    seed = nonnegative_int(name, seed)
    if seed >= TORCH_SEED_MAX:
        raise ValueError(f"{name} must be below 2**64 - 1 (seed + 1 seeds the held-out noises), got {seed}")
    return seed


@contextlib.contextmanager
def _swapped_scheduler(pipe: Any, scheduler: Any) -> Iterator[None]:
    """``pipe.scheduler`` is ``scheduler`` (and the pipeline's own progress bar is off) inside; both are put back,
    exceptions included."""
    original = pipe.scheduler
    bar = getattr(pipe, "_progress_bar_config", None)
    quiet = hasattr(pipe, "set_progress_bar_config")
    if quiet:
        pipe.set_progress_bar_config(**{**(bar or {}), "disable": True})
    pipe.scheduler = scheduler
    try:
        yield
    finally:
        pipe.scheduler = original
        if quiet:
            pipe.set_progress_bar_config(**(bar or {}))


# -- tune ----------------------------------------------------------------------------------------------------------


def tune(
    pipe: Any,
    prompt: str | Sequence[str] | None = None,
    *,
    num_inference_steps: int,
    teacher_steps: int | Schedule | None = None,
    num_samples: int = 4,
    seed: int = 0,
    held_out_samples: int | None = None,
    refine: bool = False,
    maxiter: int = 10,
    progress: bool = True,
    **pipe_kwargs: Any,
) -> Schedule:
    """The ``num_inference_steps``-step Euler schedule that tracks a fine teacher run of ``pipe`` best: Optimal
    Stepsize Sampling (Pei, Hu, Gu 2025, arXiv 2503.21774) with the pipeline as the velocity oracle
    (:class:`PipelineVelocity`), scored on held-out seeds against the pipeline's own schedule at the same step count.

    1. Teacher: an Euler run on the teacher's grid from ``num_samples`` noises the pipeline draws from
       ``torch.Generator().manual_seed(seed)`` (the noises it samples with that generator).
    2. Search: :func:`flowsched.quality.stepsize_search`, one pipeline call per round, its states known in advance;
       the steps land on the teacher's grid. With ``refine=True``, L-BFGS-B then moves them off the grid
       (:func:`flowsched.quality.optimize_schedule` on the walks' distance to the teacher's results; central
       differences, so float32 pipelines only).
    3. Score: on ``held_out_samples`` noises drawn from ``seed + 1``, the RMSE of the tuned schedule's result and of
       the pipeline's own sampler's (its scheduler, untouched, at ``num_inference_steps``) against a teacher run.
       When the tuned schedule is the worse one, a ``UserWarning`` says so (it is returned all the same).

    Cost, with ``M = num_inference_steps`` and ``N_T`` teacher steps: ``M + 3`` pipeline calls (teacher, ``M - 1``
    search rounds, held-out teacher, tuned walk, the pipeline's own run) and ``2 N_T + (M - 1)(N_T - M + 1) + 2M``
    velocity evaluations (one transformer forward on the batch each, two with classifier-free guidance; a
    second-order pipeline sampler adds its own). ``refine`` adds one pipeline call of ``(2M + 1) M`` evaluations per
    L-BFGS function evaluation. Memory: ``N_T + 1`` latents of the batch (the teacher's states).

    Args:
        pipe: a diffusers pipeline with a flow-matching scheduler (text-to-image or text-to-video: see
            :class:`PipelineVelocity` for what it must do).
        prompt: the prompt (or prompts); or pass ``prompt_embeds=`` and the like in ``pipe_kwargs``.
        num_inference_steps: the step count ``M`` to tune for.
        teacher_steps: the teacher's step count ``N_T`` (a linear grid; ``M <= N_T``; default ``max(100, 4 M)``)
            or its grid as a Schedule from 1 to 0 (the search can only choose its points).
        num_samples: noises the search runs on (batched in each pipeline call).
        seed: the search noises' generator seed; ``seed + 1`` seeds the held-out ones.
        held_out_samples: noises of the score (default ``num_samples``).
        refine, maxiter: the L-BFGS-B refinement and its iterations.
        progress: a progress bar over pipeline calls on stderr (the pipeline's own bar is off meanwhile).
        **pipe_kwargs: the pipeline's other ``__call__`` arguments (``height``, ``width``, ``guidance_scale`` ...):
            tune the schedule at the size and guidance you sample with.

    Returns:
        ``Schedule(name="tuned")`` for ``FlowschedScheduler.from_config(pipe.scheduler.config, schedule=...)``
        (Euler steps), JSON-ready, with params ``method`` (``"oss"``, ``"oss+lbfgs"``), ``pipeline``,
        ``scheduler``, ``teacher``, ``teacher_steps``, ``num_samples``, ``seed``, ``value`` (mean squared distance
        to the teacher's results on the search noises), ``held_out_samples``, ``held_out_seed``, ``rmse`` and
        ``default_rmse`` (held-out RMSE against the teacher: tuned, and the pipeline's own sampler), ``default_t``
        (the ``t`` the pipeline's sampler walked), ``pipeline_calls``, ``evaluations``, ``mu`` when the pipeline
        passes one (its render size: FlowschedScheduler warns when another size is rendered), and the prompt and
        scalar ``pipe_kwargs`` it was tuned with.
    """
    steps = positive_int("num_inference_steps", num_inference_steps)
    grid, teacher_name = teacher_grid(teacher_steps, steps, "teacher_steps")
    if steps > grid.size - 1:
        raise ValueError(f"num_inference_steps must be at most the teacher's {grid.size - 1} steps, got {steps}")
    count = positive_int("num_samples", num_samples)
    held = count if held_out_samples is None else positive_int("held_out_samples", held_out_samples)
    seed, refine = _seed("seed", seed), boolean("refine", refine)
    maxiter, progress = positive_int("maxiter", maxiter), boolean("progress", progress)
    call = {**({} if prompt is None else {"prompt": prompt}), **pipe_kwargs}
    oracle = PipelineVelocity(pipe, **call)
    with progress_bar(None if refine else steps + 3, progress, "tune", "pipeline call") as bar:
        oracle._bar = bar
        teacher = oracle.trajectory(grid, num_samples=count, seed=seed)
        path = stepsize_search(_search_rounds(oracle, teacher.velocities[0]), teacher.states, grid, steps)
        t, value = path.t, _mean_squared_distance(path.final, teacher.states[-1])
        if refine and steps > 1:
            t, value = _refine(oracle, teacher, t, maxiter)
        mu = oracle.mu
        score = _held_out(oracle, grid, t, steps, held, seed + 1)
    params = {
        "num_steps": steps, "method": "oss+lbfgs" if refine else "oss", "pipeline": oracle.name,
        "scheduler": type(pipe.scheduler).__name__, "teacher": teacher_name, "teacher_steps": grid.size - 1,
        "num_samples": count, "seed": seed, "value": value, "held_out_samples": held, "held_out_seed": seed + 1,
        "rmse": score.rmse, "default_rmse": score.default_rmse, "default_t": score.default_t,
        "pipeline_calls": oracle.calls, "evaluations": oracle.evaluations, **({} if mu is None else {"mu": mu}),
    }
    if score.rmse > score.default_rmse:
        _warn_worse(oracle.name, type(pipe.scheduler).__name__, steps, held, score)
    return Schedule(t, name="tuned", params={**_call_record(call), **params})


def _search_rounds(oracle: PipelineVelocity, first: torch.Tensor) -> Any:
    """The search's rounds as pipeline calls. Round 0 asks for the velocity at the noise at ``t = 1``: the
    teacher's first evaluation, reused."""

    def velocities(m: int, xs: list[torch.Tensor], ts: list[float]) -> list[torch.Tensor]:
        return [first] if m == 0 else oracle.velocities(xs, ts)

    return velocities


def _refine(oracle: PipelineVelocity, teacher: Trajectory, t: np.ndarray, maxiter: int) -> tuple[np.ndarray, float]:
    """L-BFGS-B from ``t`` on the mean squared distance of Euler walks to the teacher's results (a batch of
    schedules is one pipeline call); never worse than ``t``."""
    noise, target = teacher.states[0], teacher.states[-1]

    def distance(ts: np.ndarray) -> np.ndarray:
        finals = oracle.walk(noise, list(np.atleast_2d(ts))).finals
        return np.array([_mean_squared_distance(x, target) for x in finals])

    result = optimize_schedule(t.size - 1, distance, start=Schedule(t), restarts=0, maxiter=maxiter)
    return result.t, float(result.params["value"])


class _Score(NamedTuple):
    rmse: float
    default_rmse: float
    default_t: list[float] | None


def _held_out(oracle: PipelineVelocity, grid: np.ndarray, t: np.ndarray, steps: int, count: int,
              seed: int) -> _Score:
    """RMSE against a teacher run on held-out noises: the tuned schedule's Euler walk and the pipeline's own
    sampler at the same step count."""
    teacher = oracle.walk(None, [grid], num_samples=count, seed=seed)
    target = teacher.finals[0]
    tuned = oracle.walk(teacher.noise, [t]).finals[0]
    default, scheduler = oracle.pipeline_run(steps, noise=teacher.noise)
    return _Score(_rmse(tuned, target), _rmse(default, target), _walked(scheduler))


def _walked(scheduler: Any) -> list[float] | None:
    """The ``t`` a pipeline scheduler walked (``sigmas``; ``1 - sigmas`` inverted), or None when its sigmas are
    not one strictly decreasing schedule (a Heun scheduler repeats them)."""
    t = scheduler.sigmas.detach().to("cpu", torch.float64).numpy()
    if scheduler.config.get("invert_sigmas"):
        t = 1.0 - t
    try:
        return Schedule(t).to_list()
    except ValueError:
        return None


def _mean_squared_distance(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Summed squared distance per sample, averaged over the batch (float64): :func:`stepsize_search`'s value."""
    return float((x.double() - ref.double()).square().sum()) / int(x.shape[0])


def _rmse(x: torch.Tensor, ref: torch.Tensor) -> float:
    return math.sqrt(float((x.double() - ref.double()).square().mean()))


def _call_record(call: Mapping[str, Any]) -> dict[str, Any]:
    """The prompt and the scalar pipeline arguments a schedule was tuned with, for its params."""
    def scalar(v: Any) -> bool:
        return isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))

    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in call.items()
            if scalar(v) or (isinstance(v, (list, tuple)) and v and all(isinstance(s, str) for s in v))}


def _warn_worse(pipeline: str, scheduler: str, steps: int, held: int, score: _Score) -> None:
    warnings.warn(
        f"the tuned schedule is worse than {pipeline}'s own {scheduler} at {steps} steps on {held} held-out noises "
        f"(RMSE against the teacher {score.rmse:.4g}, the pipeline's {score.default_rmse:.4g}); keep the "
        "pipeline's scheduler, or tune with more teacher steps or samples, or refine=True. The schedule records "
        "both (params rmse, default_rmse).",
        UserWarning,
        stacklevel=3,
    )


# -- the cheap answer: a Gaussian field fitted to the pipeline's latents ----------------------------------------------


def fitted_shift(
    source: Any,
    num_inference_steps: int,
    *,
    prompt: str | Sequence[str] | None = None,
    num_samples: int = 32,
    batch_size: int = 8,
    seed: int = 0,
    sample_steps: int | None = None,
    unpack: Callable[[torch.Tensor], Any] | None = None,
    **pipe_kwargs: Any,
) -> Schedule:
    """The static shift for ``num_inference_steps`` Euler steps that :func:`flowsched.quality.auto_shift` picks on
    a Gaussian field fitted to latents (:func:`flowsched.quality.fit_spectrum`): no model calls for the choice
    itself, so seconds where :func:`tune` takes hundreds of pipeline evaluations. How close it comes to the best
    static shift on trained networks is measured in benchmarks/results/trained.md and summarised in docs/tune.md.

    Args:
        source: a diffusers pipeline: it samples ``num_samples`` latents with its own scheduler at
            ``sample_steps`` (default: its ``__call__``'s default step count), ``batch_size`` per pipeline call,
            call ``c`` from noises drawn from ``seed + c``. Or latents you have (your dataset through the
            pipeline's VAE, scaled as the pipeline scales them: the shift depends on the data's scale against the
            unit noise): a torch tensor, a numpy array or a ``.safetensors`` file holding one tensor. The fit
            is a statistic of the samples: on the benchmark's 16 px network the shift varied by 9% between sets of
            64 samples and by 3% between sets of 1024; give as many as you can afford.
        num_inference_steps: the step count ``N`` to choose the shift for.
        prompt, **pipe_kwargs: the pipeline's ``__call__`` arguments (for a pipeline source only): sample at the
            size you render.
        unpack: applied to the latents first, to give the spatial layout ``[B, C, H, W]`` (image) or
            ``[B, C, T, H, W]`` (video) from a packed one (Flux's and LTX's ``[B, tokens, channels]``), e.g.
            ``lambda x: FluxPipeline._unpack_latents(x, height, width, pipe.vae_scale_factor)``.

    The field is fitted to the latents less each channel's mean, and the shift minimises its W2 error (the
    advice that held on trained networks; the field's KL is not offered: docs/quality-models.md).

    Returns:
        ``shifted(num_inference_steps, alpha)`` as a Schedule (``params["alpha"]`` is the shift) whose params add
        ``auto_model``, ``auto_metric``, ``auto_value`` (:func:`flowsched.quality.auto_shift_schedule`),
        ``fitted_from`` and ``latent_shape``.
    """
    steps = positive_int("num_inference_steps", num_inference_steps)
    if unpack is not None and not callable(unpack):
        raise TypeError(f"unpack must be callable as unpack(latents) or None, got {unpack!r}")
    if callable(source) and hasattr(source, "scheduler"):
        latents, origin = _sampled_latents(source, prompt, (num_samples, batch_size, seed), sample_steps,
                                           pipe_kwargs)
    else:
        if prompt is not None or pipe_kwargs:
            given = ["prompt"] * (prompt is not None) + sorted(pipe_kwargs)
            raise ValueError(f"{', '.join(given)}: pipeline arguments, but source is latents, not a pipeline")
        latents, origin = _given_latents(source), "given latents"
    if unpack is not None:
        latents = unpack(latents)
    arr = _spatial(latents)
    field = GaussianField(variances=fit_spectrum(arr, image=arr.ndim == 4))
    schedule = auto_shift_schedule(field, steps)
    params = {**schedule.params, "fitted_from": origin, "latent_shape": list(arr.shape[1:])}
    return Schedule(schedule.t, name=schedule.name, params=params)


def _sampled_latents(pipe: Any, prompt: Any, draw: tuple[Any, Any, Any], sample_steps: Any,
                     pipe_kwargs: Mapping[str, Any]) -> tuple[torch.Tensor, str]:
    """``num_samples`` results of the pipeline's own sampler, ``batch_size`` per call (``draw``: those two and the
    seed), and where they came from."""
    count, batch = positive_int("num_samples", draw[0]), positive_int("batch_size", draw[1])
    seed = _seed("seed", draw[2])
    oracle = PipelineVelocity(pipe, **({} if prompt is None else {"prompt": prompt}), **pipe_kwargs)
    if sample_steps is None:
        default = inspect.signature(pipe.__call__).parameters.get("num_inference_steps")
        if default is None or not isinstance(default.default, int):
            raise ValueError(f"{oracle.name}.__call__ has no default num_inference_steps: give sample_steps")
        sample_steps = default.default
    steps = positive_int("sample_steps", sample_steps)
    chunks = [oracle.pipeline_run(steps, num_samples=min(batch, count - start), seed=seed + c)[0]
              for c, start in enumerate(range(0, count, batch))]
    return torch.cat(chunks), f"{oracle.name} samples ({count}, seeds {seed}+, {steps} steps)"


def _given_latents(source: Any) -> Any:
    if isinstance(source, (str, os.PathLike)):
        return read_safetensors_tensor(source, None, key_name="a file with one tensor")[1]
    if isinstance(source, (torch.Tensor, np.ndarray)):
        return source
    raise TypeError("source must be a diffusers pipeline, or latents (a torch tensor, a numpy array or a "
                    f".safetensors file), got {type(source).__name__}")


def _spatial(latents: Any) -> np.ndarray:
    """Latents as float64 ``[B, C, H, W]`` or ``[B, C, T, H, W]``, or a clear error for a packed layout."""
    if isinstance(latents, torch.Tensor):
        latents = latents.detach().to("cpu", torch.float64).numpy()
    if not isinstance(latents, np.ndarray):
        raise TypeError(f"unpack must return a torch tensor or a numpy array, got {type(latents).__name__}")
    if latents.ndim not in (4, 5):
        raise ValueError(
            f"latents must be [B, C, H, W] (image) or [B, C, T, H, W] (video), got shape {list(latents.shape)}: "
            "packed latents ([B, tokens, channels], Flux, LTX-Video) need unpack= (docs/tune.md)"
        )
    return latents.astype(np.float64, copy=False)
