// The service worker that keeps the site for offline use. Scoped to the folder it is served from (the site root),
// so the site works under any subpath. One cache per build: the page registers `sw.js?m=<hash>&stdlib=<path>` where
// <hash> is the start of manifest.json's sha256, so a new build (a new manifest) installs a new worker and a new
// cache, and <path> the stdlib its interpreter booted with (the files a later visit reads: see unread()).
// Install copies every file the page needs into that cache, each checked against the manifest's sha256 (files an
// older cache already holds with the same hash are copied from it, not downloaded again); a failed install deletes
// its partial cache; activation deletes the older caches and tells the open pages. Requests are answered from the
// cache first (but for the runtime's Wasm, see NETWORK_FIRST), and every cached copy is checked against the
// cache's own manifest before it is served: a damaged one is replaced from the network (checked the same way).
// A repeat visit, online or not, reads nothing else over the network. Only same-origin requests inside the scope
// are handled; this worker never makes a request anywhere else.

const PARAMS = new URL(self.location.href).searchParams;
const VERSION = PARAMS.get("m") || "dev";
// The stdlib the page's interpreter booted with (offline.js): it names the file set a later visit needs.
const BOOTED_STDLIB = PARAMS.get("stdlib");
const PREFIX = "wasmvision-";
// One cache per build and file set: a browser whose boot changes set installs beside the copy it runs on.
const CACHE = `${PREFIX}${VERSION}${BOOTED_STDLIB ? `-${BOOTED_STDLIB.replace(/[^\w]+/g, "_")}` : ""}`;
const SCOPE = new URL("./", self.location.href); // this file sits at the site root
const MANIFEST = "manifest.json";
const CONCURRENT_DOWNLOADS = 4;

// The files a boot does not read, by the stdlib it booted with: one restored from the build's snapshot reads its
// small zips (snapshot/), not the full stdlib and the wheels; a normal boot (a browser that cannot use the
// snapshot) the reverse. Unknown (the page could not tell): both.
function unread(manifest, stdlib) {
  const snapshot = manifest.snapshot;
  if (!snapshot || !stdlib) return new Set();
  const small = [snapshot.file, snapshot.stdlib, snapshot.packages];
  if (stdlib === snapshot.stdlib) {
    return new Set((manifest.files || []).map((f) => f.path)
      .filter((p) => p === "pyodide/python_stdlib.zip" || /^pyodide\/[^/]+\.whl$/.test(p)));
  }
  return new Set(small);
}

// Left out of the install: the fallbacks (micropip and its dependency), the files this browser's boot does not read
// (unread) and the models the page does not open by default; any of them is kept the first time the page uses it.
function needed(manifest) {
  const fallbacks = /^pyodide\/(micropip|packaging)-/;
  const skipped = unread(manifest, BOOTED_STDLIB);
  const models = new Set((manifest.models || []).map((m) => m.file));
  const defaults = new Set((manifest.models || []).filter((m) => m.default).map((m) => m.file));
  if (!defaults.size && manifest.models?.length) defaults.add(manifest.models[0].file);
  return (manifest.files || []).filter((f) => !fallbacks.test(f.path) && !skipped.has(f.path) &&
    (!models.has(f.path) || defaults.has(f.path)));
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function sri(sha256) {
  return `sha256-${btoa(String.fromCharCode(...sha256.match(/../g).map((h) => parseInt(h, 16))))}`;
}

function urlOf(path) {
  return new URL(path, SCOPE).href;
}

async function readManifest(response) {
  const bytes = await response.arrayBuffer();
  return { bytes, hash: hex(await crypto.subtle.digest("SHA-256", bytes)), json: JSON.parse(new TextDecoder().decode(bytes)) };
}

// The previous builds' caches, with their manifests: a file whose sha256 is unchanged is copied, not downloaded.
async function previousCopies() {
  const copies = new Map(); // sha256 -> cached Response
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const cache = await caches.open(name);
    const response = await cache.match(urlOf(MANIFEST));
    if (!response) continue;
    try {
      const { json } = await readManifest(response);
      for (const f of json.files || []) {
        const hit = f.sha256 && !copies.has(f.sha256) && await cache.match(urlOf(f.path));
        if (hit) copies.set(f.sha256, hit);
      }
    } catch {
      // A damaged old cache: nothing to reuse from it.
    }
  }
  return copies;
}

