// What the page shows: status line, error box, progress bar, preview, results, footer figures.

import { fmtMs, formatBytes, mb, modelShort } from "./format.js";

const $ = (sel) => document.querySelector(sel);

export const ui = {
  progress: $("#progress"),
  progressBar: $("#progress-bar"),
  progressLabel: $("#progress-label"),
  status: $("#status"),
  error: $("#error"),
  errorText: $("#error-text"),
  dropZone: $("#drop-zone"),
  dropTitle: $("#drop-title"),
  dropHint: $("#drop-hint"),
  fileInput: $("#file-input"),
  chooseAnother: $("#choose-another"),
  previewImg: $("#preview-img"),
  previewCaption: $("#preview-caption"),
  results: $("#results"),
  resultList: $("#result-list"),
  timings: $("#timings"),
  engine: $("#engine"),
  modelName: $("#model-name"),
  modelSelect: $("#model-select"),
  modelInput: $("#model-input"),
  modelOpen: $("#model-open"),
  labelsOpen: $("#labels-open"),
  labelsInput: $("#labels-input"),
  stats: $("#stats"),
};

export function setStatus(text) {
  ui.status.textContent = text;
}

export function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}

export function clearError() {
  ui.error.hidden = true;
  ui.errorText.textContent = "";
}

// On touch screens there is no drop or keyboard paste: the hint says what works there.
export function adaptHints() {
  const touch = matchMedia("(hover: none) and (pointer: coarse)").matches;
  if (touch) {
    ui.dropTitle.textContent = "Choose a photo";
    ui.dropHint.textContent = "Tap here to take a picture or pick one from your photos.";
  } else if (/Mac|iPhone|iPad/.test(navigator.platform || "")) {
    ui.dropHint.lastChild.textContent = ", or paste an image (⌘V)";
  }
  return touch;
}

// The bar and the text show the same bytes (everything the first load downloads; later, the model being fetched).
export function showProgress({ stage, label, loaded, total }) {
  if (stage === "ready") {
    ui.progress.hidden = true;
    return;
  }
  ui.progress.hidden = false;
  const bytes = total > 0 && stage !== "model-load";
  // The total is everything this load fetches (runtime, packages, model), so the stage is named after the bytes.
  // With every byte in, what is left is work, not download (starting Python takes seconds on a slow device).
  const text = bytes && loaded >= total && (stage === "runtime" || stage === "packages")
    ? "Starting Python and numpy" : label;
  ui.progressLabel.textContent = bytes ? `${mb(loaded)} of ${mb(total)} MB · ${text}` : `${label}…`;
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
}

export function hideProgress() {
  ui.progress.hidden = true;
}

let previewUrl = null;

export function showPreview(blob) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  ui.previewImg.src = previewUrl;
  ui.previewImg.alt = blob.name ? `Preview of ${blob.name}` : "Preview of the pasted image";
  ui.previewCaption.textContent = blob.name || "Pasted image";
  ui.dropZone.classList.add("has-image");
  ui.chooseAnother.hidden = false;
}

export function hidePreview() {
  ui.dropZone.classList.remove("has-image");
  ui.previewImg.removeAttribute("src");
  ui.previewCaption.textContent = "";
  ui.chooseAnother.hidden = true;
}

export function showModelName(m) {
  ui.modelName.textContent = modelShort(m);
  ui.modelName.title = [m.name, m.version].filter(Boolean).join(" ");
}

export function renderResult(result, engine) {
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
  const note = [];
  if (result.first) { // the first photo after ready: its stages say whether it paid for anything the tenth does not
    const div = document.createElement("div");
    div.className = "timing first";
    div.dataset.stage = "first";
    const dt = document.createElement("dt");
    dt.textContent = "Photo";
    const dd = document.createElement("dd");
    dd.textContent = "first since ready";
    div.append(dt, dd);
    note.push(div);
  }
  ui.timings.replaceChildren(...note, ...rows.map(([name, ms]) => {
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
  ui.engine.textContent = engine ? `· ${engine} engine` : "";
  ui.results.dataset.hasResult = "1";
  ui.results.classList.add("has-result");
}

export function clearResult() {
  ui.resultList.replaceChildren();
  for (const dd of ui.timings.querySelectorAll("dd")) dd.textContent = "–";
  ui.engine.textContent = "";
  delete ui.results.dataset.hasResult;
  ui.results.classList.remove("has-result");
}

export function renderStats(stats) {
  const parts = [];
  if (stats.readyMs !== null) parts.push(`ready ${fmtMs(stats.readyMs)} after opening`);
  if (stats.firstResultMs !== null) parts.push(`first result ${fmtMs(stats.firstResultMs)}`);
  if (stats.networkBytes !== null) parts.push(`${formatBytes(stats.networkBytes)} downloaded`);
  if (stats.pyodideVersion) parts.push(`Pyodide ${stats.pyodideVersion}`);
  ui.stats.textContent = parts.join(" · ");
}
