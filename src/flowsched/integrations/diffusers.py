"""``FlowschedScheduler``: a stand-in for diffusers' ``FlowMatchEulerDiscreteScheduler`` that can also walk any
flowsched schedule inside a diffusers flow-matching pipeline.

    >>> from flowsched.integrations.diffusers import FlowschedScheduler
    >>> pipe.scheduler = FlowschedScheduler.from_config(pipe.scheduler.config)  # diffusers' rule  # doctest: +SKIP
    >>> pipe.scheduler = FlowschedScheduler("shifted:alpha=5")  # a flowsched schedule  # doctest: +SKIP
    >>> pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)  # back  # doctest: +SKIP

It implements ``FlowMatchEulerDiscreteScheduler``'s interface (diffusers 0.42.1): the training schedule built at
construction (``timesteps`` and ``sigmas`` of ``num_train_timesteps`` values, ``sigma_min``, ``sigma_max``, so
``scale_noise`` works before ``set_timesteps``, as training scripts use it); ``set_timesteps(num_inference_steps,
device, sigmas, mu, timesteps)``; ``step`` (the Euler update ``x + (sigma[i+1] - sigma[i]) * v`` in diffusers'
arithmetic); ``scale_noise`` (``sigma * noise + (1 - sigma) * x``) and ``add_noise``; ``index_for_timestep``
(exact match, the second of two); ``set_begin_index``, ``step_index``, ``shift``/``set_shift``, ``order = 1``,
``init_noise_sigma = 1``; and every ``FlowMatchEulerDiscreteScheduler`` config key at the top level of
``scheduler.config``, so ``FlowMatchEulerDiscreteScheduler.from_config(scheduler.config)`` and
``save_pretrained`` swap back to diffusers' class. ``t`` (flowsched) is ``sigma`` (diffusers): 1 is noise.
``stochastic_sampling=True`` takes diffusers' re-noising step (``x0 = x - sigma v``, then
``(1 - sigma') x0 + sigma' noise``) with the noise drawn from the pipeline's ``generator`` as diffusers draws it, or,
with ``noise_seed=SEED``, portable per-step noise (step ``k`` of the run on stream ``1 + k``), the same on every
device. ``step(per_token_timesteps=...)`` (LTX-Video's condition pipeline: one timestep per token, conditioned
tokens held lower) follows diffusers' rule and sign convention bit for bit (:meth:`FlowschedScheduler.step`).

Two modes (:attr:`FlowschedScheduler.mode`), told apart by the config:

* ``"diffusers"`` (no ``schedule`` key): **diffusers' rule, computed by flowsched** in the dtypes diffusers
  uses, so ``sigmas`` and ``timesteps`` equal diffusers' bit for bit, for every config option and every
  ``set_timesteps`` call (``mu``, custom ``sigmas``, custom ``timesteps`` fed to the model as given, as CogView4
  needs). The ``rule`` key says whose rule: ``FlowMatchEulerDiscreteScheduler`` (default; also for its
  FlowMatch* relatives), or ``UniPCMultistepScheduler`` / ``DPMSolverMultistepScheduler`` with
  ``use_flow_sigmas`` (Wan, Sana): their sigma grid and their integer-truncated model timesteps, walked with
  Euler steps instead of their multistep solver (a one-time warning says so). One exception to diffusers 0.42.1:
  ``shift_terminal`` with one step (or custom sigmas ending at 1) gives ``[1, 0]`` where diffusers returns NaN.
* ``"schedule"`` (``schedule=...``: a spec string, a :class:`~flowsched.Schedule`, its JSON document, a list of
  ``t`` values or a JSON file): **the flowsched schedule decides**. The pipeline's ``sigmas``, ``mu`` and
  ``timesteps`` only give the step count ``N``; a spec is evaluated at ``N`` steps
  (:func:`flowsched.spec.from_spec`), a fixed list or a spec that pins ``steps`` is resampled to ``N`` by
  :func:`flowsched.schedules.loglinear_interp`. A resolution rule is applied at the size the spec names: when a
  pipeline passes a ``mu`` (its render size) that the schedule does not use, a one-time warning says so. The
  training schedule is the schedule evaluated at ``num_train_timesteps`` steps, terminal dropped (for
  ``shifted:alpha=a`` that is diffusers' training grid with ``shift=a``).

The facts each computation relies on are in ``docs/diffusers.md``. Needs diffusers (``pip install
'flowsched[diffusers]'``); ``import flowsched`` never imports it.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

try:
    import torch
    from diffusers.configuration_utils import ConfigMixin, FrozenDict, register_to_config
    from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"flowsched.integrations.diffusers needs diffusers and torch ({exc}); install them with "
        "pip install 'flowsched[diffusers]'"
    ) from exc

from .. import schedules
from .._validate import closest, nonnegative_int, positive_int, positive_real, real
from ..diffusers_rules import FLOW_MATCH_EULER_CONFIG
from ..schedule import Schedule
from ..spec import from_spec
from . import _diffusers_rules as rules

__all__ = ["FlowschedScheduler", "TimestepNotFoundError", "PIPELINE_CONFIG_KEYS", "FLOW_MATCH_EULER_KEYS"]

#: ``FlowMatchEulerDiscreteScheduler``'s config keys (diffusers 0.42.1), all kept at the top of the config.
FLOW_MATCH_EULER_KEYS: tuple[str, ...] = tuple(FLOW_MATCH_EULER_CONFIG)

#: Config keys that diffusers pipelines read from ``scheduler.config`` to compute ``mu`` (Flux, SD3, LTX ...),
#: with FlowMatchEulerDiscreteScheduler's defaults.
PIPELINE_CONFIG_KEYS: dict[str, Any] = {
    k: FLOW_MATCH_EULER_CONFIG[k]
    for k in ("use_dynamic_shifting", "base_shift", "max_shift", "base_image_seq_len", "max_image_seq_len")
}

_SPACINGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


class TimestepNotFoundError(IndexError, ValueError):
    """A timestep that is not one of the scheduler's. An ``IndexError``, as diffusers raises (it indexes an empty
    list of matches), and a ``ValueError``, as flowsched's argument checks raise."""


