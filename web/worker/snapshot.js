// The interpreter's memory snapshot, in one file of the origin private file system (OPFS). A repeat visit boots the
// interpreter from a copy of its memory taken on the first visit once numpy, wasmvision.browser and the SIMD kernels
// were loaded (Pyodide 0.27.7's underscore options: unsupported API, so every step falls back to a normal boot;
// docs/perf.md §3). The key names the exact runtime build and wheels, so a new site version never restores an old
// snapshot. One record: { bytes: the heap, libs: the side modules loaded before Python started (dylibs.js),
// handles: their dlopen handles, model: the model the heap holds loaded or null (nextvisit.js) }, or, for a
// visitor restored from the site's shipped snapshot, { bytes: that delta
// file as downloaded, kind: "delta" } (checked against the manifest again when read: shipped.js checkedCopy). No
// code file is kept here: a restore takes site-packages and the side modules from the wheels checked against the
// manifest (dylibs.js unpackForRestore), since any script of this origin can write this file
// (docs/robustness-browser.md).
//
// Why a file and not an IndexedDB record of the heap (where it was until round 5): the ~41 MB record came back as a
// structured clone, ~50 ms of this worker's thread plus the database's own reading (docs/perf.md §7, round 5). Where
// OPFS cannot write (WebKitGTK), the same file is kept as a Blob in IndexedDB (snapshot-stores.js), read the same way.
// The file: [magic u32, meta length u32, meta JSON {key, libs, handles, heap, kind?, sparse?}, zero padding to 16,
// heap bytes (kind "sparse": as runs, heapruns.js; "delta": the shipped delta's; `heap` is the section's length)].
// Every worker of the page reads it through a read-only sync access handle (which other readers share; a writer
// waits for it) or as a Blob (getFile(), an IndexedDB get), which locks nothing; one writer at a time (a Web Lock)
// replaces it whole or not at all, so a reader never sees half a file and a failed write leaves the old one. One
// whose size does not match its meta is forgotten.

import { checkRuns, nonZeroRuns, runViews } from "./heapruns.js";
import { fileSha256, wheelFiles } from "./manifest.js";
import { looksLikeSnapshot, snapshotParts, version as pyodideVersion } from "./pyodide-0.27.7.js";
import { STORES } from "./snapshot-stores.js";

const FILE_MAGIC = 0x31737677; // "wvs1", little-endian
const LEGACY_DB = "wasmvision-snapshot"; // where earlier versions kept it (IndexedDB): deleted when a file is stored

function plausibleSnapshot(value) {
  const bytes = value?.bytes;
  // A stored copy of the shipped delta: shipped.js's parseShipped checks all of it.
  if (value?.kind === "delta") {
    return bytes instanceof Uint8Array ? { bytes, kind: "delta", libs: [], handles: {} } : null;
  }
  if (!Array.isArray(value.libs) || !value.libs.every((l) => typeof l === "string")) return null;
  if (!value.handles || typeof value.handles !== "object") return null;
  const heap = value.kind === "sparse" ? sparseHeap(bytes, value.sparse, value.data) :
    looksLikeSnapshot(bytes) ? { bytes } : null;
  return heap && { ...heap, libs: value.libs, handles: value.handles, model: plausibleModel(value.model) };
}

// A heap stored as runs (heapruns.js): {total: the snapshot's size, delta: {header, runs, data, fresh}}, or null.
// The section: [Pyodide's snapshot header, runs (u32 offset, u32 length) x runs, the runs' bytes]; `file`: where the
// runs' bytes are read from instead, when `bytes` ends before them (readOpen).
function sparseHeap(bytes, { header: h, runs: n, total, fresh } = {}, file = null) {
  const counts = [h, n, total, fresh];
  if (!counts.every((x) => Number.isInteger(x) && x >= 0) || h % 16 || h + 8 * n > bytes.byteLength) {
    return null;
  }
  const header = bytes.subarray(0, h);
  if (!looksLikeSnapshot(header, 16)) return null;
  const runs = new Uint32Array(bytes.buffer, bytes.byteOffset + h, 2 * n); // the section starts 16-aligned
  const data = file ?? bytes.subarray(h + 8 * n);
  try {
    checkRuns(runs, total - h, data.byteLength, "the stored snapshot");
  } catch {
    return null;
  }
  return { total, delta: { header, runs, data, fresh } };
}

// The file's heap section for a snapshot's `bytes`: as runs when this worker knows its fresh heap's break `fresh`
// (sparse: what the meta records), else whole.
function heapSection(bytes, fresh) {
  if (!Number.isInteger(fresh)) return { parts: [bytes], length: bytes.byteLength, sparse: undefined };
  const { header, heap } = snapshotParts(bytes);
  const runs = nonZeroRuns(heap, fresh);
  const parts = [header, new Uint8Array(runs.buffer), ...runViews(heap, runs)];
  const length = parts.reduce((sum, p) => sum + p.byteLength, 0);
  const sparse = { header: header.byteLength, runs: runs.length / 2, total: bytes.byteLength, fresh };
  return { parts, length, sparse };
}

