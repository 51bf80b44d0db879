"""Model presets as data: a VAE, a schedule rule with its parameters, defaults, and where the numbers come from.

A preset never holds code. Its ``rule`` names one entry of :data:`RULES`, a small function
``(geometry, num_steps, alpha_override, **rule_params) -> Schedule`` that applies the model's own rule at the
user's resolution and length (``alpha_override``: a static shift that replaces the rule's, or ``None``). The
per-frame schedules of diffusion-forcing and autoregressive video models are :data:`FRAME_PRESETS`: a frame
family's name and its spec parameters, built by :func:`flowsched.spec.frame_schedule_from_spec`. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import diffusers_rules, schedules
from ._limits import step_count
from ._validate import boolean, closest, positive_real, suggestion
from .geometry import LatentGeometry, get_vae
from .schedule import Schedule

__all__ = [
    "DEFAULT_PRESET", "FRAME_PRESETS", "PRESETS", "RULES", "FramePreset", "Preset", "get_frame_preset", "get_preset"
]


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
        notes: what users should know about the defaults.
        comfyui: the ComfyUI set-up that gives this model's schedule (read-only mapping; empty when ComfyUI at
            commit a125cd8 has no equivalent): ``scheduler`` (a ComfyUI scheduler name), ``node`` (the
            model-sampling node to set, or ``"model default"``), ``alpha`` (the shift of a
            ``ModelSamplingDiscreteFlow``: ``ModelSamplingSD3`` / ``ModelSamplingAuraFlow``) or ``base_shift``
            and ``max_shift`` (the ``ModelSamplingFlux`` node's line, in ``mu``, over ``width * height / 256``),
            ``notes``. :meth:`comfyui_schedule` computes it (:func:`flowsched.schedules.comfyui`).
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
    comfyui: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule_params", MappingProxyType(dict(self.rule_params)))
        object.__setattr__(self, "comfyui", MappingProxyType(dict(self.comfyui)))

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
        alpha: float | None = None,
        apply_shift: bool = True,
    ) -> Schedule:
        """The model's schedule for ``geometry`` (default: the preset's own) and ``num_steps``.

        ``alpha`` replaces the rule's shift with a static one (the rule keeps its grid and terminal);
        ``apply_shift=False`` gives the unshifted grid ``linspace(1, 0, N + 1)`` (:func:`flowsched.schedules.linear`)
        instead of the rule.
        """
        geometry = self.geometry() if geometry is None else geometry
        num_steps = self.num_steps if num_steps is None else step_count("num_steps", num_steps)
        alpha = None if alpha is None else positive_real("alpha", alpha)
        if not boolean("apply_shift", apply_shift):
            if alpha is not None:
                raise ValueError(f"apply_shift=False asks for the unshifted grid and alpha={alpha:g} for a shift; "
                                 "give one of them")
            return schedules.linear(num_steps)
        return RULES[self.rule](geometry, num_steps, alpha, **self.rule_params)

    def comfyui_args(self, geometry: LatentGeometry | None = None) -> dict[str, Any]:
        """Keyword arguments of :func:`flowsched.schedules.comfyui` (without ``num_steps``) for the ComfyUI
        set-up of :attr:`comfyui` at ``geometry`` (default: the preset's own size).

        ``ModelSamplingFlux``'s ``mu`` is ComfyUI's line ``(width * height / 256) * m + b`` through
        ``(256, base_shift)`` and ``(4096, max_shift)``, in pixels (comfy_extras/nodes_model_advanced.py).
        Raises ``ValueError`` when the preset has no ComfyUI equivalent.
        """
        if not self.comfyui:
            raise ValueError(
                f"preset {self.name!r} has no ComfyUI equivalent (ComfyUI at commit a125cd8 does not run this "
                "model, or samples it with its own scheduler node); presets with one: "
                + ", ".join(p.name for p in PRESETS.values() if p.comfyui)
            )
        c = self.comfyui
        if "alpha" in c:
            return {"scheduler": c["scheduler"], "alpha": float(c["alpha"])}
        geometry = self.geometry() if geometry is None else geometry
        line = schedules.linear_function(256.0, c["base_shift"], 4096.0, c["max_shift"])
        return {"scheduler": c["scheduler"], "mu": line(geometry.width * geometry.height / 256.0)}

    def comfyui_schedule(self, geometry: LatentGeometry | None = None, num_steps: int | None = None) -> Schedule:
        """The sigmas ComfyUI's ``calculate_sigmas`` gives this model with the set-up of :attr:`comfyui`, at
        ``geometry`` and ``num_steps`` (default: the preset's own). See :meth:`comfyui_args`."""
        num_steps = self.num_steps if num_steps is None else step_count("num_steps", num_steps)
        return schedules.comfyui(num_steps=num_steps, **self.comfyui_args(geometry))

    def comfyui_spec(self, geometry: LatentGeometry | None = None, num_steps: int | None = None) -> str:
        """:meth:`comfyui_schedule` as a spec string (``comfyui:scheduler=simple,alpha=5.0,steps=50``) for
        ``flowsched compare`` / ``plot`` and :func:`flowsched.spec.from_spec`."""
        num_steps = self.num_steps if num_steps is None else step_count("num_steps", num_steps)
        args = self.comfyui_args(geometry)
        return "comfyui:" + ",".join(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in args.items()) + (
            f",steps={num_steps}"
        )


def _opensora_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    base_shift: float = 1.0,
    max_shift: float = 3.0,
) -> Schedule:
    return schedules.opensora(
        num_steps,
        geometry.image_seq_len,
        geometry.latent_frames,
        alpha=alpha_override,
        base_shift=base_shift,
        max_shift=max_shift,
    )


def _static_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    alpha: float = 1.0,
    grid: str = "linear",
) -> Schedule:
    """A fixed shift on a named base grid (SD3-style ``shift``, Wan/HunyuanVideo ``flow_shift``)."""
    a = alpha if alpha_override is None else alpha_override
    if grid == "linear":
        return schedules.shifted(num_steps, a)
    return schedules.warp(schedules.grid(num_steps, grid), a)


