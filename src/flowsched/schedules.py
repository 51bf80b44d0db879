"""Schedule families: small pure functions that return a :class:`~flowsched.schedule.Schedule` (float64, numpy
only), each a few lines checkable against the source its docstring names.

Vocabulary (docs/conventions.md): ``t = 1`` is noise, ``t = 0`` is data. The *shift* ``alpha`` warps a grid with
``time_shift(t, alpha) = alpha * t / (1 + (alpha - 1) * t)`` (:mod:`flowsched.shift`, its one home). Flux's ``mu``
is ``alpha = exp(mu)``; CogView4's ``mu`` is ``alpha = mu``. Functions here take ``alpha`` unless their name or
argument says ``mu``.

diffusers' scheduler configs are re-implemented in :mod:`flowsched.diffusers_rules`; the spec language
(``"shifted:alpha=3"``, preset names) is :mod:`flowsched.spec`; partial schedules (a start at a strength) are
:func:`flowsched.strength.partial`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._limits import step_count
from ._validate import boolean, positive_int, positive_real, real, suggestion, unit_open
from .schedule import Schedule, check_t
from .shift import alpha_from_mu, time_shift, time_shift_mu

__all__ = [
    "COMFYUI_SCHEDULERS", "GRIDS", "beta", "cogview4", "cogview4_mu", "comfyui", "exponential", "flux", "flux_mu",
    "from_list", "grid", "invert", "karras", "kl_optimal", "linear", "linear_function", "linear_quadratic",
    "loglinear_interp", "ltx", "opensora", "opensora_alpha", "polyexponential", "shifted", "stretch_to_terminal",
    "warp", "warp_mu"
]

# -- resolution rules (numbers, not schedules) --------------------------------------------------------------


def linear_function(x1: float = 256.0, y1: float = 1.0, x2: float = 4096.0, y2: float = 3.0):
    """The straight line through ``(x1, y1)`` and ``(x2, y2)``, unclamped (Open-Sora's ``get_res_lin_function``,
    Flux's ``get_lin_function`` with ``y1=0.5, y2=1.15``)."""
    x1, y1, x2, y2 = real("x1", x1), real("y1", y1), real("x2", x2), real("y2", y2)
    if x1 == x2:
        raise ValueError(f"x1 and x2 must differ to define a line, got x1 = x2 = {x1}")
    m = (y2 - y1) / (x2 - x1)
    b = y1 - m * x1
    return lambda x: m * x + b


def _line(x: float, x1: float, y1: float, x2: float, y2: float, clamp: bool) -> float:
    if clamp:
        x = min(max(x, min(x1, x2)), max(x1, x2))
    return linear_function(x1, y1, x2, y2)(x)


def opensora_alpha(
    image_seq_len: int,
    num_frames: int,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
    *,
    clamp: bool = False,
) -> float:
    """Open-Sora 2.0's resolution rule: ``alpha = lin(image_seq_len) * sqrt(num_frames)`` where ``lin`` is the
    line through ``(256, base_shift)`` and ``(4096, max_shift)``. Open-Sora does not clamp it (the default);
    ``clamp=True`` holds ``image_seq_len`` inside [256, 4096] first.

    ``image_seq_len`` is the token count of ONE latent frame; ``num_frames`` is the LATENT frame count ``T'``.
    """
    image_seq_len = positive_int("image_seq_len", image_seq_len)
    num_frames = positive_int("num_frames", num_frames)
    base_shift = real("base_shift", base_shift)
    max_shift = real("max_shift", max_shift)
    clamp = boolean("clamp", clamp)
    alpha = _line(image_seq_len, 256.0, base_shift, 4096.0, max_shift, clamp) * math.sqrt(num_frames)
    if not alpha > 0:
        raise ValueError(
            f"base_shift={base_shift} and max_shift={max_shift} give alpha={alpha:.6g} at "
            f"image_seq_len={image_seq_len}; the shift must be > 0: give the shift alpha itself instead of the rule "
            "(Open-Sora's shift_alpha)"
        )
    return alpha


def flux_mu(
    image_seq_len: int,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    *,
    clamp: bool = False,
) -> float:
    """Flux's ``mu``: the line through ``(base_seq_len, base_shift)`` and ``(max_seq_len, max_shift)`` evaluated
    at the token count. ``alpha = exp(mu)``. Peers do not clamp (Flux 2048^2 gives mu 3.23); ``clamp=True``
    holds the token count inside ``[base_seq_len, max_seq_len]``.

    LTX-Video uses the same line with ``(1024, 0.95)``-``(4096, 2.05)`` over ``F' * H' * W'`` tokens.
    Sources: BFL flux ``get_lin_function``; diffusers ``calculate_shift`` (pipeline_flux.py, pipeline_ltx.py).
    """
    image_seq_len = positive_int("image_seq_len", image_seq_len)
    base_seq_len = positive_int("base_seq_len", base_seq_len)
    max_seq_len = positive_int("max_seq_len", max_seq_len)
    return _line(
        image_seq_len, base_seq_len, real("base_shift", base_shift), max_seq_len, real("max_shift", max_shift),
        boolean("clamp", clamp),
    )


def cogview4_mu(
    image_seq_len: int,
    base_shift: float = 0.25,
    max_shift: float = 0.75,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    *,
    clamp: bool = False,
) -> float:
    """CogView4's ``mu = sqrt(image_seq_len / base_seq_len) * max_shift + base_shift``, used with the LINEAR time
    shift, so ``alpha = mu`` (1024^2: 4096 tokens -> 3.25). ``clamp=True`` caps the token count at
    ``max_seq_len`` (and floors it at ``base_seq_len``); the peer does not clamp.
    Source: diffusers ``pipeline_cogview4.calculate_shift``."""
    image_seq_len = positive_int("image_seq_len", image_seq_len)
    base_seq_len = positive_int("base_seq_len", base_seq_len)
    max_seq_len = positive_int("max_seq_len", max_seq_len)
    if boolean("clamp", clamp):
        image_seq_len = min(max(image_seq_len, base_seq_len), max_seq_len)
    return math.sqrt(image_seq_len / base_seq_len) * real("max_shift", max_shift) + real("base_shift", base_shift)


# -- building blocks -----------------------------------------------------------------------------------------
# Every family returns a Schedule whose ``t`` is float64 and holds ``N + 1`` values, the last being the terminal
# value (0, or 1 for diffusers' ``invert_sigmas``). "Model evaluation points" are the first ``N`` values.


def _grid(num_steps: int) -> np.ndarray:
    """``linspace(1, 0, N + 1)`` in float64."""
    return np.linspace(1.0, 0.0, num_steps + 1, dtype=np.float64)


def _with_zero(values: np.ndarray, terminal: float = 0.0) -> np.ndarray:
    return np.concatenate([np.asarray(values, dtype=np.float64), [terminal]])


def _schedule(t: np.ndarray, name: str, params: dict, timesteps: np.ndarray | None = None) -> Schedule:
    """Build a Schedule, turning a non-monotone result into an error that says which parameters caused it."""
    try:
        return Schedule(np.asarray(t, dtype=np.float64), name=name, params=params, timesteps=timesteps)
    except ValueError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "sigmas")
        raise ValueError(f"{name}({shown}) does not give a usable schedule: {exc}") from None


