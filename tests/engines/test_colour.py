"""web/worker/colour.js under Node, against Pillow, on every made photo: the neutralised file decodes (in Pillow)
to exactly the stored pixels of the original, carries no colour information any engine could act on, and
orient() turns the pixels as ImageOps.exif_transpose does. Browser-free, so it runs wherever Node does."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .photos import make_photos

COLOUR_JS = Path(__file__).resolve().parents[2] / "web" / "worker" / "colour.js"
FORMATS = {".jpg": "JPEG", ".png": "PNG", ".webp": "WebP"}
# Reads [{name, format, b64, rgba: {b64, width, height}}] on stdin; writes [{b64, orientation, turned}] to stdout.
SCRIPT = """
const { neutralise, orient } = await import(process.argv[1]);
let text = ""; for await (const c of process.stdin) text += c;
const out = JSON.parse(text).map((p) => {
  const r = neutralise(new Uint8Array(Buffer.from(p.b64, "base64")), p.format);
  const px = new Uint8ClampedArray(Buffer.from(p.rgba.b64, "base64"));
  const t = orient({ pixels: px, width: p.rgba.width, height: p.rgba.height }, r.orientation);
  return { b64: Buffer.from(r.bytes).toString("base64"), orientation: r.orientation,
           turned: { b64: Buffer.from(t.pixels).toString("base64"), width: t.width, height: t.height } };
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def results(photos_dir, tmp_path_factory):
    from PIL import Image

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    photos = make_photos(photos_dir / "chelsea.png", tmp_path_factory.mktemp("colour-photos"))
    request = []
    for name, path in photos.items():
        stored = Image.open(path).convert("RGBA")
        request.append({"name": name, "format": FORMATS[path.suffix], "b64": base64.b64encode(path.read_bytes()).decode(),
                        "rgba": {"b64": base64.b64encode(stored.tobytes()).decode(),
                                 "width": stored.width, "height": stored.height}})
    out = subprocess.run([node, "--input-type=module", "-e", SCRIPT, str(COLOUR_JS)], input=json.dumps(request),
                         capture_output=True, text=True, check=True)
    return {name: (photos[name], r) for name, r in zip(photos, json.loads(out.stdout))}


def test_neutralised_files_keep_the_stored_pixels_and_lose_colour_information(results):
    from PIL import Image

    for name, (path, r) in results.items():
        before, after = Image.open(path), Image.open(io.BytesIO(base64.b64decode(r["b64"])))
        assert before.info.get("icc_profile") or name.startswith(("gama", "orient-xmp"))
        assert not after.info.get("icc_profile"), name
        assert not {"gamma", "chromaticity", "srgb"} & set(after.info), name
        assert after.getexif().get(0x0112) is None or name.startswith("orient-xmp"), name
        assert np.array_equal(np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB"))), name


def test_orientation_is_read_and_applied_as_pillow_does(results):
    from PIL import Image, ImageOps

    seen = set()
    for name, (path, r) in results.items():
        img = Image.open(path)
        assert r["orientation"] == img.getexif().get(0x0112, 1), name
        seen.add(r["orientation"])
        want = np.asarray(ImageOps.exif_transpose(img).convert("RGBA"))
        t = r["turned"]
        got = np.frombuffer(base64.b64decode(t["b64"]), np.uint8).reshape(t["height"], t["width"], 4)
        assert np.array_equal(got, want), name
    assert seen == set(range(1, 9))


def test_files_with_nothing_to_remove_pass_through_without_a_copy(photos_dir, tmp_path):
    """A file with no colour information and no orientation comes back as the same array (no byte copy); one with
    something to remove does not."""
    from PIL import Image

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    img = Image.open(photos_dir / "chelsea.png").convert("RGB").resize((64, 48))
    img.info = {}  # Pillow would write the source's ICC profile into the PNG
    request = []
    for suffix, fmt in FORMATS.items():
        plain = io.BytesIO()
        img.save(plain, format=fmt.upper())
        request.append({"name": suffix, "format": fmt, "b64": base64.b64encode(plain.getvalue()).decode()})
    request.append({"name": "profiled", "format": "PNG",
                    "b64": base64.b64encode((photos_dir / "chelsea.png").read_bytes()).decode()})
    script = """
const { neutralise } = await import(process.argv[1]);
let text = ""; for await (const c of process.stdin) text += c;
process.stdout.write(JSON.stringify(JSON.parse(text).map((p) => {
  const bytes = new Uint8Array(Buffer.from(p.b64, "base64"));
  return neutralise(bytes, p.format).bytes === bytes;
})));
"""
    out = subprocess.run([node, "--input-type=module", "-e", script, str(COLOUR_JS)], input=json.dumps(request),
                         capture_output=True, text=True, check=True)
    assert Image.open(photos_dir / "chelsea.png").info.get("icc_profile")
    assert json.loads(out.stdout) == [True, True, True, False]
