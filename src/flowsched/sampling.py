"""Euler, Heun and two stochastic samplers over any velocity callable, for torch tensors and numpy arrays;
:func:`euler_frames` for per-frame schedules (diffusion forcing, autoregressive video); and the forward process
:func:`add_noise` that puts a given latent at a noise level.

Convention (docs/conventions.md): ``x_t = (1 - t) * x0 + t * eps``, ``t = 1`` is pure noise, ``t = 0`` is data, and
the model predicts the velocity ``v = eps - x0``. A sampler walks a schedule ``t_0 > t_1 > ... > t_N`` with Open-Sora
2.0's step ``x <- x + (t_next - t) * v(x, t)`` (``opensora/utils/sampling.py``, ``SamplingOption`` denoise loop;
Flux's ``denoise`` is the same line).

The velocity callable is ``velocity(x, t) -> v``:

- ``x`` is the current state, the same type (numpy array or torch tensor), shape, dtype and device as the ``x``
  passed to the sampler;
- ``t`` is a plain Python ``float`` (the schedule value, not ``t * 1000``); wrap your model if it wants a tensor
  or a batched timestep, e.g. ``lambda x, t: model(x, torch.full((x.shape[0],), t * 1000, device=x.device))``;
- ``v`` must have the shape of ``x`` and be finite. A wrong shape stops the sampler with a ``ValueError`` that names
  the step index and ``t``; NaN or inf too, as far as ``check`` looks (below).

``check`` (:class:`CheckPolicy`): ``"first"`` (default) checks the shape of every ``v``, and finiteness on the first
call and on the result (a finiteness check on a GPU tensor is a device-to-host sync; one per run costs nothing
measurable); ``"every"`` checks finiteness on every call, naming the first bad step; ``"none"`` checks shapes only.

Schedules: a :class:`~flowsched.schedule.Schedule` or any sequence of ``N + 1`` numbers, checked by
:func:`~flowsched.schedule.check_t`: strictly decreasing inside [0, 1]; a sampler that starts from pure noise and
must return data needs ``t_0 = 1`` and ``t_N = 0`` (within 1e-6), unless ``allow_partial=True`` (image-to-image
starting at ``t_0 < 1``, or a partial trajectory stopping at ``t_N > 0``).

How the code reads: each public sampler checks its arguments once, then hands a small step function (the
mathematics of one step, nothing else) to :func:`_integrate`, the one loop every sampler shares (callback, progress
bar, the final check). Samplers are plain functions, listed once in :data:`SAMPLERS`. They use only ``+`` and scalar
``*`` on ``x``, so they work unchanged for numpy and torch (any device or dtype; the step is computed like
Open-Sora's, a Python float times the tensor).

Stochastic samplers (:func:`euler_ancestral`, :func:`stochastic_euler`) add fresh noise ``eps`` at each step. It comes
from ``noise(step_index, x) -> eps`` (a callable returning an array or tensor like ``x``), or, with ``seed=``, from
:func:`flowsched.noise.step_noise`: step ``i`` draws portable noise on stream ``1 + i`` (stream 0 is the initial
noise; docs/portable-noise.md, "Streams"), so the whole trajectory is a pure function of the seed, the same on every
device, batch size (``sample_index``) and backend. docs/partial-and-stochastic.md has the update rules and sources.
:func:`euler_frames` takes its noise the same way (``noise=``, ``seed=``, ``sample_index=``) and the same ``check``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._optional import progress_bar
from ._validate import boolean, choice, is_int, is_torch_tensor, nonnegative_real
from .frames import FrameSchedule
from .philox import check_seed
from .schedule import Schedule, check_t

Velocity = Callable[[Any, float], Any]
Callback = Callable[[int, float, float, Any], Any]
NoiseSource = Callable[[int, Any], Any]
#: ``model(x_w, t_w) -> v`` of :func:`euler_frames`: the state on the step's window and the window's per-frame ``t``.
FrameModel = Callable[[Any, Any], Any]
FrameCallback = Callable[[int, np.ndarray, np.ndarray, Any], Any]

#: What a sampler checks of the velocity it calls (see the module docstring and :class:`CheckPolicy`).
CHECKS = ("first", "every", "none")

__all__ = [
    "CHECKS",
    "DETERMINISTIC",
    "MAX_S_NOISE",
    "SAMPLERS",
    "STOCHASTIC",
    "CheckPolicy",
    "add_noise",
    "ancestral_coefficients",
    "call_velocity",
    "check_finite",
    "check_s_noise",
    "euler",
    "euler_ancestral",
    "euler_frames",
    "get_sampler",
    "heun",
    "nfe",
    "portable_step_noise",
    "schedule_values",
    "stochastic_euler",
]


# -- checks: what a sampler accepts, and what it asks of the values it is given ------------------------------------


def schedule_values(schedule: Schedule | Sequence[float] | np.ndarray, *, allow_partial: bool = False) -> np.ndarray:
    """The schedule as a float64 array, checked by :func:`~flowsched.schedule.check_t` for what a noise-to-data
    sampler needs: finite, in [0, 1], strictly decreasing, at least two values, and (unless ``allow_partial``)
    starting at 1 and ending at 0. ``ValueError`` names the offending index."""
    if not isinstance(schedule, Schedule) and (isinstance(schedule, (str, bytes)) or not hasattr(schedule, "__len__")):
        raise TypeError(f"schedule must be a Schedule or a sequence of N + 1 numbers, got {type(schedule).__name__}")
    values = schedule.t if isinstance(schedule, Schedule) else schedule
    if boolean("allow_partial", allow_partial):
        return check_t(values, "schedule")
    return check_t(
        values, "schedule", start=1.0, end=0.0,
        hint="pass allow_partial=True to start from a partly noised x (image-to-image) or to stop early",
    )


def _check_state(x: Any) -> None:
    if not (isinstance(x, np.ndarray) or is_torch_tensor(x)):
        raise TypeError(f"x must be a numpy array or a torch tensor, got {type(x).__name__}")
    if isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")
    if is_torch_tensor(x) and not x.is_floating_point():
        raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")


#: The largest ``s_noise`` accepted: ComfyUI's SamplerEulerAncestral node offers ``s_noise`` in [0, 100]; far beyond
#: it the fresh noise swamps the sample and the quality models' errors overflow to inf.
MAX_S_NOISE = 100.0


def check_s_noise(s_noise: Any) -> float:
    """``s_noise``, the scale of an ancestral step's fresh noise, as a float in ``[0, MAX_S_NOISE]``."""
    s_noise = nonnegative_real("s_noise", s_noise)
    if s_noise > MAX_S_NOISE:
        raise ValueError(
            f"s_noise must be at most {MAX_S_NOISE:g} (1 keeps the marginals exact; ComfyUI offers 0 to 100), "
            f"got {s_noise:g}"
        )
    return s_noise


