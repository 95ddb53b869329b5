// Input conversion: what a caller passes (an image of any kind, a model source, labels) checked and turned into
// what the worker's messages carry. Page-only objects (elements) become ImageBitmaps here; a URL is resolved against
// the page, as an <img src> would be; data: and blob: URLs are read here, where they belong.

import { WasmvisionError, describe, quote } from "./errors.js";

function has(name) {
  return typeof globalThis[name] === "function";
}

function is(value, name) {
  return has(name) && value instanceof globalThis[name];
}

export function pageUrl() {
  return typeof document !== "undefined" ? document.baseURI : self.location.href;
}

const BITMAP_OPTIONS = { premultiplyAlpha: "none", colorSpaceConversion: "none" };

async function bitmapOf(source, what) {
  try {
    return await createImageBitmap(source, BITMAP_OPTIONS);
  } catch (err) {
    throw new WasmvisionError("ImageError", `${what} could not be read as an image (${err.name}).`);
  }
}

// A data: URL is named by its length, never echoed (it can be megabytes); a blob: URL is a short name of its own.
function urlName(url) {
  return url.protocol === "data:" ? `data: URL (${url.href.length.toLocaleString("en")} characters)` : url.href;
}

// A data:, blob: or same-site URL read in the page (the worker's fetch knows only the site's files) into a named File.
async function readLocalUrl(url, kind) {
  const name = urlName(url);
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return new File([await response.blob()], name);
  } catch (err) {
    const why = url.protocol === "blob:" ? "it was revoked, or it belongs to another page" : "it is malformed";
    throw new WasmvisionError(kind, `The ${name} could not be read (${err.message}): ${why}.`);
  }
}

// The file behind an image URL the page may read (its own site, data:, blob:), or null: sent as a file, the worker
// strips colour profiles and orients it as natively; a bitmap made here would be colour-managed by WebKit.
async function readableFile(url) {
  if (url.origin !== new URL(pageUrl()).origin && url.protocol !== "data:" && url.protocol !== "blob:") return null;
  // null on failure, e.g. a CSP that allows data:/blob: for images only: the caller decodes it as an <img>.
  return readLocalUrl(url, "ImageError").catch(() => null);
}

// A data: or blob: URL of an image: its bytes when the page may fetch them, else decoded as an <img src> would (a
// page's CSP allows these for images, not always for fetch); in a worker, read with fetch.
async function localImage(url) {
  if (typeof Image !== "function") return [{ kind: "blob", blob: await readLocalUrl(url, "ImageError") }, []];
  const file = await readableFile(url);
  if (file) return [{ kind: "blob", blob: file }, []];
  const img = new Image();
  img.src = url.href;
  try {
    await img.decode();
  } catch {
    const why = url.protocol === "blob:" ? "it is not an image, it was revoked, or it belongs to another page"
      : "it is not an image, or it is malformed";
    throw new WasmvisionError("ImageError", `The ${urlName(url)} could not be read as an image: ${why}.`);
  }
  const bitmap = await bitmapOf(img, `The ${urlName(url)}`);
  return [{ kind: "bitmap", bitmap }, [bitmap]];
}

function toUrl(input, kind) {
  try {
    return new URL(String(input), pageUrl());
  } catch {
    throw new WasmvisionError(kind, `Not a URL: ${quote(input)}.`);
  }
}

