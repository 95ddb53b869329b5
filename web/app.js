// The demo page, built on the public module (wasmvision.mjs): input (picker, drag-and-drop, paste), rendering,
// and window.wasmvision, a thin alias of the module for scripts and tests.

import * as wasmvision from "./wasmvision.mjs";
import { keepOffline } from "./offline.js";

const $ = (sel) => document.querySelector(sel);
const ui = {
  progress: $("#progress"),
  progressBar: $("#progress-bar"),
  progressLabel: $("#progress-label"),
  status: $("#status"),
  error: $("#error"),
  errorText: $("#error-text"),
  dropZone: $("#drop-zone"),
  fileInput: $("#file-input"),
  preview: $("#preview"),
  previewImg: $("#preview-img"),
  previewCaption: $("#preview-caption"),
  results: $("#results"),
  resultList: $("#result-list"),
  timings: $("#timings"),
  modelName: $("#model-name"),
  modelSelect: $("#model-select"),
  modelInput: $("#model-input"),
  modelOpen: $("#model-open"),
  stats: $("#stats"),
};

const OPEN_OWN = "__open__";
const stats = { readyMs: null, firstResultMs: null, bootTimings: null, bytesReceived: null, pyodideVersion: null,
  phases: null };
const state = { models: [], current: null, ready: false, sequence: 0, previewUrl: null };

// ------------------------------------------------------------------------------------------ the module

const params = new URLSearchParams(location.search);
const engine = params.get("engine") || "auto";
const classifiers = new Map(); // model key -> a wasmvision classifier (they share one worker)
let resolveReady;
let rejectReady;
const ready = new Promise((res, rej) => {
  resolveReady = res;
  rejectReady = rej;
});
ready.catch(() => {}); // reported on the page; callers awaiting it still see the rejection

// ------------------------------------------------------------------------------------------ status + errors

function setStatus(text) {
  ui.status.textContent = text;
}

function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.errorText.textContent = "";
}

function mb(bytes) {
  return (bytes / 1e6).toFixed(1);
}

// The bar and the text show the same bytes: everything the first load downloads, later the model being fetched.
function showProgress({ stage, label, loaded, total }) {
  if (stage === "ready") {
    ui.progress.hidden = true;
    return;
  }
  ui.progress.hidden = false;
  const bytes = total > 0 && stage !== "model-load";
  ui.progressLabel.textContent = bytes ? `${label} ${mb(loaded)} / ${mb(total)} MB` : `${label}…`;
  if (!bytes) {
    ui.progressBar.removeAttribute("aria-valuenow");
    ui.progress.classList.add("indeterminate");
  } else {
    const pct = Math.round((loaded / total) * 100);
    ui.progress.classList.remove("indeterminate");
    ui.progressBar.setAttribute("aria-valuenow", String(pct));
    ui.progressBar.style.setProperty("--value", `${pct}%`);
  }
  ui.progressBar.setAttribute("aria-valuetext", ui.progressLabel.textContent);
  // The live region announces stages, not every byte count.
  if (!state.ready && stage !== state.announcedStage) {
    state.announcedStage = stage;
    setStatus(`${STAGE_TEXT[stage] ?? label} You can choose a photo now; it is classified as soon as the model is ready.`);
  }
}

const STAGE_TEXT = {
  runtime: "Downloading the Python runtime…",
  packages: "Loading numpy and wasmvision…",
  model: "Downloading the model…",
  "model-load": "Loading the model…",
};

function onReady(modelError) {
  stats.readyMs = performance.now();
  state.ready = true;
  ui.progress.hidden = true;
  document.body.classList.add("is-ready");
  setModels(state.models, state.current);
  if (modelError) {
    showError(modelError.message);
    setStatus("The runtime is ready, but the model could not be loaded.");
  } else {
    setStatus("Ready. Choose, drop or paste a photo.");
  }
  // The offline copy fills from the HTTP cache; not before the first result has had its chance.
  setTimeout(() => keepOffline({ onUpdate: showUpdateNotice }), OFFLINE_DELAY_MS);
  const clf = classifiers.get(state.current);
  resolveReady({ models: state.models, current: state.current, maxPixels: clf?.runtime.maxPixels ?? null });
}

