// Same-origin fetch with byte accounting and integrity. Every same-origin response is counted as its body streams in.
// Every file manifest.json lists is hashed as it is read and compared with its sha256 there (checkedBody) before
// anyone may use its bytes; manifest.json (fetched no-cache) is the root of trust. Requests to any other origin are
// refused, by fetch, XMLHttpRequest and WebSocket alike: the page promises that nothing leaves the device (the
// worker's CSP header says the same to the browser; README).

import { UserError } from "./errors.js";

export const BASE = new URL("./", self.location.href); // the site root: the worker runs <root>/worker.js
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

// path -> expected sha256 (hex) or "", from manifest.json once it is read (manifest.js sets it; no import cycle).
let expectedSha256 = () => "";

export function setExpectedHashes(fn) {
  expectedSha256 = fn;
}

function refuseOtherOrigin(url, what = "a request") {
  if (url.origin !== ORIGIN && url.protocol !== "blob:" && url.protocol !== "data:") {
    throw new UserError(`Blocked ${what} to ${url.origin}: wasmvision only loads files from its own site.`,
      "PrivacyError");
  }
}

export function mismatchError(path, list = "the site's manifest") {
  // Runtime files end the boot (SetupError); a model's mismatch leaves the page usable with other models.
  return new UserError(`The file ${path} does not match ${list}: it was changed or damaged after the ` +
    "site was built, and wasmvision will not use it. Reload the page; if this persists, the site must be re-uploaded.",
    path.startsWith("models/") ? "ModelError" : "SetupError");
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The browser reports an integrity failure as a bare "Failed to fetch", like a network error, and an HTTP error
// (404) the same way, since its body does not match either. Only on that failure path: fetch again without
// integrity (usually from the HTTP cache) to tell them apart. Returns the HTTP error response, "mismatch", or null.
async function diagnose(url, integrity) {
  try {
    const response = await nativeFetch(url, { cache: "force-cache" });
    if (!response.ok) return response;
    return sriFromHex(await sha256Hex(await response.arrayBuffer())) !== integrity ? "mismatch" : null;
  } catch {
    return null; // the network itself failed: reported as a download failure
  }
}

// path -> [promise, resolve]: resolved once a fetch of that path has been started (the code check waits for the
// runtime's Wasm to be requested before it sends its own requests).
const requests = new Map();

function requestEntry(path) {
  if (!requests.has(path)) {
    let resolve;
    const promise = new Promise((r) => {
      resolve = r;
    });
    requests.set(path, [promise, resolve]);
  }
  return requests.get(path);
}

export function whenRequested(path) {
  return requestEntry(path)[0];
}

// path -> a Response for every later request of that path instead of the network: a download someone else already
// made and uses (runtime-start.js: Pyodide's own requests for the runtime's Wasm, whose compiled module it gets
// anyway; without a disk cache, e.g. a private window, each of them downloaded the 10 MB again).
const answers = new Map();

// makeResponse null: later requests go to the network again.
export function answerRequests(path, makeResponse) {
  if (makeResponse) answers.set(path, makeResponse);
  else answers.delete(path);
}

// The worker's fetch (installed by the Pyodide module's installPatches). A listed file is handed over only once its
// bytes match the manifest's sha256 (checkedBody): as a Response made of the checked bytes.
export async function checkedFetch(input, init) {
  const { response, path, expected } = await siteFetch(input, init);
  if (!expected) return response;
  const bytes = await checkedBody(path, response.body, response.headers, expected);
  return new Response(bytes, { status: response.status, statusText: response.statusText, headers: response.headers });
}

// A listed file's bytes, checked (checkedBody). Throws the mismatch error (it ends the boot when it is a runtime
// file) or, for an HTTP error, `${path}: HTTP ${status}`.
export async function fetchBytes(url) {
  const { response, path, expected } = await siteFetch(url);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return expected ? checkedBody(path, response.body, response.headers, expected) :
    new Uint8Array(await response.arrayBuffer());
}

// A listed file whose body is consumed as it arrives (WebAssembly.compileStreaming), with a copy of it checked
// meanwhile: `checked` rejects with the mismatch error, and the boot ends with it; the caller awaits it before
// anything made from the body is used. Returns { response, checked: Promise<void> }.
export async function fetchStreamed(url) {
  const { response, path, expected } = await siteFetch(url);
  if (!expected) return { response, checked: Promise.resolve() };
  const checked = checkedBody(path, response.clone().body, response.headers, expected).then(() => {});
  checked.catch(() => {}); // the caller awaits it; a runtime file's mismatch also ends the boot (orRuntimeFailure)
  return { response, checked };
}

// A listed file's body read once as it arrives (counted for the progress bar) and hashed off this thread. Not with
// Subresource Integrity: the browser then buffered the body and hashed it before handing over a single byte, and
// took 2-3x as long for the 14 MB shipped snapshot (interleaved in one worker, from the HTTP cache: median 959 vs 396
// ms, load ~20), the runtime's streaming compile began only after its last byte.
async function checkedBody(path, body, headers, expected) {
  const bytes = await countBody(path, body, { keep: headers.get("content-length") });
  if (!bytes) {
    noteRuntimeFailure(new URL(path, BASE), "could not be downloaded (the download broke off)");
    throw new Error(`${path}: the download broke off`);
  }
  if (await sha256Hex(bytes) === expected) return bytes;
  const mismatch = mismatchError(path);
  failRuntimeFile(path, mismatch);
  throw mismatch;
}

// Same-origin only. Returns { response, path, expected }: `expected` is the manifest's sha256 when the caller must
// check the body with it (a listed file whose request carries no integrity of its own, answered 200 with a body),
// else "" (the response's body is then counted here).
async function siteFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input), self.location.href);
  if (url.protocol === "blob:" || url.protocol === "data:") {
    return { response: await nativeFetch(input, init), expected: "" };
  }
  refuseOtherOrigin(url);
  const path = sitePath(url);
  requestEntry(path)[1]();
  const answer = answers.get(path);
  if (answer) return { response: await answer(), path, expected: "" };
  const listed = expectedSha256(path);
  // A caller's own integrity (the wheels', from pyodide-lock.json) stays, checked by the browser.
  const callers = init?.integrity;
  let response;
  try {
    response = await nativeFetch(input, init);
  } catch (err) {
    const found = callers ? await diagnose(url, callers) : null;
    if (found === "mismatch") {
      // unpackWheels gives the lock's hash; it is the manifest's too unless the lock itself is wrong.
      const mismatch = mismatchError(path, callers !== sriFromHex(listed || "") ?
        "its sha256 in pyodide-lock.json" : "the site's manifest");
      failRuntimeFile(path, mismatch);
      throw mismatch;
    }
    if (!found) {
      noteRuntimeFailure(url, `could not be downloaded (${err.message})`);
      throw err;
    }
    response = found; // an HTTP error: callers report its status
  }
  if (!response.ok) noteRuntimeFailure(url, `could not be downloaded (HTTP ${response.status})`);
  if (!response.ok || !response.body) return { response, path, expected: "" };
  if (!received.has(path)) received.set(path, 0);
  const expected = listed && !callers ? listed : "";
  if (!expected) countBody(path, response.clone().body);
  return { response, path, expected };
}

