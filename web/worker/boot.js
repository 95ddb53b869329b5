// Pyodide boot: the interpreter from the memory snapshot when there is one (numpy and wasmvision.browser already
// imported in it); else normally, then numpy and wasmvision unpacked from their wheels (checked against
// pyodide-lock.json's sha256), with loadPackage and micropip as fallbacks.
// Calls into wasmvision.browser go through callPython (JSON replies, errors as UserError).

import { UserError } from "./errors.js";
import { BASE, countAsReceived, hasReceived, orRuntimeFailure, sriFromHex } from "./fetch.js";
import { bootSetFiles, fileBytes, fileSha256, PACKAGES, runtimeFiles, shippedSnapshotFiles, STDLIB, wheelFiles }
  from "./manifest.js";
import { begin, during, end } from "./phases.js";
import { rescope, setStage } from "./progress.js";
import { planPreload, plansKernels, preloadNextBoot, unpackForRestore } from "./dylibs.js";
import { cancelPreload, compileAhead, dylibHandles, loadPyodide, restoreHandles, runtimeScriptEvaluated,
  takeMemorySnapshot, unplannedLibs } from "./pyodide-0.27.7.js";
import { bootedFrom, snapshotRead, storeLater } from "./nextvisit.js";
import { runtimeScript } from "./runtime-start.js";
import { afterRestore } from "./restored.js";
import { checkedCopy, fetchShipped, parseShipped, shippedKey, shippedSite } from "./shipped.js";
import { writeTree } from "./sitefiles.js";
import { forgetSnapshot, readSnapshot, snapshotKey } from "./snapshot.js";

const DEFAULT_MAX_PIXELS = 50e6;
const SNAPSHOT_RESTORE_TIMEOUT_MS = 15000; // a restore takes ~0.3-0.7 s; a wedged one must not keep the page waiting

// The interpreter, the wasmvision.browser module (a PyProxy), and what the boot measured. made: how a normal boot
// loaded its side modules ({key, libs, plan, options}), what a snapshot of it needs (shipmaker.js). snapshotStored: whether
// the page saw a snapshot stored on an earlier visit (true, false, or null: it cannot tell); only a hint.
export const runtime = { pyodide: null, browser: null, maxPixels: DEFAULT_MAX_PIXELS, timings: {},
  snapshotStored: null, made: null };
const timings = runtime.timings;