const OFFLINE_DELAY_MS = 1500;

function showUpdateNotice() {
  const notice = $("#update-notice");
  notice.textContent = "Update applied: a new version of wasmvision is now stored for offline use. " +
    "Reload the page to use it.";
  notice.hidden = false;
}

function onFatal(error) {
  ui.progress.hidden = true;
  showError(`wasmvision could not start: ${error.message}`);
  setStatus("Failed to start.");
  rejectReady(error);
}

// Keeps the page's figures in step with the worker's: boot timings and bytes downloaded.
async function refreshStats(clf) {
  try {
    const s = await clf.stats();
    stats.bootTimings = s.timings;
    stats.bytesReceived = s.bytesReceived;
    stats.phases = s.phases; // the start-up's phase marks (benchmarks/phases.py)
    stats.pyodideVersion = clf.runtime.pyodideVersion;
    renderStats();
  } catch {
    // Figures only; a failure here changes nothing the user asked for.
  }
}

// ------------------------------------------------------------------------------------------ models

function formatBytes(n) {
  if (!n) return "";
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

function setModels(models, current) {
  state.models = models;
  state.current = current;
  const select = ui.modelSelect;
  select.replaceChildren();
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.key;
    const details = [m.version, m.storage, formatBytes(m.bytes)].filter(Boolean).join(", ");
    const own = m.builtin ? "" : ` · your file ${m.file}`;
    option.textContent = `${m.name}${details ? ` (${details})` : ""}${own}`;
    select.append(option);
  }
  const openOwn = document.createElement("option");
  openOwn.value = OPEN_OWN;
  openOwn.textContent = "Open your own model…";
  select.append(openOwn);
  if (current) select.value = current;
  else {
    const placeholder = document.createElement("option");
    placeholder.textContent = state.ready ? "No model loaded" : "Loading…";
    placeholder.value = "";
    placeholder.disabled = true;
    select.prepend(placeholder);
    select.value = "";
  }
  select.disabled = !state.ready;
  const m = models.find((x) => x.key === current);
  if (m && !ui.results.dataset.hasResult) ui.modelName.textContent = modelText(m);
}

function modelText(m) {
  return m.version ? `${m.name} · ${m.version}` : m.name;
}

// One classifier per model the page has used; the worker keeps a few in memory and reloads the others on demand.
async function classifierFor(key) {
  let clf = classifiers.get(key);
  if (!clf) {
    clf = await wasmvision.load({ model: key, engine, onProgress: showProgress });
    adopt(clf);
  }
  return clf;
}

// Records a loaded classifier's model in the picker's list (a user's model replaces an earlier one of that key).
function adopt(clf) {
  const m = clf.model;
  classifiers.set(m.key, clf);
  const i = state.models.findIndex((x) => x.key === m.key);
  const entry = { ...(i >= 0 ? state.models[i] : {}), ...m, loaded: true };
  if (i >= 0) state.models[i] = entry;
  else state.models.push(entry);
  return clf;
}

function currentClassifier() {
  const clf = classifiers.get(state.current);
  if (!clf) throw new wasmvision.WasmvisionError("ModelError", "No model is loaded. Choose a model or open your own.");
  return clf;
}

async function switchModel(key) {
  await ready;
  const clf = await classifierFor(key);
  state.current = clf.model.key;
  setModels(state.models, state.current);
  return clf.model;
}

async function selectModel(key) {
  clearError();
  setStatus("Switching model…");
  try {
    const m = await switchModel(key);
    setStatus(`Model ${m.name} is ready.`);
    ui.modelName.textContent = modelText(m);
    if (state.lastBlob) classifyAndRender(state.lastBlob);
    return m;
  } catch (err) {
    showError(err.message);
    setStatus("Could not switch model.");
    setModels(state.models, state.current);
    throw err;
  }
}

async function loadModel(fileOrUrl, { select = true, name } = {}) {
  await ready;
  const clf = adopt(await wasmvision.load({ model: fileOrUrl, name, engine, onProgress: showProgress }));
  if (select) state.current = clf.model.key;
  setModels(state.models, state.current);
  return clf.model;
}

