// Progress messages: {type: "progress", stage, label, loaded, total} with loaded/total in bytes over one scope
// (everything the first load downloads while booting; later the file being fetched), so a bar's percentage and
// the megabytes shown next to it are the same numbers.

import { bytesOf, totalReceived, whenBytesArrive } from "./fetch.js";
import { fileBytes } from "./manifest.js";

const PROGRESS_INTERVAL_MS = 60;

const progress = { stage: "start", label: "Starting…", files: [], scope: null, done: null };
let timer = null;

// The files a whole load downloads (runtime, packages, model); null: just the current stage's files.
export function setScope(files) {
  progress.scope = files;
}

// The boot went another way than planned (boot.js): the files it no longer reads leave the scope and those it now
// reads join it, so loaded and total are the bytes that really come, never a file counted as in without arriving.
export function rescope(unread, read = []) {
  if (!progress.scope) return;
  const gone = new Set(unread);
  progress.scope = [...progress.scope.filter((path) => !gone.has(path)),
    ...read.filter((path) => !progress.scope.includes(path))];
  postProgress();
}

// done: [label, files]: what the label says once those files are in (the work that follows the download, e.g.
// Python's start, can take seconds; "Downloading" with nothing left to download would read as stuck). Only files
// that arrive by fetch() can be watched (pyodide.asm.js comes by import()).
export function setStage(stage, label, files = [], done = null) {
  Object.assign(progress, { stage, label, files, done });
  postProgress();
}

function label() {
  if (!progress.done) return progress.label;
  const [doneLabel, files] = progress.done;
  return files.every((path) => bytesOf(path) > 0 && bytesOf(path) >= fileBytes(path)) ? doneLabel : progress.label;
}

let lastLabel = null;

function scheduleProgress() {
  // A new label goes out at once: the thread may be busy for seconds right after the last byte (Python's start).
  if (label() !== lastLabel) {
    postProgress();
    return;
  }
  if (timer === null) {
    timer = setTimeout(() => {
      timer = null;
      postProgress();
    }, PROGRESS_INTERVAL_MS);
  }
}

whenBytesArrive(scheduleProgress);

function postProgress() {
  let loaded = 0;
  let total = 0;
  for (const path of progress.scope ?? progress.files) {
    const got = bytesOf(path);
    total += Math.max(fileBytes(path), got);
    loaded += got;
  }
  lastLabel = label();
  self.postMessage({
    type: "progress", stage: progress.stage, label: lastLabel, loaded: Math.min(loaded, total), total,
    bytesReceived: totalReceived(),
  });
}