def check_finite(name: str, x: Any) -> Any:
    """``x``, a numpy array or torch tensor given as data (a start state, a latent, noise), if every value is
    finite; else ``ValueError`` naming ``name``, how many values are NaN or infinite and the index of the first (in
    C order). On a GPU tensor this is one device-to-host synchronisation."""
    if is_torch_tensor(x):
        bad = ~x.isfinite()
        count = int(bad.sum())
        first = tuple(int(i) for i in bad.nonzero()[0]) if count else ()
    else:
        bad = ~np.isfinite(x)
        count = int(np.count_nonzero(bad))
        first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)) if count else ()
    if count:
        raise ValueError(
            f"{name} holds {count} NaN or infinite value{'s' if count > 1 else ''} (the first at index {first}); "
            "data must be finite"
        )
    return x


def _all_finite(v: Any) -> bool:
    return bool(v.isfinite().all()) if is_torch_tensor(v) else bool(np.isfinite(v).all())


def _like_x(what: str, value: Any, x: Any, where: str, shape_note: str = "") -> Any:
    """``value`` (what a model or noise source returned for ``x``) checked to be of ``x``'s kind (a torch tensor for
    a torch ``x``; anything array-like becomes a numpy array) and shape. ``where`` (``"at step 3 (t=0.5)"``) and
    ``shape_note`` go into the errors."""
    if is_torch_tensor(x):
        if not is_torch_tensor(value):
            raise TypeError(f"{what} must return a torch tensor for a torch x, got {type(value).__name__} {where}")
    elif not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if tuple(value.shape) != tuple(x.shape):
        raise ValueError(
            f"{what} returned shape {tuple(value.shape)} {where}; it must match x, {tuple(x.shape)}{shape_note}"
        )
    return value


def call_velocity(velocity: Velocity, x: Any, t: float, *, step: int = 0, stage: str = "", finite: bool = True) -> Any:
    """``velocity(x, t)``, checked: a torch tensor for a torch ``x`` (an array otherwise), the shape of ``x``, and
    with ``finite=True`` no NaN or inf (for a GPU tensor that check is a device-to-host sync). Errors name ``step``
    and ``t`` (``stage`` adds a detail, e.g. ``", Heun corrector"``). Used by the samplers and
    :func:`flowsched.quality.teacher_search`."""
    v = _like_x("velocity", velocity(x, t), x, f"at step {step} (t={t!r}{stage})")
    if finite and not _all_finite(v):
        raise ValueError(f"velocity returned NaN or inf at step {step} (t={t!r}{stage})")
    return v


def _call_noise(source: NoiseSource, i: int, x: Any, where: str, finite: bool) -> Any:
    """``source(i, x)``, checked like a velocity: the type and shape of ``x``, finite when ``finite``. ``where``
    (``"at step 3 (t=0.5)"``) goes into the errors."""
    eps = _like_x("noise", source(i, x), x, where)
    if finite and not _all_finite(eps):
        raise ValueError(f"noise returned NaN or inf {where}")
    return eps


class CheckPolicy:
    """What ``check=`` means for one run: which values a sampler looks at for NaN or inf.

    ``"every"``: every value; ``"none"``: none (shapes are always checked); ``"first"``: the first value of each kind
    (the first velocity, the first noise draw) and then the result. A run asks :meth:`due` before each value it may
    check and :attr:`result` at the end; on a GPU each check is a device-to-host synchronisation.
    """

    def __init__(self, check: str = "first") -> None:
        self.mode = choice("check", check, CHECKS)
        self._seen: set[str] = set()

    def due(self, kind: str = "velocity") -> bool:
        """Check this value of ``kind`` (``"velocity"``, ``"noise"``, ...) now?"""
        if self.mode != "first":
            return self.mode == "every"
        first = kind not in self._seen
        self._seen.add(kind)
        return first

    @property
    def result(self) -> bool:
        """Check the run's result: with ``"first"`` only (``"every"`` has looked at every value already)."""
        return self.mode == "first"


# -- the loop every sampler shares ---------------------------------------------------------------------------------


