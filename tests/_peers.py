"""Helpers that drive the real peer packages (diffusers) the way their pipelines do, for parity tests."""

from __future__ import annotations

import inspect
import warnings

import numpy as np


def diffusers_has(function, argument: str) -> bool:
    """Whether a diffusers function takes ``argument`` (the adapter's tests also run against an older diffusers,
    ``make test-diffusers-old``, where features arrive release by release)."""
    return argument in inspect.signature(function).parameters


def diffusers_at_least(version: str) -> bool:
    """Whether the installed diffusers is ``version`` or later (for behaviour no signature shows)."""
    import diffusers
    from packaging.version import Version

    return Version(diffusers.__version__) >= Version(version)


def need_diffusers(function, *arguments: str) -> None:
    """Skip the calling test when the installed diffusers' ``function`` lacks one of ``arguments``."""
    import diffusers
    import pytest

    missing = [a for a in arguments if not diffusers_has(function, a)]
    if missing:
        pytest.skip(f"diffusers {diffusers.__version__}: {function.__qualname__} takes no {', '.join(missing)}")


def diffusers_fme(num_steps, mu=None, sigmas=None, **config) -> tuple[np.ndarray, np.ndarray]:
    """``(sigmas, timesteps)`` of diffusers' FlowMatchEulerDiscreteScheduler after ``set_timesteps``, as float64."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sch = FlowMatchEulerDiscreteScheduler(**config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sch.set_timesteps(num_steps, mu=mu, sigmas=sigmas)
    return sch.sigmas.numpy().astype(np.float64), sch.timesteps.numpy().astype(np.float64)


class StepLog:
    """What a pipeline did with its scheduler: the ``set_timesteps`` arguments, whether it called
    ``set_begin_index``, and every ``step`` as ``(model_output, timestep, sample, prev_sample)`` (copies)."""

    def __init__(self, scheduler):
        self.calls: list[dict] = []
        self.begin: list[int] = []
        self.steps: list[tuple] = []
        set_timesteps, set_begin_index, step = scheduler.set_timesteps, scheduler.set_begin_index, scheduler.step

        # the signature pipelines inspect (retrieve_timesteps); only what was passed is forwarded (UniPC and
        # DPM-Solver take fewer arguments)
        def record_set_timesteps(num_inference_steps=None, device=None, sigmas=None, mu=None, timesteps=None):
            given = {"sigmas": sigmas, "mu": mu, "timesteps": timesteps}
            kwargs = {k: v for k, v in given.items() if v is not None}
            self.calls.append({"num_inference_steps": num_inference_steps, **kwargs})
            self.begin.clear()
            self.steps.clear()
            return set_timesteps(num_inference_steps, device, **kwargs)

        def record_begin(begin_index=0):
            self.begin.append(begin_index)
            return set_begin_index(begin_index)

        def record_step(model_output, timestep, sample, *args, **kwargs):
            out = step(model_output, timestep, sample, *args, **kwargs)
            prev = out[0] if isinstance(out, tuple) else out.prev_sample
            self.steps.append((model_output.clone(), timestep, sample.clone(), prev.clone()))
            return out

        scheduler.set_timesteps = record_set_timesteps
        scheduler.set_begin_index = record_begin
        scheduler.step = record_step

    def replay(self, scheduler) -> list:
        """Drive ``scheduler`` with the recorded calls and model outputs; return its ``prev_sample`` per step."""
        scheduler.set_timesteps(**self.calls[-1])
        for begin in self.begin:
            scheduler.set_begin_index(begin)
        return [scheduler.step(v, t, x, return_dict=False)[0] for v, t, x, _ in self.steps]
