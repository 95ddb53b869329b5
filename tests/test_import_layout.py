"""The importers package's structure: an explicit op list, helpers shared through ops_common, no import circle,
and every module importable on its own (onnx's reference evaluator layout)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from wasmvision.importers import op_list

PACKAGE = Path(__file__).resolve().parents[1] / "py_pkg" / "wasmvision" / "importers"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _imports(module: str) -> set[str]:
    """Sibling modules ``module`` imports anywhere (top level or inside a function)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names if a.name in MODULES)
    return found & set(MODULES)


def test_no_import_circle_between_the_importer_modules():
    graph = {m: _imports(m) for m in MODULES}
    done, path = set(), []

    def visit(m):
        if m in path:
            pytest.fail("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for dep in sorted(graph[m]):
            visit(dep)
        path.pop()
        done.add(m)
    for m in MODULES:
        visit(m)


def test_op_modules_share_helpers_only_through_ops_common():
    for m in MODULES:
        if m.startswith("ops_"):
            others = {d for d in _imports(m) if d.startswith("ops_") and d != "ops_common"}
            assert not others, f"{m} imports {sorted(others)}"


def test_the_op_list_names_every_importer_function_of_the_op_modules():
    listed = {(fn.__module__.rsplit(".", 1)[1], fn.__name__) for fn in op_list.IMPORTERS.values()}
    assert {m for m, _ in listed} == {m for m in MODULES if m.startswith("ops_") and m != "ops_common"}
    assert op_list.SUPPORTED_OPS == sorted(op_list.IMPORTERS) and len(op_list.SUPPORTED_OPS) >= 37
    assert op_list.get_importer("Conv").__name__ == "conv" and op_list.get_importer("Nope") is None


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_on_its_own(module):
    r = subprocess.run([sys.executable, "-c", f"import wasmvision.importers.{module}"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
