// The interpreter's memory snapshot in IndexedDB. A repeat visit boots the interpreter from a copy of its memory
// taken right after the first visit's boot (Pyodide 0.27.7's underscore options: unsupported API, so every step
// falls back to a normal boot). It saves ~0.9 s of interpreter start-up (docs/perf.md §3). The key names the exact
// runtime build, so a new site version never restores an old snapshot.

import { version as pyodideVersion } from "../pyodide/pyodide.mjs";
import { fileSha256 } from "./manifest.js";

const SNAPSHOT_DB = "wasmvision-snapshot";
const SNAPSHOT_STORE = "snapshots";
const SNAPSHOT_MAGIC = 0x706e7300; // first word of a Pyodide 0.27 snapshot (API.makeSnapshot)

function plausibleSnapshot(value) {
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < (1 << 20)) return null;
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  return magic === SNAPSHOT_MAGIC ? bytes : null;
}

export function snapshotKey() {
  const wasm = fileSha256("pyodide/pyodide.asm.wasm");
  const lock = fileSha256("pyodide/pyodide-lock.json");
  // The heap remembers the stdlib zip's directory: a build with another stdlib must not restore it.
  const stdlib = fileSha256("pyodide/python_stdlib.zip");
  // Without hashes in the manifest we cannot tell two builds apart: no snapshot then.
  return wasm && lock && stdlib ? `pyodide-${pyodideVersion}|${wasm}|${lock}|${stdlib}` : null;
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

export async function readSnapshot(key) {
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

// Returns whether the snapshot was stored.
export async function writeSnapshot(key, bytes) {
  try {
    // One snapshot per origin: the new build's replaces any older one.
    await snapshotTransaction("readwrite", (store) => {
      store.clear();
      return store.put(bytes, key);
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