class _Run:
    """One sampler run, its arguments checked: the model (a velocity, or :func:`euler_frames`' frame model), where
    its fresh noise comes from, the :class:`CheckPolicy`, the callback and the progress bar's label."""

    def __init__(self, name: str, model: Any, callback: Any, progress: bool, check: str, *,
                 noise: NoiseSource | None = None, frames: bool = False) -> None:
        word, index = ("model", "r") if frames else ("velocity", "i")
        if not callable(model):
            raise TypeError(f"{word} must be callable as {word}(x, t), got {type(model).__name__}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback({index}, t, t_next, x) or None, got {callback!r}")
        self.name, self.model, self.noise, self.callback, self.progress = name, model, noise, callback, progress
        self.policy = CheckPolicy(check)
        self.result_error = (
            f"the {name} sampler's result holds NaN or inf: a {word} call after the first returned them (run with "
            f"check='every' to name the step{' and the frame' if frames else ''})"
        )

    def at(self, i: int) -> _StepModel:
        return _StepModel(self, i)


class _StepModel:
    """The model as step ``i`` of a run sees it: :meth:`v` is the velocity, :meth:`eps` a fresh noise draw, both
    checked as the run's policy asks, their errors naming the step."""

    __slots__ = ("run", "i")

    def __init__(self, run: _Run, i: int) -> None:
        self.run, self.i = run, i

    def v(self, x: Any, t: float, stage: str = "") -> Any:
        policy = self.run.policy
        return call_velocity(self.run.model, x, t, step=self.i, stage=stage, finite=policy.due("velocity"))

    def eps(self, x: Any, t: float | None = None) -> Any:
        where = f"at step {self.i}" + ("" if t is None else f" (t={t!r})")
        return _call_noise(self.run.noise, self.i, x, where, self.run.policy.due("noise"))

    def frame_v(self, x_w: Any, t: np.ndarray, window: tuple[int, int], moving: np.ndarray, dim: int) -> Any:
        """The frame model on the window's state ``x_w``, checked as :func:`call_velocity` checks a velocity: the
        kind and shape of ``x_w``; NaN or inf only in the frames the step moves (``moving``: frame indices of the
        whole video; ``t``: every frame's ``t`` before the step), and only a call that moves frames counts as the
        first. Errors name the step and, for NaN or inf, the first bad frame and its ``t``."""
        lo, hi = window
        where = f"at step {self.i}"
        v = _like_x("model", self.run.model(x_w, _frame_t(t[lo:hi], x_w)), x_w, where,
                    f" (its input: frames {lo}:{hi} along frame_dim={dim})")
        if moving.size and self.run.policy.due("velocity"):
            ok = _finite_frames(_take(v, moving - lo, dim), dim)
            if not ok.all():
                f = int(moving[np.flatnonzero(~ok)[0]])
                raise ValueError(f"model returned NaN or inf {where} for frame {f} (t={float(t[f])!r})")
        return v


Step = Callable[[_StepModel, Any, Any, Any], Any]


def _integrate(step: Step, x: Any, t: Sequence[Any], run: _Run) -> Any:
    """``x <- step(model, x, t[i], t[i + 1])`` for each step ``i`` (``model``: the run's model as step ``i`` sees
    it), then the callback and the progress bar; with ``check="first"`` the result is checked at the end."""
    with progress_bar(len(t) - 1, run.progress, run.name) as bar:
        for i in range(len(t) - 1):
            x = step(run.at(i), x, t[i], t[i + 1])
            if run.callback is not None:
                run.callback(i, t[i], t[i + 1], x)
            bar.update(1)
    if run.policy.result and not _all_finite(x):
        raise ValueError(run.result_error)
    return x


# -- the steps: the mathematics, nothing else ----------------------------------------------------------------------


def _euler_step(model: _StepModel, x: Any, t: float, t_next: float) -> Any:
    """Open-Sora 2.0's (and Flux's) step."""
    return x + (t_next - t) * model.v(x, t)


def _heun_step(model: _StepModel, x: Any, t: float, t_next: float) -> Any:
    """Karras et al. 2022, Algorithm 1: an Euler predictor, then the trapezoid rule."""
    h = t_next - t
    d = model.v(x, t)
    if t_next == 0.0:  # EDM's last step is Euler: the model is often undefined at t = 0
        return x + h * d
    d_next = model.v(x + h * d, t_next, ", Heun corrector")
    return x + (0.5 * h) * (d + d_next)


def _ancestral_step(model: _StepModel, x: Any, t: float, t_next: float, *, eta: float, s_noise: float) -> Any:
    """ComfyUI's ``sample_euler_ancestral_RF``: a deterministic step down to ``t_down``, then fresh noise back up to
    ``t_next``."""
    x0 = x - t * model.v(x, t)
    if t_next == 0.0:
        return x0
    down, up, renoise = ancestral_coefficients(t, t_next, eta)
    x = down * x + (1 - down) * x0
    if eta > 0:
        x = up * x + model.eps(x, t) * s_noise * renoise
    return x


def _stochastic_euler_step(model: _StepModel, x: Any, t: float, t_next: float) -> Any:
    """diffusers' ``stochastic_sampling``: the clean estimate re-noised to ``t_next``."""
    x0 = x - t * model.v(x, t)
    if t_next == 0.0:  # diffusers draws noise here and multiplies it by 0
        return x0
    return (1.0 - t_next) * x0 + t_next * model.eps(x, t)


