// Custom heads: a person's labels on a loaded model's embeddings. Python trains, checks and saves them
// (wasmvision.browser: train_*, head_*); this registry names the heads Python holds and releases them with their
// classifier, as models.js does for models. Training takes one image per request, so only embeddings are kept.

import { callPython, runtime } from "./boot.js";
import { decodeInput } from "./decode.js";
import { UserError } from "./errors.js";
import { ensureLoaded, modelEntry } from "./models.js";

const heads = new Map(); // head key -> {key, model: the base model's key, info}

export function isHead(key) {
  return heads.has(key);
}

export function headEntry(key) {
  const h = heads.get(key);
  if (!h) throw new UserError(`Unknown custom head "${key}": it was released.`, "ModelError");
  return h;
}

async function loadedBase(model, engine) {
  const m = modelEntry(model);
  await ensureLoaded(m.key, engine, true);
  return m.key;
}

// labels: the names in order; counts: how many images each will get (checked before any image is sent).
export async function trainBegin({ session, model, engine = "auto", labels, counts }) {
  const key = await loadedBase(model, engine);
  return callPython("train_begin", [session, key, JSON.stringify(labels), JSON.stringify(counts)]);
}

// input: an image message (decode.js), or {kind: "embedding", vector} kept from an earlier classify or embed.
export async function trainAdd({ session, label, input, model, engine = "auto" }) {
  if (input?.kind === "embedding") {
    await loadedBase(model, engine);
    return callPython("train_add_embedding", [session, label, input.vector]);
  }
  const image = await decodeInput(input, runtime.maxPixels);
  await loadedBase(model, engine);
  return callPython("train_add_rgba", [session, label, image.pixels, image.width, image.height]);
}

export async function trainFinish({ session, head, name = "custom", model, engine = "auto" }) {
  const key = await loadedBase(model, engine);
  const info = callPython("train_finish", [session, head, name]);
  heads.set(head, { key: head, model: key, info });
  return { head: info };
}

export async function trainCancel({ session }) {
  return callPython("train_cancel", [session]);
}

// A .wvh file (a Blob) on the model `model`, which must be loaded: Python refuses a head made for another model.
export async function openHead({ key, blob, model, engine = "auto" }) {
  const base = await loadedBase(model, engine);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let info;
  try {
    info = callPython("head_open", [key, base, bytes]);
  } catch (err) {
    if (blob.name && err instanceof UserError) err.message = `${blob.name}: ${err.message}`;
    throw err;
  }
  heads.set(key, { key, model: base, info });
  return info;
}

// The .wvh file's bytes (transferred to the page: protocol.js).
export async function saveHead({ head }) {
  headEntry(head);
  const text = atob(callPython("head_save", [head]).base64);
  return { bytes: Uint8Array.from(text, (c) => c.charCodeAt(0)) };
}

export function releaseHead(key) {
  if (!heads.delete(key)) return false;
  callPython("release_head", [key]);
  return true;
}