// One image -> [message for the worker, buffers to transfer]. A Float32Array is an embedding of the model (from
// embed() or classify({embedding: true})): a custom head takes it instead of an image (copied: the caller keeps it).
export async function toMessage(input) {
  if (is(input, "Blob")) return [{ kind: "blob", blob: input }, []];
  if (is(input, "Float32Array")) return [{ kind: "embedding", vector: input }, []];
  if (typeof input === "string" || is(input, "URL")) {
    const url = toUrl(input, "ImageError");
    if (url.protocol === "data:" || url.protocol === "blob:") return localImage(url);
    return [{ kind: "url", url: url.href }, []];
  }
  if (is(input, "ImageData")) return [{ kind: "imagedata", image: input }, []];
  if (is(input, "ImageBitmap")) {
    if (!input.width || !input.height) {
      throw new WasmvisionError("ImageError", "The ImageBitmap has no pixels (it is closed, or 0 × 0).");
    }
    return [{ kind: "bitmap", bitmap: input }, []]; // copied, so the caller's bitmap stays usable
  }
  let bitmap;
  if (is(input, "HTMLImageElement")) {
    if (!input.complete) await input.decode().catch(() => {});
    if (!input.naturalWidth) {
      const src = input.currentSrc || input.src;
      throw new WasmvisionError("ImageError",
        `The <img>${src ? ` ${quote(src)}` : ""} has no picture: it has not loaded, or it is broken.`);
    }
    const file = await readableFile(new URL(input.currentSrc || input.src, pageUrl()));
    if (file) return [{ kind: "blob", blob: file }, []];
    bitmap = await bitmapOf(input, "The <img>");
  } else if (is(input, "HTMLVideoElement")) {
    if (input.readyState < 2 || !input.videoWidth) {
      throw new WasmvisionError("ImageError", "The <video> has no frame to show yet; wait for its loadeddata event.");
    }
    bitmap = await bitmapOf(input, "The <video> frame");
  } else if (is(input, "HTMLCanvasElement") || is(input, "OffscreenCanvas")) {
    if (!input.width || !input.height) {
      throw new WasmvisionError("ImageError", `The canvas is empty (${input.width} × ${input.height} pixels).`);
    }
    bitmap = await bitmapOf(input, "The canvas");
  } else if (is(input, "VideoFrame") || is(input, "SVGImageElement")) {
    bitmap = await bitmapOf(input, "The image");
  } else {
    throw new WasmvisionError("ImageError", "Expected an image: a File/Blob, <img>, <canvas>, OffscreenCanvas, " +
      `ImageBitmap, ImageData, <video> or a URL on this site; got ${describe(input)}.`);
  }
  return [{ kind: "bitmap", bitmap }, [bitmap]];
}

// A model option -> a key, a URL on the site, or a Blob; `site` is the site's base URL.
export async function modelSource(model, site) {
  if (model === undefined || model === null) return undefined;
  if (is(model, "Blob")) return model;
  if (typeof model === "string" && !/[/.:]/.test(model)) return model; // a key names a built-in model
  if (typeof model !== "string" && !is(model, "URL")) {
    throw new WasmvisionError("ArgumentError",
      `model must be a model key, a URL or a File/Blob; got ${describe(model)}.`);
  }
  const url = toUrl(model, "ModelError");
  if (url.protocol === "data:" || url.protocol === "blob:") {
    const file = await readLocalUrl(url, "ModelError");
    return new File([file], /\.onnx$/i.test(url.href) ? "model.onnx" : "model.wvb");
  }
  if (url.origin !== site.origin) {
    throw new WasmvisionError("PrivacyError", `Blocked a model from ${url.origin}: wasmvision only loads files ` +
      "from its own site (copy the model file there, or pass it as a File).");
  }
  return url.href;
}

// A labels file: one class name per line (blank lines at the end ignored); or an array of strings.
export async function readLabels(labels) {
  if (labels === undefined || labels === null) return undefined;
  if (Array.isArray(labels) && labels.every((x) => typeof x === "string")) return labels;
  if (is(labels, "Blob")) {
    const lines = (await labels.text()).replace(/^\uFEFF/, "").split(/\r?\n/).map((x) => x.trim());
    while (lines.length && !lines[lines.length - 1]) lines.pop();
    if (!lines.length) throw new WasmvisionError("ModelError", "The labels file is empty.");
    return lines;
  }
  throw new WasmvisionError("ArgumentError",
    `labels must be an array of strings or a text file; got ${describe(labels)}.`);
}

// A head option (a .wvh File/Blob, a URL on this site, a data: or blob: URL) -> a Blob for the worker; `site` is the
// site's base URL. Its contents are Python's to check (head_format.from_bytes).
export async function headSource(head, site) {
  if (is(head, "Blob")) return head;
  if (typeof head !== "string" && !is(head, "URL")) {
    throw new WasmvisionError("ArgumentError", `head must be a .wvh File/Blob or a URL; got ${describe(head)}.`);
  }
  const url = toUrl(head, "ModelError");
  if (url.protocol === "data:" || url.protocol === "blob:") return readLocalUrl(url, "ModelError");
  if (url.origin !== site.origin) {
    throw new WasmvisionError("PrivacyError", `Blocked a head from ${url.origin}: wasmvision only loads files ` +
      "from its own site (copy the head file there, or pass it as a File).");
  }
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new WasmvisionError("ModelError", `The head file ${quote(url.href)} could not be downloaded (${err.message}).`);
  }
  if (!response.ok) {
    throw new WasmvisionError("ModelError", `The head file ${quote(url.href)} could not be downloaded (HTTP ${response.status}).`);
  }
  return new File([await response.blob()], url.pathname.split("/").pop() || "head.wvh");
}
