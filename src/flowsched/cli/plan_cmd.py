"""``flowsched plan``: the whole first stage of a sampler - geometry, schedule and noise - in one go."""

from __future__ import annotations

import json

from ._common import CliError, add_command, need, print_json, warn
from ._geometry import add_geometry_options, describe_geometry, resolve_geometry
from ._noise import add_noise_options, check_noise_options, describe_noise, draw
from ._output import SAFETENSORS, Output, check_outputs, image_suffixes, save_safetensors
from ._schedules import (
    add_schedule_options,
    add_strength_options,
    build_partial,
    check_schedule_options,
    check_strength_options,
    schedule_summary,
    strength_summary,
    text_plot,
)

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched plan                                   # Open-Sora 2.0, 576x1024 (768px 16:9), 129 frames, 50 steps
  flowsched plan --preset opensora-2.0-256px --steps 30 --seed 7 --json
  flowsched plan --height 768 --width 768 --frames 65 --out out/plan.safetensors --plot out/schedule.png
  flowsched plan --init latent.safetensors --strength 0.6 --convention comfyui --out out/img2img.safetensors

--out writes a safetensors file with 'noise' [B, C, T', H, W] and 'timesteps' [N+1] (float64 t values),
plus the plan as JSON metadata under the key 'flowsched'. With --init and --strength it also holds 'latent': the
init latent noised to the partial schedule's first t, t0 * noise + (1 - t0) * init, in --dtype (as diffusers'
scale_noise computes it), and 'timesteps' is the partial schedule the sampler then runs.
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "plan",
        help="geometry + schedule + noise for one generation (the main job)",
        description="Plan the first stage of a flow-matching sampler exactly as Open-Sora 2.0 does it: the "
        "latent geometry for your size and frame count, the shift alpha and the N+1 timesteps, and the "
        "seeded initial noise with its statistics and sha256.",
        epilog=EPILOG,
    )
    add_geometry_options(p, batch=True)
    add_schedule_options(p)
    add_strength_options(p, init=True)
    add_noise_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one JSON object (keys listed in the README)")
    o.add_argument("--out", metavar="FILE.safetensors", help="write noise + timesteps + metadata here")
    o.add_argument(
        "--plot", metavar="FILE.png", help="write a figure of the schedule (.png, .svg or .pdf; needs matplotlib)"
    )
    p.set_defaults(run=run)


def check(args) -> None:
    """Everything that can be refused, refused before the noise is drawn or anything is written."""
    check_outputs(Output(args.out, "--out", SAFETENSORS, bare=True), Output(args.plot, "--plot", image_suffixes()))
    check_schedule_options(args)
    check_strength_options(args)
    if args.init is not None and not args.init.lower().endswith(".safetensors"):
        raise CliError(f"--init must be a .safetensors file (pickle is never read), got {args.init!r}")
    if args.plot:
        need("matplotlib", "--plot")
    check_noise_options(args)  # last: it imports torch


def run(args) -> int:
    from ..noise import noise_stats
    from ..sampling import add_noise

    check(args)
    preset, geometry = resolve_geometry(args)
    schedule = build_partial(args, preset, geometry)
    init = load_init(args, geometry) if args.init is not None else None
    x = draw(args, geometry)
    noised = None if init is None else add_noise(init.to(x.device), x, float(schedule.t[0]))
    stats = noise_stats(x)
    plan = _plan(args, preset, geometry, schedule, stats, noised)
    figure = _figure(preset, schedule) if args.plot else None  # drawn first: a failed draw leaves neither file
    written = _write(args, plan, schedule, x, noised, figure)
    if args.json:
        print_json({**plan, "files": written})
    else:
        _print_text(preset, geometry, schedule, stats, args, written, plan)
    return 0


