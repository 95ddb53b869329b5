// The message protocol between the page (wasmvision.mjs) and this worker.
// In:  {type: "init", prefetch?: key, snapshotStored?: bool} once, then {id, type, ...} requests (handlers below).
// Out: {id, ok, value|error} replies, plus unsolicited {type: "progress" | "ready" | "fatal"} messages, and
// {type: "replace", reason, model} when the interpreter is broken: the page starts a new worker (recovery.js).
// Python runs one call at a time; requests are served in arrival order.

import { bootStdlib, runtime, startPython } from "./boot.js";
import { verifyCode } from "./codecheck.js";
import { warmDecoders } from "./decode.js";
import { compiledRuntime, startRuntime } from "./runtime-start.js";
import { UserError, errorPayload } from "./errors.js";
import { BASE, networkBytes, sitePath, totalReceived } from "./fetch.js";
import { bootFiles, defaultModel, loadManifest } from "./manifest.js";
import { isHead, openHead, releaseHead, saveHead, trainAdd, trainBegin, trainCancel, trainFinish } from "./heads.js";
import { classify, decodeAhead, dropAhead, embed } from "./inference.js";
import {
  allModels, builtin, inferenceQueued, openModel, prefetch, registerBuiltins, releaseModel, timings as modelTimings,
  warmUpWhenIdle,
} from "./models.js";
import { takeOffered } from "./nextvisit.js";
import { during, phaseReport } from "./phases.js";
import { setScope } from "./progress.js";
import { brokenBy, brokenError } from "./recovery.js";
import { makeShippedSnapshot } from "./shipmaker.js";
import { beforeRequest } from "./testhooks.js";

function stats() {
  return { timings: { ...runtime.timings, ...modelTimings }, bytesReceived: totalReceived(),
    networkBytes: networkBytes(), phases: phaseReport(BASE.href) };
}

// Boots Python; meanwhile downloads the model the page will ask for first (`prefetch`: a key, or the default).
// ranOnPage: the site URLs of the code the page had loaded when it started this worker (for the code check).
async function boot({ prefetch: first, restarts = 0, ranOnPage = [], snapshotStored = null } = {}) {
  const t0 = performance.now();
  runtime.snapshotStored = snapshotStored;
  runtime.timings.restarts = restarts; // how many workers before this one the page replaced (recovery.js)
  await during("manifest", loadManifest);
  startRuntime(bootStdlib()); // the runtime's compile and script, beside everything below
  warmDecoders(); // the image decoders' first use, off the first photo's decode
  registerBuiltins();
  const initial = first === null ? null : builtin(first) ?? (first === undefined ? defaultModel() : null);
  setScope([...bootFiles(), ...(initial ? [initial.file] : [])]);
  // The model is needed last. Without a snapshot to restore, after Python has started and numpy is imported (~1 s
  // later): its download then waits for the runtime's compile, so that the files Python's start waits for (the
  // Wasm, the stdlib, the wheels) do not share the bandwidth and this thread with it (cold visits, 4 rounds
  // interleaved: first result 2118 -> 2010 ms with the wheels' early start below). A restore needs it sooner.
  if (initial && snapshotStored) prefetch(initial.key);
  else if (initial) Promise.resolve(compiledRuntime()).catch(() => {}).finally(() => prefetch(initial.key));
  const tc = performance.now();
  const python = during("python", startPython);
  const ran = new Set(ranOnPage.map((href) => sitePath(new URL(href, BASE))));
  const codeChecked = verifyCode(ran, python).then(() => { runtime.timings.code_check_ms = performance.now() - tc; });
  codeChecked.catch(() => {}); // awaited below; a mismatch found meanwhile ends the boot through Promise.all
  await Promise.all([python, codeChecked]);
  runtime.timings.boot_ms = performance.now() - t0;
  self.postMessage({
    type: "ready", models: allModels(), defaultModel: defaultModel()?.key ?? null, maxPixels: runtime.maxPixels,
    pyodideVersion: runtime.pyodide.version, ...stats(),
  });
}

const handlers = {
  // head: {key, blob}: a custom head opened on the model (wasmvision.load({head})).
  open: async ({ source, name, labels, engine, head }) => {
    const model = await openModel({ source, name, labels, engine });
    const opened = head ? await openHead({ ...head, model: model.key, engine }) : undefined;
    return { model, head: opened, ...stats() };
  },
  classify,
  embed,
  release: async ({ model }) => (isHead(model) ? releaseHead(model) : releaseModel(model)),
  trainBegin,
  trainAdd,
  trainFinish,
  trainCancel,
  headSave: saveHead,
  models: async () => ({ models: allModels(), defaultModel: defaultModel()?.key ?? null }),
  stats: async () => stats(),
  makeShippedSnapshot, // the build's (buildtools/snapshot.py), before any model is opened
};

