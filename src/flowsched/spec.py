"""The spec language: one line of text that names a schedule (``"shifted:alpha=3"``, ``"wan2.1-t2v-480p:steps=30"``,
a JSON file). ``flowsched compare``, ``plot``, ``evaluate``, the diffusers adapter and configs use it.

The grammar and its rules are documented in docs/schedules.md ("Schedule specs"). This module sits above
:mod:`flowsched.presets` (a spec may name a preset), which sits above :mod:`flowsched.schedules`. numpy only.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from . import diffusers_rules, presets, schedules
from ._validate import positive_int, positive_real, suggestion
from .schedule import Schedule

__all__ = ["FAMILIES", "PRESET_KEYS", "from_spec"]

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

#: Per-family spelling of keys: ComfyUI users write the ModelSamplingSD3 node's ``shift`` (= ``alpha``;
#: ModelSamplingFlux's shift is a ``mu`` and is written ``mu=``).
_FAMILY_KEYS: dict[str, dict[str, str]] = {"comfyui": {"shift": "alpha"}}

#: Keys a preset spec accepts (``steps`` is ``num_steps``). ``shift`` is a flag (``true``/``false``) or, as a
#: number, the static shift (what diffusers calls ``shift`` / ``flow_shift``); ``flow_shift`` and
#: ``shift_alpha`` are the static shift.
PRESET_KEYS = ("num_steps", "height", "width", "frames", "shift_alpha", "shift", "flow_shift")

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


def _defaults(defaults: Mapping[str, Any] | None) -> dict:
    if defaults is None:
        return {}
    if not isinstance(defaults, Mapping) or not all(isinstance(k, str) for k in defaults):
        raise TypeError(f"defaults must be a mapping of keyword names to values, got {defaults!r:.80}")
    return {_ALIASES.get(k, k): v for k, v in defaults.items()}


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
          ``flow_match_euler:steps=28,shift=3``, ``comfyui:scheduler=beta,shift=3`` (ComfyUI's ``shift`` is
          ``alpha`` there). ``steps`` means ``num_steps``; values are numbers,
          ``true``/``false``/``none``, strings, or ``;``-separated number lists (``sigmas=1;0.6;0.3``).
        * ``PRESET`` or ``PRESET:key=value,...`` (also ``preset:PRESET,key=value``) -- a model preset
          (``flowsched presets``) at its default size, with the keys of :data:`PRESET_KEYS`; ``shift=3`` and
          ``flow_shift=3`` set the static shift like ``shift_alpha=3``; ``shift=false`` turns the shift off.
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
    hint = suggestion(head, [*FAMILIES, *presets.PRESETS])
    raise ValueError(
        f"schedule spec {text!r}: {head!r} is neither a family nor a preset.{hint}"
        f" Families: {', '.join(FAMILIES)}; presets: `flowsched presets`; or give a JSON file"
    )


def _family_from_spec(spec: str, name: str, kwargs: dict, fallback: dict) -> Schedule:
    func = FAMILIES[name]
    for key, meant in _FAMILY_KEYS.get(name, {}).items():
        if key in kwargs:
            if meant in kwargs:
                raise ValueError(f"schedule spec {spec!r}: {key} and {meant} are the same parameter; give one")
            kwargs[meant] = kwargs.pop(key)
    sig = inspect.signature(func)
    named = {k for k, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD}
    accepts_any = len(named) < len(sig.parameters)
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
    unknown = [k for k in kwargs if k not in PRESET_KEYS]
    if unknown:
        raise ValueError(
            f"schedule spec {spec!r}: a preset accepts steps, height, width, frames, shift (true/false, or the "
            f"static shift), flow_shift and shift_alpha; got {unknown[0]!r}"
        )
    for key, value in fallback.items():
        if key in PRESET_KEYS and key not in kwargs:
            kwargs[key] = value
    shift = True if kwargs.get("shift") is None else kwargs["shift"]
    alpha = kwargs.get("shift_alpha")
    static = {k: kwargs[k] for k in ("flow_shift", "shift_alpha") if kwargs.get(k) is not None}
    if not isinstance(shift, bool):  # shift=3: diffusers' name for the static shift
        static["shift"] = positive_real(f"schedule spec {spec!r}: shift (true, false or the static shift)", shift)
        shift = True
    if len(static) > 1:
        raise ValueError(
            f"schedule spec {spec!r}: {' and '.join(f'{k}={v}' for k, v in static.items())} both set the static "
            "shift; give one"
        )
    if static:
        key, alpha = next(iter(static.items()))
        alpha = positive_real(f"schedule spec {spec!r}: {key}", alpha)
    geometry = preset.geometry(kwargs.get("height"), kwargs.get("width"), kwargs.get("frames"))
    return preset.schedule(geometry, kwargs.get("num_steps"), shift=shift, shift_alpha=alpha)
