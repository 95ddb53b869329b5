// Errors that cross from the worker to the page: a kind from a small public set and a one-line message.

export class UserError extends Error {
  constructor(message, kind = "Error") {
    super(message);
    this.kind = kind;
  }
}

// Python's exception names, as the page's users know them (wasmvision.d.ts: ErrorKind).
const PUBLIC_KIND = {
  BundleError: "ModelError",
  UnsupportedOperatorError: "ModelError",
  ModelImportError: "ModelError",
  ModelNotLoaded: "ModelError",
  MemoryError: "ResourceError",
  TrainingError: "ArgumentError",
};

export function publicKind(kind) {
  return PUBLIC_KIND[kind] ?? kind;
}

export function errorPayload(err) {
  if (err instanceof UserError) return { kind: publicKind(err.kind), message: err.message };
  // Not one of ours: a bug or a browser failure. The message still goes to the caller; the stack to the console.
  const message = (err && err.message) || String(err);
  return { kind: "InternalError", message, name: err && err.name, stack: err && err.stack };
}
