"""The flowsched command line: contracts (plan --json keys, sha256), errors without tracebacks, no torch
on the schedule/shape path, atomic outputs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import subprocess
import sys

import pytest
import torch

from flowsched.cli import COMMANDS, main


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
        ["plan", "--height", "-5"],
        ["plan", "--frames", "-3"],
        ["plan", "--steps", "0"],
        ["plan", "--batch", "2.5"],
        ["schedule", "--flow-shift", "nan"],
        ["schedule", "--flow-shift", "-1"],
        ["plan", "--seed", "abc"],
        ["evaluate", "--steps", "10,x"],
        ["evaluate", "--step-counts", "0"],
        ["optimize", "--restarts", "-1"],
    ],
)
def test_argument_errors_are_one_line_without_usage(capsys, argv):
    # argparse's own errors too: one line naming the problem (and where --help is), never the usage block
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("flowsched: error: ") and err.count("\n") == 1
    assert "expected" in err and "usage:" not in err and "Traceback" not in err
    assert f"flowsched {argv[0]} --help" in err


@pytest.mark.parametrize(
    "name, accepted, refused",
    [
        ("positive_int", {"7": 7, " 12 ": 12}, ["0", "-1", "2.5", "x", ""]),
        ("positive_float", {"0.5": 0.5, "1e-300": 1e-300, "3": 3.0}, ["0", "-2", "inf", "nan", "x"]),
        ("nonnegative_float", {"0": 0.0, "0.25": 0.25}, ["-1e-9", "inf", "-inf", "nan", "one"]),
    ],
)
def test_argument_types_accept_what_the_library_accepts(name, accepted, refused):
    import argparse

    from flowsched.cli import _common

    convert = getattr(_common, name)
    for text, value in accepted.items():
        got = convert(text)
        assert got == value and type(got) is type(value)
    for text in refused:
        with pytest.raises(argparse.ArgumentTypeError, match=rf"^expected a .*, got {text!r}$"):
            convert(text)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        (["plan", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["compare"], "the following arguments are required: SPEC"),
        (["schedule", "--json", "--csv"], "not allowed with argument"),
    ],
)
def test_parser_errors_are_one_line(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "usage:" not in err


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plan", "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: flowsched plan")
    assert main([]) == 0 and "usage: flowsched" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_only_defaults_that_say_something(capsys, command):
    """An unset option's help says what happens then; "(default: None)" or a flag's "(default: False)" says nothing
    (optimize --metric printed "(default: w2 / rmse) (default: None)")."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "--help" in out


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


# -- refused invocations write nothing; outputs are checked before any work ------------------------------------

SMALL = ["--preset", "opensora-2.0-256px", "--frames", "1"]  # 192x336, one frame: a tiny grid and noise


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["plan", *SMALL, "--out", "{d}/p.safetensors", "--plot", "{d}/p.jpg"], "--plot must end in one of .png"),
        (["plan", *SMALL, "--out", "{d}/p.safetensors", "--no-shift", "--flow-shift", "3"], "--no-shift"),
        (["plan", *SMALL, "--out", "{d}/p.safetensors", "--device", "nope"], "--device"),
        (["plan", *SMALL, "--out", "{d}/p.safetensors", "--max-bytes", "10"], "bytes"),
        (["plan", *SMALL, "--out", "{d}/same.png", "--plot", "{d}/same.png"], "--out must end in .safetensors"),
        (["plan", *SMALL, "--out", "-"], "only for text outputs"),
        (["noise", *SMALL, "--out", "{d}/n.safetensors", "--seed", str(2**64)], "seed"),
        (["noise", *SMALL, "--out", "{d}/n.safetensors", "--preset", "nope"], "unknown"),
        (["schedule", "--out", "{d}/s.json", "--no-shift", "--flow-shift", "auto"], "--no-shift"),
        (["schedule", "--out", "{d}/s.json", "--vae", "nope"], "nope"),
        (["plot", "linear", "--out", "{d}/p.jpg"], "--out must end in one of .png"),
        (["plot", "linear", "nosuchfamily", "--out", "{d}/p.png"], "neither a family nor a preset"),
        (["plot", "linear", "--panels", "t,snr", "--out", "{d}/p.png"], "--panels"),
        (["evaluate", *SMALL, "--steps", "4", "--plot", "{d}/e.png", "--schedule", "nosuch"], "neither a family"),
        (["evaluate", *SMALL, "--steps", "4", "--plot", "{d}/e.png", "--sampler", "heun"], "heun"),
        (["evaluate", *SMALL, "--steps", "4", "--plot", "{d}/e.png", "--schedule", "linear", "--schedule", "linear"],
         "more than once"),
        (["evaluate", *SMALL, "--steps", "4", "--plot", "{d}/e.png", "--model", "mixture", "--latents", "x"],
         "--latents"),
        (["optimize", *SMALL, "--steps", "3", "--out", "{d}/o.json", "--plot", "{d}/o.jpg"], "--plot must end in"),
        (["optimize", *SMALL, "--steps", "3", "--out", "{d}/o.json", "--start", "nosuchfamily"], "neither a family"),
        (["optimize", "--model", "mixture2d", "--metric", "modes", "--steps", "3", "--out", "{d}/o.json"], "use rmse"),
        (["optimize", *SMALL, "--steps", "3", "--out", "-", "--json"], "both print to standard output"),
    ],
)
def test_refused_invocations_write_nothing(capsys, tmp_path, argv, needle):
    argv = [a.replace("{d}", str(tmp_path / "out")) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_two_options_naming_one_file_are_refused(capsys, tmp_path):
    # each option's suffix is its format, so only a link can make two of them name one file
    (tmp_path / "plan.safetensors").symlink_to(tmp_path / "same.png")
    code, _, err = run(capsys, "plan", *SMALL, "--steps", "2", "--out", str(tmp_path / "plan.safetensors"),
                       "--plot", str(tmp_path / "same.png"))
    assert code == 2 and "--out and --plot both write to" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.safetensors"]  # the dangling link, untouched


# (command line, the flag whose value is the output path, a suffix the option accepts)
WRITERS = [
    (["plan", *SMALL, "--steps", "2"], "--out", ".safetensors"),
    (["plan", *SMALL, "--steps", "2"], "--plot", ".png"),
    (["noise", *SMALL], "--out", ".safetensors"),
    (["schedule", "--steps", "2"], "--out", ".json"),
    (["plot", "linear"], "--out", ".png"),
    (["evaluate", *SMALL, "--steps", "2", "--schedule", "linear"], "--plot", ".png"),
    (["optimize", *SMALL, "--steps", "2"], "--out", ".json"),
    (["optimize", *SMALL, "--steps", "2"], "--plot", ".png"),
]


@pytest.mark.parametrize("argv, flag, suffix", WRITERS)
def test_outputs_that_are_not_regular_files_are_refused(capsys, tmp_path, argv, flag, suffix):
    # os.replace would swap a FIFO, a device node or a symlinked FIFO for a regular file: refuse, touch nothing
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    link = tmp_path / f"link{suffix}"
    link.symlink_to(fifo)
    for target, kind in ((fifo, "a FIFO"), (folder, "a folder"), (link, "a FIFO")):
        code, _, err = run(capsys, *argv, flag, str(target))
        assert code == 2 and kind in err and err.count("\n") == 1, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.isdir(folder) and os.path.islink(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fifo.name, folder.name, link.name])


