"""The spec language: one line of text that names a schedule (``"shifted:alpha=3"``, ``"wan2.1-t2v-480p:steps=30"``,
a JSON file) or a per-frame schedule (``"diffusion_forcing:steps=30,frames=25,ar_step=5"``, ``"self-forcing"``).
``flowsched compare``, ``plot``, ``evaluate``, ``frames``, the diffusers adapter and configs use it.

The grammar and its rules are documented in docs/schedules.md ("Schedule specs") and docs/frames.md ("Specs and
presets"); both kinds share one parser. This module sits above :mod:`flowsched.presets` (a spec may name a preset)
and :mod:`flowsched.frames`, which sit above :mod:`flowsched.schedules`. numpy only.
"""

from __future__ import annotations

import inspect
import os
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from . import diffusers_rules, presets, schedules
from . import frames as fr
from ._validate import is_int, positive_int, positive_real, suggestion
from .frames import FrameSchedule
from .schedule import Schedule

__all__ = ["FAMILIES", "FRAME_FAMILIES", "PRESET_KEYS", "frame_preset_spec", "frame_schedule_from_spec", "from_spec"]

#: Families reachable from :func:`from_spec` by name.
FAMILIES: dict[str, Callable[..., Schedule]] = {
    "linear": schedules.linear,
    "shifted": schedules.shifted,
    "opensora": schedules.opensora,
    "grid": schedules.grid,
    "diffusers_default": diffusers_rules.diffusers_default,
    "flow_match_euler": diffusers_rules.flow_match_euler,
    "flow_sigmas": diffusers_rules.flow_sigmas,
    "flux": schedules.flux,
    "ltx": schedules.ltx,
    "cogview4": schedules.cogview4,
    "karras": schedules.karras,
    "exponential": schedules.exponential,
    "polyexponential": schedules.polyexponential,
    "beta": schedules.beta,
    "kl_optimal": schedules.kl_optimal,
    "linear_quadratic": schedules.linear_quadratic,
    "comfyui": schedules.comfyui,
}

#: Keys a preset spec accepts (``steps`` is ``num_steps``; ``alpha`` replaces the rule's shift with a static one).
PRESET_KEYS = ("num_steps", "height", "width", "frames", "alpha")

#: The peers' names for the shift value ``alpha`` (diffusers' and ComfyUI's ``shift``, Wan's ``flow_shift``,
#: Open-Sora's ``shift_alpha``): every spec that takes ``alpha`` takes them for it; each means the same number.
_ALPHA_SPELLINGS = ("shift", "flow_shift", "shift_alpha")

_ALIASES = {"steps": "num_steps", "n": "num_steps"}


def _spec_value(text: str) -> Any:
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


def _spec_kwargs(spec: str, body: str, *, aliases: Mapping[str, str] = _ALIASES, what: str = "schedule spec") -> dict:
    """``key=value,...`` as keyword arguments (values by :func:`_spec_value`, keys through ``aliases``); errors
    start with ``what`` and the spec."""
    out: dict = {}
    for item in filter(None, (x.strip() for x in body.split(","))):
        if "=" not in item:
            raise ValueError(f"{what} {spec!r}: expected key=value, got {item!r}")
        key, value = (x.strip() for x in item.split("=", 1))
        key = aliases.get(key, key)
        if not key:
            raise ValueError(f"{what} {spec!r}: expected key=value, got {item!r}")
        if key in out:
            raise ValueError(f"{what} {spec!r}: {key!r} is given twice")
        try:
            out[key] = _spec_value(value)
        except ValueError:
            raise ValueError(f"{what} {spec!r}: {key}={value!r} is not a list of numbers") from None
    return out


def _defaults(defaults: Mapping[str, Any] | None) -> dict:
    if defaults is None:
        return {}
    if not isinstance(defaults, Mapping) or not all(isinstance(k, str) for k in defaults):
        raise TypeError(f"defaults must be a mapping of keyword names to values, got {defaults!r:.80}")
    return {_ALIASES.get(k, k): v for k, v in defaults.items()}


