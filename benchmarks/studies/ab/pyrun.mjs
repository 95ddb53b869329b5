// Run one Python file inside Pyodide under Node with numpy loaded: node benchmarks/studies/ab/pyrun.mjs FILE.py
// (the repository is mounted at /repo). Pyodide from dist/pyodide, or $PYODIDE_DIR.
import path from "node:path";
import fs from "node:fs";
import {fileURLToPath, pathToFileURL} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const indexURL = path.resolve(process.env.PYODIDE_DIR || path.join(root, "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const py = await loadPyodide({indexURL});
await py.loadPackage("numpy", {messageCallback: () => {}});
py.mountNodeFS("/repo", root);
await py.runPythonAsync(fs.readFileSync(process.argv[2], "utf8"));
