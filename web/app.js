// The demo page, built on the public module (wasmvision.mjs): what a chosen file does, the model picker, and
// window.wasmvision, a thin alias of the module for scripts and tests. Rendering lives in app/view.js, the file
// picker, drag-and-drop and paste in app/input.js.

import * as wasmvision from "./wasmvision.mjs";
import { keepOffline } from "./offline.js";
import { wireCamera } from "./app/camera.js";
import { modelShort } from "./app/format.js";
import { wireInputs } from "./app/input.js";
import { fillPicker, OPEN_OWN } from "./app/picker.js";
import {
  adaptHints, clearError, clearResult, hidePreview, hideProgress, renderResult, renderStats, setStatus, showError,
  showModelName, showPreview, showProgress, ui,
} from "./app/view.js";

const stats = {
  readyMs: null, firstResultMs: null, firstTimings: null, bootTimings: null, bytesReceived: null, networkBytes: null,
  pyodideVersion: null, phases: null,
};
const state = { builtins: [], current: null, ready: false, sequence: 0, lastBlob: null, userFiles: new Map() };
// model key -> a wasmvision classifier (they share one worker, whose registry decides which models stay loaded)
const classifiers = new Map();
const params = new URLSearchParams(location.search);
const notices = [];
let engine = params.get("engine") || "auto";
if (!wasmvision.ENGINES.includes(engine)) {
  notices.push(`There is no engine "${engine}"; using auto. Engines: ${wasmvision.ENGINES.join(", ")}.`);
  engine = "auto";
}
const touch = adaptHints();

let resolveReady;
let rejectReady;
const ready = new Promise((res, rej) => {
  resolveReady = res;
  rejectReady = rej;
});
ready.catch(() => {}); // reported on the page; callers awaiting it still see the rejection

// ------------------------------------------------------------------------------------------ figures

// Bytes this page fetched over the network (cache hits count 0): the page's own files plus the worker's.
function pageNetworkBytes() {
  let sum = 0;
  for (const e of performance.getEntriesByType("navigation")) sum += e.transferSize || 0;
  for (const e of performance.getEntriesByType("resource")) sum += e.transferSize || 0;
  return sum;
}

async function refreshStats(clf) {
  try {
    const s = await clf.stats();
    Object.assign(stats, {
      bootTimings: s.timings, bytesReceived: s.bytesReceived, networkBytes: s.networkBytes + pageNetworkBytes(),
      phases: s.phases, // the start-up's phase marks (benchmarks/phases.py)
      pyodideVersion: clf.runtime.pyodideVersion,
    });
    renderStats(stats);
  } catch {
    // Figures only; a failure here changes nothing the user asked for.
  }
}

// ------------------------------------------------------------------------------------------ models

function adopt(clf) {
  classifiers.set(clf.model.key, clf);
  return clf;
}

// The picker's list: the site's models (with what the runtime said of those opened), then the user's own.
function models() {
  const builtins = state.builtins.map((m) => ({ ...m, builtin: true, ...classifiers.get(m.key)?.model }));
  const own = [...classifiers.values()].map((c) => c.model).filter((m) => !state.builtins.some((b) => b.key === m.key));
  return [...builtins, ...own];
}

// One classifier per model the page has used; the worker keeps a few in memory and reloads the others on demand.
async function classifierFor(key) {
  return classifiers.get(key) ?? adopt(await wasmvision.load({ model: key, engine, onProgress: showProgress }));
}

function currentClassifier() {
  const clf = classifiers.get(state.current);
  if (!clf) throw new wasmvision.WasmvisionError("ModelError", "No model is loaded. Choose a model or open your own.");
  return clf;
}

function setModels() {
  fillPicker(models(), state.current, state.ready);
}

async function switchModel(key) {
  await ready;
  const clf = await classifierFor(key);
  state.current = clf.model.key;
  setModels();
  return clf.model;
}

async function selectModel(key) {
  clearError();
  setStatus("Switching model…");
  try {
    const m = await switchModel(key);
    setStatus(`Model ${modelShort(m)} is ready.`);
    showModelName(m);
    if (state.lastBlob) classifyAndRender(state.lastBlob);
    return m;
  } catch (err) {
    showError(err.message);
    setStatus("Could not switch model.");
    setModels();
    throw err;
  }
}