// The model a heap holds loaded (nextvisit.js): {key, file, sha256, engine, info}, or null.
function plausibleModel(model) {
  const named = ["key", "file", "sha256", "engine"].every((k) => typeof model?.[k] === "string");
  return named && model.info && typeof model.info === "object" ? model : null;
}

// `packages`: the wheels the snapshot holds imported (their files, modules and side modules).
export function snapshotKey(packages) {
  const wasm = fileSha256("pyodide/pyodide.asm.wasm");
  const lock = fileSha256("pyodide/pyodide-lock.json");
  // The heap remembers the stdlib zip's directory: a build with another stdlib must not restore it.
  const stdlib = fileSha256("pyodide/python_stdlib.zip");
  const wheels = wheelFiles(packages).map(fileSha256);
  // Without hashes in the manifest we cannot tell two builds apart: no snapshot then.
  if (!wasm || !lock || !stdlib || wheels.length !== packages.length || !wheels.every(Boolean)) return null;
  return `pyodide-${pyodideVersion}|${wasm}|${lock}|${stdlib}|${wheels.join("|")}`;
}

const LOCK = "wasmvision-snapshot-write";
// A store that does not answer (an IndexedDB read queued behind a write of a page the browser froze, e.g. in its
// back-forward cache) must not hold the boot: the snapshot is a shortcut, so the boot goes on without it.
const STORE_ANSWER_MS = 10_000;

