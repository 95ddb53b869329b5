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
// Every argument is checked here, once, before anything is sent: module/inputs.js (images, models, labels), the
// options below; the worker pool is module/pool.js.

import { ENGINES, ERROR_KINDS, WasmvisionError, argumentError, describe } from "./module/errors.js";
import { modelSource, pageUrl, readLabels, toMessage } from "./module/inputs.js";
import { acquire } from "./module/pool.js";

export { ENGINES, ERROR_KINDS, WasmvisionError };

const DEFAULT_BASE = new URL("./", import.meta.url);
// How worker.js runs. The site's build defines WASMVISION_WORKER_TYPE as "classic" (esbuild --define) when it ships
// the worker as one script: a classic worker loads Pyodide's runtime script with importScripts, whose compiled code
// V8 keeps across visits (a module's import() of it compiled it again on every visit). Unbuilt sources: a module.
const WORKER_TYPE = typeof WASMVISION_WORKER_TYPE === "string" ? WASMVISION_WORKER_TYPE : "module";
const MAX_WORKERS = 4;

function siteBase(baseUrl) {
  const url = new URL(baseUrl ?? DEFAULT_BASE, pageUrl());
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

function checkOptions(options) {
  if (options !== undefined && (options === null || typeof options !== "object" || Array.isArray(options))) {
    throw argumentError(`options must be an object; got ${describe(options)}.`);
  }
  return options ?? {};
}

function checkInteger(name, value, max, maxText = max) {
  if (!Number.isInteger(value) || value < 1 || (max && value > max)) {
    throw argumentError(`${name} must be an integer from 1 to ${maxText}; got ${describe(value)}.`);
  }
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

  // One input, or an array of them (a hole is an input that is missing, not skipped).
  async #each(inputs, type, payload) {
    const one = async (input) => {
      const [message, transfer] = await toMessage(input);
      try {
        this.#check(); // disposed while the input was converted
        const { rt, key } = this.#pick();
        return await rt.call(type, { input: message, model: key, engine: this.#engine, ...payload }, transfer);
      } catch (err) {
        for (const bitmap of transfer) bitmap.close(); // not sent: its pixels are freed now, not at collection
        throw err;
      }
    };
    if (!Array.isArray(inputs)) return one(inputs);
    // Sent together so decoding overlaps Python's work on the previous one (and fills every worker).
    return Promise.all(Array.from(inputs, (input, i) => one(input).catch((err) => {
      const kind = err instanceof WasmvisionError ? err.kind : "InternalError";
      throw new WasmvisionError(kind, `Image ${i + 1} of ${inputs.length}: ${err.message}`, { index: i });
    })));
  }

  async classify(input, options) {
    this.#check();
    const { topK = 5, embedding = false } = checkOptions(options);
    const classes = this.model.classes;
    checkInteger("topK", topK, classes, classes || "the number of classes");
    if (typeof embedding !== "boolean") {
      throw argumentError(`embedding must be true or false; got ${describe(embedding)}.`);
    }
    return this.#each(input, "classify", { topK, embedding });
  }

  async embed(input) {
    this.#check();
    const results = await this.#each(input, "embed", {});
    return Array.isArray(results) ? results.map((r) => r.embedding) : results.embedding;
  }

  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all(this.#slots.map(async ({ rt, key }) => {
      await rt.dropModel(key);
      rt.release();
    }));
  }
}

export async function load(options) {
  const { model, name, labels: labelsOption, engine = "auto", onProgress, baseUrl, workers = 1 } = checkOptions(options);
  if (!ENGINES.includes(engine)) {
    throw argumentError(`engine must be one of ${ENGINES.join(", ")}; got ${describe(engine)}.`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw argumentError(`onProgress must be a function; got ${describe(onProgress)}.`);
  }
  checkInteger("workers", workers, MAX_WORKERS);
  const base = siteBase(baseUrl);
  const source = await modelSource(model, base);
  const labels = await readLabels(labelsOption);
  // Download a built-in model while Python boots; a URL or file is opened once it is up.
  const prefetch = source === undefined || typeof source === "string" && !source.includes("/") ? source : null;
  const rts = Array.from({ length: workers }, (_, slot) => acquire(base, { prefetch, slot, workerType: WORKER_TYPE }));
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
      const open = { source: chosen, name, labels, engine };
      const { model: m } = await rt.call("open", open);
      rt.useModel(m.key, open);
      opened.push({ rt, key: m.key, model: m });
    }));
    opened.sort((a, b) => rts.indexOf(a.rt) - rts.indexOf(b.rt));
    return new Classifier(opened.map(({ rt, key }) => ({ rt, key })), opened[0].model, engine);
  } catch (err) {
    for (const { rt, key } of opened) rt.dropModel(key, false);
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
