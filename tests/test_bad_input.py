"""The bad-input corpus: every invocation users reported ending in a traceback, a kill, a numpy or torch message,
an untrue message or a file in another format than its name says, against the command line and the library.

A refused command line must exit with status 2, print one line on stderr that names the argument (and, for a
size, the limit and why), print nothing on stdout and write nothing. A refused library call raises ValueError or
TypeError naming the argument, before any allocation.

Cases that could allocate without bound run in a child interpreter whose address space is capped
(``resource.setrlimit``), so a regression ends in a MemoryError there instead of exhausting the machine; each case
also has a time limit. Cases that only print run in-process.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _blocked import blocking_env
from flowsched.cli import main

#: What a message must never show: a traceback, numpy's or the C++ runtime's allocation errors, numpy scalars.
FOREIGN = (
    "Traceback",
    "Unable to allocate",
    "Maximum allowed size",
    "ArrayMemoryError",
    "bad_alloc",
    "np.float64",
    "np.int64",
    "numpy",
)

#: The address-space cap of the child that runs the unbounded cases: room for torch, scipy and matplotlib
#: (about 1 GiB together) and for the legitimate work of the cases, far below any of the reported allocations.
CHILD_ADDRESS_SPACE = 3 * 2**30
#: Seconds one guarded case may run (the child raises TimeoutError in it).
CASE_SECONDS = 60


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(message: str) -> None:
    for word in FOREIGN:
        assert word not in message, f"{word!r} in {message!r}"
    assert not re.search(r"\d{30,}", message), f"a number nobody can read in {message!r}"


def assert_refused(code, out, err, names, files=()):
    """Exit 2, nothing on stdout, one ``flowsched: error:`` line naming one of ``names``, no foreign text, no file."""
    assert code == 2, (code, out, err)
    assert out == "", out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowsched: error: "), err
    assert any(n in lines[0] for n in names), (names, err)
    assert_clean(lines[0])
    assert list(files) == [], files


# -- the guarded child ------------------------------------------------------------------------------------------

# (id, argv: relative output paths land in the case's own folder; names the message must mention, one of them)
GUARDED_CLI = [
    ("schedule-steps-1e9", ["schedule", "--steps", "1000000000", "--json"], ("steps",)),
    ("compare-steps-1e9", ["compare", "linear", "sd3-medium", "--steps", "1000000000"], ("steps",)),
    ("compare-spec-steps-1e9", ["compare", "linear:steps=1000000000"], ("steps",)),
    ("plan-steps-1e9", ["plan", "--steps", "1000000000", "--json"], ("steps",)),
    ("evaluate-steps-1e9", ["evaluate", "--steps", "1000000000"], ("steps",)),
    ("optimize-steps-1e9", ["optimize", "--steps", "1000000000"], ("steps",)),
    ("plot-steps-1e9", ["plot", "linear", "--steps", "1000000000", "--out", "x.png"], ("steps",)),
    ("schedule-steps-1e20", ["schedule", "--steps", "99999999999999999999"], ("steps",)),
    ("strength-1e-9-comfyui",
     ["schedule", "--preset", "flux.1-dev", "--strength", "1e-9", "--convention", "comfyui"], ("strength",)),
    ("strength-1e-300-comfyui",
     ["schedule", "--preset", "flux.1-dev", "--strength", "1e-300", "--convention", "comfyui"], ("strength",)),
    ("strength-1e-300-diffusers",
     ["schedule", "--preset", "flux.1-dev", "--strength", "1e-300", "--convention", "diffusers"], ("strength",)),
    ("strength-1e-9-compare", ["compare", "flux.1-dev", "--strength", "1e-9", "--convention", "comfyui"],
     ("strength",)),
    ("evaluate-samples-1e8", ["evaluate", "--steps", "4", "--model", "mixture", "--samples", "100000000"],
     ("samples",)),
    ("evaluate-samples-1e9-2d", ["evaluate", "--steps", "4", "--model", "mixture2d", "--samples", "1000000000"],
     ("samples",)),
    ("optimize-samples-1e8", ["optimize", "--steps", "4", "--model", "mixture", "--samples", "100000000"],
     ("samples",)),
    ("evaluate-field-size", ["evaluate", "--steps", "4", "--height", "100000", "--width", "100000"],
     ("--height", "--width", "field")),
    ("optimize-field-size", ["optimize", "--steps", "4", "--height", "100000", "--width", "100000"],
     ("--height", "--width", "field")),
    ("plot-dpi", ["plot", "linear", "--dpi", "100000", "--out", "big.png"], ("dpi",)),
    ("plan-noise-size", ["plan", "--height", "100000", "--width", "100000", "--json"], ("bytes",)),
    # a budget raised past what the machine has: the allocation fails, in one line
    ("noise-max-bytes-raised", ["noise", "--max-bytes", "99999999999999999999", "--batch", "100000"],
     ("--max-bytes",)),
]

# (id, Python statement: ``d`` is the case's own folder; names the message must mention, one of them)
GUARDED_LIBRARY = [
    ("linear-1e9", "from flowsched import schedules; schedules.linear(10**9)", ("num_steps",)),
    ("linear-1e20", "from flowsched import schedules; schedules.linear(10**20)", ("num_steps",)),
    ("shifted-1e9", "from flowsched import schedules; schedules.shifted(10**9, 3.0)", ("num_steps",)),
    ("flux-1e9", "from flowsched import schedules; schedules.flux(10**9, 4096)", ("num_steps",)),
    ("from-spec-preset-1e9", "from flowsched.spec import from_spec; from_spec('flux.1-dev', num_steps=10**9)",
     ("num_steps",)),
    ("preset-1e9", "from flowsched import get_preset; p = get_preset('sd3-medium'); p.schedule(p.geometry(), 10**9)",
     ("num_steps",)),
    ("opensora-get-schedule-1e9", "from flowsched.opensora import get_schedule; get_schedule(10**9, 4096, 1)",
     ("num_steps",)),
    ("mixture-samples-1e8",
     "from flowsched import schedules; from flowsched.quality import GaussianMixture; "
     "GaussianMixture.standard().error(schedules.linear(4), num_samples=10**8)", ("num_samples",)),
    ("mixture2d-samples-1e9",
     "from flowsched import schedules; from flowsched.quality import GaussianMixture; "
     "GaussianMixture.ring2d().error(schedules.linear(4), num_samples=10**9)", ("num_samples",)),
    ("field-shape", "from flowsched.quality import GaussianField; GaussianField((33, 12500, 12500))",
     ("grid",)),
    ("optimize-schedule-1e9",
     "from flowsched.quality import GaussianField, optimize_schedule; "
     "optimize_schedule(10**9, GaussianField((1, 8, 8)))", ("num_steps",)),
    ("error-table-1e9",
     "from flowsched import schedules; from flowsched.quality import GaussianField, error_table; "
     "error_table({'linear': schedules.linear}, [10**9], GaussianField((1, 8, 8)))", ("steps",)),
    ("plot-dpi",
     "from flowsched import schedules; from flowsched.plot import plot_schedules; "
     "plot_schedules(schedules.linear(4), os.path.join(d, 'big.png'), dpi=100000)", ("dpi",)),
]

STRENGTH_CONVENTIONS = ("diffusers", "diffusers-floor", "comfyui", "diffsynth", "framepack")
#: The cuts that cannot exist, and what their refusal must say: ComfyUI's base of int(28 / s) steps is past the step
#: limit; int(28 s) = 0 steps (diffusers-floor), and 28 - 28 s rounds to 28 at 1e-300 (diffusers), keep no step.
#: Every other convention rescales the base and cuts a (tiny) schedule.
STRENGTH_REFUSED = {
    ("comfyui", "1e-9"): "above the limit of 10000",
    ("comfyui", "1e-300"): "above the limit of 10000",
    ("diffusers-floor", "1e-9"): "keeps no step",
    ("diffusers-floor", "1e-300"): "keeps no step",
    ("diffusers", "1e-300"): "keeps no step",
}
GUARDED_PARTIAL = [
    (f"partial-{conv}-{s}",
     f"import math; from flowsched.strength import partial; r = partial('flux.1-dev', 28, {s}, "
     f"convention={conv!r}{', alpha=math.exp(1.15)' if conv == 'diffsynth' else ''}); "
     "import numpy as np; assert np.isfinite(r.t).all() and r.num_steps >= 1",
     STRENGTH_REFUSED.get((conv, s)))
    for conv in STRENGTH_CONVENTIONS
    for s in ("1e-9", "1e-300")
]

DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, os, signal, sys, traceback
    cases, root, seconds = json.loads(sys.argv[1])
    from flowsched.cli import main

    def too_long(*_):
        raise TimeoutError(f"the case ran for more than {seconds} s")

    signal.signal(signal.SIGALRM, too_long)
    results = {}
    for name, kind, payload in cases:
        d = os.path.join(root, name)
        os.makedirs(d)
        os.chdir(d)
        out, err = io.StringIO(), io.StringIO()
        rec = {"code": None, "raised": None, "message": ""}
        signal.alarm(seconds)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                if kind == "cli":
                    rec["code"] = main(payload)
                else:
                    exec(payload, {"os": os, "d": d})
        except BaseException as exc:
            rec["raised"] = type(exc).__name__
            rec["message"] = str(exc)
            rec["traceback"] = traceback.format_exc()
        finally:
            signal.alarm(0)
        rec.update(out=out.getvalue()[:4000], err=err.getvalue()[-4000:], files=sorted(os.listdir(d)))
        results[name] = rec
    print(json.dumps(results))
    """
)


