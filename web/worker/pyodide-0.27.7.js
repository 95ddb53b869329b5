// Pyodide 0.27.7's private API, in one place: every underscore option, internal field and global of Pyodide this
// worker relies on, and every global this worker patches (installPatches, in the order stated there). Upgrading
// Pyodide means writing this file for the new version; no other file reaches into Pyodide or replaces a global.

import { loadPyodide as loadPublic, version } from "../pyodide/pyodide.mjs";
import { UserError } from "./errors.js";
import { applyRuns } from "./heapruns.js";
import { BASE, checkedFetch, checkedXhrOpen, failRuntimeFile, refusedConnection, sitePath } from "./fetch.js";
import { begin, during, end, timedWasm } from "./phases.js";

export { version };
export const SITE_PACKAGES = "/lib/python3.12/site-packages"; // the .so names say cpython-312 too
const SNAPSHOT_MAGIC = 0x706e7300; // first word of a 0.27 memory snapshot (API.makeSnapshot)
const PRELOAD_URL = new URL("pyodide/preloaded-dylib", BASE).href; // never fetched: answered from memory

// The global patches, installed once by the worker's entry before any message, in this order:
// 1. WebAssembly's compile and instantiate entry points timed (phases.js), first so every later compile is seen;
// 2. WebAssembly.instantiateStreaming, over the timed one: hands Pyodide the runtime compiled early and names a
//    runtime file that cannot compile (Pyodide 0.27 logs that failure and never settles);
// 3. fetch, XMLHttpRequest.open, WebSocket, EventSource, WebTransport: integrity and same-origin only (fetch.js);
// 4. once pyodide.asm.js has run: its module factory _createPyodideModule, wrapped by preloadSideModules, and
//    XMLHttpRequest and WebAssembly.instantiate swapped only while that factory runs (Emscripten reads
//    dynamicLibraries with the one and instantiates them with the other: compileAhead); for a shipped snapshot,
//    API.restoreSnapshot replaced for the one call that follows (restoreFromDelta).
// Internals read besides: API.restoreSnapshot's header check, a snapshot's header length (its second word),
// Module._sbrk (the fresh heap's break) and _emscripten_builtin_malloc (zeroing free memory at build time), LDSO's
// handle tables.
export function installPatches() {
  Object.assign(WebAssembly, timedWasm(WebAssembly));
  WebAssembly.instantiateStreaming = reportingInstantiateStreaming(WebAssembly.instantiateStreaming);
  self.fetch = checkedFetch;
  if (self.XMLHttpRequest) XMLHttpRequest.prototype.open = checkedXhrOpen(XMLHttpRequest.prototype.open);
  for (const name of ["WebSocket", "EventSource", "WebTransport"]) {
    if (self[name]) self[name] = refusedConnection(name);
  }
}

let early = null; // { path, module: Promise<WebAssembly.Module> }: the runtime compiled before loadPyodide asked

// runtime-start.js compiles the runtime's Wasm while the rest starts; Pyodide's own instantiate then uses it.
export function useCompiledRuntime(path, module) {
  early = { path, module };
}

function reportingInstantiateStreaming(instantiateStreaming) {
  return async function reportingInstantiateStreaming(source, imports) {
    const given = early;
    try {
      if (given) {
        const module = await given.module;
        const instance = await during("runtime_instantiate", () => WebAssembly.instantiate(module, imports));
        return { module, instance };
      }
      return await instantiateStreaming.call(WebAssembly, source, imports);
    } catch (err) {
      // A LinkError is the imports' fault (a damaged memory snapshot), not the file's: the snapshot code handles it.
      const response = given ? null : await Promise.resolve(source).catch(() => null);
      const path = given ? given.path : response?.url ? sitePath(new URL(response.url)) : null;
      if (path && (err instanceof WebAssembly.CompileError || err instanceof TypeError)) {
        failRuntimeFile(path, new UserError(`The Python runtime file ${path} could not be compiled (${err.name}: ` +
          `${String(err.message).slice(0, 120)}): it is damaged. The site must be re-uploaded.`, "SetupError"));
      }
      throw err;
    }
  };
}

// Whether pyodide.asm.js has run: loadPyodide then uses the factory it defined instead of loading the script again.
export function runtimeScriptEvaluated() {
  return typeof globalThis._createPyodideModule === "function";
}

// loadPyodide with the snapshot options: `restore` (heap bytes) boots from a memory snapshot, `makeSnapshot`
// keeps what makeMemorySnapshot needs. A restored interpreter keeps it too (its JS references then come back as
// the same recorded paths), so that it can be snapshotted again once a model is loaded (nextvisit.js).
export function loadPyodide(options, { restore = null, makeSnapshot = false } = {}) {
  const extra = restore ? { _loadSnapshot: restore, _makeSnapshot: true } : makeSnapshot ? { _makeSnapshot: true } : {};
  return loadPublic({ ...options, ...extra });
}

