"""``FlowschedScheduler``: run any flowsched schedule as ``pipe.scheduler`` in a diffusers flow-matching pipeline.

    >>> from flowsched.integrations.diffusers import FlowschedScheduler
    >>> pipe.scheduler = FlowschedScheduler("shifted:alpha=5")               # doctest: +SKIP
    >>> pipe.scheduler = FlowschedScheduler("opensora-2.0-768px")            # a preset's rule  # doctest: +SKIP
    >>> pipe.scheduler = FlowschedScheduler(flowsched.schedules.karras(30))  # any Schedule  # doctest: +SKIP
    >>> pipe.scheduler = FlowschedScheduler.from_diffusers(pipe.scheduler)   # diffusers' own rule  # doctest: +SKIP

It speaks diffusers' scheduler protocol, the one ``FlowMatchEulerDiscreteScheduler`` implements (diffusers 0.42.1):
``set_timesteps(num_inference_steps=None, device=None, sigmas=None, mu=None, timesteps=None)``, ``timesteps``
(``N`` float32 values ``sigma * num_train_timesteps`` fed to the model), ``sigmas`` (``N + 1`` float32 values
ending at the terminal), ``step`` (the Euler update ``x + (sigma[i+1] - sigma[i]) * v``), ``scale_noise`` (the
forward process ``sigma * noise + (1 - sigma) * x``), ``order = 1``, ``init_noise_sigma = 1``,
``set_begin_index``, and the config round trip (``from_config``, ``save_config``, ``from_pretrained``); also
``add_noise`` (video-to-video pipelines) and ``invert_sigmas`` (Mochi's pipeline, which wants ``1 - t``).
flowsched's ``t`` is diffusers' ``sigma``: ``t = 1`` is noise, ``t = 0`` is data. Not supported: diffusers'
``stochastic_sampling`` and ``per_token_timesteps`` (per-token sigmas for causal video).

Two modes, chosen at construction and stored in the config:

* ``schedule=...`` (a spec string, a :class:`~flowsched.Schedule`, its JSON document, a list of ``t`` values, or a
  JSON file): **the flowsched schedule decides**. The ``mu``, ``sigmas`` and ``timesteps`` a pipeline passes
  only tell the step count ``N`` (Flux-style pipelines pass ``sigmas=linspace(1, 1/N, N)`` plus ``mu``; SD3 and
  Wan pass only ``N``); their values are not used. A spec string is evaluated at ``N`` steps
  (:func:`flowsched.spec.from_spec` with ``num_steps=N``; a preset applies its model's rule at the preset's
  default size); a fixed list, or a spec that pins ``steps``, is resampled to ``N`` steps by
  :func:`flowsched.schedules.loglinear_interp` when ``N`` differs (the end points are kept).
  A resolution rule is therefore applied at the size the spec names, not at the size the pipeline renders:
  give the size in the spec (``opensora-2.0-768px:height=480,width=832``) or build the Schedule yourself.
* ``flow_match_euler={...}`` (a ``FlowMatchEulerDiscreteScheduler`` config; :meth:`from_diffusers`):
  **diffusers' rule, computed by flowsched**. ``mu`` and ``sigmas`` from the pipeline are honoured exactly as
  diffusers does (:func:`flowsched.diffusers_rules.flow_match_euler`); ``timesteps`` without ``sigmas`` are read as
  ``sigmas = timesteps / num_train_timesteps``. The values are computed in float64 and rounded once to float32,
  so they can differ from diffusers' float32 arithmetic in the last bit.

The model is always fed ``timesteps = float32(sigma) * num_train_timesteps``, computed like diffusers does.

Needs diffusers (``pip install 'flowsched[diffusers]'``); ``import flowsched`` never imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

try:
    import torch
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"flowsched.integrations.diffusers needs diffusers and torch ({exc}); install them with "
        "pip install 'flowsched[diffusers]'"
    ) from exc

from .. import schedules
from .._validate import nonnegative_int, positive_int
from ..diffusers_rules import flow_match_euler
from ..schedule import Schedule
from ..spec import from_spec

__all__ = ["FlowschedScheduler", "PIPELINE_CONFIG_KEYS"]

#: Config keys that diffusers pipelines read from ``scheduler.config`` to compute ``mu`` (Flux, SD3, LTX ...),
#: with FlowMatchEulerDiscreteScheduler's defaults. Only the ``flow_match_euler`` mode uses ``mu``.
PIPELINE_CONFIG_KEYS: dict[str, Any] = {
    "use_dynamic_shifting": False,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


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


def _flow_match_euler_config(config: Any, num_train_timesteps: int) -> dict:
    """A validated FlowMatchEulerDiscreteScheduler config (private ``_`` keys dropped)."""
    if not isinstance(config, Mapping):
        raise TypeError(f"flow_match_euler must be a FlowMatchEulerDiscreteScheduler config (a dict), got {config!r}")
    cfg = {str(k): v for k, v in config.items() if not str(k).startswith("_")}
    cfg.setdefault("num_train_timesteps", num_train_timesteps)
    if cfg["num_train_timesteps"] != num_train_timesteps:
        raise ValueError(
            f"num_train_timesteps={num_train_timesteps} disagrees with flow_match_euler's "
            f"num_train_timesteps={cfg['num_train_timesteps']}; pass one value"
        )
    if cfg.get("stochastic_sampling"):
        raise ValueError(
            "stochastic_sampling=True (re-noising steps) is not supported: FlowschedScheduler takes deterministic "
            "Euler steps; mirror a scheduler with stochastic_sampling=False"
        )
    # a trial call checks every key and value now (unknown options, karras with beta, ...)
    flow_match_euler(2, mu=0.5 if cfg.get("use_dynamic_shifting") else None, **cfg)
    return cfg


class FlowschedScheduler(SchedulerMixin, ConfigMixin):
    """A diffusers scheduler that walks a flowsched schedule with Euler steps (see the module docstring).

    Args:
        schedule: the schedule (mode 1): a spec string for :func:`flowsched.spec.from_spec`
            (``"shifted:alpha=3"``, ``"flux:image_seq_len=4096"``, a preset name ...), a
            :class:`~flowsched.Schedule`, its JSON document, a list of ``N + 1`` ``t`` values, or a JSON file.
            Schedules and files are stored by value in the config.
        num_train_timesteps: the scale between ``t`` and the model timestep (``timestep = t * scale``).
        flow_match_euler: instead of ``schedule`` (mode 2), a ``FlowMatchEulerDiscreteScheduler`` config whose
            rule flowsched reproduces, honouring the pipeline's ``mu`` and ``sigmas``.
        use_dynamic_shifting, base_shift, max_shift, base_image_seq_len, max_image_seq_len: read by pipelines
            to compute ``mu`` (:data:`PIPELINE_CONFIG_KEYS`); in mode 2 they are taken from ``flow_match_euler``.
        invert_sigmas: Mochi's pipeline: ``sigmas`` and ``timesteps`` hold ``1 - t`` (increasing to a terminal 1),
            as diffusers' ``invert_sigmas`` does; the Euler step reads them unchanged. In mode 2 it comes from
            ``flow_match_euler``.

    Attributes (after :meth:`set_timesteps`): ``schedule`` (the flowsched Schedule being walked, float64),
    ``sigmas`` (its ``N + 1`` values, float32), ``timesteps`` (``N`` model timesteps), ``num_inference_steps``.
    """

    _compatibles: list[str] = []
    order = 1
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(
        self,
        schedule: str | Schedule | Mapping | Sequence[float] | None = None,
        num_train_timesteps: int = 1000,
        flow_match_euler: Mapping | None = None,
        use_dynamic_shifting: bool = False,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        invert_sigmas: bool = False,
    ):
        num_train_timesteps = positive_int("num_train_timesteps", num_train_timesteps)
        if not isinstance(invert_sigmas, bool):
            raise TypeError(f"invert_sigmas must be True or False, got {invert_sigmas!r}")
        if (schedule is None) == (flow_match_euler is None):
            raise ValueError(
                "give exactly one of schedule (a flowsched schedule or spec, e.g. 'shifted:alpha=3') and "
                "flow_match_euler (a FlowMatchEulerDiscreteScheduler config; see FlowschedScheduler.from_diffusers)"
                + ("; got both" if schedule is not None else "; got neither")
            )
        self._base: Schedule | None = None
        if schedule is not None:
            document = _schedule_document(schedule)
            if isinstance(document, dict):
                self._base = Schedule.from_dict(document)
            self._register(schedule=document)
        else:
            cfg = _flow_match_euler_config(flow_match_euler, num_train_timesteps)
            pipeline_keys = {k: cfg.get(k, v) for k, v in PIPELINE_CONFIG_KEYS.items()}
            self._register(flow_match_euler=cfg, invert_sigmas=bool(cfg.get("invert_sigmas", False)), **pipeline_keys)
        self.schedule: Schedule | None = None
        self.num_inference_steps: int | None = None
        self.sigmas: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None

    def _register(self, **values: Any) -> None:
        """Store normalised values in the config. diffusers lists positional arguments as "default values" and
        drops those keys in ``from_config(scheduler.config)``; keys set here are never defaults."""
        defaults = [k for k in self.config.get("_use_default_values", []) if k not in values and k != "schedule"]
        self.register_to_config(**values, _use_default_values=defaults)

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_diffusers(cls, scheduler_or_config: Any) -> FlowschedScheduler:
        """Mirror a ``FlowMatchEulerDiscreteScheduler`` (or its config): same sigmas for every pipeline call,
        computed by :func:`flowsched.diffusers_rules.flow_match_euler` (agrees with diffusers to float32 rounding)."""
        config = getattr(scheduler_or_config, "config", scheduler_or_config)
        if not isinstance(config, Mapping):
            raise TypeError(
                "scheduler_or_config must be a FlowMatchEulerDiscreteScheduler or its config, "
                f"got {type(scheduler_or_config).__name__}"
            )
        name = config.get("_class_name", "FlowMatchEulerDiscreteScheduler")
        if name != "FlowMatchEulerDiscreteScheduler":
            raise ValueError(
                f"from_diffusers mirrors FlowMatchEulerDiscreteScheduler only, got a {name} config; "
                "pass schedule=... to run a flowsched schedule instead"
            )
        return cls(flow_match_euler=dict(config), num_train_timesteps=config.get("num_train_timesteps", 1000))

    # -- the schedule -------------------------------------------------------------------------------------------
    def schedule_for(self, num_steps: int, *, mu: float | None = None, sigmas: Any = None) -> Schedule:
        """The flowsched :class:`~flowsched.Schedule` this scheduler walks for ``num_steps`` steps
        (``mu`` and ``sigmas`` matter in the ``flow_match_euler`` mode only)."""
        num_steps = positive_int("num_steps", num_steps)
        fme = self.config.get("flow_match_euler")
        if fme is not None:
            return flow_match_euler(None if sigmas is not None else num_steps, mu=mu, sigmas=sigmas, **fme)
        spec = self.config.schedule
        base = from_spec(spec, num_steps=num_steps) if isinstance(spec, str) else self._base
        if base.num_steps != num_steps:
            base = schedules.loglinear_interp(base, num_steps)
        return base

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: Sequence[float] | np.ndarray | None = None,
        mu: float | None = None,
        timesteps: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Set the ``N`` steps to run (call before the denoising loop; pipelines do).

        Args:
            num_inference_steps: ``N``; may be None when ``sigmas`` or ``timesteps`` is given (their length).
            device: where ``sigmas`` and ``timesteps`` live.
            sigmas, mu, timesteps: what the pipeline asks for. In the ``schedule`` mode only their length is
                used; in the ``flow_match_euler`` mode ``mu`` and ``sigmas`` (or ``timesteps / scale``) shape
                the schedule as in diffusers.
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
        if self.config.get("flow_match_euler") is not None and sigmas is None and timesteps is not None:
            sigmas = np.asarray(timesteps, dtype=np.float64) / self.config.num_train_timesteps
        if sigmas is not None and self.config.get("flow_match_euler") is not None:
            # diffusers casts custom sigmas to float32 before shifting them; so do we
            values = sigmas.cpu().numpy() if isinstance(sigmas, torch.Tensor) else sigmas
            sigmas = np.asarray(values, dtype=np.float32).astype(np.float64)
        schedule = self.schedule_for(n, mu=mu, sigmas=sigmas)
        t = torch.from_numpy(schedule.t.astype(np.float32)).to(device=device)
        if self.config.invert_sigmas and self.config.get("flow_match_euler") is None:
            t = 1.0 - t  # Mochi: in float32, as diffusers inverts (flow_match_euler has inverted already)
        self.schedule = schedule
        self.num_inference_steps = n
        self.sigmas = t
        # as diffusers does: float32 sigmas times the scale, the terminal never fed to the model
        self.timesteps = t[:-1] * self.config.num_train_timesteps
        self._step_index = None
        self._begin_index = None

    # -- step bookkeeping ---------------------------------------------------------------------------------------
    @property
    def step_index(self) -> int | None:
        """Index of the next step (None until the first ``step`` or ``scale_noise`` after ``set_timesteps``)."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Index of the first step, set by pipelines with :meth:`set_begin_index` (img2img starts later)."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start at step ``begin_index`` (pipelines call this so the index need not be looked up)."""
        self._begin_index = nonnegative_int("begin_index", begin_index)

    def _require_timesteps(self) -> None:
        if self.sigmas is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step() or scale_noise()")

    def index_for_timestep(self, timestep: float | torch.Tensor, schedule_timesteps: torch.Tensor | None = None) -> int:
        """The step whose model timestep is ``timestep``: the closest one, which must lie within
        ``1e-4 * num_train_timesteps`` (diffusers demands exact float equality, which bf16 timesteps break)."""
        self._require_timesteps()
        ts = self.timesteps if schedule_timesteps is None else schedule_timesteps
        value = float(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
        dist = (ts.detach().to("cpu", torch.float64) - value).abs()
        i = int(torch.argmin(dist))
        if not float(dist[i]) <= 1e-4 * self.config.num_train_timesteps:
            raise ValueError(
                f"timestep {value!r} is not one of this scheduler's timesteps (closest: {float(ts[i])!r} at step {i}); "
                "pass a value from scheduler.timesteps"
            )
        return i

    def _init_step_index(self, timestep: Any) -> None:
        self._step_index = self._begin_index if self._begin_index is not None else self.index_for_timestep(timestep)

    @staticmethod
    def _check_timestep(timestep: Any) -> None:
        if (
            isinstance(timestep, bool)
            or isinstance(timestep, int)
            or (isinstance(timestep, torch.Tensor) and not torch.is_floating_point(timestep))
        ):
            raise ValueError(
                f"timestep must be one of scheduler.timesteps (a float), got the integer {timestep!r}; "
                "integer step indices (from enumerate) are not timesteps"
            )

    # -- the sampler ----------------------------------------------------------------------------------------------
    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Flow matching feeds the model ``x_t`` as it is."""
        return sample

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple:
        """One Euler step ``x <- x + (sigma[i+1] - sigma[i]) * v`` with ``v = model_output`` (the velocity
        ``eps - x0``), returned in ``model_output``'s dtype. The arithmetic is diffusers' own: ``sample`` is upcast
        to float32, the float32 ``dt`` times ``v`` takes ``v``'s dtype (torch's promotion of a 0-d tensor).

        ``generator`` is accepted for pipeline compatibility and unused (the step is deterministic).
        """
        self._require_timesteps()
        self._check_timestep(timestep)
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i >= self.num_inference_steps:
            raise ValueError(
                f"the schedule has {self.num_inference_steps} steps and all were taken; call set_timesteps() to "
                "start again"
            )
        sample = sample.to(torch.float32)
        dt = self.sigmas[i + 1] - self.sigmas[i]
        prev_sample = (sample + dt * model_output).to(model_output.dtype)
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
        """The forward process at the step of ``timestep``: ``sigma * noise + (1 - sigma) * sample`` (img2img).

        The step is ``step_index`` once stepping has begun, else ``begin_index`` when a pipeline set it, else
        looked up from ``timestep`` (one value per sample, like diffusers).
        """
        self._require_timesteps()
        if noise is None:
            raise ValueError("noise is required: scale_noise returns sigma * noise + (1 - sigma) * sample")
        ts = torch.as_tensor(timestep).reshape(-1)
        if self._begin_index is None:
            indices = [self.index_for_timestep(t) for t in ts]
        else:
            indices = [self._step_index if self._step_index is not None else self._begin_index] * ts.numel()
        sigma = self.sigmas.to(device=sample.device, dtype=sample.dtype)[indices].flatten()
        while sigma.ndim < sample.ndim:
            sigma = sigma.unsqueeze(-1)
        return sigma * noise + (1.0 - sigma) * sample

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
        """:meth:`scale_noise` under the name video-to-video pipelines (Wan, CogVideoX) call."""
        return self.scale_noise(original_samples, timesteps, noise)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