const PYTHON_REQUESTS = new Set(["open", "classify", "embed", "release", "trainBegin", "trainAdd", "trainFinish",
  "trainCancel", "headSave"]);
let lastModel = null; // the model the page last used: the one a replacement worker loads first
let replacement = null; // set once the interpreter is broken: {type: "replace", reason, model} (recovery.js)
let replacementSent = false;

// Runs one request; if it left the interpreter broken, answers with a message and asks for a new worker.
async function serve(msg) {
  if (!PYTHON_REQUESTS.has(msg.type)) return handlers[msg.type](msg);
  if (replacement) throw new UserError("The classifier is restarting: try again.", "ResourceError");
  const model = typeof msg.model === "string" ? msg.model : lastModel;
  let value;
  try {
    beforeRequest(msg);
    takeOffered(); // a snapshot for the next visit, before this request brings anything into the heap
    value = await handlers[msg.type](msg);
  } catch (err) {
    const reason = brokenBy(err);
    if (!reason) throw err;
    replacement = { type: "replace", reason, model };
    throw brokenError(err, reason);
  }
  if (msg.type !== "release") lastModel = value?.model?.key ?? model;
  const reason = brokenBy(null); // a good answer, but a heap left too large or a disabled interpreter
  if (reason) replacement = { type: "replace", reason, model: lastModel };
  return value;
}

function fatal(err) {
  self.postMessage({ type: "fatal", error: errorPayload(err) });
}

// Values whose buffers move to the page instead of being copied.
function transferables(value) {
  if (value?.embedding instanceof Float32Array) return [value.embedding.buffer];
  return value?.bytes instanceof Uint8Array ? [value.bytes.buffer] : [];
}

let booted = null;
let queue = Promise.resolve();
const toDecode = []; // inputs of the image requests not started yet, in arrival order: the first decodes ahead

function enqueue(fn) {
  const run = queue.then(fn);
  queue = run.catch(() => {});
  return run;
}

// Work for when no request is open: the next visit's snapshot, then a loaded model's warm-up (models.js). After
// IDLE_MS without requests, so that a photo sent right after ready finds the worker free (a person choosing a photo
// takes longer); a request that comes during it waits for it.
const IDLE_MS = 300;
let openRequests = 0;
let idleTimer = null;

function idleSoon() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (openRequests === 0) enqueue(async () => {
      if (openRequests === 0) takeOffered();
      if (openRequests === 0) await warmUpWhenIdle();
    }).catch(() => {});
  }, IDLE_MS);
}

export function onMessage(event) {
  const msg = event.data || {};
  if (msg.type === "init") {
    booted = enqueue(() => boot(msg));
    // Requests wait on `booted` and fail with its error; the page hears about it once, here.
    booted.catch(fatal);
    return;
  }
  const handler = handlers[msg.type];
  if (!handler) {
    self.postMessage({ id: msg.id, ok: false, error: { kind: "InternalError", message: `unknown request ${msg.type}` } });
    return;
  }
  // Counted from arrival until it starts (or fails before starting: a failed boot): models.js reads the count.
  let waiting = msg.type === "classify" || msg.type === "embed" || msg.type === "trainAdd";
  const started = () => {
    if (waiting) inferenceQueued(-1);
    waiting = false;
  };
  if (waiting) inferenceQueued(1);
  openRequests++;
  const image = (msg.type === "classify" || msg.type === "embed") && msg.input;
  (booted || Promise.resolve())
    .then(() => {
      if (image) toDecode.push(image);
      decodeAhead(toDecode[0]);
      return enqueue(() => {
        started();
        if (image) toDecode.splice(toDecode.indexOf(image), 1);
        decodeAhead(toDecode[0]); // the next image decodes while this request runs
        return serve(msg);
      });
    })
    .then(
      (value) => self.postMessage({ id: msg.id, ok: true, value }, transferables(value)),
      (err) => self.postMessage({ id: msg.id, ok: false, error: errorPayload(err) }),
    )
    .then(() => {
      started();
      dropAhead(image);
      openRequests--;
      idleSoon();
      // After the reply, so the failing request gets its own message; once only.
      if (replacement && !replacementSent) {
        replacementSent = true;
        self.postMessage(replacement);
      }
    });
}
