// Small thumbnails: the album keeps a ~10 KB JPEG per photo, never the decoded photo, so a thousand photos stay a
// few megabytes. Each thumbnail is an object URL the album revokes when the photo leaves it. A photo over the
// classifier's pixel limit gets none: its size is read from its header before anything is decoded (the decode
// alone would cost 4 bytes a pixel: a 31 KB PNG of 16000 x 16000 is 1 GB).

import { imageHead } from "../worker/imagehead.js";

const SIZE = 192; // pixels on the long side: sharp at the grid's ~130 CSS px on a 1.5x screen

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

async function pixelsOf(file) {
  const head = await imageHead(file);
  return head?.width && head?.height ? head : loadedSize(file);
}

// maxPixels: the classifier's limit (its runtime.maxPixels).
export async function makeThumbnail(file, maxPixels) {
  let bitmap;
  try {
    const { width, height } = await pixelsOf(file);
    if (!(width * height <= maxPixels)) return null; // the classifier says why
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null; // the classifier says why; a thumbnail is not worth a second message
  }
  try {
    const scale = Math.min(1, SIZE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, width, height);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.82 });
    return { url: URL.createObjectURL(blob), width, height, bytes: blob.size };
  } finally {
    bitmap.close();
  }
}

export function releaseThumbnail(thumb) {
  if (thumb?.url) URL.revokeObjectURL(thumb.url);
}