# -- the shifted grid ----------------------------------------------------------------------------------------


def linear(num_steps: int) -> Schedule:
    """``N + 1`` evenly spaced values from 1 to 0 (Open-Sora and BFL Flux with ``shift=False``; rectified-flow
    default)."""
    num_steps = step_count("num_steps", num_steps)
    return Schedule(_grid(num_steps), name="linear", params={"num_steps": num_steps})


def shifted(num_steps: int, alpha: float) -> Schedule:
    """``time_shift(linspace(1, 0, N + 1), alpha)``: a static shift (SD3's ``shift``, Wan's ``flow_shift``)."""
    num_steps = step_count("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    params = {"num_steps": num_steps, "alpha": alpha}
    return Schedule(time_shift(_grid(num_steps), alpha), name="shifted", params=params)


def opensora(
    num_steps: int,
    image_seq_len: int,
    num_frames: int,
    alpha: float | None = None,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
) -> Schedule:
    """Open-Sora 2.0's ``get_schedule`` in float64 (agrees with the float32 original to about 1e-7):
    ``time_shift(linspace(1, 0, N + 1), alpha)`` with ``alpha = opensora_alpha(image_seq_len, num_frames,
    base_shift, max_shift)``.

    Args:
        num_steps: sampler steps ``N``.
        image_seq_len: tokens of ONE latent frame, ``(H_lat / p) * (W_lat / p)``.
        num_frames: LATENT frames ``T'``.
        alpha: if given, the shift itself (Open-Sora's ``shift_alpha``: overrides the rule, including its
            ``sqrt(T')`` factor).
        base_shift, max_shift: the rule's line through ``(256, base_shift)`` and ``(4096, max_shift)``.

    Open-Sora's ``shift=False`` (the unshifted grid) is :func:`linear`.
    """
    num_steps = step_count("num_steps", num_steps)
    params = {"num_steps": num_steps, "image_seq_len": positive_int("image_seq_len", image_seq_len),
              "num_frames": positive_int("num_frames", num_frames)}
    base_shift, max_shift = real("base_shift", base_shift), real("max_shift", max_shift)
    if alpha is None:
        alpha = opensora_alpha(params["image_seq_len"], params["num_frames"], base_shift, max_shift)
        params.update(base_shift=base_shift, max_shift=max_shift)
    params["alpha"] = positive_real("alpha", alpha)
    return Schedule(time_shift(_grid(num_steps), params["alpha"]), name="opensora", params=params)


# -- base grids ----------------------------------------------------------------------------------------------

#: Named evenly spaced grids: ``(start, stop, endpoint)`` for :func:`grid`. ``N`` model evaluation points are
#: ``numpy.linspace(start, stop, N, endpoint=endpoint)``, then the terminal 0.
GRIDS: dict[str, tuple[float, float, bool]] = {
    # BFL Flux / Open-Sora 2.0 / HunyuanVideo: linspace(1, 0, N+1) == linspace(1, 1/N, N) + [0]. ComfyUI's
    # "simple" is NOT this grid: it picks entries of the model's 1000- (Flux: 10000-) entry table and equals the
    # (shifted) grid only when N divides the table size (N = 28, shift 8: up to 2.2e-3 apart); see comfyui().
    "linear": (1.0, 0.0, False),
    # diffusers' DPMSolverMultistepScheduler with use_flow_sigmas (1 - linspace(1, 1/1000, N+1), flipped), and
    # within 1.3e-8 Wan's own FlowUniPCMultistepScheduler (sigma_max = float32(0.999)). The solvers themselves,
    # with the integer timesteps they feed the model: flowsched.diffusers_rules.flow_sigmas.
    "wan": (0.999, 0.0, False),
    # diffusers UniPCMultistepScheduler with use_flow_sigmas: linspace(1, 1/1000, N+1)[:-1].
    "unipc": (1.0, 0.001, False),
    # diffusers FlowMatchEulerDiscreteScheduler default path before any shift: linspace(1, 1/1000, N) + [0].
    "diffusers": (1.0, 0.001, True),
}


def grid(
    num_steps: int,
    kind: str = "linear",
    *,
    start: float | None = None,
    stop: float | None = None,
    endpoint: bool | None = None,
) -> Schedule:
    """An unshifted, evenly spaced grid: ``N`` model evaluation points ``linspace(start, stop, N,
    endpoint=endpoint)`` followed by the terminal 0.

    ``kind`` picks the defaults from :data:`GRIDS` (``linear``: BFL/Open-Sora/HunyuanVideo; ``wan``: Wan's
    original UniPC and diffusers' DPM-Solver++ flow grid; ``unipc``: diffusers' UniPC flow grid; ``diffusers``:
    FlowMatchEulerDiscreteScheduler's default grid). ``start``/``stop``/``endpoint`` override them.
    Shift the result with :func:`warp` or :func:`warp_mu`. Sources: the peers' ``set_timesteps`` (diffusers 0.42.1,
    Wan2.1 ``fm_solvers_unipc.py``; docs/schedules.md).
    """
    num_steps = step_count("num_steps", num_steps)
    if kind not in GRIDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, GRIDS))}; got {kind!r}")
    d_start, d_stop, d_endpoint = GRIDS[kind]
    start = d_start if start is None else real("start", start)
    stop = d_stop if stop is None else real("stop", stop)
    endpoint = d_endpoint if endpoint is None else boolean("endpoint", endpoint)
    if not 0.0 <= stop < start <= 1.0:
        raise ValueError(f"need 0 <= stop < start <= 1, got start={start}, stop={stop}")
    if endpoint and stop == 0.0 and num_steps > 1:
        raise ValueError("stop=0 with endpoint=True would evaluate the model at t=0; use endpoint=False")
    points = np.linspace(start, stop, num_steps, endpoint=endpoint, dtype=np.float64)
    params = {"num_steps": num_steps, "kind": kind, "start": start, "stop": stop, "endpoint": endpoint}
    return _schedule(_with_zero(points), "grid", params)


