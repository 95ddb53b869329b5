// Build time only (buildtools/snapshot.py drives it in headless Chromium): the memory snapshot shipped to first
// visitors, taken through this worker's own boot so that the side modules' order and the JS references are the ones
// a visitor's restore meets. Returns the snapshot and the fresh heap it is diffed against; the build makes the delta.

import { runtime } from "./boot.js";
import { plansKernels } from "./dylibs.js";
import { dylibHandles, freshHeap, snapshotParts, takeMemorySnapshot, unplannedLibs, zeroFreeMemory }
  from "./pyodide-0.27.7.js";
import { BEFORE_SHIPPING } from "./shipped.js";

const IMPORTED = `import sys, json
json.dumps(sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""}))`;

export async function makeShippedSnapshot() {
  const py = runtime.pyodide;
  const made = runtime.made;
  if (!py || !made) throw new Error("this worker did not boot normally with its side modules preloaded");
  if (plansKernels(made.libs)) {
    py.runPython("from wasmvision.simd import default_library; default_library()");
  }
  const unplanned = unplannedLibs(py, made.libs);
  if (unplanned.length) throw new Error(`side modules loaded after start-up: ${unplanned.join(", ")}`);
  const handles = dylibHandles(py);
  py.runPython(BEFORE_SHIPPING);
  const zeroed = zeroFreeMemory(py);
  const snapshot = takeMemorySnapshot(py);
  // The files whose modules the snapshot holds (BEFORE_SHIPPING's imports among them), read once it is taken (its
  // garbage stays out of the heap): the build leaves them out of what a restore downloads.
  const imported = JSON.parse(py.runPython(IMPORTED));
  const parts = snapshotParts(snapshot);
  const header = parts.header.byteLength;
  const heap = parts.heap.byteLength;
  // Twice: a fresh heap that is not the same every time cannot be diffed against.
  const fresh = await freshHeap(made.options, made.plan, snapshot.byteLength, heap);
  const again = await freshHeap(made.options, made.plan, snapshot.byteLength, heap);
  let differ = 0;
  for (let i = 0; i < fresh.length; i++) differ += fresh[i] !== again[i];
  return { key: made.key, libs: made.libs, handles, imported, header, heap, total: snapshot.byteLength, zeroed, differ,
    snapshot, fresh };
}