def test_a_device_is_refused_before_anything_is_opened():
    from flowsched._io import resolve_target

    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    with pytest.raises(ValueError, match="is a device, not a regular file"):
        resolve_target("/dev/null")


def test_schedule_out_writes_json_csv_or_stdout(capsys, tmp_path):
    from flowsched import Schedule

    code, printed, _ = run(capsys, "schedule", "--steps", "5", "--json")
    expected = Schedule.from_json(printed)
    code, out, _ = run(capsys, "schedule", "--steps", "5", "--out", str(tmp_path / "a" / "s.json"))
    assert code == 0 and out == f"wrote {tmp_path / 'a' / 's.json'} (json, 5 steps)\n"
    assert Schedule.from_json(tmp_path / "a" / "s.json") == expected
    code, csv_printed, _ = run(capsys, "schedule", "--steps", "5", "--csv")
    assert run(capsys, "schedule", "--steps", "5", "--out", str(tmp_path / "s.csv"))[0] == 0
    assert (tmp_path / "s.csv").read_text() == csv_printed
    code, out, _ = run(capsys, "schedule", "--steps", "5", "--out", "-")
    assert code == 0 and Schedule.from_json(out) == expected  # standard output holds the JSON and nothing else
    code, out, _ = run(capsys, "schedule", "--steps", "5", "--csv", "--out", "-")
    assert out == csv_printed


