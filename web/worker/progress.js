// Progress messages: {type: "progress", stage, label, loaded, total} with loaded/total in bytes over one scope
// (everything the first load downloads while booting; later the file being fetched), so a bar's percentage and
// the megabytes shown next to it are the same numbers.

import { bytesOf, totalReceived, whenBytesArrive } from "./fetch.js";
import { fileBytes } from "./manifest.js";

const PROGRESS_INTERVAL_MS = 60;

const progress = { stage: "start", label: "Starting…", files: [], scope: null };
let timer = null;

// The files a whole load downloads (runtime, packages, model); null: just the current stage's files.
export function setScope(files) {
  progress.scope = files;
}

export function setStage(stage, label, files = []) {
  Object.assign(progress, { stage, label, files });
  postProgress();
}

function scheduleProgress() {
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
  self.postMessage({
    type: "progress", stage: progress.stage, label: progress.label, loaded: Math.min(loaded, total), total,
    bytesReceived: totalReceived(),
  });
}
