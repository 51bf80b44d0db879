"""``flowsched frames``: heatmap, JSON, CSV and PNG; one-line errors with exit 2, checked before any work."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import numpy as np
import pytest

from flowsched import frames, schedules
from flowsched.cli import main
from flowsched.frames import FrameSchedule
from flowsched.plot import RAMP, terminal_heatmap
from flowsched.presets import FRAME_PRESETS
from flowsched.spec import frame_schedule_from_spec


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
        spec = line.split()[-1]
        assert frame_schedule_from_spec(spec) == fs, name
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