def _alpha_key(spec: str, kwargs: dict, key: str = "alpha", what: str = "schedule spec") -> dict:
    """``kwargs`` with the shift value under ``key``, whichever of ``alpha`` and the peers' spellings the spec
    used (one of them at most), checked to be a number > 0 (or ``none``: the rule's own): ``shift`` is never a
    switch."""
    given = [k for k in ("alpha", *_ALPHA_SPELLINGS) if k in kwargs]
    if len(given) > 1:
        raise ValueError(
            f"{what} {spec!r}: {' and '.join(f'{k}={kwargs[k]}' for k in given)} each set the shift alpha; give one"
        )
    if given:
        value = kwargs.pop(given[0])
        if isinstance(value, bool):
            raise ValueError(
                f"{what} {spec!r}: {given[0]}={str(value).lower()}: {given[0]} is the shift alpha, a number > 0, not "
                "a switch; the unshifted grid linspace(1, 0, N + 1) is the spec linear"
            )
        kwargs[key] = None if value is None else positive_real(f"{what} {spec!r}: {given[0]}", value)
    return kwargs


def from_spec(
    text: str,
    *,
    num_steps: int | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Schedule:
    """Build a schedule from one line of text.

    Forms (docs/schedules.md, "Schedule specs"):
        * ``FAMILY:key=value,...`` -- a family of :data:`FAMILIES` with keyword arguments, e.g.
          ``shifted:alpha=3,steps=30``, ``flux:steps=28,image_seq_len=4096``,
          ``flow_match_euler:steps=28,shift=3``, ``comfyui:scheduler=beta,alpha=3``. ``steps`` means
          ``num_steps``; the shift ``alpha`` may also be written ``shift``, ``flow_shift`` or ``shift_alpha`` (the
          peers' names for it; always a number). Values are numbers, ``true``/``false``/``none``, strings, or
          ``;``-separated number lists (``sigmas=1;0.6;0.3``).
        * ``PRESET`` or ``PRESET:key=value,...`` (also ``preset:PRESET,key=value``) -- a model preset
          (``flowsched presets``) at its default size, with the keys of :data:`PRESET_KEYS`: ``alpha=3`` (or
          ``shift=3``, ``flow_shift=3``, ``shift_alpha=3``) replaces the rule's shift with a static one.
        * a path to a JSON file written by :meth:`Schedule.to_json` (or holding a bare list of ``t`` values),
          or inline JSON: ``[1, 0.7, 0.3, 0]``.

    Args:
        text: the spec.
        num_steps: the step count when the spec does not say ``steps`` (families and presets alike).
        defaults: keyword values used where the family (or preset) takes that keyword and the spec does not
            set it, e.g. ``{"image_seq_len": 4096, "num_frames": 33, "seq_len": 135168}`` from a geometry;
            keys the family does not take are ignored. Not used for JSON.

    Raises ``ValueError`` naming the spec and what is accepted (``TypeError`` for a non-string).
    """
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"a schedule spec must be a non-empty string, got {text!r}")
    text = text.strip()
    if num_steps is not None:
        num_steps = positive_int("num_steps", num_steps)
    fallback = _defaults(defaults)
    if num_steps is not None:
        fallback["num_steps"] = num_steps
    if text[0] in "[{" or text.lower().endswith(".json") or os.path.isfile(text):
        return Schedule.from_json(text)
    head, _, body = text.partition(":")
    head = head.strip()
    if head == "preset":
        name, _, body = body.partition(",")
        return _preset_from_spec(text, name.strip(), _spec_kwargs(text, body), fallback)
    if head in FAMILIES:
        return _family_from_spec(text, head, _spec_kwargs(text, body), fallback)
    if head in presets.PRESETS:
        return _preset_from_spec(text, head, _spec_kwargs(text, body), fallback)
    if head in FRAME_FAMILIES or head in presets.FRAME_PRESETS:
        kind = "frame family" if head in FRAME_FAMILIES else "frame preset"
        raise ValueError(
            f"schedule spec {text!r}: {head!r} is a {kind}, a per-frame schedule, not one schedule for every frame: "
            "use it with `flowsched frames` or flowsched.spec.frame_schedule_from_spec"
        )
    hint = suggestion(head, [*FAMILIES, *presets.PRESETS])
    raise ValueError(
        f"schedule spec {text!r}: {head!r} is neither a family nor a preset.{hint}"
        f" Families: {', '.join(FAMILIES)}; presets: `flowsched presets`; or give a JSON file"
    )


