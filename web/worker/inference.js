// classify and embed: decode the input, make sure the model is loaded, call Python, assemble the result.

import { callPython, runtime } from "./boot.js";
import { decodeInput } from "./decode.js";
import { UserError } from "./errors.js";
import { ensureLoaded, markUnloaded, modelEntry } from "./models.js";
import { during } from "./phases.js";

function checkTopK(topK, classes) {
  const ok = Number.isInteger(topK) && topK >= 1 && (!classes || topK <= classes);
  if (!ok) {
    throw new UserError(`topK must be an integer from 1 to ${classes || "the number of classes"}; ` +
      `got ${typeof topK === "string" ? JSON.stringify(topK) : String(topK)}.`, "ArgumentError");
  }
}

// Calls Python with the model loaded, loading it again once if Python's cache evicted it meanwhile.
async function withModel(key, engine, fn) {
  await ensureLoaded(key, engine, true);
  try {
    return fn();
  } catch (err) {
    if (err.pythonKind !== "ModelNotLoaded") throw err;
    markUnloaded(key);
    await ensureLoaded(key, engine, true);
    return fn();
  }
}

let classified = false;

// classify, plus the embedding when `embedding` is true (one pass of the network: browser.classify_embed_rgba).
export function classify(request) {
  if (classified) return classifyOnce(request);
  classified = true;
  return during("first_classify", () => classifyOnce(request));
}

async function classifyOnce({ input, topK = 5, model, engine = "auto", embedding = false }) {
  const t0 = performance.now();
  const m = modelEntry(model);
  if (m.info) checkTopK(topK, m.info.classes);
  else if (!Number.isInteger(topK) || topK < 1) checkTopK(topK, 0);
  const image = await decodeInput(input, runtime.maxPixels);
  const decodeMs = performance.now() - t0;
  await ensureLoaded(m.key, engine, true);
  checkTopK(topK, m.info.classes);
  const entry = embedding ? "classify_embed_rgba" : "classify_rgba";
  const result = await withModel(m.key, engine,
    () => callPython(entry, [m.key, image.pixels, image.width, image.height, topK]));
  if (embedding) result.embedding = Float32Array.from(result.embedding);
  const t = result.timings_ms || {};
  result.timings_ms = {
    decode: decodeMs + (t.handover ?? 0), preprocess: t.preprocess, inference: t.inference,
    postprocess: t.postprocess, total: performance.now() - t0,
  };
  result.image = { width: image.width, height: image.height, format: image.format };
  result.model = { ...result.model, key: m.key };
  return result;
}

export async function embed({ input, model, engine = "auto" }) {
  const t0 = performance.now();
  const m = modelEntry(model);
  const image = await decodeInput(input, runtime.maxPixels);
  const decodeMs = performance.now() - t0;
  const result = await withModel(m.key, engine,
    () => callPython("embed_rgba", [m.key, image.pixels, image.width, image.height]));
  const t = result.timings_ms || {};
  // A transferable buffer rather than a list of numbers: the page gets a Float32Array without another copy.
  const vector = Float32Array.from(result.embedding);
  return {
    embedding: vector, model: { ...result.model, key: m.key }, engine: result.engine,
    timings_ms: { decode: decodeMs + (t.handover ?? 0), inference: t.inference, total: performance.now() - t0 },
  };
}
