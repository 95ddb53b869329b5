// Image decoding for every input kind the page can send: a File/Blob (encoded bytes), a URL on this site, an
// ImageBitmap (the page turns <img>, <canvas>, OffscreenCanvas and <video> frames into one) and ImageData.
// Returns RGBA pixels as stored, so Python sees the values PIL decodes natively (colour.js removes what would make
// an engine colour-manage or rotate). Huge images are refused before they are decoded.
// An opaque PNG is decoded by WebCodecs' ImageDecoder where there is one (from the bytes, no Blob and no canvas
// readback: about half the time of createImageBitmap + getImageData); a JPEG's bitmap is wrapped in a VideoFrame
// instead of read back from a canvas. Either frame is then copied once, straight into the buffer Python reads
// (inference.js). JPEGs keep createImageBitmap: ImageDecoder hands out their YUV planes, whose conversion to RGB is
// not libjpeg's. The rest (alpha, other formats, engines without an exact copyTo) takes the canvas, as before.

import { neutralise, orient } from "./colour.js";
import { UserError } from "./errors.js";
import { sitePath } from "./fetch.js";
import { HEAD_BYTES, sniffImage } from "./imagehead.js";

const DECODER_TYPES = { PNG: "image/png" };
const RGB_FRAMES = new Set(["RGBA", "RGBX", "BGRA", "BGRX"]); // 8-bit, one plane: copyTo gives RGBA exactly

function checkSize(width, height, maxPixels) {
  if (width * height > maxPixels) {
    throw new UserError(`This image is too large: ${width} × ${height} = ${(width * height / 1e6).toFixed(1)} ` +
      `megapixels; the limit is ${Math.round(maxPixels / 1e6)} megapixels. Try a smaller copy of the photo.`,
      "ImageError");
  }
}

function bitmapPixels(bitmap, maxPixels) {
  const { width, height } = bitmap;
  if (!width || !height) {
    throw new UserError("The ImageBitmap has no pixels (it is closed, or 0 × 0).", "ImageError");
  }
  checkSize(width, height, maxPixels);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  try {
    return { pixels: ctx.getImageData(0, 0, width, height).data, width, height };
  } catch (err) {
    // A bitmap made from another site's image without CORS permission: the browser will not hand out its pixels.
    throw new UserError(`The image's pixels cannot be read (${err.name}): it comes from another site.`,
      "ImageError");
  }
}

// Whether VideoFrame.copyTo converts to RGBA when asked (WebKit ignores the format option and copies BGRA as it is):
// probed once, on a one-pixel frame.
let rgbaCopies = null;
function copiesRgba() {
  rgbaCopies ??= (async () => {
    if (typeof VideoFrame !== "function") return false;
    try {
      const frame = new VideoFrame(new Uint8Array([1, 2, 3, 255]),
        { format: "BGRA", codedWidth: 1, codedHeight: 1, timestamp: 0 });
      const out = new Uint8Array(4);
      await frame.copyTo(out, { format: "RGBA" });
      frame.close();
      return out.join() === "3,2,1,255";
    } catch {
      return false;
    }
  })();
  return rgbaCopies;
}

