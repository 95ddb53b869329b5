// wasmvision: private image classification in the browser. This is the one public entry point:
//
//   import * as wasmvision from "./wasmvision.mjs";
//   const clf = await wasmvision.load({ model: "mobilenet_v2-int8", onProgress: (p) => {} });
//   const r = await clf.classify(img, { topK: 5 });   // {top: [{index, label, probability}], timings_ms, model}
//   const v = await clf.embed(img);                   // Float32Array
//   const both = await clf.classify(img, { embedding: true }); // result plus .embedding, from one pass
//   await clf.dispose();
//
// Python (Pyodide) and numpy run in a Web Worker (worker.js beside this file); images are decoded in the browser and
// never leave the device. Classifiers loaded from the same site share one worker; load({workers: 2}) spreads one
// classifier's calls over two (each boots its own Python and holds its own copy of the model). Types: wasmvision.d.ts.

const DEFAULT_BASE = new URL("./", import.meta.url);
// How worker.js runs. The site's build defines WASMVISION_WORKER_TYPE as "classic" (esbuild --define) when it ships
// the worker as one script: a classic worker loads Pyodide's runtime script with importScripts, whose compiled code
// V8 keeps across visits (a module's import() of it compiled it again on every visit). Unbuilt sources: a module.
const WORKER_TYPE = typeof WASMVISION_WORKER_TYPE === "string" ? WASMVISION_WORKER_TYPE : "module";
const ENGINES = ["auto", "numpy", "simd"];
const MAX_WORKERS = 4;

export class WasmvisionError extends Error {
  constructor(kind, message, extra = {}) {
    super(message);
    this.name = "WasmvisionError";
    this.kind = kind;
    Object.assign(this, extra);
  }
}

function fromPayload(error, prefix = "") {
  if (error?.stack) console.error(error.stack);
  return new WasmvisionError(error?.kind || "InternalError", prefix + (error?.message || "unknown error"));
}

function has(name) {
  return typeof globalThis[name] === "function";
}

function is(value, name) {
  return has(name) && value instanceof globalThis[name];
}

function pageUrl() {
  return typeof document !== "undefined" ? document.baseURI : self.location.href;
}

function siteBase(baseUrl) {
  const url = new URL(baseUrl ?? DEFAULT_BASE, pageUrl());
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

// ------------------------------------------------------------------------------------------ the worker

const runtimes = new Map(); // site base href -> Runtime

// Whether this site's worker stored a memory snapshot on an earlier visit (true / false; null: no localStorage
// here). Only a hint for the worker's download order (worker/boot.js): the worker reads the snapshot itself.
const STORED_KEY = "wasmvision-snapshot-sites";

// The sites with a stored snapshot, or null where there is no localStorage (a worker, a sandboxed frame): the
// worker then waits for its snapshot read's answer.
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

class Runtime {
  constructor(base, prefetch) {
    this.base = base;
    this.pending = new Map();
    this.listeners = new Set();
    this.users = 0;
    this.keyUsers = new Map();
    this.nextId = 1;
    this.failure = null;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.opened = new Map(); // model key -> {source, name, engine}: what a replacement worker opens again
    this.restarts = 0;
    this.start(prefetch);
  }

  start(prefetch) {
    this.worker = new Worker(new URL("worker.js", this.base), { type: WORKER_TYPE });
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
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new WasmvisionError("ResourceError", "The classifier was restarted: try again."));
    }
    const keys = [...this.opened.keys()].sort((a, b) => (b === model) - (a === model));
    const first = this.opened.get(keys[0])?.source;
    this.start(typeof first === "string" && !first.includes("/") ? first : null);
    for (const key of keys) {
      this.call("open", this.opened.get(key)).catch((err) => {
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
      rememberSnapshot(this.base, ["made", "restored"].includes(data.timings?.snapshot));
      this.resolveReady(data);
    } else if (data.type === "fatal") {
      this.fail(data.error);
    } else if (data.type === "replace") {
      this.replace(data);
    }
  }

  // Nothing will answer the requests in flight: fail them rather than leave callers waiting forever.
  fail(error) {
    this.failure = fromPayload(error);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(fromPayload(error));
    }
    this.rejectReady(this.failure);
    this.close();
  }

  call(type, payload = {}, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  close() {
    if (runtimes.get(this.key) === this) runtimes.delete(this.key);
    this.worker.terminate();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new WasmvisionError("DisposedError", "The classifier was disposed."));
    }
  }

  release() {
    this.users -= 1;
    if (this.users === 0) this.close();
  }
}

