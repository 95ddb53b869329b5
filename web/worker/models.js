// The model registry, the one of the page and the worker: the site's built-in models (from the manifest) and models
// a caller opens (a URL on the site or a File/Blob), loaded into Python on demand. This registry decides which stay
// loaded (least recently used released first); Python only holds what it is told to. The page's module checked
// every argument before sending it (wasmvision.mjs).

import { callPython, runtime } from "./boot.js";
import { UserError } from "./errors.js";
import { BASE, sitePath } from "./fetch.js";
import { fileSha256, manifest } from "./manifest.js";
import { modelInStoredSnapshot, offerModel, storedModelDropped, takeStoredModel } from "./nextvisit.js";
import { begin, during, end } from "./phases.js";
import { setScope, setStage } from "./progress.js";

// Models kept loaded at once. MobileNetV2 in float32 is ~14 MB of weights plus its prepared buffers, so three fit
// comfortably in the Wasm heap while switching between a handful of models stays instant.
export const MAX_LOADED = 3;

const models = new Map(); // key -> {key, name, version, file|blob, kind, builtin, loaded, engine, info}
const prefetched = new Map(); // key -> Promise<Uint8Array>: a model downloaded while Python boots
export const timings = {};

export function registerBuiltins() {
  for (const m of manifest.models) models.set(m.key, { ...m, kind: "wvb", loaded: false });
}

export function builtin(key) {
  const m = models.get(key);
  return m?.builtin ? m : null;
}

export function publicModel(m) {
  return {
    key: m.key, name: m.info?.name ?? m.name, title: m.title ?? m.info?.name ?? m.name, version: m.info?.version ?? m.version, builtin: m.builtin,
    loaded: m.loaded, bytes: m.info?.bytes ?? m.bytes, storage: m.info?.storage ?? m.storage,
    file: m.fileName ?? m.file ?? "", description: m.description ?? "",
    parameters: m.info?.parameters, load_ms: m.info?.load_ms, labels: m.info?.labels, classes: m.info?.classes,
    embedding: m.info?.embedding, inputShape: m.info?.input_shape,
    engine: m.info?.engine, engineNotice: m.info?.engine_notice ?? null,
  };
}

export function allModels() {
  return [...models.values()].map(publicModel);
}

async function fetchModelBytes(m) {
  if (m.blob) return new Uint8Array(await m.blob.arrayBuffer());
  const url = new URL(m.file, BASE);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`The model file ${m.file} could not be downloaded: ${err.message}`, "ModelError");
  }
  if (!response.ok) {
    throw new UserError(`The model file ${m.file} could not be downloaded (HTTP ${response.status}` +
      `${response.status === 404 ? ": missing from the site" : ""}).`, "ModelError");
  }
  return new Uint8Array(await response.arrayBuffer());
}

// Overlap a model's download with the runtime's instead of starting it once Python is up. Not when the stored
// snapshot's heap holds it loaded (then null: ensureLoaded downloads it only if that restore fails).
export function prefetch(key) {
  const m = models.get(key);
  if (!m || prefetched.has(key)) return;
  const held = runtime.snapshotStored ? modelInStoredSnapshot() : Promise.resolve(null);
  const early = held.then((stored) => (holds(stored, m) ? null :
    during("model_fetch", () => fetchModelBytes(m), { background: true })));
  early.catch(() => {}); // reported when ensureLoaded awaits it
  prefetched.set(key, early);
}

// Whether the browser matched the model's bytes against the manifest: a file of this site fetched through fetch.js,
// which gives every listed file its sha256 as integrity. Python then skips the bundle's own sha256 (the same check
// again; browser.load_model). A File/Blob, or a file the manifest does not list, is checked by Python as always.
function checkedBySri(m) {
  return !m.blob && Boolean(m.file) && Boolean(fileSha256(m.file));
}

// Classifications that arrived and wait their turn (protocol.js counts them). A model loaded while one waits skips
// its warm-up run (browser.load_model `warm_up`): the waiting request's own run warms the kernels up instead, one
// inference less before the first result, with the same results.
let inferencesWaiting = 0;

export function inferenceQueued(delta) {
  inferencesWaiting += delta;
}