async function openModelFile(file) {
  clearError();
  setStatus(`Loading model ${file.name}…`);
  try {
    const m = await loadModel(file);
    setStatus(`Loaded your model ${m.name}.`);
    ui.modelName.textContent = modelText(m);
    if (state.lastBlob) classifyAndRender(state.lastBlob);
  } catch (err) {
    showError(`Could not load the model "${file.name}": ${err.message}`);
    setStatus("Model not loaded.");
    setModels(state.models, state.current);
  }
}

ui.modelSelect.addEventListener("change", () => {
  const value = ui.modelSelect.value;
  if (value === OPEN_OWN) {
    setModels(state.models, state.current); // keep showing the current model until a file is chosen
    ui.modelInput.click();
    return;
  }
  selectModel(value).catch(() => {});
});
ui.modelOpen.addEventListener("click", () => ui.modelInput.click());
ui.modelInput.addEventListener("change", () => {
  const file = ui.modelInput.files[0];
  ui.modelInput.value = "";
  if (file) openModelFile(file);
});

// ------------------------------------------------------------------------------------------ classification

async function classify(input, { topK = 5, model } = {}) {
  await ready;
  const clf = model ? await classifierFor(model) : currentClassifier();
  const result = await clf.classify(input, { topK });
  if (stats.firstResultMs === null) {
    stats.firstResultMs = performance.now();
    refreshStats(clf);
  }
  return result;
}

function showPreview(blob) {
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(blob);
  ui.previewImg.src = state.previewUrl;
  ui.previewImg.alt = blob.name ? `Preview of ${blob.name}` : "Preview of the pasted image";
  ui.previewCaption.textContent = blob.name || "Pasted image";
  ui.dropZone.classList.add("has-image");
}

function hidePreview() {
  ui.dropZone.classList.remove("has-image");
  ui.previewImg.removeAttribute("src");
  ui.previewCaption.textContent = "";
}

function fmtMs(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return "–";
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

function renderResult(result) {
  const items = result.top.map((p, i) => {
    const li = document.createElement("li");
    li.className = "result-item";
    li.dataset.testid = "result-item";
    li.dataset.index = String(p.index);
    li.dataset.probability = String(p.probability);
    const pct = p.probability * 100;
    li.innerHTML = `
      <div class="result-row">
        <span class="result-rank" aria-hidden="true">${i + 1}</span>
        <span class="result-label" data-testid="result-label"></span>
        <span class="result-probability" data-testid="result-probability"></span>
      </div>
      <div class="bar" aria-hidden="true"><div class="bar-fill"></div></div>`;
    li.querySelector(".result-label").textContent = p.label;
    li.querySelector(".result-probability").textContent = pct >= 0.1 ? `${pct.toFixed(1)}%` : "<0.1%";
    li.querySelector(".result-probability").title = p.probability.toPrecision(6);
    li.querySelector(".bar-fill").style.width = `${Math.max(0.5, pct)}%`;
    return li;
  });
  ui.resultList.replaceChildren(...items);
  const t = result.timings_ms;
  const rows = [["Decode", t.decode], ["Preprocess", t.preprocess], ["Inference", t.inference],
    ["Postprocess", t.postprocess], ["Total", t.total]];
  ui.timings.replaceChildren(...rows.map(([name, ms]) => {
    const div = document.createElement("div");
    div.className = name === "Total" ? "timing total" : "timing";
    div.dataset.stage = name.toLowerCase();
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = fmtMs(ms);
    div.append(dt, dd);
    return div;
  }));
  ui.modelName.textContent = modelText(result.model);
  ui.results.dataset.hasResult = "1";
  ui.results.classList.add("has-result");
}

function clearResult() {
  ui.resultList.replaceChildren();
  for (const dd of ui.timings.querySelectorAll("dd")) dd.textContent = "–";
  delete ui.results.dataset.hasResult;
  ui.results.classList.remove("has-result");
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
    renderResult(result);
    const best = result.top[0];
    setStatus(`Top result: ${best.label}, ${(best.probability * 100).toFixed(1)}%. ` +
      `Classified in ${fmtMs(result.timings_ms.total)}.`);
  } catch (err) {
    if (seq !== state.sequence) return;
    hidePreview();
    clearResult(); // the old result would read as the answer for this file
    showError(err.message);
    setStatus("That file could not be classified. Try another photo.");
  } finally {
    if (seq === state.sequence) ui.results.removeAttribute("aria-busy");
  }
}