// The first frame of an opaque PNG as a VideoFrame with 8-bit RGB(A/X) pixels, exactly as stored; null where
// ImageDecoder is missing or gives something else (the caller decodes the usual way, which also names the error of a
// bad file). Only opaque ones: Firefox's ImageDecoder premultiplies alpha even when asked not to.
async function decodeFrame(bytes, sniffed) {
  const type = DECODER_TYPES[sniffed?.format];
  if (!type || !sniffed.opaque || typeof ImageDecoder !== "function" || !(await copiesRgba())) return null;
  let decoder = null;
  try {
    decoder = new ImageDecoder({ data: bytes, type, colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const { image } = await decoder.decode({ frameIndex: 0 });
    return rgbFrame(image);
  } catch {
    return null; // not decodable here: the usual path decides
  } finally {
    decoder?.close();
  }
}

// The frame when copyTo can give its pixels as RGBA exactly (one 8-bit RGB plane, upright); else closed, null.
function rgbFrame(frame) {
  if (RGB_FRAMES.has(frame.format) && !frame.rotation && !frame.flip) return frame;
  frame.close();
  return null;
}

// A JPEG's bitmap as a VideoFrame (its pixels are opaque, so nothing is premultiplied): copied once where the caller
// wants instead of drawn on a canvas and read back. null where VideoFrame cannot wrap it.
async function bitmapFrame(bitmap, format) {
  if (format !== "JPEG" || !(await copiesRgba())) return null;
  try {
    return rgbFrame(new VideoFrame(bitmap, { timestamp: 0 }));
  } catch {
    return null;
  }
}

// A VideoFrame's pixels as RGBA into `dest` (a Uint8Array of width * height * 4 bytes, e.g. on the Wasm heap).
export async function copyFrame(frame, dest) {
  await frame.copyTo(dest, { format: "RGBA" });
  return dest;
}

// A frame -> {frame, width, height, format} for the caller to copy and close (`frames`, upright images), else its
// pixels ({pixels, width, height, format}, turned upright); the frame is closed unless returned.
async function fromFrame(frame, { orientation, format, frames, maxPixels }) {
  const width = frame.displayWidth, height = frame.displayHeight;
  try {
    checkSize(width, height, maxPixels);
    if (frames && orientation === 1) return { frame, width, height, format };
    const pixels = await copyFrame(frame, new Uint8ClampedArray(width * height * 4));
    frame.close();
    return { ...orient({ pixels, width, height }, orientation), format };
  } catch (err) {
    frame.close();
    throw err;
  }
}

// frames: the image may come back as {frame: VideoFrame, ...} instead of {pixels, ...} (see fromFrame).
async function decodeBlob(blob, maxPixels, frames) {
  const what = blob.name ? `"${blob.name}"` : "The file";
  if (blob.size === 0) throw new UserError(`${what} is empty (0 bytes).`, "ImageError");
  const bytes = new Uint8Array(await blob.arrayBuffer()); // one read of the file: the header comes from it too
  const sniffed = sniffImage(bytes.subarray(0, HEAD_BYTES));
  if (sniffed?.width && sniffed?.height) checkSize(sniffed.width, sniffed.height, maxPixels);
  const plain = neutralise(bytes, sniffed?.format);
  const found = { orientation: plain.orientation, format: sniffed?.format ?? "", frames, maxPixels };
  const decoded = await decodeFrame(plain.bytes, sniffed);
  if (decoded) return fromFrame(decoded, found);
  let bitmap;
  try {
    // Pixels exactly as stored (no colour management, no premultiplication) so the browser feeds Python the same
    // RGB values PIL decodes natively; the EXIF orientation is applied below, as Pillow applies it.
    bitmap = await createImageBitmap(new Blob([plain.bytes]), {
      imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none",
    });
  } catch {
    if (sniffed) {
      throw new UserError(`${what} looks like a ${sniffed.format} image but could not be decoded: ` +
        "it is corrupt, truncated, or in a variant this browser cannot read.", "ImageError");
    }
    throw new UserError(`${what} is not an image this browser can read. Use a PNG, JPEG, GIF, WebP, BMP or AVIF ` +
      "photo.", "ImageError");
  }
  try {
    const frame = frames ? await bitmapFrame(bitmap, found.format) : null;
    if (frame) return fromFrame(frame, found);
    return { ...orient(bitmapPixels(bitmap, maxPixels), plain.orientation), format: found.format };
  } finally {
    bitmap.close();
  }
}

async function decodeUrl(href, maxPixels, frames) {
  const url = new URL(href);
  const path = sitePath(url);
  let response;
  try {
    response = await fetch(url); // refuses other origins (fetch.js)
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`The image ${path} could not be downloaded: ${err.message}`, "ImageError");
  }
  if (!response.ok) {
    throw new UserError(`The image ${path} could not be downloaded (HTTP ${response.status}).`, "ImageError");
  }
  const blob = await response.blob();
  const name = decodeURIComponent(url.pathname.split("/").pop() || path);
  return decodeBlob(new File([blob], name), maxPixels, frames);
}

function imageDataPixels(image, maxPixels) {
  const { width, height, data } = image;
  checkSize(width, height, maxPixels);
  if (data.length !== width * height * 4) {
    throw new UserError(`ImageData has ${data.length} bytes for ${width} × ${height} pixels.`, "ImageError");
  }
  return { pixels: data, width, height, format: "" };
}

// A synthetic opaque image (a gradient) encoded as `type`: drawn and encoded here, nothing fetched or stored.
export async function syntheticImage(width, height, type) {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d");
  const gradient = ctx.createLinearGradient(0, 0, width, height);
  gradient.addColorStop(0, "#204080");
  gradient.addColorStop(1, "#e0a040");
  ctx.fillStyle = gradient;
  ctx.fillRect(0, 0, width, height);
  return canvas.convertToBlob({ type });
}

// An 8 x 8 RGB PNG: a canvas encodes RGBA, which takes the canvas path instead of ImageDecoder's (decodeFrame).
const RGB_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAGUlEQVR4nGNkYGhQYGDARCwMCgxYweCUAABobwJe4J3LcgAAAABJRU5ErkJggg==";

// Decodes an 8 x 8 PNG (ImageDecoder) and JPEG (createImageBitmap wrapped in a VideoFrame) through the same path as a
// photo, frames copied out and closed, so that a photo's decode does not pay for the decoders' first use. Never
// fails: a decoder that is missing is just not warmed.
export async function warmDecoders() {
  const png = () => new Blob([Uint8Array.from(atob(RGB_PNG), (c) => c.charCodeAt(0))], { type: "image/png" });
  for (const made of [png, () => syntheticImage(8, 8, "image/jpeg")]) {
    try {
      const blob = await made();
      const image = await decodeInput({ kind: "blob", blob }, 64, { frames: true });
      if (image.frame) await copyFrame(image.frame, new Uint8Array(image.width * image.height * 4));
      image.frame?.close();
    } catch {
      // nothing to warm
    }
  }
}

// input: {kind: "blob", blob} | {kind: "url", url} | {kind: "bitmap", bitmap} | {kind: "imagedata", image}
// -> {pixels, width, height, format}; with `frames`, possibly {frame, width, height, format} (see decodeBlob).
export async function decodeInput(input, maxPixels, { frames = false } = {}) {
  switch (input?.kind) {
    case "blob":
      return decodeBlob(input.blob, maxPixels, frames);
    case "url":
      return decodeUrl(input.url, maxPixels, frames);
    case "bitmap":
      try {
        return { ...bitmapPixels(input.bitmap, maxPixels), format: "" };
      } finally {
        input.bitmap.close?.();
      }
    case "imagedata":
      return imageDataPixels(input.image, maxPixels);
    default:
      throw new UserError("Expected an image: a File/Blob, an image element, a canvas, an ImageBitmap, ImageData, " +
        "a video or a URL on this site.", "ImageError");
  }
}