# -- warps (Schedule -> Schedule) -------------------------------------------------------------------------------


def _need_schedule(schedule) -> None:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a flowsched Schedule, got {type(schedule).__name__}")


def _warped(schedule: Schedule, t: np.ndarray, label: str, extra: dict) -> Schedule:
    params = dict(schedule.params)
    params["warps"] = [*params.get("warps", []), label]
    params.update(extra)
    return _schedule(t, schedule.name, params)


def warp(schedule: Schedule, alpha: float) -> Schedule:
    """Static shift of every value: ``time_shift(t, alpha)`` (SD3's ``shift``, Wan's ``flow_shift``, Open-Sora's
    ``alpha``). ``alpha > 1`` spends more steps near noise. Source: Esser et al. 2024 (SD3), eq. 23."""
    alpha = positive_real("alpha", alpha)
    _need_schedule(schedule)
    return _warped(schedule, time_shift(schedule.t, alpha), f"alpha={alpha:g}", {"alpha": alpha})


def warp_mu(
    schedule: Schedule,
    mu: float,
    *,
    time_shift_type: str = "exponential",
    sigma: float = 1.0,
) -> Schedule:
    """Dynamic ("resolution-dependent") shift with ``mu``: ``a / (a + (1/t - 1)**sigma)`` where ``a = exp(mu)``
    (``"exponential"``: Flux, LTX, SD3 with dynamic shifting) or ``a = mu`` (``"linear"``: CogView4).

    With ``sigma = 1`` this is :func:`warp` with ``alpha = exp(mu)`` (or ``alpha = mu``): ``mu`` is NOT a shift.
    Sources: BFL flux ``sampling.time_shift``; diffusers ``_time_shift_exponential`` / ``_time_shift_linear``.
    """
    _need_schedule(schedule)
    alpha = alpha_from_mu(mu, time_shift_type)
    sigma = positive_real("sigma", sigma)
    t = time_shift_mu(schedule.t, mu, time_shift_type=time_shift_type, sigma=sigma)
    extra = {"mu": float(mu), "time_shift_type": time_shift_type}
    extra.update({"alpha": alpha} if sigma == 1.0 else {"sigma": sigma})
    return _warped(schedule, t, f"mu={mu:g}({time_shift_type})", extra)


def _stretch(t: np.ndarray, terminal: float) -> np.ndarray:
    """LTX-Video's ``strech_shifts_to_terminal``: on the non-zero values, ``1 - t`` is scaled so that the last
    non-zero value becomes ``terminal``; the first value (normally 1) does not move."""
    out = np.array(t, dtype=np.float64)
    nz = out > 0
    z = 1.0 - out[nz]
    if z.size == 0 or z[-1] == 0.0:
        raise ValueError(
            "shift_terminal needs a schedule whose last non-zero value is below 1 (at least 2 steps); "
            "with one step there is nothing to stretch"
        )
    out[nz] = 1.0 - z / (z[-1] / (1.0 - terminal))
    return out


def stretch_to_terminal(schedule: Schedule, terminal: float = 0.1) -> Schedule:
    """Stretch so the last model evaluation point is ``terminal`` (LTX-Video: 0.1; diffusers' ``shift_terminal``).

    Source: Lightricks/LTX-Video ``ltx_video/schedulers/rf.py`` (``strech_shifts_to_terminal``).
    """
    terminal = unit_open("terminal", terminal)
    _need_schedule(schedule)
    return _warped(schedule, _stretch(schedule.t, terminal), f"terminal={terminal:g}", {"shift_terminal": terminal})


