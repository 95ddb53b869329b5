// The Web Worker hosting Pyodide: downloads the runtime and models, decodes images, calls wasmvision.browser.
// Everything heavy happens here so the page never freezes. Messages in: {id, type, ...}; out: {id, ok, value|error}
// plus unsolicited {type: "progress" | "ready" | "models" | "fatal"} updates.

import { loadPyodide, version as pyodideVersion } from "./pyodide/pyodide.mjs";

const BASE = new URL("./", self.location.href);
const ORIGIN = self.location.origin;
const DEFAULT_MAX_PIXELS = 50e6;
const PROGRESS_INTERVAL_MS = 60;

// ------------------------------------------------------------------------------------------ errors

class UserError extends Error {
  constructor(message, kind = "Error") {
    super(message);
    this.kind = kind;
  }
}

function errorPayload(err) {
  if (err instanceof UserError) return { kind: err.kind, message: err.message };
  const message = (err && err.message) || String(err);
  return { kind: (err && err.name) || "Error", message, stack: err && err.stack };
}

// ------------------------------------------------------------------------------------------ fetch accounting
// Every same-origin response is counted as its body streams in (a clone is read, so the original stays a genuine
// network response: WebAssembly.instantiateStreaming keeps streaming compilation and the browser's code cache).
// Requests to any other origin are refused: the page promises that nothing leaves the device.

const received = new Map(); // site-relative path -> bytes received so far
const nativeFetch = self.fetch.bind(self);

function sitePath(url) {
  const href = url.href;
  return href.startsWith(BASE.href) ? decodeURIComponent(href.slice(BASE.href.length)) : url.pathname;
}

self.fetch = async function countingFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input), self.location.href);
  if (url.protocol === "blob:" || url.protocol === "data:") return nativeFetch(input, init);
  if (url.origin !== ORIGIN) {
    throw new UserError(`Blocked a request to ${url.origin}: wasmvision only loads files from its own site.`,
      "PrivacyError");
  }
  let response;
  try {
    response = await nativeFetch(input, init);
  } catch (err) {
    noteRuntimeFailure(url, `could not be downloaded (${err.message})`);
    throw err;
  }
  if (!response.ok) noteRuntimeFailure(url, `could not be downloaded (HTTP ${response.status})`);
  if (response.ok && response.body) {
    const path = sitePath(url);
    received.set(path, 0);
    countBody(path, response.clone().body);
  }
  return response;
};

// Pyodide does not always reject when one of its own files fails to download (Emscripten aborts, and the
// loader's promise never settles), so a failed runtime download ends the boot from here, with the file named.
let failRuntime = () => {};
const runtimeFailure = new Promise((_, reject) => {
  failRuntime = reject;
});
runtimeFailure.catch(() => {});

function noteRuntimeFailure(url, what) {
  const path = sitePath(url);
  if (path.startsWith("pyodide/")) {
    failRuntime(new UserError(`The Python runtime file ${path} ${what}. The site is incomplete.`, "SetupError"));
  }
}

function orRuntimeFailure(promise) {
  return Promise.race([promise, runtimeFailure]);
}

async function countBody(path, body) {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received.set(path, (received.get(path) || 0) + value.byteLength);
      scheduleProgress();
    }
  } catch {
    // The consumer failed or cancelled; it reports its own error.
  }
  scheduleProgress();
}

// ------------------------------------------------------------------------------------------ progress

const progress = { stage: "start", label: "Starting…", files: [], indeterminate: true };
let progressTimer = null;

function setStage(stage, label, files = [], indeterminate = false) {
  Object.assign(progress, { stage, label, files, indeterminate });
  postProgress();
}

function scheduleProgress() {
  if (progressTimer === null) {
    progressTimer = setTimeout(() => {
      progressTimer = null;
      postProgress();
    }, PROGRESS_INTERVAL_MS);
  }
}

function mb(bytes) {
  return (bytes / 1e6).toFixed(1);
}

function postProgress() {
  let loaded = 0;
  let total = 0;
  for (const path of progress.files) {
    const expected = manifest.files.get(path)?.bytes ?? 0;
    const got = received.get(path) || 0;
    total += Math.max(expected, got);
    loaded += got;
  }
  let label = progress.label;
  if (total > 0 && !progress.indeterminate) label += ` ${mb(loaded)} / ${mb(total)} MB`;
  const allTotal = manifest.bootBytes;
  let allLoaded = 0;
  for (const path of manifest.bootFiles) allLoaded += received.get(path) || 0;
  self.postMessage({
    type: "progress", stage: progress.stage, label, loaded, total,
    overall: allTotal > 0 ? Math.min(1, allLoaded / allTotal) : null,
    bytesReceived: [...received.values()].reduce((a, b) => a + b, 0),
  });
}