// Slot 0 is the site's shared worker; slots 1.. are the extra workers of load({workers}).
function runtimeKey(base, slot) {
  return slot ? `${base.href}#${slot}` : base.href;
}

function acquire(base, prefetch, slot = 0) {
  const key = runtimeKey(base, slot);
  let rt = runtimes.get(key);
  if (!rt) {
    rt = new Runtime(base, prefetch);
    rt.key = key;
    runtimes.set(key, rt);
  }
  rt.users += 1;
  return rt;
}

// ------------------------------------------------------------------------------------------ inputs

const BITMAP_OPTIONS = { premultiplyAlpha: "none", colorSpaceConversion: "none" };

async function bitmapOf(source, what) {
  try {
    return await createImageBitmap(source, BITMAP_OPTIONS);
  } catch (err) {
    throw new WasmvisionError("ImageError", `${what} could not be read as an image (${err.name}).`);
  }
}

function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a nested array";
  if (typeof value !== "object") return `a ${typeof value}`;
  return value.constructor?.name ? `a ${value.constructor.name}` : "an object";
}

// An input -> [message for the worker, buffers to transfer]. Page-only objects (elements) become ImageBitmaps here;
// a URL is resolved against the page, as an <img src> would be.
async function toMessage(input) {
  if (is(input, "Blob")) return [{ kind: "blob", blob: input }, []];
  if (typeof input === "string" || is(input, "URL")) {
    let url;
    try {
      url = new URL(String(input), pageUrl());
    } catch {
      throw new WasmvisionError("ImageError", `Not a URL: ${JSON.stringify(String(input))}.`);
    }
    return [{ kind: "url", url: url.href }, []];
  }
  if (is(input, "ImageData")) return [{ kind: "imagedata", image: input }, []];
  if (is(input, "ImageBitmap")) {
    if (!input.width || !input.height) {
      throw new WasmvisionError("ImageError", "The ImageBitmap has no pixels (it is closed, or 0 × 0).");
    }
    return [{ kind: "bitmap", bitmap: input }, []]; // copied, so the caller's bitmap stays usable
  }
  let bitmap;
  if (is(input, "HTMLImageElement")) {
    if (!input.complete) await input.decode().catch(() => {});
    if (!input.naturalWidth) {
      const src = input.currentSrc || input.src;
      throw new WasmvisionError("ImageError",
        `The <img>${src ? ` ${src.slice(0, 200)}` : ""} has no picture: it has not loaded, or it is broken.`);
    }
    bitmap = await bitmapOf(input, "The <img>");
  } else if (is(input, "HTMLVideoElement")) {
    if (input.readyState < 2 || !input.videoWidth) {
      throw new WasmvisionError("ImageError", "The <video> has no frame to show yet; wait for its loadeddata event.");
    }
    bitmap = await bitmapOf(input, "The <video> frame");
  } else if (is(input, "HTMLCanvasElement") || is(input, "OffscreenCanvas")) {
    if (!input.width || !input.height) {
      throw new WasmvisionError("ImageError", `The canvas is empty (${input.width} × ${input.height} pixels).`);
    }
    bitmap = await bitmapOf(input, "The canvas");
  } else if (is(input, "VideoFrame") || is(input, "SVGImageElement")) {
    bitmap = await bitmapOf(input, "The image");
  } else {
    throw new WasmvisionError("ImageError", "Expected an image: a File/Blob, <img>, <canvas>, OffscreenCanvas, " +
      `ImageBitmap, ImageData, <video> or a URL on this site; got ${describe(input)}.`);
  }
  return [{ kind: "bitmap", bitmap }, [bitmap]];
}

// ------------------------------------------------------------------------------------------ the classifier

