// The interpreter's memory snapshot, in one file of the origin private file system (OPFS). A repeat visit boots the
// interpreter from a copy of its memory taken on the first visit once numpy, wasmvision.browser and the SIMD kernels
// were loaded (Pyodide 0.27.7's underscore options: unsupported API, so every step falls back to a normal boot;
// docs/perf.md §3). The key names
// the exact runtime build and wheels, so a new site version never restores an old snapshot. One record:
// { bytes, libs: the side modules loaded before Python started (dylibs.js), handles: their dlopen handles,
// site: site-packages as it was (sitefiles.js; the heap has the modules, the file system starts empty) }.
//
// Why a file and not IndexedDB (where it was until round 5): the ~41 MB record came back as a structured clone, ~50
// ms of this worker's thread plus the database's own reading, all while the runtime's compile and script wanted the
// same two cores (docs/perf.md §7, round 5). A sync access handle reads it straight into this worker's buffers.
// The file: [magic u32, meta length u32, meta JSON {key, libs, handles, index, heap, site}, zero padding to 16, heap
// bytes, site-packages bytes]. The magic is written last, so a file whose writing stopped halfway is never taken for
// a snapshot; one whose size does not match its meta is forgotten.

import { fileSha256, wheelFiles } from "./manifest.js";
import { looksLikeSnapshot, version as pyodideVersion } from "./pyodide-0.27.7.js";
import { treeFiles } from "./sitefiles.js";

const SNAPSHOT_FILE = "wasmvision-snapshot.bin";
const FILE_MAGIC = 0x31737677; // "wvs1", little-endian
const LEGACY_DB = "wasmvision-snapshot"; // where earlier versions kept it (IndexedDB): deleted when a file is stored

function plausibleSnapshot(value) {
  const bytes = value?.bytes;
  if (!looksLikeSnapshot(bytes)) return null;
  if (!Array.isArray(value.libs) || !value.libs.every((l) => typeof l === "string")) return null;
  if (!value.handles || typeof value.handles !== "object") return null;
  const files = treeFiles(value.site);
  if (!files) return null;
  return { bytes, libs: value.libs, handles: value.handles, files };
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

// A sync access handle on the snapshot's file (dedicated workers only), or null when there is no such file.
// Throws when the browser has no OPFS or the file is in use (another tab writing it).
async function openFile(create) {
  const root = await navigator.storage.getDirectory();
  let file;
  try {
    file = await root.getFileHandle(SNAPSHOT_FILE, { create });
  } catch (err) {
    if (err?.name === "NotFoundError") return null;
    throw err;
  }
  return file.createSyncAccessHandle();
}

const META_START = 8;

function dataStart(metaLength) {
  return Math.ceil((META_START + metaLength) / 16) * 16; // Pyodide reads the heap as a Uint32Array
}

// The stored value ({bytes, libs, handles, site}) when the file holds this key's snapshot; null for another key's;
// "damaged" when it is not a whole snapshot file.
function readValue(access, key) {
  const size = access.getSize();
  const head = new DataView(new ArrayBuffer(8));
  if (size < 8 || access.read(head, { at: 0 }) !== 8 || head.getUint32(0, true) !== FILE_MAGIC) return "damaged";
  const metaLength = head.getUint32(4, true);
  if (META_START + metaLength > size) return "damaged";
  const metaBytes = new Uint8Array(metaLength);
  access.read(metaBytes, { at: META_START });
  let meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(metaBytes));
  } catch {
    return "damaged";
  }
  if (meta?.key !== key) return null;
  const start = dataStart(metaLength);
  if (!Number.isInteger(meta.heap) || !Number.isInteger(meta.site) || meta.heap < 0 || meta.site < 0 ||
    start + meta.heap + meta.site !== size) return "damaged";
  // Two buffers: the file system keeps views into the second one (sitefiles.js), the heap's copy can go.
  const bytes = new Uint8Array(meta.heap);
  const data = new Uint8Array(meta.site);
  if (access.read(bytes, { at: start }) !== meta.heap || access.read(data, { at: start + meta.heap }) !== meta.site) {
    return "damaged";
  }
  return { bytes, libs: meta.libs, handles: meta.handles, site: { data, index: meta.index } };
}

// The record for this key, null when there is none, or "damaged" (then already forgotten).
export async function readSnapshot(key) {
  let access = null;
  let value;
  try {
    access = await openFile(false);
    if (!access) return null;
    value = readValue(access, key);
  } catch (err) {
    console.warn("wasmvision: no memory snapshot:", err.message);
    return null;
  } finally {
    access?.close();
  }
  if (value === null) return null;
  const record = value === "damaged" ? null : plausibleSnapshot(value);
  if (!record) {
    console.warn("wasmvision: the stored memory snapshot is damaged; discarding it");
    await forgetSnapshot();
    return "damaged";
  }
  return record;
}

// Returns whether the snapshot was stored. One snapshot per origin: the new build's replaces any older one.
export async function writeSnapshot(key, { bytes, libs, handles, site }) {
  let access = null;
  try {
    const meta = new TextEncoder().encode(JSON.stringify({ key, libs, handles, index: site.index,
      heap: bytes.byteLength, site: site.data.byteLength }));
    const head = new DataView(new ArrayBuffer(8));
    head.setUint32(4, meta.byteLength, true); // magic 0 until the rest is written
    const start = dataStart(meta.byteLength);
    access = await openFile(true);
    access.truncate(0);
    access.write(head, { at: 0 });
    access.write(meta, { at: META_START });
    access.write(bytes, { at: start });
    access.write(site.data, { at: start + bytes.byteLength });
    access.flush();
    head.setUint32(0, FILE_MAGIC, true);
    access.write(head, { at: 0 });
    access.flush();
    if (typeof indexedDB !== "undefined") indexedDB.deleteDatabase(LEGACY_DB);
    return true;
  } catch (err) {
    console.warn("wasmvision: could not store the memory snapshot:", err.message);
    if (access) { // a file begun (e.g. the disk filled up): not left behind
      access.close();
      access = null;
      await forgetSnapshot();
    }
    return false;
  } finally {
    access?.close();
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
