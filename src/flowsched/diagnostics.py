"""Numbers that say what a schedule does, and warnings about settings users regret. numpy only.

Conventions (docs/conventions.md): ``t = 1`` is noise, ``t = 0`` is data. A schedule stored inverted (diffusers'
``invert_sigmas``, Mochi: values increase towards 1) is read as the noise level ``1 - t``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validate import positive_real
from .schedule import Schedule
from .shift import time_shift

__all__ = ["FINAL_JUMP_LIMIT", "MU_LIMIT", "STRENGTH_GAP", "diagnose", "noise_levels", "summarize"]

#: Default thresholds of :func:`diagnose`.
FINAL_JUMP_LIMIT = 0.2
MU_LIMIT = 3.0
STRENGTH_GAP = 0.1


def noise_levels(schedule: Schedule) -> np.ndarray:
    """The schedule as decreasing noise levels: ``t`` itself, or ``1 - t`` for an inverted (increasing) one."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a flowsched Schedule, got {type(schedule).__name__}")
    return schedule.t if schedule.t[0] > schedule.t[-1] else 1.0 - schedule.t


def summarize(schedule: Schedule) -> dict[str, Any]:
    """What a schedule does, as plain numbers (JSON-ready).

    Keys: ``name``, ``num_steps``, ``alpha`` (the static shift, or ``exp(mu)``/``mu`` for a mu rule; None when
    the family has none), ``mu`` (None unless a mu rule made it), ``first_t`` (first model evaluation point),
    ``last_t`` (last non-zero value: the last evaluation point), ``steps_above_half`` (model evaluations at
    ``t > 0.5``), ``largest_step`` and ``largest_step_index`` (biggest ``|dt|`` and the step it is),
    ``final_jump`` (``last_t`` minus the terminal: what the last Euler step covers), ``inverted``.
    """
    lv = noise_levels(schedule)
    dt = -np.diff(lv)
    i = int(np.argmax(dt))
    p = schedule.params
    nonzero = lv[lv > 0]
    return {
        "name": schedule.name,
        "num_steps": schedule.num_steps,
        "alpha": p.get("alpha"),
        "mu": p.get("mu"),
        "first_t": float(lv[0]),
        "last_t": float(nonzero[-1]) if nonzero.size else 0.0,
        "steps_above_half": int(np.count_nonzero(lv[:-1] > 0.5)),
        "largest_step": float(dt[i]),
        "largest_step_index": i,
        "final_jump": float(lv[-2] - lv[-1]),
        "inverted": bool(schedule.t[0] < schedule.t[-1]),
    }


def diagnose(
    schedule: Schedule,
    *,
    final_jump_limit: float = FINAL_JUMP_LIMIT,
    mu_limit: float = MU_LIMIT,
    strength_gap: float = STRENGTH_GAP,
) -> list[str]:
    """Warnings (plain sentences) about settings that users regret; empty when nothing looks wrong.

    * a final jump above ``final_jump_limit``: the last Euler step lands on ``x - t v``, the model's estimate of
      the posterior mean ``E[x0 | x_t]`` at that noise level, which is blurred wherever the data is uncertain;
    * ``alpha < 1`` (shifts steps towards data; typically a Flux/LTX ``mu`` passed as ``alpha``), or an
      exponential ``mu > mu_limit`` (``alpha = e^mu`` is huge; typically an ``alpha`` passed as ``mu``; when a
      resolution rule computed that ``mu`` from a token count, the warning says the rule extrapolated);
    * diffusers' double-shifted default grid (its last point is ``shift(shift(1/1000))``; diffusers #13243);
    * a partial schedule (:func:`flowsched.strength.partial`) whose start ``t`` lies more than ``strength_gap``
      from its strength: the latent keeps another share of its signal than the strength suggests (a shift
      moves the start: shift 3 maps 0.5 to 0.75), the "strength cliff" users report.
    """
    final_jump_limit = positive_real("final_jump_limit", final_jump_limit)
    mu_limit = positive_real("mu_limit", mu_limit)
    strength_gap = positive_real("strength_gap", strength_gap)
    s = summarize(schedule)
    p = schedule.params
    out: list[str] = []
    if s["final_jump"] > final_jump_limit:
        out.append(
            f"final jump {s['final_jump']:.3f} > {final_jump_limit:g}: the last Euler step goes from "
            f"t={s['last_t']:.3f} straight to 0 and returns the model's posterior-mean guess E[x0 | x_t], which "
            "is blurred; use more steps, a smaller shift, or stretch the tail (shift_terminal)"
        )
    mu, alpha = p.get("mu"), p.get("alpha")
    tokens = p.get("seq_len", p.get("image_seq_len"))
    exponential = p.get("time_shift_type", "exponential") == "exponential"
    if mu is not None and exponential and mu > mu_limit and tokens is not None:
        # A resolution rule computed this mu from the token count: the rule, not the user, extrapolated.
        out.append(
            f"mu={mu:.4g} (alpha = e^mu = {math.exp(mu):.4g}) comes from the rule's straight line at {tokens} "
            f"tokens, beyond the range it was fitted on; the shift grows exponentially with the token count "
            f"there. Pass clamp=True to hold the token count in range, or set the shift yourself"
        )
    elif mu is not None and exponential and mu > mu_limit:
        out.append(
            f"mu={mu:.4g} means alpha = e^mu = {math.exp(mu):.4g}: if {mu:.4g} was meant as a shift alpha, pass it "
            f"as alpha (shifted:alpha={mu:.4g}) or use mu = ln({mu:.4g}) = {math.log(mu):.4g}"
        )
    elif mu is None and alpha is not None and alpha < 1.0:
        out.append(
            f"alpha={alpha:.4g} < 1 shifts the steps towards data (less time at high noise); if {alpha:.4g} is a "
            f"Flux/LTX mu, the shift is alpha = e^mu = {math.exp(alpha):.4g}"
        )
    strength = p.get("strength")
    if isinstance(strength, (int, float)) and abs(s["first_t"] - strength) > strength_gap:
        start = s["first_t"]
        out.append(
            f"strength {strength:g} starts at t={start:.3f} (convention {p.get('convention')!r}): the latent keeps "
            f"{100 * (1 - start):.0f}% of its signal, not the {100 * (1 - strength):.0f}% the strength suggests "
            "(the schedule's shift moves the start; shift 3 maps 0.5 to 0.75). Lower the strength, or use convention "
            "'framepack', which starts at exactly the strength"
        )
    if p.get("double_shift") and alpha not in (None, 1.0):
        single = float(time_shift(1 / 1000, alpha))
        out.append(
            f"double-shifted diffusers grid: the last point is t={s['last_t']:.5f} instead of {single:.5f} "
            "(diffusers #13243); use diffusers_default(..., double_shift=False) or pass "
            "sigmas=linspace(1, 1/N, N)"
        )
    return out
