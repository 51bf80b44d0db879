"""diffusers schedulers whose sigmas come from a flowsched schedule, everything else being diffusers' own code.

    >>> from flowsched.integrations.diffusers import with_schedule
    >>> original = pipe.scheduler  # doctest: +SKIP
    >>> pipe.scheduler = with_schedule(pipe.scheduler, "shifted:alpha=5")  # doctest: +SKIP
    >>> pipe.scheduler = original  # back to the pipeline's own  # doctest: +SKIP

* :class:`FlowschedScheduler` subclasses ``FlowMatchEulerDiscreteScheduler`` (Flux, SD3, HunyuanVideo, LTX, Mochi,
  CogView4 ...). With ``schedule=...`` its ``set_timesteps`` walks the flowsched schedule; without, it is
  diffusers' class, bit for bit, plus argument checks. ``noise_seed`` gives ``stochastic_sampling`` portable
  per-step noise.
* :class:`FlowschedUniPCMultistepScheduler` subclasses ``UniPCMultistepScheduler`` (Wan's diffusers checkpoints):
  the flowsched schedule's sigmas, UniPC's own solver.
* :func:`with_schedule` returns the flowsched-driven counterpart of a pipeline's scheduler.

``t`` (flowsched) is ``sigma`` (diffusers): 1 is noise. What each class takes from diffusers, and the schedulers
that cannot take given sigmas, are in ``docs/diffusers.md``. Needs diffusers (``pip install
'flowsched[diffusers]'``); ``import flowsched`` never imports it.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

try:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
    from diffusers.configuration_utils import ConfigMixin
    from diffusers.schedulers.scheduling_utils import SchedulerMixin  # noqa: F401 (see below)
    from torch.overrides import TorchFunctionMode
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"flowsched.integrations.diffusers needs diffusers and torch ({exc}); install them with "
        "pip install 'flowsched[diffusers]'"
    ) from exc

from .. import schedules
from .._validate import boolean, closest, nonnegative_int, positive_int, positive_real, real
from ..philox import check_seed
from ..schedule import Schedule
from ..spec import from_spec

# A pipeline's from_pretrained finds how to load a component by looking the diffusers base classes up by name in the
# component's module (model_index.json names this one): SchedulerMixin must be one of its attributes.

__all__ = ["FlowschedScheduler", "FlowschedUniPCMultistepScheduler", "TimestepNotFoundError", "with_schedule"]


class TimestepNotFoundError(IndexError, ValueError):
    """A timestep that is not one of the scheduler's. An ``IndexError``, as diffusers raises (it indexes an empty
    list of matches), and a ``ValueError``, as flowsched's argument checks raise."""


# -- argument checks -----------------------------------------------------------------------------------------


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


def _check_euler_config(config: Mapping) -> None:
    """The FlowMatchEulerDiscreteScheduler keys diffusers takes unchecked, where a wrong value gives NaN sigmas or
    a silently different rule (diffusers checks the others itself), and a hint for a misspelt key."""
    accepted = [k for k in inspect.signature(FlowMatchEulerDiscreteScheduler.__init__).parameters if k != "self"]
    for key in config:
        if key not in accepted:
            hint = closest(str(key), accepted)
            raise TypeError(f"{key!r} is not a FlowMatchEulerDiscreteScheduler config option"
                            + (f"; did you mean {hint!r}?" if hint else ""))
    checks = {"num_train_timesteps": positive_int, "shift": positive_real, "base_image_seq_len": positive_real,
              "max_image_seq_len": positive_real}
    for key, check in checks.items():
        if key in config:
            check(key, config[key])
    for key in ("use_dynamic_shifting", "invert_sigmas", "use_karras_sigmas", "use_exponential_sigmas",
                "use_beta_sigmas", "stochastic_sampling"):
        if key in config:
            boolean(key, config[key])
    for key in ("base_shift", "max_shift"):
        if config.get(key) is not None:
            real(key, config[key])
    terminal = config.get("shift_terminal")
    if terminal is not None and terminal != 0 and not 0 < real("shift_terminal", terminal) < 1:
        raise ValueError(f"shift_terminal must be None or lie strictly between 0 and 1, got {terminal}")


