// The memory snapshot made at build time (buildtools/snapshot.py) and shipped to first visitors: numpy,
// wasmvision.browser and the kernel library already imported. It ships as a delta against the heap a freshly created
// module has (side modules loaded, nothing run): the changed runs of bytes, applied in place by the Pyodide module
// (pyodide-0.27.7.js). Its manifest entry: { file, key, bytes, sha256 }; the file is checked against that sha256
// like every other one (fetch.js fetchBytes).
// The file: [magic u32 "wvd1", meta length u32, meta JSON {key, libs, handles, total, heap, header, runs, data},
// zero padding to 4, Pyodide's snapshot header (header bytes), padding to 4, runs (u32 offset, u32 length) x runs,
// the runs' bytes (data bytes)].

import { siteFromZip } from "./dylibs.js";
import { checkRuns } from "./heapruns.js";
import { BASE, fetchBytes, sha256Hex } from "./fetch.js";
import { fileSha256, shippedSnapshotFiles } from "./manifest.js";

const MAGIC = 0x31647677; // "wvd1", little-endian
const pad4 = (n) => Math.ceil(n / 4) * 4;

let download = null;
let site = null;

const bytesOf = (file) => fetchBytes(new URL(file, BASE)); // checked against the manifest's sha256

// Starts the download (once); resolves to the file's bytes, or rejects (a wrong hash, a failed request).
export function fetchShipped() {
  download ??= bytesOf(shippedSnapshotFiles().file);
  download.catch(() => {}); // awaited by the boot, which falls back and says why
  return download;
}

// What a restore from it writes to site-packages, and its side-module plan: { plan, files } (dylibs.js), from the
// site-packages zip the build made for it (the modules the heap holds left out), not from the wheels.
export function shippedSite() {
  site ??= bytesOf(shippedSnapshotFiles().packages).then(siteFromZip);
  site.catch(() => {});
  return site;
}

// A visitor's stored copy of the delta (any script of the origin can write it) is the very file the manifest lists:
// hashed off the worker's thread while the module is created; the promise rejects otherwise.
export function checkedCopy(bytes) {
  const checked = sha256Hex(bytes).then((hex) => {
    if (hex !== fileSha256(shippedSnapshotFiles().file)) {
      throw new Error("the stored copy of the delta is not the manifest's");
    }
  });
  checked.catch(() => {}); // awaited by the restore
  return checked;
}

// The key under which a visitor stores its copy of the delta: its restore reads the shipped zips.
export const shippedKey = (key) => `${key}|shipped`;

// The parsed delta for a build whose snapshot key is `key`: {libs, handles, total, delta: {header, runs, data, heap}}.
// Throws on anything that does not add up (another build's file, a truncated one).
export function parseShipped(bytes, key) {
  if (bytes.byteLength < 8) throw new Error("the shipped snapshot is truncated");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new Error("the shipped snapshot is not one");
  const metaLength = view.getUint32(4, true);
  if (8 + metaLength > bytes.byteLength) throw new Error("the shipped snapshot is truncated");
  let meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + metaLength)));
  } catch {
    throw new Error("the shipped snapshot's meta is unreadable");
  }
  if (meta.key !== key) throw new Error("the shipped snapshot belongs to another build");
  const headerAt = pad4(8 + metaLength);
  const runsAt = pad4(headerAt + meta.header);
  const dataAt = runsAt + 8 * meta.runs;
  if (![meta.header, meta.runs, meta.data, meta.total, meta.heap].every(Number.isInteger) ||
      dataAt + meta.data !== bytes.byteLength || !Array.isArray(meta.libs) || typeof meta.handles !== "object") {
    throw new Error("the shipped snapshot's size does not match its meta");
  }
  const runs = new Uint32Array(bytes.buffer.slice(bytes.byteOffset + runsAt, bytes.byteOffset + dataAt));
  checkRuns(runs, meta.heap, meta.data, "the shipped snapshot");
  return {
    libs: meta.libs, handles: meta.handles, total: meta.total,
    delta: { header: bytes.subarray(headerAt, headerAt + meta.header), runs, data: bytes.subarray(dataAt),
      heap: meta.heap },
  };
}

// What the build runs before taking the shipped snapshot: the importer caches are emptied so the restored
// interpreter reads the stdlib zip and site-packages it is given, then garbage is collected.
// invalidate_caches() between the clears: with zipimporters still cached it gives each its own copy of the zip's
// directory (+1.8 MB of heap), and in 3.12 it imports importlib.metadata, which reads the directory again.
export const BEFORE_SHIPPING = [
  "import sys, gc, zipimport, importlib",
  "sys.path_importer_cache.clear()",
  "importlib.invalidate_caches()",
  "sys.path_importer_cache.clear()",
  "zipimport._zip_directory_cache.clear()",
  "gc.collect()",
].join("\n");
