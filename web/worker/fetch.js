// Same-origin fetch with byte accounting. Every same-origin response is counted as its body streams in (a clone is
// read, so the original stays a genuine network response: WebAssembly.instantiateStreaming keeps streaming
// compilation and the browser's code cache). Requests to any other origin are refused: the page promises that
// nothing leaves the device.

import { UserError } from "./errors.js";

export const BASE = new URL("../", import.meta.url); // the site root: this file is <root>/worker/fetch.js
export const ORIGIN = self.location.origin;

const received = new Map(); // site-relative path -> bytes received so far
const nativeFetch = self.fetch.bind(self);
let onBytes = () => {};

export function whenBytesArrive(fn) {
  onBytes = fn;
}

export function bytesOf(path) {
  return received.get(path) || 0;
}

export function hasReceived(path) {
  return received.has(path);
}

// Files that arrive by import() rather than fetch() (Pyodide's asm.js): counted once they are known to be loaded.
export function countAsReceived(path, bytes) {
  if (!received.has(path)) received.set(path, bytes);
}

// What came over the network on this page (the HTTP cache's hits count as 0), from the browser's Resource Timing.
if (self.performance?.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(5000);

export function networkBytes() {
  let sum = 0;
  for (const e of performance.getEntriesByType("resource")) sum += e.transferSize || 0;
  return sum;
}

export function totalReceived() {
  let sum = 0;
  for (const n of received.values()) sum += n;
  return sum;
}

export function sitePath(url) {
  const href = url.href;
  return href.startsWith(BASE.href) ? decodeURIComponent(href.slice(BASE.href.length)) : url.pathname;
}

export function sriFromHex(hex) {
  const bytes = hex.match(/../g).map((h) => parseInt(h, 16));
  return `sha256-${btoa(String.fromCharCode(...bytes))}`;
}

self.fetch = async function countingFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input), self.location.href);
  if (url.protocol === "blob:" || url.protocol === "data:") return nativeFetch(input, init);
  if (url.origin !== ORIGIN) {
    throw new UserError(`Blocked a request to ${url.origin}: wasmvision only loads files from its own site.`,
      "PrivacyError");
  }
  let response;
  try {
    response = await nativeFetch(input, init);
  } catch (err) {
    noteRuntimeFailure(url, `could not be downloaded (${err.message})`);
    throw err;
  }
  if (!response.ok) noteRuntimeFailure(url, `could not be downloaded (HTTP ${response.status})`);
  if (response.ok && response.body) {
    const path = sitePath(url);
    received.set(path, 0);
    countBody(path, response.clone().body);
  }
  return response;
};

async function countBody(path, body) {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received.set(path, (received.get(path) || 0) + value.byteLength);
      onBytes();
    }
  } catch {
    // The consumer failed or cancelled; it reports its own error.
  }
  onBytes();
}

// Pyodide does not always reject when one of its own files fails to download (Emscripten aborts, and the
// loader's promise never settles), so a failed runtime download ends the boot from here, with the file named.
let failRuntime = () => {};
const runtimeFailure = new Promise((_, reject) => {
  failRuntime = reject;
});
runtimeFailure.catch(() => {});

function noteRuntimeFailure(url, what) {
  const path = sitePath(url);
  if (path.startsWith("pyodide/")) {
    failRuntime(new UserError(`The Python runtime file ${path} ${what}. The site is incomplete.`, "SetupError"));
  }
}

export function orRuntimeFailure(promise) {
  return Promise.race([promise, runtimeFailure]);
}