async function loadModel(fileOrUrl, { select = true, name, labels } = {}) {
  await ready;
  const clf = adopt(await wasmvision.load({ model: fileOrUrl, name, labels, engine, onProgress: showProgress }));
  if (fileOrUrl instanceof Blob) state.userFiles.set(clf.model.key, fileOrUrl);
  if (select) state.current = clf.model.key;
  setModels();
  return clf.model;
}

async function openModelFile(file, labels) {
  clearError();
  setStatus(`Loading model ${file.name}…`);
  try {
    const m = await loadModel(file, { labels });
    showModelName(m);
    setStatus(m.labels ? `Loaded your model ${m.name}.` : `Loaded your model ${m.name}. It has no class names, so ` +
      "results say “class N”: add a labels file (one name per line) to name them.");
    if (state.lastBlob) classifyAndRender(state.lastBlob);
  } catch (err) {
    showError(`Could not load your model: ${err.message}`);
    setStatus("Model not loaded.");
    setModels();
  }
}

// A labels file for the current user's model: load that model again with the names.
function addLabels(labels) {
  const file = state.userFiles.get(state.current);
  if (!file) {
    showError("A labels file names the classes of your own model: open the model file first (or both together).");
    return;
  }
  openModelFile(file, labels);
}

function isModelFile(file) {
  return /\.(wvb|onnx)$/i.test(file.name || "");
}

function isLabelsFile(file) {
  return /\.txt$/i.test(file.name || "") || file.type === "text/plain";
}

ui.modelSelect.addEventListener("change", () => {
  const value = ui.modelSelect.value;
  if (value === OPEN_OWN) {
    setModels(); // keep showing the current model until a file is chosen
    ui.modelInput.click();
    return;
  }
  selectModel(value).catch(() => {});
});
ui.modelOpen.addEventListener("click", () => ui.modelInput.click());
ui.modelInput.addEventListener("change", () => {
  const files = [...ui.modelInput.files];
  ui.modelInput.value = "";
  handleFiles(files, { modelFiles: true });
});
ui.labelsOpen.addEventListener("click", () => ui.labelsInput.click());
ui.labelsInput.addEventListener("change", () => {
  const file = ui.labelsInput.files[0];
  ui.labelsInput.value = "";
  if (file) addLabels(file);
});

// ------------------------------------------------------------------------------------------ classification

async function classify(input, { topK = 5, model } = {}) {
  await ready;
  const clf = model ? await classifierFor(model) : currentClassifier();
  const result = await clf.classify(input, { topK });
  if (stats.firstResultMs === null) {
    stats.firstResultMs = performance.now();
    stats.firstTimings = result.timings_ms; // the first photo's stages, to compare with later ones
    result.first = true; // the page labels its stage timings as the first photo's
    refreshStats(clf);
  }
  return result;
}

async function classifyAndRender(blob) {
  const seq = ++state.sequence;
  clearError();
  state.lastBlob = null;
  showPreview(blob);
  ui.results.setAttribute("aria-busy", "true");
  setStatus(state.ready ? "Classifying…" : "Classifying as soon as the model is ready…");
  try {
    const result = await classify(blob, { topK: 5 });
    if (seq !== state.sequence) return; // a newer photo was chosen meanwhile
    state.lastBlob = blob;
    state.shown = blob;
    const model = models().find((m) => m.key === result.model.key) ?? result.model;
    renderResult(result, result.engine);
    showModelName(model);
    const best = result.top[0];
    setStatus(`Top result: ${best.label}, ${(best.probability * 100).toFixed(1)}%. ` +
      `Classified in ${Math.round(result.timings_ms.total)} ms.`);
  } catch (err) {
    if (seq !== state.sequence) return;
    showError(err.message);
    if (state.shown && state.shown !== blob) {
      // Nothing lost: the previous photo and its result stay, labelled as such.
      showPreview(state.shown);
      state.lastBlob = state.shown;
      setStatus(`That file could not be classified. The result shown is still for ${state.shown.name || "the previous photo"}.`);
    } else {
      hidePreview();
      clearResult();
      state.shown = null;
      setStatus("That file could not be classified. Try another photo.");
    }
  } finally {
    if (seq === state.sequence) ui.results.removeAttribute("aria-busy");
  }
}

// A model file (with a labels file beside it, if any) opens the model; anything else is a photo. A lone labels
// file counts as labels only where the page asked for model files.
function handleFiles(files, { modelFiles = false } = {}) {
  files = [...(files || [])];
  const model = files.find(isModelFile);
  const labels = files.find(isLabelsFile);
  if (model) openModelFile(model, labels);
  else if (modelFiles && labels) addLabels(labels);
  else if (files[0]) classifyAndRender(files[0]);
}

