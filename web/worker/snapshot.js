// The interpreter's memory snapshot, in one file of the origin private file system (OPFS). A repeat visit boots the
// interpreter from a copy of its memory taken on the first visit once numpy, wasmvision.browser and the SIMD kernels
// were loaded (Pyodide 0.27.7's underscore options: unsupported API, so every step falls back to a normal boot;
// docs/perf.md §3). The key names the exact runtime build and wheels, so a new site version never restores an old
// snapshot. One record: { bytes: the heap, libs: the side modules loaded before Python started (dylibs.js),
// handles: their dlopen handles }. No code file is kept here: a restore takes site-packages and the side modules
// from the wheels checked against the manifest (dylibs.js unpackForRestore), since any script of this origin can
// write this file (docs/robustness-browser.md).
//
// Why a file and not IndexedDB (where it was until round 5): the ~41 MB record came back as a structured clone, ~50
// ms of this worker's thread plus the database's own reading (docs/perf.md §7, round 5).
// The file: [magic u32, meta length u32, meta JSON {key, libs, handles, heap}, zero padding to 16, heap bytes].
// Every worker of the page reads it with getFile(), which locks nothing; one writer at a time (a Web Lock) replaces it
// through a writable stream, which the browser applies whole on close() or not at all, so a reader never sees half a
// file and a failed write leaves the old one. One whose size does not match its meta is forgotten.

import { fileSha256, wheelFiles } from "./manifest.js";
import { looksLikeSnapshot, version as pyodideVersion } from "./pyodide-0.27.7.js";

const SNAPSHOT_FILE = "wasmvision-snapshot.bin";
const FILE_MAGIC = 0x31737677; // "wvs1", little-endian
const LEGACY_DB = "wasmvision-snapshot"; // where earlier versions kept it (IndexedDB): deleted when a file is stored

function plausibleSnapshot(value) {
  const bytes = value?.bytes;
  if (!looksLikeSnapshot(bytes)) return null;
  if (!Array.isArray(value.libs) || !value.libs.every((l) => typeof l === "string")) return null;
  if (!value.handles || typeof value.handles !== "object") return null;
  return { bytes, libs: value.libs, handles: value.handles };
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
const META_START = 8;

function dataStart(metaLength) {
  return Math.ceil((META_START + metaLength) / 16) * 16; // Pyodide reads the heap as a Uint32Array
}

// The snapshot's file as a File (a read that blocks no other reader or writer), or null when there is none.
async function storedFile() {
  const root = await navigator.storage.getDirectory();
  try {
    return await (await root.getFileHandle(SNAPSHOT_FILE)).getFile();
  } catch (err) {
    if (err?.name === "NotFoundError") return null;
    throw err;
  }
}

async function readBytes(file, start, length) {
  return new Uint8Array(await file.slice(start, start + length).arrayBuffer());
}

// The file's meta when it is whole, else "damaged".
async function readMeta(file) {
  const size = file.size;
  if (size < META_START) return "damaged";
  const head = new DataView((await readBytes(file, 0, META_START)).buffer);
  if (head.getUint32(0, true) !== FILE_MAGIC) return "damaged";
  const metaLength = head.getUint32(4, true);
  if (META_START + metaLength > size) return "damaged";
  let meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(await readBytes(file, META_START, metaLength)));
  } catch {
    return "damaged";
  }
  const start = dataStart(metaLength);
  if (!Number.isInteger(meta?.heap) || meta.heap < 0 || start + meta.heap !== size) return "damaged";
  return { ...meta, start };
}

// The record for this key, null when there is none, or "damaged" (then already forgotten).
export async function readSnapshot(key) {
  let value = null;
  try {
    const file = await storedFile();
    if (!file) return null;
    const meta = await readMeta(file);
    if (meta !== "damaged" && meta.key !== key) return null;
    value = meta === "damaged" ? "damaged" :
      { bytes: await readBytes(file, meta.start, meta.heap), libs: meta.libs, handles: meta.handles };
  } catch (err) {
    console.warn("wasmvision: no memory snapshot:", err.message);
    return null;
  }
  const record = value === "damaged" ? null : plausibleSnapshot(value);
  if (!record) {
    console.warn("wasmvision: the stored memory snapshot is damaged; discarding it");
    await forgetSnapshot();
    return "damaged";
  }
  return record;
}

// Returns whether the snapshot is stored (by this worker or, for this key, by another one). One snapshot per origin:
// the new build's replaces any older one; while another worker writes, this one leaves it to that one.
export async function writeSnapshot(key, { bytes, libs, handles }) {
  const write = async () => {
    const existing = await storedFile().then((file) => file && readMeta(file)).catch(() => null);
    if (existing && existing !== "damaged" && existing.key === key) return true;
    const meta = new TextEncoder().encode(JSON.stringify({ key, libs, handles, heap: bytes.byteLength }));
    const head = new DataView(new ArrayBuffer(META_START));
    head.setUint32(0, FILE_MAGIC, true);
    head.setUint32(4, meta.byteLength, true);
    const start = dataStart(meta.byteLength);
    const root = await navigator.storage.getDirectory();
    let stream = null;
    try {
      stream = await (await root.getFileHandle(SNAPSHOT_FILE, { create: true })).createWritable();
      await stream.write({ type: "write", position: 0, data: head });
      await stream.write({ type: "write", position: META_START, data: meta });
      await stream.write({ type: "write", position: start, data: bytes });
      await stream.close(); // the whole file replaces the old one here, or nothing does
    } catch (err) {
      await stream?.abort().catch(() => {});
      if (!existing) await forgetSnapshot(); // the empty file just created, where writables are unsupported
      throw err;
    }
    if (typeof indexedDB !== "undefined") indexedDB.deleteDatabase(LEGACY_DB);
    return true;
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
  try {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(SNAPSHOT_FILE);
  } catch {
    // Nothing stored, nothing to forget.
  }
}
