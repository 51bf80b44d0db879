"""``flowsched plan``: the whole first stage of a sampler - geometry, schedule and noise - in one go."""

from __future__ import annotations

import json

from ._common import add_command, need, print_json, warn
from ._geometry import add_geometry_options, describe_geometry, resolve_geometry
from ._noise import add_noise_options, check_noise_options, describe_noise, draw
from ._output import Output, check_outputs, image_suffixes, save_safetensors
from ._schedules import add_schedule_options, build_schedule, check_schedule_options, schedule_summary, text_plot

EPILOG = """\
examples:
  flowsched plan                                   # Open-Sora 2.0, 576x1024 (768px 16:9), 129 frames, 50 steps
  flowsched plan --preset opensora-2.0-256px --steps 30 --seed 7 --json
  flowsched plan --height 768 --width 768 --frames 65 --out out/plan.safetensors --plot out/schedule.png

--out writes a safetensors file with 'noise' [B, C, T', H, W] and 'timesteps' [N+1] (float64 t values),
plus the plan as JSON metadata under the key 'flowsched'.
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
    add_noise_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one JSON object (keys listed in the README)")
    o.add_argument("--out", metavar="FILE.safetensors", help="write noise + timesteps + metadata here")
    o.add_argument(
        "--plot", metavar="FILE.png", help="write a figure of the schedule (.png, .svg or .pdf; needs matplotlib)"
    )
    p.set_defaults(run=run)


def run(args) -> int:
    from ..noise import noise_stats

    # Everything that can be refused is refused here, before the noise is drawn or anything is written.
    check_outputs(Output(args.out, "--out"), Output(args.plot, "--plot", image_suffixes()))
    check_schedule_options(args)
    check_noise_options(args)
    if args.plot:
        need("matplotlib", "--plot")
    preset, geometry = resolve_geometry(args)
    schedule = build_schedule(args, preset, geometry)
    x = draw(args, geometry)
    stats = noise_stats(x)
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
        "noise_mean": stats["mean"],
        "noise_std": stats["std"],
        "noise_min": stats["min"],
        "noise_max": stats["max"],
        "noise_sha256": stats["sha256"],
    }
    figure = None
    if args.plot:  # drawn before anything is written: a failed draw leaves neither file
        from ..plot import schedule_figure

        alpha = schedule.params.get("alpha")
        label = f"{preset.name}, {schedule.name}" + (f", alpha={alpha:.4g}" if alpha is not None else "")
        figure = schedule_figure({label: schedule})
    written = []
    if args.out:
        import torch

        meta = {k: v for k, v in plan.items() if k not in ("timesteps", "model_timesteps")}
        save_safetensors(
            args.out,
            {"noise": x, "timesteps": torch.tensor(schedule.t, dtype=torch.float64)},
            {"flowsched": json.dumps(meta), "schedule": schedule.to_json()},
        )
        written.append(args.out)
    if figure is not None:
        from ..plot import save_figure

        save_figure(figure, args.plot)
        written.append(args.plot)
    if args.json:
        plan["files"] = written
        print_json(plan)
        return 0
    _print_text(preset, geometry, schedule, stats, args, written)
    return 0


def _print_text(preset, geometry, schedule, stats, args, written) -> None:
    print(f"plan           {preset.name} ({preset.model})")
    print("\n".join(describe_geometry(geometry)))
    print(schedule_summary(schedule))
    t = schedule.t
    print(f"first 5 t      {', '.join(f'{v:.6f}' for v in t[:5])}")
    print(f"last 5 t       {', '.join(f'{v:.6f}' for v in t[-5:])}")
    print()
    print(text_plot(schedule))
    print()
    print("\n".join(describe_noise(list(geometry.noise_shape), stats, args)))
    for w in geometry.warnings:
        warn(w)
    for path in written:
        print(f"wrote          {path}")