def ancestral_coefficients(t: float, t_next: float, eta: float) -> tuple[float, float, float]:
    """``(t_down / t, alpha_next / alpha_down, renoise)`` of one ComfyUI ``sample_euler_ancestral_RF`` step from
    ``t`` to ``t_next > 0`` (docs/partial-and-stochastic.md): ``t_down = t_next (1 + (t_next / t - 1) eta)``,
    ``alpha = 1 - t``, ``renoise = sqrt(t_next^2 - t_down^2 alpha_next^2 / alpha_down^2)``, each in ComfyUI's order
    of Python float operations. ``ValueError`` naming ``eta`` when the down-step overshoots (no real renoise)."""
    t, t_next, eta = float(t), float(t_next), float(eta)  # ComfyUI's Python floats (and plain numbers in errors)
    ratio = 1 + (t_next / t - 1) * eta
    t_down = t_next * ratio
    a_next = 1 - t_next
    a_down = 1 - t_down
    if t_down < 0 or a_down <= 0:
        raise ValueError(
            f"eta={eta!r} is too large for the step from t={t!r} to t_next={t_next!r}: the down-step lands at "
            f"t_down={t_down!r}, outside [0, 1); use eta in [0, 1] (at most t / (t - t_next) here)"
        )
    square = t_next**2 - t_down**2 * a_next**2 / a_down**2
    if square < 0:
        if square < -1e-12 * t_next**2:
            raise ValueError(
                f"eta={eta!r} is too large for the step from t={t!r} to t_next={t_next!r}: the down-step overshoots "
                f"to t_down={t_down!r} and leaves no noise to add back; use eta in [0, 1]"
            )
        square = 0.0  # rounding of an exact zero (eta = 0 gives t_down = t_next)
    return t_down / t, a_next / a_down, square**0.5


# -- the samplers: check once, then integrate ----------------------------------------------------------------------


def _schedule_run(name: str, velocity: Any, x: Any, schedule: Any, callback: Any, progress: bool,
                  allow_partial: bool, check: str, noise: NoiseSource | None = None) -> tuple[_Run, list[float]]:
    """The checks every schedule sampler makes, in one place: the run and its schedule as Python floats (what the
    velocity is given)."""
    run = _Run(name, velocity, callback, progress, check, noise=noise)
    _check_state(x)
    if run.policy.mode != "none":
        check_finite("x", x)
    return run, schedule_values(schedule, allow_partial=allow_partial).tolist()


def euler(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
    check: str = "first",
) -> Any:
    """Integrate ``dx/dt = velocity(x, t)`` from ``t_0`` to ``t_N`` with Euler steps; ``N`` velocity calls.

    Each step is Open-Sora 2.0's ``x <- x + (t_next - t) * velocity(x, t)``.

    Args:
        velocity: ``velocity(x, t) -> v`` with ``t`` a Python float (see the module docstring).
        x: the start state (noise at ``t_0``): a numpy float array or a torch tensor; not modified.
        schedule: ``N + 1`` strictly decreasing values; ``t_0 = 1`` and ``t_N = 0`` unless ``allow_partial``.
        callback: called as ``callback(i, t, t_next, x)`` after step ``i`` (0-based), with ``x`` the new state at
            ``t_next``.
        progress: show a tqdm bar on stderr.
        allow_partial: accept schedules that start below 1 or stop above 0.
        check: ``"first"``, ``"every"`` or ``"none"``: how often ``v`` is checked for NaN or inf (module docstring).

    Returns:
        The state at ``t_N`` (the data sample when ``t_N = 0``), same type, shape and dtype as ``x``.
    """
    run, t = _schedule_run("euler", velocity, x, schedule, callback, progress, allow_partial, check)
    return _integrate(_euler_step, x, t, run)


def heun(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
    check: str = "first",
) -> Any:
    """Integrate ``dx/dt = velocity(x, t)`` with Heun's second-order (explicit trapezoid) method.

    Each step: ``x' = x + h * v(x, t)``, then ``x <- x + h / 2 * (v(x, t) + v(x', t_next))`` with
    ``h = t_next - t`` (Karras et al. 2022, Algorithm 1). A step that lands on ``t_next = 0`` is a plain Euler
    step, as in EDM's sampler: models are often undefined at ``t = 0``, and for an exact velocity the Euler step
    to 0 already returns the posterior mean ``E[x0 | x_t]``. Cost: ``2N - 1`` velocity calls when ``t_N = 0``
    (:func:`nfe`), ``2N`` otherwise.

    Arguments and return value as in :func:`euler`.
    """
    run, t = _schedule_run("heun", velocity, x, schedule, callback, progress, allow_partial, check)
    return _integrate(_heun_step, x, t, run)


