"""``flowsched presets``: the model presets flowsched knows (no torch)."""

from __future__ import annotations

from ._common import Formatter, print_json

EPILOG = """\
examples:
  flowsched presets
  flowsched presets --json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "presets",
        help="list model presets (VAE, default size, frames, steps, schedule rule, source)",
        description="List the model presets usable with --preset: each model's VAE, default resolution, "
        "frames and steps, its schedule rule and the shift at its default size.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument("--json", action="store_true", help="print the presets as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    import warnings

    from ..presets import PRESETS

    rows = []
    for p in PRESETS.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = p.schedule()
        rows.append(
            {
                "name": p.name,
                "model": p.model,
                "vae": p.vae,
                "height": p.height,
                "width": p.width,
                "frames": p.num_frames,
                "steps": p.num_steps,
                "rule": p.rule,
                "alpha": s.params.get("alpha"),
                "source": p.source,
            }
        )
    if args.json:
        print_json(rows)
        return 0
    head = f"{'preset':<22} {'VAE':<15} {'size':>10} {'frames':>6} {'steps':>5}  {'rule':<9} {'alpha':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        alpha = f"{r['alpha']:.3f}" if r["alpha"] is not None else "-"
        print(
            f"{r['name']:<22} {r['vae']:<15} {r['height']:>4}x{r['width']:<5} {r['frames']:>6} {r['steps']:>5}  "
            f"{r['rule']:<9} {alpha:>7}"
        )
    return 0
