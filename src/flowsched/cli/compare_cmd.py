"""``flowsched compare``: what each schedule does, side by side, with warnings (no torch)."""

from __future__ import annotations

from ._common import add_command, positive_float, print_json, warn
from ._schedules import add_spec_steps_option, load_specs

EPILOG = """\
examples:
  flowsched compare wan2.1-t2v-720p hunyuanvideo ltx-video opensora-2.0-768px
  flowsched compare sd3-medium diffusers_default:alpha=3,steps=28 flux.1-dev:height=768,width=768
  flowsched compare shifted:alpha=5 flow_match_euler:use_dynamic_shifting=true,mu=5 my_schedule.json --steps 30
  flowsched compare comfyui:scheduler=beta,shift=3,steps=20 comfyui:scheduler=simple,shift=3,steps=20

A SPEC is a preset name (optionally PRESET:steps=..,height=..,width=..,frames=..,shift_alpha=..), a family with
keyword arguments (FAMILY:key=value,...; steps means num_steps; families: linear, shifted, opensora, grid,
diffusers_default, flow_sigmas, flow_match_euler, flux, ltx, cogview4, karras, exponential, polyexponential, beta,
kl_optimal, linear_quadratic, comfyui), a JSON file written by `flowsched schedule --json`, or an inline list like
[1,0.6,0.3,0]. ComfyUI's schedulers: comfyui:scheduler=beta,shift=3 (ModelSamplingSD3's shift = alpha) or
comfyui:scheduler=simple,mu=1.15 (ModelSamplingFlux: alpha = e^mu).
t = 1 is noise, t = 0 data; 'alpha' is the shift alpha*t/(1+(alpha-1)*t), 'mu' a Flux-style exponent
(alpha = e^mu).
"""

COLUMNS = (
    ("schedule", "<"),
    ("N", ">"),
    ("alpha / mu", "<"),
    ("first t", ">"),
    ("last t>0", ">"),
    ("steps t>0.5", ">"),
    ("largest step", ">"),
    ("final jump", ">"),
)


def register(sub) -> None:
    p = add_command(
        sub,
        "compare",
        help="compare schedules: shift, end points, steps above t=0.5, largest step, final jump, warnings",
        description="Print one row per schedule -- its shift (alpha, or mu with the alpha it means), first and "
        "last non-zero t, how many model evaluations happen above t = 0.5, the largest step and the final "
        "jump to t = 0 -- and warn about settings users regret (a huge final jump, mu passed as alpha or the "
        "reverse, diffusers' double-shifted grid).",
        epilog=EPILOG,
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="schedules to compare (see below)")
    add_spec_steps_option(p)
    p.add_argument(
        "--final-jump-limit",
        type=positive_float,
        default=0.2,
        metavar="T",
        help="warn when the last step jumps from above this t to 0",
    )
    p.add_argument("--json", action="store_true", help="print summaries and warnings as JSON")
    p.set_defaults(run=run)


def _shift_text(s: dict) -> str:
    if s["mu"] is not None:
        return f"mu {s['mu']:.4g} (alpha {s['alpha']:.4g})" if s["alpha"] is not None else f"mu {s['mu']:.4g}"
    return f"alpha {s['alpha']:.4g}" if s["alpha"] is not None else "-"


def rows_for(specs: list[str], steps: int | None, final_jump_limit: float) -> list[dict]:
    """Build every schedule first, so a bad spec fails before anything is printed."""
    from ..diagnostics import diagnose, summarize

    rows = []
    for spec, schedule in load_specs(specs, steps):
        rows.append(
            {
                "spec": spec,
                "describe": schedule.describe(),
                "summary": summarize(schedule),
                "warnings": diagnose(schedule, final_jump_limit=final_jump_limit),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    cells = [[c for c, _ in COLUMNS]]
    for r in rows:
        s = r["summary"]
        cells.append(
            [
                r["spec"],
                str(s["num_steps"]),
                _shift_text(s),
                f"{s['first_t']:.4f}",
                f"{s['last_t']:.5f}",
                str(s["steps_above_half"]),
                f"{s['largest_step']:.4f} (#{s['largest_step_index']})",
                f"{s['final_jump']:.4f}",
            ]
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = []
    for k, row in enumerate(cells):
        parts = [f"{v:{a}{w}}" for v, (_, a), w in zip(row, COLUMNS, widths)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def run(args) -> int:
    rows = rows_for(args.specs, args.steps, args.final_jump_limit)
    if args.json:
        print_json(rows)
        return 0
    print(table(rows))
    for r in rows:
        for w in r["warnings"]:
            warn(f"{r['spec']}: {w}")
    return 0