def euler_ancestral(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    noise: NoiseSource | None = None,
    seed: int | None = None,
    sample_index: int | Sequence[int] | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
    check: str = "first",
) -> Any:
    """Euler ancestral sampling for flow models: ComfyUI's ``sample_euler_ancestral_RF`` (Comfy-Org/ComfyUI
    ``comfy/k_diffusion/sampling.py``), with the model's velocity in place of its denoiser; ``N`` velocity calls.

    Step ``i`` from ``t`` to ``t_next``: ``x0 = x - t v(x, t)``; if ``t_next = 0`` the result is ``x0``; else, with
    ``t_down = t_next (1 + (t_next / t - 1) eta)`` and ``alpha = 1 - t``,
    ``x <- (t_down / t) x + (1 - t_down / t) x0`` (a deterministic step down to ``t_down``), then, if ``eta > 0``,
    ``x <- (alpha_next / alpha_down) x + eps * s_noise * sqrt(t_next^2 - t_down^2 alpha_next^2 / alpha_down^2)``,
    which puts ``x`` back on the path at ``t_next`` with fresh noise (variance ``t_next^2`` for ``s_noise = 1``).
    ``eta = 0`` is Euler (the same step in another arithmetic order); ``eta = 1`` jumps down to
    ``t_next^2 / t``. Noise is drawn for every step except one that lands on ``t = 0``.

    Args:
        velocity, x, schedule, callback, progress, allow_partial, check: as in :func:`euler`.
        eta: how much of each step is re-noised, >= 0 (1: full ancestral step; 0: Euler, no noise drawn).
        s_noise: scale of the fresh noise, >= 0 (1 keeps the marginals exact; ComfyUI's option).
        noise: ``noise(step_index, x) -> eps``, standard normal like ``x`` (same type and shape).
        seed: instead of ``noise``: portable per-step noise, step ``i`` on stream ``1 + i`` of ``seed``
            (:func:`flowsched.noise.step_noise`); the run is then a pure function of the seed.
        sample_index: with ``seed``: the portable sample index of each batch position (default: position ``b``
            is ``b``); pass the global indices to get the same samples in any batch or shard.

    Returns:
        The state at ``t_N``, same type, shape and dtype as ``x``.
    """
    eta = nonnegative_real("eta", eta)
    s_noise = check_s_noise(s_noise)
    _check_state(x)
    source = None
    if eta > 0 or noise is not None or seed is not None:  # eta = 0 draws nothing, but what was passed is checked
        source = _noise_source("euler_ancestral", noise, seed, sample_index, x)
    run, t = _schedule_run("euler_ancestral", velocity, x, schedule, callback, progress, allow_partial, check, source)
    return _integrate(functools.partial(_ancestral_step, eta=eta, s_noise=s_noise), x, t, run)


def stochastic_euler(
    velocity: Velocity,
    x: Any,
    schedule: Schedule | Sequence[float] | np.ndarray,
    *,
    noise: NoiseSource | None = None,
    seed: int | None = None,
    sample_index: int | Sequence[int] | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    allow_partial: bool = False,
    check: str = "first",
) -> Any:
    """diffusers' ``FlowMatchEulerDiscreteScheduler(stochastic_sampling=True)`` update (from LTX-Video's ``rf.py``),
    which is also ComfyUI's ``lcm`` sampler on a flow model; ``N`` velocity calls.

    Step ``i`` from ``t`` to ``t_next``: ``x0 = x - t v(x, t)``, then ``x <- (1 - t_next) x0 + t_next eps`` with
    fresh ``eps``: every step re-noises the model's clean estimate to the next level. A step to ``t_next = 0``
    returns ``x0`` and draws no noise (diffusers draws it and multiplies it by 0).

    Arguments and return value as in :func:`euler_ancestral` (without ``eta`` and ``s_noise``).
    """
    _check_state(x)
    source = _noise_source("stochastic_euler", noise, seed, sample_index, x)
    run, t = _schedule_run("stochastic_euler", velocity, x, schedule, callback, progress, allow_partial, check, source)
    return _integrate(_stochastic_euler_step, x, t, run)


#: The samplers by name: the one table every module (and the CLI) reads.
SAMPLERS: dict[str, Callable[..., Any]] = {
    "euler": euler,
    "heun": heun,
    "euler_ancestral": euler_ancestral,
    "stochastic_euler": stochastic_euler,
}

#: Samplers that are a function of the start state alone (ODE solvers), and those that draw noise at each step.
DETERMINISTIC = ("euler", "heun")
STOCHASTIC = ("euler_ancestral", "stochastic_euler")


def get_sampler(name: str, argument: str = "sampler", accepted: Sequence[str] | None = None) -> Callable[..., Any]:
    """The sampler function called ``name`` in :data:`SAMPLERS` (or among ``accepted``, e.g.
    :data:`DETERMINISTIC`); ``ValueError`` naming ``argument`` otherwise."""
    return SAMPLERS[choice(argument, name, tuple(SAMPLERS if accepted is None else accepted))]


def nfe(sampler: str, num_steps: int) -> int:
    """Velocity evaluations a sampler spends on ``num_steps`` steps ending at ``t = 0``.

    ``euler``, ``euler_ancestral``, ``stochastic_euler``: ``N``. ``heun``: ``2N - 1`` (the last step to ``t = 0``
    is an Euler step). A partial Heun schedule that stops at ``t_N > 0`` costs ``2N``.
    """
    get_sampler(sampler)
    return 2 * int(num_steps) - 1 if sampler == "heun" else int(num_steps)


# -- where fresh noise comes from ----------------------------------------------------------------------------------


def _check_sample_index(sample_index: Any, batch: int) -> Any:
    """``None``, an integer or one integer per batch position, each in [0, 2**32) (portable noise's sample word)."""
    if sample_index is None:
        return None
    words = [sample_index] if is_int(sample_index) else sample_index
    if isinstance(words, (str, bytes)) or not isinstance(words, Sequence):
        raise TypeError(f"sample_index must be None, an integer or a list of {batch} integers, got {sample_index!r}")
    if not is_int(sample_index) and len(words) != batch:
        raise ValueError(f"sample_index must hold one index per batch position ({batch}), got {len(words)}")
    top = words[0] + batch - 1 if is_int(sample_index) else None
    for w in words:
        if not is_int(w) or not 0 <= w < 2**32:
            raise ValueError(f"sample_index values must be integers in [0, 2**32), got {w!r}")
    if top is not None and top >= 2**32:
        raise ValueError(f"sample_index={sample_index} + batch {batch} - 1 passes 2**32 - 1")
    return sample_index if is_int(sample_index) else list(words)


