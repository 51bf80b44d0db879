"""Partial schedules: the values a sampler visits when it starts from a given latent at a ``strength`` (image-to-image,
video-to-video, SDEdit, upscaling passes), in the step rule of each peer.

``strength = 1`` starts from pure noise; below 1 the latent is noised to the schedule's first value
(:func:`flowsched.sampling.add_noise`) and only the rest of the schedule is run. The five peers' rules
(:data:`CONVENTIONS`, sources in docs/partial-and-stochastic.md) give different start values and step counts for the
same strength; with a shifted schedule the start ``t`` is usually far above the strength (shift 3 maps 0.5 to 0.75).

:func:`partial` sits above :mod:`flowsched.spec`: a base may be a spec string. numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._limits import MAX_STEPS, step_count
from ._validate import positive_real, real, suggestion
from .schedule import Schedule
from .shift import time_shift_inverse, time_shift_peer

__all__ = ["CONVENTIONS", "partial"]

#: The conventions :func:`partial` knows, with the rule each applies (``N`` steps, strength ``s``).
CONVENTIONS: dict[str, str] = {
    "diffusers": "Flux / SD3 image-to-image: init = min(N * s, N) as a float, begin = int(max(N - init, 0)), keep "
    "the base's tail from begin (diffusers FluxImg2ImgPipeline / StableDiffusion3Img2ImgPipeline.get_timesteps)",
    "diffusers-floor": "Wan video-to-video, LTX condition: init = min(int(N * s), N), begin = N - init, keep the tail "
    "(diffusers WanVideoToVideoPipeline.get_timesteps, LTXConditionPipeline denoise_strength)",
    "comfyui": "KSampler denoise: the base at int(N / s) steps, keep its last N + 1 values (N steps always run; "
    "s > 0.9999 is the whole base); ComfyUI's own schedulers with a 'comfyui:scheduler=...' spec",
    "diffsynth": "DiffSynth-Studio / Self-Forcing FlowMatchScheduler: N steps over the grid "
    "linspace(t_min + (t_max - t_min) s, t_min) shifted by alpha (the base's grid before its shift alpha, squeezed "
    "towards its end)",
    "framepack": "FramePack sample_hunyuan: s * base (the whole shifted schedule scaled; starts at exactly s)",
}

Spec = str | Schedule | Callable[[int], Schedule]

#: ComfyUI's KSampler runs the whole schedule above this denoise (``comfy/samplers.py``, ``KSampler.set_steps``).
COMFYUI_FULL_DENOISE = 0.9999


def _base_maker(spec: Any) -> tuple[Callable[[int], Schedule], bool]:
    """``(make(num_steps) -> Schedule, rebuildable)`` for a spec string, a callable or a fixed Schedule."""
    if isinstance(spec, Schedule):
        return (lambda n: spec), False
    if isinstance(spec, str):
        from .spec import from_spec

        return (lambda n: from_spec(spec, num_steps=n)), True
    if callable(spec):

        def make(n: int) -> Schedule:
            out = spec(n)
            if not isinstance(out, Schedule):
                raise TypeError(f"spec({n}) must return a flowsched Schedule, got {type(out).__name__}")
            return out

        return make, True
    raise TypeError(
        "spec must be a schedule spec string (a family, a preset: see flowsched.spec.from_spec), a Schedule, or a "
        f"callable num_steps -> Schedule; got {type(spec).__name__}"
    )


def _base(make: Callable[[int], Schedule], rebuildable: bool, n: int, convention: str) -> Schedule:
    base = make(n)
    # ComfyUI's own scheduler tables (schedules.comfyui) return what ComfyUI returns, which is not always N + 1
    # values (ddim_uniform, beta); they record the steps asked for in params["num_steps"]
    asked = base.params.get("num_steps", base.num_steps) if base.name == "comfyui" else base.num_steps
    if asked != n:
        why = (
            "a fixed Schedule cannot be rebuilt at another step count: pass a spec string or a callable "
            "num_steps -> Schedule"
            if not rebuildable
            else "does the spec pin its own steps=...? leave the step count to partial"
        )
        raise ValueError(
            f"convention {convention!r} needs the base schedule at {n} steps, but the spec gives {base.num_steps} "
            f"steps; {why}"
        )
    if base.t[0] < base.t[-1]:
        raise ValueError(
            "partial needs a decreasing base schedule (t = 1 noise to t = 0 data); this one is inverted (1 - t, "
            "diffusers' invert_sigmas): pass the decreasing schedule"
        )
    if abs(base.t[-1]) > 1e-6:
        raise ValueError(f"partial needs a base schedule that ends at t = 0 (data), got t_N = {base.t[-1]!r}")
    return base


def _unshifted_grid(t: np.ndarray, alpha: float, described: str) -> tuple[np.ndarray, bool]:
    """The grid ``t`` is ``alpha`` applied to, for the diffsynth rule: ``(u, anchored_at_zero)``.

    ``u`` are the ``N`` unshifted evaluation points. DiffSynth's "Wan" grid (and Self-Forcing's) is
    ``linspace(t_max, 0, N + 1)`` (the terminal 0 on the grid: squeeze towards 0); its "FLUX.1" grid is
    ``linspace(t_max, t_min, N)`` with the terminal 0 appended (squeeze towards ``t_min``)."""
    u = time_shift_inverse(t, alpha)
    if u.size == 2:
        return u[:1], True
    step = np.diff(u)
    tol = 1e-9
    if np.all(np.abs(step - step.mean()) <= tol):
        return u[:-1], True
    inner = step[:-1]
    if np.all(np.abs(inner - inner.mean()) <= tol):
        return u[:-1], False
    raise ValueError(
        f"convention 'diffsynth' needs a base that is an evenly spaced grid shifted by alpha={alpha:g} (pass the "
        f"base's shift as alpha=: shifted, opensora, flux's e^mu ...); {described} is not one"
    )


def _diffsynth(t: np.ndarray, alpha: float, strength: float, described: str) -> np.ndarray:
    """DiffSynth's ``set_timesteps(N, denoising_strength, shift)``: ``N`` points from ``u_end + (u_max - u_end) s``
    down the base's unshifted grid, shifted by ``alpha`` in DiffSynth's order, then 0."""
    u, at_zero = _unshifted_grid(t, alpha, described)
    n = u.size
    u_max, u_end = float(u[0]), 0.0 if at_zero else float(u[-1])
    start = u_end + (u_max - u_end) * strength
    grid = np.linspace(start, 0.0, n + 1)[:-1] if at_zero else np.linspace(start, u_end, n)
    return np.append(time_shift_peer(grid, alpha), 0.0)


def _cut(make, rebuildable: bool, n: int, s: float, convention: str, alpha: float) -> tuple[Schedule, np.ndarray, int]:
    """``(base, the values the convention keeps or makes, begin_index)``."""
    if convention == "comfyui":
        total = _comfyui_steps(n, s)
        base = _base(make, rebuildable or total == n, total, convention)
        t = base.t[-(n + 1) :]  # ComfyUI's sigmas[-(steps + 1):], whatever the table's length
        return base, t, base.t.size - t.size
    base = _base(make, rebuildable, n, convention)
    if convention == "diffusers":
        begin = int(max(n - min(n * s, n), 0))  # init = min(N * s, N) as a float
    elif convention == "diffusers-floor":
        begin = max(n - min(int(n * s), n), 0)
    elif convention == "diffsynth":
        return base, _diffsynth(base.t, alpha, s, base.describe()), 0
    else:  # framepack
        return base, s * base.t, 0
    return base, base.t[begin:], begin


def _comfyui_steps(n: int, strength: float) -> int:
    """The step count KSampler builds its base at, ``int(N / s)`` (``N`` above :data:`COMFYUI_FULL_DENOISE`),
    refused above :data:`~flowsched._limits.MAX_STEPS` before the base is built (a tiny denoise asks for billions)."""
    if strength > COMFYUI_FULL_DENOISE:
        return n
    total = n / strength  # inf for a subnormal strength: compared as a float, never cast
    if not total <= MAX_STEPS + 1:
        raise ValueError(
            f"strength={strength:g} with num_steps={n} under convention 'comfyui' builds its base schedule at "
            f"int({n} / {strength:g}) steps, above the limit of {MAX_STEPS}; use strength >= {n / MAX_STEPS:g} "
            f"with {n} steps"
        )
    return step_count("int(num_steps / strength)", int(total))


def _keeps_no_step(strength: float, n: int, convention: str) -> ValueError:
    """The error for a cut that keeps no step, with a remedy that exists: a step count within the limit."""
    remedy = f"raise strength to at least {1 / n:.3g} (1 / num_steps)"
    if 1 / strength <= MAX_STEPS:  # int(N * s) >= 1 from N = ceil(1 / s) on
        remedy += f" or use at least {math.ceil(1 / strength)} steps"
    return ValueError(
        f"strength={strength:g} with num_steps={n} keeps no step under convention {convention!r} "
        f"({CONVENTIONS[convention].split(':')[0]}); {remedy}"
    )


def _diffsynth_alpha(convention: str, alpha: float | None) -> float:
    """The shift the diffsynth rule re-applies: ``alpha`` (1 when not given); refused for the other rules."""
    if alpha is None:
        return 1.0
    alpha = positive_real("alpha", alpha)
    if convention != "diffsynth":
        raise ValueError(
            f"alpha={alpha:g} only applies to convention 'diffsynth' (DiffSynth's shift, re-applied to a squeezed "
            f"grid); convention {convention!r} keeps the base's own values"
        )
    return alpha


def _partial_schedule(base: Schedule, t: np.ndarray, begin: int, convention: str, strength: float) -> Schedule:
    """The kept values as a Schedule named "partial", with the base's params and what the cut did."""
    # the base's parameters say how the base was made (framepack's scaled values keep its double-shifted spacing)
    params = {
        **base.params,
        "num_steps": t.size - 1,
        "convention": convention,
        "strength": strength,
        "begin_index": int(begin),
        "base_steps": base.num_steps,
        "base": base.name,
    }
    rescaled = convention in ("diffsynth", "framepack")  # new values: the base's model timesteps no longer apply
    timesteps = base.timesteps[begin:] if not rescaled and base.timesteps is not None else None
    return Schedule(t, name="partial", params=params, timesteps=timesteps)