// ------------------------------------------------------------------------------------------ input

wireInputs(handleFiles);

ui.error.querySelector("button").addEventListener("click", clearError);

// The camera uses the current model, or a custom head (.wvh) on it.
const camera = wireCamera({
  classifier: currentClassifier,
  openHead: async (file) => wasmvision.load({ model: currentClassifier().model.key, head: file, engine }),
  onError: showError,
});

// ------------------------------------------------------------------------------------------ API + start

window.wasmvision = Object.freeze({
  ready,
  classify,
  loadModel,
  selectModel: (key) => switchModel(key),
  models: () => ready.then(models),
  stats,
  camera,
  get currentModel() {
    return state.current;
  },
  module: wasmvision,
});

function onReady(modelError) {
  stats.readyMs = performance.now();
  state.ready = true;
  hideProgress();
  document.body.classList.add("is-ready");
  setModels();
  const clf = classifiers.get(state.current);
  if (clf) showModelName(clf.model);
  renderStats(stats);
  const problems = [...notices, ...(modelError ? [modelError.message] : [])];
  if (problems.length) showError(problems.join(" "));
  if (!clf) setStatus("The runtime is ready, but the model could not be loaded.");
  else setStatus(touch ? "Ready. Choose a photo." : "Ready. Choose, drop or paste a photo.");
  resolveReady({ models: models(), current: state.current, maxPixels: clf?.runtime.maxPixels ?? null });
}

function showUpdateNotice() {
  const notice = document.querySelector("#update-notice");
  notice.textContent = "Update applied: a new version of wasmvision is now stored for offline use. " +
    "Reload the page to use it.";
  notice.hidden = false;
}

function onFatal(error) {
  hideProgress();
  showError(`wasmvision could not start: ${error.message}`);
  setStatus("Failed to start.");
  rejectReady(error);
}

const STAGE_TEXT = {
  runtime: "Downloading the Python runtime…",
  packages: "Loading numpy and wasmvision…",
  model: "Downloading the model…",
  "model-load": "Loading the model…",
};

// While booting, the live region announces stages (not every byte count).
function bootProgress(p) {
  showProgress(p);
  if (!state.ready && STAGE_TEXT[p.stage] && p.stage !== state.announcedStage) {
    state.announcedStage = p.stage;
    setStatus(`${STAGE_TEXT[p.stage]} You can choose a photo now; it is classified as soon as the model is ready.`);
  }
}

async function listModels() {
  try {
    state.builtins = await wasmvision.listModels();
  } catch {
    state.builtins = []; // the runtime reports what is wrong with the site
  }
  setModels();
}

// The default model starts loading at once (the picker fills meanwhile); a requested one is checked first, so an
// unknown name gets a message and the default instead of a failed load.
async function start() {
  const requested = params.get("model");
  const listed = listModels();
  if (requested) await listed;
  const known = !requested || state.builtins.some((m) => m.key === requested);
  if (!known) {
    notices.push(`There is no model "${requested}" on this site; showing the default model instead.` +
      (state.builtins.length ? ` Models: ${state.builtins.map((m) => m.key).join(", ")}.` : ""));
  }
  let modelError = null;
  const first = { model: known ? requested ?? undefined : undefined, onProgress: bootProgress };
  try {
    let clf;
    try {
      clf = await wasmvision.load({ ...first, engine });
    } catch (err) {
      if (err.kind !== "EngineError" || engine === "auto") throw err;
      notices.push(`${err.message} Using auto.`);
      engine = "auto";
      clf = await wasmvision.load({ ...first, engine });
    }
    adopt(clf);
    // "auto" without the SIMD kernels (no Wasm SIMD, a library that fails to load or to verify) runs numpy: say so.
    if (clf.model.engineNotice) notices.push(clf.model.engineNotice);
    state.current = clf.model.key;
    await refreshStats(clf);
  } catch (err) {
    if (err.kind !== "ModelError") {
      onFatal(err);
      return;
    }
    modelError = err; // the runtime works; the page stays usable with a model the user opens
  }
  await listed;
  onReady(modelError);
}

start();
// The offline copy is kept current after the start, whether or not it succeeds (offline.js).
keepOffline({ ready, onUpdate: showUpdateNotice, bootTimings: () => stats.bootTimings });
