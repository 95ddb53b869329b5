// Runs a Python script inside Pyodide under Node (V8, same engine as Chromium) with numpy loaded.
// usage: node run_node.mjs SCRIPT.py [args...]   (the script's directory is mounted at /host)
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";
// Pyodide from the built site (python3 build.py build), or $PYODIDE_DIR.
const indexURL = path.resolve(process.env.PYODIDE_DIR ||
  path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
import fs from "node:fs";

const [script, ...args] = process.argv.slice(2);
const py = await loadPyodide({indexURL});
await py.loadPackage("numpy", {messageCallback: () => {}});
const hostDir = path.resolve(path.dirname(script));
py.mountNodeFS("/host", hostDir);
py.mountNodeFS("/repo", path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", ".."));  // the checkout
const outDir = process.env.OUT_DIR;
if (outDir) { fs.mkdirSync(outDir, {recursive: true}); py.mountNodeFS("/out", path.resolve(outDir)); }
py.globals.set("ARGS", py.toPy([path.basename(script), ...args]));
await py.runPythonAsync(`
import sys; sys.argv = list(ARGS); sys.path.insert(0, "/host")
import runpy; runpy.run_path("/host/" + sys.argv[0], run_name="__main__")
`);
