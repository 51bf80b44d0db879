"""Schedule families: pure functions that return a :class:`~flowsched.schedule.Schedule` (float64, numpy only).

Vocabulary (DESIGN.md): ``t = 1`` is noise, ``t = 0`` is data. The *shift* ``alpha`` warps a grid with
``time_shift(t, alpha) = alpha * t / (1 + (alpha - 1) * t)``. Flux's ``mu`` is ``alpha = exp(mu)``; CogView4's
``mu`` is ``alpha = mu``. Functions here take ``alpha`` unless their name or argument says ``mu``.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import closest, positive_int, positive_real, real
from .schedule import Schedule

# -- warps -------------------------------------------------------------------------------------------------


def time_shift(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """``alpha * t / (1 + (alpha - 1) * t)`` in float64: maps 0 -> 0 and 1 -> 1, bends towards 1 for alpha > 1.

    Source: SD3 (Esser et al. 2024, eq. 23) "timestep shift"; Open-Sora 2.0 ``time_shift(alpha, t)``.
    """
    alpha = positive_real("alpha", alpha)
    t = np.asarray(t, dtype=np.float64)
    # Same function written as t / (t + (1 - t) / alpha): it maps 1 -> 1 and 0 -> 0 exactly in floating point,
    # where alpha * t / (1 + (alpha - 1) * t) can give 0.9999999999999992 at t = 1.
    return t / (t + (1.0 - t) / alpha)


def linear_function(x1: float = 256.0, y1: float = 1.0, x2: float = 4096.0, y2: float = 3.0):
    """The straight line through ``(x1, y1)`` and ``(x2, y2)``, unclamped (Open-Sora's ``get_res_lin_function``,
    Flux's ``get_lin_function`` with ``y1=0.5, y2=1.15``)."""
    x1, y1, x2, y2 = real("x1", x1), real("y1", y1), real("x2", x2), real("y2", y2)
    if x1 == x2:
        raise ValueError(f"x1 and x2 must differ to define a line, got x1 = x2 = {x1}")
    m = (y2 - y1) / (x2 - x1)
    b = y1 - m * x1
    return lambda x: m * x + b


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
    clamp = _bool("clamp", clamp)
    alpha = _line(image_seq_len, 256.0, base_shift, 4096.0, max_shift, clamp) * math.sqrt(num_frames)
    if not alpha > 0:
        raise ValueError(
            f"base_shift={base_shift} and max_shift={max_shift} give alpha={alpha:.6g} at "
            f"image_seq_len={image_seq_len}; the shift must be > 0 (pass shift_alpha to set it directly)"
        )
    return alpha


# -- families ----------------------------------------------------------------------------------------------


def _grid(num_steps: int) -> np.ndarray:
    """``linspace(1, 0, N + 1)`` in float64."""
    return np.linspace(1.0, 0.0, num_steps + 1, dtype=np.float64)


def linear(num_steps: int) -> Schedule:
    """``N + 1`` evenly spaced values from 1 to 0 (Open-Sora with ``shift=False``; rectified-flow default)."""
    num_steps = positive_int("num_steps", num_steps)
    return Schedule(_grid(num_steps), name="linear", params={"num_steps": num_steps})


def shifted(num_steps: int, alpha: float) -> Schedule:
    """``time_shift(linspace(1, 0, N + 1), alpha)``: a static shift (SD3's ``shift``, Wan's ``flow_shift``)."""
    num_steps = positive_int("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    params = {"num_steps": num_steps, "alpha": alpha}
    return Schedule(time_shift(_grid(num_steps), alpha), name="shifted", params=params)


def opensora(
    num_steps: int,
    image_seq_len: int,
    num_frames: int,
    shift_alpha: float | None = None,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
    shift: bool = True,
) -> Schedule:
    """Open-Sora 2.0's ``get_schedule`` in float64 (agrees with the float32 original to about 1e-7).

    Args:
        num_steps: sampler steps ``N``.
        image_seq_len: tokens of ONE latent frame, ``(H_lat / p) * (W_lat / p)``.
        num_frames: LATENT frames ``T'``.
        shift_alpha: if given, the shift itself (overrides the rule, including its ``sqrt(T')`` factor).
        base_shift, max_shift: the rule's line through ``(256, base_shift)`` and ``(4096, max_shift)``.
        shift: ``False`` gives the plain linear grid.
    """
    num_steps = positive_int("num_steps", num_steps)
    image_seq_len = positive_int("image_seq_len", image_seq_len)
    num_frames = positive_int("num_frames", num_frames)
    if not isinstance(shift, bool):
        raise TypeError(f"shift must be True or False, got {shift!r}")
    params = {
        "num_steps": num_steps,
        "image_seq_len": image_seq_len,
        "num_frames": num_frames,
        "shift": shift,
    }
    if not shift:
        return Schedule(_grid(num_steps), name="opensora", params={**params, "alpha": 1.0})
    if shift_alpha is None:
        alpha = opensora_alpha(image_seq_len, num_frames, base_shift, max_shift)
        params.update(base_shift=float(base_shift), max_shift=float(max_shift))
    else:
        alpha = positive_real("shift_alpha", shift_alpha)
        params.update(shift_alpha=alpha)
    params["alpha"] = alpha
    return Schedule(time_shift(_grid(num_steps), alpha), name="opensora", params=params)


# ==========================================================================================================
# Peer families. Every function below returns a Schedule whose ``t`` is float64 and holds ``N + 1`` values,
# the last being the terminal value (0, or 1 for diffusers' ``invert_sigmas``). "Model evaluation points" are
# the first ``N`` values.
# ==========================================================================================================


def _schedule(t: np.ndarray, name: str, params: dict) -> Schedule:
    """Build a Schedule, turning a non-monotone result into an error that says which parameters caused it."""
    try:
        return Schedule(np.asarray(t, dtype=np.float64), name=name, params=params)
    except ValueError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "sigmas")
        raise ValueError(f"{name}({shown}) does not give a usable schedule: {exc}") from None


def _bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _unit_open(name: str, value) -> float:
    """A number in (0, 1)."""
    value = real(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def _endpoints(t_max, t_min) -> tuple[float, float]:
    t_max, t_min = real("t_max", t_max), real("t_min", t_min)
    if not 0.0 < t_min < t_max <= 1.0:
        raise ValueError(
            f"need 0 < t_min < t_max <= 1 (t = 1 is noise, t = 0 data), got t_max={t_max}, t_min={t_min}"
        )
    return t_max, t_min


def _with_zero(values: np.ndarray, terminal: float = 0.0) -> np.ndarray:
    return np.concatenate([np.asarray(values, dtype=np.float64), [terminal]])


# -- base grids ----------------------------------------------------------------------------------------------

#: Named evenly spaced grids: ``(start, stop, endpoint)`` for :func:`grid`. ``N`` model evaluation points are
#: ``numpy.linspace(start, stop, N, endpoint=endpoint)``, then the terminal 0.
GRIDS: dict[str, tuple[float, float, bool]] = {
    # BFL Flux / Open-Sora 2.0 / HunyuanVideo / ComfyUI "simple": linspace(1, 0, N+1) == linspace(1, 1/N, N) + [0].
    "linear": (1.0, 0.0, False),
    # Wan 2.1/2.2 original FlowUniPCMultistepScheduler (sigma_max = 0.999, sigma_min = 0) and diffusers'
    # DPMSolverMultistepScheduler with use_flow_sigmas (1 - linspace(1, 1/1000, N+1), flipped): same points.
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
    Shift the result with :func:`warp` or :func:`warp_mu`. Sources: the peers' ``set_timesteps`` as summarised
    in the reference notes (diffusers 0.42.1, Wan2.1 ``fm_solvers_unipc.py``).
    """
    num_steps = positive_int("num_steps", num_steps)
    if kind not in GRIDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, GRIDS))}; got {kind!r}")
    d_start, d_stop, d_endpoint = GRIDS[kind]
    start = d_start if start is None else real("start", start)
    stop = d_stop if stop is None else real("stop", stop)
    endpoint = d_endpoint if endpoint is None else _bool("endpoint", endpoint)
    if not 0.0 <= stop < start <= 1.0:
        raise ValueError(f"need 0 <= stop < start <= 1, got start={start}, stop={stop}")
    if endpoint and stop == 0.0 and num_steps > 1:
        raise ValueError("stop=0 with endpoint=True would evaluate the model at t=0; use endpoint=False")
    points = np.linspace(start, stop, num_steps, endpoint=endpoint, dtype=np.float64)
    params = {"num_steps": num_steps, "kind": kind, "start": start, "stop": stop, "endpoint": endpoint}
    return _schedule(_with_zero(points), "grid", params)


def diffusers_default(
    num_steps: int,
    alpha: float = 1.0,
    *,
    num_train_timesteps: int = 1000,
    double_shift: bool = False,
) -> Schedule:
    """diffusers' FlowMatchEulerDiscreteScheduler default path (static ``shift``, no custom sigmas): ``N``
    points from 1 down to ``sigma_min``, shifted by ``alpha``, then 0.

    diffusers takes ``sigma_min`` from its training grid *after* shifting it, then shifts the whole grid again,
    so its last point is ``shift(shift(1/T))`` (0.008929 for alpha 3, instead of 0.002994; diffusers issue
    #13243; ComfyUI's ``normal`` scheduler and SD3's reference sampler do the same). ``double_shift=True``
    reproduces that; the default is the single-shift grid ``shift(linspace(1, 1/T, N))``.
    ``T = num_train_timesteps``. Source: diffusers 0.42.1 ``scheduling_flow_match_euler_discrete.py``.
    """
    num_steps = positive_int("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    num_train_timesteps = positive_int("num_train_timesteps", num_train_timesteps)
    if num_train_timesteps < 2:
        raise ValueError("num_train_timesteps must be >= 2 for the default grid (with 1 it collapses to t = 1)")
    double_shift = _bool("double_shift", double_shift)
    t_min = 1.0 / num_train_timesteps
    if double_shift:
        t_min = float(time_shift(t_min, alpha))
    points = time_shift(np.linspace(1.0, t_min, num_steps), alpha)
    params = {
        "num_steps": num_steps,
        "alpha": alpha,
        "num_train_timesteps": num_train_timesteps,
        "double_shift": double_shift,
    }
    return _schedule(_with_zero(points), "diffusers_default", params)


# -- warps (Schedule -> Schedule) -------------------------------------------------------------------------------


def _need_schedule(schedule) -> None:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a flowsched Schedule, got {type(schedule).__name__}")


def _warped(schedule: Schedule, t: np.ndarray, label: str, extra: dict) -> Schedule:
    params = dict(schedule.params)
    params["warps"] = [*params.get("warps", []), label]
    params.update(extra)
    return _schedule(t, schedule.name, params)


def _exp_shift(t: np.ndarray, a: float, sigma: float) -> np.ndarray:
    """``a / (a + (1/t - 1)**sigma)`` with 0 -> 0 (peers never evaluate it at 0, or get 0 from 1/0 = inf)."""
    out = np.zeros_like(t)
    nz = t > 0
    out[nz] = a / (a + (1.0 / t[nz] - 1.0) ** sigma)
    return out


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
    mu = real("mu", mu)
    sigma = positive_real("sigma", sigma)
    if time_shift_type not in ("exponential", "linear"):
        raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {time_shift_type!r}")
    if time_shift_type == "linear" and mu <= 0:
        raise ValueError(f"mu must be > 0 with time_shift_type='linear' (alpha = mu), got {mu}")
    a = math.exp(mu) if time_shift_type == "exponential" else mu
    _need_schedule(schedule)
    extra = {"mu": mu, "time_shift_type": time_shift_type}
    if sigma == 1.0:
        extra["alpha"] = a
    else:
        extra["sigma"] = sigma
    return _warped(schedule, _exp_shift(schedule.t, a, sigma), f"mu={mu:g}({time_shift_type})", extra)


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
    terminal = _unit_open("terminal", terminal)
    _need_schedule(schedule)
    return _warped(schedule, _stretch(schedule.t, terminal), f"terminal={terminal:g}", {"shift_terminal": terminal})


def invert(schedule: Schedule) -> Schedule:
    """``1 - t``: the schedule in Mochi's convention (diffusers ``invert_sigmas``: t = 0 is noise, values
    increase to 1). Source: genmo mochi ``infer.py``; diffusers FlowMatchEulerDiscreteScheduler."""
    _need_schedule(schedule)
    return _warped(schedule, 1.0 - schedule.t, "invert", {"inverted": True})


# -- resolution rules (numbers, not schedules) --------------------------------------------------------------


def _line(x: float, x1: float, y1: float, x2: float, y2: float, clamp: bool) -> float:
    if clamp:
        x = min(max(x, min(x1, x2)), max(x1, x2))
    return linear_function(x1, y1, x2, y2)(x)


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
        _bool("clamp", clamp),
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
    if _bool("clamp", clamp):
        image_seq_len = min(max(image_seq_len, base_seq_len), max_seq_len)
    return math.sqrt(image_seq_len / base_seq_len) * real("max_shift", max_shift) + real("base_shift", base_shift)


# -- model rules as schedules --------------------------------------------------------------------------------


def flux(
    num_steps: int,
    image_seq_len: int,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
    shift: bool = True,
) -> Schedule:
    """Black Forest Labs' ``get_schedule``: ``linspace(1, 0, N + 1)`` warped with ``mu = flux_mu(image_seq_len)``
    (``alpha = exp(mu)``); ``shift=False`` (FLUX.1-schnell) keeps the linear grid.

    ``image_seq_len`` is the packed token count ``(H / 16) * (W / 16)``. float64; BFL computes in float32 and
    the two agree to about 1e-7. Source: black-forest-labs/flux ``src/flux/sampling.py``.
    """
    num_steps = positive_int("num_steps", num_steps)
    mu = flux_mu(image_seq_len, base_shift, max_shift)
    shift = _bool("shift", shift)
    params = {"num_steps": num_steps, "image_seq_len": int(image_seq_len), "shift": shift}
    if not shift:
        return _schedule(_grid(num_steps), "flux", {**params, "alpha": 1.0})
    params.update(base_shift=float(base_shift), max_shift=float(max_shift), mu=mu, alpha=math.exp(mu))
    return _schedule(_exp_shift(_grid(num_steps), math.exp(mu), 1.0), "flux", params)


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
    num_steps = positive_int("num_steps", num_steps)
    mu = flux_mu(seq_len, base_shift, max_shift, base_seq_len, max_seq_len, clamp=clamp)
    t = _exp_shift(_grid(num_steps), math.exp(mu), 1.0)
    params = {"num_steps": num_steps, "seq_len": int(seq_len), "mu": mu, "alpha": math.exp(mu), "clamp": clamp}
    if terminal is not None:
        terminal = _unit_open("terminal", terminal)
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

    The model is fed the UNshifted integer timesteps (diffusers 0.42.1 keeps them), not ``t * 1000``.
    Source: diffusers ``pipeline_cogview4.py`` (``calculate_shift``, timesteps) and its scheduler config.
    """
    num_steps = positive_int("num_steps", num_steps)
    if mu is None:
        mu = cogview4_mu(image_seq_len, base_shift, max_shift, base_seq_len, clamp=clamp)
    else:
        mu = positive_real("mu", mu)
    base = np.floor(np.linspace(1000.0, 1.0, num_steps)) / 1000.0
    params = {
        "num_steps": num_steps,
        "image_seq_len": int(image_seq_len),
        "mu": mu,
        "time_shift_type": "linear",
        "alpha": mu,
        "clamp": clamp,
    }
    return _schedule(_with_zero(_exp_shift(base, mu, 1.0)), "cogview4", params)


# -- noise-level families between two endpoints ----------------------------------------------------------------


def _pin_ends(points: np.ndarray, t_max: float, t_min: float) -> np.ndarray:
    """Put the end points exactly where asked (``tan(atan(1))`` is 0.9999999999999999)."""
    points[0] = t_max
    if points.size > 1:
        points[-1] = t_min
    return points


def karras(num_steps: int, t_max: float = 1.0, t_min: float = 0.001, rho: float = 7.0) -> Schedule:
    """Karras et al. 2022 (EDM, eq. 5): ``(t_max^(1/rho) + r (t_min^(1/rho) - t_max^(1/rho)))^rho`` for
    ``r = linspace(0, 1, N)``, then 0. diffusers' ``use_karras_sigmas`` uses the shifted grid's endpoints."""
    num_steps = positive_int("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    rho = positive_real("rho", rho)
    r = np.linspace(0.0, 1.0, num_steps)
    hi, lo = t_max ** (1.0 / rho), t_min ** (1.0 / rho)
    params = {"num_steps": num_steps, "t_max": t_max, "t_min": t_min, "rho": rho}
    return _schedule(_with_zero(_pin_ends((hi + r * (lo - hi)) ** rho, t_max, t_min)), "karras", params)


def exponential(num_steps: int, t_max: float = 1.0, t_min: float = 0.001) -> Schedule:
    """Log-uniform points ``exp(linspace(log t_max, log t_min, N))``, then 0 (k-diffusion
    ``get_sigmas_exponential``; diffusers ``use_exponential_sigmas``)."""
    num_steps = positive_int("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    points = _pin_ends(np.exp(np.linspace(math.log(t_max), math.log(t_min), num_steps)), t_max, t_min)
    return _schedule(_with_zero(points), "exponential", {"num_steps": num_steps, "t_max": t_max, "t_min": t_min})


def beta(num_steps: int, t_max: float = 1.0, t_min: float = 0.001, a: float = 0.6, b: float = 0.6) -> Schedule:
    """Beta-quantile points ``t_min + F^-1(1 - linspace(0, 1, N)) (t_max - t_min)`` with ``F`` the Beta(a, b)
    CDF, then 0. Source: Lee et al. 2024, "Beta Sampling is All You Need" (arXiv 2407.12173); diffusers
    ``use_beta_sigmas``. Needs scipy (``pip install 'flowsched[quality]'``)."""
    num_steps = positive_int("num_steps", num_steps)
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
    (arXiv 2404.14507), as ComfyUI's ``kl_optimal`` scheduler uses it."""
    num_steps = positive_int("num_steps", num_steps)
    t_max, t_min = _endpoints(t_max, t_min)
    r = np.linspace(0.0, 1.0, num_steps) if num_steps > 1 else np.zeros(1)
    points = _pin_ends(np.tan(r * math.atan(t_min) + (1.0 - r) * math.atan(t_max)), t_max, t_min)
    return _schedule(_with_zero(points), "kl_optimal", {"num_steps": num_steps, "t_max": t_max, "t_min": t_min})


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
    num_steps = positive_int("num_steps", num_steps)
    threshold_noise = _unit_open("threshold_noise", threshold_noise)
    if variant not in ("mochi", "comfyui"):
        raise ValueError(f"variant must be 'mochi' or 'comfyui', got {variant!r}")
    t_max = real("t_max", t_max)
    if variant == "mochi" and t_max != 1.0:
        raise ValueError(f"t_max only applies to variant='comfyui'; variant='mochi' starts at 1, got t_max={t_max}")
    if not 0.0 < t_max <= 1.0:
        raise ValueError(f"t_max must be in (0, 1], got {t_max}")
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
    quad = num_steps - lin
    i = np.arange(num_steps, dtype=np.float64)
    # quadratic q(i) = qc * i^2 + lc * i + c with q(L) = threshold_noise and q(N) = 1, tangent-free join
    d = lin - threshold_noise * num_steps
    qc = d / (lin * quad**2)
    lc = threshold_noise / lin - 2.0 * d / quad**2
    c = qc * lin**2
    u = np.where(i < lin, i * threshold_noise / lin, qc * i**2 + lc * i + c)
    params["linear_steps"] = lin
    return _schedule(_with_zero((1.0 - u) * t_max), "linear_quadratic", params)


# -- user schedules ----------------------------------------------------------------------------------------------


def from_list(values, *, append_zero: bool = False, name: str = "custom") -> Schedule:
    """A user schedule: ``N + 1`` values of ``t`` in [0, 1], strictly decreasing from noise (normally 1) to data
    (normally 0). ``append_zero=True`` takes the ``N`` model evaluation points (diffusers' ``sigmas=`` list,
    without the terminal) and appends 0."""
    append_zero = _bool("append_zero", append_zero)
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"values must be a list of numbers, got {values!r:.80}") from None
    if arr.ndim != 1:
        raise ValueError(f"values must be a flat list of numbers, got shape {arr.shape}")
    _check_decreasing("values", arr, allow_zero_last=not append_zero)
    if append_zero:
        arr = _with_zero(arr)
    if arr.size < 2:
        raise ValueError(f"values must hold at least 2 numbers (one step from noise to data), got {arr.size}")
    return _schedule(arr, name, {"num_steps": int(arr.size - 1)})


def _check_decreasing(name: str, arr: np.ndarray, *, allow_zero_last: bool) -> None:
    """Custom lists: finite, in [0, 1] ((0, 1] when a terminal 0 is appended later), strictly decreasing."""
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {float(arr[bad[0]])} at index {bad[0]}")
    low = 0.0
    out = np.flatnonzero((arr < low) | (arr > 1.0) | ((arr == 0.0) & (np.arange(arr.size) < arr.size - 1)))
    if not allow_zero_last:
        out = np.flatnonzero((arr <= 0.0) | (arr > 1.0))
    if out.size:
        i = int(out[0])
        what = "(0, 1] (the terminal 0 is appended for you)" if not allow_zero_last else "[0, 1], 0 only last"
        raise ValueError(f"{name} must lie in {what} (t = 1 is noise, t = 0 data); got {float(arr[i])!r} at index {i}")
    d = np.diff(arr)
    if np.any(d >= 0):
        i = int(np.flatnonzero(d >= 0)[0])
        raise ValueError(
            f"{name} must be strictly decreasing (from noise t = 1 towards data t = 0); {name}[{i}]="
            f"{float(arr[i])!r} is followed by {name}[{i + 1}]={float(arr[i + 1])!r}. Sort it in descending order "
            "and drop repeats."
        )


def loglinear_interp(schedule: Schedule | list, num_steps: int) -> Schedule:
    """Re-sample a shipped schedule to ``num_steps``: its model evaluation points (all values but the terminal)
    are interpolated linearly in ``log t`` against their normalised index, keeping both end points; the original
    terminal value is appended. A list is read as ``N + 1`` values ending in the terminal (see :func:`from_list`).
    Source: Sabour et al. 2024 "Align Your Steps" ``loglinear_interp`` (as in ComfyUI's AYS scheduler)."""
    num_steps = positive_int("num_steps", num_steps)
    if not isinstance(schedule, Schedule):
        schedule = from_list(schedule)
    t = schedule.t
    if t[0] < t[-1]:
        raise ValueError("loglinear_interp needs a decreasing schedule; invert() an inverted one first")
    points = t[:-1]
    if points.size == 1:
        new = np.full(1, points[0])
    else:
        xs = np.linspace(0.0, 1.0, points.size)
        new = np.exp(np.interp(np.linspace(0.0, 1.0, num_steps), xs, np.log(points)))
        new[0], new[-1] = points[0], points[-1]  # exact end points despite exp(log(x))
        if num_steps == 1:
            new = points[:1].copy()
    params = {"num_steps": num_steps, "source_name": schedule.name, "source_steps": schedule.num_steps}
    return _schedule(_with_zero(new, float(t[-1])), "loglinear_interp", params)


# -- diffusers FlowMatchEulerDiscreteScheduler, option for option -------------------------------------------------

#: FlowMatchEulerDiscreteScheduler's config keys and defaults (diffusers 0.42.1). ``base_shift``, ``max_shift``,
#: ``base_image_seq_len``, ``max_image_seq_len`` and ``stochastic_sampling`` do not change ``set_timesteps``;
#: they are accepted so ``flow_match_euler(n, **scheduler.config, mu=...)`` works.
FLOW_MATCH_EULER_CONFIG: dict[str, object] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": False,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "invert_sigmas": False,
    "shift_terminal": None,
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "time_shift_type": "exponential",
    "stochastic_sampling": False,
}


def _custom_list(name: str, values) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a list of numbers, got {values!r:.80}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat list of numbers, got shape {arr.shape}")
    return arr


def _f32_shift(t: np.float32, alpha: float) -> float:
    """diffusers' float32 static shift of one training-grid value (``sigma_min``/``sigma_max`` come from it)."""
    a = np.float32(alpha)
    return float(a * t / (np.float32(1.0) + np.float32(alpha - 1.0) * t))


def flow_match_euler(
    num_steps: int | None = None,
    *,
    mu: float | None = None,
    sigmas=None,
    timesteps=None,
    **config,
) -> Schedule:
    """The sigmas diffusers' ``FlowMatchEulerDiscreteScheduler(**config).set_timesteps(num_steps, mu=mu,
    sigmas=sigmas, timesteps=timesteps)`` produces (diffusers 0.42.1), ``N + 1`` values including the appended
    terminal.

    Every config option is honoured: ``shift`` (static; applied to the default grid AND to custom ``sigmas``),
    ``use_dynamic_shifting`` with ``mu`` and ``time_shift_type`` (``"exponential"``: ``alpha = exp(mu)``;
    ``"linear"``: ``alpha = mu``), ``shift_terminal`` (LTX stretch), ``use_karras_sigmas`` /
    ``use_exponential_sigmas`` / ``use_beta_sigmas`` (re-spaced between the shifted end points),
    ``invert_sigmas`` (Mochi: values ``1 - sigma`` increasing to a terminal 1) and ``num_train_timesteps``.
    The default grid reproduces diffusers' double-shifted tail (``params["double_shift"]`` says when;
    see :func:`diffusers_default` for the single-shift variant).

    Precision: computed in float64; diffusers returns float32, so ``schedule.t.astype(numpy.float32)`` equals its
    ``scheduler.sigmas`` to within float32 rounding (well inside 1e-6). Its ``timesteps`` are
    ``schedule.model_timesteps(config num_train_timesteps)``.

    Args:
        num_steps: ``num_inference_steps``; may be None when ``sigmas`` is given (then ``len(sigmas)``).
        mu: required when ``use_dynamic_shifting=True`` (ignored otherwise, as in diffusers).
        sigmas: custom model evaluation points (``N`` values, no terminal), strictly decreasing in (0, 1].
        timesteps: custom model timesteps; without ``sigmas`` the sigmas are ``timesteps / num_train_timesteps``
            (then shifted, as in diffusers). diffusers 0.42.1 feeds these timesteps to the model as given
            (CogView4 relies on it); they are kept in ``params["timesteps"]``.
        **config: FlowMatchEulerDiscreteScheduler config keys (:data:`FLOW_MATCH_EULER_CONFIG`); keys starting
            with ``_`` (``_class_name``...) are ignored so a saved ``scheduler_config.json`` can be passed.
    """
    config.pop("device", None)  # set_timesteps' device: irrelevant to the values
    if "num_inference_steps" in config:  # diffusers' name for num_steps
        alias = config.pop("num_inference_steps")
        if num_steps is not None and alias != num_steps:
            raise ValueError(f"num_steps={num_steps} and num_inference_steps={alias} disagree; pass one of them")
        num_steps = alias
    cfg = dict(FLOW_MATCH_EULER_CONFIG)
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if key not in cfg:
            from ._validate import closest

            hint = closest(key, list(cfg))
            did = f" Did you mean {hint!r}?" if hint else ""
            raise TypeError(f"{key!r} is not a FlowMatchEulerDiscreteScheduler config option.{did}")
        cfg[key] = value
    T = positive_int("num_train_timesteps", cfg["num_train_timesteps"])
    shift = positive_real("shift", cfg["shift"])
    dynamic = _bool("use_dynamic_shifting", cfg["use_dynamic_shifting"])
    invert_sigmas = _bool("invert_sigmas", cfg["invert_sigmas"])
    flags = {k: _bool(k, cfg[k]) for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")}
    if sum(flags.values()) > 1:
        on = [k for k, v in flags.items() if v]
        raise ValueError(
            f"{' and '.join(on)} are mutually exclusive: set at most one of use_karras_sigmas, "
            "use_exponential_sigmas, use_beta_sigmas to True"
        )
    kind = cfg["time_shift_type"]
    if kind not in ("exponential", "linear"):
        raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {kind!r}")
    terminal = cfg["shift_terminal"]
    if terminal is not None and terminal != 0:  # diffusers treats 0 / None as "off"
        terminal = _unit_open("shift_terminal", terminal)
    else:
        terminal = None
    if dynamic and mu is None:
        raise ValueError(
            "mu must be passed when use_dynamic_shifting=True (diffusers raises too): compute it from the token "
            "count, e.g. mu=flowsched.schedules.flux_mu(image_seq_len), or set use_dynamic_shifting=False"
        )
    if dynamic:
        mu = real("mu", mu)
        if kind == "linear" and mu <= 0:
            raise ValueError(f"mu must be > 0 with time_shift_type='linear' (alpha = mu), got {mu}")

    params: dict = {"num_train_timesteps": T}
    if timesteps is not None:
        custom_ts = _custom_list("timesteps", timesteps)
        if sigmas is not None and len(np.ravel(sigmas)) != custom_ts.size:
            raise ValueError(
                f"sigmas and timesteps must have the same length, got {len(np.ravel(sigmas))} and {custom_ts.size}"
            )
        params["timesteps"] = [float(x) for x in custom_ts]
        if sigmas is None:
            sigmas = custom_ts.astype(np.float32) / np.float32(T)  # diffusers: float32 timesteps / T
    if sigmas is not None:
        base = _custom_list("sigmas", sigmas)
        _check_decreasing("sigmas", base, allow_zero_last=False)
        if num_steps is not None and positive_int("num_steps", num_steps) != base.size:
            raise ValueError(
                f"num_steps={num_steps} but sigmas (or timesteps) hold {base.size} values; they must match (or "
                "pass num_steps=None). They are the N model evaluation points, without the terminal"
            )
        num_steps = int(base.size)
        params["sigmas"] = [float(x) for x in base]
    else:
        if num_steps is None:
            raise ValueError("num_steps must be given when sigmas is not (diffusers' num_inference_steps)")
        num_steps = positive_int("num_steps", num_steps)
        if T < 2:
            raise ValueError(
                f"num_train_timesteps={T} makes the default grid collapse to t = 1 (diffusers then returns "
                "repeated sigmas); pass explicit sigmas, e.g. numpy.linspace(1, 1/N, N)"
            )
        # __init__: training grid k/T, statically shifted unless dynamic; sigma_max/sigma_min kept (float32).
        lo = np.float32(np.float32(1.0) / np.float32(T))
        s_max, s_min = (1.0, float(lo)) if dynamic else (min(_f32_shift(np.float32(1.0), shift), 1.0),
                                                         _f32_shift(lo, shift))
        base = np.linspace(s_max * T, s_min * T, num_steps) / T
        params["double_shift"] = not dynamic and shift != 1.0
    params["num_steps"] = num_steps

    if dynamic:
        a = math.exp(mu) if kind == "exponential" else mu
        t = _exp_shift(base, a, 1.0)
        params.update(mu=mu, time_shift_type=kind, alpha=a)
    else:
        t = time_shift(base, shift)
        params["alpha"] = shift
    if terminal is not None:
        t = _stretch(t, terminal)
        params["shift_terminal"] = terminal
    if any(flags.values()):
        # re-spaced between the shifted end points; with one step only the first survives
        fam = next(k for k, v in flags.items() if v)[4:-7]
        if num_steps > 1:
            spaced = {"karras": karras, "exponential": exponential, "beta": beta}[fam]
            t = spaced(num_steps, min(float(t[0]), 1.0), float(t[-1])).t[:-1]
        params["spacing"] = fam
    t = np.clip(t, 0.0, 1.0)
    if invert_sigmas:
        t = _with_zero(1.0 - t, 1.0)
        params["inverted"] = True
    else:
        t = _with_zero(t)
    return _schedule(t, "flow_match_euler", params)


# -- schedule specs: one text form for the CLI, plots and configs ---------------------------------------------------

#: Families reachable from :func:`from_spec` by name.
FAMILIES: dict[str, object] = {
    "linear": linear,
    "shifted": shifted,
    "opensora": opensora,
    "grid": grid,
    "diffusers_default": diffusers_default,
    "flow_match_euler": flow_match_euler,
    "flux": flux,
    "ltx": ltx,
    "cogview4": cogview4,
    "karras": karras,
    "exponential": exponential,
    "beta": beta,
    "kl_optimal": kl_optimal,
    "linear_quadratic": linear_quadratic,
}

_ALIASES = {"steps": "num_steps", "n": "num_steps"}


def _spec_value(text: str):
    """``30`` -> int, ``3.5`` -> float, ``true``/``false``/``none``, ``1;0.5;0.2`` -> list of floats, else str."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if ";" in text:
        return [float(_spec_value(x)) for x in text.split(";") if x.strip()]
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def _spec_kwargs(spec: str, body: str) -> dict:
    out: dict = {}
    for item in filter(None, (x.strip() for x in body.split(","))):
        if "=" not in item:
            raise ValueError(f"schedule spec {spec!r}: expected key=value, got {item!r}")
        key, value = (x.strip() for x in item.split("=", 1))
        key = _ALIASES.get(key, key)
        if key in out:
            raise ValueError(f"schedule spec {spec!r}: {key!r} is given twice")
        try:
            out[key] = _spec_value(value)
        except ValueError:
            raise ValueError(f"schedule spec {spec!r}: {key}={value!r} is not a list of numbers") from None
    return out


def from_spec(text: str, *, num_steps: int | None = None) -> Schedule:
    """Build a schedule from one line of text (what ``flowsched compare`` and ``flowsched plot`` accept).

    Forms:
        * ``FAMILY:key=value,...`` -- a family of :data:`FAMILIES` with keyword arguments, e.g.
          ``shifted:alpha=3,steps=30``, ``flux:steps=28,image_seq_len=4096``,
          ``flow_match_euler:steps=28,shift=3``, ``karras:steps=20,t_min=0.002``. ``steps`` means
          ``num_steps``; values are numbers, ``true``/``false``/``none``, strings, or ``;``-separated number
          lists (``sigmas=1;0.6;0.3``). A bare ``FAMILY`` uses its defaults.
        * ``PRESET`` or ``preset:PRESET`` then optional ``,key=value`` (or ``PRESET:key=value,...``) -- a model
          preset (``flowsched presets``) at its default size, with overrides ``steps``, ``height``, ``width``,
          ``frames``, ``shift_alpha`` and ``shift``; e.g. ``wan2.1-t2v-480p:steps=30``.
        * a path to a JSON file written by :meth:`Schedule.to_json` (or holding a bare list of ``t`` values),
          or inline JSON: ``[1, 0.7, 0.3, 0]``.

    ``num_steps`` is used when the spec does not say ``steps`` (families and presets alike).
    Raises ValueError naming the spec and what is accepted.
    """
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"a schedule spec must be a non-empty string, got {text!r}")
    text = text.strip()
    if num_steps is not None:
        num_steps = positive_int("num_steps", num_steps)
    if text[0] in "[{":
        return Schedule.from_json(text)
    import os

    if text.lower().endswith(".json") or os.path.isfile(text):
        return Schedule.from_json(text)
    head, _, body = text.partition(":")
    head = head.strip()
    if head == "preset":
        name, _, body = body.partition(",")
        return _preset_from_spec(text, name.strip(), _spec_kwargs(text, body), num_steps)
    if head in FAMILIES:
        return _family_from_spec(text, head, _spec_kwargs(text, body), num_steps)
    from . import presets  # presets sit above schedules; imported only for preset specs

    if head in presets.PRESETS:
        return _preset_from_spec(text, head, _spec_kwargs(text, body), num_steps)
    hint = closest(head, [*FAMILIES, *presets.PRESETS])
    did = f" Did you mean {hint!r}?" if hint else ""
    raise ValueError(
        f"schedule spec {text!r}: {head!r} is neither a family nor a preset.{did} Families: "
        f"{', '.join(FAMILIES)}; presets: `flowsched presets`; or give a JSON file"
    )


def _family_from_spec(spec: str, name: str, kwargs: dict, num_steps: int | None) -> Schedule:
    import inspect

    func = FAMILIES[name]
    sig = inspect.signature(func)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if "num_steps" in sig.parameters and "num_steps" not in kwargs and num_steps is not None:
        kwargs["num_steps"] = num_steps
    if not accepts_any:
        unknown = [k for k in kwargs if k not in sig.parameters]
        if unknown:
            raise ValueError(
                f"schedule spec {spec!r}: {name} takes no parameter {unknown[0]!r}; it accepts "
                f"{', '.join(sig.parameters)} (steps = num_steps)"
            )
    missing = [
        p.name for p in sig.parameters.values()
        if p.default is p.empty and p.kind is not p.VAR_KEYWORD and p.name not in kwargs
    ]
    if missing:
        raise ValueError(f"schedule spec {spec!r}: {name} needs {', '.join(missing)} (e.g. {name}:"
                         f"{','.join(f'{m}=...' for m in missing)})")
    return func(**kwargs)


def _preset_from_spec(spec: str, name: str, kwargs: dict, num_steps: int | None) -> Schedule:
    from . import presets

    preset = presets.get_preset(name)
    allowed = ("num_steps", "height", "width", "frames", "shift_alpha", "shift")
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise ValueError(
            f"schedule spec {spec!r}: a preset accepts steps, height, width, frames, shift_alpha and shift; "
            f"got {unknown[0]!r}"
        )
    geometry = preset.geometry(kwargs.get("height"), kwargs.get("width"), kwargs.get("frames"))
    return preset.schedule(
        geometry,
        kwargs.get("num_steps", num_steps),
        shift=kwargs.get("shift", True),
        shift_alpha=kwargs.get("shift_alpha"),
    )
