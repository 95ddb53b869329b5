// dist/manifest.json: every file of the site with its size and hash, and the built-in models.

import { UserError } from "./errors.js";
import { BASE, setExpectedHashes } from "./fetch.js";

export const manifest = { files: new Map(), models: [], raw: null };

function normalizeFiles(files) {
  const list = Array.isArray(files)
    ? files
    : Object.entries(files || {}).map(([path, v]) => (typeof v === "object" ? { path, ...v } : { path, bytes: v }));
  const out = new Map();
  for (const f of list) {
    if (!f || typeof f !== "object") continue;
    const path = String(f.path ?? f.name ?? f.file ?? "").replace(/^\.?\//, "");
    if (path) out.set(path, { bytes: Number(f.bytes ?? f.size ?? 0), sha256: f.sha256 });
  }
  return out;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

// The root of trust: without a readable manifest listing every file with its sha256 nothing could be checked, so
// nothing starts.
function unusable(why) {
  return new UserError(`The site's manifest.json ${why}: wasmvision checks every file against it and does not ` +
    "start without it. Reload the page; if this persists, the site is incomplete.", "SetupError");
}

export async function loadManifest() {
  let raw;
  let response;
  try {
    response = await fetch(new URL("manifest.json", BASE), { cache: "no-cache" });
  } catch (err) {
    throw unusable(`could not be downloaded (${String(err.message).slice(0, 80)})`);
  }
  if (!response.ok) throw unusable(`could not be downloaded (HTTP ${response.status})`);
  try {
    raw = JSON.parse(await response.text());
  } catch {
    throw unusable("is not valid JSON");
  }
  const files = normalizeFiles(raw?.files);
  if (!files.size || [...files.values()].some((f) => !SHA256_HEX.test(String(f.sha256)))) {
    throw unusable("does not list the site's files with their sha256");
  }
  manifest.raw = raw;
  manifest.files = files;
  // From here on every listed file is checked against the manifest's sha256 as it is fetched (fetch.js).
  setExpectedHashes(fileSha256);
  manifest.models = (raw.models || []).map((m, i) => {
    const file = String(m.file ?? m.path ?? "").replace(/^\.?\//, "");
    const key = m.key ?? m.id ?? (file.split("/").pop() || m.name || `model${i}`).replace(/\.(wvb|onnx)$/i, "");
    return {
      key, name: m.name ?? key, title: m.title ?? m.name ?? key, version: m.version ?? "", file, builtin: true,
      bytes: Number(m.bytes ?? manifest.files.get(file)?.bytes ?? 0),
      storage: m.storage ?? m.weights ?? m.dtype ?? "", default: Boolean(m.default),
      description: m.description ?? "",
    };
  });
}

export function fileBytes(path) {
  return manifest.files.get(path)?.bytes ?? 0;
}

export function fileSha256(path) {
  return manifest.files.get(path)?.sha256 ?? "";
}

export function defaultModel() {
  return manifest.models.find((m) => m.default) || manifest.models.find((m) => m.name === "mobilenet_v2") ||
    manifest.models[0];
}

// The code this page and its worker run that arrived by <script>, import or new Worker(), where no integrity
// can be given: the site's pages, scripts and styles (this page's among them), the worker's modules, Pyodide's
// loader. Checked by fetching them again with integrity (from the HTTP cache) once the manifest is known.
export function codeFiles() {
  const out = [];
  for (const path of manifest.files.keys()) {
    const page = !/^(pyodide|models)\//.test(path) && /\.(js|mjs|html|css)$/.test(path);
    if (page || path === "pyodide/pyodide.mjs") out.push(path);
  }
  return out;
}

// The memory snapshot made at build time (shipped.js), when this build ships one: { file, stdlib, packages } (site
// paths of the delta, the stdlib zip and the site-packages zip a restore from it reads), else null.
export function shippedSnapshotFiles() {
  const s = manifest.raw?.snapshot;
  const all = [s?.file, s?.stdlib, s?.packages];
  return all.every((f) => typeof f === "string" && manifest.files.has(f)) ?
    { file: s.file, stdlib: s.stdlib, packages: s.packages } : null;
}

export const STDLIB = "pyodide/python_stdlib.zip";
export const PACKAGES = ["numpy", "wasmvision"];
const CORE = ["pyodide/pyodide.asm.wasm", "pyodide/pyodide-lock.json", "pyodide/pyodide.mjs", "pyodide/pyodide.asm.js"];

// What a boot reads besides the runtime's core: from the build's snapshot its three files, else (a normal boot, or a
// restore of the visitor's own snapshot) the full stdlib and the wheels. `viaShipped` defaults to the plan.
export function bootSetFiles(viaShipped = shippedSnapshotFiles() !== null) {
  const shipped = viaShipped ? shippedSnapshotFiles() : null;
  return shipped ? [shipped.file, shipped.stdlib, shipped.packages] : [STDLIB, ...wheelFiles(PACKAGES)];
}

// Everything the planned boot downloads (the progress scope of a first load; boot.js rescopes when it goes another way).
export function bootFiles() {
  return [...CORE, ...bootSetFiles()];
}

// The runtime stage's files: the core and the stdlib the planned boot reads.
export function runtimeFiles() {
  return [...CORE, shippedSnapshotFiles()?.stdlib ?? STDLIB];
}

export function wheelFiles(prefixes) {
  const out = [];
  for (const path of manifest.files.keys()) {
    const base = path.split("/").pop();
    if (path.startsWith("pyodide/") && base.endsWith(".whl") && prefixes.some((p) => base.startsWith(p + "-"))) {
      out.push(path);
    }
  }
  return out;
}
