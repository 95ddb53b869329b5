// A/B timing of runtime variants inside Pyodide under Node (V8, the engine of Chromium).
// usage: node benchmarks/studies/ab/ab_node.mjs VARIANT_DIR... [-- args for ab.py]
//   each VARIANT_DIR is a copy of py_pkg/wasmvision (any folder name); "current" means py_pkg/wasmvision.
// Pyodide comes from dist/pyodide (python3 build.py build), or $PYODIDE_DIR.
import path from "node:path";
import fs from "node:fs";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..", "..");
const indexURL = path.resolve(process.env.PYODIDE_DIR || path.join(root, "dist", "pyodide")) + "/";
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);

const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
const variants = sep < 0 ? argv : argv.slice(0, sep);
const rest = sep < 0 ? [] : argv.slice(sep + 1);
const py = await loadPyodide({indexURL});
await py.loadPackage("numpy", {messageCallback: () => {}});
py.mountNodeFS("/repo", root);
const names = [];
variants.forEach((v, i) => {
  const dir = v === "current" ? path.join(root, "py_pkg", "wasmvision") : path.resolve(v);
  const name = `wv_${i}`;
  py.FS.mkdirTree(`/ab/${name}`);
  py.mountNodeFS(`/ab/${name}`, dir);
  names.push([name, v]);
});
py.globals.set("VARIANTS", py.toPy(names));
py.globals.set("ARGS", py.toPy(rest));
await py.runPythonAsync(`
import sys; sys.path.insert(0, "/ab"); sys.path.insert(0, "/repo/benchmarks/studies/ab")
import ab; ab.main(list(VARIANTS), list(ARGS))
`);
