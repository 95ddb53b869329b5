// The heads a person taught, kept in this browser (IndexedDB): each its .wvh file as a Blob, its labels and the model
// it was trained on. Nothing is sent anywhere; exporting gives the same file to save.

const DB = "wasmvision-heads";
const STORE = "heads";

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("the browser refused to store it"));
    });
  } finally {
    db.close();
  }
}

// {name, labels, model, blob, accuracy} -> its id.
export function saveHead(record) {
  return run("readwrite", (s) => s.add({ ...record, created: Date.now() }));
}

export function listHeads() {
  return run("readonly", (s) => s.getAll()).then((all) => all ?? []);
}

export function deleteHead(id) {
  return run("readwrite", (s) => s.delete(id));
}
