"""Optional packages (scipy, matplotlib, tqdm): every command, with each of them made unimportable, either works
or refuses in one line naming the extra that installs what is missing; never a traceback, never a partial write.
Library entry points that need one raise an ImportError whose message names the extra.

The packages are made unimportable in a child interpreter by a meta-path finder installed from a
``sitecustomize`` module on PYTHONPATH: it raises ModuleNotFoundError for them, as a missing package does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from _blocked import blocking_env
from flowsched._optional import EXTRAS, MissingDependency, install_hint, require

SMALL = ["--preset", "opensora-2.0-256px", "--frames", "1"]

# (command line with {d} for an output folder of its own, the optional packages it needs)
COMMANDS = [
    (["shape"], set()),
    (["schedule", "--steps", "4"], set()),
    (["schedule", "--steps", "4", "--flow-shift", "auto", "--out", "{d}/s.json"], {"scipy"}),
    (["presets", "--no-sources"], set()),
    (["compare", "opensora-2.0-768px", "flux:image_seq_len=4096"], set()),
    (["compare", "linear", "beta:steps=10"], {"scipy"}),
    (["plot", "linear", "shifted:alpha=3", "--out", "{d}/p.png"], {"matplotlib"}),
    (["plot", "linear", "beta:steps=10", "--out", "{d}/p.png"], {"matplotlib", "scipy"}),
    (["plan", *SMALL, "--steps", "4", "--out", "{d}/p.safetensors"], set()),
    (["plan", *SMALL, "--steps", "4", "--out", "{d}/p.safetensors", "--plot", "{d}/p.png"], {"matplotlib"}),
    (["plan", *SMALL, "--steps", "4", "--flow-shift", "auto", "--out", "{d}/p.safetensors"], {"scipy"}),
    (["noise", *SMALL, "--out", "{d}/n.safetensors"], set()),
    (["evaluate", *SMALL, "--steps", "4"], set()),
    (["evaluate", *SMALL, "--steps", "4", "--schedule", "auto", "--plot", "{d}/e.png"], {"scipy", "matplotlib"}),
    (["evaluate", *SMALL, "--steps", "4", "--schedule", "beta"], {"scipy"}),
    (["evaluate", *SMALL, "--steps", "4", "--plot", "{d}/e.png"], {"matplotlib"}),
    (["evaluate", "--model", "mixture2d", "--samples", "32", "--steps", "4"], set()),
    (["optimize", *SMALL, "--steps", "3", "--out", "{d}/o.json"], {"scipy"}),
    (["optimize", *SMALL, "--steps", "3", "--out", "{d}/o.json", "--plot", "{d}/o.png"], {"scipy", "matplotlib"}),
    (["frames", "self-forcing"], set()),
    (["frames", "self-forcing", "--plot", "{d}/f.png"], {"matplotlib"}),
]

# (name, Python statement using `d` for a scratch folder, the optional packages it needs)
LIBRARY = [
    ("progress_bar", "from flowsched._optional import progress_bar; progress_bar(3, True, 'x').close()", {"tqdm"}),
    ("error_table(progress=True)",
     "from flowsched import schedules; from flowsched.quality import GaussianField, error_table; "
     "error_table({'l': schedules.linear}, [2], GaussianField((1, 4, 4)), progress=True)", {"tqdm"}),
    ("schedules.beta", "from flowsched import schedules; schedules.beta(5)", {"scipy"}),
    ("auto_shift", "from flowsched.geometry import LatentGeometry; from flowsched.quality import auto_shift; "
     "auto_shift(LatentGeometry.from_pixels(64, 64, 1, 'flux'), 4)", {"scipy"}),
    ("optimize_schedule", "from flowsched.quality import GaussianField, optimize_schedule; "
     "optimize_schedule(3, GaussianField((1, 4, 4)))", {"scipy"}),
    ("plot_schedules", "from flowsched import schedules; from flowsched.plot import plot_schedules; "
     "plot_schedules(schedules.linear(3), os.path.join(d, 'x.png'))", {"matplotlib"}),
    ("plot_error_vs_steps", "from flowsched.quality import plot_error_vs_steps; "
     "plot_error_vs_steps({'a': [0.1]}, [3], os.path.join(d, 'y.png'))", {"matplotlib"}),
]

DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, traceback
    commands, library, root = json.loads(sys.argv[1])
    from flowsched.cli import main
    results = []
    for k, argv in enumerate(commands):
        d = os.path.join(root, f"c{k}")
        argv = [a.replace("{d}", d) for a in argv]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        except BaseException:
            code, err = "raised", io.StringIO(traceback.format_exc())
        files = sorted(os.listdir(d)) if os.path.isdir(d) else []
        results.append({"code": code, "err": err.getvalue(), "files": files})
    calls = []
    for k, (name, statement) in enumerate(library):
        d = os.path.join(root, f"l{k}")
        os.makedirs(d)
        try:
            exec(statement, {"os": os, "d": d})
            calls.append({"outcome": "ok", "message": ""})
        except ImportError as exc:
            calls.append({"outcome": type(exc).__name__, "message": str(exc), "files": os.listdir(d)})
        except BaseException:
            calls.append({"outcome": "raised", "message": traceback.format_exc()})
    print(json.dumps({"commands": results, "library": calls}))
    """
)

