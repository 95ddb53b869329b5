// wasmvision: private image classification in the browser. This is the one public entry point:
//
//   import * as wasmvision from "./wasmvision.mjs";
//   const clf = await wasmvision.load({ model: "mobilenet_v2-int8", onProgress: (p) => {} });
//   const r = await clf.classify(img, { topK: 5 });   // {top: [{index, label, probability}], timings_ms, model}
//   const v = await clf.embed(img);                   // Float32Array
//   const both = await clf.classify(img, { embedding: true }); // result plus .embedding, from one pass
//   const custom = await clf.train({ cat: [a, b], dog: [c, d] }); // a head on the embeddings: your own labels
//   await custom.classify(img);  const file = await custom.save();  // a Blob (.wvh)
//   const again = await wasmvision.load({ head: file });
//   await clf.dispose();
//
// Python (Pyodide) and numpy run in a Web Worker (worker.js beside this file); images are decoded in the browser and
// never leave the device. Classifiers loaded from the same site share one worker; load({workers: 2}) spreads one
// classifier's calls over two (each boots its own Python and holds its own copy of the model). Types: wasmvision.d.ts.
// Every argument is checked here, once, before anything is sent: module/inputs.js (images, models, labels), the
// options below; the worker pool is module/pool.js.

import { ENGINES, ERROR_KINDS, WasmvisionError, argumentError, describe } from "./module/errors.js";
import { train as trainHead, newKey } from "./module/heads.js";
import { headSource, modelSource, pageUrl, readLabels, toMessage } from "./module/inputs.js";
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

let firstSlot; // (classifier) -> its first worker's slot, once checked not disposed: for CustomClassifier.save

class Classifier {
  static {
    firstSlot = (clf) => {
      clf.#check();
      return clf.#slots[0];
    };
  }

  #slots; // [{rt, key, head?}]: one per worker, the model opened in each (and a custom head's key)
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
        const { rt, key, head } = this.#pick();
        return await rt.call(type, { input: message, model: key, head, engine: this.#engine, ...payload }, transfer);
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
    const classes = this.labels?.length ?? this.model.classes; // a custom head ranks its own labels
    checkInteger("topK", topK, classes, classes || "the number of classes");
    if (typeof embedding !== "boolean") {
      throw argumentError(`embedding must be true or false; got ${describe(embedding)}.`);
    }
    if (embedding && this.labels) throw argumentError("embedding: true is for the base model; call embed() instead.");
    return this.#each(input, "classify", { topK, embedding });
  }

  async embed(input) {
    this.#check();
    const results = await this.#each(input, "embed", {});
    return Array.isArray(results) ? results.map((r) => r.embedding) : results.embedding;
  }

  // examples: {label: [images…]} (every image kind classify() takes). A CustomClassifier with those labels, trained
  // in the first worker and opened in the others.
  async train(examples, options) {
    this.#check();
    const { onProgress, name } = checkOptions(options);
    const [first, ...others] = this.#slots;
    const open = (rt, key) => ({ ...rt.models.get(key)?.open, source: key, engine: this.#engine });
    const info = await trainHead(first.rt, { model: first.key, engine: this.#engine }, examples, { onProgress, name });
    const { bytes } = await first.rt.call("headSave", { head: info.key });
    const blob = new Blob([bytes], { type: "application/octet-stream" });
    const head = { key: info.key, blob };
    await Promise.all(others.map(({ rt, key }) => rt.call("open", { ...open(rt, key), head })));
    const slots = this.#slots.map(({ rt, key }) => {
      rt.users += 1;
      rt.useModel(key, open(rt, key));
      rt.useModel(info.key, { ...open(rt, key), head });
      return { rt, key, head: info.key };
    });
    return new CustomClassifier(slots, this.model, this.#engine, info);
  }

  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all(this.#slots.map(async ({ rt, key, head }) => {
      if (head) await rt.dropModel(head);
      await rt.dropModel(key);
      rt.release();
    }));
  }
}

// A base model plus a person's head: classify() ranks the head's labels; save() gives its .wvh file.
class CustomClassifier extends Classifier {
  #head;

  constructor(slots, model, engine, head) {
    super(slots, model, engine);
    this.#head = Object.freeze({ ...head, labels: Object.freeze([...head.labels]) });
    this.head = this.#head;
  }

  get labels() {
    return this.#head.labels;
  }

  // The head file (.wvh, a few kilobytes): wasmvision.load({model, head}) opens it again.
  async save() {
    const { rt } = firstSlot(this);
    const { bytes } = await rt.call("headSave", { head: this.#head.key });
    return new Blob([bytes], { type: "application/octet-stream" });
  }
}

export async function load(options) {
  const { model, name, labels: labelsOption, engine = "auto", onProgress, baseUrl, workers = 1, head: headOption } =
    checkOptions(options);
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
  const head = headOption === undefined || headOption === null ? null
    : { key: newKey("head"), blob: await headSource(headOption, base) };
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
      const { model: m, head: headInfo } = await rt.call("open", head ? { ...open, head } : open);
      rt.useModel(m.key, open);
      if (head) rt.useModel(head.key, { ...open, head });
      opened.push({ rt, key: m.key, model: m, headInfo });
    }));
    opened.sort((a, b) => rts.indexOf(a.rt) - rts.indexOf(b.rt));
    const slots = opened.map(({ rt, key }) => ({ rt, key, head: head?.key }));
    if (head) return new CustomClassifier(slots, opened[0].model, engine, opened[0].headInfo);
    return new Classifier(slots, opened[0].model, engine);
  } catch (err) {
    for (const { rt, key } of opened) {
      if (head) rt.dropModel(head.key, false);
      rt.dropModel(key, false);
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