def _family_from_spec(spec: str, name: str, kwargs: dict, fallback: dict) -> Schedule:
    func = FAMILIES[name]
    sig = inspect.signature(func)
    named = {k for k, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD}
    accepts_any = len(named) < len(sig.parameters)
    if "alpha" in named or accepts_any:  # a config passed through (flow_match_euler) calls alpha ``shift``
        kwargs = _alpha_key(spec, kwargs, "alpha" if "alpha" in named else "shift")
    if not accepts_any:
        unknown = [k for k in kwargs if k not in sig.parameters]
        if unknown:
            raise ValueError(
                f"schedule spec {spec!r}: {name} takes no parameter {unknown[0]!r}; it accepts "
                f"{', '.join(named)} (steps = num_steps)"
            )
    for key, value in fallback.items():
        if key in named and key not in kwargs:
            kwargs[key] = value
    missing = [
        p.name for p in sig.parameters.values()
        if p.default is p.empty and p.kind is not p.VAR_KEYWORD and p.name not in kwargs
    ]
    if missing:
        example = f"{name}:{','.join(f'{m}=...' for m in missing)}"
        models = [p for p in presets.PRESETS if p.startswith(name)]
        also = f"; or the model preset {' / '.join(models)}" if models else ""
        raise ValueError(f"schedule spec {spec!r}: {name} needs {', '.join(missing)} (e.g. {example}){also}")
    return func(**kwargs)


def _preset_from_spec(spec: str, name: str, kwargs: dict, fallback: dict) -> Schedule:
    preset = presets.get_preset(name)
    kwargs = _alpha_key(spec, kwargs)
    unknown = [k for k in kwargs if k not in PRESET_KEYS]
    if unknown:
        raise ValueError(
            f"schedule spec {spec!r}: a preset accepts steps, height, width, frames and the static shift alpha "
            f"(also written shift, flow_shift or shift_alpha); got {unknown[0]!r}"
        )
    for key, value in fallback.items():
        if key in PRESET_KEYS and key not in kwargs:
            kwargs[key] = value
    geometry = preset.geometry(kwargs.get("height"), kwargs.get("width"), kwargs.get("frames"))
    return preset.schedule(geometry, kwargs.get("num_steps"), alpha=kwargs.get("alpha"))


# -- frame schedules -------------------------------------------------------------------------------------------
#
# A frame-schedule spec is ``FAMILY:key=value,...`` or ``PRESET`` / ``PRESET:key=value,...`` (a FRAME_PRESETS entry
# with overrides). Each family builds its own base schedule from ``steps`` and ``alpha`` (SkyReels-V2's UniPC grid,
# MAGI-1's grid, the Self-Forcing/CausVid step list, or a plain shifted grid for Diffusion Forcing), so one line
# names everything. ``frames`` counts LATENT frames here. Keys are the builders' parameter names, with the short
# forms of frames.SPEC_KEYS (``steps`` is a step count, or blockwise's list of timesteps), plus ``max_cells``; the
# shift ``alpha`` may be spelled as in schedule specs. FrameSchedule.spec() writes these keys, so what a schedule
# prints about itself reads back; the builders' messages are translated to these keys.


def _frame_diffusion_forcing(steps=30, alpha=8.0, frames=25, causal_block_size=1, ar_step=0, prefix_frames=0,
                             addnoise_condition=0, window=None, max_cells=None) -> FrameSchedule:
    return fr.diffusion_forcing(fr.skyreels_base(steps, alpha), frames, causal_block_size=causal_block_size,
                                ar_step=ar_step, prefix_frames=prefix_frames, addnoise_condition=addnoise_condition,
                                window=window, max_cells=max_cells)


