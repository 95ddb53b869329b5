// classify and embed: decode the input, make sure the model is loaded, call Python, assemble the result. The page's
// module checked the arguments (topK, engine) before sending them; Python checks them again (Classifier.classify).

import { callPython, runtime } from "./boot.js";
import { copyFrame, decodeInput, syntheticImage } from "./decode.js";
import { headEntry } from "./heads.js";
import { ensureLoaded, modelEntry, setWarmUp } from "./models.js";
import { UserError } from "./errors.js";
import { during } from "./phases.js";

let classified = false;

// Decoding ahead (protocol.js asks): while Python works on one photo, the browser's decoder (on its own thread) reads
// the next one. At most AHEAD decoded images wait here: the one about to run and the next.
const AHEAD = 2;
const ahead = new Map(); // a request's input -> the promise of its decoded image

export function decodeAhead(input) {
  if (!input || ahead.has(input) || ahead.size >= AHEAD || input.kind === "embedding") return;
  const decoded = decodeInput(input, runtime.maxPixels, { frames: true });
  decoded.catch(() => {}); // the request that owns it reports the error
  ahead.set(input, decoded);
}

// A request that ended without using its decoded image (it failed before its decode was needed) closes it.
export function dropAhead(input) {
  const decoded = ahead.get(input);
  if (!decoded) return;
  ahead.delete(input);
  decoded.then((image) => image.frame?.close(), () => {});
}

function decodedInput(input) {
  const decoded = ahead.get(input);
  ahead.delete(input);
  return decoded ?? decodeInput(input, runtime.maxPixels, { frames: true });
}

// The embedding Python kept (browser_pixels.take_embedding) -> a Float32Array: one copy out of the Wasm heap, into a
// transferable buffer (protocol.js), so the page gets it without another copy.
function takeEmbedding() {
  const array = runtime.browser.take_embedding();
  let view = null;
  try {
    view = array.getBuffer("f32");
    return view.data.slice();
  } finally {
    view?.release();
    array.destroy();
  }
}

// A decoded image -> what Python's entry points take as `rgba`: a VideoFrame is copied once, into a numpy array on the
// Wasm heap (browser_pixels.pixel_buffer); JS pixels go as they are (Python copies them in once). release() after.
async function pythonPixels(image) {
  if (!image.frame) return { rgba: image.pixels, release() {} };
  let array = null;
  let view = null;
  try {
    array = runtime.browser.pixel_buffer(image.width, image.height);
    view = array.getBuffer("u8");
    await copyFrame(image.frame, view.data);
  } catch (err) {
    array?.destroy();
    throw err;
  } finally {
    view?.release();
    image.frame.close();
  }
  return { rgba: array, release: () => array.destroy() };
}

// Decodes the input and makes sure the model is loaded, then calls Python with the pixels: call(rgba, image) -> its
// reply. Returns [reply, decode ms (the decoding plus a frame's copy into the heap), image].
async function decodedCall(input, m, engine, call) {
  const t0 = performance.now();
  const image = await decodedInput(input);
  const decodeMs = performance.now() - t0;
  try {
    await ensureLoaded(m.key, engine, true);
  } catch (err) {
    image.frame?.close();
    throw err;
  }
  const tCopy = performance.now();
  const pixels = await pythonPixels(image);
  const copyMs = performance.now() - tCopy;
  try {
    return [call(pixels.rgba, image), decodeMs + copyMs, image];
  } finally {
    pixels.release();
  }
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
  const [result, decodeMs, image] = await decodedCall(input, m, engine, (rgba, { width, height }) => {
    const pixels = [rgba, width, height, topK];
    if (head) return callPython("head_classify_rgba", [head, m.key, ...pixels]);
    if (embedding) return callPython("classify_embed_rgba", [m.key, ...pixels], { binary: true });
    return callPython("classify_rgba", [m.key, ...pixels]);
  });
  if (embedding) result.embedding = takeEmbedding();
  const t = result.timings_ms || {};
  result.timings_ms = {
    decode: decodeMs + (t.handover ?? 0), preprocess: t.preprocess, inference: t.inference,
    postprocess: t.postprocess, total: performance.now() - t0,
  };
  result.image = { width: image.width, height: image.height, format: image.format };
  result.model = { ...result.model, key: m.key };
  return result;
}

// The first photo's path once, on a synthetic photo, after a model's load (models.js, when nothing waits for it):
// decode, the pixels' handover, the network, the result. V8 then compiles and re-optimizes what a photo runs before
// the first real one, not during it (docs/perf.md, "The first photo"). Never fails: a warm-up that cannot run
// leaves the first photo as it was.
// Returns its stage timings (ms; `photo`: drawing and encoding the image), or null when it could not run.
async function warmUp(key, engine) {
  try {
    const t0 = performance.now();
    const blob = await syntheticImage(320, 240, "image/jpeg"); // photo-sized (resized down) and a photo's format
    const photo = performance.now() - t0;
    const result = await classifyOnce({ input: { kind: "blob", blob }, topK: 5, model: key, engine });
    return { photo, ...result.timings_ms };
  } catch (err) {
    console.warn("wasmvision: warm-up skipped:", err.message);
    return null;
  }
}

setWarmUp(warmUp);

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
  const [result, decodeMs] = await decodedCall(input, m, engine, (rgba, { width, height }) =>
    callPython("embed_rgba", [m.key, rgba, width, height], { binary: true }));
  const t = result.timings_ms || {};
  return {
    embedding: takeEmbedding(), model: { ...result.model, key: m.key }, engine: result.engine,
    timings_ms: { decode: decodeMs + (t.handover ?? 0), inference: t.inference, total: performance.now() - t0 },
  };
}
