"""Auto-shift: the static shift ``alpha`` that minimises a measured error, for a geometry, step count and data model.

Convention (docs/conventions.md): ``t = 1`` is noise, ``t = 0`` is data; the shift is
``time_shift(t, alpha) = alpha * t / (1 + (alpha - 1) * t)`` applied to ``linspace(1, 0, N + 1)`` (Open-Sora's
``flow_shift``, SD3's ``shift``; Flux's ``mu`` is ``alpha = exp(mu)``).

Peers choose ``alpha`` by a rule of thumb (Open-Sora: a line in tokens times ``sqrt(T')``; Flux: a line in ``mu``;
SD3: ``sqrt`` of the pixel-count ratio, shipped as 3.0 at 1024^2). Here it is measured: by default on a
:class:`~flowsched.quality.GaussianField` with the default power-law spectrum on the geometry's latent grid
``[T', H', W']``, with the variance-weighted W2 metric. The answer depends on that data model and metric (the
per-mode KL prefers much smaller shifts); say which one you used. numpy and scipy only: no torch.
"""

from __future__ import annotations

from typing import Any

from .._limits import step_count
from ..geometry import LatentGeometry
from ..schedule import Schedule
from ..schedules import shifted
from .optimize import SHIFT_BOUNDS, best_shift, objective_for

__all__ = ["auto_shift", "auto_shift_schedule"]


def _objective(geometry: LatentGeometry | None, model: Any, metric: str | None, num_samples: int, seed: int):
    if model is None:
        from .field import GaussianField

        if not isinstance(geometry, LatentGeometry):
            raise TypeError(
                "geometry must be a LatentGeometry (e.g. LatentGeometry.from_pixels(576, 1024, 129)) when no "
                f"model is given, got {type(geometry).__name__}"
            )
        model = GaussianField(geometry)
    return objective_for(model, metric, num_samples=num_samples, seed=seed)


def auto_shift_schedule(
    geometry: LatentGeometry | None,
    num_steps: int,
    model: Any = None,
    metric: str | None = None,
    *,
    bounds: tuple[float, float] = SHIFT_BOUNDS,
    num_samples: int = 1024,
    seed: int = 0,
) -> Schedule:
    """The static shift with the least error on ``model`` for a ``num_steps``-step Euler sampler, as a Schedule:
    ``shifted(num_steps, alpha)`` (name ``"shifted"``) whose params add ``auto_model`` (the data model),
    ``auto_metric`` and ``auto_value`` (its error).

    Args:
        geometry: the generation's :class:`~flowsched.geometry.LatentGeometry`; with ``model=None`` the data
            model is ``GaussianField(geometry)`` (power-law spectrum ``gamma=2, k0=1, w_t=1`` on
            ``[T', H', W']``). Ignored when ``model`` is given (pass ``None``).
        num_steps: sampler steps ``N``.
        model: a :class:`~flowsched.quality.GaussianField` (metric ``"w2"`` default, or ``"kl"``), a
            :class:`~flowsched.quality.GaussianMixture` (metric ``"rmse"``, ``num_samples`` noises from ``seed``),
            or a batched objective ``f(ts[S, N + 1]) -> [S]``.
        metric: the model's metric; ``None`` picks its default.
        bounds: the range of ``alpha`` searched (a log grid, then Brent refinement; see
            :func:`~flowsched.quality.optimize.best_shift`). A result at a bound means the optimum may lie outside.
    """
    num_steps = step_count("num_steps", num_steps)
    fn, _, description, metric = _objective(geometry, model, metric, num_samples, seed)
    alpha, value = best_shift(num_steps, fn, bounds=bounds)
    base = shifted(num_steps, alpha)
    return Schedule(
        base.t,
        name=base.name,
        params={**base.params, "auto_model": description, "auto_metric": metric, "auto_value": value},
    )


def auto_shift(geometry: LatentGeometry | None, num_steps: int, model: Any = None, metric: str | None = None,
               **options: Any) -> float:
    """The shift ``alpha`` of :func:`auto_shift_schedule` (same arguments; ``options``: ``bounds``,
    ``num_samples``, ``seed``), as a float."""
    return auto_shift_schedule(geometry, num_steps, model, metric, **options).params["alpha"]
