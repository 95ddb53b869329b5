// Training a custom head from the page: the caller's {label: [images…]} checked for its shape, the labels and counts
// sent first (Python judges them: an empty label, a single label, too few examples), then one image per request,
// so the page holds one converted image at a time and the worker one decoded image plus the embeddings.

import { WasmvisionError, argumentError, describe, quote } from "./errors.js";
import { toMessage } from "./inputs.js";

const IN_FLIGHT = 2; // images sent ahead: the next one decodes while Python embeds this one
let nextKey = 1;

// A key for a head or a training session, unique in this page's workers.
export function newKey(what) {
  return `${what}-${Date.now().toString(36)}-${nextKey++}`;
}

// {label: [images…]} or a Map -> [{label, images}]. Only the shape is checked here.
export function examplesOf(examples) {
  const plain = examples !== null && typeof examples === "object" && !Array.isArray(examples) && !(examples instanceof Map);
  if (!plain && !(examples instanceof Map)) {
    throw argumentError(`train() takes an object mapping each label to an array of images; got ${describe(examples)}.`);
  }
  const entries = examples instanceof Map ? [...examples] : Object.entries(examples);
  return entries.map(([label, images]) => {
    if (typeof label !== "string") throw argumentError(`A label must be a string; got ${describe(label)}.`);
    if (!Array.isArray(images)) {
      throw argumentError(`The examples of ${quote(label)} must be an array of images; got ${describe(images)}.`);
    }
    return { label, images };
  });
}

// Trains on slot `rt` with the model `model`: resolves to the head's info ({key, labels, accuracy, examples, ...}).
export async function train(rt, { model, engine }, examples, { onProgress, name = "custom" } = {}) {
  const groups = examplesOf(examples);
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw argumentError(`onProgress must be a function; got ${describe(onProgress)}.`);
  }
  if (typeof name !== "string" || !name.trim()) throw argumentError(`name must be a non-empty string; got ${describe(name)}.`);
  const report = (p) => {
    try {
      onProgress?.(p);
    } catch (err) {
      console.error("wasmvision: onProgress threw:", err);
    }
  };
  const session = newKey("train");
  const counts = groups.map((g) => g.images.length);
  const total = counts.reduce((a, b) => a + b, 0);
  await rt.call("trainBegin", { session, model, engine, labels: groups.map((g) => g.label), counts });
  let done = 0;
  try {
    const sent = [];
    for (const [index, group] of groups.entries()) {
      for (const [i, image] of group.images.entries()) {
        const where = `Example ${i + 1} of ${quote(group.label)}`;
        const [message, transfer] = await toMessage(image).catch((err) => { throw named(err, where); });
        const added = rt.call("trainAdd", { session, label: index, input: message, model, engine }, transfer)
          .then(() => report({ stage: "embed", loaded: ++done, total, label: `Embedding ${done} of ${total}` }),
            (err) => { throw named(err, where); });
        added.catch(() => {}); // awaited below; a failure meanwhile must not be reported as unhandled
        sent.push(added);
        if (sent.length >= IN_FLIGHT) await sent.shift();
      }
    }
    await Promise.all(sent);
    report({ stage: "fit", loaded: total, total, label: "Fitting the head" });
    const { head } = await rt.call("trainFinish", { session, head: newKey("head"), name, model, engine });
    report({ stage: "ready", loaded: total, total, label: "Ready" });
    return head;
  } catch (err) {
    rt.call("trainCancel", { session }).catch(() => {});
    throw err;
  }
}

function named(err, where) {
  const kind = err instanceof WasmvisionError ? err.kind : "InternalError";
  return new WasmvisionError(kind, `${where}: ${err.message}`);
}
