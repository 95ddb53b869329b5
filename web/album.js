// Album mode: classify a whole folder of photos in the browser. Photos go through a queue to the classifier
// (wasmvision.mjs, Python in Web Workers); the page keeps a small thumbnail, the top 5 and the embedding of each,
// never the photo itself. The parts live in album/ (files, queue, thumbs, grid, detail, similar, export).
//
// URL parameters: ?model=<key> picks a built-in model; ?workers=1|2 overrides the number of workers.

import * as wasmvision from "./wasmvision.mjs";
import { download, toCSV, toJSON } from "./album/export.js";
import { Detail } from "./album/detail.js";
import { fromDrop, fromInput, isImage } from "./album/files.js";
import { Grid } from "./album/grid.js";
import { Queue } from "./album/queue.js";
import { norm, similarities } from "./album/similar.js";
import { Teach } from "./album/teach.js";
import { makeThumbnail, releaseThumbnail } from "./album/thumbs.js";
import { keepOffline } from "./offline.js";

// Measured on the 2-core machine (README, "Album mode"): two workers classified 1.3-1.7x as many photos per second
// as one (in 3 of 4 alternating rounds; one round tied), for a second Python runtime's memory. ?workers= overrides.
const DEFAULT_WORKERS = 2;
const IN_FLIGHT_PER_WORKER = 2; // one in Python, the next one decoding

const $ = (id) => document.getElementById(id);
const ui = {
  drop: $("album-drop"), files: $("album-files"), folder: $("album-folder"),
  filesButton: $("album-files-button"), folderButton: $("album-folder-button"),
  bar: $("album-progress-bar"), text: $("album-progress-text"), cancel: $("album-cancel"), announce: $("album-announce"),
  error: $("album-error"), errorText: $("album-error-text"), errorClose: $("album-error-close"),
  count: $("album-count"), filter: $("album-filter"), sort: $("album-sort"), sortSimilar: $("album-sort-similar"),
  similarNote: $("album-similar-note"), empty: $("album-empty"), grid: $("album-grid"),
  csv: $("album-export-csv"), json: $("album-export-json"), clear: $("album-clear"), update: $("album-update"),
};

const params = new URLSearchParams(location.search);
const workers = Number(params.get("workers") ?? DEFAULT_WORKERS);
let classifier = null;
let nextId = 1;
let generation = 0; // bumped by Clear: photos finishing after it are dropped
let skipped = 0;
const workerMs = { decode: 0, preprocess: 0, inference: 0, total: 0 }; // summed over the photos: for measurements

function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}
ui.errorClose.addEventListener("click", () => { ui.error.hidden = true; });

// ------------------------------------------------------------------------------------------ the classifier

const queue = new Queue({
  process: (item) => processPhoto(item),
  concurrency: IN_FLIGHT_PER_WORKER * (Number.isInteger(workers) && workers > 0 ? workers : DEFAULT_WORKERS),
  onProgress: (state) => showProgress(state),
});

const ready = wasmvision.load({
  model: params.get("model") || undefined,
  workers: Number.isInteger(workers) ? workers : DEFAULT_WORKERS,
  onProgress: ({ loaded, total, label }) => {
    if (queue.running) return;
    ui.text.textContent = total ? `${label || "Loading the classifier"}… ${Math.round(100 * loaded / total)}%`
      : `${label || "Loading the classifier"}…`;
  },
}).then((clf) => {
  classifier = clf;
  if (!queue.running) ui.text.textContent = `Ready: ${clf.model.name} (${clf.workers} worker${clf.workers > 1 ? "s" : ""}). Choose photos or a folder.`;
  return clf;
}, (err) => {
  showError(`The classifier could not start: ${err.message}`);
  ui.text.textContent = "The classifier could not start.";
  throw err;
});
ready.catch(() => {});

// Offline copy: this page keeps it current like the single-photo page (offline.js), once no photos are waiting:
// the copy's install (the site's ~60 MB, read from the HTTP cache) would take the CPU from them.
keepOffline({
  ready,
  idle: () => queue.idle(),
  bootTimings: () => ready.then((clf) => clf.stats()).then((s) => s.timings),
  onUpdate: () => {
    ui.update.textContent = "Update applied: a new version of wasmvision is now stored for offline use. Reload " +
      "the page to use it (the album's photos are not kept: export them first).";
    ui.update.hidden = false;
  },
});

