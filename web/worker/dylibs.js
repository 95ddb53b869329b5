// numpy's and wasmvision's Wasm side modules loaded while the interpreter is created, so that a memory snapshot
// can carry the imported packages (docs/perf.md §3). A side module's data lives in the heap but its code and its
// function-table slots do not: a restored heap works only if the same modules sit at the same memory and table
// bases. Emscripten gives those deterministically to `dynamicLibraries` (bump-allocated from __heap_base before
// malloc exists), so the run that makes the snapshot and the run that restores it both list the same modules in the
// same order; Python's later dlopen of the same path finds the loaded module by name.
//
// The bytes come from the integrity-checked wheels (no extra download); the Pyodide module hands them to Emscripten
// from memory.

import { sha256Hex } from "./fetch.js";
import { preloadSideModules, SITE_PACKAGES } from "./pyodide-0.27.7.js";
import { runtimeScript } from "./runtime-start.js";

// Exactly the extension modules `import numpy, wasmvision.browser` and the kernel library load, in load order:
// any other side module loaded before the snapshot (e.g. numpy.random's) makes the restored interpreter trap.
const NUMPY_LIBS = [
  "numpy/_core/_multiarray_umath.cpython-312-wasm32-emscripten.so",
  "numpy/_core/_multiarray_tests.cpython-312-wasm32-emscripten.so",
  "numpy/linalg/_umath_linalg.cpython-312-wasm32-emscripten.so",
];
// The kernel library's builds, best first (wasmvision.simd.BUILDS): relaxed SIMD where this engine validates it,
// else plain SIMD128. Each has its sha256 record beside it.
export const SIMD_LIBS = ["wasmvision/simd/libwvsimd_relaxed.so", "wasmvision/simd/libwvsimd.so"];
const record = (lib) => lib.replace(/\.so$/, ".json");

// Whether a preload list (planFrom's libs) holds a kernel library.
export function plansKernels(libs) {
  return SIMD_LIBS.some((lib) => libs.includes(`${SITE_PACKAGES}/${lib}`));
}

// One member's bytes inflated into a buffer of its recorded `size`, written to the decompressor directly: through a
// Blob and a Response each of the zips' ~90 small members cost more than its inflating.
async function inflateRaw(bytes, size) {
  const inflater = new DecompressionStream("deflate-raw");
  const writer = inflater.writable.getWriter();
  writer.write(bytes).catch(() => {}); // a failure rejects the reads below
  writer.close().catch(() => {});
  const reader = inflater.readable.getReader();
  const out = new Uint8Array(size);
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.byteLength > size) {
      reader.cancel().catch(() => {});
      return new Uint8Array(at + value.byteLength); // longer than recorded: the caller names the mismatch
    }
    out.set(value, at);
    at += value.byteLength;
  }
  return out.subarray(0, at);
}

