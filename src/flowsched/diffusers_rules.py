"""diffusers' scheduler configs as schedule families: what a diffusers scheduler computes for a config, re-implemented
on flowsched's families (numpy only; diffusers need not be installed).

- :func:`flow_match_euler`: ``FlowMatchEulerDiscreteScheduler(**config).set_timesteps(...)``, every option.
- :func:`diffusers_default`: its default path alone, with or without the double-shifted tail.
- :func:`flow_sigmas`: UniPC / DPM-Solver++ with ``use_flow_sigmas`` (Wan, Sana) and Wan's own UniPC, with the
  integer timesteps they feed the model.

Source for every rule: diffusers 0.42.1 (``schedulers/scheduling_flow_match_euler_discrete.py`` and the pipelines
named in each docstring). Conventions: docs/conventions.md (diffusers' *sigma* is flowsched's ``t``).
"""

from __future__ import annotations

import numpy as np

from ._limits import step_count
from ._validate import boolean, closest, positive_real, real, unit_open
from .schedule import Schedule, check_t
from .schedules import beta, exponential, from_list, invert, karras, stretch_to_terminal, warp, warp_mu
from .shift import TIME_SHIFT_TYPES, alpha_from_mu, time_shift, time_shift_peer

__all__ = ["FLOW_MATCH_EULER_CONFIG", "SOLVERS", "diffusers_default", "flow_match_euler", "flow_sigmas"]

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

_SPACINGS = {"use_karras_sigmas": karras, "use_exponential_sigmas": exponential, "use_beta_sigmas": beta}


def diffusers_default(
    num_steps: int,
    alpha: float = 1.0,
    *,
    num_train_timesteps: int = 1000,
    double_shift: bool = False,
) -> Schedule:
    """FlowMatchEulerDiscreteScheduler's default path (static ``shift``, no custom sigmas): ``N`` points from 1 down
    to ``sigma_min``, shifted by ``alpha``, then 0.

    diffusers takes ``sigma_min`` from its training grid *after* shifting it, then shifts the whole grid again,
    so its last point is ``shift(shift(1/T))`` (0.008929 for alpha 3, instead of 0.002994; diffusers issue
    #13243; ComfyUI's ``normal`` scheduler and SD3's reference sampler do the same). ``double_shift=True``
    reproduces that; the default is the single-shift grid ``shift(linspace(1, 1/T, N))``.
    ``T = num_train_timesteps``.
    """
    num_steps = step_count("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    num_train_timesteps = step_count("num_train_timesteps", num_train_timesteps)
    if num_train_timesteps < 2:
        raise ValueError("num_train_timesteps must be >= 2 for the default grid (with 1 it collapses to t = 1)")
    double_shift = boolean("double_shift", double_shift)
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
    return _built("diffusers_default", params, lambda: from_list(points, append_zero=True).t)


def _built(name: str, params: dict, make, timesteps=None) -> Schedule:
    """``Schedule(make(), name, params)``, an unusable result (values that collapse, a stretch with one step)
    reported with the parameters that caused it."""
    try:
        return Schedule(make(), name=name, params=params, timesteps=timesteps)
    except ValueError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in ("sigmas", "timesteps"))
        raise ValueError(f"{name}({shown}) does not give a usable schedule: {exc}") from None