def _plan(args, preset, geometry, schedule, stats, noised) -> dict:
    """The plan as the JSON object ``--json`` prints (the README lists its keys)."""
    plan = {
        "preset": preset.name,
        **geometry.to_dict(),
        "num_steps": schedule.num_steps,
        "alpha": schedule.params.get("alpha"),
        "schedule": {"name": schedule.name, "params": dict(schedule.params)},
        "timesteps": schedule.to_list(),
        "model_timesteps": [float(v) for v in schedule.model_timesteps()],
        "seed": args.seed,
        "generator": args.generator,
        "per_sample_seeds": bool(args.per_sample_seeds),
        "dtype": args.dtype,
        "device": args.device,
        **{f"noise_{k}": stats[k] for k in ("mean", "std", "min", "max", "sha256")},
        "warnings": plan_warnings(geometry, schedule),
    }
    if args.strength is not None:
        p = schedule.params
        plan.update(strength=args.strength, convention=p["convention"], begin_index=p["begin_index"],
                    base_steps=p["base_steps"], start_t=float(schedule.t[0]))
    if noised is not None:
        from ..noise import noise_stats

        plan.update(init=args.init, init_key=args.init_key, latent_sha256=noise_stats(noised)["sha256"])
    return plan


def plan_warnings(geometry, schedule) -> list[str]:
    """What the plan warns about, the same in text (stderr) and JSON: the geometry's (a frame count the VAE cannot
    decode exactly) and a strength that starts elsewhere than it suggests (``compare`` shows the other
    diagnostics)."""
    from ..diagnostics import strength_warnings

    return [*geometry.warnings, *strength_warnings(schedule)]


def _figure(preset, schedule):
    from ..plot import schedule_figure

    alpha = schedule.params.get("alpha")
    label = f"{preset.name}, {schedule.name}" + (f", alpha={alpha:.4g}" if alpha is not None else "")
    return schedule_figure({label: schedule})


def _write(args, plan, schedule, x, noised, figure) -> list[str]:
    """Write ``--out`` (noise, timesteps, the noised init latent, the plan as metadata) and ``--plot``; returns the
    paths written."""
    written = []
    if args.out:
        import torch

        meta = {k: v for k, v in plan.items() if k not in ("timesteps", "model_timesteps")}
        tensors = {"noise": x, "timesteps": torch.tensor(schedule.t, dtype=torch.float64)}
        if noised is not None:
            tensors["latent"] = noised
        save_safetensors(args.out, tensors, {"flowsched": json.dumps(meta), "schedule": schedule.to_json()})
        written.append(args.out)
    if figure is not None:
        from ..plot import save_figure

        save_figure(figure, args.plot)
        written.append(args.plot)
    return written


def load_init(args, geometry):
    """The ``--init`` tensor, checked: a floating tensor of the plan's noise shape and ``--dtype``."""
    import torch

    from .._io import read_safetensors_tensor
    from ..sampling import check_finite

    try:
        key, tensor = read_safetensors_tensor(args.init, args.init_key, key_name="--init-key")
    except ValueError as exc:
        raise CliError(f"--init {exc}") from None
    want = tuple(geometry.noise_shape)
    if not tensor.is_floating_point():
        raise CliError(f"--init tensor {key!r} has dtype {tensor.dtype}; a latent must be floating point")
    if tuple(tensor.shape) != want:
        raise CliError(
            f"--init tensor {key!r} has shape {list(tensor.shape)} but the plan's noise has shape {list(want)} "
            "[B, C, T', H, W]; set --height/--width/--frames/--batch (or --preset) to match the latent"
        )
    if tensor.dtype != getattr(torch, args.dtype):
        name = str(tensor.dtype).removeprefix("torch.")
        raise CliError(f"--init tensor {key!r} is {name} but --dtype is {args.dtype}; pass --dtype {name}")
    return check_finite(f"--init tensor {key!r}", tensor)


def _print_text(preset, geometry, schedule, stats, args, written, plan) -> None:
    print(f"plan           {preset.name} ({preset.model})")
    print("\n".join(describe_geometry(geometry)))
    print(schedule_summary(schedule))
    if args.strength is not None:
        print(strength_summary(schedule))
    t = schedule.t
    print(f"first 5 t      {', '.join(f'{v:.6f}' for v in t[:5])}")
    print(f"last 5 t       {', '.join(f'{v:.6f}' for v in t[-5:])}")
    print()
    print(text_plot(schedule))
    print()
    print("\n".join(describe_noise(list(geometry.noise_shape), stats, args)))
    if args.init is not None:
        print(f"init latent    {args.init} noised to t0 = {schedule.t[0]:.6f}: t0 * noise + (1 - t0) * init; "
              f"sha256 {plan['latent_sha256']}")
    for w in plan["warnings"]:
        warn(w)
    for path in written:
        print(f"wrote          {path}")