// A warm-up through the page's own classify path (inference.js registers it), after Python's own few-step one, for
// a model loaded with nothing waiting for it, once the worker is idle (protocol.js), so it never delays ready or
// a photo sent right away. (key, engine) -> a promise of its stage timings (or null) that never rejects.
let warmUpHook = null;
let warmUpDue = null; // {key, engine}: loaded with nothing waiting (or adopted from a snapshot), not warmed up yet

export function setWarmUp(fn) {
  warmUpHook = fn;
}

// The idle worker's warm-up of the model loaded last with nothing waiting (once), if it is still loaded.
export async function warmUpWhenIdle() {
  const due = warmUpDue;
  warmUpDue = null;
  const m = due && models.get(due.key);
  if (!m?.loaded || m.engine !== due.engine || inferencesWaiting > 0) return;
  timings.warm_up = await during("warm_up", () => warmUpHook(due.key, due.engine));
}

function loadIntoPython(m, bytes, engine, warm) {
  // Python's few-step warm-up (~17 ms) now; the photo path's warm-up once the worker is idle (warmUpWhenIdle).
  const kwargs = { engine, checked: checkedBySri(m), warm_up: warm };
  return callPython("load_model", [m.key, bytes, m.kind, m.displayName ?? null], kwargs);
}

const recent = []; // keys of the models loaded in Python, least recently used first

function touch(key) {
  const i = recent.indexOf(key);
  if (i >= 0) recent.splice(i, 1);
  recent.push(key);
}

function forget(key) {
  const i = recent.indexOf(key);
  if (i >= 0) recent.splice(i, 1);
}

// Room for one more model: the least recently used ones leave Python's memory (loaded again when next used).
function makeRoom() {
  while (recent.length >= MAX_LOADED) {
    const key = recent.shift();
    const m = models.get(key);
    if (m) m.loaded = false;
    callPython("release_model", [key]);
  }
}

// forInference: the caller classifies as soon as the model is in (its run is the warm-up).
export async function ensureLoaded(key, engine = "auto", forInference = false) {
  const m = models.get(key);
  if (!m) throw unknownModel(key);
  adoptStoredModel();
  if (m.loaded && m.engine === engine) {
    touch(key);
    return m;
  }
  const t0 = performance.now();
  setStage("model", `Downloading the model ${m.title ?? m.name}`, m.file && !m.blob ? [m.file] : []);
  const early = prefetched.get(key);
  prefetched.delete(key);
  const bytes = await during("model_wait", async () => (await early) ?? fetchModelBytes(m));
  const t1 = performance.now();
  setStage("model-load", `Loading the model ${m.title ?? m.name}`);
  // Let the progress message out before Python blocks this thread.
  await new Promise((r) => setTimeout(r, 0));
  begin("model_load");
  if (m.loaded) {
    forget(key); // loaded with another engine: replaced
  } else {
    makeRoom();
  }
  let info;
  const warm = !(forInference || inferencesWaiting > 0);
  try {
    info = loadIntoPython(m, bytes, engine, warm);
    if (m.labels) {
      try {
        info.labels = callPython("set_labels", [m.key, JSON.stringify(m.labels)]).labels;
      } catch (err) {
        callPython("release_model", [m.key]);
        throw err;
      }
    }
  } finally {
    end("model_load");
  }
  touch(key);
  Object.assign(m, { loaded: true, engine, info, name: info.name, version: info.version });
  if (m.builtin && fileSha256(m.file)) {
    // With nothing waiting, taken once the worker is idle or before its next request (nextvisit.js), not now.
    offerModel(runtime.pyodide, { key, file: m.file, sha256: fileSha256(m.file), engine, info }, { now: !warm });
  }
  timings.model_fetch_ms = t1 - t0;
  timings.model_load_ms = performance.now() - t1;
  warmUpDue = warm && warmUpHook && info.engine === "simd" ? { key, engine } : null;
  setScope(null);
  setStage("ready", "Ready");
  return m;
}

// A model adopted from the snapshot is not read on that visit: its cached copy is still read once the page is idle
// (from a cache only, never downloaded), so that the service worker checks it, and repairs a damaged one, as on a
// visit that reads it; fetch.js checks it against the manifest too.
const CACHED_COPY_CHECK_MS = 1000;

function readCachedCopy(m) {
  fetch(new URL(m.file, BASE), { cache: "only-if-cached", mode: "same-origin" }).then((r) => r.arrayBuffer())
    .catch(() => {});
}

