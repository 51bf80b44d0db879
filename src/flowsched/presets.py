"""Model presets as data: a VAE, a schedule rule with its parameters, defaults, and where the numbers come from.

A preset never holds code. Its ``rule`` names one entry of :data:`RULES`, a small function
``(geometry, num_steps, shift_alpha, **rule_params) -> Schedule`` that applies the model's own rule at the
user's resolution and length. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import schedules
from ._validate import closest, positive_int, positive_real
from .geometry import LatentGeometry, get_vae
from .schedule import Schedule


@dataclass(frozen=True)
class Preset:
    """One model's sampling defaults.

    Attributes:
        name: CLI name (``opensora-2.0-768px``).
        model: human-readable model name.
        vae: name of a :data:`flowsched.geometry.VAES` entry.
        height, width, num_frames: default pixel size and frame count.
        num_steps: default sampler steps.
        rule: key of :data:`RULES` (how the schedule depends on geometry).
        rule_params: the rule's parameters (read-only mapping).
        source: where the defaults come from.
    """

    name: str
    model: str
    vae: str
    height: int
    width: int
    num_frames: int
    num_steps: int
    rule: str
    rule_params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule_params", MappingProxyType(dict(self.rule_params)))

    def geometry(
        self,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_samples: int = 1,
        *,
        strict: bool = False,
    ) -> LatentGeometry:
        """The latent geometry at the preset's defaults, or at the given overrides."""
        return LatentGeometry.from_pixels(
            self.height if height is None else height,
            self.width if width is None else width,
            self.num_frames if num_frames is None else num_frames,
            get_vae(self.vae),
            num_samples,
            strict=strict,
        )

    def schedule(
        self,
        geometry: LatentGeometry | None = None,
        num_steps: int | None = None,
        *,
        shift: bool = True,
        shift_alpha: float | None = None,
    ) -> Schedule:
        """The model's schedule for ``geometry`` (default: the preset's own) and ``num_steps``.

        ``shift=False`` gives the linear grid; ``shift_alpha`` overrides the rule's shift with a static one.
        """
        geometry = self.geometry() if geometry is None else geometry
        num_steps = self.num_steps if num_steps is None else positive_int("num_steps", num_steps)
        if not shift:
            return schedules.linear(num_steps)
        if shift_alpha is not None:
            shift_alpha = positive_real("shift_alpha", shift_alpha)
        return RULES[self.rule](geometry, num_steps, shift_alpha, **self.rule_params)


def _opensora_rule(
    geometry: LatentGeometry,
    num_steps: int,
    shift_alpha: float | None,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
) -> Schedule:
    return schedules.opensora(
        num_steps,
        geometry.image_seq_len,
        geometry.latent_frames,
        shift_alpha=shift_alpha,
        base_shift=base_shift,
        max_shift=max_shift,
    )


#: How each rule turns (geometry, steps, optional static shift override) into a schedule.
RULES: dict[str, Callable[..., Schedule]] = {
    "opensora": _opensora_rule,
}

_OPENSORA_SOURCE = (
    "hpcaitech/Open-Sora 2.0 configs/diffusion/inference/{cfg} and opensora/utils/sampling.py get_schedule "
    "(alpha = lin(image_seq_len; (256,1)-(4096,3)) * sqrt(T'))"
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "opensora-2.0-256px", "Open-Sora 2.0 (256px)", "hunyuan", 192, 336, 129, 50, "opensora",
            source=_OPENSORA_SOURCE.format(cfg="256px.py (resolution 256px, aspect 16:9 -> 192x336, 129 frames)"),
        ),
        Preset(
            "opensora-2.0-768px", "Open-Sora 2.0 (768px)", "hunyuan", 576, 1024, 129, 50, "opensora",
            source=_OPENSORA_SOURCE.format(cfg="768px.py (resolution 768px, aspect 16:9 -> 576x1024, 129 frames)"),
        ),
        Preset(
            "opensora-2.0-dcae", "Open-Sora 2.0 (DC-AE high compression)", "dcae-f32t4c128", 768, 768, 128, 50,
            "opensora",
            source=_OPENSORA_SOURCE.format(cfg="high_compression.py (DC-AE f32t4c128, patch 1, 128 frames)"),
            notes="128 frames is not 4k+1: 32 latent frames decode to 125 frames",
        ),
    )
}

DEFAULT_PRESET = "opensora-2.0-768px"


def get_preset(name: str | Preset) -> Preset:
    """Look up a preset by name; unknown names get the closest match as a hint."""
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise TypeError(f"preset must be a preset name (see `flowsched presets`), got {name!r}")
    try:
        return PRESETS[name]
    except KeyError:
        hint = closest(name, list(PRESETS))
        did = f" Did you mean {hint!r}?" if hint else ""
        raise ValueError(
            f"preset {name!r} is unknown.{did} Run `flowsched presets` to list them "
            f"({', '.join(sorted(PRESETS))})"
        ) from None
