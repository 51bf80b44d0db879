"""The built wheel: what it carries (the licence text, the metadata pyproject.toml declares, only the package) and
that a plain install of it works in a fresh virtual environment, away from the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(ROOT)],
        check=True, capture_output=True, text=True, env=_clean_env(),
    )
    (built,) = out.glob("flowsched-*.whl")
    return built


def _clean_env() -> dict:
    """The environment without PYTHONPATH: the installed package must be the one imported, never the source tree."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


@pytest.mark.slow
def test_the_wheel_carries_the_licence_and_the_declared_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert zf.read(licence) == (ROOT / "LICENSE").read_bytes()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert "Requires-Python: >=3.11" in metadata  # what the test suite runs on (pyproject.toml says why)
    top = {n.split("/")[0] for n in names}
    assert top == {"flowsched", wheel.name.split("-py3")[0] + ".dist-info"}, top  # no tests, benchmarks or docs
    assert any(n.startswith("flowsched/backends/") for n in names) and "flowsched/cli/__init__.py" in names


@pytest.mark.slow
def test_a_plain_install_of_the_wheel_works_in_a_fresh_environment(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # the dependencies (torch, numpy, safetensors) are those of this environment, seen through a .pth file, so pip
    # resolves the wheel's requirements against them and installs nothing from an index
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "_flowsched_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _clean_env()
    pip = [str(python), "-m", "pip", "--quiet", "--disable-pip-version-check"]
    # the venv's bundled setuptools would shadow the newer one torch requires (this environment's)
    subprocess.run([*pip, "uninstall", "--yes", "setuptools"], capture_output=True, text=True, env=env)
    res = subprocess.run([*pip, "install", "--no-index", str(wheel)], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]

    def run(*args: str) -> str:
        res = subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    where = run(str(python), "-c", "import flowsched; print(flowsched.__file__, flowsched.__version__)")
    assert where.startswith(site) and where.split()[1] in wheel.name
    assert "usage: flowsched" in run(str(env_dir / "bin" / "flowsched"), "--help")
    out = run(str(env_dir / "bin" / "flowsched"), "schedule", "--flow-shift", "3", "--steps", "2", "--json")
    assert json.loads(out)["t"] == [1.0, 3 * 0.5 / (1 + 2 * 0.5), 0.0]  # the shift alpha t / (1 + (alpha - 1) t)