// ------------------------------------------------------------------------------------------ the queue

async function classifyOne(file) {
  const clf = await ready;
  try {
    // A model without an embedding tensor still classifies; "similar photos" is then unavailable.
    const r = await clf.classify(file, { topK: 5, embedding: clf.model.embedding !== false });
    for (const k in workerMs) workerMs[k] += r.timings_ms?.[k] ?? 0;
    const extra = r.embedding ? { embedding: r.embedding, embeddingNorm: norm(r.embedding) } : {};
    return { top: r.top, model: r.model, engine: r.engine, ...extra };
  } catch (err) {
    return { error: err.message };
  }
}

// Only under the classifier's pixel limit: a thumbnail decodes the whole photo in this page (thumbs.js).
async function thumbnailOf(file) {
  const clf = await ready;
  return makeThumbnail(file, clf.runtime.maxPixels);
}

// Resolves true when the photo was classified (the queue counts the run's failures).
async function processPhoto({ file, name }) {
  const gen = generation;
  let result, thumb;
  try {
    [thumb, result] = await Promise.all([thumbnailOf(file), classifyOne(file)]);
  } catch (err) {
    result = { error: `Could not be read: ${err.message}` };
  }
  if (gen !== generation) {
    releaseThumbnail(thumb);
    return false;
  }
  const photo = { id: nextId++, name, thumb, ...result };
  grid.add(photo);
  await teach.photoAdded(photo).catch((err) => showError(`Your labels could not be applied: ${err.message}`));
  return result.error === undefined;
}

function formatSeconds(s) {
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

let runStarted = 0;
let lastTextAt = 0;

function showProgress(state) {
  const { done, failed, total, running, cancelled, rate, secondsLeft } = state;
  ui.cancel.hidden = !running;
  const now = performance.now();
  if (running) {
    // The bar and the text change at most 4 times a second: readable, and cheap next to a thousand photos.
    if (now - lastTextAt < 250 && done > 0) return;
    lastTextAt = now;
    ui.bar.max = Math.max(total, 1);
    ui.bar.value = done;
    const parts = [`${done.toLocaleString()} of ${total.toLocaleString()} photos`];
    if (!classifier) parts.push("waiting for the classifier");
    else if (rate > 0) {
      parts.push(`${rate.toFixed(rate < 10 ? 1 : 0)} photos/s`);
      if (secondsLeft !== null) parts.push(`about ${formatSeconds(secondsLeft)} left`);
    }
    ui.text.textContent = parts.join(" · ");
    return;
  }
  ui.bar.max = Math.max(total, 1);
  ui.bar.value = done;
  grid.flush(); // the last photos are on screen when the summary is read out
  const seconds = (now - runStarted) / 1000;
  const summary = cancelled
    ? `Cancelled: ${done.toLocaleString()} photos classified; the rest were not started.`
    : `Done: ${done.toLocaleString()} photos in ${formatSeconds(seconds)} (${(done / seconds).toFixed(1)} photos/s)` +
      (failed ? `; ${failed} could not be classified.` : ".");
  ui.text.textContent = summary;
  ui.announce.textContent = summary;
}

function addPhotos(items) {
  const photos = items.filter(({ file }) => isImage(file));
  const notImages = items.length - photos.length;
  skipped += notImages;
  if (notImages) showError(`Skipped ${notImages} file${notImages > 1 ? "s" : ""} that ${notImages > 1 ? "are" : "is"} not an image.`);
  if (!photos.length) return;
  if (!queue.running || queue.state().cancelled) {
    runStarted = performance.now();
    ui.announce.textContent = `Classifying ${photos.length} photos.`;
  }
  queue.add(photos);
}

ui.cancel.addEventListener("click", () => queue.cancel());

// ------------------------------------------------------------------------------------------ choosing photos

ui.filesButton.addEventListener("click", () => ui.files.click());
ui.folderButton.addEventListener("click", () => ui.folder.click());
for (const input of [ui.files, ui.folder]) {
  input.addEventListener("change", () => {
    addPhotos(fromInput(input));
    input.value = ""; // the same folder can be chosen again
  });
}

// A drop anywhere on the page adds the photos; the drop zone shows where they go.
let dragDepth = 0;
document.addEventListener("dragenter", (e) => {
  if (!e.dataTransfer?.types.includes("Files")) return;
  dragDepth += 1;
  ui.drop.classList.add("dragging");
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) ui.drop.classList.remove("dragging");
});
document.addEventListener("dragover", (e) => {
  if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
});
document.addEventListener("drop", async (e) => {
  if (!e.dataTransfer?.types.includes("Files")) return;
  e.preventDefault();
  dragDepth = 0;
  ui.drop.classList.remove("dragging");
  addPhotos(await fromDrop(e.dataTransfer));
});

