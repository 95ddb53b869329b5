// The same pixels in every engine as Pillow natively: before the browser decodes a photo, its colour information
// (ICC profiles, PNG gamma/chromaticities) is removed, because WebKit colour-manages even with
// colorSpaceConversion "none" and Pillow never does; the EXIF orientation is taken out of the file, so no engine
// rotates on its own, and applied here to the decoded pixels the way Pillow's ImageOps.exif_transpose does.

const latin1 = (bytes) => String.fromCharCode(...bytes);
const u16be = (b, o) => (b[o] << 8) | b[o + 1];
const u32be = (b, o) => ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];
const u32le = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

// PNG chunks that make a browser convert colours; Pillow keeps them as metadata only.
const PNG_COLOUR_CHUNKS = new Set(["iCCP", "sRGB", "gAMA", "cHRM", "cICP"]);
const XMP_JPEG = "http://ns.adobe.com/xap/1.0/\0";

// The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block, or 0.
function tiffOrientation(t) {
  if (t.length < 8) return 0;
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return 0;
  const u16 = (o) => (le ? t[o] | (t[o + 1] << 8) : u16be(t, o));
  const u32 = (o) => (le ? u32le(t, o) : u32be(t, o));
  const ifd = u32(4);
  if (ifd + 2 > t.length) return 0;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > t.length) return 0;
    if (u16(e) === 0x0112 && u16(e + 2) === 3) return u16(e + 8);
  }
  return 0;
}

// Pillow's fallback when EXIF has no orientation: tiff:Orientation in the XMP packet.
function xmpOrientation(bytes) {
  const m = /tiff:Orientation(="|>)([0-9])/.exec(latin1(bytes.subarray(0, 1 << 20)));
  return m ? Number(m[2]) : 0;
}

const exifBlock = (payload) => (latin1(payload.subarray(0, 6)) === "Exif\0\0" ? payload.subarray(6) : payload);

function jpeg(b) {
  const kept = [b.subarray(0, 2)];
  let exif = 0, xmp = 0, o = 2;
  while (o + 4 <= b.length && b[o] === 0xff) {
    const marker = b[o + 1];
    if (marker === 0xff) { kept.push(b.subarray(o, o + 1)); o++; continue; }
    if (marker === 0xda || marker === 0xd9) break; // start of scan: the rest is entropy-coded data
    const end = o + 2 + u16be(b, o + 2);
    const payload = b.subarray(o + 4, end);
    if (marker === 0xe2 && latin1(payload.subarray(0, 12)) === "ICC_PROFILE\0") { o = end; continue; }
    if (marker === 0xe1 && latin1(payload.subarray(0, 6)) === "Exif\0\0") {
      if (!exif) exif = tiffOrientation(payload.subarray(6));
      o = end;
      continue;
    }
    if (marker === 0xe1 && latin1(payload.subarray(0, XMP_JPEG.length)) === XMP_JPEG && !xmp) {
      xmp = xmpOrientation(payload);
    }
    kept.push(b.subarray(o, end));
    o = end;
  }
  kept.push(b.subarray(o));
  return { parts: kept, orientation: exif || xmp };
}

function png(b) {
  const kept = [b.subarray(0, 8)];
  let exif = 0, xmp = 0, o = 8;
  while (o + 12 <= b.length) {
    const end = o + 12 + u32be(b, o);
    const type = latin1(b.subarray(o + 4, o + 8));
    const data = b.subarray(o + 8, end - 4);
    if (type === "eXIf") { exif ||= tiffOrientation(exifBlock(data)); o = end; continue; }
    if (type === "iTXt" && latin1(data.subarray(0, 18)) === "XML:com.adobe.xmp\0" && !xmp) xmp = xmpOrientation(data);
    if (!PNG_COLOUR_CHUNKS.has(type)) kept.push(b.subarray(o, end));
    o = end;
    if (type === "IEND") break;
  }
  return { parts: kept, orientation: exif || xmp };
}

function webp(b) {
  const kept = [];
  let exif = 0, xmp = 0, o = 12, vp8x = null;
  while (o + 8 <= b.length) {
    const size = u32le(b, o + 4);
    const end = Math.min(b.length, o + 8 + size + (size & 1));
    const type = latin1(b.subarray(o, o + 4));
    const data = b.subarray(o + 8, o + 8 + size);
    if (type === "ICCP") { o = end; continue; }
    if (type === "EXIF") { exif ||= tiffOrientation(exifBlock(data)); o = end; continue; }
    if (type === "XMP " && !xmp) xmp = xmpOrientation(data);
    if (type === "VP8X" && b[o + 8] & (0x20 | 0x08)) {
      vp8x = b.slice(o, end);
      vp8x[8] &= ~(0x20 | 0x08); // the ICC and EXIF flags: those chunks are gone
      kept.push(vp8x);
    } else {
      kept.push(b.subarray(o, end));
    }
    o = end;
  }
  const body = kept.reduce((n, p) => n + p.length, 0);
  if (!vp8x && body + 12 === b.length) return { parts: [b], orientation: exif || xmp };
  const header = b.slice(0, 12);
  new DataView(header.buffer).setUint32(4, body + 4, true);
  return { parts: [header, ...kept], orientation: exif || xmp };
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// bytes of an encoded image (format from sniffImage) -> {bytes without colour information or orientation,
// orientation 1..8 (1 when none)}. Other formats, files these parsers do not follow, and files with nothing to
// remove pass through unchanged (the same array: no copy).
export function neutralise(bytes, format) {
  const parse = { JPEG: jpeg, PNG: png, WebP: webp }[format];
  if (!parse) return { bytes, orientation: 1 };
  let found;
  try {
    found = parse(bytes);
  } catch {
    return { bytes, orientation: 1 };
  }
  const orientation = found.orientation >= 2 && found.orientation <= 8 ? found.orientation : 1;
  const kept = found.parts.reduce((n, p) => n + p.length, 0);
  return { bytes: kept === bytes.length ? bytes : concat(found.parts), orientation };
}

// RGBA pixels as stored + EXIF orientation -> the upright image, as ImageOps.exif_transpose turns it.
export function orient({ pixels, width: w, height: h }, orientation) {
  if (orientation === 1) return { pixels, width: w, height: h };
  // Source index = start + x * stepX + y * stepY for output pixel (x, y).
  const steps = {
    2: [w - 1, -1, w], 3: [h * w - 1, -1, -w], 4: [(h - 1) * w, 1, -w], 5: [0, w, 1],
    6: [(h - 1) * w, -w, 1], 7: [h * w - 1, -w, -1], 8: [w - 1, w, -1],
  }[orientation];
  const [start, stepX, stepY] = steps;
  const swap = orientation >= 5;
  const outW = swap ? h : w, outH = swap ? w : h;
  const src = new Uint32Array(pixels.buffer, pixels.byteOffset, w * h);
  const out = new Uint8ClampedArray(w * h * 4);
  const dst = new Uint32Array(out.buffer);
  let i = 0;
  for (let y = 0; y < outH; y++) {
    let s = start + y * stepY;
    for (let x = 0; x < outW; x++, s += stepX) dst[i++] = src[s];
  }
  return { pixels: out, width: outW, height: outH };
}