// Each fetch counts its own bytes; a path fetched again (the code check, a second download) keeps its largest
// count, so progress over a path never goes back or past the file's size, however the fetches overlap.
// `keep` (the expected length, or null): also returns the body's bytes (null if it failed).
async function countBody(path, body, { keep = undefined } = {}) {
  const reader = body.getReader();
  let own = 0;
  let bytes = keep !== undefined ? new Uint8Array(Number(keep) || 0) : null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (bytes) {
        if (own + value.byteLength > bytes.byteLength) {
          const grown = new Uint8Array(Math.max(2 * bytes.byteLength, own + value.byteLength));
          grown.set(bytes.subarray(0, own));
          bytes = grown;
        }
        bytes.set(value, own);
      }
      own += value.byteLength;
      if (own > (received.get(path) || 0)) received.set(path, own);
      onBytes();
    }
  } catch {
    // The consumer failed or cancelled; it reports its own error.
    bytes = null;
  }
  onBytes();
  return bytes && bytes.subarray(0, own);
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
  failRuntimeFile(path, new UserError(`The Python runtime file ${path} ${what}. The site is incomplete or damaged.`,
    "SetupError"));
}

// Ends the boot with `error` when `path` is one of the runtime's files (boot.js also reports Wasm compile failures).
export function failRuntimeFile(path, error) {
  if (path.startsWith("pyodide/")) failRuntime(error);
}

export function orRuntimeFailure(promise) {
  return Promise.race([promise, runtimeFailure]);
}

// XMLHttpRequest and WebSocket: the other ways code in this worker could send something. wasmvision uses neither;
// Pyodide's synchronous loaders use XHR on this site only. Cross-origin import() cannot be intercepted from script:
// the worker's CSP header (script-src 'self') refuses it. Both installed by the Pyodide module's installPatches.
export function checkedXhrOpen(open) {
  return function checkedOpen(method, href, ...rest) {
    refuseOtherOrigin(new URL(String(href), self.location.href), "an XMLHttpRequest");
    return open.call(this, method, href, ...rest);
  };
}

// A constructor (WebSocket, EventSource, WebTransport) that refuses every connection.
export function refusedConnection(name) {
  return function refused(href) {
    throw new UserError(`Blocked a ${name} to ${String(href).slice(0, 100)}: wasmvision talks to no server.`,
      "PrivacyError");
  };
}
