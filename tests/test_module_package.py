"""The npm package of the site (dist/package.json) and the module's types (wasmvision.d.ts): `tsc --noEmit` on an
example that uses every call, with dist/ installed as node_modules/wasmvision, so package.json's `exports` and
`types` are what TypeScript resolves. Lines marked @ts-expect-error in the example must fail to compile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import npm_tools

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def tsc() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (apt-get install nodejs)", pytrace=False)
    return [node, str(npm_tools.npm_package("typescript") / "bin" / "tsc")]


def test_package_json_exports_the_module_and_its_types(dist_dir):
    pkg = json.loads((dist_dir / "package.json").read_text())
    # No "type": "module" (Node would read the CommonJS runtime in pyodide/ as ESM); the .mjs entry is ESM by name.
    assert pkg["name"] == "wasmvision" and "type" not in pkg
    entry = pkg["exports"]["."]
    assert entry["types"] == "./wasmvision.d.ts" and entry["import"] == "./wasmvision.mjs"
    for rel in pkg["files"]:
        assert (dist_dir / rel).is_file(), rel
    listed = {e["path"] for e in json.loads((dist_dir / "manifest.json").read_text())["files"]}
    # Everything the module loads at run time ships in the package.
    assert {"worker.js", "wasmvision.mjs", "wasmvision.d.ts"} <= set(pkg["files"])
    assert {p for p in listed if p.startswith(("worker/", "pyodide/", "models/"))} <= set(pkg["files"])


def test_types_check_with_tsc(dist_dir, tsc, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(HERE / "module_types", project)
    (project / "node_modules").mkdir()
    os.symlink(dist_dir.resolve(), project / "node_modules" / "wasmvision")
    out = subprocess.run([*tsc, "-p", str(project)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr

    # The check can fail: the same example with one wrong type does not compile.
    bad = project / "example.ts"
    bad.write_text(bad.read_text().replace("const v: Float32Array = await clf.embed(img);",
                                           "const v: string = await clf.embed(img);"))
    out = subprocess.run([*tsc, "-p", str(project)], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "Float32Array" in out.stdout, out.stdout
