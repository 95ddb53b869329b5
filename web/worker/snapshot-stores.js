// Where the memory snapshot's one file can live, best first. Each store keeps one Blob (the file snapshot.js lays
// out) and has the same four operations: usable() (the browser has what it needs), read() (the Blob or null; blocks
// no other reader), replace(blob | writeParts) (the whole new file or, on failure, the old one: never half of one),
// remove(); and may have openRead() (the file open for reads at any offset: {size, read(target, at), close()}, or
// null when it cannot be: read() then), which a restore uses to read the heap straight into Wasm memory.
// snapshot.js takes one Web Lock around every replace, so there is one writer at a time.
//
// - opfs: a file in the origin private file system, written through a writable stream (Chromium, Firefox, Safari).
// - indexeddb: one record holding a Blob, for browsers whose OPFS cannot write (WebKitGTK has no navigator.storage
//   by default and no OPFS writes with Safari's storage features on: docs/perf.md "Engines"). A Blob, not an
//   ArrayBuffer: the record is a reference to the stored bytes, so a read costs no ~41 MB structured clone. Where
//   Blobs cannot be stored (WebKit's ephemeral sessions: "Error preparing Blob/File data"), the record is the
//   file's ArrayBuffer; read() then returns that (snapshot.js reads both).

const SNAPSHOT_FILE = "wasmvision-snapshot.bin";
const DB_NAME = "wasmvision-snapshot-blob"; // not "wasmvision-snapshot": that name is the legacy record snapshot.js deletes
const DB_STORE = "snapshot";
const DB_KEY = "current";

const WRITE_TRIES = 3; // a reader's sync handle holds the file for ~30 ms: a writer that meets one tries again
const WRITE_RETRY_MS = 250;

async function fileHandle() {
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getFileHandle(SNAPSHOT_FILE);
  } catch (err) {
    if (err?.name === "NotFoundError") return null;
    throw err;
  }
}

// The file read synchronously on this (worker) thread through a read-only sync access handle, which other readers
// may hold at once: a repeat visit read 60 MB in ~30 ms this way where the Blob's read took 200-220 ms (Chromium 156,
// the worker busy with the runtime's start), and the heap's runs can go straight into Wasm memory. Null where the
// browser has no read-only handles. A writer meanwhile waits (WRITE_TRIES): close() soon.
async function openSync(handle) {
  // Browsers whose handles have no modes would open an exclusive one: not even tried there.
  const modes = "mode" in (self.FileSystemSyncAccessHandle?.prototype ?? {});
  if (typeof handle.createSyncAccessHandle !== "function" || !modes) return null;
  let access;
  try {
    access = await handle.createSyncAccessHandle({ mode: "read-only" });
  } catch {
    return null; // no such handles here, or a writer holds the file: the Blob then
  }
  if (access.mode !== "read-only") { // an exclusive handle would lock other readers and the writer out
    access.close();
    return null;
  }
  let open = true;
  return {
    size: access.getSize(),
    read(target, at) {
      if (!open) throw new Error("the snapshot file was closed");
      const n = access.read(target, { at });
      if (n !== target.byteLength) throw new Error(`the snapshot file ended after ${n} of ${target.byteLength} bytes`);
    },
    close() {
      if (open) access.close();
      open = false;
    },
  };
}

const opfs = {
  name: "opfs",
  usable: () => typeof navigator !== "undefined" && typeof navigator.storage?.getDirectory === "function" &&
    typeof globalThis.FileSystemFileHandle?.prototype?.createWritable === "function",
  async read() {
    return (await fileHandle())?.getFile() ?? null;
  },
  async openRead() {
    const handle = await fileHandle();
    return handle && openSync(handle);
  },
  // `parts`: [{position, data}] written in place, so the heap is never copied into a Blob first.
  async replace(parts, { existed }) {
    const root = await navigator.storage.getDirectory();
    let stream = null;
    try {
      const handle = await root.getFileHandle(SNAPSHOT_FILE, { create: true });
      for (let i = 1; !stream; i++) {
        try {
          stream = await handle.createWritable();
        } catch (err) {
          if (err?.name !== "NoModificationAllowedError" || i >= WRITE_TRIES) throw err;
          await new Promise((resolve) => setTimeout(resolve, WRITE_RETRY_MS));
        }
      }
      for (const { position, data } of parts) await stream.write({ type: "write", position, data });
      await stream.close(); // the whole file replaces the old one here, or nothing does
    } catch (err) {
      await stream?.abort().catch(() => {});
      if (!existed) await opfs.remove(); // the empty file just created, where writables fail
      throw err;
    }
  },
  async remove() {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(SNAPSHOT_FILE);
  },
};

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function openDb() {
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(DB_STORE);
  return request(req);
}

// Runs `fn(store)` in one transaction; resolves once it is committed (a write is then whole), rejects if aborted.
async function inTransaction(mode, fn) {
  const db = await openDb();
  try {
    const tx = db.transaction(DB_STORE, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
    const result = await request(fn(tx.objectStore(DB_STORE)));
    await done;
    return result;
  } finally {
    db.close();
  }
}

const indexeddb = {
  name: "indexeddb",
  usable: () => typeof indexedDB !== "undefined" && typeof Blob !== "undefined",
  async read() {
    const value = await inTransaction("readonly", (s) => s.get(DB_KEY));
    return value instanceof Blob || value instanceof ArrayBuffer ? value : null;
  },
  async replace(parts) {
    const end = Math.max(...parts.map((p) => p.position + p.data.byteLength));
    const pieces = [];
    let at = 0;
    for (const { position, data } of [...parts].sort((a, b) => a.position - b.position)) {
      if (position > at) pieces.push(new Uint8Array(position - at)); // the zero padding between parts
      pieces.push(data);
      at = position + data.byteLength;
    }
    const blob = new Blob(pieces);
    if (blob.size !== end) throw new Error("snapshot parts overlap");
    try {
      await inTransaction("readwrite", (s) => s.put(blob, DB_KEY)); // one put: the old record or the new, whole
    } catch {
      const buffer = await blob.arrayBuffer(); // before the transaction: an await inside one would end it
      await inTransaction("readwrite", (s) => s.put(buffer, DB_KEY));
    }
  },
  async remove() {
    await inTransaction("readwrite", (s) => s.delete(DB_KEY));
  },
};

export const STORES = [opfs, indexeddb];
