// Pyodide 0.27.7 memory snapshot under Node: make one (bare interpreter, or after importing numpy), restore it,
// and time a normal boot against a restored boot. usage: node node_snapshot.mjs [bare|numpy] [outdir]
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";
// Pyodide from the built site (python3 build.py build), or $PYODIDE_DIR.
const indexURL = path.resolve(process.env.PYODIDE_DIR ||
  path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
import fs from "node:fs";
const mode = process.argv[2] || "bare";
const outDir = process.argv[3] || "bench-results/snapshot";
const now = () => performance.now();
const res = {mode};

let t = now();
const py = await loadPyodide({indexURL, _makeSnapshot: true});
res.boot_make_ms = now() - t;
if (mode === "numpy") {
  t = now();
  await py.loadPackage("numpy", {messageCallback: () => {}});
  py.runPython("import numpy");
  res.numpy_ms = now() - t;
}
t = now();
const snap = py.makeMemorySnapshot();
res.make_snapshot_ms = now() - t;
res.snapshot_bytes = snap.length;
fs.writeFileSync(`${outDir}/snapshot-${mode}.bin`, snap);

t = now();
const plain = await loadPyodide({indexURL});
res.boot_plain_ms = now() - t;
t = now();
await plain.loadPackage("numpy", {messageCallback: () => {}});
plain.runPython("import numpy");
res.plain_numpy_ms = now() - t;

t = now();
let restored;
try {
  restored = await loadPyodide({indexURL, _loadSnapshot: fs.readFileSync(`${outDir}/snapshot-${mode}.bin`)});
  res.boot_restore_ms = now() - t;
  res.after_restore = restored.runPython("import sys; str(sorted(m for m in sys.modules if m.startswith('numpy'))[:3])");
  t = now();
  try {
    if (mode === "numpy") {
      res.numpy_use = restored.runPython("import numpy as np; str(np.arange(6, dtype=np.float32).reshape(2,3) @ np.ones((3,2), np.float32))");
    } else {
      await restored.loadPackage("numpy", {messageCallback: () => {}});
      res.numpy_use = restored.runPython("import numpy as np; str(np.arange(6, dtype=np.float32).reshape(2,3) @ np.ones((3,2), np.float32))");
    }
    res.restore_numpy_ms = now() - t;
  } catch (e) { res.numpy_error = String(e).slice(0, 600); }
} catch (e) { res.restore_error = String(e).slice(0, 600); }
console.log(JSON.stringify(res, null, 1));
