"""``flowsched frames``: heatmap, JSON, CSV and PNG; one-line errors with exit 2, checked before any work."""

from __future__ import annotations

import csv
import io
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from flowsched import frames, schedules
from flowsched.cli import main
from flowsched.frames import FrameSchedule
from flowsched.plot import RAMP, terminal_heatmap
from flowsched.presets import FRAME_PRESETS
from flowsched.spec import frame_preset_spec, frame_schedule_from_spec


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_heatmap_and_summary(capsys):
    code, out, err = run(capsys, "frames", "skyreels-v2-df-540p-async")
    assert code == 0 and err == ""
    assert "R = 50 model calls, F = 25 latent frames, 30 steps per generated frame" in out
    fs = frame_schedule_from_spec("skyreels-v2-df-540p-async")
    assert terminal_heatmap(fs) in out


def test_terminal_heatmap_cells_follow_t():
    fs = frames.diffusion_forcing(frames.skyreels_base(4, 5.0), 3, ar_step=1, prefix_frames=1)
    lines = terminal_heatmap(fs).splitlines()
    rows = [line.split("|")[1] for line in lines[1:-1]]
    assert len(rows) == fs.num_steps + 1
    for r, cells in enumerate(rows):
        for f, ch in enumerate(cells):
            level = RAMP.index(ch)
            t = fs.t[r, f]
            assert (level - 1) / (len(RAMP) - 1) < t <= level / (len(RAMP) - 1) or (level == 0 and t == 0)
    assert lines[1].split("|")[2].strip() == str(int(fs.update[0].sum()))


def test_json_round_trips(capsys):
    code, out, _ = run(capsys, "frames", "diffusion_forcing:steps=10,frames=12,causal_block_size=3,ar_step=4,"
                                        "prefix_frames=3,addnoise_condition=20", "--json")
    assert code == 0
    fs = FrameSchedule.from_json(out)
    assert fs == frames.diffusion_forcing(frames.skyreels_base(10, 8.0), 12, causal_block_size=3, ar_step=4,
                                          prefix_frames=3, addnoise_condition=20)


