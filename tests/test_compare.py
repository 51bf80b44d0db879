"""diagnostics.summarize/diagnose and the `flowsched compare` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from flowsched import diffusers_rules as D
from flowsched import schedules as S
from flowsched.cli import main
from flowsched.diagnostics import diagnose, summarize


def test_summary_numbers_from_first_principles():
    # Open-Sora 2.0 768px: alpha 11.8721, last t 0.19503347 (docs/schedules.md, "Reference numbers")
    s = S.opensora(50, 2304, 33)
    got = summarize(s)
    t = np.linspace(1, 0, 51)
    a = (2304 / 1920 + 13 / 15) * math.sqrt(33)
    warped = a * t / (1 + (a - 1) * t)
    assert got["alpha"] == pytest.approx(a) and got["mu"] is None
    assert got["first_t"] == 1.0
    assert got["last_t"] == pytest.approx(0.19503347, abs=1e-7)
    assert got["final_jump"] == pytest.approx(warped[-2])
    assert got["steps_above_half"] == sum(1 for x in warped[:-1] if x > 0.5)
    assert got["largest_step"] == pytest.approx(max(warped[:-1] - warped[1:]))
    assert got["largest_step_index"] == 49


def test_inverted_schedules_are_read_as_noise_levels():
    s = D.flow_match_euler(20, sigmas=S.linear_quadratic(20).t[:-1], invert_sigmas=True)
    assert s.t[0] < s.t[-1]
    got, ref = summarize(s), summarize(S.linear_quadratic(20))
    assert got["inverted"] is True
    for k in ("first_t", "last_t", "final_jump", "steps_above_half", "largest_step"):
        assert got[k] == pytest.approx(ref[k], abs=1e-9)


def test_diagnose_final_jump():
    # Wan 2.2 T2V-A14B: shift 12 on 40 steps ends at t = 0.235 (Wan grid)
    s = S.warp(S.grid(40, "wan"), 12.0)
    (w,) = diagnose(s)
    assert "final jump 0.235" in w and "posterior" in w
    assert diagnose(s, final_jump_limit=0.3) == []
    assert diagnose(S.shifted(50, 3.0)) == []


def test_diagnose_mu_alpha_confusion():
    assert diagnose(S.shifted(20, 1.15)) == []  # a plausible alpha: nothing to say
    (w,) = diagnose(S.shifted(20, 0.5))
    assert "alpha=0.5 < 1" in w and f"{math.exp(0.5):.4g}" in w
    (w,) = diagnose(S.warp_mu(S.linear(20), 5.0), final_jump_limit=0.99)
    assert "mu=5" in w and f"{math.exp(5):.4g}" in w
    assert diagnose(S.warp_mu(S.linear(20), 1.15)) == []
    # a mu that LTX's own rule extrapolated to (7392 tokens > 4096) is not a mu/alpha mix-up
    (w,) = diagnose(S.ltx(50, 7392), final_jump_limit=0.99)
    assert "7392 tokens" in w and "clamp=True" in w and "meant as a shift alpha" not in w
    # linear (CogView4) mu is alpha itself: no exponential warning even above 3
    assert diagnose(S.cogview4(50, 4096)) == []


def test_diagnose_double_shift():
    msgs = diagnose(D.flow_match_euler(28, shift=3.0))
    assert len(msgs) == 1 and "double-shifted" in msgs[0] and "0.00299" in msgs[0]
    assert diagnose(D.diffusers_default(28, 3.0)) == []
    assert diagnose(D.flow_match_euler(28, shift=1.0)) == []


def test_compare_cli_table(capsys):
    assert main(["compare", "wan2.1-t2v-480p", "shifted:alpha=3", "sd3-medium", "--steps", "30"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["schedule", "N"]
    assert lines[2].startswith("wan2.1-t2v-480p") and " 30 " in lines[2]  # --steps reaches presets
    last = 3 * (1 / 30) / (1 + 2 / 30)
    assert "alpha 3" in lines[3] and f"{last:.5f}" in lines[3]
    assert "sd3-medium: double-shifted" in err


def test_compare_cli_json(capsys, tmp_path):
    path = tmp_path / "s.json"
    S.from_list([1, 0.4, 0]).to_json(path)
    assert main(["compare", str(path), "flux:steps=10,image_seq_len=4096", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["spec"] for r in rows] == [str(path), "flux:steps=10,image_seq_len=4096"]
    assert rows[0]["summary"]["final_jump"] == pytest.approx(0.4)
    assert rows[0]["warnings"] and "final jump 0.400" in rows[0]["warnings"][0]
    assert rows[1]["summary"]["mu"] == pytest.approx(1.15)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["compare", "shiftd:alpha=3"], "Did you mean 'shifted'"),
        (["compare", "shifted:alpha=-1,steps=5"], "alpha must be a finite number > 0"),
        (["compare", "flow_match_euler:use_dynamic_shifting=true,steps=5"], "mu must be passed"),
        (["compare", "no_such_file.json"], "cannot read schedule file"),
    ],
)
def test_compare_cli_errors_are_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and err.count("\n") == 1
