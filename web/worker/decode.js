// Image decoding for every input kind the page can send: a File/Blob (encoded bytes), a URL on this site, an
// ImageBitmap (the page turns <img>, <canvas>, OffscreenCanvas and <video> frames into one) and ImageData.
// Returns RGBA pixels as stored, so Python sees the values PIL decodes natively (colour.js removes what would make
// an engine colour-manage or rotate). Huge images are refused before they are decoded.

import { neutralise, orient } from "./colour.js";
import { UserError } from "./errors.js";
import { sitePath } from "./fetch.js";

const SIGNATURES = [
  ["PNG", [0x89, 0x50, 0x4e, 0x47]], ["JPEG", [0xff, 0xd8, 0xff]], ["GIF", [0x47, 0x49, 0x46, 0x38]],
  ["BMP", [0x42, 0x4d]], ["WebP", [0x52, 0x49, 0x46, 0x46]], ["ICO", [0x00, 0x00, 0x01, 0x00]],
];

// Reads the format and, where the header says it, the pixel size, so huge images are refused before decoding.
export function sniffImage(h) {
  const at = (sig, off = 0) => sig.every((b, i) => h[off + i] === b);
  const u16be = (o) => (h[o] << 8) | h[o + 1];
  const u32be = (o) => ((h[o] << 24) >>> 0) + (h[o + 1] << 16) + (h[o + 2] << 8) + h[o + 3];
  const u16le = (o) => h[o] | (h[o + 1] << 8);
  const i32le = (o) => h[o] | (h[o + 1] << 8) | (h[o + 2] << 16) | (h[o + 3] << 24);
  if (h.length >= 12 && at([0x66, 0x74, 0x79, 0x70], 4)) {
    const brand = String.fromCharCode(...h.slice(8, 12));
    if (/^(avif|avis|heic|heix|mif1)$/.test(brand)) return { format: brand.startsWith("av") ? "AVIF" : "HEIF" };
  }
  const sig = SIGNATURES.find(([, s]) => h.length >= s.length && at(s));
  if (!sig) return null;
  const format = sig[0];
  if (format === "PNG" && h.length >= 24) return { format, width: u32be(16), height: u32be(20) };
  if (format === "GIF" && h.length >= 10) return { format, width: u16le(6), height: u16le(8) };
  if (format === "BMP" && h.length >= 26) return { format, width: Math.abs(i32le(18)), height: Math.abs(i32le(22)) };
  if (format === "WebP") {
    if (!at([0x57, 0x45, 0x42, 0x50], 8)) return null;
    const chunk = String.fromCharCode(...h.slice(12, 16));
    if (chunk === "VP8X" && h.length >= 30) {
      return { format, width: 1 + (h[24] | (h[25] << 8) | (h[26] << 16)), height: 1 + (h[27] | (h[28] << 8) | (h[29] << 16)) };
    }
    if (chunk === "VP8 " && h.length >= 30) return { format, width: u16le(26) & 0x3fff, height: u16le(28) & 0x3fff };
    if (chunk === "VP8L" && h.length >= 25) {
      const b = h[21] | (h[22] << 8) | (h[23] << 16) | (h[24] << 24);
      return { format, width: 1 + (b & 0x3fff), height: 1 + ((b >>> 14) & 0x3fff) };
    }
    return { format };
  }
  if (format === "JPEG") {
    let o = 2;
    while (o + 9 < h.length) {
      if (h[o] !== 0xff) { o++; continue; }
      const marker = h[o + 1];
      if (marker === 0xff) { o++; continue; }
      // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { format, width: u16be(o + 7), height: u16be(o + 5) };
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { o += 2; continue; }
      o += 2 + u16be(o + 2);
    }
    return { format };
  }
  return { format };
}

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

async function decodeBlob(blob, maxPixels) {
  const what = blob.name ? `"${blob.name}"` : "The file";
  if (blob.size === 0) throw new UserError(`${what} is empty (0 bytes).`, "ImageError");
  const head = new Uint8Array(await blob.slice(0, 65536).arrayBuffer());
  const sniffed = sniffImage(head);
  if (sniffed?.width && sniffed?.height) checkSize(sniffed.width, sniffed.height, maxPixels);
  const plain = neutralise(new Uint8Array(await blob.arrayBuffer()), sniffed?.format);
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
    return { ...orient(bitmapPixels(bitmap, maxPixels), plain.orientation), format: sniffed?.format ?? "" };
  } finally {
    bitmap.close();
  }
}

async function decodeUrl(href, maxPixels) {
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
  return decodeBlob(new File([blob], name), maxPixels);
}

function imageDataPixels(image, maxPixels) {
  const { width, height, data } = image;
  checkSize(width, height, maxPixels);
  if (data.length !== width * height * 4) {
    throw new UserError(`ImageData has ${data.length} bytes for ${width} × ${height} pixels.`, "ImageError");
  }
  return { pixels: data, width, height, format: "" };
}

// input: {kind: "blob", blob} | {kind: "url", url} | {kind: "bitmap", bitmap} | {kind: "imagedata", image}
export async function decodeInput(input, maxPixels) {
  switch (input?.kind) {
    case "blob":
      return decodeBlob(input.blob, maxPixels);
    case "url":
      return decodeUrl(input.url, maxPixels);
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