def portable_step_noise(seed: int, sample_index: Any = None) -> NoiseSource:
    """The default noise source of the stochastic samplers: ``(i, x) -> eps`` drawing step ``i``'s noise with
    :func:`flowsched.noise.step_noise` (portable noise on stream ``1 + i``) in ``x``'s shape, type, dtype and
    device. ``sample_index`` as in :func:`~flowsched.noise.portable_noise` (default: batch position ``b`` is sample
    ``b``). The values are computed in float32 and cast, so numpy and torch, CPU and GPU get the same numbers."""
    seed = check_seed("seed", seed)

    def draw(i: int, x: Any) -> Any:
        from .noise import step_noise

        if is_torch_tensor(x):
            return step_noise(seed, tuple(x.shape), i, sample_index=sample_index, device=x.device, dtype=x.dtype)
        eps = step_noise(seed, tuple(x.shape), i, sample_index=sample_index).numpy()
        return eps.astype(x.dtype, copy=False)

    return draw


def _noise_source(name: str, noise: Any, seed: Any, sample_index: Any, x: Any, reason: str = "") -> NoiseSource:
    """The per-step noise of a stochastic sampler: ``noise`` (a callable) or portable noise of ``seed``; ``reason``
    says why noise is needed when neither is given (default: ``NAME adds noise at each step``)."""
    if noise is not None:
        if is_int(noise):
            raise TypeError(
                f"noise must be a callable (step_index, x) -> eps or None, got the integer {noise}; for portable "
                f"per-step noise pass seed={noise}"
            )
        if seed is not None:
            raise ValueError(f"{name}: give noise= (a callable (i, x) -> eps) or seed= (portable noise), not both")
        if not callable(noise):
            raise TypeError(f"noise must be callable as noise(step_index, x) -> eps, or None, got {noise!r:.60}")
        if sample_index is not None:
            raise ValueError("sample_index applies to the portable noise of seed=; your noise callable picks its own")
        return noise
    if seed is None:
        raise ValueError(
            f"{reason or name + ' adds noise at each step'}: pass seed= (portable per-step noise, "
            "flowsched.noise.step_noise: stream 1 + i for step i) or noise= (a callable (step_index, x) -> eps)"
        )
    return portable_step_noise(seed, _check_sample_index(sample_index, int(x.shape[0]) if x.ndim else 1))


# -- per-frame schedules -------------------------------------------------------------------------------------------


def _take(x: Any, idx: np.ndarray, dim: int) -> Any:
    if is_torch_tensor(x):
        import torch

        return torch.index_select(x, dim, torch.as_tensor(idx, dtype=torch.long, device=x.device))
    return np.take(x, idx, axis=dim)


def _put(x: Any, idx: np.ndarray, dim: int, values: Any) -> None:
    if is_torch_tensor(x):
        import torch

        x.index_copy_(dim, torch.as_tensor(idx, dtype=torch.long, device=x.device), values.to(x.dtype))
    else:
        sl = [slice(None)] * x.ndim
        sl[dim] = idx
        x[tuple(sl)] = values


def _along(values: np.ndarray, like: Any, dim: int) -> Any:
    """Per-frame numbers shaped to broadcast along ``dim`` of ``like``, in its dtype (and device)."""
    shape = [1] * like.ndim
    shape[dim] = values.size
    if is_torch_tensor(like):
        import torch

        return torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(shape)
    return np.asarray(values, dtype=like.dtype).reshape(shape)


def _frame_t(values: np.ndarray, like: Any) -> Any:
    """The window's per-frame ``t`` as the model gets it: float64 numpy for numpy ``x``; for torch ``x`` a tensor on
    its device, float64 for a float64 ``x`` and float32 otherwise."""
    if is_torch_tensor(like):
        import torch

        dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
        return torch.tensor(np.array(values), dtype=dtype, device=like.device)  # a copy: t is read-only
    return np.array(values, dtype=np.float64)


def _finite_frames(v: Any, dim: int) -> np.ndarray:
    """bool per frame along ``dim``: every value finite (for a GPU tensor, one device-to-host sync)."""
    if is_torch_tensor(v):
        import torch

        ok = torch.isfinite(v)
        other = [d for d in range(v.ndim) if d != dim]
        return ok.all(dim=other).cpu().numpy() if other else ok.cpu().numpy()
    ok = np.isfinite(v)
    other = tuple(d for d in range(v.ndim) if d != dim)
    return ok.all(axis=other) if other else ok


def _frame_euler(x: Any, v: Any, t: np.ndarray, t_next: np.ndarray, dim: int) -> Any:
    """Euler on the moving frames, each at its own ``t``: ``x + (t' - t) v``."""
    return x + _along(t_next - t, x, dim) * v


def _frame_renoise(x: Any, v: Any, t: np.ndarray, t_next: np.ndarray, eps: Any, dim: int) -> Any:
    """Self-Forcing's step on the moving frames: ``(1 - t') x0_hat + t' eps`` with ``x0_hat = x - t v`` (``eps``
    None when every ``t'`` is 0: then it is the Euler step to data)."""
    x0 = x - _along(t, x, dim) * v
    out = _along(1.0 - t_next, x, dim) * x0
    return out if eps is None else out + _along(t_next, x, dim) * eps


