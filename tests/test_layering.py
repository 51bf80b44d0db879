"""The module layering: every import inside flowsched (module level or inside a function) points down the stack.

A module may import only modules below it in :data:`LAYERS`, so the spec language can build presets and frame
schedules, samplers can use noise, and nothing low (a schedule family, the Schedule value) ever pulls in what sits
above it. The order is the one docs/conventions.md ("Module layout") describes.
"""

from __future__ import annotations

import ast
import pathlib

import flowsched

#: Bottom first. A module imports only modules that come earlier in this list (or its own package's modules).
LAYERS = (
    "_validate",
    "_limits",
    "_optional",
    "_io",
    "geometry",
    "shift",
    "schedule",
    "schedules",
    "diffusers_rules",
    "presets",
    "frames",
    "spec",
    "strength",
    "diagnostics",
    "backends",
    "philox",
    "noise",
    "opensora",
    "sampling",
    "plot",
    "quality",
    "distributed",
    "integrations",
    "cli",
    "__init__",
    "__main__",
)

ROOT = pathlib.Path(flowsched.__file__).parent


def _unit(path: pathlib.Path) -> str:
    """The layer a file belongs to: its top-level module or package under flowsched."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _imports(text: str, package: tuple[str, ...] = ()) -> set[str]:
    """The flowsched units a file's source imports, at module level or inside functions. ``package`` is the file's
    folder under flowsched (``()`` for a top-level module, ``("quality",)`` for one in ``quality/``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package)[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                found.update([target[0]] if target else (a.name for a in node.names))
            elif node.module and node.module.split(".")[0] == "flowsched":
                rest = node.module.split(".")[1:]
                found.update([rest[0]] if rest else (a.name for a in node.names))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "flowsched" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_unit_is_placed():
    units = {_unit(p) for p in ROOT.rglob("*.py")}
    assert units <= set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"


def test_imports_point_down():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        unit = _unit(path)
        package = path.relative_to(ROOT).parent.parts
        for target in _imports(path.read_text(encoding="utf-8"), package):
            if target == unit or target not in LAYERS:
                continue
            if LAYERS.index(target) > LAYERS.index(unit):
                upward.append(f"{path.relative_to(ROOT)} imports {target} (above {unit})")
    assert not upward, "\n".join(upward)


def test_the_parser_finds_every_kind_of_import():
    """Relative, absolute, package-relative and function-level imports are all seen (so the test above can fail)."""
    text = (
        "from . import schedules\n"
        "from .noise import portable_noise\n"
        "from .. import sampling\n"
        "from ..cli import main\n"
        "import flowsched.plot\n"
        "from flowsched import presets\n"
        "def f():\n"
        "    from ..integrations.diffusers import FlowschedScheduler\n"
    )
    # inside quality/, "from . import" and "from .noise" name quality's own modules
    assert _imports(text, ("quality",)) == {"quality", "sampling", "cli", "plot", "presets", "integrations"}
    assert _imports("from . import schedules\nfrom .spec import from_spec\n") == {"schedules", "spec"}


def test_no_module_imports_another_modules_private_name():
    """What several modules share is public (documented and tested); ``from .x import _y`` across modules is not
    allowed. Private modules of a package (``cli._common``, ``cli._output``) may be imported
    whole or by their public names."""
    private = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("flowsched")):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if node.module and names:
                    private.append(f"{path.relative_to(ROOT)}: from {node.module} import {', '.join(names)}")
    assert not private, "\n".join(private)


def test_every_exported_name_exists():
    """A module's ``__all__`` lists only names it defines or imports (``from module import *`` would fail)."""
    import importlib

    missing = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] in ("cli", "integrations", "__main__") or parts[-1] == "__init__" and len(parts) > 1:
            continue  # the command line and the optional diffusers adapter are not imported here
        name = ".".join(("flowsched", *parts)) if parts != ("__init__",) else "flowsched"
        try:
            module = importlib.import_module(name)
        except ImportError:  # a backend whose optional package is not installed
            continue
        missing += [f"{name}.{n}" for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert not missing, missing


def _module_names() -> list[str]:
    import pkgutil

    names = ["flowsched"] + [m.name for m in pkgutil.walk_packages(flowsched.__path__, "flowsched.")]
    return [n for n in names if not n.endswith("__main__")]


def test_every_module_declares_its_interface():
    """Every module has an ``__all__`` of names it defines, and whatever another flowsched module imports from it
    by name is in that list: a module's interface, to users and to the rest of the package, is written down."""
    import importlib

    missing, undefined, outside = [], [], []
    for name in _module_names():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            missing.append(name)
            continue
        undefined += [f"{name}.{n}" for n in exported if not hasattr(module, n)]
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        here = ".".join(rel.parts[:-1] if path.name == "__init__.py" else rel.parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            module = importlib.import_module(target)
            for alias in node.names:
                if f"{target}.{alias.name}" in _module_names():
                    continue  # a submodule
                if alias.name not in getattr(module, "__all__", ()):
                    outside.append(f"{rel}: {target}.{alias.name}")
    assert not missing, f"modules without __all__: {missing}"
    assert not undefined, f"names in __all__ that do not exist: {undefined}"
    assert not outside, f"imported by name but not in the module's __all__: {outside}"
