"""The folder tree is the architecture: imports run one way, the analysis never loads a GUI.

Layers, lowest first (docs/architecture.md): a module may import from its own package and
from packages of lower layers, never from a higher layer nor from a sibling package of its
own layer. Function-level imports count like any other; so does ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import napari_calcinosis

ROOT = Path(napari_calcinosis.__file__).parent
PACKAGE = "napari_calcinosis"
LAYERS = [
    {"napari_calcinosis"},  # the package root: its version only
    {"types", "files"},
    {"pacs"},
    {"dicom", "summary"},
    {"ct", "xray"},
    {"fusion"},
    {"clinical"},
    {"classify"},
    {"annotations"},
    {"pipeline"},
    {"review", "report", "phantom"},
    {"run"},
    {"batch"},
    {"_napari"},
    {"_qt"},
    {"cli"},
    {"__main__"},
]
#: Analysis packages: usable without napari, Qt or magicgui.
ANALYSIS = ["types", "files", "dicom", "summary", "ct", "xray", "fusion", "clinical",
            "classify", "annotations", "pipeline", "review", "report", "phantom", "run",
            "batch", "pacs"]
GUI_ROOTS = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy")


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The top-level unit of a module: ``napari_calcinosis.ct._detect`` -> ``ct``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(unit: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit in units)


def _imports(module: str, path: Path) -> set[str]:
    """Project modules that ``module`` imports anywhere in its file (resolved)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: None if is_package else -1]
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in MODULES}
    assert units <= set().union(*LAYERS), units - set().union(*LAYERS)


def test_imports_run_one_way():
    wrong = []
    for module, targets in GRAPH.items():
        here = _unit(module)
        for target in targets:
            there = _unit(target)
            if there == here or there == PACKAGE:
                continue
            if _layer(there) >= _layer(here):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycles():
    """Tarjan's strongly connected components over every import, function-level ones too."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in GRAPH:
        if name not in index:
            visit(name)
    assert cycles == []


def test_other_packages_import_only_public_names():
    """Private step modules (``_name``) are imported only inside their own package."""
    leaks = []
    for module, targets in GRAPH.items():
        for target in targets:
            private = [p for p in target.split(".")[1:] if p.startswith("_")
                       and p not in ("__main__",)]
            if private and _unit(target) != _unit(module) and not _unit(target).startswith("_"):
                leaks.append(f"{module} -> {target}")
    assert leaks == []


@pytest.mark.parametrize("unit", ANALYSIS)
def test_analysis_loads_no_gui_module(unit):
    code = (
        "import sys, importlib\n"
        f"names = {sorted(m for m in MODULES if _unit(m) == unit)!r}\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {GUI_ROOTS!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"{unit} loaded GUI modules: {out.stdout}"
