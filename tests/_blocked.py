"""Child processes in which chosen packages do not import, as if they were not installed: a ``sitecustomize`` module
on PYTHONPATH raises ModuleNotFoundError for them (the packages named in ``FLOWSCHED_TEST_BLOCK``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SITECUSTOMIZE = """\
import os
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set(filter(None, os.environ.get("FLOWSCHED_TEST_BLOCK", "").split(",")))


class Blocker(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""


def blocking_env(folder: Path, blocked: Iterable[str]) -> dict[str, str]:
    """The environment of a child that cannot import ``blocked`` (the sitecustomize goes to ``folder / "site"``)."""
    site = folder / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, FLOWSCHED_TEST_BLOCK=",".join(blocked), PYTHONPATH=path)