def _renoises_prefix(fs: FrameSchedule) -> bool:
    """Whether the given prefix frames are fed to the model noised (``prefix_noise`` at a level above 0)."""
    return fs.prefix_frames > 0 and fs.prefix_noise and fs.prefix_level > 0


def _frame_step(model: _StepModel, x: Any, t: np.ndarray, t_next: np.ndarray, *, fs: FrameSchedule, dim: int,
                stochastic: bool) -> Any:
    """Step ``r`` of :func:`euler_frames`: one model call on the window, then the moving frames are replaced; the
    state is copied only when something moves, so frames that stay are left bit for bit."""
    lo, hi = (int(w) for w in fs.window[model.i])
    moving = np.flatnonzero(fs.update[model.i])
    prefix = np.arange(lo, min(hi, fs.prefix_frames)) if _renoises_prefix(fs) else np.arange(0)
    lands_above_0 = bool(np.any(t_next[moving] > 0))
    eps = model.eps(x) if prefix.size or (stochastic and lands_above_0) else None
    x_w = _take(x, np.arange(lo, hi), dim)
    if prefix.size:  # the given frames go in at prefix_level, with fresh noise each step
        level = fs.prefix_level
        _put(x_w, prefix - lo, dim, (1.0 - level) * _take(x, prefix, dim) + level * _take(eps, prefix, dim))
    v = model.frame_v(x_w, t, (lo, hi), moving, dim)
    if not moving.size:
        return x
    v_m, x_m = _take(v, moving - lo, dim), _take(x, moving, dim)
    if stochastic:
        eps_m = _take(eps, moving, dim) if lands_above_0 else None
        new = _frame_renoise(x_m, v_m, t[moving], t_next[moving], eps_m, dim)
    else:
        new = _frame_euler(x_m, v_m, t[moving], t_next[moving], dim)
    x = x.clone() if is_torch_tensor(x) else x.copy()
    _put(x, moving, dim, new)
    return x


def _frame_axis(x: Any, fs: Any, frame_dim: Any) -> int:
    """``frame_dim`` as an axis of ``x`` that has the frame schedule's frame count."""
    if not isinstance(fs, FrameSchedule):
        raise TypeError(f"frame_schedule must be a flowsched.frames.FrameSchedule, got {type(fs).__name__}")
    _check_state(x)
    if not is_int(frame_dim):
        raise TypeError(f"frame_dim must be an integer axis, got {frame_dim!r}")
    if not -x.ndim <= frame_dim < x.ndim:
        raise ValueError(f"frame_dim must be an axis of x (shape {tuple(x.shape)}), got {frame_dim}")
    dim = int(frame_dim) % x.ndim
    if x.shape[dim] != fs.num_frames:
        raise ValueError(
            f"x has {x.shape[dim]} frames along frame_dim={frame_dim} (shape {tuple(x.shape)}) but the frame "
            f"schedule has {fs.num_frames}"
        )
    return dim


def _frames_noise(fs: FrameSchedule, stochastic: bool, noise: Any, seed: Any, sample_index: Any,
                  x: Any) -> NoiseSource | None:
    """Where :func:`euler_frames` draws fresh noise: needed for the stochastic step and for prefix frames fed
    noised; otherwise None (what was passed is still checked)."""
    if stochastic:
        reason = "euler_frames with stochastic=True re-noises every step"
    elif _renoises_prefix(fs):
        reason = (f"euler_frames feeds the prefix frames to the model noised to t={fs.prefix_level} (prefix_noise) "
                  "with fresh noise each step")
    else:
        if noise is not None or seed is not None:
            _noise_source("euler_frames", noise, seed, sample_index, x)
        return None
    return _noise_source("euler_frames", noise, seed, sample_index, x, reason)


