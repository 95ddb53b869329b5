// The Web Worker hosting Pyodide. Everything heavy happens here so the page never freezes; the code is split by
// concern in worker/ (fetch, manifest, progress, snapshot, boot, models, decode, inference, protocol).
// The public API is wasmvision.mjs, which starts this worker.

import "./worker/phases.js"; // first: it times the Wasm compiles that follow
import { onMessage } from "./worker/protocol.js";

self.onmessage = onMessage;
