// Variant: put numpy into site-packages from Python (no loadPackage JS objects), import it, then snapshot.
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";
// Pyodide from the built site (python3 build.py build), or $PYODIDE_DIR.
const indexURL = path.resolve(process.env.PYODIDE_DIR ||
  path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
import fs from "node:fs";
const res = {};
const py = await loadPyodide({indexURL, _makeSnapshot: true});
py.FS.writeFile("/home/pyodide/np.whl", fs.readFileSync(indexURL + "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"));
py.runPython(`import zipfile, site; zipfile.ZipFile("/home/pyodide/np.whl").extractall(site.getsitepackages()[0])`);
try { py.runPython("import numpy"); res.import_ok = true; } catch (e) { res.import_error = String(e).slice(-400); }
try {
  const snap = py.makeMemorySnapshot();
  res.bytes = snap.length;
  const t = performance.now();
  const r = await loadPyodide({indexURL, _loadSnapshot: snap});
  res.restore_ms = performance.now() - t;
  try { res.use = r.runPython("import numpy as np; str(np.ones(3) @ np.ones(3))"); }
  catch (e) { res.use_error = String(e).slice(-400); }
} catch (e) { res.snapshot_error = String(e).slice(0, 300); }
console.log(JSON.stringify(res, null, 1));