// Whether `stored` (the model a stored snapshot's heap holds: nextvisit.js) is the manifest's build of model `m`.
function holds(stored, m) {
  return Boolean(stored && m?.builtin && stored.key === m.key && m.file === stored.file &&
    fileSha256(m.file) === stored.sha256);
}

// A restored heap may hold a built-in model loaded: it counts as loaded while the manifest still lists that file
// with the sha256 it was loaded from; otherwise Python lets it go. Once, before the registry is first used.
function adoptStoredModel() {
  const stored = takeStoredModel();
  if (!stored) return;
  const m = models.get(stored.key);
  if (holds(stored, m)) {
    makeRoom();
    touch(m.key);
    prefetched.delete(m.key);
    Object.assign(m, { loaded: true, engine: stored.engine, info: stored.info, name: stored.info.name,
      version: stored.info.version });
    timings.model_from_snapshot = m.key;
    // Its code paths are as cold as after a load: the idle worker warms them up as it would after one.
    warmUpDue = warmUpHook && stored.info.engine === "simd" ? { key: m.key, engine: stored.engine } : null;
    setTimeout(() => readCachedCopy(m), CACHED_COPY_CHECK_MS);
  } else {
    callPython("release_model", [stored.key]);
    storedModelDropped();
  }
}

function unknownModel(key) {
  const known = [...models.values()].filter((m) => m.builtin).map((m) => m.key);
  return new UserError(`Unknown model "${key}".` + (known.length ? ` This site has: ${known.join(", ")}.` : ""),
    "ModelError");
}

function uniqueKey(base) {
  let key = base;
  for (let i = 2; models.has(key) && models.get(key).builtin; i++) key = `${base}-${i}`;
  return key;
}

function entryFor(source, name) {
  if (source instanceof Blob) {
    const fileName = source.name || name || "model.wvb";
    if (source.size === 0) throw new UserError(`The model file ${fileName} is empty (0 bytes).`, "ModelError");
    const stem = fileName.replace(/\.(wvb|onnx)$/i, "");
    return { key: uniqueKey(name || stem), name: name || stem, displayName: name || stem, version: "",
      blob: source, fileName, kind: /\.onnx$/i.test(fileName) ? "onnx" : "wvb", builtin: false, loaded: false,
      bytes: source.size };
  }
  const url = new URL(String(source), BASE);
  const file = url.origin === BASE.origin ? sitePath(url) : url.href; // another site's: fetch.js refuses it
  const stem = file.split("/").pop().replace(/\.(wvb|onnx)$/i, "");
  return { key: uniqueKey(name || stem), name: name || stem, displayName: name ?? null, version: "", file,
    kind: /\.onnx$/i.test(file) ? "onnx" : "wvb", builtin: false, loaded: false, bytes: 0 };
}

// source: a model key, a URL on this site (contains "/" or ends in .wvb/.onnx), or a File/Blob.
// labels: class names for a model opened from a URL or file (the page reads a labels file into lines).
export async function openModel({ source, name, labels, engine = "auto" }) {
  if (typeof source === "string" && models.has(source)) {
    if (labels) throw new UserError(`The built-in model "${source}" has its own labels.`, "ArgumentError");
    return publicModel(await ensureLoaded(source, engine));
  }
  if (typeof source === "string" && !/[/.]/.test(source)) throw unknownModel(source);
  const m = entryFor(source, name);
  if (labels) m.labels = labels;
  const previous = models.get(m.key);
  models.set(m.key, m);
  try {
    await ensureLoaded(m.key, engine);
  } catch (err) {
    // Python's copy under this key may be gone or half-made: the previous model loads again when next used.
    if (previous) models.set(m.key, Object.assign(previous, { loaded: false }));
    else models.delete(m.key);
    setStage("ready", "Ready");
    // Name the file: the caller may be opening several.
    const file = m.fileName ?? m.file;
    if (err instanceof UserError && !err.message.includes(file)) err.message = `${file}: ${err.message}`;
    throw err;
  }
  return publicModel(m);
}

export function releaseModel(key) {
  adoptStoredModel();
  const m = models.get(key);
  if (!m) return false;
  m.loaded = false;
  forget(key);
  callPython("release_model", [key]);
  if (!m.builtin) models.delete(key);
  return true;
}

export function modelEntry(key) {
  const m = models.get(key);
  if (!m) throw unknownModel(key);
  return m;
}