def _diffusers_default_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    alpha: float = 3.0,
    double_shift: bool = True,
) -> Schedule:
    """diffusers' FlowMatchEuler default path (SD3), with its double-shifted tail unless told otherwise."""
    return diffusers_rules.diffusers_default(num_steps, alpha if alpha_override is None else alpha_override,
                                             double_shift=double_shift)


def _flow_sigmas_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    alpha: float = 1.0,
    solver: str = "unipc",
) -> Schedule:
    """A multistep solver's flow sigmas with a static shift ``alpha`` (their ``flow_shift``) and its integer model
    timesteps (Wan, Sana)."""
    return diffusers_rules.flow_sigmas(num_steps, alpha if alpha_override is None else alpha_override, solver=solver)


def _flux_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> Schedule:
    """BFL's mu line over all tokens of the image (``alpha = exp(mu)``)."""
    if alpha_override is not None:
        return schedules.shifted(num_steps, alpha_override)
    return schedules.flux(num_steps, geometry.seq_len, base_shift, max_shift)


def _ltx_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    base_shift: float = 0.95,
    max_shift: float = 2.05,
    base_seq_len: int = 1024,
    max_seq_len: int = 4096,
    terminal: float = 0.1,
) -> Schedule:
    """LTX-Video: mu line over ``F' * H' * W'`` tokens, stretched so the last evaluation point is ``terminal``."""
    if alpha_override is not None:
        return schedules.stretch_to_terminal(schedules.shifted(num_steps, alpha_override), terminal)
    return schedules.ltx(num_steps, geometry.seq_len, base_shift, max_shift, base_seq_len, max_seq_len, terminal)


def _cogview4_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    base_shift: float = 0.25,
    max_shift: float = 0.75,
    base_seq_len: int = 256,
) -> Schedule:
    """CogView4: sqrt rule over the image tokens, linear time shift (alpha = mu), integer-truncated grid."""
    return schedules.cogview4(num_steps, geometry.image_seq_len, base_shift, max_shift, base_seq_len, mu=alpha_override)


