// Small thumbnails: the album keeps a ~10 KB JPEG per photo, never the decoded photo, so a thousand photos stay a
// few megabytes. Each thumbnail is an object URL the album revokes when the photo leaves it. A photo over the
// classifier's pixel limit gets none: its size is read from its header before anything is decoded (the decode
// alone would cost 4 bytes a pixel: a 31 KB PNG of 16000 x 16000 is 1 GB). The file is read once; a JPEG is decoded
// straight to about the thumbnail's size where the engine can (a fraction of a full decode's time).

import { HEAD_BYTES, sniffImage } from "../worker/imagehead.js";

const SIZE = 192; // pixels on the long side: sharp at the grid's ~130 CSS px on a 1.5x screen
const READ_WHOLE = 64 * 2 ** 20; // bytes: a larger file is read by the browser's decoder only, never into this page

// The browser's own reading of the size, for formats whose header imageHead does not parse (AVIF, HEIF): an <img>
// reports its natural size once loaded and decodes its pixels only when painted (it never is).
async function loadedSize(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = reject;
    });
    return { width: img.naturalWidth, height: img.naturalHeight };
  } finally {
    URL.revokeObjectURL(url);
  }
}

// Where ImageDecoder's frames say their EXIF orientation (rotation, flip), which drawImage applies: elsewhere a frame
// could be drawn unrotated, so those engines keep createImageBitmap.
const SCALED_DECODE = typeof ImageDecoder === "function" && typeof VideoFrame === "function" &&
  "rotation" in VideoFrame.prototype && "flip" in VideoFrame.prototype;

// A JPEG decoded at n/8 of its size (libjpeg's scaled decode: the smallest n whose long side still has SIZE pixels),
// as a VideoFrame upright on a canvas; null when the engine cannot, or does not take this file.
async function scaledJpeg(bytes, { width, height }) {
  if (!SCALED_DECODE) return null;
  const n = Math.min(8, Math.ceil((8 * SIZE) / Math.max(width, height)));
  let decoder = null;
  try {
    // The decoder picks the largest n/8 whose pixels fit in desiredWidth x desiredHeight.
    decoder = new ImageDecoder({ data: bytes, type: "image/jpeg",
      desiredWidth: Math.ceil((width * n) / 8), desiredHeight: Math.ceil((height * n) / 8) });
    return (await decoder.decode({ frameIndex: 0 })).image;
  } catch {
    return null;
  } finally {
    decoder?.close();
  }
}

// maxPixels: the classifier's limit (its runtime.maxPixels).
export async function makeThumbnail(file, maxPixels) {
  let image;
  try {
    const whole = file.size <= READ_WHOLE;
    const bytes = new Uint8Array(await (whole ? file : file.slice(0, HEAD_BYTES)).arrayBuffer());
    const head = sniffImage(bytes.subarray(0, HEAD_BYTES));
    const { width, height } = head?.width && head?.height ? head : await loadedSize(file);
    if (!(width * height <= maxPixels)) return null; // the classifier says why
    if (whole && head?.format === "JPEG") image = await scaledJpeg(bytes, head);
    image ??= await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null; // the classifier says why; a thumbnail is not worth a second message
  }
  try {
    const w = image.displayWidth ?? image.width, h = image.displayHeight ?? image.height;
    const scale = Math.min(1, SIZE / Math.max(w, h));
    const width = Math.max(1, Math.round(w * scale));
    const height = Math.max(1, Math.round(h * scale));
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(image, 0, 0, width, height);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.82 });
    return { url: URL.createObjectURL(blob), width, height, bytes: blob.size };
  } finally {
    image.close();
  }
}

export function releaseThumbnail(thumb) {
  if (thumb?.url) URL.revokeObjectURL(thumb.url);
}
