// Recovery from a broken interpreter, without a page reload. A request can leave Pyodide unusable for good: a Python
// MemoryError grows the Wasm heap to its maximum (it never shrinks), a heap past 2 GiB makes Pyodide's JS glue fail
// with "RangeError: offset is out of bounds" on every later call, and a Pyodide fatal error disables its whole API.
// Then the worker boots a fresh interpreter (from the memory snapshot when there is one: about a second) and loads
// the request's model again, so the next request works; the failed request gets a message saying so.

import { restartPython, runtime } from "./boot.js";
import { UserError } from "./errors.js";
import { ensureLoaded, forgetLoaded } from "./models.js";
import { setStage } from "./progress.js";

// A heap this large is left over from a runaway allocation: restart before the 2 GiB signed-offset trouble starts.
const HEAP_LIMIT_BYTES = 1.5 * 2 ** 30;
const BROKEN = /offset is out of bounds|memory access out of bounds|out of memory|fatally failed|fatal error|Aborted\(|unreachable/i;

function heapBytes() {
  try {
    return runtime.pyodide?._module?.HEAPU8?.byteLength ?? 0; // private in 0.27; 0 (no restart) if it moves
  } catch {
    return 0;
  }
}

// Why the interpreter cannot be trusted after a request (`err`: its failure, or null), or null when it is fine.
export function brokenBy(err) {
  if (!runtime.pyodide) return null;
  if (err) {
    if (err.pythonKind === "MemoryError") return "it ran out of memory";
    if (!(err instanceof UserError) && (err instanceof RangeError || err instanceof WebAssembly.RuntimeError ||
        BROKEN.test(String(err.message)))) {
      return `${err.name || "Error"}: ${String(err.message).split("\n")[0].slice(0, 120)}`;
    }
  }
  const heap = heapBytes();
  if (heap > HEAP_LIMIT_BYTES) return `its memory grew to ${(heap / 2 ** 30).toFixed(1)} GiB`;
  try {
    runtime.pyodide.runPython("0"); // microseconds; after a fatal error Pyodide's API refuses even this
    return null;
  } catch (probe) {
    return `${probe.name || "Error"}: ${String(probe.message).split("\n")[0].slice(0, 120)}`;
  }
}

let restarts = 0;

// Boots a fresh interpreter and loads `modelKey` again. Returns the model's name, or "" if it could not be loaded
// (the next request that needs it says why).
export async function recover(reason, modelKey, engine = "auto") {
  restarts += 1;
  runtime.timings.restarts = restarts;
  console.warn(`wasmvision: restarting the Python runtime (${reason})`);
  setStage("runtime", "Restarting the Python runtime");
  try {
    await restartPython();
  } catch (err) {
    throw new UserError(`The Python runtime failed (${reason}) and could not be restarted: ${err.message} ` +
      "Reload the page.", "SetupError");
  }
  forgetLoaded();
  if (!modelKey) {
    setStage("ready", "Ready");
    return "";
  }
  try {
    return (await ensureLoaded(modelKey, engine)).name;
  } catch (err) {
    console.warn(`wasmvision: reloading ${modelKey} after the restart failed:`, err.message);
    setStage("ready", "Ready");
    return "";
  }
}

export function recoveredError(err, reason, modelName) {
  const what = err?.pythonKind === "MemoryError" || /memory/.test(reason) ? "ran out of memory" : `failed (${reason})`;
  return new UserError(`The classifier ${what} and was restarted` +
    `${modelName ? ` with the model ${modelName} loaded again` : ""}: try again. If it happens again, use a ` +
    "smaller photo or model.", "ResourceError");
}