// Plausible bytes of a 0.27 snapshot, or with `minBytes` = 16 of its header alone (the magic word it starts with);
// the restore itself finds the rest.
export function looksLikeSnapshot(bytes, minBytes = 1 << 20) {
  return bytes instanceof Uint8Array && bytes.byteLength >= minBytes &&
    new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === SNAPSHOT_MAGIC;
}

// A snapshot's parts: Pyodide's header (magic, build id, the JS references as JSON) and the heap's bytes after it.
export function snapshotParts(bytes) {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  return { header: bytes.subarray(0, headerLength), heap: bytes.subarray(headerLength) };
}

let freshBreak = null; // the heap's break right after this worker's module was created, before any restore

// The break of this worker's freshly created heap (null: not known); past it that heap was all zero (heapruns.js).
export function freshHeapBreak() {
  return freshBreak;
}

export function takeMemorySnapshot(pyodide) {
  try {
    return pyodide.makeMemorySnapshot();
  } catch {
    // Garbage that still holds JavaScript objects makes it refuse; a full collection (~40 ms after the imports)
    // only then, not on every first visit.
    pyodide.runPython("import gc; gc.collect()");
    return pyodide.makeMemorySnapshot();
  }
}

// Answers Emscripten's requests for the planned modules from memory; every other request goes to the network.
function memoryXhr(files) {
  const Base = globalThis.XMLHttpRequest;
  return class PreloadRequest extends Base {
    open(method, url, ...rest) {
      const path = String(url).startsWith(PRELOAD_URL) ? String(url).slice(PRELOAD_URL.length) : null;
      this.wvBytes = path !== null ? files.get(path) ?? null : null;
      if (!this.wvBytes) super.open(method, url, ...rest);
    }

    send(body) {
      if (!this.wvBytes) return super.send(body);
      setTimeout(() => this.onload?.(), 0);
      return undefined;
    }

    get status() {
      return this.wvBytes ? 200 : super.status;
    }

    get response() {
      const b = this.wvBytes;
      if (!b) return super.response;
      return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer;
    }
  };
}

// The planned side modules ({libs, files}: dylibs.js) compiled as soon as their bytes are known, on the browser's
// compile threads, instead of one after the other inside the module factory once the runtime and the snapshot are
// in. Keyed by each file's ArrayBuffer, which Emscripten's loader gets back from memoryXhr whole.
export function compileAhead(plan) {
  if (!plan || plan.compiled) return;
  plan.compiled = new Map([...plan.files.values()].map((bytes) => {
    const module = WebAssembly.compile(bytes);
    module.catch(() => {}); // then instantiated from its bytes as before, which reports the failure
    return [bytes.buffer, module];
  }));
}

// WebAssembly.instantiate(bytes, imports) answered with the module compiled ahead for those bytes, when there is one.
function aheadInstantiate(instantiate, compiled) {
  return async function instantiateAhead(source, imports) {
    const ahead = ArrayBuffer.isView(source) && source.byteOffset === 0 ? compiled.get(source.buffer) : null;
    const module = ahead ? await ahead.catch(() => null) : null;
    if (!module) return instantiate.call(WebAssembly, source, imports);
    return { module, instance: await instantiate.call(WebAssembly, module, imports) };
  };
}

let nextBoot = null; // { plan: Promise, expect: libs or null, delta }: read by the next _createPyodideModule call

// The next loadPyodide loads the planned side modules ({libs, files} or null) as dynamicLibraries, in order.
// `expect`: the list a snapshot being restored was made with; any other plan refuses the restore (loadPyodide
// rejects, the caller boots normally). Needs pyodide.asm.js evaluated (runtimeScriptEvaluated).
// `delta` (shipped.js's parsed delta: {header, runs, data, checked}): the snapshot is the freshly created heap with
// the delta's blocks written over it, applied in place by Pyodide's restoreSnapshot (replaced for that one call),
// once `checked` (null or a promise) has settled without error.
export function preloadSideModules(plan, expect = null, delta = null) {
  const create = globalThis._createPyodideModule;
  if (!create.wvPreloading) {
    const wrapped = async (settings) => {
      const boot = nextBoot;
      nextBoot = null;
      if (!boot) return create(settings);
      const planned = await during("preload_wait", () => boot.plan); // null: nothing to preload (a normal boot then)
      if (boot.expect && JSON.stringify(boot.expect) !== JSON.stringify(planned?.libs)) {
        throw new Error("the snapshot was made with other Wasm side modules");
      }
      if (!planned) return create(settings);
      const { libs, files } = planned;
      settings.dynamicLibraries = libs;
      const locate = settings.locateFile;
      settings.locateFile = (path) => (files.has(path) ? PRELOAD_URL + path : locate(path));
      const xhr = globalThis.XMLHttpRequest;
      const instantiate = WebAssembly.instantiate;
      globalThis.XMLHttpRequest = memoryXhr(files);
      if (planned.compiled) WebAssembly.instantiate = aheadInstantiate(instantiate, planned.compiled);
      let module;
      try {
        module = await during("module_create", () => create(settings));
        freshBreak = module._sbrk(0);
      } finally {
        globalThis.XMLHttpRequest = xhr;
        WebAssembly.instantiate = instantiate;
      }
      if (boot.delta?.checked) await boot.delta.checked;
      if (boot.delta) restoreFromDelta(settings.API, module, boot.delta);
      else if (boot.expect) timedRestore(settings.API);
      if (boot.fresh) boot.fresh(module.HEAPU8.slice(0, boot.fresh.bytes));
      return module;
    };
    wrapped.wvPreloading = true;
    globalThis._createPyodideModule = wrapped;
  }
  nextBoot = { plan, expect, delta };
}

