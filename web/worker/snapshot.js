// The interpreter's memory snapshot in IndexedDB. A repeat visit boots the interpreter from a copy of its memory
// taken on the first visit once numpy, wasmvision.browser and the SIMD kernels were loaded (Pyodide 0.27.7's
// underscore options: unsupported API, so every step falls back to a normal boot; docs/perf.md §3). The key names
// the exact runtime build and wheels, so a new site version never restores an old snapshot. One record:
// { bytes, libs: the side modules loaded before Python started (dylibs.js), handles: their dlopen handles,
// site: site-packages as it was (sitefiles.js; the heap has the modules, the file system starts empty) }.

import { version as pyodideVersion } from "../pyodide/pyodide.mjs";
import { fileSha256, wheelFiles } from "./manifest.js";
import { treeFiles } from "./sitefiles.js";

const SNAPSHOT_DB = "wasmvision-snapshot";
const SNAPSHOT_STORE = "snapshots";
const SNAPSHOT_MAGIC = 0x706e7300; // first word of a Pyodide 0.27 snapshot (API.makeSnapshot)

function plausibleSnapshot(value) {
  const bytes = value?.bytes;
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < (1 << 20)) return null;
  if (!Array.isArray(value.libs) || !value.libs.every((l) => typeof l === "string")) return null;
  if (!value.handles || typeof value.handles !== "object") return null;
  const files = treeFiles(value.site);
  if (!files) return null;
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  return magic === SNAPSHOT_MAGIC ? { bytes, libs: value.libs, handles: value.handles, files } : null;
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

// The record for this key, null when there is none, or "damaged" (then already forgotten).
export async function readSnapshot(key) {
  try {
    const value = await snapshotTransaction("readonly", (store) => store.get(key));
    if (value === undefined) return null;
    const record = plausibleSnapshot(value);
    if (!record) {
      console.warn("wasmvision: the stored memory snapshot is damaged; discarding it");
      await forgetSnapshot();
      return "damaged";
    }
    return record;
  } catch (err) {
    console.warn("wasmvision: no memory snapshot:", err.message);
    return null;
  }
}

// Returns whether the snapshot was stored.
export async function writeSnapshot(key, record) {
  try {
    // One snapshot per origin: the new build's replaces any older one.
    await snapshotTransaction("readwrite", (store) => {
      store.clear();
      return store.put(record, key);
    });
    return true;
  } catch (err) {
    console.warn("wasmvision: could not store the memory snapshot:", err.message);
    return false;
  }
}

export async function forgetSnapshot() {
  try {
    await snapshotTransaction("readwrite", (store) => store.clear());
  } catch {
    // Nothing stored, nothing to forget.
  }
}