function checkOptions(options) {
  if (options !== undefined && (options === null || typeof options !== "object" || Array.isArray(options))) {
    throw new WasmvisionError("ArgumentError", `options must be an object; got ${describe(options)}.`);
  }
  return options ?? {};
}

class Classifier {
  #slots; // [{rt, key}]: one per worker, the model opened in each
  #engine;
  #disposed = false;

  constructor(slots, model, engine) {
    this.#slots = slots;
    this.#engine = engine;
    this.model = Object.freeze({ ...model });
  }

  // The engine that runs ("numpy" | "simd"), when the runtime says.
  get engine() {
    return this.model.engine ?? null;
  }

  get workers() {
    return this.#slots.length;
  }

  get runtime() {
    const rt = this.#slots[0].rt;
    const info = rt.info ?? {};
    return { pyodideVersion: info.pyodideVersion, maxPixels: info.maxPixels, base: rt.base.href };
  }

  // Timings of the runtime's boot and model loads, and the bytes this page has downloaded so far.
  async stats() {
    this.#check();
    return this.#slots[0].rt.call("stats");
  }

  #check() {
    if (this.#disposed) throw new WasmvisionError("DisposedError", "This classifier was disposed; load() another.");
  }

  // The worker with the fewest requests waiting.
  #pick() {
    return this.#slots.reduce((a, b) => (b.rt.pending.size < a.rt.pending.size ? b : a));
  }

  async #each(inputs, fn) {
    if (!Array.isArray(inputs)) return fn(inputs);
    // Sent together so decoding overlaps Python's work on the previous one (and fills every worker).
    return Promise.all(inputs.map((input, i) => fn(input).catch((err) => {
      const kind = err instanceof WasmvisionError ? err.kind : "InternalError";
      throw new WasmvisionError(kind, `Image ${i + 1} of ${inputs.length}: ${err.message}`, { index: i });
    })));
  }

  async classify(input, options) {
    this.#check();
    const { topK = 5, embedding = false } = checkOptions(options);
    const classes = this.model.classes;
    if (!Number.isInteger(topK) || topK < 1 || (classes && topK > classes)) {
      throw new WasmvisionError("ArgumentError",
        `topK must be an integer from 1 to ${classes || "the number of classes"}; got ${JSON.stringify(topK) ?? topK}.`);
    }
    if (typeof embedding !== "boolean") {
      throw new WasmvisionError("ArgumentError", `embedding must be true or false; got ${describe(embedding)}.`);
    }
    return this.#each(input, async (one) => {
      const [message, transfer] = await toMessage(one);
      const { rt, key } = this.#pick();
      return rt.call("classify", { input: message, topK, embedding, model: key, engine: this.#engine }, transfer);
    });
  }

  async embed(input) {
    this.#check();
    return this.#each(input, async (one) => {
      const [message, transfer] = await toMessage(one);
      const { rt, key } = this.#pick();
      const r = await rt.call("embed", { input: message, model: key, engine: this.#engine }, transfer);
      return r.embedding;
    });
  }

  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all(this.#slots.map(async ({ rt, key }) => {
      const left = (rt.keyUsers.get(key) ?? 1) - 1;
      if (left > 0) rt.keyUsers.set(key, left);
      else {
        rt.keyUsers.delete(key);
        rt.opened.delete(key);
        if (rt.users > 1) await rt.call("release", { model: key }).catch(() => {});
      }
      rt.release();
    }));
  }
}

// ------------------------------------------------------------------------------------------ load

function modelSource(model) {
  if (model === undefined || model === null) return undefined;
  if (is(model, "Blob")) return model;
  if (is(model, "URL")) return model.href;
  if (typeof model === "string") {
    // A key names a built-in model; anything with a slash or a dot is a URL, relative to the page.
    return /[/.]/.test(model) ? new URL(model, pageUrl()).href : model;
  }
  throw new WasmvisionError("ArgumentError",
    `model must be a model key, a URL or a File/Blob; got ${describe(model)}.`);
}