// ------------------------------------------------------------------------------------------ manifest

const manifest = { files: new Map(), models: [], bootFiles: [], bootBytes: 0, raw: null };

function normalizeFiles(files) {
  const list = Array.isArray(files)
    ? files
    : Object.entries(files || {}).map(([path, v]) => (typeof v === "object" ? { path, ...v } : { path, bytes: v }));
  const out = new Map();
  for (const f of list) {
    const path = String(f.path ?? f.name ?? f.file ?? "").replace(/^\.?\//, "");
    if (path) out.set(path, { bytes: Number(f.bytes ?? f.size ?? 0), sha256: f.sha256 });
  }
  return out;
}

async function loadManifest() {
  let raw;
  try {
    const response = await fetch(new URL("manifest.json", BASE), { cache: "no-cache" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    raw = await response.json();
  } catch (err) {
    // Without a manifest the page still works with the default model; only byte totals are unknown.
    console.warn("wasmvision: manifest.json unavailable, using defaults:", err.message);
    raw = { files: [], models: [{ name: "mobilenet_v2", file: "models/mobilenet_v2.wvb" }] };
  }
  manifest.raw = raw;
  manifest.files = normalizeFiles(raw.files);
  manifest.models = (raw.models || []).map((m, i) => {
    const file = String(m.file ?? m.path ?? "").replace(/^\.?\//, "");
    const key = m.key ?? m.id ?? (file.split("/").pop() || m.name || `model${i}`).replace(/\.(wvb|onnx)$/i, "");
    return {
      key, name: m.name ?? key, version: m.version ?? "", file, builtin: true,
      bytes: Number(m.bytes ?? manifest.files.get(file)?.bytes ?? 0),
      storage: m.storage ?? m.weights ?? m.dtype ?? "", default: Boolean(m.default),
      description: m.description ?? "",
    };
  });
}

function runtimeFiles() {
  return ["pyodide/pyodide.asm.wasm", "pyodide/python_stdlib.zip", "pyodide/pyodide-lock.json",
    "pyodide/pyodide.mjs", "pyodide/pyodide.asm.js"];
}

function wheelFiles(prefixes) {
  const out = [];
  for (const path of manifest.files.keys()) {
    const base = path.split("/").pop();
    if (path.startsWith("pyodide/") && base.endsWith(".whl") && prefixes.some((p) => base.startsWith(p + "-"))) {
      out.push(path);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------ Python

let pyodide = null;
let browser = null; // the wasmvision.browser module (a PyProxy)
let maxPixels = DEFAULT_MAX_PIXELS;
const timings = {};

function callPython(fn, ...args) {
  const text = browser[fn](...args);
  const reply = JSON.parse(text);
  if (!reply.ok) {
    if (reply.error.traceback) console.error(`wasmvision.browser.${fn} failed:\n${reply.error.traceback}`);
    throw new UserError(reply.error.message, reply.error.kind);
  }
  return reply.value;
}

// ------------------------------------------------------------------------------------------ memory snapshot
// A repeat visit boots the interpreter from a copy of its memory taken right after the first visit's boot (Pyodide
// 0.27.7's underscore options: unsupported API, so every step falls back to a normal boot). It saves ~0.9 s of
// interpreter start-up (docs/perf.md §3). numpy cannot be in it (its Wasm side modules are not part of the heap):
// packages still load after the restore. The key names the exact runtime build, so a new site version never
// restores an old snapshot.

const SNAPSHOT_DB = "wasmvision-snapshot";
const SNAPSHOT_STORE = "snapshots";
const SNAPSHOT_STORE_DELAY_MS = 2000; // after boot: keep the ~20 MB write off the first result's path
const SNAPSHOT_RESTORE_TIMEOUT_MS = 15000; // a restore takes ~0.3-0.7 s; a wedged one must not keep the page waiting
const SNAPSHOT_MAGIC = 0x706e7300; // first word of a Pyodide 0.27 snapshot (API.makeSnapshot)

function plausibleSnapshot(value) {
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < (1 << 20)) return null;
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  return magic === SNAPSHOT_MAGIC ? bytes : null;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function snapshotKey() {
  const sha = (path) => manifest.files.get(path)?.sha256 ?? "";
  const wasm = sha("pyodide/pyodide.asm.wasm");
  const lock = sha("pyodide/pyodide-lock.json");
  // Without hashes in the manifest we cannot tell two builds apart: no snapshot then.
  return wasm && lock ? `pyodide-${pyodideVersion}|${wasm}|${lock}` : null;
}

function snapshotDb() {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === "undefined") return reject(new Error("no IndexedDB"));
    const request = indexedDB.open(SNAPSHOT_DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(SNAPSHOT_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("IndexedDB blocked"));
  });
}

async function snapshotTransaction(mode, fn) {
  const db = await snapshotDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(SNAPSHOT_STORE, mode);
      const request = fn(tx.objectStore(SNAPSHOT_STORE));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("IndexedDB transaction aborted"));
    });
  } finally {
    db.close();
  }
}

async function readSnapshot(key) {
  try {
    const value = await snapshotTransaction("readonly", (store) => store.get(key));
    if (value === undefined) return null;
    const bytes = plausibleSnapshot(value);
    if (!bytes) {
      console.warn("wasmvision: the stored memory snapshot is damaged; discarding it");
      await forgetSnapshot();
    }
    return bytes;
  } catch (err) {
    console.warn("wasmvision: no memory snapshot:", err.message);
    return null;
  }
}

async function writeSnapshot(key, bytes) {
  try {
    // One snapshot per origin: the new build's replaces any older one.
    await snapshotTransaction("readwrite", (store) => {
      store.clear();
      return store.put(bytes, key);
    });
    timings.snapshot_bytes = bytes.byteLength;
  } catch (err) {
    console.warn("wasmvision: could not store the memory snapshot:", err.message);
  }
}

async function forgetSnapshot() {
  try {
    await snapshotTransaction("readwrite", (store) => store.clear());
  } catch {
    // Nothing stored, nothing to forget.
  }
}

function bootOptions(extra = {}) {
  return {
    indexURL: new URL("./pyodide/", BASE).href,
    stdout: (s) => console.log(s),
    stderr: (s) => console.warn(s),
    ...extra,
  };
}

// Boots the interpreter: from the stored snapshot when there is one, else normally while taking a snapshot for the
// next visit (stored once the page is idle).
async function bootInterpreter(allowRestore) {
  const key = snapshotKey();
  if (key && allowRestore) {
    const snapshot = await readSnapshot(key);
    if (snapshot) {
      try {
        const py = await withTimeout(orRuntimeFailure(loadPyodide(bootOptions({ _loadSnapshot: snapshot }))),
          SNAPSHOT_RESTORE_TIMEOUT_MS, "Restoring the memory snapshot");
        py.runPython("import sys");  // a restored heap that is broken fails here, not later in numpy
        timings.snapshot = "restored";
        return py;
      } catch (err) {
        console.warn("wasmvision: memory snapshot unusable, booting normally:", err.message);
        timings.snapshot = "failed";
        await forgetSnapshot();
      }
    }
  }
  const py = await orRuntimeFailure(loadPyodide(bootOptions(key ? { _makeSnapshot: true } : {})));
  if (key) {
    try {
      const bytes = py.makeMemorySnapshot(); // must come before any loadPackage (docs/perf.md §3)
      timings.snapshot = timings.snapshot || "made";
      // Not through the request queue: the write needs no Python and must not hold up a classify.
      setTimeout(() => writeSnapshot(key, bytes), SNAPSHOT_STORE_DELAY_MS);
    } catch (err) {
      console.warn("wasmvision: could not make a memory snapshot:", err.message);
    }
  }
  return py;
}

async function startPython() {
  try {
    await startPythonOnce(true);
  } catch (err) {
    if (timings.snapshot !== "restored") throw err;
    // The restored interpreter booted but could not load the packages: never trust that snapshot again.
    console.warn("wasmvision: booting from the memory snapshot failed, booting normally:", err.message);
    timings.snapshot = "failed";
    await forgetSnapshot();
    await startPythonOnce(false);
  }
}

async function startPythonOnce(allowRestore) {
  const t0 = performance.now();
  setStage("runtime", "Downloading Python runtime", runtimeFiles());
  pyodide = await bootInterpreter(allowRestore);
  // pyodide.asm.js arrives by import(), not fetch(): count it as received once the runtime is up.
  for (const path of ["pyodide/pyodide.asm.js", "pyodide/pyodide.mjs"]) {
    if (!received.has(path)) received.set(path, manifest.files.get(path)?.bytes ?? 0);
  }
  timings.runtime_ms = performance.now() - t0;

  const t1 = performance.now();
  setStage("packages", "Loading numpy", wheelFiles(["numpy", "wasmvision"]));
  const failures = [];
  const quiet = { messageCallback: () => {}, errorCallback: (msg) => failures.push(msg) };
  browser = null;
  try {
    await orRuntimeFailure(unpackWheels(["numpy", "wasmvision"]));
    timings.packages_install_ms = performance.now() - t1;
    browser = pyodide.pyimport("wasmvision.browser"); // imports numpy, which loads the extension modules it needs
    timings.packages_via = "unpack";
  } catch (err) {
    failures.push(err.message);
  }
  if (!browser) {
    try {
      await orRuntimeFailure(pyodide.loadPackage(["numpy", "wasmvision"], quiet));
      browser = pyodide.pyimport("wasmvision.browser");
      timings.packages_via = "loadPackage";
    } catch (err) {
      // A lock without our wheel (e.g. a hand-assembled site): numpy from the lock, wasmvision via micropip.
      failures.push(err.message);
      await orRuntimeFailure(pyodide.loadPackage("numpy", quiet));
      browser = await orRuntimeFailure(installWithMicropip(failures));
      timings.packages_via = "micropip";
    }
  }
  maxPixels = Number(browser.max_pixels()) || DEFAULT_MAX_PIXELS;
  timings.packages_ms = performance.now() - t1;
}

function sriFromHex(hex) {
  const bytes = hex.match(/../g).map((h) => parseInt(h, 16));
  return `sha256-${btoa(String.fromCharCode(...bytes))}`;
}

// Unpacks wheels listed in pyodide-lock.json into site-packages, checked against the lock's sha256. Why not
// pyodide.loadPackage: it also loads every Wasm extension module of a package up front (numpy: 19 of them, for
// random, fft, linalg, ...), while `import numpy` needs 3 and Python loads those itself on import (Chromium, packages
// stage medians: first visit 0.94 -> 0.59 s, repeat visit 0.91 -> 0.75 s; docs/perf.md). Any failure here falls back
// to loadPackage.
async function unpackWheels(names) {
  const lockUrl = new URL("./pyodide/pyodide-lock.json", BASE);
  const response = await fetch(lockUrl);
  if (!response.ok) throw new Error(`pyodide-lock.json: HTTP ${response.status}`);
  const lock = await response.json();
  const entries = names.map((name) => lock.packages?.[name]);
  const missing = names.filter((_, i) => !entries[i]?.file_name);
  if (missing.length) throw new Error(`pyodide-lock.json does not list ${missing.join(", ")}`);
  const wheels = await Promise.all(entries.map(async (e) => {
    const url = new URL(e.file_name, lockUrl);
    const r = await fetch(url, e.sha256 ? { integrity: sriFromHex(e.sha256) } : {});
    if (!r.ok) throw new Error(`${e.file_name}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  }));
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  for (const wheel of wheels) pyodide.unpackArchive(wheel, "wheel", { extractDir: sitePackages });
}

async function installWithMicropip(failures) {
  // Fallback for a site whose pyodide-lock.json does not list our wheel: install it from the site with micropip.
  const wheel = wheelFiles(["wasmvision"])[0];
  if (!wheel) {
    throw new UserError("The wasmvision package is missing from this site (pyodide-lock.json and manifest.json " +
      `do not list it). ${failures.join(" ")}`, "SetupError");
  }
  setStage("packages", "Installing wasmvision", [wheel]);
  await pyodide.loadPackage("micropip", { messageCallback: () => {} });
  const micropip = pyodide.pyimport("micropip");
  await micropip.install.callKwargs(new URL(wheel, BASE).href, { deps: false });
  return pyodide.pyimport("wasmvision.browser");
}

// ------------------------------------------------------------------------------------------ models

const models = new Map(); // key -> {key, name, version, file|blob, kind, builtin, loaded, info}
const prefetched = new Map(); // key -> Promise<Uint8Array>: the default model, downloaded while Python boots
let currentKey = null;

function publicModel(m) {
  return {
    key: m.key, name: m.info?.name ?? m.name, version: m.info?.version ?? m.version, builtin: m.builtin,
    loaded: m.loaded, bytes: m.info?.bytes ?? m.bytes, storage: m.info?.storage ?? m.storage,
    file: m.fileName ?? m.file ?? "",
    parameters: m.info?.parameters, load_ms: m.info?.load_ms, description: m.description ?? "",
  };
}

function postModels() {
  self.postMessage({ type: "models", models: [...models.values()].map(publicModel), current: currentKey });
}

async function fetchModelBytes(m) {
  if (m.blob) return new Uint8Array(await m.blob.arrayBuffer());
  const url = new URL(m.file, BASE);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new UserError(`The model file ${m.file} could not be downloaded: ${err.message}`, "BundleError");
  }
  if (!response.ok) {
    throw new UserError(`The model file ${m.file} could not be downloaded (HTTP ${response.status}` +
      `${response.status === 404 ? ": missing from the site" : ""}).`, "BundleError");
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function ensureLoaded(key) {
  const m = models.get(key);
  if (!m) throw new UserError(`Unknown model "${key}".`, "BundleError");
  if (m.loaded) return m;
  const t0 = performance.now();
  setStage("model", `Downloading model ${m.name}`, m.file ? [m.file] : [], Boolean(m.blob));
  const early = prefetched.get(key);
  prefetched.delete(key);
  const bytes = await (early ?? fetchModelBytes(m));
  const t1 = performance.now();
  setStage("model-load", `Loading model ${m.name}`, [], true);
  // Let the progress message out before Python blocks this thread.
  await new Promise((r) => setTimeout(r, 0));
  const info = callPython("load_model", key, bytes, m.kind, m.displayName ?? null);
  for (const evicted of info.evicted || []) {
    const e = models.get(evicted);
    if (e) e.loaded = false;
  }
  Object.assign(m, { loaded: true, info, name: info.name, version: info.version });
  timings.model_fetch_ms = t1 - t0;
  timings.model_load_ms = performance.now() - t1;
  setStage("ready", "Ready", [], true);
  postModels();
  return m;
}

async function selectModel(key) {
  await ensureLoaded(key);
  currentKey = key;
  postModels();
  return publicModel(models.get(key));
}

function uniqueKey(base) {
  let key = base;
  for (let i = 2; models.has(key) && models.get(key).builtin; i++) key = `${base}-${i}`;
  return key;
}

async function addModel({ source, name, select = true }) {
  let m;
  if (source instanceof Blob) {
    const fileName = source.name || name || "model.wvb";
    const kind = /\.onnx$/i.test(fileName) ? "onnx" : "wvb";
    if (source.size === 0) throw new UserError(`The model file ${fileName} is empty (0 bytes).`, "BundleError");
    const stem = fileName.replace(/\.(wvb|onnx)$/i, "");
    m = { key: uniqueKey(name || stem), name: name || stem, displayName: name || stem, version: "", blob: source,
      fileName, kind, builtin: false, loaded: false, bytes: source.size };
  } else {
    const url = new URL(String(source), BASE);
    const file = sitePath(url);
    const stem = file.split("/").pop().replace(/\.(wvb|onnx)$/i, "");
    m = { key: uniqueKey(name || stem), name: name || stem, displayName: name ?? null, version: "", file,
      kind: /\.onnx$/i.test(file) ? "onnx" : "wvb", builtin: false, loaded: false, bytes: 0 };
  }
  const previous = models.get(m.key);
  models.set(m.key, m);
  try {
    await ensureLoaded(m.key);
  } catch (err) {
    if (previous) models.set(m.key, previous);
    else models.delete(m.key);
    setStage("ready", "Ready", [], true);
    postModels();
    throw err;
  }
  if (select) currentKey = m.key;
  postModels();
  return publicModel(m);
}

// ------------------------------------------------------------------------------------------ images

const SIGNATURES = [
  ["PNG", [0x89, 0x50, 0x4e, 0x47]], ["JPEG", [0xff, 0xd8, 0xff]], ["GIF", [0x47, 0x49, 0x46, 0x38]],
  ["BMP", [0x42, 0x4d]], ["WebP", [0x52, 0x49, 0x46, 0x46]], ["ICO", [0x00, 0x00, 0x01, 0x00]],
];

// Reads the format and, where the header says it, the pixel size, so huge images are refused before decoding.
function sniffImage(h) {
  const at = (sig, off = 0) => sig.every((b, i) => h[off + i] === b);
  const u16be = (o) => (h[o] << 8) | h[o + 1];
  const u32be = (o) => ((h[o] << 24) >>> 0) + (h[o + 1] << 16) + (h[o + 2] << 8) + h[o + 3];
  const u16le = (o) => h[o] | (h[o + 1] << 8);
  const i32le = (o) => h[o] | (h[o + 1] << 8) | (h[o + 2] << 16) | (h[o + 3] << 24);
  if (h.length >= 12 && at([0x66, 0x74, 0x79, 0x70], 4)) {
    const brand = String.fromCharCode(...h.slice(8, 12));
    if (/^(avif|avis|heic|heix|mif1)$/.test(brand)) return { format: brand.startsWith("av") ? "AVIF" : "HEIF" };
  }
  const sig = SIGNATURES.find(([, s]) => h.length >= s.length && at(s));
  if (!sig) return null;
  const format = sig[0];
  if (format === "PNG" && h.length >= 24) return { format, width: u32be(16), height: u32be(20) };
  if (format === "GIF" && h.length >= 10) return { format, width: u16le(6), height: u16le(8) };
  if (format === "BMP" && h.length >= 26) return { format, width: Math.abs(i32le(18)), height: Math.abs(i32le(22)) };
  if (format === "WebP") {
    if (!at([0x57, 0x45, 0x42, 0x50], 8)) return null;
    const chunk = String.fromCharCode(...h.slice(12, 16));
    if (chunk === "VP8X" && h.length >= 30) {
      return { format, width: 1 + (h[24] | (h[25] << 8) | (h[26] << 16)), height: 1 + (h[27] | (h[28] << 8) | (h[29] << 16)) };
    }
    if (chunk === "VP8 " && h.length >= 30) return { format, width: u16le(26) & 0x3fff, height: u16le(28) & 0x3fff };
    if (chunk === "VP8L" && h.length >= 25) {
      const b = h[21] | (h[22] << 8) | (h[23] << 16) | (h[24] << 24);
      return { format, width: 1 + (b & 0x3fff), height: 1 + ((b >>> 14) & 0x3fff) };
    }
    return { format };
  }
  if (format === "JPEG") {
    let o = 2;
    while (o + 9 < h.length) {
      if (h[o] !== 0xff) { o++; continue; }
      const marker = h[o + 1];
      if (marker === 0xff) { o++; continue; }
      // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { format, width: u16be(o + 7), height: u16be(o + 5) };
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { o += 2; continue; }
      o += 2 + u16be(o + 2);
    }
    return { format };
  }
  return { format };
}

function tooBig(width, height) {
  return new UserError(`This image is too large: ${width} × ${height} = ${(width * height / 1e6).toFixed(1)} ` +
    `megapixels; the limit is ${Math.round(maxPixels / 1e6)} megapixels. Try a smaller copy of the photo.`,
    "ImageError");
}

async function decodeImage(blob) {
  if (!(blob instanceof Blob)) throw new UserError("Expected an image file (a File or Blob).", "ImageError");
  const what = blob.name ? `"${blob.name}"` : "The file";
  if (blob.size === 0) throw new UserError(`${what} is empty (0 bytes).`, "ImageError");
  const head = new Uint8Array(await blob.slice(0, 65536).arrayBuffer());
  const sniffed = sniffImage(head);
  if (sniffed?.width && sniffed?.height && sniffed.width * sniffed.height > maxPixels) {
    throw tooBig(sniffed.width, sniffed.height);
  }
  let bitmap;
  try {
    // Pixels exactly as stored (no colour management, no premultiplication) so the browser feeds Python the same
    // RGB values PIL decodes natively; EXIF orientation applied as a photo viewer would.
    bitmap = await createImageBitmap(blob, {
      imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none",
    });
  } catch {
    if (sniffed) {
      throw new UserError(`${what} looks like a ${sniffed.format} image but could not be decoded: ` +
        "it is corrupt, truncated, or in a variant this browser cannot read.", "ImageError");
    }
    throw new UserError(`${what} is not an image this browser can read. Use a PNG, JPEG, GIF, WebP, BMP or AVIF ` +
      "photo.", "ImageError");
  }
  const { width, height } = bitmap;
  try {
    if (width * height > maxPixels) throw tooBig(width, height);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    return { pixels: ctx.getImageData(0, 0, width, height).data, width, height, format: sniffed?.format ?? "" };
  } finally {
    bitmap.close();
  }
}

async function classify({ blob, topK = 5, model }) {
  const t0 = performance.now();
  const key = model ?? currentKey;
  if (!key) throw new UserError("No model is loaded. Choose a model or open your own.", "BundleError");
  const image = await decodeImage(blob);
  const decodeMs = performance.now() - t0;
  await ensureLoaded(key);
  const k = Math.max(1, Math.min(1000, Math.floor(Number(topK) || 5)));
  let result;
  try {
    result = callPython("classify_rgba", key, image.pixels, image.width, image.height, k);
  } catch (err) {
    if (err.kind !== "ModelNotLoaded") throw err;
    models.get(key).loaded = false;
    await ensureLoaded(key);
    result = callPython("classify_rgba", key, image.pixels, image.width, image.height, k);
  }
  const t = result.timings_ms || {};
  const handover = t.handover ?? 0;
  delete t.handover;
  result.timings_ms = {
    decode: decodeMs + handover, preprocess: t.preprocess, inference: t.inference, postprocess: t.postprocess,
    total: performance.now() - t0,
  };
  result.image = { width: image.width, height: image.height, format: image.format };
  result.model = { ...result.model, key };
  return result;
}

// ------------------------------------------------------------------------------------------ boot + dispatch

async function boot({ preferredModel } = {}) {
  const t0 = performance.now();
  await loadManifest();
  const runtime = runtimeFiles();
  const wheels = wheelFiles(["numpy", "wasmvision"]);
  for (const m of manifest.models) models.set(m.key, { ...m, kind: "wvb", loaded: false });
  const initial = (preferredModel && models.get(preferredModel)) || manifest.models.find((m) => m.default) ||
    manifest.models.find((m) => m.name === "mobilenet_v2") || manifest.models[0];
  manifest.bootFiles = [...runtime, ...wheels, ...(initial ? [initial.file] : [])];
  manifest.bootBytes = manifest.bootFiles.reduce((s, p) => s + (manifest.files.get(p)?.bytes ?? 0), 0);
  postModels();
  if (initial) {
    // Overlap the largest download with the runtime's instead of starting it once Python is up.
    const early = fetchModelBytes(initial);
    early.catch(() => {}); // reported when ensureLoaded awaits it
    prefetched.set(initial.key, early);
  }
  await startPython();
  let modelError = null;
  if (initial) {
    try {
      await selectModel(initial.key);
    } catch (err) {
      // The runtime works; the page stays usable with a model the user opens.
      modelError = errorPayload(err);
    }
  } else {
    modelError = { kind: "BundleError", message: "This site lists no models. Open your own model file." };
  }
  timings.boot_ms = performance.now() - t0;
  setStage("ready", "Ready", [], true);
  self.postMessage({
    type: "ready", current: currentKey, models: [...models.values()].map(publicModel), maxPixels,
    timings: { ...timings }, modelError,
    bytesReceived: [...received.values()].reduce((a, b) => a + b, 0),
    pyodideVersion: pyodide.version,
  });
}

const handlers = {
  classify,
  loadModel: addModel,
  selectModel: ({ key }) => selectModel(key),
  models: async () => ({ models: [...models.values()].map(publicModel), current: currentKey }),
  stats: async () => ({ timings: { ...timings }, bytesReceived: [...received.values()].reduce((a, b) => a + b, 0) }),
};

let booted = null;
let queue = Promise.resolve();

// Python runs one call at a time; requests are served in arrival order.
function enqueue(fn) {
  const run = queue.then(fn);
  queue = run.catch(() => {});
  return run;
}

self.onmessage = (event) => {
  const msg = event.data || {};
  if (msg.type === "init") {
    booted = enqueue(() => boot(msg));
    // Requests wait on `booted` and fail with its error; the page hears about it once, here.
    booted.catch((err) => self.postMessage({ type: "fatal", error: errorPayload(err) }));
    return;
  }
  const handler = handlers[msg.type];
  if (!handler) {
    self.postMessage({ id: msg.id, ok: false, error: { kind: "Error", message: `unknown request ${msg.type}` } });
    return;
  }
  (booted || Promise.resolve())
    .then(() => enqueue(() => handler(msg)))
    .then(
      (value) => self.postMessage({ id: msg.id, ok: true, value }),
      (err) => self.postMessage({ id: msg.id, ok: false, error: errorPayload(err) }),
    );
};
