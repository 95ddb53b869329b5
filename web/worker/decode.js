// Image decoding for every input kind the page can send: a File/Blob (encoded bytes), a URL on this site, an
// ImageBitmap (the page turns <img>, <canvas>, OffscreenCanvas and <video> frames into one) and ImageData.
// Returns RGBA pixels as stored, so Python sees the values PIL decodes natively (colour.js removes what would make
// an engine colour-manage or rotate). Huge images are refused before they are decoded.

import { neutralise, orient } from "./colour.js";
import { UserError } from "./errors.js";
import { sitePath } from "./fetch.js";
import { imageHead } from "./imagehead.js";

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
  const sniffed = await imageHead(blob);
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