async function install() {
  const response = await fetch(urlOf(MANIFEST), { cache: "no-cache" });
  if (!response.ok) throw new Error(`${MANIFEST}: HTTP ${response.status}`);
  const manifest = await readManifest(response.clone());
  // The page asked for the build whose manifest it saw; if the site changed since, the next visit asks again.
  if (VERSION !== "dev" && !manifest.hash.startsWith(VERSION)) {
    throw new Error(`${MANIFEST} changed while installing (${manifest.hash.slice(0, 16)}, expected ${VERSION})`);
  }
  const cache = await caches.open(CACHE);
  const copies = await previousCopies();
  const queue = needed(manifest.json);
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const url = urlOf(f.path);
      const old = f.sha256 && copies.get(f.sha256);
      if (old) {
        const { bytes, sha256 } = await sha256Of(old.clone());
        if (sha256 === f.sha256) { // an old copy damaged since is downloaded instead
          await cache.put(url, new Response(bytes, { headers: old.headers }));
          continue;
        }
      }
      // The HTTP cache usually has the file from the visit that registered this worker; the integrity check
      // makes sure what is kept is exactly the build's file.
      const r = await fetch(url, f.sha256 ? { integrity: sri(f.sha256) } : {});
      if (!r.ok) throw new Error(`${f.path}: HTTP ${r.status}`);
      await cache.put(url, r);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_DOWNLOADS }, worker));
  // Last: a cache with its manifest is complete (previousCopies and the fetch handler rely on it).
  await cache.put(urlOf(MANIFEST), new Response(manifest.bytes, { headers: response.headers }));
}

self.addEventListener("install", (event) => {
  // A failed install (quota, a file that does not match, the network gone) leaves no partial cache behind.
  event.waitUntil(install().catch(async (err) => {
    await caches.delete(CACHE);
    throw err;
  }).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const old = (await caches.keys()).filter((name) => name.startsWith(PREFIX) && name !== CACHE);
    await Promise.all(old.map((name) => caches.delete(name)));
    await self.clients.claim();
    const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const page of pages) page.postMessage({ type: "wasmvision-offline", version: VERSION, updated: old.length > 0 });
  })());
});

// This cache's manifest (path -> sha256), once its bytes hash to this worker's build; null when the cached manifest
// is damaged and the network no longer has this build's: then the cache is not used at all (requests pass through).
let listed = null;