// ------------------------------------------------------------------------------------------ the grid

const detail = new Detail($("album-detail"), { onSimilar: showSimilar });
const grid = new Grid(ui.grid, {
  onOpen: (photo, button) => (teach.selecting ? teach.toggle(photo) : detail.open(photo, button)),
  onShown: () => updateCounts(),
});
const teach = new Teach({
  grid, classifier: () => ready, load: wasmvision.load, showError,
  say: (text) => { ui.announce.textContent = text; },
});

function updateCounts() {
  const n = grid.photos.length;
  const shown = ui.filter.value.trim() ? grid.visible().length : n;
  ui.count.textContent = n ? (shown === n ? `(${n.toLocaleString()})` : `(${shown.toLocaleString()} of ${n.toLocaleString()} shown)`) : "";
  ui.empty.hidden = n > 0;
  for (const b of [ui.csv, ui.json, ui.clear]) b.disabled = n === 0;
}

ui.filter.addEventListener("input", () => {
  grid.setFilter(ui.filter.value);
  updateCounts();
});

ui.sort.addEventListener("change", () => {
  if (ui.sort.value !== "similar") {
    ui.similarNote.hidden = true;
    grid.setOrder(ui.sort.value);
  }
});

function showSimilar(photo) {
  grid.setOrder("similar", similarities(grid.photos, photo), photo.id);
  ui.sortSimilar.hidden = false;
  ui.sortSimilar.disabled = false;
  ui.sortSimilar.textContent = `Similar to ${photo.name.split("/").pop()}`;
  ui.sort.value = "similar";
  ui.similarNote.textContent = `Ordered by similarity to ${photo.name} (cosine of the photos' embeddings).`;
  ui.similarNote.hidden = false;
  ui.announce.textContent = `Photos ordered by similarity to ${photo.name}.`;
  photo.parts.button.focus();
}

ui.clear.addEventListener("click", () => {
  generation += 1;
  queue.clear();
  ui.cancel.hidden = true;
  ui.bar.value = 0;
  for (const p of grid.clear()) releaseThumbnail(p.thumb);
  teach.cleared();
  ui.sortSimilar.hidden = true;
  ui.sortSimilar.disabled = true;
  if (ui.sort.value === "similar") ui.sort.value = "added";
  grid.setOrder(ui.sort.value);
  ui.similarNote.hidden = true;
  updateCounts();
  ui.text.textContent = "Cleared. Choose photos or a folder.";
});

// ------------------------------------------------------------------------------------------ export

function stamp() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}`;
}

function exportMeta() {
  return { model: classifier ? { ...classifier.model } : null, count: grid.photos.length };
}

// Every photo in the order shown; the filter only narrows what is on screen.
ui.csv.addEventListener("click", () =>
  download(toCSV(grid.ordered()), `wasmvision-album-${stamp()}.csv`, "text/csv"));
ui.json.addEventListener("click", () =>
  download(toJSON(grid.ordered(), exportMeta()), `wasmvision-album-${stamp()}.json`, "application/json"));

updateCounts();

// For tests and measurements (the page works without it).
window.wasmvisionAlbum = {
  ready: ready.then((clf) => ({ model: clf.model, workers: clf.workers })),
  state: () => ({ ...queue.state(), photos: grid.photos.length, skipped,
    thumbnailBytes: grid.photos.reduce((s, p) => s + (p.thumb?.bytes ?? 0), 0), workerMs: { ...workerMs } }),
};
