"""``flowsched presets``: the model presets and the frame presets flowsched knows (no torch)."""

from __future__ import annotations

import shlex

from ._common import add_command, print_json

__all__ = [
    "register",
    "run",
]

EPILOG = """\
examples:
  flowsched presets
  flowsched presets --json
  flowsched presets --no-sources

'alpha' is the shift alpha*t/(1+(alpha-1)*t); a 'mu' rule means alpha = e^mu (exp, Flux/LTX) or alpha = mu
(lin, CogView4). Use a preset with `flowsched schedule --preset NAME --height H --width W --frames F --steps N`.
--json also gives each preset's ComfyUI set-up ('comfyui': scheduler, model-sampling node, alpha or mu, and a
spec such as comfyui:scheduler=simple,alpha=5.0,steps=50 for `flowsched compare`), where ComfyUI has one.

The second table, "frame schedules", lists the frame presets: per-frame schedules of diffusion-forcing and
autoregressive video models (SkyReels-V2 DF, MAGI-1, Self-Forcing, CausVid), each with its family spec, model calls
R and latent frames F; use them with `flowsched frames NAME`. A spec that holds a list (';') is printed in
single quotes, as a shell needs it: the shell would end the command at ';'. In --json every entry has a "kind":
"model" for model presets, "frame" for frame presets (and the plain spec).
"""


def register(sub) -> None:
    p = add_command(
        sub,
        "presets",
        help="list model presets (VAE, default size, frames, steps, schedule rule, source) and frame presets",
        description="List the model presets usable with --preset: each model's VAE, default resolution, "
        "frames and steps, its schedule rule and the shift at its default size; then the frame presets "
        "(per-frame schedules for `flowsched frames`).",
        epilog=EPILOG,
    )
    p.add_argument("--json", action="store_true", help="print the presets as JSON")
    p.add_argument("--no-sources", action="store_true", help="table only, without the source of each preset")
    p.set_defaults(run=run)


def _shift_text(params) -> str:
    """The shift a preset's rule gives at its default size: alpha, or mu with the alpha it means."""
    alpha, mu = params.get("alpha"), params.get("mu")
    if mu is not None:
        kind = "lin" if params.get("time_shift_type") == "linear" else "exp"
        return f"mu={mu:.4g} ({kind}) -> alpha={alpha:.4g}"
    return f"alpha={alpha:.4g}" if alpha is not None else "none"


def _comfyui(preset):
    """The preset's ComfyUI set-up at its default size, with the spec that computes it; None without one."""
    if not preset.comfyui:
        return None
    return {**dict(preset.comfyui), **preset.comfyui_args(), "spec": preset.comfyui_spec()}


def _frame_rows() -> list[dict]:
    from ..presets import FRAME_PRESETS
    from ..spec import frame_preset_spec, frame_schedule_from_spec

    rows = []
    for p in FRAME_PRESETS.values():
        fs = frame_schedule_from_spec(p.name)
        rows.append(
            {
                "kind": "frame",
                "name": p.name,
                "model": p.model,
                "family": p.family,
                "params": dict(p.params),
                "spec": frame_preset_spec(p),
                "model_calls": fs.num_steps,
                "latent_frames": fs.num_frames,
                "source": p.source,
                "notes": p.notes,
            }
        )
    return rows


def _table(rows: list[dict], cols: list[tuple[str, str, str]]) -> None:
    cells = [[c[0] for c in cols]] + [[str(r[key]) for _, key, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for k, row in enumerate(cells):
        line = "  ".join(f"{v:{a}{w}}" for v, (_, _, a), w in zip(row, cols, widths, strict=True)).rstrip()
        print(line)
        if k == 0:
            print("-" * len(line))


def _model_rows() -> list[dict]:
    import warnings

    from ..presets import PRESETS

    rows = []
    for p in PRESETS.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = p.schedule()
        rows.append(
            {
                "kind": "model",
                "name": p.name,
                "model": p.model,
                "vae": p.vae,
                "height": p.height,
                "width": p.width,
                "frames": p.num_frames,
                "steps": p.num_steps,
                "rule": p.rule,
                "rule_params": dict(p.rule_params),
                "alpha": s.params.get("alpha"),
                "mu": s.params.get("mu"),
                "shift": _shift_text(s.params),
                "final_jump": float(s.t[-2] - s.t[-1]),
                "source": p.source,
                "notes": p.notes,
                "comfyui": _comfyui(p),
            }
        )
    return rows


MODEL_COLUMNS = [
    ("preset", "name", "<"),
    ("model", "model", "<"),
    ("VAE", "vae", "<"),
    ("size (HxW)", "size", ">"),
    ("frames", "frames", ">"),
    ("steps", "steps", ">"),
    ("rule", "rule", "<"),
    ("shift at default size", "shift", "<"),
]
FRAME_COLUMNS = [
    ("frame preset", "name", "<"),
    ("model", "model", "<"),
    ("R", "model_calls", ">"),
    ("F", "latent_frames", ">"),
    ("spec (quoted for a shell)", "shell_spec", "<"),
]


def run(args) -> int:
    rows, frame_rows = _model_rows(), _frame_rows()
    if args.json:
        print_json(rows + frame_rows)
        return 0
    _table([{**r, "size": f"{r['height']}x{r['width']}"} for r in rows], MODEL_COLUMNS)
    print("\nframe schedules (per-frame t; `flowsched frames NAME`; R: model calls, F: latent frames):\n")
    # quoted: a list's ';' would end a pasted shell command
    _table([{**r, "shell_spec": shlex.quote(r["spec"])} for r in frame_rows], FRAME_COLUMNS)
    if not args.no_sources:
        print("\nsources:")
        for r in rows + frame_rows:
            print(f"  {r['name']}: {r['source']}" + (f" [{r['notes']}]" if r["notes"] else ""))
    return 0
