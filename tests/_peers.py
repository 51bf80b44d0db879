"""Helpers that drive the real peer packages (diffusers) the way their pipelines do, for parity tests."""

from __future__ import annotations

import warnings

import numpy as np


def diffusers_fme(num_steps, mu=None, sigmas=None, **config) -> tuple[np.ndarray, np.ndarray]:
    """``(sigmas, timesteps)`` of diffusers' FlowMatchEulerDiscreteScheduler after ``set_timesteps``, as float64."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sch = FlowMatchEulerDiscreteScheduler(**config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sch.set_timesteps(num_steps, mu=mu, sigmas=sigmas)
    return sch.sigmas.numpy().astype(np.float64), sch.timesteps.numpy().astype(np.float64)
