// Recovery from a broken interpreter, without a page reload. A request can leave Pyodide unusable for good: a Python
// MemoryError grows the Wasm heap to its maximum (it never shrinks), a heap past 2 GiB makes Pyodide's JS glue fail
// with "RangeError: offset is out of bounds" on every later call, and a Pyodide fatal error disables its whole API.
// Then this worker answers the failing request with a message and asks the page's module (wasmvision.mjs) to replace
// it: a fresh worker boots (from the memory snapshot when there is one) and opens the models in use again. Why not a
// new interpreter in this worker: one was tried, and each dropped interpreter kept its heap (+2.7 GB of renderer
// memory per restart, measured); terminating the worker is what gives the memory back.

import { runtime } from "./boot.js";
import { UserError } from "./errors.js";
import { heapBytes } from "./pyodide-0.27.7.js";

// A heap this large is left over from a runaway allocation: start afresh before the 2 GiB signed-offset trouble.
const HEAP_LIMIT_BYTES = 1.5 * 2 ** 30;
const BROKEN = /offset is out of bounds|memory access out of bounds|out of memory|fatally failed|fatal error|Aborted\(|unreachable/i;

function firstLine(err) {
  return `${err?.name || "Error"}: ${String(err?.message ?? err).split("\n")[0].slice(0, 120)}`;
}

// Why the interpreter cannot be trusted after a request (`err`: its failure, or null), or null when it is fine.
export function brokenBy(err) {
  if (!runtime.pyodide) return null;
  if (err) {
    if (err.pythonKind === "MemoryError") return "it ran out of memory";
    if (!(err instanceof UserError) && (err instanceof RangeError || err instanceof WebAssembly.RuntimeError ||
        BROKEN.test(String(err.message)))) {
      return firstLine(err);
    }
  }
  const heap = heapBytes(runtime.pyodide);
  if (heap > HEAP_LIMIT_BYTES) return `its memory grew to ${(heap / 2 ** 30).toFixed(1)} GiB`;
  try {
    runtime.pyodide.runPython("0"); // microseconds; after a fatal error Pyodide's API refuses even this
    return null;
  } catch (probe) {
    return firstLine(probe);
  }
}

export function brokenError(err, reason) {
  const what = err?.pythonKind === "MemoryError" || /memory/.test(reason) ? "ran out of memory" : `failed (${reason})`;
  return new UserError(`The classifier ${what} and is being restarted with its model: try again. If it happens ` +
    "again, use a smaller photo or model.", "ResourceError");
}
