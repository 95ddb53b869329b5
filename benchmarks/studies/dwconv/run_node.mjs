// Runs dw_study.py inside Pyodide under Node: node run_node.mjs LIBDIR [args]  (add V8's
// --experimental-wasm-relaxed-simd before run_node.mjs for the relaxed build). Pyodide from dist/pyodide.
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..", "..");
const indexURL = path.resolve(process.env.PYODIDE_DIR || path.join(root, "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const [libs, ...args] = process.argv.slice(2);
const py = await loadPyodide({indexURL});
await py.loadPackage("numpy", {messageCallback: () => {}});
py.mountNodeFS("/host", here);
py.mountNodeFS("/pkg", path.join(root, "py_pkg"));
py.mountNodeFS("/libs", path.resolve(libs));
py.globals.set("ARGS", py.toPy(["dw_study.py", ...args]));
await py.runPythonAsync(`
import sys; sys.argv = list(ARGS); sys.path.insert(0, "/host"); sys.path.insert(0, "/pkg")
import runpy; runpy.run_path("/host/dw_study.py", run_name="__main__")
`);
