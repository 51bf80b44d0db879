"""``flowsched compare``: what each schedule does, side by side, with warnings (no torch)."""

from __future__ import annotations

import os

from ._common import CliError, add_command, positive_float, print_json, warn
from ._schedules import add_spec_steps_option, conventions, load_specs, strength_value

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched compare wan2.1-t2v-720p hunyuanvideo ltx-video opensora-2.0-768px
  flowsched compare sd3-medium diffusers_default:alpha=3,steps=28 flux.1-dev:height=768,width=768
  flowsched compare shifted:alpha=5 flow_match_euler:use_dynamic_shifting=true,mu=5 my_schedule.json --steps 30
  flowsched compare comfyui:scheduler=beta,shift=3,steps=20 comfyui:scheduler=simple,shift=3,steps=20
  flowsched compare flux.1-dev --steps 28 --strength 0.6          # the five strength conventions side by side
  flowsched compare sd3-medium --strength 0.3 --convention diffusers,comfyui

A SPEC is a preset name (optionally PRESET:steps=..,height=..,width=..,frames=..,alpha=..), a family with
keyword arguments (FAMILY:key=value,...; steps means num_steps; families: linear, shifted, opensora, grid,
diffusers_default, flow_sigmas, flow_match_euler, flux, ltx, cogview4, karras, exponential, polyexponential, beta,
kl_optimal, linear_quadratic, comfyui), a JSON file written by `flowsched schedule --json`, or an inline list like
[1,0.6,0.3,0]. ComfyUI's schedulers: comfyui:scheduler=beta,shift=3 (ModelSamplingSD3's shift = alpha) or
comfyui:scheduler=simple,mu=1.15 (ModelSamplingFlux: alpha = e^mu).
t = 1 is noise, t = 0 data; 'alpha' is the shift alpha*t/(1+(alpha-1)*t), 'mu' a Flux-style exponent
(alpha = e^mu).

With --strength, each SPEC is the base schedule of an image-to-image run and each --convention gives one row: the
partial schedule that peer's strength rule runs (flowsched.strength.partial); 'N' is then the steps run and
'begin' the base step it starts at, of how many.
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
    g = p.add_argument_group("partial schedules (start from a given latent)")
    g.add_argument(
        "--strength",
        type=strength_value,
        metavar="S",
        help="compare the partial schedules of each SPEC at this strength in (0, 1] (1 = from pure noise)",
    )
    g.add_argument(
        "--convention",
        type=_convention_list,
        metavar="C[,C...]",
        help=f"strength conventions to show with --strength, comma-separated, or all (default): "
        f"{', '.join(conventions())}",
    )
    p.add_argument("--json", action="store_true", help="print summaries and warnings as JSON")
    p.set_defaults(run=run)


def _convention_list(text: str) -> list[str]:
    import argparse

    known = conventions()
    names = [x.strip() for x in text.split(",") if x.strip()]
    if names == ["all"]:
        return list(known)
    bad = [x for x in names if x not in known]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected all or conventions among {', '.join(known)}, got {text!r}")
    return list(dict.fromkeys(names))


def _shift_text(s: dict) -> str:
    if s["mu"] is not None:
        return f"mu {s['mu']:.4g} (alpha {s['alpha']:.4g})" if s["alpha"] is not None else f"mu {s['mu']:.4g}"
    return f"alpha {s['alpha']:.4g}" if s["alpha"] is not None else "-"


def rows_for(
    specs: list[str],
    steps: int | None,
    final_jump_limit: float,
    strength: float | None = None,
    convention: list[str] | None = None,
) -> list[dict]:
    """Build every schedule first, so a bad spec fails before anything is printed. With ``strength``, one row per
    spec and convention (a convention that cannot cut a spec gives a warning row instead of a schedule)."""
    from ..diagnostics import diagnose, summarize

    rows = []
    for spec, schedule in load_specs(specs, steps):
        if strength is None:
            rows.append({"spec": spec, "schedule": schedule})
            continue
        from ..strength import partial

        # a JSON list or file is a fixed schedule; families and presets are rebuilt at other step counts (comfyui)
        fixed = spec.lstrip().startswith(("[", "{")) or spec.lower().endswith(".json") or os.path.isfile(spec)
        base = schedule if fixed else spec
        for conv in convention or conventions():
            alpha = schedule.params.get("alpha") if conv == "diffsynth" else None  # the shift DiffSynth re-applies
            try:
                cut = partial(base, schedule.num_steps, strength, convention=conv, alpha=alpha)
            except ValueError as exc:
                rows.append({"spec": spec, "convention": conv, "error": str(exc)})
                continue
            rows.append({"spec": spec, "convention": conv, "schedule": cut})
    out = []
    for r in rows:
        if "error" in r:
            out.append({**r, "strength": strength})
            continue
        s = r.pop("schedule")
        row = {**r, "describe": s.describe(), "summary": summarize(s),
               "warnings": diagnose(s, final_jump_limit=final_jump_limit)}
        if strength is not None:
            row.update(strength=strength, begin_index=s.params["begin_index"], base_steps=s.params["base_steps"])
        out.append(row)
    return out


def table(rows: list[dict]) -> str:
    partial = any("convention" in r for r in rows)
    columns = list(COLUMNS)
    if partial:
        columns[1:1] = [("convention", "<"), ("begin", ">")]
    cells = [[c for c, _ in columns]]
    for r in rows:
        if "error" in r:
            continue
        s = r["summary"]
        extra = [r["convention"], f"{r['begin_index']}/{r['base_steps']}"] if partial else []
        cells.append(
            [
                r["spec"],
                *extra,
                str(s["num_steps"]),
                _shift_text(s),
                f"{s['first_t']:.4f}",
                f"{s['last_t']:.5f}",
                str(s["steps_above_half"]),
                f"{s['largest_step']:.4f} (#{s['largest_step_index']})",
                f"{s['final_jump']:.4f}",
            ]
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for k, row in enumerate(cells):
        parts = [f"{v:{a}{w}}" for v, (_, a), w in zip(row, columns, widths, strict=True)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def run(args) -> int:
    if args.convention is not None and args.strength is None:
        raise CliError("--convention needs --strength S (the strength the conventions cut the schedules at)")
    rows = rows_for(args.specs, args.steps, args.final_jump_limit, args.strength, args.convention)
    if not any("error" not in r for r in rows):
        raise CliError("no convention could cut these schedules: " + "; ".join(r["error"] for r in rows))
    if args.json:
        print_json(rows)
        return 0
    print(table(rows))
    for r in rows:
        if "error" in r:
            warn(f"{r['spec']} [{r['convention']}]: skipped: {r['error']}")
    for message, about in grouped_warnings(rows).items():
        warn(f"{labels(about)}: {message}")
    return 0


def grouped_warnings(rows: list[dict]) -> dict[str, list[dict]]:
    """``{warning: the rows it is about}``, in the order they first appear: one warning per cause, however many
    rows share it (the JSON rows carry the same sentences, each row its own)."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        for w in r.get("warnings", ()):
            out.setdefault(w, []).append(r)
    return out


def labels(rows: list[dict]) -> str:
    """``sd3-medium [diffusers, comfyui], flux.1-dev [framepack]``: the rows a warning is about, by spec."""
    by_spec: dict[str, list[str]] = {}
    for r in rows:
        by_spec.setdefault(r["spec"], []).extend([r["convention"]] if "convention" in r else [])
    return ", ".join(f"{spec} [{', '.join(convs)}]" if convs else spec for spec, convs in by_spec.items())
