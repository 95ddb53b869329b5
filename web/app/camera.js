// Live camera: the camera's frames classified one after another on this device. A frame that arrives while one is
// being classified is skipped (counted, not queued), so the result is never behind the picture. Nothing is recorded
// or sent: each frame goes to the worker as an ImageBitmap and is freed there. Stop ends every track of the stream.

const $ = (sel) => document.querySelector(sel);
const FPS_WINDOW_MS = 2000; // frames per second over the last two seconds
const ANNOUNCE_MS = 3000; // a screen reader hears the top label when it changes, at most this often

const ui = {
  start: $("#camera-start"),
  stop: $("#camera-stop"),
  panel: $("#camera"),
  video: $("#camera-video"),
  fps: $("#camera-fps"),
  top: $("#camera-top"),
  status: $("#camera-status"),
  labels: $("#camera-labels"),
  headInput: $("#camera-head-input"),
};

// classifier(): the page's current classifier; openHead(file): a CustomClassifier for it; onError(message).
// Returns what scripts and tests may read: whether it runs, its stream, the frames skipped while busy.
export function wireCamera({ classifier, openHead, onError }) {
  const state = { stream: null, running: false, custom: null, skipped: 0, presented: null,
    announced: { label: "", at: 0 } };

  ui.start.addEventListener("click", () => start().catch((err) => {
    stop();
    onError(cameraMessage(err));
  }));
  ui.stop.addEventListener("click", stop);
  ui.labels.addEventListener("change", () => {
    if (ui.labels.value === "open") ui.headInput.click();
    else if (ui.labels.value === "") useHead(null);
  });
  ui.headInput.addEventListener("change", async () => {
    const file = ui.headInput.files[0];
    ui.headInput.value = "";
    if (!file) return void (ui.labels.value = state.custom ? "head" : "");
    try {
      useHead(await openHead(file), file.name);
    } catch (err) {
      ui.labels.value = state.custom ? "head" : "";
      onError(`Could not use ${file.name}: ${err.message}`);
    }
  });

  function useHead(custom, name = "") {
    const old = state.custom;
    state.custom = custom;
    old?.dispose();
    let option = ui.labels.querySelector('option[value="head"]');
    if (custom) {
      option ??= ui.labels.insertBefore(new Option("", "head"), ui.labels.querySelector('option[value="open"]'));
      option.textContent = `Your labels: ${custom.labels.join(", ")}${name ? ` (${name})` : ""}`;
      ui.labels.value = "head";
    } else {
      option?.remove();
      ui.labels.value = "";
    }
  }

  async function start() {
    if (state.running) return;
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("This browser cannot use a camera here.");
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    ui.video.srcObject = state.stream;
    await ui.video.play();
    state.running = true;
    ui.panel.hidden = false;
    ui.start.hidden = true;
    ui.stop.focus();
    ui.status.textContent = "Camera on. Classifying what it sees; nothing is recorded or sent.";
    loop();
  }

  function stop() {
    const was = state.running || state.stream;
    state.running = false;
    for (const track of state.stream?.getTracks() ?? []) track.stop();
    state.stream = null;
    ui.video.srcObject = null;
    ui.panel.hidden = true;
    ui.start.hidden = false;
    if (was) {
      ui.start.focus();
      ui.status.textContent = "Camera off.";
    }
  }

  // Waits for the next frame the camera shows; counts the ones shown while the previous was being classified.
  function nextFrame() {
    return new Promise((resolve) => {
      if (ui.video.requestVideoFrameCallback) ui.video.requestVideoFrameCallback(() => resolve());
      else requestAnimationFrame(() => resolve());
    });
  }

  function countSkipped() {
    if (!state.running || !ui.video.requestVideoFrameCallback) return;
    ui.video.requestVideoFrameCallback((_, meta) => {
      state.presented = meta.presentedFrames;
      countSkipped();
    });
  }

  async function loop() {
    const done = [];
    countSkipped();
    let lastPresented = null;
    while (state.running) {
      await nextFrame();
      if (!state.running) break;
      const clf = state.custom ?? classifier();
      let result;
      try {
        result = await clf.classify(ui.video, { topK: 3 });
      } catch (err) {
        if (!state.running) break;
        stop();
        onError(`The camera stopped: ${err.message}`);
        break;
      }
      if (!state.running) break;
      if (lastPresented !== null && state.presented > lastPresented + 1) state.skipped += state.presented - lastPresented - 1;
      lastPresented = state.presented ?? null;
      const now = performance.now();
      done.push(now);
      while (done.length && done[0] < now - FPS_WINDOW_MS) done.shift();
      const span = done.length > 1 ? (now - done[0]) / 1000 : 0;
      const fps = span > 0 ? (done.length - 1) / span : 0;
      ui.fps.textContent = `${fps.toFixed(1)} frames per second · ${Math.round(result.timings_ms.total)} ms per ` +
        `frame · ${state.skipped} skipped while busy`;
      ui.fps.dataset.fps = fps.toFixed(2);
      render(result.top);
      announce(result.top[0], now);
    }
  }

  function render(top) {
    ui.top.replaceChildren(...top.map((p) => {
      const li = document.createElement("li");
      li.className = "camera-item";
      li.dataset.testid = "camera-item";
      li.dataset.label = p.label;
      li.dataset.probability = String(p.probability);
      li.textContent = `${p.label} · ${(p.probability * 100).toFixed(1)}%`;
      return li;
    }));
  }

  function announce(best, now) {
    if (!best || best.label === state.announced.label || now - state.announced.at < ANNOUNCE_MS) return;
    state.announced = { label: best.label, at: now };
    ui.status.textContent = `Seeing ${best.label}, ${(best.probability * 100).toFixed(0)}%.`;
  }

  // Leaving the page (or hiding it on a phone) releases the camera.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stop();
  });
  window.addEventListener("pagehide", stop);
  return Object.freeze({
    get running() {
      return state.running;
    },
    get stream() {
      return state.stream;
    },
    get skipped() {
      return state.skipped;
    },
    get labels() {
      return state.custom ? [...state.custom.labels] : null;
    },
  });
}

function cameraMessage(err) {
  if (err?.name === "NotAllowedError") return "The camera was not allowed. Allow it in the browser's site settings to use it.";
  if (err?.name === "NotFoundError") return "No camera was found on this device.";
  if (err?.name === "NotReadableError") return "The camera is in use by another application.";
  return `The camera could not start: ${err?.message || err}`;
}