def _linear_quadratic_rule(
    geometry: LatentGeometry,
    num_steps: int,
    alpha_override: float | None,
    threshold_noise: float = 0.025,
) -> Schedule:
    """Mochi: linear-quadratic, no shift (an explicit ``alpha_override`` warps it). Mochi's model is fed
    ``(1 - t) * 1000`` (diffusers' ``invert_sigmas``), recorded as the schedule's timesteps."""
    s = schedules.linear_quadratic(num_steps, threshold_noise)
    if alpha_override is not None:
        s = schedules.warp(s, alpha_override)
    return Schedule(s.t, s.name, s.params, timesteps=(1.0 - s.t[:-1]) * 1000.0)


#: How each rule turns (geometry, steps, optional static shift override) into a schedule.
RULES: dict[str, Callable[..., Schedule]] = {
    "opensora": _opensora_rule,
    "static": _static_rule,
    "diffusers_default": _diffusers_default_rule,
    "flow_sigmas": _flow_sigmas_rule,
    "flux": _flux_rule,
    "ltx": _ltx_rule,
    "cogview4": _cogview4_rule,
    "linear_quadratic": _linear_quadratic_rule,
}

#: Where the ComfyUI set-ups come from: each model's ``sampling_settings`` in ComfyUI's
#: comfy/supported_models.py and the nodes of comfy_extras/nodes_model_advanced.py (Comfy-Org/ComfyUI a125cd8),
#: and the workflows of comfyanonymous/ComfyUI_examples (f9431bb) for the scheduler a model is shown with.
_COMFY_WAN_NOTE = (
    "ComfyUI's own Wan default is shift 8.0 (supported_models.py WAN21_T2V, inherited by the Wan 2.1/2.2 "
    "classes) and its example workflows (wan/, wan22/) set ModelSamplingSD3 8 with simple; ModelSamplingSD3 "
    "{alpha:g} gives Wan's official shift. Wan's own UniPC grid starts at 0.999 and feeds integer timesteps; "
    "ComfyUI's starts at 1"
)

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
        *(
            Preset(
                f"flux.1-{v}", f"FLUX.1 [{v}]", "flux", 1024, 1024, 1, steps, rule, params,
                source=f"black-forest-labs/flux src/flux/sampling.py get_schedule (shift = name != 'flux-schnell'); "
                f"diffusers FluxPipeline defaults 1024x1024, {steps} steps",
                notes=note,
                comfyui=comfy,
            )
            for v, steps, rule, params, note, comfy in (
                ("dev", 28, "flux", {}, "BFL's own CLI uses 50 steps at 1360x768; mu = lin(tokens), alpha = exp(mu)",
                 {"scheduler": "simple", "node": "ModelSamplingFlux", "base_shift": 0.5, "max_shift": 1.15,
                  "notes": "ComfyUI_examples flux/flux_dev_example.png: ModelSamplingFlux (max_shift 1.15, "
                  "base_shift 0.5, the image's width and height) and BasicScheduler simple; a 10000-entry table. "
                  "Without the node ComfyUI's Flux uses mu = 1.15 at every size"}),
                ("schnell", 4, "static", {"alpha": 1.0}, "no shift: linspace(1, 0, N + 1)",
                 {"scheduler": "simple", "node": "model default", "alpha": 1.0,
                  "notes": "supported_models.py FluxSchnell: ModelSamplingDiscreteFlow, shift 1.0, multiplier "
                  "1.0; ComfyUI_examples flux/flux_schnell_example.png: simple, 4 steps"}),
            )
        ),
        *(
            Preset(
                name, model, "sd3", 1024, 1024, 1, 28, "diffusers_default", {"alpha": 3.0, "double_shift": True},
                source="diffusers StableDiffusion3Pipeline (28 steps, 1024x1024; scheduler shift 3.0, default "
                "set_timesteps path); ComfyUI 'normal' and ModelSamplingSD3 shift 3.0",
                notes="reproduces diffusers' double-shifted tail (last sigma 0.0089 instead of 0.0030, diffusers "
                "#13243); the rule's double_shift=False gives the single-shift grid",
                comfyui={
                    "scheduler": "normal", "node": "model default", "alpha": 3.0,
                    "notes": "supported_models.py SD3: shift 3.0 (also ModelSamplingSD3's default); ComfyUI's "
                    "normal is diffusers' double-shifted default grid; ComfyUI_examples sd3/ workflows use "
                    "sgm_uniform",
                },
            )
            for name, model in (
                ("sd3-medium", "Stable Diffusion 3 Medium"),
                ("sd3.5-large", "Stable Diffusion 3.5 Large"),
            )
        ),
        *(
            Preset(
                name, model, vae, h, w, frames, steps, "flow_sigmas", {"alpha": alpha, "solver": "wan"},
                source=src,
                notes=note,
                comfyui={"scheduler": "simple", "node": "ModelSamplingSD3", "alpha": alpha,
                         "notes": _COMFY_WAN_NOTE.format(alpha=alpha)},
            )
            for name, model, vae, h, w, frames, steps, alpha, src, note in (
                ("wan2.1-t2v-480p", "Wan 2.1 T2V (480p)", "wan2.1", 480, 832, 81, 50, 5.0,
                 "Wan-Video/Wan2.1 generate.py (sample_shift 5.0, 50 steps t2v) + fm_solvers_unipc grid",
                 "diffusers' Wan conversions use flow_shift 3.0 at 480p; UniPC (multistep) is Wan's sampler; "
                 "the model is fed int(sigma * 1000)"),
                ("wan2.1-t2v-720p", "Wan 2.1 T2V (720p)", "wan2.1", 720, 1280, 81, 50, 5.0,
                 "Wan-Video/Wan2.1 generate.py (sample_shift 5.0, 50 steps t2v) + fm_solvers_unipc grid",
                 "UniPC (multistep) is Wan's sampler"),
                ("wan2.1-i2v-480p", "Wan 2.1 I2V (480p)", "wan2.1", 480, 832, 81, 40, 3.0,
                 "Wan-Video/Wan2.1 generate.py (sample_shift 3.0 for i2v at 832*480, 40 steps i2v)",
                 "UniPC (multistep) is Wan's sampler"),
                ("wan2.1-i2v-720p", "Wan 2.1 I2V (720p)", "wan2.1", 720, 1280, 81, 40, 5.0,
                 "Wan-Video/Wan2.1 generate.py (sample_shift 5.0, 40 steps i2v)",
                 "UniPC (multistep) is Wan's sampler"),
                ("wan2.2-t2v-a14b", "Wan 2.2 T2V-A14B (720p)", "wan2.1", 720, 1280, 81, 40, 12.0,
                 "Wan-Video/Wan2.2 wan/configs (t2v-A14B sample_shift 12.0, 40 steps, MoE boundary 0.875)",
                 "two experts switch at t = 0.875; the A14B models use the Wan 2.1 VAE"),
                ("wan2.2-i2v-a14b", "Wan 2.2 I2V-A14B (720p)", "wan2.1", 720, 1280, 81, 40, 5.0,
                 "Wan-Video/Wan2.2 wan/configs (i2v-A14B sample_shift 5.0, 40 steps, MoE boundary 0.900)",
                 "two experts switch at t = 0.9; the A14B models use the Wan 2.1 VAE"),
                ("wan2.2-ti2v-5b", "Wan 2.2 TI2V-5B (720p)", "wan2.2", 704, 1280, 121, 50, 5.0,
                 "Wan-Video/Wan2.2 wan/configs (ti2v-5B sample_shift 5.0, 50 steps, 121 frames, 1280*704)",
                 "high-compression Wan 2.2 VAE (16x spatial, 48 channels)"),
            )
        ),
        Preset(
            "hunyuanvideo", "HunyuanVideo (720p)", "hunyuan", 720, 1280, 129, 50, "static", {"alpha": 7.0},
            source="Tencent-Hunyuan/HunyuanVideo (--flow-shift 7.0, 50 steps) and diffusers HunyuanVideoPipeline "
            "(720x1280, 129 frames, sigmas linspace(1, 0, N + 1)[:-1], shift 7.0)",
            notes="maintainers: shift grows as steps shrink (30 steps -> 9; HunyuanVideo#35)",
            comfyui={
                "scheduler": "simple", "node": "model default", "alpha": 7.0,
                "notes": "supported_models.py HunyuanVideo: shift 7.0; ComfyUI_examples hunyuan_video/ workflows: "
                "ModelSamplingSD3 7 and BasicScheduler simple",
            },
        ),
        *(
            Preset(
                f"hunyuanvideo-1.5-{res}-{task}", f"HunyuanVideo 1.5 {task.upper()} ({res})", "hunyuanvideo-1.5",
                h, w, 121, 50, "static", {"alpha": alpha},
                source=f"diffusers HunyuanVideo 1.5 conversion (flow shift {alpha:g} for {res} {task}) and "
                "HunyuanVideo15Pipeline (121 frames, 50 steps, sigmas linspace(1, 0, N + 1)[:-1])",
            )
            for res, task, h, w, alpha in (
                ("480p", "t2v", 480, 848, 5.0),
                ("480p", "i2v", 480, 848, 5.0),
                ("720p", "t2v", 720, 1280, 9.0),
                ("720p", "i2v", 720, 1280, 7.0),
            )
        ),
        Preset(
            "ltx-video", "LTX-Video 0.9.0/0.9.1", "ltx-video", 512, 704, 161, 50, "ltx",
            source="diffusers LTXPipeline (512x704, 161 frames, 50 steps, sigmas linspace(1, 1/N, N), mu = "
            "calculate_shift(F'*H'*W')) with scheduler config base_shift 0.95, max_shift 2.05, base 1024, "
            "max 4096, shift_terminal 0.1",
            notes="the mu line is not clamped: 7392 tokens give mu 3.23 (alpha 25.3); 0.9.5+ use other schedules",
        ),
        Preset(
            "mochi", "Mochi 1 preview", "mochi", 480, 848, 19, 64, "linear_quadratic", {"threshold_noise": 0.025},
            source="genmoai/models infer.py linear_quadratic_schedule (threshold_noise 0.025) and diffusers "
            "MochiPipeline (480x848, 19 frames, 64 steps, invert_sigmas)",
            notes="diffusers stores it inverted (1 - t); the values here are in flowsched's t = 1 noise convention; "
            "the model is fed (1 - t) * 1000 (model_timesteps())",
            comfyui={
                "scheduler": "linear_quadratic", "node": "model default", "alpha": 6.0,
                "notes": "supported_models.py GenmoMochi: shift 6.0, multiplier 1.0, which ComfyUI's "
                "linear_quadratic (genmo's schedule) ignores; ComfyUI_examples mochi/ workflows use simple "
                "(shift 6) instead",
            },
        ),
        Preset(
            "cogview4-6b", "CogView4-6B", "cogview4", 1024, 1024, 1, 50, "cogview4",
            source="diffusers CogView4Pipeline (50 steps, timesteps int(linspace(1000, 1, N)), mu = "
            "sqrt(tokens/256)*0.75 + 0.25, time_shift_type linear)",
            notes="the model is fed the unshifted integer timesteps (model_timesteps()), not t * 1000",
        ),
        Preset(
            "sana", "Sana 1600M (1024px)", "dcae-f32c32", 1024, 1024, 1, 20, "flow_sigmas",
            {"alpha": 3.0, "solver": "dpmsolver"},
            source="diffusers SanaPipeline (20 steps, 1024x1024) with DPMSolverMultistepScheduler(flow_shift 3.0, "
            "use_flow_sigmas): grid 1 - linspace(1, 1/1000, N+1), flipped; int64 timesteps",
            notes="DPM-Solver++ (multistep) is Sana's sampler; the model is fed int(sigma * 1000) (times the "
            "transformer's timestep_scale); 4K checkpoints use flow_shift 6.0",
        ),
        Preset(
            "lumina2", "Lumina-Image 2.0", "flux", 1024, 1024, 1, 30, "static", {"alpha": 6.0},
            source="diffusers Lumina2Pipeline (30 steps, 1024x1024, sigmas linspace(1, 1/N, N)) with "
            "FlowMatchEulerDiscreteScheduler shift 6.0 (static; the pipeline's mu is unused)",
            comfyui={
                "scheduler": "simple", "node": "ModelSamplingAuraFlow", "alpha": 6.0,
                "notes": "supported_models.py Lumina2: shift 6.0, multiplier 1.0; ComfyUI_examples "
                "lumina2/lumina2_basic_example.png: ModelSamplingAuraFlow 6 and simple",
            },
        ),
    )
}