def _timesteps_list(values) -> np.ndarray:
    """Custom model timesteps: ``N`` finite numbers >= 0 (diffusers keeps them as float32)."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"timesteps must be a list of numbers, got {values!r:.80}") from None
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"timesteps must be a flat, non-empty list of finite numbers >= 0, got {values!r:.80}")
    return arr


def _config(config: dict) -> dict:
    """FLOW_MATCH_EULER_CONFIG updated with ``config``: unknown keys refused, ``_``-keys ignored, values checked."""
    cfg = dict(FLOW_MATCH_EULER_CONFIG)
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if key not in cfg:
            hint = closest(key, list(cfg))
            did = f" Did you mean {hint!r}?" if hint else ""
            raise TypeError(f"{key!r} is not a FlowMatchEulerDiscreteScheduler config option.{did}")
        cfg[key] = value
    cfg["num_train_timesteps"] = step_count("num_train_timesteps", cfg["num_train_timesteps"])
    cfg["shift"] = positive_real("shift", cfg["shift"])
    for key in ("use_dynamic_shifting", "invert_sigmas", *_SPACINGS):
        cfg[key] = boolean(key, cfg[key])
    on = [k for k in _SPACINGS if cfg[k]]
    if len(on) > 1:
        raise ValueError(
            f"{' and '.join(on)} are mutually exclusive: set at most one of use_karras_sigmas, "
            "use_exponential_sigmas, use_beta_sigmas to True"
        )
    if cfg["time_shift_type"] not in TIME_SHIFT_TYPES:
        raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {cfg['time_shift_type']!r}")
    terminal = cfg["shift_terminal"]  # diffusers treats 0 / None as "off"
    cfg["shift_terminal"] = unit_open("shift_terminal", terminal) if terminal is not None and terminal != 0 else None
    return cfg


def _num_inference_steps(num_steps: int | None, config: dict) -> int | None:
    """``num_steps``, or diffusers' name for it in ``config`` (popped, with ``set_timesteps``' ``device``)."""
    config.pop("device", None)  # set_timesteps' device: irrelevant to the values
    if "num_inference_steps" not in config:
        return num_steps
    alias = config.pop("num_inference_steps")
    if num_steps is not None and alias != num_steps:
        raise ValueError(f"num_steps={num_steps} and num_inference_steps={alias} disagree; pass one of them")
    return alias


def _dynamic_mu(cfg: dict, mu: float | None) -> float | None:
    """The checked ``mu`` with ``use_dynamic_shifting``; ``None`` without it (diffusers ignores ``mu`` then)."""
    if not cfg["use_dynamic_shifting"]:
        return None
    if mu is None:
        raise ValueError(
            "mu must be passed when use_dynamic_shifting=True (diffusers raises too): compute it from the token "
            "count, e.g. mu=flowsched.schedules.flux_mu(image_seq_len), or set use_dynamic_shifting=False"
        )
    alpha_from_mu(mu, cfg["time_shift_type"])  # mu > 0 for the linear type, a finite e^mu for the exponential
    return real("mu", mu)


def _default_grid(cfg: dict, num_steps: int | None) -> np.ndarray:
    """``set_timesteps``' default grid: ``linspace(sigma_max * T, sigma_min * T, N) / T`` in float64, where
    ``__init__`` left ``sigma_max`` and ``sigma_min`` from its float32 training grid ``k / T``, statically shifted
    unless ``use_dynamic_shifting`` (so a static shift is applied twice to its last point)."""
    if num_steps is None:
        raise ValueError("num_steps must be given when sigmas is not (diffusers' num_inference_steps)")
    num_steps = step_count("num_steps", num_steps)
    T = cfg["num_train_timesteps"]
    if T < 2:
        raise ValueError(
            f"num_train_timesteps={T} makes the default grid collapse to t = 1 (diffusers then returns "
            "repeated sigmas); pass explicit sigmas, e.g. numpy.linspace(1, 1/N, N)"
        )
    lo = np.float32(1.0) / np.float32(T)
    if cfg["use_dynamic_shifting"]:
        s_max, s_min = 1.0, float(lo)
    else:  # diffusers' float32 tensor expression
        s_max = min(float(time_shift_peer(1.0, cfg["shift"], dtype=np.float32)), 1.0)
        s_min = float(time_shift_peer(lo, cfg["shift"], dtype=np.float32))
    return np.linspace(s_max * T, s_min * T, num_steps) / T


def _custom_grid(num_steps: int | None, sigmas, timesteps, T: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Custom ``sigmas`` and/or ``timesteps``: ``(the N model evaluation points, the timesteps fed or None)``.
    diffusers keeps custom timesteps as float32 and, without sigmas, takes ``sigmas = timesteps / T`` in float32."""
    fed = None
    if timesteps is not None:
        custom_ts = _timesteps_list(timesteps)
        if sigmas is not None and len(np.ravel(sigmas)) != custom_ts.size:
            raise ValueError(
                f"sigmas and timesteps must have the same length, got {len(np.ravel(sigmas))} and {custom_ts.size}"
            )
        fed = custom_ts.astype(np.float32).astype(np.float64)
        if sigmas is None:
            sigmas = custom_ts.astype(np.float32) / np.float32(T)
    base = check_t(sigmas, "sigmas", positive=True, min_size=1)
    if num_steps is not None and step_count("num_steps", num_steps) != base.size:
        raise ValueError(
            f"num_steps={num_steps} but sigmas (or timesteps) hold {base.size} values; they must match (or "
            "pass num_steps=None). They are the N model evaluation points, without the terminal"
        )
    return base, fed