// The members of a zip archive whose names are in `wanted` (a Set), or every member when it is null:
// Map name -> bytes. Directory entries are skipped.
export async function zipMembers(zip, wanted = null) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let eocd = -1;
  for (let i = zip.byteLength - 22; i >= Math.max(0, zip.byteLength - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error("not a zip archive");
  const count = view.getUint16(eocd + 10, true);
  const names = new TextDecoder();
  const out = new Map();
  const jobs = [];
  for (let n = 0, p = view.getUint32(eocd + 16, true); n < count; n++) {
    if (view.getUint32(p, true) !== 0x02014b50) throw new Error("damaged zip directory");
    const method = view.getUint16(p + 10, true);
    const packed = view.getUint32(p + 20, true);
    const size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const local = view.getUint32(p + 42, true);
    const name = names.decode(zip.subarray(p + 46, p + 46 + nameLength));
    p += 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
    if (name.endsWith("/") || (wanted && !wanted.has(name))) continue;
    if (view.getUint32(local, true) !== 0x04034b50) throw new Error(`damaged zip entry ${name}`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = zip.subarray(start, start + packed);
    if (method !== 0 && method !== 8) throw new Error(`zip entry ${name}: compression method ${method}`);
    jobs.push((method === 0 ? Promise.resolve(raw.slice()) : inflateRaw(raw, size)).then((data) => {
      if (data.byteLength !== size) throw new Error(`zip entry ${name}: ${data.byteLength} bytes, not ${size}`);
      out.set(name, data);
    }));
  }
  await Promise.all(jobs);
  return out;
}

// What to load while the interpreter is created: { libs: [site-packages paths, in order], files: Map path ->
// bytes, simd: null or why the kernel library is left out }. The kernel library joins only when this engine can
// compile it (Wasm SIMD) and it matches the hash its wheel records: exactly when Python would load it; otherwise
// Python tries it later as it always did (and falls back to numpy with its own notice).
export async function planPreload(numpyWheel, wasmvisionWheel) {
  const [numpy, ours] = await Promise.all([
    zipMembers(numpyWheel, new Set(NUMPY_LIBS)),
    zipMembers(wasmvisionWheel, new Set(SIMD_LIBS.flatMap((lib) => [lib, record(lib)]))),
  ]);
  return planFrom(numpy, ours);
}

// Every file of both wheels, for a restored interpreter (its file system starts empty), and the plan from them:
// { plan, files: Map site-packages path -> bytes }. From the wheels checked against the manifest, never from local
// storage, which any script of this origin can write.
export async function unpackForRestore(numpyWheel, wasmvisionWheel) {
  const [numpy, ours] = await Promise.all([zipMembers(numpyWheel), zipMembers(wasmvisionWheel)]);
  const files = new Map();
  for (const members of [numpy, ours]) {
    for (const [name, bytes] of members) files.set(`${SITE_PACKAGES}/${name}`, bytes);
  }
  return { plan: await planFrom(numpy, ours), files };
}

// The same from one zip holding both packages' files (a shipped snapshot's site-packages zip).
export async function siteFromZip(zip) {
  const members = await zipMembers(zip);
  const files = new Map();
  for (const [name, bytes] of members) files.set(`${SITE_PACKAGES}/${name}`, bytes);
  return { plan: await planFrom(members, members), files };
}

async function planFrom(numpy, ours) {
  const missing = NUMPY_LIBS.filter((name) => !numpy.has(name));
  if (missing.length) throw new Error(`the numpy wheel lacks ${missing.join(", ")}`);
  const files = new Map(NUMPY_LIBS.map((name) => [`${SITE_PACKAGES}/${name}`, numpy.get(name)]));
  let simd = "not in the wheel";
  for (const name of SIMD_LIBS) {
    const why = await simdProblem(ours, name);
    if (!why) {
      files.set(`${SITE_PACKAGES}/${name}`, ours.get(name));
      simd = null;
      break;
    }
    if (ours.has(name)) simd = why; // the last build present names the reason
  }
  return { libs: [...files.keys()], files, simd };
}

// Why the build `name` of the kernel library cannot be preloaded here, or null.
async function simdProblem(ours, name) {
  const lib = ours.get(name);
  if (!lib || !ours.has(record(name))) return "not in the wheel";
  if (!WebAssembly.validate(lib)) return "this engine cannot compile it (no Wasm SIMD?)";
  let recorded = null;
  try {
    recorded = JSON.parse(new TextDecoder().decode(ours.get(record(name)))).sha256;
  } catch {
    // an unreadable record: Python names the problem when it tries the library
  }
  return recorded !== await sha256Hex(lib) ? "does not match its recorded sha256" : null;
}

// The next loadPyodide loads the planned side modules (the Pyodide module wraps its module factory, which exists
// once pyodide.asm.js has run). `expect`: the list a snapshot being restored was made with; `delta`: a shipped
// snapshot's changed blocks (shipped.js).
export async function preloadNextBoot(plan, expect = null, delta = null) {
  await runtimeScript(); // checked against the manifest before it runs
  preloadSideModules(plan, expect, delta);
}
