// The message protocol between the page (wasmvision.mjs) and this worker.
// In:  {type: "init", prefetch?: key} once, then {id, type, ...} requests (handlers below).
// Out: {id, ok, value|error} replies, plus unsolicited {type: "progress" | "ready" | "fatal"} messages.
// Python runs one call at a time; requests are served in arrival order.

import { runtime, startPython } from "./boot.js";
import { errorPayload } from "./errors.js";
import { networkBytes, totalReceived } from "./fetch.js";
import { defaultModel, loadManifest, runtimeFiles, wheelFiles } from "./manifest.js";
import { classify, embed } from "./inference.js";
import { allModels, builtin, openModel, prefetch, registerBuiltins, releaseModel, timings as modelTimings }
  from "./models.js";
import { during, phaseReport } from "./phases.js";
import { setScope } from "./progress.js";
import { BASE } from "./fetch.js";

function stats() {
  return { timings: { ...runtime.timings, ...modelTimings }, bytesReceived: totalReceived(),
    networkBytes: networkBytes(), phases: phaseReport(BASE.href) };
}

// Boots Python; meanwhile downloads the model the page will ask for first (`prefetch`: a key, or the default).
async function boot({ prefetch: first } = {}) {
  const t0 = performance.now();
  await during("manifest", loadManifest);
  registerBuiltins();
  const initial = first === null ? null : builtin(first) ?? (first === undefined ? defaultModel() : null);
  setScope([...runtimeFiles(), ...wheelFiles(["numpy", "wasmvision"]), ...(initial ? [initial.file] : [])]);
  if (initial) prefetch(initial.key);
  await during("python", startPython);
  runtime.timings.boot_ms = performance.now() - t0;
  self.postMessage({
    type: "ready", models: allModels(), defaultModel: defaultModel()?.key ?? null, maxPixels: runtime.maxPixels,
    pyodideVersion: runtime.pyodide.version, ...stats(),
  });
}

const handlers = {
  open: ({ source, name, labels, engine }) => openModel({ source, name, labels, engine }).then((model) => ({ model, ...stats() })),
  classify,
  embed,
  release: async ({ model }) => releaseModel(model),
  models: async () => ({ models: allModels(), defaultModel: defaultModel()?.key ?? null }),
  stats: async () => stats(),
};

// Values whose buffers move to the page instead of being copied.
function transferables(value) {
  return value?.embedding instanceof Float32Array ? [value.embedding.buffer] : [];
}

let booted = null;
let queue = Promise.resolve();

function enqueue(fn) {
  const run = queue.then(fn);
  queue = run.catch(() => {});
  return run;
}

export function onMessage(event) {
  const msg = event.data || {};
  if (msg.type === "init") {
    booted = enqueue(() => boot(msg));
    // Requests wait on `booted` and fail with its error; the page hears about it once, here.
    booted.catch((err) => self.postMessage({ type: "fatal", error: errorPayload(err) }));
    return;
  }
  const handler = handlers[msg.type];
  if (!handler) {
    self.postMessage({ id: msg.id, ok: false, error: { kind: "InternalError", message: `unknown request ${msg.type}` } });
    return;
  }
  (booted || Promise.resolve())
    .then(() => enqueue(() => handler(msg)))
    .then(
      (value) => self.postMessage({ id: msg.id, ok: true, value }, transferables(value)),
      (err) => self.postMessage({ id: msg.id, ok: false, error: errorPayload(err) }),
    );
}