def _check_noise_seed(noise_seed: Any, config: Mapping) -> int | None:
    if noise_seed is None:
        return None
    seed = check_seed("noise_seed", noise_seed)
    if config.get("stochastic_sampling") is not True:
        raise ValueError(
            f"noise_seed={seed} draws the per-step noise of stochastic_sampling=True; it has no effect on "
            "deterministic Euler steps: set stochastic_sampling=True or drop noise_seed"
        )
    return seed


def _custom_values(name: str, values: Any) -> int:
    """The length of a custom ``sigmas``/``timesteps`` list, once it is known to be a flat list of finite numbers."""
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
    return int(arr.size)


def _step_count(num_inference_steps: Any, sigmas: Any, timesteps: Any) -> int:
    """``N`` of a ``set_timesteps`` call: ``num_inference_steps``, or the length of the custom lists, which must
    agree with it (diffusers' sigmas/timesteps are the ``N`` model evaluation points, without the terminal)."""
    lengths = {k: _custom_values(k, v) for k, v in (("sigmas", sigmas), ("timesteps", timesteps)) if v is not None}
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
    return n


def _check_per_token(per_token_timesteps: Any, sample: torch.Tensor, top: int) -> None:
    """One real timestep in ``[0, num_train_timesteps]`` per token of a ``[B, S, C]`` sample (or 1 where it
    broadcasts), as LTX-Video's condition pipeline passes them; diffusers would walk anything else."""
    ptt = per_token_timesteps
    if not isinstance(ptt, torch.Tensor):
        raise TypeError(
            "per_token_timesteps must be a torch tensor of model timesteps (sigma * num_train_timesteps), one per "
            f"token, got {type(ptt).__name__}"
        )
    if ptt.dtype == torch.bool or ptt.is_complex():
        raise TypeError(f"per_token_timesteps must hold real timesteps, got dtype {ptt.dtype}")
    tokens = tuple(sample.shape[:-1])
    fits = ptt.ndim == sample.ndim - 1 and all(p in (1, s) for p, s in zip(ptt.shape, tokens, strict=True))
    if sample.ndim < 2 or not fits:
        raise ValueError(
            f"per_token_timesteps must have one timestep per token of sample: shape {list(tokens)} (sample "
            f"{list(sample.shape)} is [B, S, C]: batch, tokens, channels), or 1 where it broadcasts (LTX passes "
            f"[B, 1] without conditioning); got {list(ptt.shape)}"
        )
    values = ptt.detach().to(torch.float64)
    inside = torch.isfinite(values) & (values >= 0) & (values <= top)
    if not bool(inside.all()):
        bad = values[~inside].reshape(-1)[0].item()
        raise ValueError(
            f"per_token_timesteps must lie in [0, {top}] (num_train_timesteps; sigma * {top}), got {bad!r}"
        )


# -- what the flowsched-driven schedulers share ----------------------------------------------------------------


