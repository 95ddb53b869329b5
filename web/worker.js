// The Web Worker hosting Pyodide. Everything heavy happens here so the page never freezes; the code is split by
// concern in worker/ (fetch, manifest, progress, snapshot, boot, models, decode, inference, protocol).
// The public API is wasmvision.mjs, which starts this worker.

import { installPatches } from "./worker/pyodide-0.27.7.js";
import { onMessage } from "./worker/protocol.js";
// Every other module the worker runs, named here: build.py bundles this file and all of them into one dist/worker.js,
// a classic script (and refuses a module in worker/ that is not here); where it cannot bundle, the browser still requests them all
// as soon as this file has arrived, instead of one import level per round trip. protocol.js already imports them
// all, so the order they run in is unchanged.
import "./worker/boot.js";
import "./worker/codecheck.js";
import "./worker/colour.js";
import "./worker/decode.js";
import "./worker/dylibs.js";
import "./worker/errors.js";
import "./worker/fetch.js";
import "./worker/heads.js";
import "./worker/heapruns.js";
import "./worker/imagehead.js";
import "./worker/inference.js";
import "./worker/manifest.js";
import "./worker/models.js";
import "./worker/nextvisit.js";
import "./worker/phases.js";
import "./worker/progress.js";
import "./worker/recovery.js";
import "./worker/restored.js";
import "./worker/runtime-start.js";
import "./worker/shipmaker.js";
import "./worker/shipped.js";
import "./worker/sitefiles.js";
import "./worker/snapshot-stores.js";
import "./worker/snapshot.js";
import "./worker/testhooks.js";
import "./pyodide/pyodide.mjs";

// Every global patch, in the one order that module states, before any message can start work.
installPatches();
self.onmessage = onMessage;
