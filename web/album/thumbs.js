// Small thumbnails: the album keeps a ~10 KB JPEG per photo, never the decoded photo, so a thousand photos stay a
// few megabytes. Each thumbnail is an object URL the album revokes when the photo leaves it.

const SIZE = 192; // pixels on the long side: sharp at the grid's ~130 CSS px on a 1.5x screen

export async function makeThumbnail(file) {
  let bitmap;
  try {
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