def test_out_through_a_symlink_replaces_the_file_it_points_to(capsys, tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert run(capsys, "schedule", "--steps", "3", "--out", str(link))[0] == 0
    assert os.path.islink(link) and json.loads(real.read_text())["num_steps"] == 3
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_optimize_out_dash_prints_only_the_schedule(capsys):
    from flowsched import Schedule

    code, out, err = run(capsys, "optimize", *SMALL, "--steps", "3", "--out", "-")
    assert code == 0
    s = Schedule.from_json(out)  # stdout is the schedule JSON alone; the report went to stderr
    assert s.num_steps == 3 and s.name == "optimized"
    assert "best shift" in err and "wrote" not in err


def test_plan_refuses_no_shift_with_flow_shift(capsys):
    for value in ("3", "auto"):
        code, _, err = run(capsys, "plan", *SMALL, "--no-shift", "--flow-shift", value)
        assert code == 2 and f"--flow-shift {value}" in err and "--no-shift" in err
    code, out, _ = run(capsys, "plan", *SMALL, "--steps", "4", "--no-shift", "--json")
    assert code == 0 and json.loads(out)["timesteps"] == [1.0, 0.75, 0.5, 0.25, 0.0]


# -- evaluate ------------------------------------------------------------------------------------------------------


def _field(preset="opensora-2.0-256px", frames=1):
    from flowsched.presets import get_preset
    from flowsched.quality import GaussianField

    preset = get_preset(preset)
    geometry = preset.geometry(num_frames=frames) if frames is not None else preset.geometry()
    return geometry, GaussianField(geometry)


def test_evaluate_takes_families_that_need_several_steps(capsys):
    # ltx and linear_quadratic (Mochi) need N >= 2: the spec is checked at the first asked N, not at N = 1
    from flowsched import schedules

    code, out, err = run(capsys, "evaluate", *SMALL, "--schedule", "ltx", "--schedule", "linear_quadratic",
                         "--steps", "4,8", "--json")
    assert code == 0, err
    errors = json.loads(out)["errors"]
    geometry, field = _field()
    for n, got in zip((4, 8), errors["linear_quadratic"], strict=True):
        assert got == pytest.approx(field.error(schedules.linear_quadratic(n)), rel=1e-12)
    for n, got in zip((4, 8), errors["ltx"], strict=True):
        assert got == pytest.approx(field.error(schedules.ltx(n, seq_len=geometry.seq_len)), rel=1e-12)
    # a key that merely ends in seq_len does not count as giving seq_len
    code, out, err = run(capsys, "evaluate", *SMALL, "--schedule", "ltx:base_seq_len=512", "--steps", "4", "--json")
    assert code == 0, err
    expected = field.error(schedules.ltx(4, seq_len=geometry.seq_len, base_seq_len=512))
    assert json.loads(out)["errors"]["ltx:base_seq_len=512"] == [pytest.approx(expected, rel=1e-12)]


def test_evaluate_scores_a_fixed_length_schedule_once_at_its_own_n(capsys):
    from flowsched import Schedule, schedules

    code, out, _ = run(capsys, "evaluate", *SMALL, "--schedule", "[1,0.5,0.2,0]", "--schedule",
                       "shifted:alpha=3,steps=6", "--schedule", "linear", "--steps", "4,10", "--json")
    assert code == 0
    doc = json.loads(out)
    _, field = _field()
    assert doc["steps"] == [3, 4, 6, 10]  # the asked counts plus each fixed schedule's own N
    assert doc["errors"]["[1,0.5,0.2,0]"] == [pytest.approx(field.error(Schedule([1, 0.5, 0.2, 0]))), None, None, None]
    assert doc["errors"]["shifted:alpha=3,steps=6"] == [None, None, pytest.approx(field.error(schedules.shifted(6, 3))),
                                                       None]
    assert doc["errors"]["linear"] == [pytest.approx(field.error(schedules.linear(n))) for n in (3, 4, 6, 10)]
    code, out, _ = run(capsys, "evaluate", *SMALL, "--schedule", "[1,0.5,0.2,0]", "--steps", "3,5")
    row = next(line for line in out.splitlines() if line.startswith("[1,0.5,0.2,0]"))
    assert row.split()[1:] == [f"{field.error(Schedule([1, 0.5, 0.2, 0])):.4g}", "-"]


def test_evaluate_step_counts_option_and_its_old_spelling_agree(capsys):
    a = run(capsys, "evaluate", *SMALL, "--schedule", "linear", "--step-counts", "3,5", "--json")[1]
    b = run(capsys, "evaluate", *SMALL, "--schedule", "linear", "--steps", "3,5", "--json")[1]
    assert a == b and json.loads(a)["steps"] == [3, 5]


def test_evaluate_plot_with_one_step_count_is_a_labelled_bar_chart():
    from flowsched.quality.scoring import _error_figure

    results = {"linear": [0.03], "rule": [0.15], "auto": [0.025]}
    ax = _error_figure(results, [10], ylabel="w2").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(results)
    assert [round(p.get_width(), 6) for p in ax.patches] == [0.03, 0.15, 0.025]
    assert {t.get_text() for t in ax.texts} == {"0.03", "0.15", "0.025"}
    assert ax.get_xscale() == "linear" and "N = 10" in ax.get_xlabel()
    several = _error_figure({"linear": [0.1, None, 0.01], "fixed": [None, 0.05, None]}, [4, 8, 16]).axes[0]
    assert several.get_xscale() == "log" and [len(line.get_xdata()) for line in several.lines] == [2, 1]


# -- the CLI's structure ----------------------------------------------------------------------------------------


def test_commands_import_only_shared_modules_below_them():
    import ast
    import pathlib

    import flowsched.cli as cli

    folder = pathlib.Path(cli.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert not (node.module or "").endswith("_cmd"), f"{path.name} imports the command {node.module}"
                if path.name.startswith("_") and node.module is None:
                    raise AssertionError(f"{path.name} imports command modules")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
                raise AssertionError(f"{path.name} calls __import__")


def test_every_command_is_registered_through_add_command():
    from flowsched.cli import COMMANDS, build_parser
    from flowsched.cli._common import Formatter, Parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert list(commands) == list(COMMANDS)
    for name, sub in commands.items():
        assert isinstance(sub, Parser) and sub.formatter_class is Formatter, name
        assert "examples:" in sub.epilog, name
