// dist/manifest.json: every file of the site with its size and hash, and the built-in models.

import { BASE, setExpectedHashes } from "./fetch.js";

export const manifest = { files: new Map(), models: [], raw: null };

function normalizeFiles(files) {
  const list = Array.isArray(files)
    ? files
    : Object.entries(files || {}).map(([path, v]) => (typeof v === "object" ? { path, ...v } : { path, bytes: v }));
  const out = new Map();
  for (const f of list) {
    const path = String(f.path ?? f.name ?? f.file ?? "").replace(/^\.?\//, "");
    if (path) out.set(path, { bytes: Number(f.bytes ?? f.size ?? 0), sha256: f.sha256 });
  }
  return out;
}

export async function loadManifest() {
  let raw;
  try {
    const response = await fetch(new URL("manifest.json", BASE), { cache: "no-cache" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    raw = await response.json();
  } catch (err) {
    // Without a manifest the page still works with the default model; only byte totals are unknown.
    console.warn("wasmvision: manifest.json unavailable, using defaults:", err.message);
    raw = { files: [], models: [{ name: "mobilenet_v2", file: "models/mobilenet_v2.wvb" }] };
  }
  manifest.raw = raw;
  manifest.files = normalizeFiles(raw.files);
  // From here on every listed file is fetched with the manifest's sha256 as its integrity (fetch.js).
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

export function runtimeFiles() {
  return ["pyodide/pyodide.asm.wasm", "pyodide/python_stdlib.zip", "pyodide/pyodide-lock.json",
    "pyodide/pyodide.mjs", "pyodide/pyodide.asm.js"];
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