def _frame_pyramid(steps=50, alpha=1.0, frames=16, u=1.0, prefix_frames=0, max_cells=None) -> FrameSchedule:
    return fr.pyramid(schedules.shifted(steps, alpha), frames, u=u, prefix_frames=prefix_frames, max_cells=max_cells)


def _frame_full_sequence(steps=50, alpha=1.0, frames=16, prefix_frames=0, max_cells=None) -> FrameSchedule:
    return fr.full_sequence(schedules.shifted(steps, alpha), frames, prefix_frames=prefix_frames, max_cells=max_cells)


def _frame_autoregressive(steps=50, alpha=1.0, frames=16, prefix_frames=0, max_cells=None) -> FrameSchedule:
    return fr.autoregressive(schedules.shifted(steps, alpha), frames, prefix_frames=prefix_frames,
                             max_cells=max_cells)


def _frame_staircase(steps=64, alpha=3.0, chunks=4, chunk_frames=6, window=4, prefix_chunks=0,
                     clean_t=0.9999, max_cells=None) -> FrameSchedule:
    return fr.staircase(fr.magi_base(steps, alpha), chunks, chunk_frames=chunk_frames, window=window,
                        prefix_chunks=prefix_chunks, clean_t=clean_t, max_cells=max_cells)


def _frame_blockwise(steps=(1000, 750, 500, 250), blocks=7, block_frames=3, alpha=5.0, warp=True,
                     prefix_frames=0, num_train_timesteps=1000, max_cells=None) -> FrameSchedule:
    if is_int(steps) or isinstance(steps, float):
        steps = [steps]
    if isinstance(steps, (list, tuple)):
        # the spec parser reads ';' lists as floats; whole numbers are the integer timesteps blockwise takes
        steps = [int(v) if isinstance(v, float) and v.is_integer() else v for v in steps]
    return fr.blockwise(steps, blocks, block_frames=block_frames, alpha=alpha, warp=warp, prefix_frames=prefix_frames,
                        num_train_timesteps=num_train_timesteps, max_cells=max_cells)


#: Frame-schedule families reachable from :func:`frame_schedule_from_spec` by name: each builds its base schedule
#: from the spec's ``steps`` and ``alpha`` and takes the keys of its signature, with the defaults shown by
#: ``flowsched frames --help``.
FRAME_FAMILIES: dict[str, Callable[..., FrameSchedule]] = {
    "diffusion_forcing": _frame_diffusion_forcing,
    "pyramid": _frame_pyramid,
    "full_sequence": _frame_full_sequence,
    "autoregressive": _frame_autoregressive,
    "staircase": _frame_staircase,
    "blockwise": _frame_blockwise,
}


def _frame_keys(family: str) -> tuple[str, ...]:
    return tuple(inspect.signature(FRAME_FAMILIES[family]).parameters)


_BUILDER_NAMES = re.compile(r"\b(" + "|".join(fr.SPEC_KEYS) + r")\b")


def _in_spec_terms(message: str) -> str:
    """A family's message with its parameter names as the spec spells them (``num_frames`` -> ``frames``)."""
    return _BUILDER_NAMES.sub(lambda m: fr.SPEC_KEYS[m.group(1)], message)