def euler_frames(
    model: FrameModel,
    x: Any,
    frame_schedule: FrameSchedule,
    *,
    frame_dim: int = 2,
    stochastic: bool = False,
    noise: NoiseSource | None = None,
    seed: int | None = None,
    sample_index: int | Sequence[int] | None = None,
    callback: FrameCallback | None = None,
    progress: bool = False,
    check: str = "first",
) -> Any:
    """Sample with a per-frame schedule (:class:`~flowsched.frames.FrameSchedule`): step ``r`` calls ``model`` once
    on the window's frames and moves the frames ``update[r]`` marks; every other frame is left bit for bit as it
    was. ``R`` model calls. docs/frames.md, section 3.

    Args:
        model: ``model(x_w, t_w) -> v``: ``x_w`` is ``x`` restricted to the step's window (frames
            ``window[r, 0]:window[r, 1]`` along ``frame_dim``), ``t_w`` the window's per-frame ``t`` (shape
            ``[F_w]``; float64 numpy for numpy ``x``, a torch tensor on ``x``'s device for torch ``x``, float64 for a
            float64 ``x`` and float32 otherwise). ``v`` (velocity ``eps - x0``) must have ``x_w``'s shape.
        x: the start: noise for generated frames, the given data for prefix frames (numpy float array or torch
            tensor; not modified). ``x.shape[frame_dim]`` must equal ``frame_schedule.num_frames``; the batch is
            axis 0.
        frame_schedule: the :class:`~flowsched.frames.FrameSchedule`.
        frame_dim: the frame axis of ``x`` (2 for ``[B, C, T, H, W]``).
        stochastic: Self-Forcing/CausVid's sampler: a moving frame goes to ``(1 - t') x0_hat + t' eps`` with
            ``x0_hat = x - t v`` and fresh ``eps`` (at ``t' = 0`` this is ``x0_hat``, the Euler step; no noise is
            drawn for a step that moves every frame to 0). ``False``: Euler, ``x + (t' - t) v``.
        noise, seed, sample_index: where fresh noise comes from when a step needs it (``stochastic``, or prefix
            frames fed noised: ``prefix_noise`` with a level above 0), as in :func:`euler_ancestral`:
            ``noise(r, x) -> eps`` shaped like the whole ``x``, or ``seed=`` for portable noise, step ``r`` on
            stream ``1 + r`` (:func:`flowsched.noise.step_noise`; stream 0 is the initial noise, so one seed makes
            both), ``sample_index`` the portable sample index of each batch position.
        callback: called as ``callback(r, t_row, t_next_row, x)`` after step ``r`` with the new state.
        progress: show a tqdm bar on stderr.
        check: ``"first"``, ``"every"`` or ``"none"``, as for the other samplers (module docstring): NaN or inf in
            a frame the step moves raises ``ValueError`` naming the step and the frame (``"every"``), or is found
            on the first call and in the result (``"first"``).

    Returns:
        The final state, same type, shape, dtype (and device) as ``x``.
    """
    dim = _frame_axis(x, frame_schedule, frame_dim)
    stochastic = boolean("stochastic", stochastic)
    source = _frames_noise(frame_schedule, stochastic, noise, seed, sample_index, x)
    run = _Run("euler_frames", model, callback, progress, check, noise=source, frames=True)
    if run.policy.mode != "none":
        check_finite("x", x)
    step = functools.partial(_frame_step, fs=frame_schedule, dim=dim, stochastic=stochastic)
    return _integrate(step, x, frame_schedule.t, run)


# -- forward process -----------------------------------------------------------------------------------------------


def add_noise(x0: Any, noise: Any, t: Any) -> Any:
    """The forward process ``x_t = t * noise + (1 - t) * x0``: a given latent ``x0`` put at noise level ``t`` (the
    first value of a partial schedule, :func:`flowsched.strength.partial`), as image-to-image starts.

    Computed as diffusers' ``FlowMatchEulerDiscreteScheduler.scale_noise`` computes it: ``t`` is rounded to float32
    (diffusers' sigmas are float32) and cast to ``x0``'s dtype (kept in float64 for a float64 ``x0``), then
    ``sigma * noise + (1 - sigma) * x0`` in that dtype, so a float32 result equals diffusers' bit for bit, for torch
    tensors and numpy arrays alike (ComfyUI's ``CONST.noise_scaling`` is the same formula).

    Args:
        x0: the clean latent ``[B, ...]``, a floating numpy array or torch tensor.
        noise: standard normal noise, same type, shape and dtype as ``x0`` (e.g. ``flowsched.noise.noise`` or
            :func:`flowsched.noise.portable_noise` on stream 0).
        t: the noise level in [0, 1] (1 is pure noise): a number, or one per sample (``B`` values: a sequence, a
            numpy array or a torch tensor), broadcast over the other axes.

    Returns:
        ``x_t``, same type, shape and dtype as ``x0``.
    """
    _check_state(x0)
    if is_torch_tensor(x0) != is_torch_tensor(noise) or not (is_torch_tensor(noise) or isinstance(noise, np.ndarray)):
        raise TypeError(
            f"noise must be the same kind of array as x0 ({type(x0).__name__}), got {type(noise).__name__}"
        )
    if tuple(noise.shape) != tuple(x0.shape):
        raise ValueError(f"noise has shape {tuple(noise.shape)}; it must match x0, {tuple(x0.shape)}")
    if noise.dtype != x0.dtype:
        raise TypeError(f"noise has dtype {noise.dtype}; it must match x0's, {x0.dtype}")
    check_finite("x0", x0)
    check_finite("noise", noise)
    if is_torch_tensor(t):
        t = t.detach().to("cpu", dtype=_torch_float64()).numpy()
    values = np.asarray(t, dtype=np.float64) if not isinstance(t, (bool, str, bytes)) else None
    if values is None or values.dtype.kind != "f":
        raise TypeError(f"t must be a number in [0, 1] or one number per sample, got {t!r:.60}")
    if values.ndim > 1 or (values.ndim == 1 and (x0.ndim == 0 or values.size != x0.shape[0])):
        raise ValueError(
            f"t must be one number or one per sample ({x0.shape[0] if x0.ndim else 1}), got shape {values.shape}"
        )
    bad = ~(np.isfinite(values) & (values >= 0) & (values <= 1))
    if bad.any():
        raise ValueError(f"t must lie in [0, 1] (1 is pure noise), got {values[bad].ravel()[0]!r}")
    wide = str(x0.dtype).endswith("float64")
    sig = values if wide else values.astype(np.float32)
    if values.ndim == 1:
        sig = sig.reshape((-1,) + (1,) * (x0.ndim - 1))
    if is_torch_tensor(x0):
        import torch

        sigma = torch.from_numpy(np.ascontiguousarray(sig)).to(device=x0.device, dtype=x0.dtype)
    else:
        sigma = np.asarray(sig).astype(x0.dtype)
    return sigma * noise + (1.0 - sigma) * x0


def _torch_float64() -> Any:
    import torch

    return torch.float64