function answered(store, read = () => store.read()) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${store.name} did not answer within ${STORE_ANSWER_MS / 1000} s`)),
      STORE_ANSWER_MS);
  });
  return Promise.race([read(), late]).finally(() => clearTimeout(timer));
}
const META_START = 8;

function dataStart(metaLength) {
  return Math.ceil((META_START + metaLength) / 16) * 16; // Pyodide reads the heap as a Uint32Array
}

// The file's meta when it is whole, else "damaged". `bytes`: the whole file (one read: each step of this worker waits
// behind the runtime's script and downloads on a repeat visit, so fewer steps answer sooner), or its start when
// `size` is the file's size.
function readMeta(bytes, size = bytes.byteLength) {
  if (bytes.byteLength < META_START) return "damaged";
  const head = new DataView(bytes.buffer, bytes.byteOffset, META_START);
  if (head.getUint32(0, true) !== FILE_MAGIC) return "damaged";
  const metaLength = head.getUint32(4, true);
  if (META_START + metaLength > bytes.byteLength) return "damaged";
  let meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(META_START, META_START + metaLength)));
  } catch {
    return "damaged";
  }
  const start = dataStart(metaLength);
  if (!Number.isInteger(meta?.heap) || meta.heap < 0 || start + meta.heap !== size) return "damaged";
  return { ...meta, start };
}

// `file`: a Blob (read without blocking anyone) or the ArrayBuffer a store could keep instead (a view, no copy).
async function readWhole(file) {
  return new Uint8Array(file instanceof ArrayBuffer ? file : await file.arrayBuffer());
}

const HEAD_BYTES = 64 << 10; // holds the meta (a few KB)

// A file open for reads (snapshot-stores.js openRead): {bytes, size, data}. For a heap kept as runs, `bytes` ends
// where the runs' bytes begin and `data` reads those from the file (a restore reads them straight into Wasm memory
// and closes it: heapruns.js applyRuns); otherwise `bytes` is the whole file, `data` null, and the file is closed.
function readOpen(open) {
  const head = new Uint8Array(Math.min(open.size, HEAD_BYTES));
  open.read(head, 0);
  const meta = readMeta(head, open.size);
  const sparse = meta !== "damaged" && meta.kind === "sparse" ? meta.sparse : null;
  const end = sparse ? meta.start + sparse.header + 8 * sparse.runs : NaN;
  if (!Number.isInteger(end) || end > open.size) {
    const bytes = new Uint8Array(open.size);
    open.read(bytes, 0);
    open.close();
    return { bytes, size: open.size, data: null };
  }
  const bytes = new Uint8Array(end);
  open.read(bytes, 0);
  const data = { byteLength: open.size - end, readInto: (target, at) => open.read(target, end + at),
    close: () => open.close() };
  return { bytes, size: open.size, data };
}

function usableStores() {
  return STORES.filter((store) => store.usable());
}

// The record stored under one of `keys` ({key, bytes, libs, handles, store}), null when there is none, or "damaged"
// (then forgotten). One snapshot per origin: the first store holding one of the keys answers.
export async function readSnapshot(keys) {
  for (const store of usableStores()) {
    let value = null;
    let open = null; // the file, when the store can keep it open (closed here unless a restore reads from it)
    try {
      open = store.openRead ? await answered(store, () => store.openRead()) : null;
      const file = open ? readOpen(open) : await answered(store);
      if (!file) continue;
      const bytes = open ? file.bytes : await readWhole(file);
      const meta = readMeta(bytes, open ? file.size : bytes.byteLength);
      if (meta !== "damaged" && !keys.includes(meta.key)) {
        open?.close();
        continue;
      }
      value = meta === "damaged" ? "damaged" : { key: meta.key, bytes: bytes.subarray(meta.start), libs: meta.libs,
        handles: meta.handles, kind: meta.kind, sparse: meta.sparse, model: meta.model, data: file.data ?? null };
    } catch (err) {
      open?.close();
      console.warn(`wasmvision: no memory snapshot (${store.name}):`, err.message);
      continue;
    }
    const record = value === "damaged" ? null : plausibleSnapshot(value);
    if (!record) {
      open?.close();
      console.warn("wasmvision: the stored memory snapshot is damaged; discarding it");
      await forgetSnapshot();
      return "damaged";
    }
    return { ...record, key: value.key, store: store.name };
  }
  return null;
}

// The stored file's meta in `store` (null: none, "damaged"), never throwing: its first bytes only.
function storedMeta(store) {
  return answered(store).then(async (file) => {
    if (!file) return null;
    const size = file.size ?? file.byteLength;
    if (file instanceof ArrayBuffer || size < META_START) return readMeta(await readWhole(file));
    const head = new DataView(await file.slice(0, META_START).arrayBuffer());
    const metaLength = head.getUint32(0, true) === FILE_MAGIC ? head.getUint32(4, true) : 0;
    return readMeta(new Uint8Array(await file.slice(0, META_START + metaLength).arrayBuffer()), size);
  }).catch(() => null);
}

// Returns the store's name when the snapshot is stored (by this worker or, for this key, by another one), else
// false. One snapshot per origin: the new build's replaces any older one in every store; the first store that can
// write it keeps it. While another worker writes, this one leaves it to that one.
// `fresh`: the break of the heap `bytes` was made from, freshly created (pyodide-0.27.7.js freshHeapBreak), or null.
export async function writeSnapshot(key, { bytes, libs, handles, kind = undefined, model = undefined, fresh = null }) {
  const write = async () => {
    const stores = usableStores();
    const existing = await Promise.all(stores.map(storedMeta));
    const same = (meta) => meta && meta !== "damaged" && meta.key === key && meta.model?.sha256 === model?.sha256;
    const have = stores.find((_, i) => same(existing[i]));
    if (have) return have.name;
    const section = kind === undefined ? heapSection(bytes, fresh) : { parts: [bytes], length: bytes.byteLength };
    const meta = new TextEncoder().encode(JSON.stringify({ key, libs, handles, heap: section.length,
      kind: section.sparse ? "sparse" : kind, sparse: section.sparse, model }));
    const head = new DataView(new ArrayBuffer(META_START));
    head.setUint32(0, FILE_MAGIC, true);
    head.setUint32(4, meta.byteLength, true);
    const parts = [{ position: 0, data: new Uint8Array(head.buffer) }, { position: META_START, data: meta }];
    let at = dataStart(meta.byteLength);
    for (const data of section.parts) {
      parts.push({ position: at, data });
      at += data.byteLength;
    }
    let failure = null;
    for (const [i, store] of stores.entries()) {
      try {
        await store.replace(parts, { existed: Boolean(existing[i]) });
      } catch (err) {
        failure = failure ?? err;
        console.warn(`wasmvision: the memory snapshot cannot be stored in ${store.name}:`, err.message);
        continue;
      }
      // The others' older snapshots go: one per origin.
      await Promise.all(stores.filter((s, j) => j !== i && existing[j]).map((s) => s.remove().catch(() => {})));
      if (typeof indexedDB !== "undefined") indexedDB.deleteDatabase(LEGACY_DB);
      return store.name;
    }
    throw failure ?? new Error("no storage for it in this browser");
  };
  try {
    if (!navigator.locks) return await write();
    return await navigator.locks.request(LOCK, { ifAvailable: true }, (lock) => (lock ? write() : false));
  } catch (err) {
    console.warn("wasmvision: could not store the memory snapshot:", err.message);
    return false;
  }
}

export async function forgetSnapshot() {
  // Nothing stored, nothing to forget: a store that fails here has nothing to forget either.
  await Promise.all(usableStores().map((store) => store.remove().catch(() => {})));
}
