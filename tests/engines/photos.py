"""Test photos made at run time from the built photos: embedded colour profiles (sRGB, Display P3, a wide-gamut
ProPhoto-like one) in JPEG, PNG and WebP, PNG gamma/chromaticity chunks, and every EXIF orientation. The ICC
profiles are written here (matrix/TRC v2 profiles), so nothing is downloaded and every engine that honours them
would change the pixels."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])


@dataclass(frozen=True)
class Gamut:
    name: str
    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # (x, y) of R, G, B
    white: tuple[float, float]
    gamma: float


SRGB = Gamut("sRGB", ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290), 2.2)
DISPLAY_P3 = Gamut("Display P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), (0.3127, 0.3290), 2.2)
WIDE = Gamut("ProPhoto-like", ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), (0.3457, 0.3585), 1.8)


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _d50_matrix(g: Gamut) -> np.ndarray:
    """RGB -> XYZ(D50) columns, Bradford-adapted from the gamut's white, as ICC matrix profiles store them."""
    p = np.stack([_xyz(c) for c in g.primaries], axis=1)
    m = p * np.linalg.solve(p, _xyz(g.white))
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    src, dst = bradford @ _xyz(g.white), bradford @ D50
    adapt = np.linalg.inv(bradford) @ np.diag(dst / src) @ bradford
    return adapt @ m


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def icc_profile(g: Gamut) -> bytes:
    """A v2 display-class RGB matrix/TRC ICC profile of ``g``."""
    m = _d50_matrix(g)
    xyz = lambda v: b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)  # noqa: E731
    text = g.name.encode("ascii")
    desc = (b"desc\0\0\0\0" + struct.pack(">I", len(text) + 1) + text + b"\0" + b"\0" * 8 + b"\0\0\0" + b"\0" * 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(g.gamma * 256))) + b"\0\0"
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0public domain\0"), (b"wtpt", xyz(D50)),
            (b"rXYZ", xyz(m[:, 0])), (b"gXYZ", xyz(m[:, 1])), (b"bXYZ", xyz(m[:, 2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
              + b"\0" * 24 + b"\0" * 4 + b"".join(_s15(c) for c in D50) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _exif(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


XMP_ORIENTATION_8 = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                     b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="8"/>'
                     b'</rdf:RDF></x:xmpmeta>')

# Stored pixels for each orientation, so that exif_transpose turns them back to the upright photo.
_STORE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_90",
          7: "TRANSVERSE", 8: "ROTATE_270"}


def make_photos(source: Path, dest: Path, size: tuple[int, int] = (320, 240)) -> dict[str, Path]:
    """name -> path of each test photo made from ``source`` (one of build/photos/) in ``dest``."""
    from PIL import Image, PngImagePlugin

    dest.mkdir(parents=True, exist_ok=True)
    upright = Image.open(source).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    out: dict[str, Path] = {}

    def save(name: str, img, **kw) -> None:
        path = dest / name
        buf = io.BytesIO()
        img.save(buf, **kw)
        path.write_bytes(buf.getvalue())
        out[name] = path

    for tag, gamut in (("srgb", SRGB), ("p3", DISPLAY_P3), ("wide", WIDE)):
        icc = icc_profile(gamut)
        save(f"icc-{tag}.jpg", upright, format="JPEG", quality=92, icc_profile=icc)
    save("icc-p3.png", upright, format="PNG", icc_profile=icc_profile(DISPLAY_P3))
    save("icc-wide.webp", upright, format="WEBP", quality=90, icc_profile=icc_profile(WIDE))
    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 100000))  # gamma 1.0: a big change where honoured
    info.add(b"cHRM", struct.pack(">8I", *(int(v * 100000) for v in (0.3457, 0.3585, *sum(WIDE.primaries, ())))))
    save("gama-chrm.png", upright, format="PNG", pnginfo=info)
    for o in range(1, 9):
        stored = upright if o == 1 else upright.transpose(getattr(Image.Transpose, _STORE[o]))
        save(f"orient-{o}.jpg", stored, format="JPEG", quality=92, exif=_exif(o),
             icc_profile=icc_profile(DISPLAY_P3))
    # No EXIF orientation, only XMP's tiff:Orientation: Pillow falls back to it, so the page must too.
    save("orient-xmp-8.jpg", upright.transpose(Image.Transpose.ROTATE_270), format="JPEG", quality=92,
         xmp=XMP_ORIENTATION_8)
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    save("orient-6-icc.png", stored, format="PNG", exif=_exif(6), icc_profile=icc_profile(WIDE))
    save("orient-8.webp", upright.transpose(Image.Transpose.ROTATE_270), format="WEBP", quality=90,
         exif=_exif(8), icc_profile=icc_profile(DISPLAY_P3))
    return out