def partial(
    spec: Spec, num_steps: int, strength: float, *, convention: str = "diffusers", alpha: float | None = None
) -> Schedule:
    """The schedule a sampler visits when it starts from a given latent at ``strength``, in a peer's convention.

    The first value ``t_0`` is the noise level the latent is put at (``x = t_0 * eps + (1 - t_0) * x0``,
    :func:`flowsched.sampling.add_noise`); the sampler then runs the schedule to 0 (pass ``allow_partial=True``
    to the samplers). ``strength = 1`` gives the base schedule itself in every convention.

    Args:
        spec: the base (the schedule from pure noise): anything :func:`flowsched.spec.from_spec` takes (a family
            spec, a preset name), a callable ``num_steps -> Schedule``, or a fixed :class:`~flowsched.Schedule`
            (only for conventions that do not rebuild the base at another step count). The base must decrease to 0.
        num_steps: ``N``, the step count the user asks for (diffusers' ``num_inference_steps``, ComfyUI's
            ``steps``, DiffSynth's and FramePack's ``num_inference_steps``).
        strength: in (0, 1]: diffusers' ``strength`` / ``denoise_strength``, ComfyUI's ``denoise``, DiffSynth's
            ``denoising_strength``, FramePack's ``strength``.
        convention: whose rule (:data:`CONVENTIONS`):

            * ``"diffusers"``: Flux / SD3 image-to-image: ``init = min(N * s, N)`` as a float,
              ``begin = int(max(N - init, 0))``, the base's values from ``begin`` on (float error included:
              ``N = 100``, ``s = 0.55`` keeps 56 steps);
            * ``"diffusers-floor"``: Wan video-to-video, LTX condition: ``int(N * s)`` steps, the tail;
            * ``"comfyui"``: KSampler ``denoise``: the base at ``int(N / s)`` steps, its last ``N + 1`` values
              (``N`` steps always run); exact to ComfyUI with its own scheduler tables as the base, the spec
              ``comfyui:scheduler=NAME,shift=ALPHA`` (:func:`flowsched.schedules.comfyui`);
            * ``"diffsynth"``: DiffSynth-Studio / Self-Forcing: ``N`` steps over
              ``linspace(t_min + (t_max - t_min) s, t_min)`` shifted by ``alpha``, where ``t_max`` and ``t_min``
              are the ends of the base's grid before that shift (the base must be an evenly spaced grid shifted
              by ``alpha``);
            * ``"framepack"``: ``s * base`` (starts at exactly ``s``).
        alpha: for ``"diffsynth"`` only: the shift the base was made with (DiffSynth's ``shift``; 1 when not
            given: the base is then an unshifted grid).

    Returns:
        a :class:`~flowsched.Schedule` named ``"partial"`` whose ``params`` hold the base's parameters and
        ``convention``, ``strength``, ``begin_index`` (the base step it starts at: what diffusers'
        ``set_begin_index`` gets; 0 where the rule rescales instead of cutting), ``base_steps`` (the base's step
        count: ``int(N / s)`` for ComfyUI), ``base`` (its name) and ``num_steps`` (the steps kept). Model timesteps
        recorded by the base are kept for the values it keeps.

    Raises ``ValueError`` naming the argument for a strength outside (0, 1], an unknown convention, a base that does
    not fit the convention, and a cut that keeps no step.
    """
    strength = real("strength", strength)
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must lie in (0, 1] (1 = start from pure noise), got {strength}")
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        hint = suggestion(str(convention), list(CONVENTIONS)) if isinstance(convention, str) else ""
        raise ValueError(f"convention must be one of {', '.join(map(repr, CONVENTIONS))}; got {convention!r}.{hint}")
    n = step_count("num_steps", num_steps)
    alpha = _diffsynth_alpha(convention, alpha)
    make, rebuildable = _base_maker(spec)
    base, t, begin = _cut(make, rebuildable, n, strength, convention, alpha)
    if t.size < 2:
        raise _keeps_no_step(strength, n, convention)
    try:
        return _partial_schedule(base, t, begin, convention, strength)
    except ValueError as exc:  # a strength so small that the rescaled grid collapses in float64
        raise ValueError(
            f"strength={strength!r} with num_steps={n} under convention {convention!r} gives unusable values ({exc})"
        ) from None
