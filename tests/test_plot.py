"""flowsched.plot: the terminal plot and the matplotlib figure, checked against the schedules they draw."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from flowsched import Schedule, schedules
from flowsched.plot import MARKERS, log_snr, plot_schedules, schedule_figure, terminal_plot

# -- terminal plot ---------------------------------------------------------------------------------------------


def _marker_cells(text: str, marker: str = "●") -> list[tuple[int, int]]:
    """(row, column) of every marker in the plotting area (rows counted from the 1.0 line, columns after the axis)."""
    body = text.splitlines()[1:]
    cells = []
    for r, line in enumerate(body):
        if line.startswith("    └"):
            break
        cells += [(r, c - 5) for c, ch in enumerate(line) if ch == marker and c >= 5]
    return cells


def test_terminal_plot_layout_matches_the_seed():
    text = terminal_plot(schedules.linear(50), width=60, height=12)
    lines = text.splitlines()
    assert lines[0].strip() == "t"
    plot_rows = lines[1:13]
    assert plot_rows[0].startswith("1.0 ┤") and plot_rows[-1].startswith("0.0 ┤")
    # 0.5 sits in the middle row (rows 0..11: (11)/2 rounds to 6 under banker's rounding -> row 6)
    assert sum(r.startswith("0.5 ┤") for r in plot_rows) == 1
    assert all(r.startswith(("1.0 ┤", "0.5 ┤", "0.0 ┤", "    │")) for r in plot_rows)
    assert lines[13] == "    └" + "─" * 60 + "► step"
    assert lines[14].split() == ["0", "25", "50"]
    assert len(lines) == 15  # one schedule: no legend


def test_terminal_plot_endpoints_and_monotone_path():
    s = schedules.shifted(20, 3.0)
    cells = _marker_cells(terminal_plot(s, width=41, height=11))
    # first point (t=1) top-left, last point (t=0) bottom-right
    assert (0, 0) in cells and (10, 40) in cells
    # t decreases with the step, so rows never go back up as columns grow
    by_col = sorted(cells, key=lambda rc: (rc[1], rc[0]))
    rows = [r for r, _ in by_col]
    assert rows == sorted(rows)
    # every one of the 21 points lands in its own column when width - 1 is a multiple of N
    assert sorted({c for _, c in cells}) == list(range(0, 41, 2))


def test_terminal_plot_rows_follow_t():
    # A hand-made schedule whose values sit exactly on rows: row = (1 - t) * (height - 1).
    t = [1.0, 0.75, 0.5, 0.25, 0.0]
    cells = _marker_cells(terminal_plot(Schedule(t), width=17, height=5))
    assert sorted(cells) == [(0, 0), (1, 4), (2, 8), (3, 12), (4, 16)]


def test_terminal_plot_several_schedules_get_markers_and_legend():
    text = terminal_plot({"plain": schedules.linear(10), "shift 3": schedules.shifted(10, 3.0)}, width=21, height=8)
    assert MARKERS[0] in text and MARKERS[1] in text
    assert text.splitlines()[-2:] == [f"  {MARKERS[0]} plain", f"  {MARKERS[1]} shift 3"]
    # the shifted schedule stays at or above the linear one: in each column its marker is never lower
    lin = dict((c, r) for r, c in _marker_cells(text, MARKERS[0]))
    for r, c in _marker_cells(text, MARKERS[1]):
        if c in lin:
            assert r <= lin[c]


def test_terminal_plot_different_step_counts_share_the_axis():
    text = terminal_plot([schedules.linear(10), schedules.linear(40)], width=41, height=6)
    assert text.splitlines()[8].split() == ["0", "20", "40"]
    # the axis is the step index: the 10-step schedule reaches t = 0 at step 10, a quarter of the way along
    assert max(c for _, c in _marker_cells(text, MARKERS[0])) == 10


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"schedule_or_list": []}, ValueError, "at least one"),
        ({"schedule_or_list": [0.5, 0.1]}, TypeError, "Schedule"),
        ({"schedule_or_list": "linear"}, TypeError, "schedule_or_list"),
        ({"schedule_or_list": schedules.linear(4), "width": 3}, ValueError, "width"),
        ({"schedule_or_list": schedules.linear(4), "height": 0}, ValueError, "height"),
        ({"schedule_or_list": schedules.linear(4), "height": 2.5}, TypeError, "height"),
    ],
)
def test_terminal_plot_bad_input(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        terminal_plot(**kwargs)


# -- figure -----------------------------------------------------------------------------------------------------


def test_log_snr_formula():
    t = np.array([0.9, 0.5, 0.1, 1e-3])
    alpha_t, sigma_t = 1 - t, t  # x_t = alpha_t x0 + sigma_t eps
    np.testing.assert_allclose(log_snr(t), np.log(alpha_t**2 / sigma_t**2), rtol=1e-12)
    assert log_snr(0.5) == 0.0
    assert np.isposinf(log_snr(0.0)) and np.isneginf(log_snr(1.0))


def test_figure_draws_each_schedule_in_each_panel():
    a, b = schedules.linear(8), schedules.shifted(12, 4.0)
    fig = schedule_figure({"lin": a, "alpha 4": b})
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["schedule", "log signal-to-noise ratio", "step size"]
    assert all(ax.get_xlabel() == "step i" for ax in axes)
    assert "t" in axes[0].get_ylabel() and "log" in axes[1].get_ylabel() and "step" in axes[2].get_ylabel()
    for ax in axes:
        assert [line.get_label() for line in ax.lines] == ["lin", "alpha 4"]
    for line, s in zip(axes[0].lines, (a, b), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(s.num_steps + 1))
        np.testing.assert_array_equal(line.get_ydata(), s.t)
    for line, s in zip(axes[1].lines, (a, b), strict=True):
        inner = s.t[1:-1]  # both endpoints are infinite and left out
        np.testing.assert_allclose(line.get_ydata(), np.log(((1 - inner) / inner) ** 2), rtol=1e-12)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, s.num_steps))
    for line, s in zip(axes[2].lines, (a, b), strict=True):
        np.testing.assert_allclose(line.get_ydata(), [s.t[i] - s.t[i + 1] for i in range(s.num_steps)])
    assert fig.get_suptitle() == "Sampling schedules"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lin", "alpha 4"]


def test_figure_panels_order_progress_axis_and_title():
    s = schedules.shifted(10, 3.0)
    fig = schedule_figure([s], panels="dt,t", x="progress", title="one")
    assert [ax.get_title() for ax in fig.axes] == ["step size", "schedule"]
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata(), np.linspace(0, 1, 11))
    assert fig.get_suptitle() == "one"
    # a single unlabelled schedule is labelled by family, shift and step count
    assert fig.legends[0].get_texts()[0].get_text() == "shifted alpha=3, N=10"


def test_plot_schedules_writes_a_png_atomically(tmp_path):
    import matplotlib.image

    out = tmp_path / "sub" / "cmp.png"
    got = plot_schedules({"a": schedules.linear(20), "b": schedules.shifted(20, 5.0)}, out, panels=("t", "dt"))
    assert got == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(out)
    assert img.shape[1] > img.shape[0] > 100  # two panels side by side: wider than tall
    assert os.listdir(out.parent) == ["cmp.png"]  # no temporary file left behind


def test_plot_schedules_svg(tmp_path):
    out = plot_schedules(schedules.linear(4), tmp_path / "s.svg", panels=("t",))
    assert open(out, encoding="utf-8").read().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"panels": ("t", "snr")}, ValueError, "panels entry"),
        ({"panels": ()}, ValueError, "panels"),
        ({"panels": ("t", "t")}, ValueError, "repeat"),
        ({"x": "time"}, ValueError, "x must be one of"),
        ({"path": "out.jpg"}, ValueError, "path must end in"),
        ({"path": 5}, TypeError, "path"),
        ({"title": 3}, TypeError, "title"),
        ({"dpi": 0}, ValueError, "dpi"),
    ],
)
def test_plot_schedules_bad_input(tmp_path, kwargs, exc, words):
    args = {"path": tmp_path / "x.png", **kwargs}
    with pytest.raises(exc, match=words):
        plot_schedules(schedules.linear(4), **args)
    assert not (tmp_path / "x.png").exists()


def test_importing_plot_does_not_import_matplotlib_or_torch():
    code = "import sys, flowsched.plot; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_labels_name_alpha_and_mu():
    flux = schedules.flux(28, 4096)  # Flux dev at 1024x1024: mu = 1.15, alpha = exp(1.15)
    label = schedule_figure(flux).legends[0].get_texts()[0].get_text()
    assert label == f"flux alpha={np.exp(1.15):.4g} (mu=1.15), N=28"


# -- flowsched plot ------------------------------------------------------------------------------------------------


def _cli(argv, capsys):
    from flowsched.cli import main

    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def test_plot_command_compares_presets_specs_and_json_files(tmp_path, capsys):
    import matplotlib.image

    mine = tmp_path / "mine.json"
    Schedule([1.0, 0.9, 0.6, 0.2, 0.0], name="custom").to_json(mine)
    out = tmp_path / "cmp.png"
    status, stdout, stderr = _cli(
        ["plot", "opensora-2.0-256px", "shifted:alpha=3", str(mine), "--steps", "12", "--out", str(out)], capsys
    )
    assert status == 0, stderr
    assert matplotlib.image.imread(out).ndim == 3
    lines = stdout.splitlines()
    assert lines[-1] == f"wrote {out} (3 schedule(s); panels t,logsnr,dt)"
    # --steps reaches the preset and the family; the JSON file keeps its own 4 steps
    alpha = (1 + 2 * (252 - 256) / 3840) * np.sqrt(33)  # Open-Sora 256px: 252 tokens, 33 latent frames
    assert lines[0].startswith(f"opensora-2.0-256px: alpha={alpha:.4g}, N=12")
    assert lines[1].startswith("shifted:alpha=3: alpha=3, N=12")
    assert lines[2].startswith(f"{mine}: N=4") and "t 1.0000 -> 0.2000 -> 0" in lines[2]


def test_plot_command_labels_panels_and_terminal(tmp_path, capsys):
    out = tmp_path / "two.svg"
    argv = ["plot", "linear", "shifted:alpha=7", "--steps", "8", "--label", "plain", "--label", "strong shift"]
    status, stdout, _ = _cli([*argv, "--panels", "dt", "--x", "progress", "--terminal", "-o", str(out)], capsys)
    assert status == 0
    assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert f"  {MARKERS[0]} plain" in stdout and f"  {MARKERS[1]} strong shift" in stdout
    assert "► step" in stdout


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["plot", "no-such-model"], "neither a family nor a preset"),
        (["plot", "linear", "shifted:alpha=3", "--label", "one"], "--label was given 1 time"),
        (["plot", "linear", "linear", "--steps", "5"], "same label"),
        (["plot", "linear", "--panels", "t,snr"], "panels entry"),
        (["plot", "linear", "--out", "x.gif"], "--out must end in one of .png, .svg, .pdf"),
        (["plot", "shifted:alpha=-1,steps=4"], "alpha"),
    ],
)
def test_plot_command_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    status, stdout, stderr = _cli(argv, capsys)
    assert status == 2
    assert stderr.count("\n") == 1 and stderr.startswith("flowsched: error:") and words in stderr
    assert "Traceback" not in stderr and list(tmp_path.iterdir()) == []


def test_plot_command_help_teaches(capsys):
    from flowsched.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["plot", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "flowsched plot opensora-2.0-768px" in text and "log-SNR" in text