def _fme_params(cfg: dict, base: np.ndarray, mu: float | None, custom: bool) -> dict:
    """What made a flow_match_euler schedule: the grid, the shift (``alpha``; ``mu`` and its type when dynamic),
    the stretch, the re-spacing and the inversion."""
    params: dict = {"num_train_timesteps": cfg["num_train_timesteps"]}
    if custom:
        params["sigmas"] = [float(x) for x in base]
    else:
        params["double_shift"] = mu is None and cfg["shift"] != 1.0
    params["num_steps"] = int(base.size)
    if mu is None:
        params["alpha"] = cfg["shift"]
    else:
        kind = cfg["time_shift_type"]
        params.update(mu=mu, time_shift_type=kind, alpha=alpha_from_mu(mu, kind))
    if cfg["shift_terminal"] is not None:
        params["shift_terminal"] = cfg["shift_terminal"]
    spacing = next((k for k in _SPACINGS if cfg[k]), None)
    if spacing is not None:
        params["spacing"] = spacing[4:-7]  # use_karras_sigmas -> karras
    if cfg["invert_sigmas"]:
        params["inverted"] = True
    return params


def _fme_sigmas(base: np.ndarray, cfg: dict, mu: float | None) -> np.ndarray:
    """diffusers' order after the grid: shift (static, or ``mu``), ``shift_terminal``, karras / exponential /
    beta re-spacing between the shifted end points, ``invert_sigmas``; ``N + 1`` values with the terminal."""
    s = from_list(base, append_zero=True)
    s = warp(s, cfg["shift"]) if mu is None else warp_mu(s, mu, time_shift_type=cfg["time_shift_type"])
    if cfg["shift_terminal"] is not None:
        s = stretch_to_terminal(s, cfg["shift_terminal"])
    spacing = next((k for k in _SPACINGS if cfg[k]), None)
    if spacing is not None and base.size > 1:
        s = _SPACINGS[spacing](base.size, min(float(s.t[0]), 1.0), float(s.t[-2]))
    return (invert(s) if cfg["invert_sigmas"] else s).t


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
    terminal, and the timesteps it feeds the model (:meth:`Schedule.model_timesteps`).

    Every config option is honoured, in diffusers' order: base grid (custom ``sigmas``; else custom
    ``timesteps / num_train_timesteps``; else the default grid with its double-shifted tail,
    ``params["double_shift"]``), then the static ``shift`` or, with ``use_dynamic_shifting``, ``mu`` with
    ``time_shift_type`` (``"exponential"``: ``alpha = exp(mu)``; ``"linear"``: ``alpha = mu``), then
    ``shift_terminal`` (:func:`~flowsched.schedules.stretch_to_terminal`), then ``use_karras_sigmas`` /
    ``use_exponential_sigmas`` / ``use_beta_sigmas`` (re-spaced between the shifted end points), then
    ``invert_sigmas`` (Mochi: values ``1 - sigma`` increasing to a terminal 1).

    Custom ``timesteps`` are fed to the model as given (float32), not ``sigma * num_train_timesteps``: diffusers
    0.42.1 keeps them (CogView4 relies on it), except with ``invert_sigmas``, where it recomputes them.

    Precision: float64; diffusers returns float32, so ``schedule.t.astype(numpy.float32)`` equals its
    ``scheduler.sigmas`` to within float32 rounding (well inside 1e-6).

    Args:
        num_steps: ``num_inference_steps``; may be None when ``sigmas`` or ``timesteps`` is given (their length).
        mu: required when ``use_dynamic_shifting=True`` (ignored otherwise, as in diffusers).
        sigmas: custom model evaluation points (``N`` values, no terminal), strictly decreasing in (0, 1].
        timesteps: custom model timesteps (``N`` finite values >= 0).
        **config: FlowMatchEulerDiscreteScheduler config keys (:data:`FLOW_MATCH_EULER_CONFIG`); keys starting
            with ``_`` (``_class_name``...) are ignored so a saved ``scheduler_config.json`` can be passed. Its
            ``shift`` is diffusers' name for the static shift ``alpha``.
    """
    num_steps = _num_inference_steps(num_steps, config)
    cfg = _config(config)
    mu = _dynamic_mu(cfg, mu)
    custom = sigmas is not None or timesteps is not None
    if custom:
        base, fed = _custom_grid(num_steps, sigmas, timesteps, cfg["num_train_timesteps"])
    else:
        base, fed = _default_grid(cfg, num_steps), None
    params = _fme_params(cfg, base, mu, custom)
    fed = None if cfg["invert_sigmas"] else fed  # diffusers recomputes the timesteps from the inverted sigmas
    return _built("flow_match_euler", params, lambda: _fme_sigmas(base, cfg, mu), fed)


# -- multistep solvers with use_flow_sigmas -------------------------------------------------------------------
# Each grid is the peer's own float64 expression (time_shift_peer), so the truncated timesteps are theirs bit for bit.


def _unipc_flow(n: int, T: int, alpha: float) -> np.ndarray:
    s = time_shift_peer(np.linspace(1, 1 / T, n + 1)[:-1], alpha)
    if np.fabs(s[0] - 1) < 1e-6:  # diffusers avoids log 0 in the solver
        s[0] -= 1e-6
    return s


def _dpmsolver_flow(n: int, T: int, alpha: float) -> np.ndarray:
    return np.flip(time_shift_peer(1.0 - np.linspace(1, 1 / T, n + 1), alpha))[:-1].copy()


def _wan_flow(n: int, T: int, alpha: float) -> np.ndarray:
    sigma_max = float(np.float32(1.0 - 1.0 / T))  # what Wan's float32 training grid leaves
    return time_shift_peer(np.linspace(sigma_max, 0.0, n + 1)[:-1], alpha)


_FLOW_SOLVERS = {"unipc": _unipc_flow, "dpmsolver": _dpmsolver_flow, "wan": _wan_flow}

#: The multistep solvers :func:`flow_sigmas` reproduces.
SOLVERS = tuple(_FLOW_SOLVERS)


def flow_sigmas(
    num_steps: int,
    alpha: float = 1.0,
    *,
    solver: str = "unipc",
    num_train_timesteps: int = 1000,
) -> Schedule:
    """The flow schedule of a multistep solver with ``use_flow_sigmas`` and a static shift ``alpha`` (the
    solvers' ``flow_shift``), with the integer timesteps it feeds the model (``int64(sigma * T)``, truncated;
    :meth:`Schedule.model_timesteps`).

    ``solver``:
        * ``"unipc"``: diffusers ``UniPCMultistepScheduler``: ``linspace(1, 1/T, N + 1)[:-1]``, shifted; a first
          value within 1e-6 of 1 is lowered by 1e-6 (diffusers avoids ``log 0``). Wan's diffusers conversions.
        * ``"dpmsolver"``: diffusers ``DPMSolverMultistepScheduler``: ``1 - linspace(1, 1/T, N + 1)``, shifted,
          flipped, last dropped (first value ``shift(1 - 1/T)``). Sana.
        * ``"wan"``: Wan 2.1/2.2's own ``FlowUniPCMultistepScheduler`` (``wan/utils/fm_solvers_unipc.py``, a
          modified copy of diffusers' UniPC): ``linspace(sigma_max, 0, N + 1)[:-1]``, shifted, with
          ``sigma_max = float32(1 - 1/T)`` (0.9990000128746033) from its float32 training grid.

    Values are computed with the peers' own float64 expression ``s * shift / (1 + (shift - 1) * s)``
    (:func:`flowsched.shift.time_shift_peer`), so the truncated timesteps are theirs bit for bit; the terminal is
    0 (``final_sigmas_type="zero"``).
    """
    num_steps = step_count("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    T = step_count("num_train_timesteps", num_train_timesteps)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))}; got {solver!r}")
    s = _FLOW_SOLVERS[solver](num_steps, T, alpha)
    params = {"num_steps": num_steps, "alpha": alpha, "solver": solver, "num_train_timesteps": T}
    fed = np.trunc(s * T) * (1000.0 / T)  # recorded at the 1000 scale of Schedule.timesteps
    return _built("flow_sigmas", params, lambda: np.append(s, 0.0), fed)
