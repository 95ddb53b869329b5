// classify and embed: decode the input, make sure the model is loaded, call Python, assemble the result. The page's
// module checked the arguments (topK, engine) before sending them; Python checks them again (Classifier.classify).

import { callPython, runtime } from "./boot.js";
import { decodeInput } from "./decode.js";
import { headEntry } from "./heads.js";
import { ensureLoaded, modelEntry } from "./models.js";
import { UserError } from "./errors.js";
import { during } from "./phases.js";

let classified = false;

// Python's list of numbers -> a Float32Array, the one conversion on the embedding's way out: a transferable buffer
// (protocol.js), so the page gets it without another copy.
function vector(list) {
  return Float32Array.from(list);
}

// classify, plus the embedding when `embedding` is true (one pass of the network: browser.classify_embed_rgba);
// with `head` (a custom head's key), the head's labels (browser.head_classify_rgba).
export function classify(request) {
  if (classified) return classifyOnce(request);
  classified = true;
  return during("first_classify", () => classifyOnce(request));
}

async function classifyOnce({ input, topK = 5, model, engine = "auto", embedding = false, head = null }) {
  const t0 = performance.now();
  const m = modelEntry(model);
  if (head) headEntry(head);
  if (input?.kind === "embedding") return classifyEmbedding(input.vector, { topK, m, engine, head, t0 });
  const image = await decodeInput(input, runtime.maxPixels);
  const decodeMs = performance.now() - t0;
  await ensureLoaded(m.key, engine, true);
  const pixels = [image.pixels, image.width, image.height, topK];
  const result = head ? callPython("head_classify_rgba", [head, m.key, ...pixels])
    : callPython(embedding ? "classify_embed_rgba" : "classify_rgba", [m.key, ...pixels]);
  if (embedding) result.embedding = vector(result.embedding);
  const t = result.timings_ms || {};
  result.timings_ms = {
    decode: decodeMs + (t.handover ?? 0), preprocess: t.preprocess, inference: t.inference,
    postprocess: t.postprocess, total: performance.now() - t0,
  };
  result.image = { width: image.width, height: image.height, format: image.format };
  result.model = { ...result.model, key: m.key };
  return result;
}

// A kept embedding through a custom head alone (the network does not run).
async function classifyEmbedding(vector, { topK, m, engine, head, t0 }) {
  if (!head) throw new UserError("An embedding can be classified only by a custom head (train() or load({head})).", "ArgumentError");
  await ensureLoaded(m.key, engine, true);
  const result = callPython("head_classify_embedding", [head, m.key, vector, topK]);
  result.timings_ms = { decode: 0, preprocess: 0, inference: 0, postprocess: result.timings_ms.postprocess,
    total: performance.now() - t0 };
  result.model = { ...result.model, key: m.key };
  return result;
}

export async function embed({ input, model, engine = "auto" }) {
  const t0 = performance.now();
  const m = modelEntry(model);
  const image = await decodeInput(input, runtime.maxPixels);
  const decodeMs = performance.now() - t0;
  await ensureLoaded(m.key, engine, true);
  const result = callPython("embed_rgba", [m.key, image.pixels, image.width, image.height]);
  const t = result.timings_ms || {};
  return {
    embedding: vector(result.embedding), model: { ...result.model, key: m.key }, engine: result.engine,
    timings_ms: { decode: decodeMs + (t.handover ?? 0), inference: t.inference, total: performance.now() - t0 },
  };
}