// A labels file: one class name per line (blank lines at the end ignored); or an array of strings.
async function readLabels(labels) {
  if (labels === undefined || labels === null) return undefined;
  if (Array.isArray(labels) && labels.every((x) => typeof x === "string")) return labels;
  if (is(labels, "Blob")) {
    const lines = (await labels.text()).replace(/^\uFEFF/, "").split(/\r?\n/).map((x) => x.trim());
    while (lines.length && !lines[lines.length - 1]) lines.pop();
    if (!lines.length) throw new WasmvisionError("ModelError", "The labels file is empty.");
    return lines;
  }
  throw new WasmvisionError("ArgumentError", `labels must be an array of strings or a text file; got ${describe(labels)}.`);
}

export async function load(options) {
  const { model, name, labels: labelsOption, engine = "auto", onProgress, baseUrl, workers = 1 } = checkOptions(options);
  if (!ENGINES.includes(engine)) {
    throw new WasmvisionError("ArgumentError",
      `engine must be one of ${ENGINES.join(", ")}; got ${JSON.stringify(engine)}.`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new WasmvisionError("ArgumentError", "onProgress must be a function.");
  }
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new WasmvisionError("ArgumentError",
      `workers must be an integer from 1 to ${MAX_WORKERS}; got ${JSON.stringify(workers) ?? workers}.`);
  }
  const source = modelSource(model);
  const labels = await readLabels(labelsOption);
  const base = siteBase(baseUrl);
  // Download a built-in model while Python boots; a URL or file is opened once it is up.
  const prefetch = source === undefined || typeof source === "string" && !source.includes("/") ? source : null;
  const rts = Array.from({ length: workers }, (_, slot) => acquire(base, prefetch, slot));
  const listener = onProgress && ((p) => {
    try {
      onProgress({ stage: p.stage, loaded: p.loaded, total: p.total, label: p.label });
    } catch (err) {
      console.error("wasmvision: onProgress threw:", err);
    }
  });
  if (listener) {
    rts[0].listeners.add(listener); // the extra workers load the same files, mostly from the HTTP cache
    if (rts[0].lastProgress) listener(rts[0].lastProgress);
  }
  const opened = [];
  try {
    await Promise.all(rts.map(async (rt) => {
      const info = await rt.ready;
      const chosen = source ?? info.defaultModel;
      if (!chosen) {
        throw new WasmvisionError("ModelError", "This site lists no models; pass model: a URL or a File.");
      }
      const { model: m } = await rt.call("open", { source: chosen, name, labels, engine });
      rt.keyUsers.set(m.key, (rt.keyUsers.get(m.key) ?? 0) + 1);
      rt.opened.set(m.key, { source: chosen, name, labels, engine });
      opened.push({ rt, key: m.key, model: m });
    }));
    opened.sort((a, b) => rts.indexOf(a.rt) - rts.indexOf(b.rt));
    return new Classifier(opened.map(({ rt, key }) => ({ rt, key })), opened[0].model, engine);
  } catch (err) {
    for (const { rt, key } of opened) {
      const left = (rt.keyUsers.get(key) ?? 1) - 1;
      if (left > 0) rt.keyUsers.set(key, left);
      else rt.keyUsers.delete(key);
    }
    for (const rt of rts) rt.release();
    throw err instanceof WasmvisionError ? err : new WasmvisionError("InternalError", err.message);
  } finally {
    if (listener) rts[0].listeners.delete(listener);
  }
}

// The site's built-in models, from its manifest.json (no runtime needed): [{key, name, version, storage, bytes,
// default, description, file}].
export async function listModels(options) {
  const { baseUrl } = checkOptions(options);
  const url = new URL("manifest.json", siteBase(baseUrl));
  let manifest;
  try {
    const response = await fetch(url, { cache: "no-cache" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    manifest = await response.json();
  } catch (err) {
    throw new WasmvisionError("SetupError", `The site's manifest.json could not be read (${err.message}).`);
  }
  return (manifest.models || []).map((m) => ({
    key: m.key, name: m.name, title: m.title ?? m.name, version: m.version ?? "", storage: m.storage ?? "", bytes: m.bytes ?? 0,
    default: Boolean(m.default), description: m.description ?? "", file: m.file,
  }));
}
