// The worker pool: one Runtime per (site, slot), each a Web Worker running worker.js, shared by every classifier
// of that site. A Runtime sends requests, matches replies, reports progress, replaces a broken worker (reopening
// the models in use), and counts which classifiers use which model so the last one releases it.

import { WasmvisionError, fromPayload } from "./errors.js";

const runtimes = new Map(); // runtimeKey -> Runtime

// Whether this site's worker stored a memory snapshot on an earlier visit (true / false; null: no localStorage
// here). Only a hint for the worker's download order (worker/boot.js): the worker reads the snapshot itself.
const STORED_KEY = "wasmvision-snapshot-sites";

function storedSites() {
  try {
    return new Set(JSON.parse(localStorage.getItem(STORED_KEY) ?? "[]"));
  } catch {
    return null;
  }
}

function snapshotStored(base) {
  return storedSites()?.has(base.href) ?? null;
}

function rememberSnapshot(base, stored) {
  const sites = storedSites();
  if (!sites || stored === sites.has(base.href)) return;
  if (stored) sites.add(base.href);
  else sites.delete(base.href);
  try {
    localStorage.setItem(STORED_KEY, JSON.stringify([...sites]));
  } catch {
    // storage full or refused: only the hint is lost
  }
}

// The scripts and styles this page has loaded so far: the worker's code check reads these from the HTTP cache (the
// copies that ran) instead of asking the server again (worker/codecheck.js).
function loadedScripts() {
  try {
    return performance.getEntriesByType("resource").map((e) => e.name)
      .filter((name) => /\.(m?js|css)$/.test(new URL(name).pathname));
  } catch {
    return [];
  }
}

// Why postMessage refused a value: a picture the page may not read (a cross-origin <img>, a tainted canvas).
function unsendable(err) {
  if (err?.name === "DataCloneError") {
    return new WasmvisionError("ImageError", "The image comes from another site without permission to read its " +
      "pixels (a cross-origin <img> or a canvas it was drawn on): serve it from this site, or with CORS and " +
      "crossorigin=\"anonymous\".");
  }
  return new WasmvisionError("InternalError", `The request could not be sent to the worker (${err?.message}).`);
}

class Runtime {
  constructor(key, base, prefetch, workerType) {
    this.key = key;
    this.base = base;
    this.workerType = workerType;
    this.pending = new Map();
    this.listeners = new Set();
    this.users = 0;
    this.models = new Map(); // model key -> {open: the open request's payload, users}: reopened by a new worker
    this.nextId = 1;
    this.failure = null;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.restarts = 0;
    this.start(prefetch);
  }

  start(prefetch) {
    this.worker = new Worker(new URL("worker.js", this.base), { type: this.workerType });
    this.worker.onmessage = ({ data }) => this.receive(data);
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail({ kind: "SetupError",
        message: `The classifier stopped unexpectedly (${event.message || "worker error"}). Reload the page.` });
    };
    this.worker.postMessage({ type: "init", prefetch, restarts: this.restarts, ranOnPage: loadedScripts(),
      snapshotStored: snapshotStored(this.base) });
  }

  // The worker found its interpreter broken (out of memory, a fatal error: worker/recovery.js) and has answered the
  // failing request. A new worker replaces it, as a page reload would, and opens the models in use again (the failing
  // request's first); requests sent meanwhile wait in its queue. Terminating is what returns the Wasm heap's memory.
  replace({ reason, model }) {
    console.warn(`wasmvision: replacing the classifier's worker (${reason})`);
    this.restarts += 1;
    this.worker.terminate();
    this.rejectAll(new WasmvisionError("ResourceError", "The classifier was restarted: try again."));
    const keys = [...this.models.keys()].sort((a, b) => (b === model) - (a === model));
    const first = this.models.get(keys[0])?.open.source;
    this.start(typeof first === "string" && !first.includes("/") ? first : null);
    for (const key of keys) {
      this.call("open", this.models.get(key).open).catch((err) => {
        console.warn(`wasmvision: ${key} could not be opened again after the restart:`, err.message);
      });
    }
  }

  receive(data) {
    if (data.id !== undefined) {
      const p = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (p) data.ok ? p.resolve(data.value) : p.reject(fromPayload(data.error));
    } else if (data.type === "progress") {
      this.lastProgress = data;
      for (const fn of this.listeners) fn(data);
    } else if (data.type === "ready") {
      this.info = data;
      rememberSnapshot(this.base, ["made", "restored", "shipped"].includes(data.timings?.snapshot));
      this.resolveReady(data);
    } else if (data.type === "fatal") {
      this.fail(data.error);
    } else if (data.type === "replace") {
      this.replace(data);
    }
  }

  rejectAll(error) {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(error);
    }
  }

  // Nothing will answer the requests in flight: fail them rather than leave callers waiting forever.
  fail(error) {
    this.failure = fromPayload(error);
    this.rejectAll(this.failure);
    this.rejectReady(this.failure);
    this.close();
  }

  call(type, payload = {}, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.worker.postMessage({ id, type, ...payload }, transfer);
      } catch (err) {
        reject(unsendable(err));
        return;
      }
      this.pending.set(id, { resolve, reject });
    });
  }

  // A terminated worker answers nothing: every request, now or later, fails at once.
  close() {
    if (runtimes.get(this.key) === this) runtimes.delete(this.key);
    this.worker.terminate();
    this.failure ??= new WasmvisionError("DisposedError", "The classifier was disposed.");
    this.rejectAll(new WasmvisionError("DisposedError", "The classifier was disposed."));
  }

  // A classifier starts using `key` (opened with `open`).
  useModel(key, open) {
    const entry = this.models.get(key) ?? { open, users: 0 };
    entry.open = open;
    entry.users += 1;
    this.models.set(key, entry);
  }

  // A classifier stops using `key`: the last one asks the worker to release it (unless the worker goes too).
  async dropModel(key, release = true) {
    const entry = this.models.get(key);
    if (entry && --entry.users > 0) return;
    this.models.delete(key);
    if (release && this.users > 1) await this.call("release", { model: key }).catch(() => {});
  }

  release() {
    this.users -= 1;
    if (this.users === 0) this.close();
  }
}

// Slot 0 is the site's shared worker; slots 1.. are the extra workers of load({workers}).
export function acquire(base, { prefetch, slot = 0, workerType }) {
  const key = slot ? `${base.href}#${slot}` : base.href;
  let rt = runtimes.get(key);
  if (!rt) {
    rt = new Runtime(key, base, prefetch, workerType);
    runtimes.set(key, rt);
  }
  rt.users += 1;
  return rt;
}