function isModelFile(file) {
  return /\.(wvb|onnx)$/i.test(file.name || "");
}

function handleFiles(files) {
  const file = files && files[0];
  if (!file) return;
  if (isModelFile(file)) openModelFile(file);
  else classifyAndRender(file);
}

// ------------------------------------------------------------------------------------------ input

ui.fileInput.addEventListener("change", () => {
  const files = [...ui.fileInput.files];
  ui.fileInput.value = ""; // choosing the same file again still fires change
  handleFiles(files);
});

ui.dropZone.addEventListener("click", (e) => {
  if (e.target !== ui.fileInput) ui.fileInput.click();
});
ui.dropZone.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    ui.fileInput.click();
  }
});

let dragDepth = 0;
window.addEventListener("dragenter", (e) => {
  if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
  dragDepth++;
  ui.dropZone.classList.add("dragging");
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.dropZone.classList.remove("dragging");
});
// A file dropped anywhere on the page is taken as input instead of the browser navigating away to it.
window.addEventListener("dragover", (e) => {
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
});
window.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  ui.dropZone.classList.remove("dragging");
  handleFiles(e.dataTransfer?.files);
});

document.addEventListener("paste", (e) => {
  const items = [...(e.clipboardData?.items || [])];
  const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/")) ||
    items.find((i) => i.kind === "file");
  const file = item?.getAsFile();
  if (!file) return;
  e.preventDefault();
  handleFiles([file]);
});

ui.error.querySelector("button").addEventListener("click", clearError);

// ------------------------------------------------------------------------------------------ stats

function renderStats() {
  const parts = [];
  if (stats.readyMs !== null) parts.push(`ready ${fmtMs(stats.readyMs)} after opening`);
  if (stats.firstResultMs !== null) parts.push(`first result ${fmtMs(stats.firstResultMs)}`);
  if (stats.bytesReceived) parts.push(`${formatBytes(stats.bytesReceived)} downloaded`);
  if (stats.pyodideVersion) parts.push(`Pyodide ${stats.pyodideVersion}`);
  ui.stats.textContent = parts.join(" · ");
}

// ------------------------------------------------------------------------------------------ API

window.wasmvision = Object.freeze({
  ready,
  classify,
  loadModel,
  selectModel: (key) => switchModel(key),
  models: () => ready.then(() => state.models.map((m) => ({ ...m }))),
  stats,
  get currentModel() {
    return state.current;
  },
  module: wasmvision,
});

// The worker first (the default model's load starts Python's downloads at once), the site's model list meanwhile
// (the picker fills while Python boots). A requested model is checked against the list before it is loaded.
async function start() {
  const requested = params.get("model");
  const early = requested ? null : wasmvision.load({ engine, onProgress: showProgress });
  early?.catch(() => {}); // awaited below
  try {
    state.models = (await wasmvision.listModels()).map((m) => ({ ...m, builtin: true, loaded: false }));
  } catch {
    state.models = []; // the runtime reports what is wrong with the site
  }
  setModels(state.models, null);
  let modelError = null;
  try {
    if (requested && !state.models.some((m) => m.key === requested)) {
      modelError = new wasmvision.WasmvisionError("ModelError", `There is no model "${requested}" on this site` +
        `${state.models.length ? `; showing the default model instead. Models: ${state.models.map((m) => m.key).join(", ")}.` : "."}`);
    }
    const clf = adopt(await (early ?? wasmvision.load({ model: modelError ? undefined : requested ?? undefined, engine,
      onProgress: showProgress })));
    state.current = clf.model.key;
    await refreshStats(clf);
  } catch (err) {
    if (err.kind !== "ModelError") {
      onFatal(err);
      return;
    }
    modelError = err; // the runtime works; the page stays usable with a model the user opens
  }
  onReady(modelError);
}

start();
