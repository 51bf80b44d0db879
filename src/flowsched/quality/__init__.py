"""Measure what a schedule costs in quality: analytic data models whose flow is known in closed form, and the
error of a sampler on any schedule against them.

- :class:`GaussianField`: Gaussian data on the latent grid; Euler's error is exact, at zero sampling noise.
- :class:`GaussianMixture`: a mixture of isotropic Gaussians; exact velocity, reference ODE solution, metrics.
- :class:`VelocityModel`: your own velocity callable with fixed noise, scored like the analytic models.
- every model's ``error(schedule, ...)``; :func:`error_table` for several schedules and step counts.
- :func:`auto_shift` and :func:`optimize_schedule`: the best static shift, and the best schedule, for a model.

The data models and metrics: docs/quality-models.md. Convention (docs/conventions.md): ``x_t = (1 - t) x0 + t eps``,
``t = 1`` noise, ``t = 0`` data, ``v = eps - x0``.
"""

from .autoshift import auto_shift, auto_shift_schedule
from .field import GaussianField, fit_spectrum, power_law_spectrum
from .mixture import GaussianMixture, sliced_w2
from .optimize import best_shift, objective_for, optimize_schedule, teacher_search
from .scoring import VelocityModel, error_table, plot_error_vs_steps, teacher_reference

__all__ = [
    "GaussianField",
    "GaussianMixture",
    "VelocityModel",
    "auto_shift",
    "auto_shift_schedule",
    "best_shift",
    "error_table",
    "fit_spectrum",
    "objective_for",
    "optimize_schedule",
    "plot_error_vs_steps",
    "power_law_spectrum",
    "sliced_w2",
    "teacher_reference",
    "teacher_search",
]