def _with_config_arguments(cls: type) -> type:
    """Give ``cls.__init__`` (``schedule=None, *, ..., **config``) the signature it accepts: its own arguments,
    then its diffusers base class's config arguments. diffusers' ``from_config``/``from_pretrained`` read a
    scheduler's config keys from that signature, and the base's keys differ between diffusers releases."""
    base = next(b for b in cls.__mro__ if b.__module__.startswith("diffusers."))
    keyword = inspect.Parameter.KEYWORD_ONLY
    own = [p for p in inspect.signature(cls.__init__).parameters.values() if p.kind is not p.VAR_KEYWORD]
    inherited = [
        p.replace(kind=keyword)
        for p in inspect.signature(base.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    cls.__init__.__signature__ = inspect.Signature(own + inherited)
    return cls


class _ScheduleDriven:
    """The flowsched schedule a scheduler walks: kept in its config (a spec string or a schedule document) and
    evaluated at the step count of each ``set_timesteps`` call."""

    def _keep_schedule(self, schedule: Any, **extra: Any) -> None:
        document = _schedule_document(schedule) if schedule is not None else None
        self._fixed = Schedule.from_dict(document) if isinstance(document, dict) else None
        self._mu_warned = False
        self.schedule: Schedule | None = None
        entries = {k: v for k, v in {"schedule": document, **extra}.items() if v is not None}
        if entries:  # a scheduler without them has exactly its diffusers base class's config
            self.register_to_config(**entries)

    def _schedule_at(self, num_steps: int) -> Schedule:
        """The schedule at ``num_steps`` steps: a spec evaluated there, a fixed schedule (or a spec that pins
        ``steps``) resampled log-linearly."""
        spec = self.config.schedule
        base = from_spec(spec, num_steps=num_steps) if isinstance(spec, str) else self._fixed
        return base if base.num_steps == num_steps else schedules.loglinear_interp(base, num_steps)

    def _note_mu(self, mu: Any, schedule: Schedule) -> None:
        """Warn once when a pipeline passes a ``mu`` (its render size) the schedule does not use."""
        own = schedule.params.get("mu")
        if mu is None or self._mu_warned or (own is not None and abs(float(own) - float(mu)) <= 1e-6):
            return
        self._mu_warned = True
        spec = self.config.schedule
        walks = repr(spec) if isinstance(spec, str) else "a fixed Schedule"
        uses = f"uses mu={float(own):.4g}" if own is not None else "has no mu"
        warnings.warn(
            f"the pipeline passed mu={float(mu):.4g} (from the size it renders) but this {type(self).__name__} "
            f"walks {walks}, which {uses}: the render size is ignored. To follow it, name the size in the spec (a "
            "preset: 'NAME:height=H,width=W') or use FlowschedScheduler.from_config(pipe.scheduler.config) for "
            "diffusers' rule with the pipeline's mu. (Warned once per scheduler.)",
            UserWarning,
            stacklevel=3,
        )


def _euler_tensors(schedule: Schedule, T: int, invert: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """FlowMatchEuler's state for a schedule: ``N + 1`` float32 sigmas and ``N`` float32 model timesteps. The
    timesteps are ``float32(t) * T`` in float32, as diffusers computes ``sigmas * num_train_timesteps``, unless
    the schedule records its own (CogView4, Wan, Mochi presets: then those); ``invert`` (Mochi's
    ``invert_sigmas``) holds ``1 - t`` in float32 and feeds ``(1 - t) * T``, as diffusers inverts."""
    t = torch.from_numpy(schedule.t.astype(np.float32))
    if invert:
        t = 1.0 - t
    if invert or schedule.timesteps is None:
        return t, t[:-1] * T
    return t, torch.from_numpy(schedule.model_timesteps(T).astype(np.float32))


class _PortableStepNoise(TorchFunctionMode):
    """While active, ``torch.randn``/``torch.randn_like`` return ``draw(shape, device, dtype)``: how a
    FlowschedScheduler with ``noise_seed`` gives diffusers' own stochastic step portable noise. diffusers draws
    that noise once per step (``randn_tensor`` -> ``torch.randn`` from 0.39, ``torch.randn_like`` before);
    ``calls`` lets the caller check it did."""

    def __init__(self, draw: Callable[[tuple, Any, Any], torch.Tensor]):
        super().__init__()
        self.draw = draw
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.randn_like:
            self.calls += 1
            return self.draw(tuple(args[0].shape), args[0].device, kwargs.get("dtype") or args[0].dtype)
        if func is torch.randn:
            self.calls += 1
            shape = args[0] if len(args) == 1 and not isinstance(args[0], int) else args  # randn(shape), randn(*dims)
            return self.draw(tuple(kwargs.get("size", shape)), kwargs.get("device"), kwargs.get("dtype"))
        return func(*args, **kwargs)


# -- FlowMatchEulerDiscreteScheduler -------------------------------------------------------------------------------


@_with_config_arguments
class FlowschedScheduler(_ScheduleDriven, FlowMatchEulerDiscreteScheduler):
    """diffusers' ``FlowMatchEulerDiscreteScheduler`` walking a flowsched schedule.

    Args:
        schedule: a spec string for :func:`flowsched.spec.from_spec` (``"shifted:alpha=3"``, a preset name ...),
            a :class:`~flowsched.Schedule`, its JSON document, a list of ``N + 1`` ``t`` values, or a JSON file
            (stored by value). ``set_timesteps(N)`` evaluates a spec at ``N`` steps and resamples a fixed schedule
            (or a spec that pins ``steps``) to ``N`` (:func:`flowsched.schedules.loglinear_interp`); the
            pipeline's ``sigmas``, ``mu`` and ``timesteps`` only give ``N`` (a ``mu`` the schedule does not use is
            reported once). The training schedule (before any ``set_timesteps``) is the schedule at
            ``num_train_timesteps`` steps, terminal dropped. None (default): diffusers' own ``set_timesteps``.
        noise_seed: with ``stochastic_sampling=True``, step ``k`` of the run (counted from the first step taken)
            re-noises with portable noise on stream ``1 + k`` of this seed (:func:`flowsched.noise.step_noise`)
            instead of the pipeline's generator: the same on every device and for every batch size.
        **config: ``FlowMatchEulerDiscreteScheduler``'s config, its defaults and meaning. With a schedule, only
            ``num_train_timesteps`` (the model timestep is ``t * num_train_timesteps``) and ``invert_sigmas``
            (Mochi: ``1 - t``) act on the sigmas; the others stay for pipelines to read and for swapping back.

    ``sigmas`` (``N + 1`` float32, with the terminal) and ``timesteps`` (``N`` float32: ``schedule.model_timesteps()``)
    are diffusers' attributes; ``schedule`` is the :class:`~flowsched.Schedule` walked (float64 copy of ``sigmas``).
    Everything else (``step``, ``scale_noise``, ``index_for_timestep``, the stochastic and per-token steps, the
    config) is diffusers' code, with a clear error for arguments it would take silently or fail on obscurely.
    """

    _compatibles = ["FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler", "FlowMatchLCMScheduler"]
    init_noise_sigma = 1.0  # pipelines written for other schedulers scale their initial noise by it

    def __init__(self, schedule: Any = None, *, noise_seed: int | None = None, **config: Any):
        _check_euler_config(config)
        seed = _check_noise_seed(noise_seed, config)
        super().__init__(**config)
        self._keep_schedule(schedule, noise_seed=seed)
        self._first_step: int | None = None
        self.num_inference_steps: int | None = None  # diffusers sets it in set_timesteps only
        if schedule is not None:  # the training schedule: the schedule at T steps, without the terminal
            sigmas, timesteps = self._state(self._schedule_at(self.config.num_train_timesteps))
            self.sigmas, self.timesteps = sigmas[:-1], timesteps
            self.sigma_min, self.sigma_max = self.sigmas[-1].item(), self.sigmas[0].item()

    def _state(self, schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
        return _euler_tensors(schedule, self.config.num_train_timesteps, bool(self.config.get("invert_sigmas")))

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: Sequence[float] | np.ndarray | None = None,
        mu: float | None = None,
        timesteps: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Set the ``N`` steps to run (pipelines call it before the denoising loop): the schedule at ``N`` steps,
        or without one diffusers' ``set_timesteps`` with these arguments."""
        n = _step_count(num_inference_steps, sigmas, timesteps)
        if self.config.get("schedule") is None:
            self._diffusers_timesteps(num_inference_steps, device, sigmas=sigmas, mu=mu, timesteps=timesteps)
            return
        schedule = self._schedule_at(n)
        self._note_mu(mu, schedule)
        sigmas, timesteps = self._state(schedule)
        self.sigmas, self.timesteps = sigmas.to(device), timesteps.to(device)
        self.num_inference_steps, self._step_index, self._begin_index = n, None, None
        self.schedule = schedule

    def _diffusers_timesteps(self, num_inference_steps: int | None, device: Any, **custom: Any) -> None:
        mu = custom["mu"]
        if mu is not None:
            real("mu", mu)
            if self.config.use_dynamic_shifting and self.config.get("time_shift_type") == "linear" and mu <= 0:
                raise ValueError(f"mu must be > 0 with time_shift_type='linear' (alpha = mu), got {mu}")
        given = {k: v for k, v in custom.items() if v is not None}  # older diffusers lack some of these arguments
        super().set_timesteps(num_inference_steps, device, **given)
        params = {"num_steps": self.num_inference_steps, **({"mu": float(mu)} if mu is not None else {})}
        try:
            self.schedule = Schedule(self.sigmas.double().cpu().numpy(), name="diffusers", params=params)
        except ValueError as exc:
            raise ValueError(
                f"diffusers' rule with this config and these arguments gives unusable sigmas ({exc}); diffusers "
                "would walk them anyway. Check shift, sigmas and timesteps"
            ) from None

    def stretch_shift_to_terminal(self, t: Any) -> Any:
        """diffusers' ``shift_terminal`` stretch, skipped where there is nothing to stretch (one step, or custom
        sigmas ending at 1): there diffusers 0.42.1 divides 0 by 0 and returns NaN sigmas; later releases skip the
        stretch for one step the same way (diffusers issue #14411)."""
        return t if (1 - t)[-1] == 0 else super().stretch_shift_to_terminal(t)

    def set_shift(self, shift: float) -> None:
        """diffusers' ``set_shift``: the static shift of later ``set_timesteps`` calls (without a schedule)."""
        positive_real("shift", shift)
        if self.config.get("schedule") is not None:
            raise ValueError(
                "set_shift changes diffusers' static shift, which a flowsched schedule does not use; put the shift "
                f"in the schedule instead (e.g. 'shifted:alpha={shift}')"
            )
        super().set_shift(shift)

    def set_begin_index(self, begin_index: int = 0) -> None:
        super().set_begin_index(nonnegative_int("begin_index", begin_index))

    def index_for_timestep(self, timestep: Any, schedule_timesteps: torch.Tensor | None = None) -> int:
        """diffusers' exact-match lookup (the second of several matches), raising :class:`TimestepNotFoundError`
        that names the closest timestep where diffusers raises a bare ``IndexError``."""
        try:
            return super().index_for_timestep(timestep, schedule_timesteps)
        except IndexError:
            ts = self.timesteps if schedule_timesteps is None else schedule_timesteps
            value = float(timestep)
            near = int(torch.argmin((ts.detach().to("cpu", torch.float64) - value).abs()))
            raise TimestepNotFoundError(
                f"timestep {value!r} is not one of this scheduler's timesteps (closest: {float(ts[near])!r} at "
                f"step {near}); pass a value taken from scheduler.timesteps (the match is exact, as in diffusers)"
            ) from None

    def _init_step_index(self, timestep: Any) -> None:
        super()._init_step_index(timestep)
        self._first_step = self._step_index  # noise_seed counts the run's steps from here

    def scale_noise(self, sample: torch.Tensor, timestep: Any, noise: torch.Tensor | None = None) -> torch.Tensor:
        """diffusers' forward process ``sigma * noise + (1 - sigma) * sample``; ``noise`` is required."""
        if noise is None:
            raise ValueError("noise is required: scale_noise returns sigma * noise + (1 - sigma) * sample")
        return super().scale_noise(sample, timestep, noise)

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
    ) -> Any:
        """diffusers' ``step`` (Euler, ``stochastic_sampling``, ``per_token_timesteps``), refusing a step past the
        last sigma and per-token timesteps that are not one per token in ``[0, num_train_timesteps]`` before it
        moves. With ``noise_seed`` the stochastic step's noise is portable and ``generator`` is not used."""
        if self._step_index is not None and self._step_index + 1 >= len(self.sigmas):
            raise ValueError(
                f"the schedule has {len(self.sigmas) - 1} steps and all were taken; call set_timesteps() to start "
                "again"
            )
        kwargs = {"s_churn": s_churn, "s_tmin": s_tmin, "s_tmax": s_tmax, "s_noise": s_noise,
                  "generator": generator, "return_dict": return_dict}
        if per_token_timesteps is not None:  # passed only when given: older diffusers lack the argument
            _check_per_token(per_token_timesteps, sample, self.config.num_train_timesteps)
            kwargs["per_token_timesteps"] = per_token_timesteps
        seed = self.config.get("noise_seed")
        if seed is None:
            return super().step(model_output, timestep, sample, **kwargs)
        with _PortableStepNoise(self._step_noise) as hook:
            out = super().step(model_output, timestep, sample, **{**kwargs, "generator": None})
        if hook.calls != 1:
            raise RuntimeError(
                f"diffusers' stochastic step drew its noise {hook.calls} times where flowsched expects one "
                "torch.randn call; noise_seed cannot be honoured with this diffusers release"
            )
        return out

    def _step_noise(self, shape: tuple, device: Any, dtype: Any) -> torch.Tensor:
        from ..noise import step_noise

        k = self._step_index - (self._first_step or 0)
        return step_noise(int(self.config.noise_seed), shape, k, device=device or "cpu", dtype=dtype)


# -- UniPCMultistepScheduler ---------------------------------------------------------------------------------------

#: UniPC's keys that shift or stretch the sigmas it is given, with the values that keep them as given.
_UNIPC_NEUTRAL = {"flow_shift": 1.0, "use_dynamic_shifting": False, "shift_terminal": None}


def _takes_sigmas(cls: type) -> bool:
    return "sigmas" in inspect.signature(cls.set_timesteps).parameters


def _unipc_config(config: dict) -> dict:
    """A UniPC config whose ``set_timesteps(sigmas=...)`` keeps the given sigmas (its flow-sigma path with the
    shift keys neutral), or a clear error where UniPC would read them as DDPM sigmas."""
    config = {"use_flow_sigmas": True, "prediction_type": "flow_prediction", **config}
    if not config["use_flow_sigmas"]:
        raise ValueError(
            "this UniPCMultistepScheduler config has use_flow_sigmas=False: it is a DDPM (noise-prediction) "
            "schedule, not a flow-matching one; flowsched schedules drive flow-matching models only"
        )
    if config["prediction_type"] != "flow_prediction":
        raise ValueError(
            f"this UniPCMultistepScheduler config has prediction_type={config['prediction_type']!r}; a flow-matching "
            "model predicts the velocity (prediction_type='flow_prediction')"
        )
    spaced = [k for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas") if config.get(k)]
    if spaced:
        raise ValueError(
            f"UniPCMultistepScheduler with use_flow_sigmas and {spaced[0]}=True derives its sigmas from DDPM betas "
            "and cannot take given ones; set it to False"
        )
    if not _takes_sigmas(UniPCMultistepScheduler):
        raise ValueError(
            "this diffusers release's UniPCMultistepScheduler.set_timesteps takes no sigmas (diffusers 0.37 and "
            "later do); run the schedule with FlowschedScheduler (Euler steps) or upgrade diffusers"
        )
    keys = inspect.signature(UniPCMultistepScheduler.__init__).parameters
    return {**config, **{k: v for k, v in _UNIPC_NEUTRAL.items() if k in keys}}


@_with_config_arguments
class FlowschedUniPCMultistepScheduler(_ScheduleDriven, UniPCMultistepScheduler):
    """diffusers' ``UniPCMultistepScheduler`` with flow sigmas (Wan's diffusers checkpoints) walking a flowsched
    schedule with UniPC's own multistep solver.

    ``set_timesteps(N)`` hands UniPC the schedule's ``N`` evaluation points as ``set_timesteps(sigmas=...)``
    (diffusers 0.37 and later); UniPC then does what it does with given sigmas: a first sigma within 1e-6 of 1 is
    lowered by 1e-6 (UniPC takes ``log(1 - sigma)``), the model is fed ``int64(sigma * T)`` (truncated), and the
    terminal is 0 (``final_sigmas_type="zero"``, the schedule's own terminal must be 0) or the last sigma. So
    that UniPC keeps the sigmas as given, its shift keys are stored neutral (``flow_shift=1``,
    ``use_dynamic_shifting=False``, ``shift_terminal=None``) when a schedule is set; ``use_flow_sigmas=True`` and
    ``prediction_type="flow_prediction"`` are the defaults then. Without a schedule it is UniPC itself.

    Args:
        schedule: as for :class:`FlowschedScheduler`.
        **config: ``UniPCMultistepScheduler``'s config.
    """

    def __init__(self, schedule: Any = None, **config: Any):
        super().__init__(**(_unipc_config(config) if schedule is not None else config))
        self._keep_schedule(schedule)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: Sequence[float] | np.ndarray | None = None,
        mu: float | None = None,
    ) -> None:
        """Set the ``N`` steps to run: UniPC's ``set_timesteps`` with the schedule's sigmas at ``N`` steps (the
        pipeline's ``sigmas`` and ``mu`` only give ``N``), or without a schedule with these arguments."""
        n = _step_count(num_inference_steps, sigmas, None)
        if self.config.get("schedule") is None:
            given = {k: v for k, v in (("sigmas", sigmas), ("mu", mu)) if v is not None}
            super().set_timesteps(num_inference_steps, device, **given)
            return
        schedule = self._schedule_at(n)
        self._note_mu(mu, schedule)
        if schedule.t[-1] != 0:
            raise ValueError(
                f"UniPCMultistepScheduler ends its walk at 0 or at its last sigma; this schedule ends at t = "
                f"{schedule.t[-1]:.6g}. Use FlowschedScheduler for a schedule that stops before the data"
            )
        super().set_timesteps(device=device, sigmas=schedule.t[:-1].copy())
        self.schedule = schedule


# -- the entry point -----------------------------------------------------------------------------------------------

#: FlowMatch* schedulers whose set_timesteps takes no given sigmas: replaced by Euler steps.
_EULER_ONLY = ("FlowMatchHeunDiscreteScheduler", "FlowMatchLCMScheduler")


def _sampler_warning(name: str) -> None:
    warnings.warn(
        f"{name} cannot take given sigmas, so FlowschedScheduler walks the schedule with first-order Euler steps: "
        f"swapping it in for {name} changes the sampler, and images differ from {name}'s at the same step count "
        "(use more steps, or keep the pipeline's scheduler).",
        UserWarning,
        stacklevel=3,
    )


def with_schedule(scheduler: Any, schedule: Any, *, noise_seed: int | None = None) -> ConfigMixin:
    """The flowsched-driven counterpart of a pipeline's diffusers scheduler, walking ``schedule``.

    A ``FlowMatchEulerDiscreteScheduler`` (or subclass) becomes a :class:`FlowschedScheduler` and a
    ``UniPCMultistepScheduler`` with flow sigmas a :class:`FlowschedUniPCMultistepScheduler` (its solver kept),
    each from the scheduler's config, so the keys pipelines read stay. Flow schedulers that cannot take given
    sigmas (DPM-Solver++, DEIS, SA-Solver with ``use_flow_sigmas``; FlowMatch Heun and LCM; UniPC before diffusers
    0.37) become a :class:`FlowschedScheduler`, with a warning that the sampler changes to Euler steps; their own
    keys stay in its config. Any other scheduler is refused (``ValueError``).

    Args:
        scheduler: the pipeline's scheduler (``pipe.scheduler``).
        schedule: what :class:`FlowschedScheduler` takes (a spec string, a Schedule, a list of ``t`` values ...).
        noise_seed: portable step noise for ``stochastic_sampling`` (:class:`FlowschedScheduler` only).
    """
    if not isinstance(scheduler, ConfigMixin) or not hasattr(scheduler, "set_timesteps"):
        raise TypeError(f"scheduler must be a diffusers scheduler (pipe.scheduler), got {type(scheduler).__name__}")
    if schedule is None:
        raise ValueError("schedule must be given (a spec string, a Schedule, a list of t values ...), got None")
    name = type(scheduler).__name__
    config = {**scheduler.config, "_class_name": name}  # diffusers then sets the other class's keys aside
    extra = {} if noise_seed is None else {"noise_seed": noise_seed}
    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return FlowschedScheduler.from_config(config, schedule=schedule, **extra)
    if isinstance(scheduler, UniPCMultistepScheduler) and (_takes_sigmas(UniPCMultistepScheduler) or not
                                                           scheduler.config.get("use_flow_sigmas")):
        if noise_seed is not None:
            raise ValueError("noise_seed is for FlowMatchEuler's stochastic_sampling; UniPC takes no noise")
        return FlowschedUniPCMultistepScheduler.from_config(config, schedule=schedule)
    if name in _EULER_ONLY or scheduler.config.get("use_flow_sigmas"):
        if scheduler.config.get("prediction_type", "flow_prediction") != "flow_prediction":
            raise ValueError(
                f"this {name} config has prediction_type={scheduler.config['prediction_type']!r}; a flow-matching "
                "model predicts the velocity (prediction_type='flow_prediction')"
            )
        _sampler_warning(name)
        return FlowschedScheduler.from_config(config, schedule=schedule, **extra)
    raise ValueError(
        f"with_schedule cannot drive a {name}: flowsched schedules drive flow-matching schedulers "
        "(FlowMatchEulerDiscreteScheduler and its relatives, or a scheduler with use_flow_sigmas=True)"
    )