function listedFiles(cache) {
  if (!listed) {
    listed = (async () => {
      let manifest = await checkedManifest(await cache.match(urlOf(MANIFEST)));
      if (!manifest) {
        manifest = await checkedManifest(await fetch(urlOf(MANIFEST), { cache: "no-cache" }).catch(() => null));
        if (manifest) await cache.put(urlOf(MANIFEST), new Response(manifest.bytes, { headers: JSON_HEADERS }));
      }
      return manifest && new Map((manifest.json.files || []).map((f) => [f.path, f.sha256]));
    })().catch(() => null);
    listed.then((files) => files || (listed = null)); // a damaged manifest is tried again on the next request
  }
  return listed;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

// The manifest of this worker's build (its sha256 starts with VERSION), or null.
async function checkedManifest(response) {
  if (!response?.ok) return null;
  try {
    const manifest = await readManifest(response);
    return VERSION === "dev" || manifest.hash.startsWith(VERSION) ? manifest : null;
  } catch {
    return null; // not JSON
  }
}

async function sha256Of(response) {
  const bytes = await response.arrayBuffer();
  return { bytes, sha256: hex(await crypto.subtle.digest("SHA-256", bytes)) };
}

// A cached copy of a listed file, served only when its bytes are the manifest's. A damaged copy is replaced from the
// network (fetched with the manifest's sha256 as its integrity); null when that is not possible now (offline, or
// the server's file is another build's).
async function checkedHit(cache, path, sha256, hit) {
  const { bytes, sha256: got } = await sha256Of(hit);
  if (got === sha256) return new Response(bytes, { status: hit.status, statusText: hit.statusText, headers: hit.headers });
  console.warn(`wasmvision offline copy: ${path} is damaged; replacing it from the network`);
  try {
    const fresh = await fetch(urlOf(path), { integrity: sri(sha256), cache: "no-cache" });
    if (!fresh.ok) return null;
    await cache.put(urlOf(path), fresh.clone());
    return fresh;
  } catch {
    return null;
  }
}

// Whether two responses for one URL carry the same file, from their validators (no hashing): the ETag when both
// have one, else Last-Modified and Content-Length. Unknown counts as the same (the page checks the bytes anyway).
function sameFile(a, b) {
  const etag = [a, b].map((r) => r.headers.get("etag"));
  if (etag[0] && etag[1]) return etag[0] === etag[1];
  return ["last-modified", "content-length"].every((name) => {
    const [x, y] = [a, b].map((r) => r.headers.get(name));
    return !x || !y || x === y;
  });
}

// The runtime's Wasm goes to the network (in practice the HTTP cache) first: V8 keeps its compiled code with the
// HTTP cache's copy, and a visit served the Cache Storage copy instead compiled it again and ran 1.5-2x slower
// (docs/perf.md, section 7). Offline, or when the server's file is no longer the cached build's (a new build was
// deployed: the page runs the cached build until the new one is installed), the cached copy serves.
const NETWORK_FIRST = new Set(["pyodide/pyodide.asm.wasm"]);

// The page's own request, without its integrity: the page checks the bytes it gets against the manifest anyway.
// With it, this worker's fetch also buffered and hashed the whole body before answering (the runtime's 10 MB Wasm:
// its answer came 140-220 ms after the request on a repeat visit, the bytes a second time after that).
function passThrough(request) {
  return fetch(request, request.integrity ? { integrity: "" } : undefined);
}

// Answers a file of this cache that cannot be served: offline with a damaged copy.
function unavailable(path) {
  return new Response(`wasmvision: the offline copy of ${path} is damaged and the site cannot be reached to ` +
    "repair it. Connect to the internet and reload.", { status: 503, headers: { "Content-Type": "text/plain" } });
}

async function respond(event, path) {
  const cache = await caches.open(CACHE);
  if (path === MANIFEST) listed = null; // checked (and repaired) again at every start of the page or its worker
  const files = await listedFiles(cache);
  if (!files) return passThrough(event.request); // this cache cannot be trusted: the network, as without it
  const sha256 = files.get(path);
  const hit = await cache.match(urlOf(path));
  if (NETWORK_FIRST.has(path)) {
    try {
      const response = await passThrough(event.request);
      if (response.ok && (!hit || sameFile(response, hit))) return response;
    } catch {
      // Offline, or the site is down: the cached copy below.
    }
  }
  if (hit && path === MANIFEST) return hit; // checked by listedFiles, just now
  if (hit && sha256) {
    const checked = await checkedHit(cache, path, sha256, hit);
    if (checked) return checked;
    const response = await passThrough(event.request).catch(() => null);
    return response ?? unavailable(path);
  }
  if (hit) return hit;
  const response = await passThrough(event.request);
  // A file of this build that install left out (another model): kept once its bytes match the manifest.
  if (response.ok && sha256 && response.type === "basic") {
    const copy = response.clone();
    event.waitUntil((async () => {
      const { bytes, sha256: got } = await sha256Of(copy);
      if (got === sha256) await cache.put(urlOf(path), new Response(bytes, { headers: copy.headers }));
    })().catch(() => {}));
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || request.headers.has("range")) return;
  const url = new URL(request.url);
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  let path = decodeURIComponent(url.pathname.slice(SCOPE.pathname.length));
  if (request.mode === "navigate") {
    // The page under any query (?model=…): the same file.
    if (path === "" || path.endsWith("/")) path += "index.html";
  } else if (url.search) {
    return; // e.g. the page's check for a newer manifest: always the network
  }
  if (path === "sw.js") return;
  event.respondWith(respond(event, path));
});
