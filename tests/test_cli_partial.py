"""The command line for partial schedules: ``schedule --strength/--convention``, ``compare --strength`` and
``plan --init``. Expected values come from flowsched.strength.partial (tested against the peers in
test_partial.py) and from the forward-process formula written out here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from flowsched import get_preset
from flowsched.cli import main
from flowsched.strength import CONVENTIONS, partial


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schedule_strength_prints_the_partial_schedule(capsys):
    code, out, err = run(capsys, "schedule", "--preset", "sd3-medium", "--strength", "0.6", "--convention",
                         "comfyui", "--json")
    assert code == 0
    doc = json.loads(out)
    preset = get_preset("sd3-medium")
    want = partial(lambda n: preset.schedule(preset.geometry(), n), preset.num_steps, 0.6, convention="comfyui")
    assert doc["t"] == want.to_list()
    assert doc["params"]["begin_index"] == want.params["begin_index"] and doc["params"]["convention"] == "comfyui"
    code, out, err = run(capsys, "schedule", "--preset", "sd3-medium", "--steps", "20", "--strength", "0.5",
                         "--no-plot")
    assert code == 0
    cut = partial("sd3-medium", 20, 0.5)
    assert f"strength       0.5 (convention diffusers): starts at t = {cut.t[0]:.6f}, step 10 of a 20-step" in out
    assert "steps run" in out and "strength 0.5 keeps less of the latent" in err  # the cliff: shift 3 moves 0.5 up
    assert "alpha=3 maps t=0.5 to 0.750" in err


@pytest.mark.parametrize("argv, alpha", [([], 5.0), (["--flow-shift", "3"], 3.0), (["--no-shift"], 1.0)])
def test_schedule_strength_diffsynth_reapplies_the_bases_shift(capsys, argv, alpha):
    """Wan 2.1 T2V 480p: its rule's shift is 5 on Wan's grid linspace(0.999, 0, N + 1)."""
    code, out, err = run(capsys, "schedule", "--preset", "wan2.1-t2v-480p", "--steps", "10", "--strength", "0.5",
                         "--convention", "diffsynth", "--json", *argv)
    assert code == 0, err
    # --flow-shift keeps Wan's grid (it starts at float32(0.999)); --no-shift is linspace(1, 0, N + 1)
    s_max = 1.0 if argv == ["--no-shift"] else float(np.float32(0.999))
    grid = np.linspace(0.5 * s_max, 0.0, 11)[:-1]  # DiffSynth's "Wan" template at strength 0.5
    want = alpha * grid / (1 + (alpha - 1) * grid)
    np.testing.assert_allclose(json.loads(out)["t"][:-1], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["schedule", "--convention", "comfyui"], "--convention comfyui needs --strength"),
        (["schedule", "--strength", "0"], "expected a strength in (0, 1]"),
        (["schedule", "--strength", "1.5"], "expected a strength in (0, 1]"),
        (["schedule", "--strength", "0.5", "--convention", "a1111"], "invalid choice: 'a1111'"),
        (["schedule", "--steps", "3", "--strength", "0.2", "--convention", "diffusers-floor"], "keeps no step"),
        (["compare", "linear", "--convention", "comfyui"], "--convention needs --strength"),
        (["compare", "linear", "--strength", "0.5", "--convention", "comfy"], "expected all or conventions"),
        (["compare", "linear", "--steps", "3", "--strength", "0.2", "--convention", "diffusers-floor"],
         "no convention could cut"),
    ],
)
def test_strength_errors_are_one_line(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("flowsched: error:") and err.count("\n") == 1 and words in err


def test_schedule_strength_does_not_import_torch():
    code = (
        "import sys; from flowsched.cli import main; "
        "main(['schedule', '--strength', '0.5', '--convention', 'comfyui', '--no-plot']); "
        "main(['compare', 'flux.1-dev', '--strength', '0.6']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_compare_puts_the_conventions_side_by_side(capsys):
    code, out, err = run(capsys, "compare", "flux.1-dev", "--steps", "28", "--strength", "0.6")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["schedule", "convention", "begin", "N"]
    rows = {line.split()[1]: line.split() for line in lines[2:]}
    assert list(rows) == list(CONVENTIONS)
    for conv, row in rows.items():
        alpha = {"alpha": math.exp(1.15)} if conv == "diffsynth" else {}  # flux.1-dev at 1024^2: mu 1.15
        cut = partial("flux.1-dev", 28, 0.6, convention=conv, **alpha)
        assert row[2] == f"{cut.params['begin_index']}/{cut.params['base_steps']}" and row[3] == str(cut.num_steps)
        assert f"{cut.t[0]:.4f}" in row
    assert rows["diffusers"][3] == "17" and rows["diffusers-floor"][3] == "16" and rows["comfyui"][2] == "18/46"
    code, out, _ = run(capsys, "compare", "flux.1-dev", "--strength", "0.6", "--convention", "framepack", "--json")
    (row,) = json.loads(out)
    assert row["convention"] == "framepack" and row["summary"]["first_t"] == 0.6 and row["strength"] == 0.6


def test_compare_skips_what_a_convention_cannot_cut(capsys):
    code, out, err = run(capsys, "compare", "[1,0.7,0.4,0.1,0]", "--strength", "0.5")
    assert code == 0 and "framepack" in out and "comfyui" not in out
    assert "[comfyui]: skipped: convention 'comfyui' needs the base schedule at 8 steps" in err


# -- plan --init ---------------------------------------------------------------------------------------------


def _latent(tmp_path, shape=(1, 16, 1, 24, 42), dtype=torch.float32, name="latent.safetensors", **extra):
    path = tmp_path / name
    save_file({"latent": torch.randn(*shape, generator=torch.Generator().manual_seed(3)).to(dtype), **extra}, path)
    return path


PLAN = ["plan", "--preset", "opensora-2.0-256px", "--frames", "1", "--steps", "20"]


def test_plan_init_writes_the_noised_latent(capsys, tmp_path):
    init = _latent(tmp_path)
    out = tmp_path / "o" / "img2img.safetensors"
    code, text, _ = run(capsys, *PLAN, "--init", str(init), "--strength", "0.6", "--convention",
                        "diffusers-floor", "--seed", "5", "--generator", "portable", "--out", str(out), "--json")
    assert code == 0
    plan = json.loads(text)
    tensors = load_file(out)
    x0 = load_file(init)["latent"]
    t0 = plan["timesteps"][0]
    assert plan["start_t"] == t0 and plan["strength"] == 0.6 and plan["convention"] == "diffusers-floor"
    assert plan["begin_index"] == 8 and len(plan["timesteps"]) == 13  # int(20 * 0.6) = 12 steps
    sigma = torch.tensor(t0, dtype=torch.float32)  # diffusers' float32 sigma
    assert torch.equal(tensors["latent"], sigma * tensors["noise"] + (1.0 - sigma) * x0)
    assert torch.equal(tensors["timesteps"], torch.tensor(plan["timesteps"], dtype=torch.float64))
    from flowsched.noise import portable_noise

    assert torch.equal(tensors["noise"], portable_noise((1, 16, 1, 24, 42), 5))
    meta = json.loads(__import__("safetensors").safe_open(out, "pt").metadata()["flowsched"])
    assert meta["strength"] == 0.6 and meta["init"] == str(init)


@pytest.mark.parametrize(
    "setup, argv, words",
    [
        ("wrong_shape", [], "has shape [1, 16, 2, 24, 42] but the plan's noise has shape [1, 16, 1, 24, 42]"),
        ("half", [], "is float16 but --dtype is float32; pass --dtype float16"),
        ("ints", [], "has dtype torch.int64; a latent must be floating point"),
        ("two", [], "holds tensors ['latent', 'other']; choose one with --init-key"),
        ("two", ["--init-key", "nope"], "--init-key 'nope' is not in"),
        ("junk", [], "cannot be read as safetensors"),
        ("pickle", [], "--init must be a .safetensors file"),
        ("ok", ["--strength", "1.5"], "expected a strength in (0, 1]"),
        ("no_strength", [], "--init needs --strength"),
    ],
)
def test_plan_init_bad_input_writes_nothing(capsys, tmp_path, setup, argv, words):
    path = {
        "wrong_shape": lambda: _latent(tmp_path, shape=(1, 16, 2, 24, 42)),
        "half": lambda: _latent(tmp_path, dtype=torch.float16),
        "ints": lambda: _save(tmp_path / "i.safetensors", {"latent": torch.zeros(1, 16, 1, 24, 42, dtype=torch.long)}),
        "two": lambda: _latent(tmp_path, other=torch.zeros(1)),
        "junk": lambda: _write(tmp_path / "junk.safetensors", b"not a file"),
        "pickle": lambda: _write(tmp_path / "latent.pt", b"\x80\x04"),
        "ok": lambda: _latent(tmp_path),
        "no_strength": lambda: _latent(tmp_path),
    }[setup]()
    strength = [] if setup == "no_strength" or "--strength" in argv else ["--strength", "0.5"]
    out = tmp_path / "out.safetensors"
    code, text, err = run(capsys, *PLAN, "--init", str(path), *strength, *argv, "--out", str(out))
    assert code == 2 and text == "" and words in err and err.count("\n") == 1
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".flowsched-")]


def _save(path, tensors):
    save_file(tensors, path)
    return path


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_plan_text_mentions_the_init(capsys, tmp_path):
    init = _latent(tmp_path)
    code, text, _ = run(capsys, *PLAN, "--init", str(init), "--strength", "0.5")
    assert code == 0
    assert "strength       0.5 (convention diffusers)" in text and f"init latent    {init} noised to t0 =" in text
    assert np.isfinite(float(text.split("noised to t0 = ")[1].split(":")[0]))