def _cap_address_space() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """{case id: what it did}, from one child interpreter with its address space capped."""
    root = tmp_path_factory.mktemp("guarded")
    cases = [[name, "cli", argv] for name, argv, _ in GUARDED_CLI]
    cases += [[f"lib-{name}", "lib", stmt] for name, stmt, _ in GUARDED_LIBRARY + GUARDED_PARTIAL]
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps([cases, str(root), CASE_SECONDS])],
        capture_output=True, text=True, timeout=CASE_SECONDS * len(cases) + 120, preexec_fn=_cap_address_space,
        env=dict(os.environ, FLOWSCHED_MAX_BYTES=str(8 * 2**30)),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _params(rows):
    return [pytest.param(name, payload, names, id=name) for name, payload, names in rows]


@pytest.mark.parametrize("name, argv, names", _params(GUARDED_CLI))
def test_unbounded_sizes_are_refused_by_the_cli(guarded, name, argv, names):
    rec = guarded[name]
    assert rec["raised"] is None, rec.get("traceback", rec["message"])
    assert_refused(rec["code"], rec["out"], rec["err"], names, rec["files"])


@pytest.mark.parametrize("name, statement, names", _params(GUARDED_LIBRARY))
def test_unbounded_sizes_are_refused_by_the_library(guarded, name, statement, names):
    rec = guarded[f"lib-{name}"]
    assert rec["raised"] in ("ValueError", "TypeError"), rec.get("traceback", rec["message"])
    assert any(n in rec["message"] for n in names), rec["message"]
    assert "\n" not in rec["message"] and len(rec["message"]) < 500, rec["message"]
    assert_clean(rec["message"])
    assert rec["files"] == []


