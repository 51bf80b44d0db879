"""diffusers' flow-matching sigma rules, computed in the dtypes diffusers computes them (private to the adapter).

:class:`~flowsched.integrations.diffusers.FlowschedScheduler` in its ``"diffusers"`` mode must hand a pipeline
the very float32 values diffusers' own scheduler would, so each function below evaluates the rule's formulas with
the same operand types as diffusers 0.42.1 (numpy float64 where diffusers builds a default grid, float32 where it
casts custom ``sigmas``/``timesteps`` first, torch float32 for the training grid and ``sigmas * scale``). The
formulas and which dtype each step runs in are written out in ``docs/diffusers.md`` with their sources
(``scheduling_flow_match_euler_discrete.py``, ``scheduling_unipc_multistep.py``,
``scheduling_dpmsolver_multistep.py``). Two deliberate differences, both documented there: ``shift_terminal`` is
skipped where there is nothing to stretch (one step, or a last point at 1; diffusers 0.42.1 returns NaN), and
the DPM-Solver rule never rewrites its config when given ``mu``.

Every function returns ``(sigmas, timesteps)``: ``N + 1`` float32 sigmas (with the terminal) and the ``N``
float32 model timesteps, as torch tensors on the CPU. Arguments are validated by the caller.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

FME = "FlowMatchEulerDiscreteScheduler"
UNIPC = "UniPCMultistepScheduler"
DPM = "DPMSolverMultistepScheduler"
#: Whose sigma rule the ``"diffusers"`` mode computes (the config key ``rule``).
RULES = (FME, UNIPC, DPM)
#: diffusers classes whose configs carry FlowMatchEulerDiscreteScheduler's keys (FlowschedScheduler's
#: ``_compatibles``): their config is mirrored with FlowMatchEulerDiscreteScheduler's rule.
FLOW_MATCH_FAMILY = (FME, "FlowMatchHeunDiscreteScheduler", "FlowMatchLCMScheduler")


# -- FlowMatchEulerDiscreteScheduler ---------------------------------------------------------------------------


def training_grid(num_train_timesteps: int, shift: Any, use_dynamic_shifting: bool) -> tuple[torch.Tensor, ...]:
    """``FlowMatchEulerDiscreteScheduler.__init__``'s training schedule: ``T`` sigmas ``k / T`` for
    ``k = T .. 1`` in torch float32, shifted statically unless ``use_dynamic_shifting``; timesteps
    ``sigmas * T``. ``shift`` is used as given (an int stays an int, as in diffusers' expression)."""
    T = num_train_timesteps
    steps = torch.arange(T, 0, -1, dtype=torch.float32)  # T, ..., 1: integers, exact in float32
    sigmas = steps / T
    if not use_dynamic_shifting:
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return sigmas, sigmas * T


def _dynamic(mu: Any, t: np.ndarray, time_shift_type: str) -> np.ndarray:
    """``a / (a + (1/t - 1))`` with ``a = exp(mu)`` (a Python float) or ``a = mu`` as given (diffusers'
    ``_time_shift_*`` with ``sigma = 1``; ``x ** 1.0`` is ``x`` exactly, so the power is left out)."""
    a = math.exp(mu) if time_shift_type == "exponential" else mu
    return a / (a + (1 / t - 1))


def _static(shift: Any, t: np.ndarray) -> np.ndarray:
    return shift * t / (1 + (shift - 1) * t)


def _stretch(t: np.ndarray, shift_terminal: float) -> np.ndarray:
    """LTX's stretch: the last point becomes ``shift_terminal``. Skipped when the last point is 1 (one step, or
    custom sigmas ending at 1): there ``1 - t[-1] = 0`` and diffusers 0.42.1 divides 0 by 0 (NaN sigmas);
    later diffusers skip the stretch for one step the same way (issue #14411)."""
    one_minus = 1 - t
    if t.size < 2 or one_minus[-1] == 0:
        return t
    scale = one_minus[-1] / (1 - shift_terminal)
    return 1 - (one_minus / scale)


def _respace(t: np.ndarray, cfg: Mapping, n: int) -> np.ndarray:
    """karras / exponential / beta re-spacing between the end points of ``t`` (float64, diffusers' order)."""
    if not (cfg["use_karras_sigmas"] or cfg["use_exponential_sigmas"] or cfg["use_beta_sigmas"]):
        return t
    hi, lo = t[0].item(), t[-1].item()
    if cfg["use_karras_sigmas"]:
        rho = 7.0
        ramp = np.linspace(0, 1, n)
        lo_inv, hi_inv = lo ** (1 / rho), hi ** (1 / rho)
        return (hi_inv + ramp * (lo_inv - hi_inv)) ** rho
    if cfg["use_exponential_sigmas"]:
        return np.exp(np.linspace(math.log(hi), math.log(lo), n))
    import scipy.stats  # only the beta spacing needs scipy, as in diffusers

    ppf = scipy.stats.beta.ppf(1 - np.linspace(0, 1, n), 0.6, 0.6)
    return lo + ppf * (hi - lo)


def _finish(sigmas: np.ndarray, T: int, timesteps: np.ndarray | None, invert: bool) -> tuple[torch.Tensor, ...]:
    """float32 tensors, the model timesteps (as given, or ``sigmas * T`` in float32) and the terminal."""
    s = torch.from_numpy(np.ascontiguousarray(sigmas)).to(torch.float32)
    ts = torch.from_numpy(timesteps) if timesteps is not None else s * T
    if invert:  # Mochi: 1 - sigma, timesteps follow, terminal 1
        s = 1.0 - s
        return torch.cat([s, torch.ones(1)]), s * T
    return torch.cat([s, torch.zeros(1)]), ts


def flow_match_euler(
    cfg: Mapping,
    n: int,
    *,
    shift: Any,
    sigma_max: float,
    sigma_min: float,
    sigmas: Any = None,
    mu: Any = None,
    timesteps: Any = None,
) -> tuple[torch.Tensor, ...]:
    """``FlowMatchEulerDiscreteScheduler.set_timesteps``: the default grid ``linspace(sigma_max*T,
    sigma_min*T, N) / T`` in float64 (``sigma_min``/``sigma_max`` from the training grid), or custom ``sigmas``
    (float32), or custom ``timesteps / T`` (float32); then the static or dynamic shift, ``shift_terminal``,
    karras/exponential/beta; custom timesteps are fed to the model as given (0.42.1), else ``sigmas * T``."""
    T = cfg["num_train_timesteps"]
    given = np.array(timesteps).astype(np.float32) if timesteps is not None else None
    if sigmas is None:
        base = given if given is not None else np.linspace(sigma_max * T, sigma_min * T, n)
        t = base / T
    else:
        t = np.array(sigmas).astype(np.float32)
    t = _dynamic(mu, t, cfg["time_shift_type"]) if cfg["use_dynamic_shifting"] else _static(shift, t)
    if cfg["shift_terminal"]:
        t = _stretch(t, cfg["shift_terminal"])
    t = _respace(t, cfg, n)
    return _finish(t, T, given, cfg["invert_sigmas"])


# -- UniPC / DPM-Solver++ with use_flow_sigmas ----------------------------------------------------------------


def _integer_timesteps(t: np.ndarray, T: int) -> np.ndarray:
    """``sigmas * T`` truncated towards zero to int64 (diffusers' ``.to(torch.int64)``), kept as float32."""
    return torch.from_numpy(np.ascontiguousarray(t * T)).to(torch.int64).to(torch.float32).numpy()


def unipc_flow(cfg: Mapping, n: int, *, shift: Any, sigmas: Any = None, mu: Any = None) -> tuple[torch.Tensor, ...]:
    """``UniPCMultistepScheduler.set_timesteps`` with ``use_flow_sigmas``: ``linspace(1, 1/T, N + 1)[:-1]``
    (or custom ``sigmas`` as given), static ``flow_shift`` or dynamic ``mu``, ``shift_terminal``, a first
    sigma within 1e-6 of 1 lowered by 1e-6, int64-truncated timesteps; all in the input's dtype (float64)."""
    T = cfg["num_train_timesteps"]
    t = np.linspace(1, 1 / T, n + 1)[:-1] if sigmas is None else np.asarray(sigmas)
    t = _dynamic(mu, t, cfg["time_shift_type"]) if cfg["use_dynamic_shifting"] else _static(shift, t)
    if cfg["shift_terminal"]:
        t = _stretch(t, cfg["shift_terminal"])
    t = np.array(t)  # own copy: the nudge below writes into it
    if np.fabs(t[0] - 1) < 1e-6:
        t[0] -= 1e-6  # UniPC keeps log(alpha) finite; the model sees t = 1 - 1e-6
    return _finish(t, T, _integer_timesteps(t, T), False)


def dpmsolver_flow(cfg: Mapping, n: int, *, shift: Any, mu: Any = None) -> tuple[torch.Tensor, ...]:
    """``DPMSolverMultistepScheduler.set_timesteps`` with ``use_flow_sigmas``: ``1 - linspace(1, 1/T, N + 1)``
    shifted by ``flow_shift`` (``exp(mu)`` when ``mu`` is given), flipped, the trailing 0 dropped (so the first
    sigma is ``shift(1 - 1/T)``, below 1); int64-truncated timesteps."""
    T = cfg["num_train_timesteps"]
    if mu is not None:
        shift = np.exp(mu)
    t = 1.0 - np.linspace(1, 1 / T, n + 1)
    t = np.flip(_static(shift, t))[:-1].copy()
    return _finish(t, T, _integer_timesteps(t, T), False)


# -- configs of other diffusers schedulers --------------------------------------------------------------------


def sampler_warning(source: str) -> None:
    """Say once, plainly, that swapping the adapter in changes the sampler (Euler instead of ``source``'s)."""
    warnings.warn(
        f"FlowschedScheduler reads {source}'s sigma rule but samples with first-order Euler steps: swapping it in "
        f"for {source} changes the sampler, so images differ from {source}'s at the same step count (use more "
        "steps, or keep diffusers' scheduler for its solver). The model is fed the same timesteps.",
        UserWarning,
        stacklevel=4,
    )


def _init_keys(name: str) -> set[str]:
    import inspect

    import diffusers

    return set(inspect.signature(getattr(diffusers, name).__init__).parameters) - {"self", "kwargs"}


def _source_class(cfg: Mapping) -> str | None:
    """The scheduler class a config belongs to: its ``_class_name`` (saved configs), else the candidate whose
    ``__init__`` arguments are exactly the config's keys (a live ``scheduler.config`` has no ``_class_name``);
    None for a FlowschedScheduler config or a plain dict of FlowMatchEulerDiscreteScheduler keys."""
    name = cfg.get("_class_name")
    if name is not None:
        return name
    keys = {str(k) for k in cfg if not str(k).startswith("_")}
    if "schedule" in keys or "rule" in keys or keys <= _init_keys(FME) | {"flow_match_euler"}:
        return None
    for candidate in (UNIPC, DPM, *FLOW_MATCH_FAMILY):
        if keys == _init_keys(candidate):
            return candidate
    raise ValueError(
        f"cannot tell which scheduler this config belongs to (keys {sorted(keys)}); pass the scheduler itself to "
        "FlowschedScheduler.from_diffusers, or a saved config with its _class_name"
    )


def adapter_config(config: Mapping) -> tuple[dict, str | None]:
    """The FlowschedScheduler config for a diffusers scheduler config, and the source class when its sampler
    is not FlowMatchEuler's. FlowMatch* configs pass unchanged; UniPC / DPM-Solver++ configs with
    ``use_flow_sigmas`` gain ``rule`` (the class) and ``shift`` (their ``flow_shift``); their own keys stay in
    the config so ``UniPCMultistepScheduler.from_config(adapter.config)`` swaps back. Anything else is refused.
    """
    cfg = dict(config)
    name = _source_class(cfg)
    if name is None or name == "FlowschedScheduler" or name == FME:
        return cfg, None
    if name in FLOW_MATCH_FAMILY:
        return cfg, name
    if name in (UNIPC, DPM):
        if not cfg.get("use_flow_sigmas"):
            raise ValueError(
                f"this {name} config has use_flow_sigmas=False: it is a DDPM (noise-prediction) schedule, not a "
                "flow-matching one; FlowschedScheduler drives flow-matching models only"
            )
        if cfg.get("prediction_type") != "flow_prediction":
            raise ValueError(
                f"this {name} config has prediction_type={cfg.get('prediction_type')!r}; a flow-matching model "
                "predicts the velocity (prediction_type='flow_prediction'), the only kind FlowschedScheduler steps"
            )
        spaced = [k for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas")
                  if cfg.get(k)]
        if spaced:
            raise ValueError(
                f"{name} with use_flow_sigmas and {spaced[0]}=True derives its sigmas from DDPM betas; "
                "FlowschedScheduler mirrors the plain flow-sigma rule only (set it to False)"
            )
        cfg["rule"] = name
        cfg["shift"] = cfg.get("flow_shift", 1.0)
        cfg["_class_name"] = name  # diffusers then keeps the source's own keys aside, without a warning
        return cfg, name
    accepted = ", ".join((*FLOW_MATCH_FAMILY, f"{UNIPC} or {DPM} with use_flow_sigmas=True"))
    raise ValueError(
        f"FlowschedScheduler cannot take a {name} config: it mirrors flow-matching schedulers only ({accepted}); "
        "for any other pipeline pass schedule=... explicitly"
    )
