"""Run Python code inside Pyodide under Node, with the working tree's wasmvision package (including the built
SIMD library) copied into Pyodide's file system. One Node process per call: batch many cases into one script.

The code reads its inputs from /work/in and writes results to /work/out (copied back to the host).
Skips (with the reason) only when node or a Pyodide distribution is genuinely absent; `build.py test` provides
both (dist/pyodide).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "py_pkg" / "wasmvision"

RUNNER = r"""
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
copyDir("%(work)s/in", "/work/in");
py.FS.mkdirTree("/work/out");
const code = fs.readFileSync("%(work)s/main.py", "utf8");
try {
  await py.runPythonAsync("import sys\nsys.path.insert(0, '/home/pyodide')\n" + code);
} catch (e) {
  // A PythonError's message is the Python traceback: print only that (not Pyodide's minified JS source).
  process.stderr.write("PYTHON-ERROR\n" + e.message + "\n");
  process.exit(1);
}
fs.mkdirSync("%(work)s/out", {recursive: true});
for (const name of py.FS.readdir("/work/out")) {
  if (name === "." || name === "..") continue;
  fs.writeFileSync("%(work)s/out/" + name, py.FS.readFile("/work/out/" + name));
}
"""


# Node 20's V8 has relaxed SIMD behind this flag (Chromium has it on): runs that must load the relaxed build pass it.
RELAXED_SIMD = ("--experimental-wasm-relaxed-simd",)


def pyodide_dir() -> Path | None:
    candidates = [os.environ.get("WASMVISION_PYODIDE_DIR"), ROOT / "dist" / "pyodide", "/tmp/pyodide-0.27.7"]
    for c in candidates:
        if c and (Path(c) / "pyodide.mjs").exists() and (Path(c) / "pyodide-lock.json").exists():
            return Path(c)
    return None


def require_pyodide() -> Path:
    pyodide = pyodide_dir()
    if shutil.which("node") is None or pyodide is None:
        pytest.skip("needs node and a Pyodide distribution (dist/pyodide: `python3 build.py build`)")
    return pyodide


def run_in_pyodide(work: Path, code: str, inputs: dict[str, bytes] | None = None, timeout: int = 600,
                   node_args: tuple[str, ...] = ()) -> dict:
    """Run ``code`` in a fresh Pyodide; returns {file name: bytes} of what it wrote to /work/out.
    ``node_args``: V8 flags for this run (e.g. RELAXED_SIMD)."""
    pyodide = require_pyodide()
    (work / "in").mkdir(parents=True, exist_ok=True)
    for name, data in (inputs or {}).items():
        (work / "in" / name).write_bytes(data)
    (work / "main.py").write_text(code)
    script = work / "run.mjs"
    script.write_text(RUNNER % {"pyodide": pyodide, "package": PACKAGE, "work": work})
    r = subprocess.run(["node", *node_args, str(script)], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        at = r.stderr.find("PYTHON-ERROR")
        pytest.fail(f"Pyodide run failed:\n{r.stdout[-1000:]}\n" + (r.stderr[at:][-4000:] if at >= 0 else
                                                                     r.stderr[:3000]), pytrace=False)
    out = work / "out"
    files = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}
    files["stdout"] = r.stdout.encode()
    return files