@pytest.mark.parametrize("name, statement, refusal", _params(GUARDED_PARTIAL))
def test_tiny_strengths_give_a_schedule_or_a_short_refusal(guarded, name, statement, refusal):
    # Every convention either cuts a finite schedule or refuses the strength in a sentence a user can read.
    rec = guarded[f"lib-{name}"]
    if refusal is None:
        assert rec["raised"] is None, rec.get("traceback", rec["message"])
        return
    assert rec["raised"] == "ValueError", rec.get("traceback", rec["message"])
    assert "strength" in rec["message"] and refusal in rec["message"] and len(rec["message"]) < 400, rec["message"]
    assert_clean(rec["message"])


def test_an_allocation_the_checks_let_through_fails_in_one_line(capsys, monkeypatch):
    import flowsched.cli.shape_cmd as shape_cmd

    def out_of_memory(args):
        raise MemoryError()

    monkeypatch.setattr(shape_cmd, "run", out_of_memory)
    code, out, err = run(capsys, "shape")
    assert_refused(code, out, err, ("out of memory",))
    assert "FLOWSCHED_MAX_BYTES" in err


def test_the_guard_catches_an_unbounded_allocation(tmp_path):
    # The cap is what keeps a regression from exhausting the machine: an allocation above it fails in the child.
    code = "import numpy as np; np.ones(2**31)"  # 16 GiB
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         preexec_fn=_cap_address_space)
    assert res.returncode != 0 and "MemoryError" in res.stderr


