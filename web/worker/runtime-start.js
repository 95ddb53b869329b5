// The runtime's two slow starts, begun as soon as the manifest is known rather than one after the other inside
// loadPyodide: the Wasm compile of pyodide.asm.wasm (streaming as its bytes arrive, on the browser's compile
// threads; the module is used only once the bytes match the manifest) and the check and evaluation of
// pyodide.asm.js. loadPyodide then finds the script already defined, and its instantiateStreaming gets the compiled
// module (pyodide-0.27.7.js).
// Measured on a cold visit: the runtime's compile started ~580 ms after the worker asked for the runtime, behind the
// script's re-fetch, the snapshot read and the script's evaluation. The stdlib and the lock, which loadPyodide asks for only
// once the script has run, are fetched then too and its requests answered from memory.

import { UserError } from "./errors.js";
import { answerRequests, BASE, fetchStreamed } from "./fetch.js";
import { STDLIB } from "./manifest.js";
import { during } from "./phases.js";
import { runtimeScriptEvaluated, useCompiledRuntime } from "./pyodide-0.27.7.js";

export const RUNTIME_WASM = "pyodide/pyodide.asm.wasm";
// Asked for by loadPyodide once the script has run, even to restore a snapshot (the stdlib: the one given).
const LOCK = "pyodide/pyodide-lock.json";

let compiled = null; // Promise<WebAssembly.Module>: instantiated by each boot of this worker
let script = null; // Promise: pyodide.asm.js checked and evaluated
let data = null; // Promise<(ArrayBuffer | null)[]>: RUNTIME_DATA, checked (null: Pyodide fetches it itself)

// Code loaded by importScripts or import() cannot carry integrity: fetched first and checked against the manifest
// (fetch.js), so a changed file ends the boot before it runs; the load then reads the checked copy from the cache. The
// built site's worker is a classic script (build.py bundle_worker), and importScripts lets V8 reuse the code it
// compiled for this script on an earlier visit; a module worker (the unbundled sources) imports it.
async function verifiedRuntimeScript() {
  if (runtimeScriptEvaluated()) return; // already evaluated (a restart)
  const url = new URL("pyodide/pyodide.asm.js", BASE);
  const response = await fetch(url);
  if (!response.ok) throw new UserError(`The Python runtime file pyodide/pyodide.asm.js could not be downloaded ` +
    `(HTTP ${response.status}). The site is incomplete.`, "SetupError");
  await response.arrayBuffer();
  if (typeof importScripts === "function") {
    try {
      importScripts(url.href);
      return;
    } catch (err) {
      if (!(err instanceof TypeError)) throw err; // a module worker has no importScripts
    }
  }
  await import(url.href);
}

// The runtime compiled as its bytes arrive, and handed over only once they match the manifest (fetch.js
// fetchStreamed): a mismatch is reported as such even when the changed bytes also fail to compile.
async function compileChecked() {
  const { response, checked } = await fetchStreamed(new URL(RUNTIME_WASM, BASE));
  const [module, check] = await Promise.allSettled([WebAssembly.compileStreaming(response), checked]);
  if (check.status === "rejected") throw check.reason;
  if (module.status === "rejected") throw module.reason;
  return module.value;
}

// `stdlib`: the stdlib zip this boot will most likely use (boot.js bootStdlib).
export function startRuntime(stdlib = STDLIB) {
  if (!compiled && typeof WebAssembly.compileStreaming === "function") {
    compiled = during("runtime_compile", compileChecked, { background: true });
    compiled.catch(() => {}); // reported by whoever takes it (the Pyodide module names the file)
    useCompiledRuntime(RUNTIME_WASM, compiled);
    // loadPyodide requests the Wasm again for its instantiateStreaming, which is answered with this module:
    // an empty body instead of a second download.
    answerRequests(RUNTIME_WASM, () => new Response(new Uint8Array(0), {
      headers: { "Content-Type": "application/wasm" } }));
  }
  if (!script) script = during("runtime_script", verifiedRuntimeScript, { background: true });
  script.catch(() => {}); // awaited by runtimeScript()
  if (!data) {
    // On a repeat visit Pyodide's requests for these waited 60-350 ms (behind others in the service worker, then
    // for this thread, busy restoring; a trace). Fetched now (checked against the manifest by fetch.js), they
    // are answered from memory, at every boot of this worker.
    data = Promise.all([stdlib, LOCK].map((path) => {
      const url = new URL(path, BASE);
      const bytes = fetch(url).then((r) => (r.ok ? r.arrayBuffer() : null)).catch(() => null);
      answerRequests(path, () => bytes.then((b) => (b ? new Response(b) : unanswered(path, url))));
      return bytes;
    }));
  }
}

// Pyodide's own request once ours failed: to the network, with the usual checks and error reports (fetch.js).
function unanswered(path, url) {
  answerRequests(path, null);
  return fetch(url);
}

export function runtimeScript() {
  startRuntime();
  return script;
}

// Null where the browser has no compileStreaming: Pyodide then compiles the runtime itself.
export function compiledRuntime() {
  return compiled;
}