DEFAULT_PRESET = "opensora-2.0-768px"


# -- frame schedules (diffusion forcing, autoregressive video) -------------------------------------------------


@dataclass(frozen=True)
class FramePreset:
    """One model's per-frame schedule, as data.

    Attributes:
        name: the name used in specs and by ``flowsched frames`` (``skyreels-v2-df-540p-async``).
        model: human-readable model name and setting.
        family: a frame family of :data:`flowsched.spec.FRAME_FAMILIES` (``diffusion_forcing``, ``staircase`` ...).
        params: the family's spec parameters (read-only mapping; ``steps``, ``alpha``, ``frames`` ...).
        source: where the numbers come from (repository @ commit, file).
        notes: what users should know.
    """

    name: str
    model: str
    family: str
    params: Mapping[str, Any]
    source: str
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


_SKYREELS = "SkyworkAI/SkyReels-V2 @abed76f: generate_video_df.py defaults (30 steps, shift 8) and README"
_STOCHASTIC = "sample with flowsched.sampling.euler_frames(..., stochastic=True, seed=SEED)"

#: Frame-schedule presets by name: a frame family and its spec parameters, with sources
#: (``flowsched presets`` lists them; :func:`flowsched.spec.frame_schedule_from_spec` builds them).
FRAME_PRESETS: dict[str, FramePreset] = {
    p.name: p
    for p in (
        FramePreset(
            "skyreels-v2-df-540p", "SkyReels-V2-DF 540P, synchronous", "diffusion_forcing",
            {"steps": 30, "alpha": 8.0, "frames": 25, "causal_block_size": 1, "ar_step": 0},
            f"{_SKYREELS} (base_num_frames 97 -> 25 latent frames, ar_step 0)",
        ),
        FramePreset(
            "skyreels-v2-df-540p-async", "SkyReels-V2-DF 540P, asynchronous", "diffusion_forcing",
            {"steps": 30, "alpha": 8.0, "frames": 25, "causal_block_size": 5, "ar_step": 5},
            f"{_SKYREELS} (asynchronous example: ar_step 5, causal_block_size 5, base_num_frames 97)",
        ),
        FramePreset(
            "skyreels-v2-df-720p", "SkyReels-V2-DF 720P, synchronous", "diffusion_forcing",
            {"steps": 30, "alpha": 8.0, "frames": 31, "causal_block_size": 1, "ar_step": 0},
            f"{_SKYREELS} (base_num_frames 121 -> 31 latent frames for 720P)",
        ),
        FramePreset(
            "skyreels-v2-df-720p-async", "SkyReels-V2-DF 720P, asynchronous", "diffusion_forcing",
            {"steps": 30, "alpha": 8.0, "frames": 30, "causal_block_size": 5, "ar_step": 5},
            f"{_SKYREELS} (ar_step 5, causal_block_size 5)",
            "121 video frames are 31 latent frames, which causal_block_size 5 floors to 30 (the last frame would "
            "stay noise); the preset uses 30 (117 video frames)",
        ),
        FramePreset(
            "magi-1-4.5b", "MAGI-1 4.5B", "staircase",
            {"steps": 64, "alpha": 3.0, "chunks": 4, "chunk_frames": 6, "window": 4},
            "SandAI-org/MAGI-1 @6ff822e: example/4.5B/4.5B_base_config.json (num_steps 64, window_size 4, "
            "chunk_width 6, 96 frames -> 24 latent frames = 4 chunks) and video_generate.py (sd3 shift 3)",
        ),
        FramePreset(
            "magi-1-24b", "MAGI-1 24B", "staircase",
            {"steps": 32, "alpha": 3.0, "chunks": 4, "chunk_frames": 6, "window": 4},
            "SandAI-org/MAGI-1 @6ff822e: example/24B/24B_base_config.json (num_steps 32, window_size 4, "
            "chunk_width 6)",
        ),
        FramePreset(
            "self-forcing", "Self-Forcing (Wan2.1-T2V-1.3B, DMD)", "blockwise",
            {"steps": [1000, 750, 500, 250], "blocks": 7, "block_frames": 3, "alpha": 5.0, "warp": True},
            "guandeh17/Self-Forcing @33593df: configs/self_forcing_dmd.yaml (denoising_step_list, "
            "warp_denoising_step, timestep_shift 5, num_frame_per_block 3; 21 latent frames)",
            _STOCHASTIC,
        ),
        FramePreset(
            "causvid", "CausVid (Wan2.1, causal DMD)", "blockwise",
            {"steps": [1000, 757, 522], "blocks": 7, "block_frames": 3, "alpha": 8.0, "warp": False},
            "tianweiy/CausVid @ca21150: configs/wan_causal_dmd.yaml (denoising_step_list [1000, 757, 522, 0], "
            "warp_denoising_step false, timestep_shift 8, num_frame_per_block 3; 21 latent frames)",
            _STOCHASTIC,
        ),
        FramePreset(
            "causvid-4step-warp", "CausVid, 4 warped steps", "blockwise",
            {"steps": [1000, 750, 500, 250], "blocks": 7, "block_frames": 3, "alpha": 8.0, "warp": True},
            "tianweiy/CausVid @ca21150: configs/wan_causal_dmd_warp_4step_cfg2.yaml",
            _STOCHASTIC,
        ),
    )
}