# -- 2. inputs that are not numbers -----------------------------------------------------------------------------

#: Where the bad values go in a [1, 16, 1, 24, 42] latent: five of them, the first (C order) at (0, 2, 0, 1, 4).
BAD_AT = [(0, 2, 0, 1, 4), (0, 2, 0, 7, 7), (0, 9, 0, 0, 0), (0, 9, 0, 0, 1), (0, 15, 0, 23, 41)]


def _with_bad_values(shape=(1, 16, 1, 24, 42), value=float("nan")):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for i, at in enumerate(BAD_AT):
        x[at] = value if i % 2 == 0 else -math.inf
    return x


def assert_names_count_and_position(message: str, name: str) -> None:
    assert name in message, message
    first = BAD_AT[0]
    assert str(first) in message or str(list(first)) in message, message  # the first bad value's position
    assert re.search(r"\b5\b", message.replace(str(first), "").replace(str(list(first)), "")), message  # how many


@pytest.mark.parametrize("value", [float("nan"), math.inf])
def test_plan_refuses_an_init_latent_that_is_not_numbers(capsys, tmp_path, monkeypatch, value):
    import torch
    from safetensors.torch import save_file

    init = tmp_path / "in" / "bad.safetensors"
    init.parent.mkdir()
    save_file({"latent": torch.from_numpy(_with_bad_values(value=value))}, init)
    monkeypatch.chdir(tmp_path)
    os.mkdir("out")
    code, out, err = run(capsys, "plan", "--preset", "opensora-2.0-256px", "--frames", "1", "--steps", "20",
                         "--init", str(init), "--strength", "0.6", "--out", "out/p.safetensors")
    assert_refused(code, out, err, ("--init",), os.listdir("out"))
    assert_names_count_and_position(err, "--init")


