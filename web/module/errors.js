// The module's names (engines, error kinds) and how its errors are made and worded. Python's lists are in
// wasmvision.simd.ENGINES and wasmvision.browser.ERROR_KINDS; tests/test_module_names.py checks they agree.

export const ENGINES = Object.freeze(["auto", "numpy", "simd"]);

// The public error kinds (wasmvision.d.ts: ErrorKind).
export const ERROR_KINDS = Object.freeze(["ImageError", "ModelError", "SetupError", "PrivacyError", "ArgumentError",
  "EngineError", "ResourceError", "DisposedError", "InternalError", "EmptyLabelError", "SingleLabelError",
  "TooFewExamplesError", "WrongModelError"]);

export class WasmvisionError extends Error {
  constructor(kind, message, extra = {}) {
    super(message);
    this.name = "WasmvisionError";
    this.kind = kind;
    Object.assign(this, extra);
  }
}

// A worker's {kind, message} (or anything thrown) as a WasmvisionError.
export function fromPayload(error, prefix = "") {
  if (error?.stack) console.error(error.stack);
  const kind = ERROR_KINDS.includes(error?.kind) ? error.kind : "InternalError";
  return new WasmvisionError(kind, prefix + (error?.message || "unknown error"));
}

const MAX_QUOTED = 80; // characters of a caller's string shown in a message (a data: URL can be megabytes)

// A caller's string for a message: quoted, cut to MAX_QUOTED characters with the full length.
export function quote(text) {
  const s = String(text);
  if (s.length <= MAX_QUOTED) return JSON.stringify(s);
  return `${JSON.stringify(s.slice(0, MAX_QUOTED))}… (${s.length.toLocaleString("en")} characters)`;
}

// What a value is, for "got …" in a message.
export function describe(value) {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "string") return `the string ${quote(value)}`;
  if (typeof value !== "object") return `a ${typeof value}`;
  const name = value.constructor?.name;
  if (!name || name === "Object") return "an object";
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}

export function argumentError(message) {
  return new WasmvisionError("ArgumentError", message);
}
