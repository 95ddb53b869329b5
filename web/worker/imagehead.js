// An image's format and, where its header says it, its size in pixels, from the file's first bytes: read before any
// decoding, so a huge image is refused before it costs memory. Used by the worker (decode.js) and the album's
// thumbnails (album/thumbs.js); no imports, so the page can use it without the worker's modules.

const SIGNATURES = [
  ["PNG", [0x89, 0x50, 0x4e, 0x47]], ["JPEG", [0xff, 0xd8, 0xff]], ["GIF", [0x47, 0x49, 0x46, 0x38]],
  ["BMP", [0x42, 0x4d]], ["WebP", [0x52, 0x49, 0x46, 0x46]], ["ICO", [0x00, 0x00, 0x01, 0x00]],
];

// Whether a PNG's first bytes say it has no alpha and at most 8 bits a sample: colour type gray, RGB or palette, and
// no tRNS chunk before its image data (false when these bytes do not reach the image data).
function opaquePng(h) {
  if (h.length < 26 || h[24] > 8 || ![0, 2, 3].includes(h[25])) return false;
  for (let o = 8; o + 8 <= h.length; o += 12 + (((h[o] << 24) >>> 0) + (h[o + 1] << 16) + (h[o + 2] << 8) + h[o + 3])) {
    const type = String.fromCharCode(...h.subarray(o + 4, o + 8));
    if (type === "tRNS") return false;
    if (type === "IDAT") return true;
  }
  return false;
}

// Reads the format and, where the header says it, the pixel size, so huge images are refused before decoding; for a
// PNG, whether it is opaque (opaquePng).
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
  if (format === "PNG" && h.length >= 24) return { format, width: u32be(16), height: u32be(20), opaque: opaquePng(h) };
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

export const HEAD_BYTES = 65536; // enough for a JPEG's frame header after its EXIF block

// sniffImage of a File/Blob's first bytes.
export async function imageHead(blob) {
  return sniffImage(new Uint8Array(await blob.slice(0, HEAD_BYTES).arrayBuffer()));
}