def get_preset(name: str | Preset) -> Preset:
    """Look up a model preset by name; unknown names get the closest match as a hint, and a frame preset's name
    says where frame schedules are used."""
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise TypeError(f"preset must be a preset name (see `flowsched presets`), got {name!r}")
    try:
        return PRESETS[name]
    except KeyError:
        if name in FRAME_PRESETS:
            raise ValueError(
                f"preset {name!r} is a frame preset (a per-frame schedule, {FRAME_PRESETS[name].model}), not a "
                f"model preset: use `flowsched frames {name}` or flowsched.spec.frame_schedule_from_spec"
            ) from None
        hint = suggestion(name, list(PRESETS))
        frame = None if hint else closest(name, list(FRAME_PRESETS))
        if frame:
            hint = f" Did you mean the frame preset {frame!r} (a per-frame schedule: `flowsched frames {frame}`)?"
        raise ValueError(
            f"preset {name!r} is unknown.{hint} Run `flowsched presets` to list the {len(PRESETS)} model presets "
            f"and the {len(FRAME_PRESETS)} frame presets (per-frame schedules)"
        ) from None


def get_frame_preset(name: str) -> FramePreset:
    """The :data:`FRAME_PRESETS` entry ``name``; ``ValueError`` with the closest name otherwise (and a model
    preset's name says it is one)."""
    if not isinstance(name, str):
        raise TypeError(f"frame preset must be a name (see `flowsched presets`), got {name!r}")
    if name in FRAME_PRESETS:
        return FRAME_PRESETS[name]
    if name in PRESETS:
        raise ValueError(
            f"{name!r} is a model preset (one schedule for every frame), not a frame preset: use it with "
            f"`flowsched schedule --preset {name}`; frame presets: {', '.join(FRAME_PRESETS)}"
        )
    raise ValueError(
        f"frame preset {name!r} is unknown.{suggestion(name, list(FRAME_PRESETS))} Frame presets: "
        f"{', '.join(FRAME_PRESETS)}"
    )
