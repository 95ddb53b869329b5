// Can an instance that made a snapshot keep going (load numpy, run it)? usage: node node_snapshot_continue.mjs
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";
// Pyodide from the built site (python3 build.py build), or $PYODIDE_DIR.
const indexURL = path.resolve(process.env.PYODIDE_DIR ||
  path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
let t = performance.now();
const py = await loadPyodide({indexURL, _makeSnapshot: true});
const boot = performance.now() - t;
const snap = py.makeMemorySnapshot();
t = performance.now();
await py.loadPackage("numpy", {messageCallback: () => {}});
const r = py.runPython("import numpy as np; float(np.ones(3, np.float32) @ np.ones(3, np.float32))");
console.log(JSON.stringify({boot_with_makeSnapshot_ms: boot, snapshot_bytes: snap.length, numpy_after_snapshot_ms: performance.now() - t, result: r}));