def invert(schedule: Schedule) -> Schedule:
    """``1 - t``: the schedule in Mochi's convention (diffusers ``invert_sigmas``: t = 0 is noise, values
    increase to 1). Source: genmo mochi ``infer.py``; diffusers FlowMatchEulerDiscreteScheduler."""
    _need_schedule(schedule)
    return _warped(schedule, 1.0 - schedule.t, "invert", {"inverted": True})


# -- model rules as schedules --------------------------------------------------------------------------------


def flux(num_steps: int, image_seq_len: int, base_shift: float = 0.5, max_shift: float = 1.15) -> Schedule:
    """Black Forest Labs' ``get_schedule``: ``linspace(1, 0, N + 1)`` warped with ``mu = flux_mu(image_seq_len)``
    (``alpha = exp(mu)``). BFL's ``shift=False`` (FLUX.1-schnell) is :func:`linear`.

    ``image_seq_len`` is the packed token count ``(H / 16) * (W / 16)``. float64; BFL computes in float32 and
    the two agree to about 1e-7. Source: black-forest-labs/flux ``src/flux/sampling.py``.
    """
    num_steps = step_count("num_steps", num_steps)
    mu = flux_mu(image_seq_len, base_shift, max_shift)
    params = {"num_steps": num_steps, "image_seq_len": int(image_seq_len), "base_shift": float(base_shift),
              "max_shift": float(max_shift), "mu": mu, "alpha": alpha_from_mu(mu)}
    return _schedule(time_shift_mu(_grid(num_steps), mu), "flux", params)


def ltx(
    num_steps: int,
    seq_len: int,
    base_shift: float = 0.95,
    max_shift: float = 2.05,
    base_seq_len: int = 1024,
    max_seq_len: int = 4096,
    terminal: float | None = 0.1,
    *,
    clamp: bool = False,
) -> Schedule:
    """LTX-Video 0.9.0/0.9.1 in diffusers: ``linspace(1, 1/N, N)`` warped with ``mu = flux_mu(seq_len, 0.95, 2.05,
    1024, 4096)`` over ALL latent tokens ``F' * H' * W'`` (not clamped: 161 frames at 512x704 -> mu 3.23), then
    stretched so the last model evaluation point is ``terminal`` (0.1; ``None`` skips the stretch), then 0.

    Sources: diffusers ``pipeline_ltx.py`` + scheduler config (``shift_terminal 0.1``); LTX-Video ``rf.py``.
    """
    num_steps = step_count("num_steps", num_steps)
    mu = flux_mu(seq_len, base_shift, max_shift, base_seq_len, max_seq_len, clamp=clamp)
    t = time_shift_mu(_grid(num_steps), mu)
    params = {"num_steps": num_steps, "seq_len": int(seq_len), "mu": mu, "alpha": alpha_from_mu(mu), "clamp": clamp}
    if terminal is not None:
        terminal = unit_open("terminal", terminal)
        t = _stretch(t, terminal)
        params["shift_terminal"] = terminal
    return _schedule(t, "ltx", params)


def cogview4(
    num_steps: int,
    image_seq_len: int,
    base_shift: float = 0.25,
    max_shift: float = 0.75,
    base_seq_len: int = 256,
    *,
    clamp: bool = False,
    mu: float | None = None,
) -> Schedule:
    """CogView4 in diffusers: integer timesteps ``int(linspace(1000, 1, N))``, ``t = timesteps / 1000``, warped
    with the LINEAR ``mu = cogview4_mu(image_seq_len)`` (``alpha = mu``), then 0. ``mu`` overrides the rule.

    The model is fed the UNshifted integer timesteps (diffusers 0.42.1 keeps them), not ``t * 1000``: they are
    the schedule's :attr:`~flowsched.schedule.Schedule.timesteps` (``model_timesteps()``).
    Source: diffusers ``pipeline_cogview4.py`` (``calculate_shift``, timesteps) and its scheduler config.
    """
    num_steps = step_count("num_steps", num_steps)
    image_seq_len, clamp = positive_int("image_seq_len", image_seq_len), boolean("clamp", clamp)
    mu = cogview4_mu(image_seq_len, base_shift, max_shift, base_seq_len, clamp=clamp) if mu is None else mu
    mu = positive_real("mu", mu)
    fed = np.linspace(1000.0, 1.0, num_steps).astype(np.int64).astype(np.float64)  # the pipeline's int64 cast
    t = time_shift_mu(fed / 1000.0, mu, time_shift_type="linear")
    params = {"num_steps": num_steps, "image_seq_len": image_seq_len, "mu": mu,
              "time_shift_type": "linear", "alpha": mu, "clamp": clamp}
    return _schedule(_with_zero(t), "cogview4", params, fed)


# -- noise-level families between two endpoints ----------------------------------------------------------------


def _endpoints(t_max, t_min) -> tuple[float, float]:
    t_max, t_min = real("t_max", t_max), real("t_min", t_min)
    if not 0.0 < t_min < t_max <= 1.0:
        raise ValueError(
            f"need 0 < t_min < t_max <= 1 (t = 1 is noise, t = 0 data), got t_max={t_max}, t_min={t_min}"
        )
    return t_max, t_min


def _pin_ends(points: np.ndarray, t_max: float, t_min: float) -> np.ndarray:
    """Put the end points exactly where asked (``tan(atan(1))`` is 0.9999999999999999)."""
    points[0] = t_max
    if points.size > 1:
        points[-1] = t_min
    return points


