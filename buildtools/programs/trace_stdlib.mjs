// Run by Node: Pyodide with the site's stdlib and wheels goes the way of a first result (start, import, load the
// default model, classify and embed) and prints the stdlib members it imported, as JSON.
// node trace_stdlib.mjs INDEX_URL/ STDLIB.zip MODEL.wvb WHEEL...
import fs from "node:fs";
import {pathToFileURL} from "node:url";
const [indexURL, stdLibURL, model, ...wheels] = process.argv.slice(2);
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const py = await loadPyodide({indexURL, stdLibURL});
for (const w of wheels) py.unpackArchive(new Uint8Array(fs.readFileSync(w)), "wheel",
  {extractDir: "/lib/python3.12/site-packages"});
py.FS.writeFile("/tmp/model.wvb", new Uint8Array(fs.readFileSync(model)));
process.stdout.write(py.runPython(`
import json, sys
import numpy as np
import wasmvision.browser as b
def ok(reply):
    reply = json.loads(reply)
    if not reply["ok"]:
        raise RuntimeError(reply["error"])
with open("/tmp/model.wvb", "rb") as f:
    ok(b.load_model("m", f.read()))
rgba = (np.arange(96 * 64 * 4) % 251).astype(np.uint8).tobytes()
ok(b.classify_rgba("m", rgba, 96, 64, 5))
ok(b.classify_embed_rgba("m", rgba, 96, 64, 5))
zip_ = sys.path[0] if sys.path[0].endswith(".zip") else next(p for p in sys.path if p.endswith(".zip"))
origins = (getattr(getattr(m, "__spec__", None), "origin", None) or "" for m in list(sys.modules.values()))
json.dumps(sorted({o[len(zip_) + 1:] for o in origins if o.startswith(zip_ + "/")}))
`));
