"""The flowsched command line: contracts (plan --json keys, sha256), errors without tracebacks, no torch
on the schedule/shape path, atomic outputs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from flowsched.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_json_contract(capsys):
    code, out, _ = run(capsys, "plan", "--preset", "opensora-2.0-256px", "--steps", "30", "--seed", "7", "--json")
    assert code == 0
    plan = json.loads(out)
    for key in (
        "noise_shape",
        "image_seq_len",
        "latent_frames",
        "padded_height",
        "padded_width",
        "alpha",
        "timesteps",
        "noise_sha256",
    ):
        assert key in plan
    # 192x336, 129 frames with the Hunyuan VAE: T' = 33, latent 24x42, 12*21 = 252 tokens per frame.
    assert plan["noise_shape"] == [1, 16, 33, 24, 42]
    assert plan["image_seq_len"] == 252 and plan["latent_frames"] == 33
    assert plan["alpha"] == pytest.approx((1 + (252 - 256) * 2 / 3840) * math.sqrt(33), rel=1e-12)
    assert len(plan["timesteps"]) == 31
    z = torch.randn(1, 16, 33, 24, 42, generator=torch.Generator().manual_seed(7))
    assert plan["noise_sha256"] == hashlib.sha256(z.numpy().tobytes()).hexdigest()


def test_plan_writes_safetensors_and_png(capsys, tmp_path):
    from safetensors.torch import load_file

    out, png = tmp_path / "a" / "plan.safetensors", tmp_path / "schedule.png"
    code, text, _ = run(
        capsys,
        "plan",
        "--height",
        "256",
        "--width",
        "256",
        "--frames",
        "17",
        "--steps",
        "10",
        "--batch",
        "2",
        "--out",
        str(out),
        "--plot",
        str(png),
    )
    assert code == 0 and "sha256" in text and "●" in text
    tensors = load_file(str(out))
    assert tuple(tensors["noise"].shape) == (2, 16, 5, 32, 32)
    assert tensors["timesteps"].dtype == torch.float64 and tensors["timesteps"].numel() == 11
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(out.parent) if p.startswith(".flowsched-")]


def test_schedule_and_shape_do_not_import_torch():
    code = (
        "import sys; from flowsched.cli import main; "
        "main(['schedule', '--preset', 'opensora-2.0-768px']); main(['shape', '--json']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_schedule_outputs(capsys):
    code, out, _ = run(capsys, "schedule", "--steps", "4", "--csv")
    rows = out.strip().splitlines()
    assert rows[0] == "step,t,timestep,dt" and len(rows) == 6
    code, out, _ = run(capsys, "schedule", "--steps", "4", "--flow-shift", "3", "--json")
    doc = json.loads(out)
    assert doc["params"]["alpha"] == 3.0
    assert doc["t"] == pytest.approx([3 * x / (1 + 2 * x) for x in (1, 0.75, 0.5, 0.25, 0)])
    code, out, _ = run(capsys, "schedule", "--steps", "4", "--no-shift", "--json")
    assert json.loads(out)["t"] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_shape_reports_decoded_frames_and_warns(capsys):
    code, out, err = run(capsys, "shape", "--preset", "opensora-2.0-dcae")
    assert code == 0 and "decodes to 125" in out and "num_frames=125 or 129" in err
    code, out, err = run(capsys, "shape", "--preset", "opensora-2.0-dcae", "--strict")
    assert code == 2 and "125 or 129" in err


def test_noise_command_per_sample(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "noise",
        "--height",
        "64",
        "--width",
        "64",
        "--frames",
        "5",
        "--batch",
        "3",
        "--per-sample-seeds",
        "--seed",
        "11",
        "--json",
    )
    info = json.loads(out)
    assert info["noise_shape"] == [3, 16, 2, 8, 8]
    z = torch.cat([torch.randn(1, 16, 2, 8, 8, generator=torch.Generator().manual_seed(11 + i)) for i in range(3)])
    assert info["noise_sha256"] == hashlib.sha256(z.numpy().tobytes()).hexdigest()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["plan", "--preset", "opensora-2.0-786px"], "Did you mean 'opensora-2.0-768px'"),
        (
            ["plan", "--height", "768", "--width", "768", "--frames", "129", "--batch", "64", "--max-bytes", "1000"],
            "bytes",
        ),
        (["plan", "--seed", str(2**64)], "seed"),
        (["plan", "--device", "cuda:0"] if not torch.cuda.is_available() else ["plan", "--device", "nope"], "device"),
        (["shape", "--vae", "hunyan"], "Did you mean 'hunyuan'"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--height", "0"],
        ["plan", "--frames", "-3"],
        ["plan", "--steps", "0"],
        ["plan", "--batch", "2.5"],
        ["schedule", "--flow-shift", "nan"],
        ["schedule", "--flow-shift", "-1"],
        ["plan", "--seed", "abc"],
    ],
)
def test_argument_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected" in err and "Traceback" not in err


def test_unwritable_out_leaves_nothing(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: use a path below a regular file instead
            target = tmp_path / "file"
            target.write_text("x")
            out = target / "plan.safetensors"
        else:
            out = locked / "plan.safetensors"
        code, _, err = run(
            capsys, "plan", "--steps", "2", "--height", "64", "--width", "64", "--frames", "1", "--out", str(out)
        )
        assert code == 2 and "--out" in err or "cannot" in err
        assert not out.exists()
    finally:
        locked.chmod(0o700)
    assert sorted(os.listdir(tmp_path)) in (["locked"], ["file", "locked"])


def test_cli_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "flowsched", "plan", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "examples:" in res.stdout and "--flow-shift" in res.stdout