# With one package blocked, every command that does not need it must succeed: that covers the unblocked case too.
BLOCKS = ["scipy", "matplotlib", "tqdm"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """{blocked package: the driver's report}; the children run concurrently."""
    base = tmp_path_factory.mktemp("optional")
    payload_library = [[name, statement] for name, statement, _ in LIBRARY]
    procs = {}
    for block in BLOCKS:
        root = base / block
        root.mkdir()
        env = blocking_env(base, [block])
        payload = json.dumps([[argv for argv, _ in COMMANDS], payload_library, str(root)])
        procs[block] = subprocess.Popen([sys.executable, "-c", DRIVER, payload], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
    reports = {}
    for block, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reports[block] = json.loads(out.strip().splitlines()[-1])
    return reports


@pytest.mark.slow  # three child interpreters that import torch, scipy and matplotlib (together ~10 s of CPU)
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[" ".join(argv[:2]) for argv, _ in COMMANDS])
def test_every_command_works_or_names_the_extra(outcomes, block, index):
    argv, needs = COMMANDS[index]
    result = outcomes[block]["commands"][index]
    assert "Traceback" not in result["err"], result["err"]
    if block in needs:
        lines = result["err"].splitlines()
        assert result["code"] == 2 and len(lines) == 1, result["err"]
        assert lines[0].startswith("flowsched: error: ") and install_hint(block) in lines[0]
        assert result["files"] == []  # refused before anything was written
    else:
        assert result["code"] == 0, result["err"]


@pytest.mark.slow  # shares the children above
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("index", range(len(LIBRARY)), ids=[name for name, _, _ in LIBRARY])
def test_library_entry_points_name_the_extra(outcomes, block, index):
    _, _, needs = LIBRARY[index]
    call = outcomes[block]["library"][index]
    if block in needs:
        assert call["outcome"] == "MissingDependency", call["message"]
        assert install_hint(block) in call["message"] and "\n" not in call["message"]
        assert call["files"] == []
    else:
        assert call["outcome"] == "ok", call["message"]


def test_console_script_prints_one_line_without_matplotlib(tmp_path):
    env = blocking_env(tmp_path, ["matplotlib"])
    res = subprocess.run([sys.executable, "-m", "flowsched", "plot", "linear", "--out", str(tmp_path / "x.png")],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == (
        "flowsched: error: flowsched plot needs matplotlib, which is not installed: pip install 'flowsched[plot]'\n"
    )
    assert not (tmp_path / "x.png").exists()


def test_extras_match_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as fh:
        project = tomllib.load(fh)["project"]
    extras = project["optional-dependencies"]
    for package, extra in EXTRAS.items():
        assert any(req.startswith(package) for req in extras[extra]), (package, extra)
        assert not any(req.startswith(package) for req in project["dependencies"]), package
        assert any(req.startswith(package) for req in extras["all"]), package


def test_require_names_the_extra_and_keeps_other_errors(monkeypatch):
    import flowsched._optional as optional

    with pytest.raises(ValueError, match="package must be one of"):
        require("json", "anything")

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(optional.importlib, "import_module", missing)
    with pytest.raises(MissingDependency) as exc:
        require("scipy.optimize", "the test")
    assert str(exc.value) == "the test needs scipy, which is not installed: pip install 'flowsched[quality]'"
    assert isinstance(exc.value, ImportError) and exc.value.name == "scipy"

    def broken(name):  # matplotlib is there but one of its own dependencies is not: that error is the real one
        raise ModuleNotFoundError("No module named 'kiwisolver'", name="kiwisolver")

    monkeypatch.setattr(optional.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError) as exc:
        require("matplotlib.figure", "plotting")
    assert not isinstance(exc.value, MissingDependency) and exc.value.name == "kiwisolver"


def test_the_table_covers_every_command():
    """A command added to the CLI must be added to COMMANDS above, so its optional packages are checked too."""
    from flowsched.cli import COMMANDS as CLI_COMMANDS

    assert {argv[0] for argv, _ in COMMANDS} == set(CLI_COMMANDS)