def _build_frames(spec: str, family: str, kwargs: dict, what: str) -> FrameSchedule:
    """The family called with the spec's keys (each one it accepts; ``alpha`` in any spelling). Its errors and
    warnings name the keys as the spec writes them."""
    accepted = _frame_keys(family)
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(
            f"{what} {spec!r}: {family} takes no parameter {unknown[0]!r}; it accepts {', '.join(accepted)}"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fs = FRAME_FAMILIES[family](**kwargs)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{what} {spec!r}: {_in_spec_terms(str(exc))}") from None
    for w in caught:
        warnings.warn(_in_spec_terms(str(w.message)), w.category, stacklevel=3)
    return fs


def frame_preset_spec(preset: str | presets.FramePreset) -> str:
    """A frame preset (a :data:`flowsched.presets.FRAME_PRESETS` entry or its name) as the equivalent
    ``FAMILY:key=value,...`` spec (lists ``;``-separated)."""
    p = preset if isinstance(preset, presets.FramePreset) else presets.get_frame_preset(preset)
    parts = [f"{k}={';'.join(str(x) for x in v)}" if isinstance(v, (list, tuple)) else f"{k}={v}"
             for k, v in p.params.items()]
    return f"{p.family}:{','.join(parts)}"


def frame_schedule_from_spec(text: str) -> FrameSchedule:
    """Build a per-frame schedule (:class:`~flowsched.frames.FrameSchedule`) from one line of text.

    Forms (docs/frames.md, "Specs and presets"), parsed like schedule specs (:func:`from_spec`):
        * ``FAMILY:key=value,...`` with a family of :data:`FRAME_FAMILIES`:
          ``diffusion_forcing:steps=30,alpha=8,frames=25,ar_step=5,causal_block_size=5`` (base
          :func:`flowsched.frames.skyreels_base`), ``pyramid:steps=50,frames=16,u=2`` and
          ``full_sequence``/``autoregressive`` (base ``schedules.shifted(steps, alpha)``, alpha 1 by default),
          ``staircase:steps=64,chunks=4`` (base :func:`flowsched.frames.magi_base`),
          ``blockwise:steps=1000;750;500;250,blocks=7,alpha=5`` (base :func:`flowsched.frames.blockwise_base`).
          The shift ``alpha`` may also be written ``shift`` (the peers' name), ``flow_shift`` or ``shift_alpha``.
          A bare ``FAMILY`` uses its defaults; ``frames`` counts latent frames; lists are ``;``-separated (quote
          such a spec in a shell); ``max_cells=N`` raises the size limit. :meth:`FrameSchedule.spec` (``str(fs)``)
          writes this form, with every key.
        * ``PRESET`` or ``PRESET:key=value,...``: a :data:`flowsched.presets.FRAME_PRESETS` entry with overrides of
          its family's keys (``magi-1-4.5b:chunks=6``).
        * a JSON file written by :meth:`FrameSchedule.to_json`, or inline JSON.

    Raises ``ValueError`` naming the spec and what is accepted (``TypeError`` for a non-string); a family's errors
    and warnings name the spec's keys (``frames``, not ``num_frames``).
    """
    what = "frame schedule spec"
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"a frame schedule spec must be a non-empty string, got {text!r}")
    text = text.strip()
    if text[0] == "{" or text.lower().endswith(".json") or os.path.isfile(text):
        return FrameSchedule.from_json(text)
    head, _, body = text.partition(":")
    head = head.strip()
    kwargs = _alpha_key(text, _spec_kwargs(text, body, aliases={}, what=what), what=what)
    if head in FRAME_FAMILIES:
        return _build_frames(text, head, kwargs, what)
    if head in presets.FRAME_PRESETS:
        preset = presets.FRAME_PRESETS[head]
        return _build_frames(text, preset.family, {**preset.params, **kwargs}, f"{what} (frame preset {head})")
    if head in FAMILIES or head in presets.PRESETS:
        kind = "schedule family" if head in FAMILIES else "model preset"
        raise ValueError(
            f"{what} {text!r}: {head!r} is a {kind} (one schedule for every frame), not a frame schedule; frame "
            f"families: {', '.join(FRAME_FAMILIES)}; frame presets: {', '.join(presets.FRAME_PRESETS)}"
        )
    hint = suggestion(head, [*FRAME_FAMILIES, *presets.FRAME_PRESETS])
    raise ValueError(
        f"{what} {text!r}: {head!r} is neither a frame family nor a frame preset.{hint} Frame families: "
        f"{', '.join(FRAME_FAMILIES)}; frame presets: {', '.join(presets.FRAME_PRESETS)}"
    )