def test_evaluate_refuses_latents_that_are_not_numbers(capsys, tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "latents.safetensors"
    save_file({"latents": torch.from_numpy(_with_bad_values())}, path)
    code, out, err = run(capsys, "evaluate", "--steps", "4", "--latents", str(path))
    assert_refused(code, out, err, ("--latents",))
    assert_names_count_and_position(err, "--latents")


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("which", ["x0", "noise"])
def test_add_noise_refuses_data_that_is_not_numbers(kind, which):
    from flowsched.sampling import add_noise

    bad = _with_bad_values()
    good = np.zeros_like(bad)
    x0, noise = (bad, good) if which == "x0" else (good, bad)
    if kind == "torch":
        import torch

        x0, noise = torch.from_numpy(x0), torch.from_numpy(noise)
    with pytest.raises(ValueError) as info:
        add_noise(x0, noise, 0.5)
    assert_names_count_and_position(str(info.value), which)


def test_samplers_refuse_a_start_that_is_not_numbers():
    from flowsched import schedules
    from flowsched.sampling import euler

    calls = []

    def velocity(x, t):
        calls.append(t)
        return np.zeros_like(x)

    with pytest.raises(ValueError) as info:
        euler(velocity, _with_bad_values(), schedules.linear(4))
    assert_names_count_and_position(str(info.value), "x")
    assert calls == []  # refused before the model was called


def test_fit_spectrum_names_the_count_and_first_position():
    from flowsched.quality import fit_spectrum

    with pytest.raises(ValueError) as info:
        fit_spectrum(_with_bad_values())
    assert_names_count_and_position(str(info.value), "latents")


# -- 3. messages and help that say something untrue --------------------------------------------------------------


def _time_shift(t: float, alpha: float) -> float:
    return alpha * t / (1 + (alpha - 1) * t)


def _says_this_shift(warning: str, alpha: float, strength: float) -> None:
    """The strength warning names this schedule's shift and where it puts the strength, not shift 3's example."""
    if alpha != 3:
        assert "shift 3 " not in warning, warning
    assert re.search(rf"(alpha|shift)\s*=?\s*{alpha:g}\b", warning), warning
    assert f"{_time_shift(strength, alpha):.3f}" in warning, warning


@pytest.mark.parametrize(
    "spec, alpha", [("shifted:alpha=2", 2.0), ("wan2.1-t2v-480p", 5.0), ("shifted:alpha=10", 10.0)]
)
def test_strength_warning_says_what_this_shift_does(spec, alpha):
    from flowsched.diagnostics import diagnose
    from flowsched.strength import partial

    cut = partial(spec, 20, 0.3, convention="comfyui")  # starts at shift(20 / 66), not at shift(0.3)
    assert f"{cut.t[0]:.3f}" != f"{_time_shift(0.3, alpha):.3f}"
    (warning,) = [w for w in diagnose(cut) if w.startswith("strength")]
    _says_this_shift(warning, alpha, 0.3)


@pytest.mark.parametrize(
    "argv, alpha",
    [
        (["--flow-shift", "2"], 2.0),
        (["--preset", "wan2.1-t2v-480p"], 5.0),
        (["--flow-shift", "10"], 10.0),
    ],
)
def test_schedule_strength_warning_says_what_this_shift_does(capsys, argv, alpha):
    code, out, err = run(capsys, "schedule", *argv, "--steps", "20", "--strength", "0.3", "--convention", "comfyui",
                         "--no-plot")
    assert code == 0
    (warning,) = [line for line in err.splitlines() if "strength" in line]
    _says_this_shift(warning, alpha, 0.3)


def _help(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_optimize_help_offers_only_what_optimize_does(capsys):
    text = _help(capsys, "optimize")
    for word in ("heun", "euler_ancestral", "stochastic_euler", "--eta", "--s-noise"):
        assert word not in text, word


def test_optimize_help_recommends_a_call_that_is_not_deprecated(capsys):
    text = " ".join(_help(capsys, "optimize").split())
    assert "noise=x1" not in text  # optimize_schedule(N, velocity, noise=x1) warns that it is deprecated
    assert "teacher_search(" in text


def test_evaluate_eta_too_large_prints_plain_numbers(capsys):
    code, out, err = run(capsys, "evaluate", "--steps", "4", "--sampler", "euler_ancestral", "--eta", "5")
    assert_refused(code, out, err, ("eta",))


def test_ancestral_coefficients_print_plain_numbers():
    from flowsched.sampling import ancestral_coefficients

    with pytest.raises(ValueError) as info:
        ancestral_coefficients(np.float64(0.5), np.float64(0.25), 5.0)
    assert "eta" in str(info.value)
    assert_clean(str(info.value))


@pytest.mark.parametrize("model", ["field", "mixture"])
def test_evaluate_s_noise_that_overflows_is_refused(capsys, model):
    code, out, err = run(capsys, "evaluate", "--steps", "4", "--model", model, "--samples", "64", "--sampler",
                         "euler_ancestral", "--s-noise", "1e300")
    assert_refused(code, out, err, ("s-noise", "s_noise"))


def test_library_s_noise_that_overflows_is_refused():
    from flowsched import schedules
    from flowsched.quality import GaussianField, GaussianMixture

    for model in (GaussianField((1, 8, 8)), GaussianMixture.standard()):
        kw = {"num_samples": 16, "metric": "sliced_w2"} if isinstance(model, GaussianMixture) else {}
        with pytest.raises(ValueError, match="s_noise"):
            model.error(schedules.linear(4), sampler="euler_ancestral", s_noise=1e300, **kw)


# (argv up to the unknown option: the command's required arguments)
UNKNOWN_OPTION = [
    ["plan"], ["schedule"], ["shape"], ["noise"], ["presets"], ["plot", "linear"], ["compare", "linear"],
    ["evaluate"], ["optimize"], ["frames", "self-forcing"],
]


@pytest.mark.parametrize("argv", UNKNOWN_OPTION, ids=[a[0] for a in UNKNOWN_OPTION])
def test_unknown_option_points_to_the_command_help(capsys, argv):
    code, out, err = run(capsys, *argv, "--no-such-option")
    assert_refused(code, out, err, ("--no-such-option",))
    assert f"`flowsched {argv[0]} --help`" in err


def test_all_commands_are_in_the_unknown_option_list():
    from flowsched.cli import COMMANDS

    assert sorted(a[0] for a in UNKNOWN_OPTION) == sorted(COMMANDS)


def test_portable_seed_out_of_range_quotes_the_portable_range(capsys):
    code, out, err = run(capsys, "noise", "--generator", "portable", "--seed", str(2**64), "--json")
    assert_refused(code, out, err, ("seed",))
    assert "[0, 2**64" in err and "torch" not in err


def test_library_portable_seed_out_of_range_quotes_the_portable_range():
    from flowsched.noise import noise

    with pytest.raises(ValueError) as info:
        noise((1, 4, 1, 8, 8), 2**64, generator="portable")
    assert "[0, 2**64" in str(info.value) and "torch" not in str(info.value)


def _text_warnings(err: str) -> list[str]:
    lines = err.splitlines()
    assert all(line.startswith("warning: ") for line in lines), err
    return [line.removeprefix("warning: ") for line in lines]


def test_compare_strength_warns_once_per_cause_the_same_in_text_and_json(capsys):
    code, out, err = run(capsys, "compare", "sd3-medium", "--strength", "0.3")
    assert code == 0
    text = _text_warnings(err)
    code, out, _ = run(capsys, "compare", "sd3-medium", "--strength", "0.3", "--json")
    assert code == 0
    rows = json.loads(out)
    messages = list(dict.fromkeys(w for row in rows for w in row.get("warnings", ())))
    # one line per distinct cause, each line carrying exactly one of the JSON messages
    assert len(text) == len(messages) <= 3, (text, messages)
    for line in text:
        assert sum(line.endswith(m) for m in messages) == 1, (line, messages)
    assert all(len(m) <= 200 for m in messages), messages
    # the framepack row has sd3's double-shifted grid too
    (framepack,) = [row for row in rows if row.get("convention") == "framepack"]
    assert framepack["warnings"], framepack
    assert any("framepack" in line for line in text), text


def test_plan_strength_warnings_are_the_same_in_text_and_json(capsys):
    argv = ["plan", "--preset", "sd3-medium", "--steps", "10", "--strength", "0.3"]
    code, out, _ = run(capsys, *argv, "--json")
    assert code == 0
    warnings_json = json.loads(out)["warnings"]
    assert any("strength" in w for w in warnings_json), warnings_json
    code, out, err = run(capsys, *argv)
    assert code == 0 and _text_warnings(err) == warnings_json



def _without(tmp_path, blocked, argv):
    """The command line run in a child where the ``blocked`` packages (torch among them) do not import."""
    env = blocking_env(tmp_path, blocked)
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "flowsched", *argv], cwd=out_dir, env=env, capture_output=True,
                         text=True, timeout=120)
    return res.returncode, res.stdout, res.stderr, os.listdir(out_dir)