export function callPython(fn, args, kwargs = null) {
  const f = runtime.browser[fn];
  const text = kwargs ? f.callKwargs(...args, kwargs) : f(...args);
  const reply = JSON.parse(text);
  if (!reply.ok) {
    if (reply.error.traceback) console.error(`wasmvision.browser.${fn} failed:\n${reply.error.traceback}`);
    // A Python exception with a traceback is a bug, whatever its class; the others are the caller's mistakes.
    const err = new UserError(reply.error.message, reply.error.traceback ? "InternalError" : reply.error.kind);
    err.pythonKind = reply.error.kind;
    throw err;
  }
  return reply.value;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const bootStderr = []; // what Python printed while booting: names the stdlib when it is what failed

// The stdlib zip this boot most likely reads: a build with a shipped snapshot restores it, or the visitor's stored
// copy of it, from its small stdlib.
export function bootStdlib() {
  return shippedSnapshotFiles()?.stdlib ?? STDLIB;
}

// The progress scope follows the files this boot reads (manifest.js, bootSetFiles): the build's snapshot's ("shipped"),
// its small zips only (a stored copy of it: "copy"), or the full stdlib and the wheels ("full"). A file already
// requested stays: its bytes come over the network anyway.
function readingSet(how) {
  const read = bootSetFiles(how !== "full").filter((path) => how !== "copy" || path !== shippedSnapshotFiles().file);
  const unread = [...bootSetFiles(true), ...bootSetFiles(false)].filter((p) => !read.includes(p) && !hasReceived(p));
  rescope(unread, read);
}

function bootOptions(stdlib = STDLIB) {
  timings.stdlib = stdlib; // the last boot's: which file set a later visit needs (offline.js keeps that one)
  return {
    indexURL: new URL("./pyodide/", BASE).href,
    stdLibURL: new URL(stdlib, BASE).href,
    stdout: (s) => console.log(s),
    stderr: (s) => {
      if (bootStderr.length < 200) bootStderr.push(s);
      console.warn(s);
    },
  };
}

// Pyodide's own boot errors rarely say which file was bad ("Unexpected end of input", "Program terminated with
// exit(1)", a JSON SyntaxError): name it from the error's shape and what Python printed.
function namedBootFailure(err) {
  if (err instanceof UserError) return err;
  const message = String(err?.message ?? err).split("\n")[0].slice(0, 120);
  let path = null;
  if (!runtimeScriptEvaluated()) path = "pyodide/pyodide.asm.js";
  else if (err instanceof SyntaxError && /JSON/.test(message)) path = "pyodide/pyodide-lock.json";
  else if (bootStderr.some((line) => /python3\d*\.zip|zipimport|encodings/.test(line))) {
    path = "pyodide/python_stdlib.zip";
  }
  if (!path) return err;
  return new UserError(`The Python runtime file ${path} could not be used (${message}): it is damaged. The site ` +
    "must be re-uploaded.", "SetupError");
}

// Boots the interpreter: from the stored snapshot (numpy and wasmvision.browser already imported in it) when there
// is one, else normally with numpy's and the kernels' side modules loaded first (dylibs.js), so that a snapshot can
// be taken once the packages are imported. `packages`: the wheels and what is made from them (wheelSource).
// Returns { pyodide, restored, snapshot: what takeSnapshot needs, or null }.
async function bootInterpreter(allowRestore, packages) {
  const key = snapshotKey(PACKAGES);
  // The build's snapshot (shipped.js) serves when none is stored here; a visitor restored from it stores it as
  // restored (under shippedKey), and restores that copy from the same small zips. Those, not the wheels, are fetched
  // at once on such a build; the wheels only for a normal boot or a snapshot stored after one.
  const shipped = allowRestore && key ? shippedSnapshotFiles() : null;
  const read = async () => {
    const found = await readSnapshot(shipped ? [key, shippedKey(key)] : [key]);
    return found && found !== "damaged" && found.key !== key ? { ...found, shipped: true } : found;
  };
  // When the page saw none stored, the shipped one is restored without looking: on a first visit the look (two
  // stores, twice) answered only after ~1 s, this thread being busy with the runtime's script and downloads.
  const look = key && allowRestore && !(shipped && runtime.snapshotStored === false);
  const reading = look ? during("snapshot_read", read) : Promise.resolve(null);
  if (shipped) {
    if (runtime.snapshotStored !== true) fetchShipped();
    shippedSite().then(({ plan }) => compileAhead(plan), () => {});
  } else {
    // The wheels are needed either way (a restore takes its code files from them): their download starts at once,
    // beside the runtime's. When the page saw no snapshot stored, their side modules are extracted before the
    // snapshot read answers: on a first visit that answer came late (~250-350 ms, this thread being busy with the
    // runtime's script), and Python's start waits for them.
    packages.wheels();
    if (runtime.snapshotStored === false) packages.plan();
    reading.then((record) => record && record !== "damaged" ? packages.site().then((site) => site.plan) :
      packages.plan()).then(compileAhead).catch(() => {});
  }
  const scriptLoaded = runtimeScript(); // checked and evaluated beside the snapshot read (runtime-start.js)
  scriptLoaded.catch(() => {});
  const record = await reading;
  // A heap read straight from the stored file (snapshot.js) is closed by restore(), or here if it never runs.
  scriptLoaded.catch(() => record?.delta?.data?.close?.());
  snapshotRead(record === "damaged" ? null : record);
  if (record && record !== "damaged") readingSet(record.shipped ? "copy" : "full");
  await scriptLoaded;
  if (record === "damaged") timings.snapshot = "failed";
  else if (record) {
    try {
      const py = await (record.kind === "delta" ?
        restoreShipped(record.bytes, key, shipped, checkedCopy(record.bytes)) :
        record.shipped ? restore(record, shippedSite(), shipped.stdlib) : restore(record, packages.site(), STDLIB));
      timings.snapshot = "restored";
      timings.snapshot_store = record.store;
      return { pyodide: py, restored: true, snapshot: null };
    } catch (err) {
      cancelPreload();
      console.warn("wasmvision: memory snapshot unusable, booting normally:", err.message);
      timings.snapshot = "failed";
      await forgetSnapshot();
    }
  }
  if (shipped) {
    try {
      const bytes = await during("shipped_fetch", fetchShipped);
      const py = await during("shipped_restore", () => restoreShipped(bytes, key, shipped));
      timings.snapshot = "shipped";
      // This visitor's copy of the delta: a repeat visit reads it from local storage (14 MB; the delta carries its
      // own side-module list and handles) instead of asking the HTTP cache or the service worker again.
      storeLater(shippedKey(key), { bytes, libs: [], handles: {}, kind: "delta" });
      return { pyodide: py, restored: true, snapshot: null };
    } catch (err) {
      cancelPreload();
      console.warn("wasmvision: the site's memory snapshot is unusable, booting normally:", err.message);
      timings.shipped_failed = String(err.message).slice(0, 200);
    }
  }
  readingSet("full");
  const plan = packages.plan();
  if (key) await preloadNextBoot(plan);
  const py = await orRuntimeFailure(loadPyodide(bootOptions(), { makeSnapshot: Boolean(key) }));
  const preloaded = key ? await plan : null;
  if (preloaded) runtime.made = { key, libs: preloaded.libs, plan, options: bootOptions() };
  return { pyodide: py, restored: false, snapshot: preloaded && { key, libs: preloaded.libs } };
}

// The shipped delta (`bytes`: fetched, or this visitor's stored copy of it), restored over a freshly created heap.
// `checked`: null, or a promise that rejects when a stored copy is not the manifest's file (awaited before the
// delta is applied).
function restoreShipped(bytes, key, shipped, checked = null) {
  const { libs, handles, total, delta } = parseShipped(bytes, key);
  delta.checked = checked;
  return restore({ key: shippedKey(key), libs, handles, total, delta }, shippedSite(), shipped.stdlib);
}

// A restore: from stored bytes (`bytes`) or the shipped delta (`delta`, `total`: the snapshot's size), with the
// side modules and site-packages from `site` ({plan, files}: the checked wheels or the shipped zip) and `stdlib`;
// then what must differ per visitor reseeded (a stored copy of the shipped snapshot holds the build's seeds).
// `key`: what it is stored under; `model`: the model its heap holds loaded (nextvisit.js).
async function restore({ key, libs, handles, bytes = null, delta = null, total = 0, model = null }, site, stdlib) {
  let py;
  try {
    await preloadNextBoot(site.then(({ plan }) => plan), libs, delta);
    py = await withTimeout(orRuntimeFailure(loadPyodide(bootOptions(stdlib),
      { restore: bytes ?? new Uint8Array(total) })), SNAPSHOT_RESTORE_TIMEOUT_MS, "Restoring the memory snapshot");
  } finally {
    delta?.data?.close?.(); // runs read straight from the stored file (snapshot.js): read by now, or never
  }
  restoreHandles(py, handles);
  const { files } = await site;
  await during("site_files", () => writeTree(py.FS, files));
  // A restored heap whose side modules sit elsewhere than when it was made fails here, not in a classify.
  await during("snapshot_check", () => py.runPython(afterRestore(libs, fileSha256(stdlib))));
  bootedFrom(key, libs, model, timings);
  return py;
}

// Takes the snapshot a repeat visit restores (numpy and wasmvision.browser imported, the kernel library loaded and
// checked) and stores it once the page is idle. Before any model is loaded (the heap would carry
// it) and before anything makes Python hold JS objects (makeMemorySnapshot refuses those).
function takeSnapshot(pyodide, { key, libs }) {
  try {
    begin("snapshot_make");
    if (plansKernels(libs)) {
      pyodide.runPython("from wasmvision.simd import default_library; default_library()");
    }
    const unplanned = unplannedLibs(pyodide, libs);
    if (unplanned.length) throw new Error(`side modules loaded after start-up: ${unplanned.join(", ")}`);
    const handles = dylibHandles(pyodide);
    const bytes = takeMemorySnapshot(pyodide);
    timings.snapshot = timings.snapshot || "made";
    storeLater(key, { bytes, libs, handles });
    bootedFrom(key, libs, null, timings);
  } catch (err) {
    console.warn("wasmvision: could not make a memory snapshot:", err.message);
  } finally {
    end("snapshot_make");
  }
}

export async function startPython() {
  bootStderr.length = 0;
  try {
    await startPythonWithFallback();
  } catch (err) {
    throw namedBootFailure(err);
  }
}

async function startPythonWithFallback() {
  try {
    await startPythonOnce(true);
  } catch (err) {
    if (timings.snapshot !== "restored" && timings.snapshot !== "shipped") throw err;
    // The restored interpreter booted but could not load the packages: never trust that snapshot again.
    console.warn("wasmvision: booting from the memory snapshot failed, booting normally:", err.message);
    if (timings.snapshot === "restored") await forgetSnapshot();
    timings.snapshot = "failed";
    await startPythonOnce(false);
  }
}

async function startPythonOnce(allowRestore) {
  const t0 = performance.now();
  setStage("runtime", "Downloading the Python runtime", runtimeFiles(),
    ["Starting Python", ["pyodide/pyodide.asm.wasm", bootStdlib()]]);
  const packages = wheelSource();
  const { pyodide, restored, snapshot } = await during("runtime", () => bootInterpreter(allowRestore, packages));
  runtime.pyodide = pyodide;
  // pyodide.asm.js arrives by importScripts or import() (and the loader inside worker.js), not fetch(): count them as
  // received once the runtime is up.
  for (const path of ["pyodide/pyodide.asm.js", "pyodide/pyodide.mjs"]) countAsReceived(path, fileBytes(path));
  timings.runtime_ms = performance.now() - t0;

  const t1 = performance.now();
  setStage("packages", "Loading numpy and wasmvision", restored ? [] : wheelFiles(PACKAGES));
  const failures = [];
  const quiet = { messageCallback: () => {}, errorCallback: (msg) => failures.push(msg) };
  let browser = null;
  begin("packages");
  try {
    if (restored) {
      browser = pyodide.pyimport("wasmvision.browser");
      timings.packages_via = "snapshot";
    } else {
      await orRuntimeFailure(unpackWheels(pyodide, await during("wheels_wait", () => packages.wheels())));
      timings.packages_install_ms = performance.now() - t1;
      // numpy apart from wasmvision only to time them apart; it loads the extension modules it needs.
      await during("import_numpy", () => pyodide.runPython("import numpy"));
      await during("import_wasmvision", () => pyodide.runPython("import wasmvision.browser"));
      if (snapshot) takeSnapshot(pyodide, snapshot);
      browser = pyodide.pyimport("wasmvision.browser");
      timings.packages_via = "unpack";
    }
  } catch (err) {
    if (restored) throw err; // startPythonWithFallback forgets that snapshot and boots normally
    failures.push(err.message);
  }
  if (!browser) {
    try {
      await orRuntimeFailure(pyodide.loadPackage(PACKAGES, quiet));
      browser = pyodide.pyimport("wasmvision.browser");
      timings.packages_via = "loadPackage";
    } catch (err) {
      // A lock without our wheel (e.g. a hand-assembled site): numpy from the lock, wasmvision via micropip.
      failures.push(err.message);
      await orRuntimeFailure(pyodide.loadPackage("numpy", quiet));
      browser = await orRuntimeFailure(installWithMicropip(pyodide, failures));
      timings.packages_via = "micropip";
    }
  }
  end("packages");
  runtime.browser = browser;
  runtime.maxPixels = Number(browser.max_pixels()) || DEFAULT_MAX_PIXELS;
  timings.packages_ms = performance.now() - t1;
}

// The wheels, fetched on the first call only, and made from them on first use: `plan()`, the side modules a normal
// boot loads first (planPreload; null when they cannot be had), or `site()`, every file a restore writes and its plan
// (unpackForRestore). Both from the checked wheels: a restore trusts no code kept in local storage.
function wheelSource() {
  let wheels = null;
  let plan = null;
  let site = null;
  const source = {
    wheels() {
      if (!wheels) {
        wheels = fetchWheels(PACKAGES);
        wheels.catch(() => {}); // awaited later; a failure there falls back to loadPackage
      }
      return wheels;
    },
    plan() {
      plan ??= source.wheels().then(([numpy, ours]) => during("dylibs_extract", () => planPreload(numpy, ours),
        { background: true })).catch((err) => {
        console.warn("wasmvision: no memory snapshot: numpy's side modules cannot be loaded at start-up:", err.message);
        return null;
      });
      return plan;
    },
    site() {
      site ??= source.wheels().then(([numpy, ours]) => during("site_extract", () => unpackForRestore(numpy, ours),
        { background: true }));
      site.catch(() => {}); // a restore without it fails and boots normally
      return site;
    },
  };
  return source;
}

// Unpacks wheels listed in pyodide-lock.json into site-packages, checked against the lock's sha256. Why not
// pyodide.loadPackage: it also loads every Wasm extension module of a package up front (numpy: 19 of them, for
// random, fft, linalg, ...), while `import numpy` needs 3 and Python loads those itself on import (Chromium, packages
// stage medians: first visit 0.94 -> 0.59 s, repeat visit 0.91 -> 0.75 s; docs/perf.md). Any failure here falls back
// to loadPackage.
async function fetchWheels(names) {
  begin("wheels_fetch", { background: true });
  const lockUrl = new URL("./pyodide/pyodide-lock.json", BASE);
  const response = await fetch(lockUrl);
  if (!response.ok) throw new Error(`pyodide-lock.json: HTTP ${response.status}`);
  const lock = await response.json();
  const entries = names.map((name) => lock.packages?.[name]);
  const missing = names.filter((_, i) => !entries[i]?.file_name);
  if (missing.length) throw new Error(`pyodide-lock.json does not list ${missing.join(", ")}`);
  const wheels = await Promise.all(entries.map(async (e) => {
    const url = new URL(e.file_name, lockUrl);
    const r = await fetch(url, e.sha256 ? { integrity: sriFromHex(e.sha256) } : {});
    if (!r.ok) throw new Error(`${e.file_name}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  }));
  end("wheels_fetch");
  return wheels;
}

function unpackWheels(pyodide, wheels) {
  begin("unpack");
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  for (const wheel of wheels) pyodide.unpackArchive(wheel, "wheel", { extractDir: sitePackages });
  end("unpack");
}

async function installWithMicropip(pyodide, failures) {
  // Fallback for a site whose pyodide-lock.json does not list our wheel: install it from the site with micropip.
  const wheel = wheelFiles(["wasmvision"])[0];
  if (!wheel) {
    throw new UserError("The wasmvision package is missing from this site (pyodide-lock.json and manifest.json " +
      `do not list it). ${failures.join(" ")}`, "SetupError");
  }
  setStage("packages", "Installing wasmvision", [wheel]);
  await pyodide.loadPackage("micropip", { messageCallback: () => {} });
  const micropip = pyodide.pyimport("micropip");
  await micropip.install.callKwargs(new URL(wheel, BASE).href, { deps: false });
  return pyodide.pyimport("wasmvision.browser");
}