# -- config checks -------------------------------------------------------------------------------------------


def _schedule_document(schedule: Any) -> str | dict:
    """The JSON-ready form of ``schedule`` kept in the config: a spec string, or a schedule document."""
    if isinstance(schedule, Schedule):
        return schedule.to_dict()
    if isinstance(schedule, str):
        text = schedule.strip()
        if not text:
            raise ValueError("schedule must be a non-empty spec string (see flowsched.spec.from_spec)")
        if text[0] in "[{" or text.lower().endswith(".json") or os.path.isfile(text):
            # inline JSON or a file: keep the values themselves so the saved config is self-contained
            return Schedule.from_json(text).to_dict()
        from_spec(text, num_steps=2)  # fail now, naming the spec, rather than inside a pipeline
        return text
    if isinstance(schedule, Mapping):
        return Schedule.from_dict(schedule).to_dict()
    if isinstance(schedule, Sequence) and not isinstance(schedule, bytes):
        return Schedule(list(schedule)).to_dict()
    raise TypeError(
        "schedule must be a flowsched Schedule, a spec string ('shifted:alpha=3', a preset name, a JSON file), "
        f"a schedule document or a list of t values; got {type(schedule).__name__}"
    )


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _check_config(cfg: Mapping) -> None:
    """Validate FlowMatchEulerDiscreteScheduler's keys (and ``rule``) as diffusers would use them."""
    positive_int("num_train_timesteps", cfg["num_train_timesteps"])
    positive_real("shift", cfg["shift"])
    for key in ("use_dynamic_shifting", "invert_sigmas", *_SPACINGS, "stochastic_sampling"):
        _flag(key, cfg[key])
    for key in ("base_shift", "max_shift"):
        if cfg[key] is not None:
            real(key, cfg[key])
    for key in ("base_image_seq_len", "max_image_seq_len"):
        positive_real(key, cfg[key])
    terminal = cfg["shift_terminal"]
    if terminal is not None and terminal != 0 and not 0 < real("shift_terminal", terminal) < 1:
        raise ValueError(f"shift_terminal must be None or lie strictly between 0 and 1, got {terminal}")
    if cfg["time_shift_type"] not in ("exponential", "linear"):
        raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {cfg['time_shift_type']!r}")
    on = [k for k in _SPACINGS if cfg[k]]
    if len(on) > 1:
        raise ValueError(f"{' and '.join(on)} are mutually exclusive: set at most one of {', '.join(_SPACINGS)}")
    if cfg["use_beta_sigmas"]:
        try:
            import scipy.stats  # noqa: F401
        except ImportError as exc:
            raise ImportError("use_beta_sigmas=True needs scipy (as in diffusers): pip install scipy") from exc
    seed = cfg["noise_seed"]
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"noise_seed must be None or an integer in [0, 2**64) (portable noise), got {seed!r}")
        if not cfg["stochastic_sampling"]:
            raise ValueError(
                f"noise_seed={seed} draws the per-step noise of stochastic_sampling=True; it has no effect on "
                "deterministic Euler steps: set stochastic_sampling=True or drop noise_seed"
            )
    rule = cfg["rule"]
    if rule not in rules.RULES:
        hint = closest(str(rule), list(rules.RULES))
        raise ValueError(f"rule must be one of {', '.join(rules.RULES)}, got {rule!r}" + (f"; did you mean {hint!r}?"
                                                                                            if hint else ""))
    if rule != rules.FME and (cfg["invert_sigmas"] or on):
        bad = "invert_sigmas" if cfg["invert_sigmas"] else on[0]
        raise ValueError(f"{bad}=True is a FlowMatchEulerDiscreteScheduler option; rule={rule!r} has no such option")