def karras(num_steps: int, t_max: float = 1.0, t_min: float = 0.001, rho: float = 7.0) -> Schedule:
    """Karras et al. 2022 (EDM, eq. 5): ``(t_max^(1/rho) + r (t_min^(1/rho) - t_max^(1/rho)))^rho`` for
    ``r = linspace(0, 1, N)``, then 0 (k-diffusion ``get_sigmas_karras``). The end points are the caller's:
    diffusers' ``use_karras_sigmas`` passes its shifted grid's, ComfyUI's ``karras`` its model table's
    (``comfyui("karras", N, alpha=...)``)."""
    num_steps = step_count("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    rho = positive_real("rho", rho)
    r = np.linspace(0.0, 1.0, num_steps)
    hi, lo = t_max ** (1.0 / rho), t_min ** (1.0 / rho)
    params = {"num_steps": num_steps, "t_max": t_max, "t_min": t_min, "rho": rho}
    return _schedule(_with_zero(_pin_ends((hi + r * (lo - hi)) ** rho, t_max, t_min)), "karras", params)


def exponential(num_steps: int, t_max: float = 1.0, t_min: float = 0.001) -> Schedule:
    """Log-uniform points ``exp(linspace(log t_max, log t_min, N))``, then 0 (k-diffusion
    ``get_sigmas_exponential``; diffusers ``use_exponential_sigmas``; ComfyUI's ``exponential`` with its model
    table's end points: ``comfyui("exponential", N, alpha=...)``)."""
    num_steps = step_count("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    points = _pin_ends(np.exp(np.linspace(math.log(t_max), math.log(t_min), num_steps)), t_max, t_min)
    return _schedule(_with_zero(points), "exponential", {"num_steps": num_steps, "t_max": t_max, "t_min": t_min})


def polyexponential(num_steps: int, t_max: float = 1.0, t_min: float = 0.001, rho: float = 1.0) -> Schedule:
    """k-diffusion's polynomial in ``log t``: ``exp(r^rho (log t_max - log t_min) + log t_min)`` for
    ``r = linspace(1, 0, N)``, then 0. ``rho = 1`` is :func:`exponential`; ``rho > 1`` spends more steps near
    ``t_min``. (:func:`karras`'s ``rho`` acts on ``t^(1/rho)``, this one on the ramp in ``log t``.)
    Source: k-diffusion ``get_sigmas_polyexponential`` (as in ComfyUI ``comfy/k_diffusion/sampling.py``)."""
    num_steps = step_count("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    rho = positive_real("rho", rho)
    ramp = np.linspace(1.0, 0.0, num_steps) ** rho
    lo = math.log(t_min)
    points = _pin_ends(np.exp(ramp * (math.log(t_max) - lo) + lo), t_max, t_min)
    params = {"num_steps": num_steps, "t_max": t_max, "t_min": t_min, "rho": rho}
    return _schedule(_with_zero(points), "polyexponential", params)


def beta(num_steps: int, t_max: float = 1.0, t_min: float = 0.001, a: float = 0.6, b: float = 0.6) -> Schedule:
    """Beta-quantile points ``t_min + F^-1(1 - linspace(0, 1, N)) (t_max - t_min)`` with ``F`` the Beta(a, b)
    CDF, then 0: diffusers' convention (``use_beta_sigmas``), quantiles taken in ``t`` between the end points.
    ComfyUI's ``beta`` scheduler is another rule (quantiles of the model table's INDEX, ``N`` points without the
    end point, repeats dropped; it never gets near ``t_min``): :func:`comfyui`.
    Source: Lee et al. 2024, "Beta Sampling is All You Need" (arXiv 2407.12173); diffusers 0.42.1.
    Needs scipy (``pip install 'flowsched[quality]'``)."""
    num_steps = step_count("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    a, b = positive_real("a", a), positive_real("b", b)
    from ._optional import require

    betaincinv = require("scipy.special", "the beta schedule").betaincinv
    q = betaincinv(a, b, 1.0 - np.linspace(0.0, 1.0, num_steps))
    params = {"num_steps": num_steps, "t_max": t_max, "t_min": t_min, "a": a, "b": b}
    return _schedule(_with_zero(_pin_ends(t_min + q * (t_max - t_min), t_max, t_min)), "beta", params)


def kl_optimal(num_steps: int, t_max: float = 1.0, t_min: float = 0.001) -> Schedule:
    """The KL-optimal schedule: ``tan`` of points evenly spaced in ``atan(t)`` from ``atan(t_max)`` to
    ``atan(t_min)``, then 0 (one step: ``[t_max, 0]``). Source: Sabour et al. 2024, "Align Your Steps"
    (arXiv 2404.14507). ComfyUI's ``kl_optimal`` scheduler is this formula with its model table's end points
    (:func:`comfyui`), except at one step, where ComfyUI computes 0/0 and returns ``[nan, 0]``."""
    num_steps = step_count("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    r = np.linspace(0.0, 1.0, num_steps) if num_steps > 1 else np.zeros(1)
    points = _pin_ends(np.tan(r * math.atan(t_min) + (1.0 - r) * math.atan(t_max)), t_max, t_min)
    return _schedule(_with_zero(points), "kl_optimal", {"num_steps": num_steps, "t_max": t_max, "t_min": t_min})


def _linear_quadratic_t_max(variant: str, t_max: float) -> float:
    if variant not in ("mochi", "comfyui"):
        raise ValueError(f"variant must be 'mochi' or 'comfyui', got {variant!r}")
    t_max = real("t_max", t_max)
    if variant == "mochi" and t_max != 1.0:
        raise ValueError(f"t_max only applies to variant='comfyui'; variant='mochi' starts at 1, got t_max={t_max}")
    if not 0.0 < t_max <= 1.0:
        raise ValueError(f"t_max must be in (0, 1], got {t_max}")
    return t_max


def _linear_quadratic_progress(n: int, lin: int, threshold: float) -> np.ndarray:
    """Mochi's progress ``u`` at steps ``0 .. N - 1``: ``i * threshold / L`` for ``i < L``, then the quadratic
    ``q(i) = qc i^2 + lc i + c`` with ``q(L) = threshold`` and ``q(N) = 1``, tangent-free join."""
    quad = n - lin
    d = lin - threshold * n
    qc = d / (lin * quad**2)
    lc = threshold / lin - 2.0 * d / quad**2
    c = qc * lin**2
    i = np.arange(n, dtype=np.float64)
    return np.where(i < lin, i * threshold / lin, qc * i**2 + lc * i + c)


def linear_quadratic(
    num_steps: int,
    threshold_noise: float = 0.025,
    linear_steps: int | None = None,
    *,
    variant: str = "mochi",
    t_max: float = 1.0,
) -> Schedule:
    """Mochi's linear-quadratic schedule: with ``u`` the progress (``t = 1 - u``), the first ``L`` steps
    (default ``N // 2``) move ``u`` linearly from 0 to ``threshold_noise``; the remaining ``N - L`` follow the
    quadratic through ``(L, threshold_noise)`` that reaches ``u = 1`` at step ``N``, then 0.

    ``variant="mochi"`` (genmo, diffusers MochiPipeline) needs ``N >= 2``. ``variant="comfyui"`` (ComfyUI's
    ``linear_quadratic`` scheduler) also accepts ``N = 1`` (``[1, 0]``) and scales every value by ``t_max``.
    Neither applies a model shift. Sources: genmoai/models ``infer.py``; ComfyUI ``comfy/samplers.py``.
    """
    num_steps = step_count("num_steps", num_steps)
    threshold_noise = unit_open("threshold_noise", threshold_noise)
    t_max = _linear_quadratic_t_max(variant, t_max)
    params = {"num_steps": num_steps, "threshold_noise": threshold_noise, "variant": variant, "t_max": t_max}
    if num_steps == 1:
        if variant == "mochi":
            raise ValueError(
                "num_steps must be >= 2 for variant='mochi' (genmo splits the steps in two halves); "
                "use variant='comfyui' for a one-step [1, 0] schedule"
            )
        return _schedule(np.array([t_max, 0.0]), "linear_quadratic", {**params, "linear_steps": 0})
    lin = num_steps // 2 if linear_steps is None else positive_int("linear_steps", linear_steps)
    if lin >= num_steps:
        raise ValueError(f"linear_steps must be between 1 and num_steps - 1 = {num_steps - 1}, got {lin}")
    u = _linear_quadratic_progress(num_steps, lin, threshold_noise)
    return _schedule(_with_zero((1.0 - u) * t_max), "linear_quadratic", {**params, "linear_steps": lin})


# -- ComfyUI's schedulers ----------------------------------------------------------------------------------------
# Source: Comfy-Org/ComfyUI commit a125cd8, comfy/samplers.py (calculate_sigmas and the schedulers) and
# comfy/model_sampling.py (ModelSamplingDiscreteFlow, ModelSamplingFlux). ComfyUI's sigma is flowsched's t.

#: ComfyUI's "close to zero" test (``math.isclose(x, 0, abs_tol=0.00001)``) in ``normal`` and ``ddim_uniform``.
_COMFY_ZERO = 1e-5


@dataclass(frozen=True)
class _SigmaTable:
    """A flow model sampling's sigma table: ``table[k] = shift((k + 1) / size)``, ``k = 0 .. size - 1``
    (``sigma_min = table[0]``, ``sigma_max = table[size - 1] = 1``), in float64."""

    size: int
    alpha: float

    def shift(self, t) -> np.ndarray:
        """The model sampling's ``sigma(timestep(t))``; ComfyUI's ``time_snr_shift`` returns ``t`` itself at 1."""
        t = np.asarray(t, dtype=np.float64)
        return t if self.alpha == 1.0 else time_shift(t, self.alpha)

    def __getitem__(self, k) -> np.ndarray:
        return self.shift((np.asarray(k, dtype=np.float64) + 1.0) / self.size)

    @property
    def sigma_min(self) -> float:
        return float(self[0])


def _comfy_simple(n: int, table: _SigmaTable) -> np.ndarray:
    """``table[-(1 + int(i * size / N))]`` for ``i < N``, then 0."""
    offsets = (np.arange(n, dtype=np.float64) * (table.size / n)).astype(np.int64)  # Python's int(x * ss)
    if n > 1 and np.any(np.diff(offsets) == 0):
        raise ValueError(
            f"ComfyUI's simple scheduler with num_steps={n} > table_size={table.size} takes some table entries "
            f"twice (ComfyUI then runs zero-length steps); a schedule must be strictly decreasing: use "
            f"num_steps <= {table.size}"
        )
    return _with_zero(table[table.size - 1 - offsets])


def _comfy_sgm_uniform(n: int, table: _SigmaTable) -> np.ndarray:
    """``shift(linspace(1, sigma_min, N + 1)[:-1])``, then 0."""
    return _with_zero(table.shift(np.linspace(1.0, table.sigma_min, n + 1)[:-1]))


def _comfy_normal(n: int, table: _SigmaTable) -> np.ndarray:
    """``shift(linspace(1, sigma_min, N))``, then 0; ``N + 1`` points and no 0 when ``shift(sigma_min)`` is 0."""
    if float(table.shift(table.sigma_min)) <= _COMFY_ZERO:
        return table.shift(np.linspace(1.0, table.sigma_min, n + 1))
    return _with_zero(table.shift(np.linspace(1.0, table.sigma_min, n)))


def _comfy_beta(n: int, table: _SigmaTable) -> np.ndarray:
    """``table[rint(F^-1(q) (size - 1))]``, ``q = 1 - linspace(0, 1, N, endpoint=False)``, Beta(0.6, 0.6),
    repeated indices skipped, then 0."""
    from ._optional import require

    ppf = require("scipy.stats", "ComfyUI's beta scheduler").beta.ppf
    index = np.rint(ppf(1.0 - np.linspace(0.0, 1.0, n, endpoint=False), 0.6, 0.6) * (table.size - 1))
    keep = np.concatenate([[True], index[1:] != index[:-1]])
    return _with_zero(table[index[keep].astype(np.int64)])


def _comfy_ddim_uniform(n: int, table: _SigmaTable) -> np.ndarray:
    """``table[1 + j s]``, ``s = max(size // N, 1)``, reversed, then 0 (one more step and no 0 when ``table[1]``
    is 0)."""
    zero_first = float(table[1]) <= _COMFY_ZERO
    stride = max(table.size // (n + 1 if zero_first else n), 1)
    t = table[np.arange(1, table.size, stride)][::-1]
    return t if zero_first else _with_zero(t)


#: ComfyUI's schedulers, in its order (``SCHEDULER_NAMES``): ``(N, table) -> t``.
_COMFYUI: dict[str, Callable[[int, _SigmaTable], np.ndarray]] = {
    "simple": _comfy_simple,
    "sgm_uniform": _comfy_sgm_uniform,
    "karras": lambda n, table: karras(n, 1.0, table.sigma_min).t,
    "exponential": lambda n, table: exponential(n, 1.0, table.sigma_min).t,
    "ddim_uniform": _comfy_ddim_uniform,
    "beta": _comfy_beta,
    "normal": _comfy_normal,
    "linear_quadratic": lambda n, table: linear_quadratic(n, variant="comfyui").t,
    "kl_optimal": lambda n, table: kl_optimal(n, 1.0, table.sigma_min).t,
}

#: ComfyUI's scheduler names, in its order (``comfy/samplers.py`` ``SCHEDULER_NAMES`` at commit a125cd8).
COMFYUI_SCHEDULERS: tuple[str, ...] = tuple(_COMFYUI)


def _comfy_model_sampling(alpha: float, mu: float | None, table_size: int | None) -> tuple[_SigmaTable, dict]:
    """The model sampling's table and its params: ``ModelSamplingDiscreteFlow`` (``alpha``, 1000 entries) or
    ``ModelSamplingFlux`` (``alpha = e^mu``, 10000 entries)."""
    alpha = positive_real("alpha", alpha)
    params: dict = {"model_sampling": "ModelSamplingDiscreteFlow"}
    if mu is not None:
        mu = real("mu", mu)
        if alpha != 1.0:
            raise ValueError(
                f"give alpha (ModelSamplingDiscreteFlow's shift) or mu (ModelSamplingFlux's shift, alpha = e^mu), "
                f"not both; got alpha={alpha}, mu={mu}"
            )
        alpha = alpha_from_mu(mu)
        params = {"model_sampling": "ModelSamplingFlux", "mu": mu}
    size = (1000 if mu is None else 10000) if table_size is None else step_count("table_size", table_size)
    if size < 2:
        raise ValueError(f"table_size must be at least 2 (sigma_min < sigma_max), got {size}")
    return _SigmaTable(size, alpha), {**params, "alpha": alpha, "table_size": size}


def comfyui(
    scheduler: str,
    num_steps: int,
    *,
    alpha: float = 1.0,
    table_size: int | None = None,
    mu: float | None = None,
) -> Schedule:
    """The sigmas ComfyUI's ``calculate_sigmas(model_sampling, scheduler, steps)`` returns for a flow model.

    Args:
        scheduler: a ComfyUI scheduler name (:data:`COMFYUI_SCHEDULERS`).
        num_steps: ComfyUI's ``steps`` argument ``N``.
        alpha: ``ModelSamplingDiscreteFlow``'s shift (the ``ModelSamplingSD3`` node's ``shift``).
        table_size: entries of the model's sigma table; ``None``: ComfyUI's, 1000 (10000 with ``mu``).
        mu: ``ModelSamplingFlux``'s shift setting, which is a ``mu`` (``alpha = e^mu``); leave ``alpha`` at 1.

    ComfyUI's sigma is flowsched's ``t`` (its flow models use ``x = sigma * noise + (1 - sigma) * x0``). The
    model sampling holds a table of ``table_size`` values ``table[k] = time_shift((k + 1) / table_size, alpha)``,
    ``k = 0 .. table_size - 1`` (``sigma_min = table[0]``, ``sigma_max = table[-1] = 1``):

    * ``ModelSamplingDiscreteFlow`` (``ModelSamplingSD3`` / ``ModelSamplingAuraFlow`` nodes, SD3, Wan,
      HunyuanVideo, Flux schnell, ...): its ``shift`` is ``alpha``; 1000 entries.
    * ``ModelSamplingFlux`` (Flux dev, the ``ModelSamplingFlux`` node): its ``shift`` setting is ``mu``, and
      ``alpha = e^mu``; 10000 entries. Pass ``mu=`` for it.

    Schedulers (``scheduler``, ComfyUI's name), with ``N = num_steps``:

    * ``simple``: ``table[-(1 + int(i * table_size / N))]`` for ``i < N``, then 0. The shifted
      ``linspace(1, 0, N + 1)`` only when ``N`` divides ``table_size``.
    * ``normal``: ``time_shift(linspace(1, sigma_min, N), alpha)``, then 0 (the shift is applied to a table
      value again, so it ends at ``shift(shift(1 / table_size))``, like diffusers' default grid);
      ``sgm_uniform``: ``linspace(1, sigma_min, N + 1)[:-1]`` the same way. (If ``shift(sigma_min) <= 1e-5``,
      ComfyUI's ``normal`` takes ``N + 1`` points and appends no 0; so does this.)
    * ``beta``: ``table[rint(F^-1(q) * (table_size - 1))]`` for ``q = 1 - linspace(0, 1, N, endpoint=False)``
      with ``F`` the Beta(0.6, 0.6) CDF (scipy's ``beta.ppf``, as ComfyUI), skipping an index equal to the
      previous one, then 0: quantiles in table-INDEX space, unlike :func:`beta` (diffusers' convention).
    * ``ddim_uniform``: ``table[1 + j * s]`` for ``s = max(table_size // N, 1)`` while the index is below
      ``table_size``, reversed, then 0: ``ceil((table_size - 1) / s) + 1`` values, not always ``N + 1``, and it
      usually starts below 1 (``N = 1`` gives ``[table[1], 0]``).
    * ``karras`` (rho 7), ``exponential``, ``kl_optimal``: :func:`karras`, :func:`exponential`,
      :func:`kl_optimal` between ``sigma_max = 1`` and ``sigma_min``; the shift enters only through
      ``sigma_min``.
    * ``linear_quadratic``: :func:`linear_quadratic` with ``variant="comfyui"``; no shift at all.

    What differs from a flowsched family, kept as ComfyUI has it:

    * The returned schedule holds what ComfyUI returns, so its ``num_steps`` is the number of steps ComfyUI
      runs: ``N + 1`` for ``ddim_uniform`` at ``N = 7, 28, 30`` (table 1000), fewer when ``beta`` skips
      repeated indices; ``params["num_steps"]`` is the ``steps`` that was asked for.
    * ``ddim_uniform`` usually starts below 1: a flowsched sampler needs ``allow_partial=True`` for it.
    * ComfyUI's ``kl_optimal`` at one step computes 0/0 and returns ``[nan, 0]``; this returns the formula's
      limit ``[1, 0]`` and records ``params["comfyui_returns_nan"] = True``.
    * ``simple`` with ``N > table_size`` repeats table entries (ComfyUI then runs zero-length steps); a schedule
      must be strictly decreasing, so that raises ``ValueError`` instead.

    Computed in float64; ComfyUI builds its table in float32 (and ``normal``/``sgm_uniform`` in float32 through
    ``timestep()``, so its values depend on the model's ``multiplier`` in the last bits). Every value of the
    recorded grid (9 schedulers, 8 model samplings, 11 step counts; tests/data/comfyui) is within 2e-7 of
    ComfyUI's, with the same length. Needs scipy for ``beta`` only.
    """
    if scheduler not in COMFYUI_SCHEDULERS:
        hint = suggestion(str(scheduler), COMFYUI_SCHEDULERS)
        raise ValueError(
            f"scheduler must be one of ComfyUI's {', '.join(COMFYUI_SCHEDULERS)}; got {scheduler!r}.{hint}"
        )
    num_steps = step_count("num_steps", num_steps)
    table, sampling = _comfy_model_sampling(alpha, mu, table_size)
    params = {"scheduler": scheduler, "num_steps": num_steps, **sampling}
    if scheduler == "kl_optimal" and num_steps == 1:
        params["comfyui_returns_nan"] = True
    return _schedule(_COMFYUI[scheduler](num_steps, table), "comfyui", params)


# -- user schedules ----------------------------------------------------------------------------------------------


def from_list(values, *, append_zero: bool = False, name: str = "custom") -> Schedule:
    """A user schedule: ``N + 1`` values of ``t`` in [0, 1], strictly decreasing from noise (normally 1) to data
    (normally 0). ``append_zero=True`` takes the ``N`` model evaluation points (diffusers' ``sigmas=`` list,
    without the terminal) and appends 0."""
    append_zero = boolean("append_zero", append_zero)
    arr = check_t(values, "values", positive=append_zero, min_size=1 if append_zero else 2)
    if append_zero:
        arr = _with_zero(arr)
    return _schedule(arr, name, {"num_steps": int(arr.size - 1)})


def loglinear_interp(schedule: Schedule | list, num_steps: int) -> Schedule:
    """Re-sample a shipped schedule to ``num_steps``: its model evaluation points (all values but the terminal)
    are interpolated linearly in ``log t`` against their normalised index, keeping both end points; the original
    terminal value is appended. A list is read as ``N + 1`` values ending in the terminal (see :func:`from_list`).
    Source: Sabour et al. 2024 "Align Your Steps" ``loglinear_interp`` (as in ComfyUI's AYS scheduler)."""
    num_steps = step_count("num_steps", num_steps)
    if not isinstance(schedule, Schedule):
        schedule = from_list(schedule)
    t = schedule.t
    if t[0] < t[-1]:
        raise ValueError("loglinear_interp needs a decreasing schedule; invert() an inverted one first")
    points = t[:-1]
    if points.size == 1 or num_steps == 1:
        new = points[:1].copy()
    else:
        xs = np.linspace(0.0, 1.0, points.size)
        new = np.exp(np.interp(np.linspace(0.0, 1.0, num_steps), xs, np.log(points)))
        new[0], new[-1] = points[0], points[-1]  # exact end points despite exp(log(x))
    params = {"num_steps": num_steps, "source_name": schedule.name, "source_steps": schedule.num_steps}
    return _schedule(_with_zero(new, float(t[-1])), "loglinear_interp", params)