// Pyodide's restoreSnapshot(bytes) checks the header (magic, build id), reads its JSON and copies the heap after it.
// Here the heap is already the fresh one: given the header alone it checks and copies nothing; the changed runs
// are then written in place (heapruns.js; no copy of the whole heap).
function restoreFromDelta(api, module, delta) {
  const restore = api.restoreSnapshot;
  api.restoreSnapshot = () => {
    api.restoreSnapshot = restore;
    begin("delta_apply");
    const json = restore(delta.header);
    applyRuns(module.HEAPU8, delta, module._sbrk(0));
    end("delta_apply");
    return json;
  };
}

// A stored snapshot's restore (Pyodide copies the heap), timed as its own phase.
function timedRestore(api) {
  const restore = api.restoreSnapshot;
  api.restoreSnapshot = (bytes) => {
    api.restoreSnapshot = restore;
    begin("snapshot_copy");
    try {
      return restore(bytes);
    } finally {
      end("snapshot_copy");
    }
  };
}

// The heap as _createPyodideModule leaves it (side modules loaded, nothing run) for a snapshot of `total` bytes
// booted with `options`: what a shipped delta is made against (build time only). The module is then dropped.
export async function freshHeap(options, plan, total, heapBytes) {
  let fresh = null;
  preloadSideModules(plan);
  nextBoot.fresh = Object.assign((bytes) => {
    fresh = bytes;
    throw new Error("fresh heap taken");
  }, { bytes: heapBytes });
  await loadPyodide(options, { restore: new Uint8Array(total) }).catch(() => {});
  if (!fresh) throw new Error("no fresh heap");
  return fresh;
}

// Zeroes the allocator's free memory before a shipped snapshot is taken (stale bytes there would ship in the delta):
// small blocks are allocated until the allocator would take more from sbrk, zeroed, then freed; the memory past the
// break is zeroed directly.
export function zeroFreeMemory(pyodide) {
  const m = pyodide._module;
  const malloc = m._emscripten_builtin_malloc; // dlmalloc, the allocator behind malloc (not exported itself)
  const brk = m._sbrk(0);
  const taken = [];
  for (;;) {
    const p = malloc(256);
    if (!p || m._sbrk(0) !== brk) {
      if (p) m._free(p);
      break;
    }
    m.HEAPU8.fill(0, p, p + 256);
    taken.push(p);
  }
  for (const p of taken) m._free(p);
  m.HEAPU8.fill(0, m._sbrk(0), m.HEAPU8.byteLength);
  return taken.length * 256;
}

export function cancelPreload() {
  nextBoot = null;
}

// dlopen handles by module name: the C side keeps them in the heap, the JS side (LDSO) does not survive a restore.
export function dylibHandles(pyodide) {
  const handles = {};
  for (const [h, dso] of Object.entries(pyodide._module.LDSO.loadedLibsByHandle)) {
    if (Number(h)) (handles[dso.name] ??= []).push(Number(h));
  }
  return handles;
}

export function restoreHandles(pyodide, handles) {
  const ldso = pyodide._module.LDSO;
  for (const [name, list] of Object.entries(handles)) {
    const dso = ldso.loadedLibsByName[name];
    if (!dso) throw new Error(`${name} was loaded when the snapshot was made, not now`);
    for (const h of list) ldso.loadedLibsByHandle[h] = dso;
  }
}

// Side modules loaded besides the main one and the planned ones: a snapshot taken now would not restore.
export function unplannedLibs(pyodide, libs) {
  const planned = new Set(libs);
  return Object.keys(pyodide._module.LDSO.loadedLibsByName).filter((name) => name !== "__main__" && !planned.has(name));
}

// The Wasm heap's size in bytes; 0 when it cannot be read (then no restart is asked for).
export function heapBytes(pyodide) {
  try {
    return pyodide?._module?.HEAPU8?.byteLength ?? 0;
  } catch {
    return 0;
  }
}

// Ends the interpreter the way a Pyodide fatal error does (test hook); rethrows `err` as the real one does.
export function forceFatalError(pyodide, err) {
  pyodide._api.fatal_error(err);
}