def _merge_legacy(values: dict, explicit: set, nested: Any, schedule: Any) -> dict:
    """Configs saved before the keys moved to the top level nest diffusers' keys under ``flow_match_euler``:
    the nested keys, checked, that replace ``values``."""
    if schedule is not None:
        raise ValueError("give schedule or flow_match_euler (the old nested form of diffusers' keys), not both")
    if not isinstance(nested, Mapping):
        raise TypeError(f"flow_match_euler must be a FlowMatchEulerDiscreteScheduler config (a dict), got {nested!r}")
    out = {}
    for key, value in nested.items():
        key = str(key)
        if key.startswith("_"):
            continue
        if key not in FLOW_MATCH_EULER_KEYS:
            hint = closest(key, list(FLOW_MATCH_EULER_KEYS))
            raise TypeError(f"{key!r} is not a FlowMatchEulerDiscreteScheduler config option."
                            + (f" Did you mean {hint!r}?" if hint else ""))
        if key in explicit and values[key] != value:
            raise ValueError(
                f"{key} is given twice: {values[key]!r} at the top level and {value!r} in flow_match_euler; pass one"
            )
        out[key] = value
    return out


def _custom_values(name: str, values: Any) -> np.ndarray:
    """A custom ``sigmas``/``timesteps`` list as a 1-D numeric array in the dtype it came in (rules cast it as
    diffusers does)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a list of numbers, got {values!r:.80}") from None
    if arr.dtype.kind not in "fiu" or arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty flat list of numbers, got {values!r:.80}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {arr[bad[0]]} at index {bad[0]}")
    return arr


# -- the scheduler -------------------------------------------------------------------------------------------


class FlowschedScheduler(SchedulerMixin, ConfigMixin):
    """A diffusers scheduler that walks diffusers' rule or a flowsched schedule with Euler steps (see the module
    docstring).

    Args:
        schedule: the ``"schedule"`` mode: a spec string for :func:`flowsched.spec.from_spec`
            (``"shifted:alpha=3"``, a preset name ...), a :class:`~flowsched.Schedule`, its JSON document, a list
            of ``N + 1`` ``t`` values, or a JSON file (stored by value). None (default): the ``"diffusers"`` mode.
        num_train_timesteps, shift, use_dynamic_shifting, base_shift, max_shift, base_image_seq_len,
            max_image_seq_len, invert_sigmas, shift_terminal, use_karras_sigmas, use_exponential_sigmas,
            use_beta_sigmas, time_shift_type, stochastic_sampling: ``FlowMatchEulerDiscreteScheduler``'s config,
            with its defaults and meaning. In the ``"schedule"`` mode only ``num_train_timesteps`` (the model
            timestep is ``t * num_train_timesteps``) and ``invert_sigmas`` (Mochi: ``1 - t``) act; the others are
            kept for pipelines to read and for swapping back.
        rule: whose rule the ``"diffusers"`` mode computes: ``"FlowMatchEulerDiscreteScheduler"`` (default),
            ``"UniPCMultistepScheduler"`` or ``"DPMSolverMultistepScheduler"`` (their ``use_flow_sigmas`` grid,
            ``shift`` being their ``flow_shift``). ``from_config`` sets it from such a scheduler's config.
        flow_match_euler: the layout of configs saved by earlier versions (diffusers' keys nested under this
            key); read into the top-level keys and not stored.
        noise_seed: with ``stochastic_sampling=True``: draw step ``k``'s noise (``k`` counted from the first step
            the pipeline runs) as portable noise on stream ``1 + k`` of this seed
            (:func:`flowsched.noise.step_noise`) instead of from the pipeline's generator: the same on every device
            and for every batch size. Stored in the config only when set.

    Attributes: ``timesteps`` (``N`` float32 model timesteps) and ``sigmas`` (``N + 1`` float32 values with
    the terminal) after :meth:`set_timesteps`, the training schedule (``num_train_timesteps`` values each)
    before; ``sigma_min``/``sigma_max`` (ends of the training schedule); ``schedule`` (the flowsched
    :class:`~flowsched.Schedule` being walked, float64 copy of ``sigmas``); ``num_inference_steps``.
    """

    _compatibles = list(rules.FLOW_MATCH_FAMILY)
    order = 1
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(
        self,
        schedule: str | Schedule | Mapping | Sequence[float] | None = None,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float | None = 0.5,
        max_shift: float | None = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        invert_sigmas: bool = False,
        shift_terminal: float | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        time_shift_type: str = "exponential",
        stochastic_sampling: bool = False,
        rule: str = rules.FME,
        flow_match_euler: Mapping | None = None,
        noise_seed: int | None = None,
    ):
        values = {
            "num_train_timesteps": num_train_timesteps,
            "shift": shift,
            "use_dynamic_shifting": use_dynamic_shifting,
            "base_shift": base_shift,
            "max_shift": max_shift,
            "base_image_seq_len": base_image_seq_len,
            "max_image_seq_len": max_image_seq_len,
            "invert_sigmas": invert_sigmas,
            "shift_terminal": shift_terminal,
            "use_karras_sigmas": use_karras_sigmas,
            "use_exponential_sigmas": use_exponential_sigmas,
            "use_beta_sigmas": use_beta_sigmas,
            "time_shift_type": time_shift_type,
            "stochastic_sampling": stochastic_sampling,
            "rule": rule,
            "noise_seed": noise_seed,
        }
        defaults = set(self.config.get("_use_default_values", []))
        changed: dict = {}
        if flow_match_euler is not None:
            changed = _merge_legacy(values, set(values) - defaults, flow_match_euler, schedule)
            values.update(changed)
        _check_config(values)
        document = _schedule_document(schedule) if schedule is not None else None
        self._base: Schedule | None = Schedule.from_dict(document) if isinstance(document, dict) else None
        self._store_config(changed, document, values["rule"], defaults)

        self._shift = values["shift"]
        self._mu_warned = False
        self.schedule: Schedule | None = None
        self.num_inference_steps: int | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None
        self._first_step: int | None = None
        self.sigmas, self.timesteps = self._training_schedule()
        self.sigma_min: float = self.sigmas[-1].item()
        self.sigma_max: float = self.sigmas[0].item()

    def _store_config(self, changed: dict, document: Any, rule: str, defaults: set) -> None:
        """Keep diffusers' keys at the top level, add ``schedule``/``rule`` only where they say something (so a
        ``"diffusers"``-mode config is exactly a FlowMatchEulerDiscreteScheduler config), drop the legacy key.
        diffusers lists keys left at their default in ``_use_default_values`` (``from_config`` skips them);
        keys set here are not defaults, and an empty list is not stored (a reloaded config equals the saved)."""
        cfg = {k: v for k, v in self.config.items() if k not in ("_use_default_values", "flow_match_euler")}
        cfg.update(changed)
        if document is None:
            cfg.pop("schedule", None)
        else:
            cfg["schedule"] = document
        if rule == rules.FME:
            cfg.pop("rule", None)
        if cfg.get("noise_seed") is None:
            cfg.pop("noise_seed", None)
        # diffusers also lists arguments passed by position (FlowschedScheduler("spec")) as defaults: keep only
        # the keys that really hold their default
        signature = inspect.signature(type(self).__init__).parameters
        kept = sorted(k for k in defaults if k in cfg and k not in changed and cfg[k] == signature[k].default)
        if kept:
            cfg["_use_default_values"] = kept
        self._internal_dict = FrozenDict(cfg)

    # -- construction from diffusers --------------------------------------------------------------------------
    @classmethod
    def extract_init_dict(cls, config_dict: Mapping, **kwargs: Any) -> tuple:
        """``from_config``/``from_pretrained`` hook: a UniPC or DPM-Solver++ flow config becomes ``rule`` plus
        ``shift`` (its ``flow_shift``) and keeps its own keys (so it swaps back); a config of a scheduler this
        adapter cannot mirror is refused instead of silently read as default FlowMatchEuler."""
        config_dict, source = rules.adapter_config(config_dict)
        if source is not None:
            rules.sampler_warning(source)
        return super().extract_init_dict(config_dict, **kwargs)

    @classmethod
    def from_diffusers(cls, scheduler_or_config: Any, **kwargs: Any) -> FlowschedScheduler:
        """``from_config(scheduler.config, **kwargs)``: a ``FlowMatchEulerDiscreteScheduler`` (or FlowMatch*
        relative), or a ``UniPCMultistepScheduler``/``DPMSolverMultistepScheduler`` with ``use_flow_sigmas``,
        or its config. Without ``schedule=`` in ``kwargs`` the result computes that scheduler's rule."""
        config = getattr(scheduler_or_config, "config", scheduler_or_config)
        if not isinstance(config, Mapping):
            raise TypeError(
                "scheduler_or_config must be a diffusers scheduler or its config, "
                f"got {type(scheduler_or_config).__name__}"
            )
        if "_class_name" not in config and not isinstance(scheduler_or_config, Mapping):
            config = {**config, "_class_name": type(scheduler_or_config).__name__}  # a live config lacks it
        return cls.from_config(config, **kwargs)

    # -- mode, shift ------------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"schedule"`` when a flowsched schedule decides the sigmas, ``"diffusers"`` when the config's
        diffusers rule does (``config["rule"]``, FlowMatchEulerDiscreteScheduler by default)."""
        return "schedule" if self.config.get("schedule") is not None else "diffusers"

    @property
    def rule(self) -> str:
        """The diffusers scheduler whose rule the ``"diffusers"`` mode computes."""
        return self.config.get("rule", rules.FME)

    @property
    def shift(self) -> float:
        """The static shift ``set_timesteps`` applies in the ``"diffusers"`` mode (config ``shift``, or
        :meth:`set_shift`'s value)."""
        return self._shift

    def set_shift(self, shift: float) -> None:
        """Change the static shift for later :meth:`set_timesteps` calls, as diffusers' ``set_shift`` does (the
        config, ``sigma_min`` and ``sigma_max`` keep their values, as in diffusers)."""
        positive_real("shift", shift)
        if self.mode == "schedule":
            raise ValueError(
                "set_shift changes diffusers' static shift, which the 'schedule' mode does not use; put the shift "
                f"in the schedule instead (e.g. 'shifted:alpha={shift}')"
            )
        self._shift = shift

    # -- schedules --------------------------------------------------------------------------------------------
    def _rule_config(self) -> dict:
        cfg = {k: self.config[k] for k in FLOW_MATCH_EULER_KEYS}
        cfg["rule"] = self.rule
        return cfg

    def _training_schedule(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``num_train_timesteps`` sigmas and timesteps, no terminal: diffusers' ``__init__`` grid (also for the
        UniPC/DPM rules, with their ``flow_shift``), or the flowsched schedule at ``num_train_timesteps`` steps."""
        T = self.config.num_train_timesteps
        if self.mode == "diffusers":
            return rules.training_grid(T, self._shift, self.config.use_dynamic_shifting)
        sigmas, timesteps = self._schedule_tensors(self._flowsched_schedule(T))
        return sigmas[:-1], timesteps

    def _flowsched_schedule(self, num_steps: int) -> Schedule:
        spec = self.config.schedule
        base = from_spec(spec, num_steps=num_steps) if isinstance(spec, str) else self._base
        if base.num_steps != num_steps:
            base = schedules.loglinear_interp(base, num_steps)
        return base

    def _schedule_tensors(self, schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 sigmas (``N + 1``) and model timesteps (``N``) of a flowsched schedule. The timesteps are
        ``float32(t) * scale`` in float32, as diffusers computes ``sigmas * num_train_timesteps``, unless the
        schedule carries model timesteps of its own (then those, rounded once to float32)."""
        T = self.config.num_train_timesteps
        t = torch.from_numpy(schedule.t.astype(np.float32))
        if self.config.invert_sigmas:
            t = 1.0 - t  # Mochi: in float32, as diffusers inverts
            return t, t[:-1] * T
        fed = np.asarray(schedule.model_timesteps(T), dtype=np.float64)
        if np.array_equal(fed, schedule.t[:-1] * float(T)):
            return t, t[:-1] * T
        return t, torch.from_numpy(fed.astype(np.float32))

    def _diffusers_walk(self, n: int, sigmas: Any, mu: Any, timesteps: Any) -> tuple[torch.Tensor, ...]:
        cfg = self._rule_config()
        rule = cfg["rule"]
        if mu is not None:
            real("mu", mu)
            if cfg["use_dynamic_shifting"] and cfg["time_shift_type"] == "linear" and mu <= 0:
                raise ValueError(f"mu must be > 0 with time_shift_type='linear' (alpha = mu), got {mu}")
        if rule == rules.DPM:
            if sigmas is not None or timesteps is not None:
                raise ValueError("DPMSolverMultistepScheduler's flow rule takes no custom sigmas or timesteps; pass N")
            if mu is not None and not (cfg["use_dynamic_shifting"] and cfg["time_shift_type"] == "exponential"):
                raise ValueError(
                    "mu needs use_dynamic_shifting=True and time_shift_type='exponential' with the DPM-Solver rule "
                    f"(it replaces flow_shift by exp(mu)); got mu={mu}"
                )
            return rules.dpmsolver_flow(cfg, n, shift=self._shift, mu=mu)
        if cfg["use_dynamic_shifting"] and mu is None:
            raise ValueError(
                "mu must be passed when use_dynamic_shifting=True (diffusers raises too): pipelines compute it "
                "from the token count, e.g. mu=flowsched.schedules.flux_mu(image_seq_len)"
            )
        if sigmas is not None:
            sigmas = _custom_values("sigmas", sigmas)
        if timesteps is not None:
            timesteps = _custom_values("timesteps", timesteps)
        if rule == rules.UNIPC:
            if timesteps is not None:
                raise ValueError("UniPCMultistepScheduler's flow rule takes no custom timesteps; pass sigmas or N")
            return rules.unipc_flow(cfg, n, shift=self._shift, sigmas=sigmas, mu=mu)
        return rules.flow_match_euler(
            cfg, n, shift=self._shift, sigma_max=self.sigma_max, sigma_min=self.sigma_min,
            sigmas=sigmas, mu=mu, timesteps=timesteps,
        )

    def _walk(self, n: int, sigmas: Any = None, mu: Any = None, timesteps: Any = None) -> tuple:
        """``(sigmas, timesteps, schedule)`` for an ``N``-step call."""
        if self.mode == "schedule":
            schedule = self._flowsched_schedule(n)
            return (*self._schedule_tensors(schedule), schedule)
        sig, ts = self._diffusers_walk(n, sigmas, mu, timesteps)
        params: dict = {"num_steps": n, "rule": self.rule}
        if mu is not None:
            params["mu"] = float(mu)
        try:
            schedule = Schedule(sig.double().numpy(), name="diffusers", params=params)
        except ValueError as exc:
            raise ValueError(
                f"{self.rule}'s rule with this config and these arguments gives unusable sigmas ({exc}); diffusers "
                "would walk them anyway. Check shift, sigmas and timesteps"
            ) from None
        return sig, ts, schedule

    def schedule_for(
        self, num_steps: int, *, mu: float | None = None, sigmas: Any = None, timesteps: Any = None
    ) -> Schedule:
        """The flowsched :class:`~flowsched.Schedule` that :meth:`set_timesteps` would walk for these arguments
        (``mu``, ``sigmas`` and ``timesteps`` shape it in the ``"diffusers"`` mode only)."""
        return self._walk(positive_int("num_steps", num_steps), sigmas, mu, timesteps)[2]

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: Sequence[float] | np.ndarray | None = None,
        mu: float | None = None,
        timesteps: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Set the ``N`` steps to run (pipelines call it before the denoising loop).

        Args:
            num_inference_steps: ``N``; may be None when ``sigmas`` or ``timesteps`` is given (their length).
            device: where ``sigmas`` and ``timesteps`` live.
            sigmas, mu, timesteps: what the pipeline asks for: in the ``"diffusers"`` mode exactly what
                diffusers does with them; in the ``"schedule"`` mode only their length counts (a ``mu`` the
                schedule does not use is reported once).
        """
        lengths = {k: len(v) for k, v in (("sigmas", sigmas), ("timesteps", timesteps)) if v is not None}
        if num_inference_steps is not None:
            n = positive_int("num_inference_steps", num_inference_steps)
        elif lengths:
            n = next(iter(lengths.values()))
        else:
            raise ValueError("num_inference_steps must be given when neither sigmas nor timesteps is")
        for key, length in lengths.items():
            if length != n:
                raise ValueError(
                    f"{key} holds {length} values but num_inference_steps={n}; they must match "
                    "(diffusers' sigmas/timesteps are the N model evaluation points, without the terminal)"
                )
        sig, ts, schedule = self._walk(n, sigmas, mu, timesteps)
        if self.mode == "schedule" and mu is not None:
            self._warn_fixed_schedule(mu, schedule)
        self.schedule = schedule
        self.num_inference_steps = n
        self.sigmas = sig.to(device=device)
        self.timesteps = ts.to(device=device)
        self._step_index = None
        self._begin_index = None
        self._first_step = None

    def _warn_fixed_schedule(self, mu: Any, schedule: Schedule) -> None:
        own = schedule.params.get("mu")
        if self._mu_warned or (own is not None and abs(float(own) - float(mu)) <= 1e-6):
            return
        self._mu_warned = True
        spec = self.config.schedule
        walks = repr(spec) if isinstance(spec, str) else "a fixed Schedule"
        uses = f"uses mu={float(own):.4g}" if own is not None else "has no mu"
        warnings.warn(
            f"the pipeline passed mu={float(mu):.4g} (from the size it renders) but this FlowschedScheduler walks "
            f"{walks}, which {uses}: the render size is ignored. To follow it, name the size in the spec (a preset: "
            "'NAME:height=H,width=W') or use FlowschedScheduler.from_config(pipe.scheduler.config) for diffusers' "
            "rule with the pipeline's mu. (Warned once per scheduler.)",
            UserWarning,
            stacklevel=3,
        )

    # -- step bookkeeping -------------------------------------------------------------------------------------
    @property
    def step_index(self) -> int | None:
        """Index of the next step (None until the first ``step`` after ``set_timesteps``)."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Index of the first step, set by pipelines with :meth:`set_begin_index` (img2img starts later)."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start at step ``begin_index`` (pipelines call this so the index need not be looked up)."""
        self._begin_index = nonnegative_int("begin_index", begin_index)

    def index_for_timestep(self, timestep: float | torch.Tensor, schedule_timesteps: torch.Tensor | None = None) -> int:
        """The step whose model timestep equals ``timestep`` exactly, as diffusers finds it: the second match when
        there are several (an img2img start then does not skip a sigma). Raises :class:`TimestepNotFoundError`
        (an ``IndexError``, like diffusers, and a ``ValueError``) for a timestep that is not in the schedule."""
        ts = self.timesteps if schedule_timesteps is None else schedule_timesteps
        if isinstance(timestep, torch.Tensor):
            if timestep.numel() != 1:
                raise ValueError(f"timestep must be one value, got a tensor of shape {tuple(timestep.shape)}")
            timestep = timestep.to(ts.device)
        matches = (ts == timestep).nonzero()
        if len(matches) == 0:
            value = float(timestep)
            near = int(torch.argmin((ts.detach().to("cpu", torch.float64) - value).abs()))
            raise TimestepNotFoundError(
                f"timestep {value!r} is not one of this scheduler's timesteps (closest: {float(ts[near])!r} at "
                f"step {near}); pass a value taken from scheduler.timesteps (the match is exact, as in diffusers)"
            )
        return matches[1 if len(matches) > 1 else 0].item()

    def _init_step_index(self, timestep: Any) -> None:
        self._step_index = self._begin_index if self._begin_index is not None else self.index_for_timestep(timestep)
        self._first_step = self._step_index

    @staticmethod
    def _check_timestep(timestep: Any) -> None:
        if (
            isinstance(timestep, (bool, int, np.integer))
            or (isinstance(timestep, torch.Tensor) and not torch.is_floating_point(timestep))
        ):
            raise ValueError(
                f"timestep must be one of scheduler.timesteps (a float), got the integer {timestep!r}; "
                "integer step indices (from enumerate) are not timesteps"
            )

    # -- the sampler ------------------------------------------------------------------------------------------
    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Flow matching feeds the model ``x_t`` as it is."""
        return sample

    def _euler(self, sample: torch.Tensor, model_output: torch.Tensor, i: int) -> torch.Tensor:
        """``x + (sigma[i+1] - sigma[i]) * v``: diffusers' expression and dtypes (float32 ``sample``, 0-d float32
        ``dt``, so ``dt * v`` keeps ``v``'s dtype before the float32 sum)."""
        dt = self.sigmas[i + 1] - self.sigmas[i]
        return sample + dt * model_output

    def _stochastic(
        self, sample: torch.Tensor, model_output: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, i: int,
        generator: Any,
    ) -> torch.Tensor:
        """diffusers' ``stochastic_sampling`` update in its expression and dtypes: ``x0 = x - sigma * v``, then
        ``(1 - sigma_next) * x0 + sigma_next * noise`` with ``noise`` drawn by diffusers' ``randn_tensor`` from
        ``generator`` in ``sample``'s shape, dtype (float32) and device, at every step (the last one too, as
        diffusers does). With ``noise_seed``, the noise of the run's ``k``-th step is portable noise on stream
        ``1 + k`` (:func:`flowsched.noise.step_noise`) instead, and ``generator`` is not used. ``sigma`` and
        ``sigma_next`` are 0-d, or per token (``[..., S, 1]``) with ``per_token_timesteps``."""
        x0 = sample - sigma * model_output
        seed = self.config.get("noise_seed")
        if seed is None:
            from diffusers.utils.torch_utils import randn_tensor

            noise = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        else:
            from ..noise import step_noise

            noise = step_noise(int(seed), tuple(sample.shape), i - (self._first_step or 0), device=sample.device,
                               dtype=sample.dtype)
        return (1.0 - sigma_next) * x0 + sigma_next * noise

    def _per_token_sigmas(self, per_token_timesteps: Any, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sigma, sigma_next)``, each ``[..., S, 1]``, for per-token timesteps, by diffusers' rule
        (``FlowMatchEulerDiscreteScheduler.step``, diffusers 0.42.1): a token's ``sigma`` is its timestep divided by
        ``num_train_timesteps`` (in the timesteps' dtype), its next one the largest of the scheduler's ``sigmas``
        below ``sigma - 1e-6`` (0 when none is), compared after the same type promotion as diffusers'."""
        ptt = per_token_timesteps
        if not isinstance(ptt, torch.Tensor):
            raise TypeError(
                "per_token_timesteps must be a torch tensor of model timesteps (sigma * num_train_timesteps), one per "
                f"token, got {type(ptt).__name__}"
            )
        if ptt.dtype == torch.bool or ptt.is_complex():
            raise TypeError(f"per_token_timesteps must hold real timesteps, got dtype {ptt.dtype}")
        tokens = tuple(sample.shape[:-1])
        if sample.ndim < 2 or ptt.ndim != sample.ndim - 1 or any(
            p not in (1, s) for p, s in zip(ptt.shape, tokens)
        ):
            raise ValueError(
                f"per_token_timesteps must have one timestep per token of sample: shape {list(tokens)} (sample "
                f"{list(sample.shape)} is [B, S, C]: batch, tokens, channels), or 1 where it broadcasts (LTX passes "
                f"[B, 1] without conditioning); got {list(ptt.shape)}"
            )
        top = self.config.num_train_timesteps
        values = ptt.detach().to(torch.float64)
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()) or bool((values > top).any()):
            bad = values[~(torch.isfinite(values) & (values >= 0) & (values <= top))].reshape(-1)[0].item()
            raise ValueError(
                f"per_token_timesteps must lie in [0, {top}] (num_train_timesteps; sigma * {top}), got {bad!r}"
            )
        sigma = ptt / self.config.num_train_timesteps
        grid = self.sigmas.to(ptt.device).reshape(-1, *([1] * sigma.ndim))
        below = grid < sigma.unsqueeze(0) - 1e-6
        # the grid value where it lies below the token's sigma, else 0; the largest of them (the grid holds 0)
        sigma_next = torch.where(below, grid, torch.zeros((), dtype=grid.dtype, device=grid.device)).amax(dim=0)
        return sigma.unsqueeze(-1), sigma_next.unsqueeze(-1)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        s_churn: float = 0.0,
        s_tmin: float = 0.0,
        s_tmax: float = float("inf"),
        s_noise: float = 1.0,
        generator: torch.Generator | None = None,
        per_token_timesteps: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        """One Euler step ``x <- x + (sigma[i+1] - sigma[i]) * v`` with ``v = model_output`` (the velocity
        ``eps - x0``), returned in ``model_output``'s dtype, with diffusers' arithmetic. The signature is
        diffusers'; ``s_churn``, ``s_tmin``, ``s_tmax`` and ``s_noise`` have no effect (as in
        ``FlowMatchEulerDiscreteScheduler``).

        With ``stochastic_sampling=True`` the step is diffusers' re-noising update
        ``(1 - sigma[i+1]) * (x - sigma[i] * v) + sigma[i+1] * noise``, the noise drawn from ``generator`` as
        diffusers draws it (so the same generator gives diffusers' result bit for bit), or, with ``noise_seed``,
        portable per-step noise that does not depend on the device or the generator.

        ``per_token_timesteps`` (``[B, S]``, or ``[B, 1]``, for a ``[B, S, C]`` sample; model timesteps, i.e.
        ``sigma * num_train_timesteps``): each token steps from its own ``sigma`` to the largest of the scheduler's
        ``sigmas`` below ``sigma - 1e-6``, as diffusers' ``FlowMatchEulerDiscreteScheduler`` does for LTX-Video's
        condition pipeline, with diffusers' sign: the Euler update is ``x + (sigma - sigma_next) * model_output``,
        so the pipeline passes ``-v``. The result stays in float32 (diffusers does not cast it back in this mode).
        The stochastic update is the one above with per-token sigmas and ``model_output`` taken as ``v``
        (diffusers' expression; with the pipeline's ``-v`` its ``x0`` is ``x + sigma v``, as in diffusers).
        ``ValueError`` for a shape that is not one timestep per token, or timesteps outside
        ``[0, num_train_timesteps]``.
        """
        self._check_timestep(timestep)
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i + 1 >= len(self.sigmas):
            raise ValueError(
                f"the schedule has {len(self.sigmas) - 1} steps and all were taken; call set_timesteps() to start "
                "again"
            )
        sample = sample.to(torch.float32)
        if per_token_timesteps is not None:
            sigma, sigma_next = self._per_token_sigmas(per_token_timesteps, sample)
            if self.config.stochastic_sampling:
                prev_sample = self._stochastic(sample, model_output, sigma, sigma_next, i, generator)
            else:
                prev_sample = sample + (sigma - sigma_next) * model_output  # diffusers' sign in this mode
        elif self.config.stochastic_sampling:
            prev_sample = self._stochastic(sample, model_output, self.sigmas[i], self.sigmas[i + 1], i, generator)
            prev_sample = prev_sample.to(model_output.dtype)
        else:
            prev_sample = self._euler(sample, model_output, i).to(model_output.dtype)
        self._step_index = i + 1
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)

    def scale_noise(
        self,
        sample: torch.Tensor,
        timestep: float | torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The forward process ``sigma * noise + (1 - sigma) * sample`` at the step of ``timestep`` (one value
        per sample), computed as diffusers does: the step is ``step_index`` once stepping has begun, else
        ``begin_index`` when a pipeline set it, else looked up with :meth:`index_for_timestep`. Works on the
        training schedule before any ``set_timesteps`` (training scripts)."""
        if noise is None:
            raise ValueError("noise is required: scale_noise returns sigma * noise + (1 - sigma) * sample")
        sigmas = self.sigmas.to(device=sample.device, dtype=sample.dtype)
        ts = torch.as_tensor(timestep).reshape(-1).to(sample.device)
        if self._begin_index is None:
            schedule_timesteps = self.timesteps.to(sample.device)
            indices = [self.index_for_timestep(t, schedule_timesteps) for t in ts]
        else:
            indices = [self._step_index if self._step_index is not None else self._begin_index] * ts.numel()
        sigma = sigmas[indices].flatten()
        while sigma.ndim < sample.ndim:
            sigma = sigma.unsqueeze(-1)
        return sigma * noise + (1.0 - sigma) * sample

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
        """:meth:`scale_noise` under the name video-to-video pipelines (Wan, CogVideoX) call."""
        return self.scale_noise(original_samples, timesteps, noise)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
