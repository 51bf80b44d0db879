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

__all__ = [
    "FINAL_JUMP_LIMIT", "MU_LIMIT", "STRENGTH_GAP", "diagnose", "noise_levels", "strength_warnings", "summarize",
]

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
    * :func:`strength_warnings`: a partial schedule that starts more than ``strength_gap`` away from its strength;
    * diffusers' double-shifted default grid (its last point is ``shift(shift(1/1000))``; diffusers #13243).

    The strength and double-shift sentences name their cause, not one schedule's numbers, so schedules cut from
    one base at one strength (``flowsched compare --strength``) share them: one warning per cause.
    """
    final_jump_limit = positive_real("final_jump_limit", final_jump_limit)
    mu_limit = positive_real("mu_limit", mu_limit)
    s = summarize(schedule)
    out: list[str] = []
    if s["final_jump"] > final_jump_limit:
        out.append(
            f"final jump {s['final_jump']:.3f} > {final_jump_limit:g}: the last Euler step goes from "
            f"t={s['last_t']:.3f} straight to 0 and returns the model's posterior-mean guess E[x0 | x_t], which "
            "is blurred; use more steps, a smaller shift, or stretch the tail (shift_terminal)"
        )
    out += _shift_warnings(schedule.params, mu_limit)
    out += strength_warnings(schedule, strength_gap=strength_gap)
    out += _double_shift_warnings(schedule.params)
    return out


def _shift_warnings(p: dict, mu_limit: float) -> list[str]:
    """An exponential ``mu`` above ``mu_limit`` (extrapolated by a rule, or an ``alpha`` passed as ``mu``), or an
    ``alpha`` below 1 (often a ``mu`` passed as ``alpha``)."""
    mu, alpha = p.get("mu"), p.get("alpha")
    tokens = p.get("seq_len", p.get("image_seq_len"))
    exponential = p.get("time_shift_type", "exponential") == "exponential"
    if mu is not None and exponential and mu > mu_limit and tokens is not None:
        # A resolution rule computed this mu from the token count: the rule, not the user, extrapolated.
        return [
            f"mu={mu:.4g} (alpha = e^mu = {math.exp(mu):.4g}) comes from the rule's straight line at {tokens} "
            f"tokens, beyond the range it was fitted on; the shift grows exponentially with the token count "
            f"there. Pass clamp=True to hold the token count in range, or set the shift yourself"
        ]
    if mu is not None and exponential and mu > mu_limit:
        return [
            f"mu={mu:.4g} means alpha = e^mu = {math.exp(mu):.4g}: if {mu:.4g} was meant as a shift alpha, pass it "
            f"as alpha (shifted:alpha={mu:.4g}) or use mu = ln({mu:.4g}) = {math.log(mu):.4g}"
        ]
    if mu is None and alpha is not None and alpha < 1.0:
        return [
            f"alpha={alpha:.4g} < 1 shifts the steps towards data (less time at high noise); if {alpha:.4g} is a "
            f"Flux/LTX mu, the shift is alpha = e^mu = {math.exp(alpha):.4g}"
        ]
    return []


def strength_warnings(schedule: Schedule, *, strength_gap: float = STRENGTH_GAP) -> list[str]:
    """The "strength cliff" of a partial schedule (:func:`flowsched.strength.partial`) whose start ``t`` lies more
    than ``strength_gap`` from its strength: the latent keeps another share of its signal than the strength
    suggests. The sentence says what this schedule's shift does to the strength (``alpha = 3`` maps 0.5 to 0.75,
    ``alpha = 5`` to 0.833); ``[]`` for any other schedule."""
    strength_gap = positive_real("strength_gap", strength_gap)
    p = schedule.params
    strength = p.get("strength")
    start = float(noise_levels(schedule)[0])
    if not isinstance(strength, (int, float)) or abs(start - strength) <= strength_gap:
        return []
    alpha = p.get("alpha")
    if isinstance(alpha, (int, float)) and alpha > 0 and alpha != 1:
        why = f"the shift alpha={alpha:.4g} maps t={strength:g} to {float(time_shift(strength, alpha)):.3f}"
    else:
        why = "the schedule's spacing moves its start"
    later = start > strength
    return [
        f"strength {strength:g} keeps {'less' if later else 'more'} of the latent than it suggests: {why}; "
        f"{'lower' if later else 'raise'} the strength, or use convention 'framepack' (it starts at the strength)"
    ]


def _double_shift_warnings(p: dict) -> list[str]:
    """diffusers' default FlowMatchEuler grid shifted twice (diffusers #13243): where its base grid ends."""
    alpha = p.get("alpha")
    if not p.get("double_shift") or alpha in (None, 1.0):
        return []
    first = 1 / p.get("num_train_timesteps", 1000)
    single = float(time_shift(first, alpha))
    double = float(time_shift(single, alpha))
    return [
        f"double-shifted diffusers grid (diffusers #13243): the base grid ends at t={double:.5f}, "
        f"shift(shift(1/{round(1 / first)})), instead of {single:.5f}; pass double_shift=False or "
        "sigmas=linspace(1, 1/N, N)"
    ]
