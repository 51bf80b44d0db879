"""Auto-shift: the static shift ``alpha`` that minimises a measured error, for a step count and a data model.

Convention (docs/conventions.md): ``t = 1`` is noise, ``t = 0`` is data; the shift is
``time_shift(t, alpha) = alpha * t / (1 + (alpha - 1) * t)`` applied to ``linspace(1, 0, N + 1)`` (Open-Sora's
``flow_shift``, SD3's ``shift``; Flux's ``mu`` is ``alpha = exp(mu)``).

Peers choose ``alpha`` by a rule of thumb (Open-Sora: a line in tokens times ``sqrt(T')``; Flux: a line in ``mu``;
SD3: ``sqrt`` of the pixel-count ratio, shipped as 3.0 at 1024^2). Here it is measured on a data model: a
:class:`~flowsched.quality.GaussianField` fitted to your latents (:func:`~flowsched.quality.fit_spectrum`) is the
advice that held on trained networks (within 3% of the best static shift's error in 11 of 12 cells,
docs/quality-models.md, "On trained networks"); a geometry alone gets the default power-law field on its latent grid,
whose shifts are too small for real data. The metric is the variance-weighted W2; the per-mode KL is not offered as
advice (it picked shifts below 1, the worst schedule on every network). numpy and scipy only: no torch.
"""

from __future__ import annotations

from typing import Any

from .._validate import positive_int
from ..geometry import LatentGeometry
from ..schedule import Schedule
from ..schedules import shifted
from .optimize import SHIFT_BOUNDS, advice_objective, best_shift

__all__ = ["auto_shift", "auto_shift_schedule"]


def auto_shift_schedule(
    model: Any,
    num_steps: int,
    *,
    metric: str | None = None,
    bounds: tuple[float, float] = SHIFT_BOUNDS,
    num_samples: int = 1024,
    seed: int = 0,
) -> Schedule:
    """The static shift with the least error on ``model`` for a ``num_steps``-step Euler sampler, as a Schedule:
    ``shifted(num_steps, alpha)`` (name ``"shifted"``) whose params add ``auto_model`` (the data model),
    ``auto_metric`` and ``auto_value`` (its error).

    Args:
        model: the data model: a :class:`~flowsched.quality.GaussianField` (``GaussianField.from_latents(...)``
            for your latents; metric ``"w2"``), a :class:`~flowsched.quality.GaussianMixture` (metric ``"rmse"``,
            ``num_samples`` noises from ``seed``), a batched objective ``f(ts[S, N + 1]) -> [S]``, or a
            :class:`~flowsched.geometry.LatentGeometry`, which stands for ``GaussianField(geometry)``: the default
            power-law spectrum ``gamma=2, k0=1, w_t=1`` on ``[T', H', W']``.
        num_steps: sampler steps ``N``.
        metric: the model's metric; ``None`` picks its default. ``"kl"`` is refused on a field (see the module).
        bounds: the range of ``alpha`` searched (a log grid, then Brent refinement; see
            :func:`~flowsched.quality.optimize.best_shift`). A result at a bound means the optimum may lie outside.
    """
    num_steps = positive_int("num_steps", num_steps)
    if isinstance(model, LatentGeometry):
        from .field import GaussianField

        model = GaussianField(model)
    elif model is None or not callable(model) and not hasattr(model, "error"):
        raise TypeError(
            "model must be a data model (a GaussianField, for your latents GaussianField.from_latents(...); a "
            "GaussianMixture; a batched objective) or a LatentGeometry for the default field on its grid, got "
            f"{type(model).__name__}"
        )
    fn, _, description, metric = advice_objective(model, metric, num_samples=num_samples, seed=seed)
    alpha, value = best_shift(num_steps, fn, bounds=bounds)
    base = shifted(num_steps, alpha)
    return Schedule(
        base.t,
        name=base.name,
        params={**base.params, "auto_model": description, "auto_metric": metric, "auto_value": value},
    )


def auto_shift(model: Any, num_steps: int, **options: Any) -> float:
    """The shift ``alpha`` of :func:`auto_shift_schedule` (same arguments; ``options``: ``metric``, ``bounds``,
    ``num_samples``, ``seed``), as a float."""
    return auto_shift_schedule(model, num_steps, **options).params["alpha"]
