// What this worker stores for the next visit, once, ~2 s after the boot (off the first result's path): the memory
// snapshot it booted from or made (snapshot.js), or, better, a snapshot of the heap taken right after the first
// built-in model was loaded, so that a repeat visit skips the model's download wait and its load into Python
// (docs/shipped-snapshot.md). Its meta names the model ({key, file, sha256: the manifest's, engine, info}); the
// registry adopts it only while the manifest still lists that file with that sha256 (models.js).
// Taken before any photo enters the heap: inside the model's load when a request waits for it, otherwise once the
// worker is idle or at the start of its next request (protocol.js), whichever comes first.

import { begin, end } from "./phases.js";
import { dylibHandles, freshHeapBreak, takeMemorySnapshot, unplannedLibs } from "./pyodide-0.27.7.js";
import { writeSnapshot } from "./snapshot.js";

const STORE_DELAY_MS = 2000; // after boot: keep the write (14-60 MB) off the first result's path

let booted = null; // {key, libs, model}: the snapshot lineage of this worker's interpreter (null: none)
let pending = null; // {key, record}: what the timer writes
let timer = null;
let timings = {};

// The interpreter came from (or made) a snapshot stored under `key`, made with the side modules `libs`; `model`:
// the model its heap holds loaded, or null. `into`: the boot's timings (what was stored, where).
export function bootedFrom(key, libs, model = null, into = timings) {
  booted = { key, libs, model };
  timings = into;
}

let readKnown;
const read = new Promise((resolve) => {
  readKnown = resolve;
});

// The stored snapshot's record was read (null: none): a model its heap holds needs no download (models.js).
export function snapshotRead(record) {
  readKnown(record?.model ?? null);
}

// Resolves to the model the stored snapshot holds ({key, file, sha256, ...}) or null, once the snapshot was read.
export function modelInStoredSnapshot() {
  return read;
}

// The model a restored heap holds loaded (taken once: the registry adopts it or releases it), or null.
export function takeStoredModel() {
  const model = booted?.model ?? null;
  if (booted) booted.model = null;
  return model;
}

// The model a restored heap held was not adopted (the manifest lists another build of it): Python let it go, and
// a snapshot with the model loaded now may replace the stored one.
export function storedModelDropped() {
  if (booted) booted.held = false;
}

// Stores `record` under `key` after the delay, unless a snapshot with a model replaces it meanwhile. A heap is
// stored as runs past this worker's fresh heap's break (snapshot.js).
export function storeLater(key, record) {
  if (record.kind === undefined) record.fresh ??= freshHeapBreak();
  if (!pending?.record.model) pending = { key, record };
  timer ??= setTimeout(async () => {
    timer = null;
    const { key: k, record: r } = pending;
    pending = null;
    const store = await writeSnapshot(k, r);
    if (store) Object.assign(timings, { snapshot_bytes: r.bytes.byteLength, snapshot_store: store });
  }, STORE_DELAY_MS);
}

let offered = null; // {pyodide, model}: a snapshot with the model, to take before the next request or when idle

// Right after `model` ({key, file, sha256, engine, info}) was loaded into Python for the first time: the heap is
// copied for the next visit (now, or with now=false by takeOffered before anything else runs in Python), when this
// interpreter's snapshot lineage is known and its heap holds no model yet.
export function offerModel(pyodide, model, { now = true } = {}) {
  if (now) takeWithModel(pyodide, model);
  else offered = { pyodide, model };
}

// Takes the offered snapshot, if one waits: before a request runs Python, or when the worker is idle.
export function takeOffered() {
  const o = offered;
  offered = null;
  if (o) takeWithModel(o.pyodide, o.model);
}

function takeWithModel(pyodide, model) {
  if (!booted || booted.held || pending?.record.model) return;
  booted.held = true; // once per worker
  begin("snapshot_model");
  try {
    // A side module the model's load brought in (e.g. numpy's random) would not be loaded before a restore.
    const unplanned = unplannedLibs(pyodide, booted.libs);
    if (unplanned.length) throw new Error(`side modules loaded after start-up: ${unplanned.join(", ")}`);
    const bytes = takeMemorySnapshot(pyodide);
    pending = null;
    storeLater(booted.key, { bytes, libs: booted.libs, handles: dylibHandles(pyodide), model });
    timings.snapshot_model = model.key;
  } catch (err) {
    console.warn("wasmvision: no memory snapshot with the model:", err.message);
  } finally {
    end("snapshot_model");
  }
}