def test_plan_plot_names_matplotlib_before_importing_torch(tmp_path):
    # torch made unimportable: a check that comes after `import torch` would report torch instead of the extra
    code, out, err, files = _without(tmp_path, ["torch", "matplotlib"],
                                     ["plan", "--steps", "4", "--plot", "x.png", "--out", "p.safetensors"])
    assert_refused(code, out, err, ("flowsched[plot]",), files)


def test_noise_numba_backend_names_the_extra_before_importing_torch(tmp_path):
    argv = ["noise", "--generator", "portable", "--backend", "numba", "--out", "n.safetensors"]
    code, out, err, files = _without(tmp_path, ["torch", "numba"], argv)
    assert_refused(code, out, err, ("flowsched[fast]",), files)


def test_comfyui_beta_without_scipy_names_the_extra(tmp_path):
    code, out, err, files = _without(tmp_path, ["scipy"], ["compare", "comfyui:scheduler=beta,shift=3,steps=20"])
    assert_refused(code, out, err, ("flowsched[quality]",), files)


def test_extras_tables_say_comfyui_beta_needs_scipy():
    import flowsched._optional as optional

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as fh:
        (quality,) = [line for line in fh if line.startswith("quality =")]
    assert "comfyui:scheduler=beta" in quality
    assert "comfyui:scheduler=beta" in " ".join(optional.__doc__.split())


