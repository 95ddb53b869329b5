"""The importer inside Pyodide (Node.js), where the `onnx` package does not exist: it must parse an
ONNX file with its own protobuf reader and give the same numbers as natively.

Skipped unless `node` and a Pyodide distribution with numpy are available: $WASMVISION_PYODIDE_DIR,
else dist/pyodide (the built site), else /tmp/pyodide-0.27.7.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnx_builders as B  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "py_pkg" / "wasmvision"


def _pyodide_dir() -> Path | None:
    candidates = [os.environ.get("WASMVISION_PYODIDE_DIR"), ROOT / "dist" / "pyodide", "/tmp/pyodide-0.27.7"]
    for c in candidates:
        if c and (Path(c) / "pyodide.mjs").exists() and (Path(c) / "pyodide-lock.json").exists():
            return Path(c)
    return None


SCRIPT = r"""
import {loadPyodide} from "%(pyodide)s/pyodide.mjs";
import fs from "fs";
import path from "path";
const py = await loadPyodide({indexURL: "%(pyodide)s/"});
await py.loadPackage("numpy");
function copyDir(src, dst) {
  py.FS.mkdirTree(dst);
  for (const e of fs.readdirSync(src, {withFileTypes: true})) {
    if (e.name === "__pycache__") continue;
    const s = path.join(src, e.name), d = dst + "/" + e.name;
    if (e.isDirectory()) copyDir(s, d); else py.FS.writeFile(d, fs.readFileSync(s));
  }
}
copyDir("%(package)s", "/home/pyodide/wasmvision");
py.FS.writeFile("/home/pyodide/m.onnx", fs.readFileSync("%(work)s/m.onnx"));
py.FS.writeFile("/home/pyodide/x.npy", fs.readFileSync("%(work)s/x.npy"));
await py.runPythonAsync(`
import sys, importlib.util, numpy as np
sys.path.insert(0, "/home/pyodide")
assert importlib.util.find_spec("onnx") is None
from wasmvision.importers.onnx_import import import_onnx
import wasmvision
b = import_onnx("/home/pyodide/m.onnx")
np.save("/home/pyodide/y.npy", wasmvision.load(b).run(np.load("/home/pyodide/x.npy")))
`);
fs.writeFileSync("%(work)s/y.npy", py.FS.readFile("/home/pyodide/y.npy"));
"""


def test_import_onnx_in_pyodide(tmp_path):
    pyodide = _pyodide_dir()
    if shutil.which("node") is None or pyodide is None:
        pytest.skip("needs node and a Pyodide distribution")
    model = B.mobilenet_v3("small", size=64, opset=13)
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "run.mjs"
    script.write_text(SCRIPT % {"pyodide": pyodide, "package": PACKAGE, "work": tmp_path})
    r = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    y = np.load(tmp_path / "y.npy")
    ref = B.run_onnxruntime(model, x, "NCHW")
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() / max(1.0, np.abs(ref).max()) <= 1e-4
    assert np.array_equal(y.argmax(-1), ref.argmax(-1))