def test_csv_has_every_cell(capsys):
    code, out, _ = run(capsys, "frames", "pyramid:steps=4,frames=3,u=1", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    fs = frames.pyramid(schedules.shifted(4, 1.0), 3, u=1.0)
    assert len(rows) == (fs.num_steps + 1) * fs.num_frames
    t = np.array([float(r["t"]) for r in rows]).reshape(fs.num_steps + 1, fs.num_frames)
    assert np.array_equal(t, fs.t)
    upd = np.array([int(r["update"]) for r in rows if r["update"] != ""]).reshape(fs.num_steps, fs.num_frames)
    assert np.array_equal(upd.astype(bool), fs.update)


def test_plot_writes_png(capsys, tmp_path):
    path = tmp_path / "sub" / "frames.png"
    code, out, _ = run(capsys, "frames", "skyreels-v2-df-540p", "skyreels-v2-df-540p-async", "--plot", str(path))
    assert code == 0 and f"wrote {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_presets_listed(capsys):
    code, out, _ = run(capsys, "frames")
    assert code == 0
    for name in FRAME_PRESETS:
        assert name in out
    with pytest.raises(SystemExit) as exit_:
        main(["frames", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "listed by `flowsched frames` and in the \"frame schedules\" table of " \
        "`flowsched presets`" in " ".join(out.split())


def test_presets_command_lists_frame_presets(capsys):
    import json

    from flowsched.presets import PRESETS

    code, out, _ = run(capsys, "presets")
    assert code == 0
    table = out.split("frame schedules")[1].split("sources:")[0]
    for name, p in FRAME_PRESETS.items():
        line = next(line for line in table.splitlines() if line.startswith(name + " "))
        fs = frame_schedule_from_spec(name)
        spec = shlex.split(line)[-1]  # as a shell reads it: the spec is one quoted word
        assert spec == frame_preset_spec(name) and frame_schedule_from_spec(spec) == fs, name
        assert f" {fs.num_steps} " in line and f" {fs.num_frames} " in line
        assert f"  {name}: {p.source}" in out.split("sources:")[1]
    code, out, _ = run(capsys, "presets", "--json")
    rows = json.loads(out)
    assert {r["name"] for r in rows if r["kind"] == "model"} == set(PRESETS)
    frame_rows = {r["name"]: r for r in rows if r["kind"] == "frame"}
    assert set(frame_rows) == set(FRAME_PRESETS) and len(rows) == len(PRESETS) + len(FRAME_PRESETS)
    for name, row in frame_rows.items():
        fs = frame_schedule_from_spec(row["spec"])
        assert fs == frame_schedule_from_spec(name)
        assert (row["model_calls"], row["latent_frames"]) == (fs.num_steps, fs.num_frames)
        assert row["family"] == FRAME_PRESETS[name].family and row["params"] == json.loads(
            json.dumps(dict(FRAME_PRESETS[name].params)))


def test_unknown_preset_mentions_frame_presets(capsys):
    code, _, err = run(capsys, "schedule", "--preset", "self-forcing")
    assert code == 2 and "is a frame preset" in err and "flowsched frames self-forcing" in err
    code, _, err = run(capsys, "schedule", "--preset", "nosuchmodel")
    assert code == 2 and f"{len(FRAME_PRESETS)} frame presets" in err
    code, _, err = run(capsys, "schedule", "--preset", "selfforcing")
    assert code == 2 and "Did you mean the frame preset 'self-forcing'" in err


@pytest.mark.parametrize(
    "argv,match",
    [
        (["frames", "bogus"], "neither a frame family nor a frame preset"),
        (["frames", "shifted:alpha=3"], "'shifted' is a schedule family"),
        (["frames", "diffusion_forcing:ar_step=-1"], "ar_step must be a non-negative integer, got -1"),
        (["frames", "self-forcing", "--plot", "out.jpg"], r"must end in.*\.png.*\.svg.*\.pdf"),
        (["frames", "self-forcing", "causvid", "--json"], "--json and --csv print one schedule"),
        (["frames", "--csv"], "need a SCHEDULE"),
        (["frames", "causvid", "causvid", "--plot", "x.png"], "given twice"),
        (["frames", "diffusion_forcing:frames=0"], ": frames must be a positive integer, got 0$"),
        (["frames", "staircase:chunks=2,prefix_chunks=2"], "out of chunks=2$"),
        (["frames", "diffusion_forcing:frames=100000,ar_step=5"],
         r"above the limit max_cells=50000000 \(about 791\.7 GiB\); max_cells=50002600000 allows it$"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("flowsched: error: ") and err.count("\n") == 1
    import re

    assert re.search(match, err)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_plot_path_checked_before_work(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = run(capsys, "frames", "self-forcing", "--plot", str(blocker / "x.png"))
    assert code == 2 and out == "" and "--plot" in err and "cannot" in err and err.count("\n") == 1


def test_missing_matplotlib_names_the_extra(tmp_path):
    script = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import importlib.util\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'matplotlib' else _find(name, *a)\n"
        "from flowsched.cli import main\n"
        f"sys.exit(main(['frames', 'self-forcing', '--plot', {str(tmp_path / 'f.png')!r}]))\n"
    )
    script = "import importlib.util; _find = importlib.util.find_spec\n" + script
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    err = res.stderr.strip()
    assert err.startswith("flowsched: error: ") and "\n" not in err
    assert "matplotlib" in err and "pip install 'flowsched[plot]'" in err


def test_frames_command_does_not_import_torch():
    res = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom flowsched.cli import main\nmain(['frames', 'magi-1-4.5b'])\n"
         "main(['presets', '--json'])\nimport flowsched.frames, flowsched.sampling, flowsched.spec, flowsched.plot\n"
         "assert 'torch' not in sys.modules, 'torch was imported'"],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr


# -- specs a shell can take as printed -------------------------------------------------------------------------------


def _unquoted_semicolons(text: str) -> list[str]:
    """Spec-like words (``key=a;b``) of ``text`` outside single quotes: a shell would end the command at ';'."""
    outside = re.sub(r"'[^']*'", "", text)
    return re.findall(r"[^\s']*=[^\s']*;[^\s']*", outside)


def test_frames_help_prints_specs_a_shell_takes(capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit):
        main(["frames", "--help"])
    out = capsys.readouterr().out
    assert _unquoted_semicolons(out) == []
    # every example runs as a shell would split it (output redirections and --plot aside)
    monkeypatch.chdir(tmp_path)
    examples = [line.strip() for line in out.split("examples:")[1].split("\n\n")[0].splitlines()]
    ran = 0
    for line in examples:
        words = shlex.split(line, comments=True)
        if ">" in words:
            words = words[: words.index(">")]
        if "--plot" in words or not words:
            continue
        assert words[:2] == ["flowsched", "frames"], line
        code, _, err = run(capsys, *words[1:])
        assert code == 0 and err == "", (line, err)
        ran += 1
    assert ran >= 4
    blockwise = next(line for line in examples if "blockwise" in line)
    assert frame_schedule_from_spec(shlex.split(blockwise)[2]).base.num_steps == 4


def test_presets_table_prints_specs_a_shell_takes(capsys):
    code, out, _ = run(capsys, "presets", "--no-sources")
    assert code == 0 and _unquoted_semicolons(out) == []
    table = out.split("frame schedules")[1]
    assert "'blockwise:steps=1000;750;500;250," in table


def test_summary_prints_the_schedule_spec_quoted(capsys):
    code, out, _ = run(capsys, "frames", "causvid:blocks=2")
    assert code == 0 and _unquoted_semicolons(out) == []
    fs = frame_schedule_from_spec("causvid:blocks=2")
    spec_line = next(line for line in out.splitlines() if line.startswith("spec "))
    words = shlex.split(spec_line)
    assert words[1:] == [fs.spec()] and frame_schedule_from_spec(words[1]) == fs
    assert "the model is fed 1000, 757, 522" in out


def test_csv_timestep_is_what_the_model_is_fed(capsys):
    code, out, _ = run(capsys, "frames", "causvid:blocks=2", "--csv")
    assert code == 0
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["timestep"] != ""]
    fed = np.array([float(r["timestep"]) for r in rows]).reshape(6, 6)
    # CausVid without the warp feeds its integer steps, block by block; clean frames are fed 0
    assert fed[:3, 0].tolist() == [1000.0, 757.0, 522.0] and fed[3:, 3].tolist() == [1000.0, 757.0, 522.0]
    assert np.all(fed[3:, :3] == 0.0)