# -- 4. output formats follow the file name ----------------------------------------------------------------------

SMALL = ["--preset", "opensora-2.0-256px", "--frames", "1", "--steps", "3"]

# (argv with the output name, flags the message must name (one of))
WRONG_SUFFIX = [
    (["plan", *SMALL, "--out", "p.npy"], ("--out",)),
    (["plan", *SMALL, "--out", "p.json"], ("--out",)),
    (["noise", "--preset", "opensora-2.0-256px", "--frames", "1", "--out", "n.npy"], ("--out",)),
    (["optimize", *SMALL, "--out", "s.csv"], ("--out",)),
    (["optimize", *SMALL, "--out", "s.safetensors"], ("--out",)),
    (["schedule", "--steps", "3", "--csv", "--out", "s.json"], ("--csv", "--out")),
    (["schedule", "--steps", "3", "--json", "--out", "s.csv"], ("--json", "--out")),
    (["schedule", "--steps", "3", "--out", "s.txt"], ("--out",)),
    (["plan", *SMALL, "--plot", "x.jpg"], ("--plot",)),
    (["plot", "linear", "--out", "x.jpg"], ("--out",)),
    (["evaluate", *SMALL, "--plot", "x.txt"], ("--plot",)),
    (["optimize", *SMALL, "--plot", "x.json"], ("--plot",)),
    (["frames", "self-forcing", "--plot", "x.safetensors"], ("--plot",)),
    (["plan", *SMALL, "--init", "x.pt", "--strength", "0.5"], ("--init",)),
]


@pytest.mark.parametrize(
    "argv, names", [pytest.param(a, n, id=" ".join(a[:1] + a[-2:])) for a, n in WRONG_SUFFIX]
)
def test_a_suffix_the_command_cannot_write_is_refused_up_front(capsys, tmp_path, monkeypatch, argv, names):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert_refused(code, out, err, names, os.listdir(tmp_path))


def test_the_suffix_picks_the_schedule_format(capsys, tmp_path):
    from flowsched import Schedule

    argv = ["schedule", "--preset", "opensora-2.0-256px", "--steps", "3", "--out"]
    assert main([*argv, str(tmp_path / "s.csv")]) == 0
    assert main([*argv, str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    want = Schedule.from_json((tmp_path / "s.json").read_text())
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "step,t,timestep,dt" and [float(r.split(",")[1]) for r in rows[1:]] == want.to_list()
