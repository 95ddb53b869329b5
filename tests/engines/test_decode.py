"""web/worker/decode.js in Chromium, Firefox ESR and WebKitGTK, pixel for pixel against Pillow: every photo the
engine tests use (colour profiles, EXIF orientations), plus PNGs with alpha, a palette with transparency, gray and
gray+alpha, through whichever path the engine takes (WebCodecs' ImageDecoder or a VideoFrame where it has them, the
canvas otherwise). The worker's modules are served as they are (not bundled), beside a test worker that calls them."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from buildtools.engines_drivers import EngineUnavailable, start
from buildtools.server import Background

from .photos import make_photos

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
REAL_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png")
DECODE = """async (f, maxPixels) => {
  const file = new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name);
  const worker = new Worker("/test/decode-worker.js", { type: "module" });
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (e) => reject(new Error(e.message || "worker error"));
      worker.postMessage({ file, maxPixels });
    });
  } finally {
    worker.terminate();
  }
}"""


def _extra_pngs(src: Path, out: Path) -> dict[str, Path]:
    """PNGs whose alpha or palette a decoder could premultiply, colour or expand differently from Pillow."""
    from PIL import Image

    rgb = Image.open(src).convert("RGB").resize((97, 61))
    a = np.asarray(rgb)
    alpha = np.tile(np.linspace(0, 255, a.shape[1]).astype(np.uint8), (a.shape[0], 1))
    images = {
        "rgba-ramp.png": Image.fromarray(np.dstack([a, alpha]), "RGBA"),
        "gray.png": rgb.convert("L"),
        "gray-alpha.png": Image.fromarray(np.dstack([np.asarray(rgb.convert("L")), alpha]), "LA"),
        "palette.png": rgb.convert("P", palette=Image.ADAPTIVE, colors=64),
    }
    pal = images["palette.png"]
    pal.info["transparency"] = 3
    paths = {}
    for name, img in images.items():
        paths[name] = out / name
        img.save(paths[name], **({"transparency": 3} if name == "palette.png" else {}))
    return paths


@pytest.fixture(scope="module")
def photos(photos_dir, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("decode-photos")
    real = {n: photos_dir / n for n in REAL_PHOTOS if (photos_dir / n).exists()}
    return {**real, **make_photos(photos_dir / "chelsea.png", out), **_extra_pngs(photos_dir / "chelsea.png", out)}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    site = tmp_path_factory.mktemp("decode-site")
    (site / "web").symlink_to(ROOT / "web")
    (site / "test").symlink_to(Path(__file__).parent / "decode_site")
    (site / "index.html").write_text("<!doctype html><html lang=en><title>decode</title></html>\n")
    # No CSP headers: Firefox refuses the static imports of a module worker under the site's worker policy, and the
    # site itself never runs these modules unbundled.
    with Background(site, csp=False) as srv:
        yield srv.url


@pytest.fixture(scope="module", params=["chromium", "firefox", "webkit"])
def engine(request, served):
    try:
        driver = start(request.param)
    except EngineUnavailable as exc:
        pytest.skip(f"{request.param}: {exc}")
    try:
        driver.navigate(served + "index.html")
        yield driver
    finally:
        driver.close()


def _pillow_rgba(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGBA"))


def test_decoded_pixels_equal_pillows(engine, photos):
    paths, opaque = {}, 0
    for name, path in photos.items():
        got = engine.call(DECODE, engine.file_arg(path), 50_000_000)
        assert got["ok"], f"{engine.name} {name}: {got.get('error')}"
        paths[got["path"]] = paths.get(got["path"], 0) + 1
        want = _pillow_rgba(path)
        pixels = np.frombuffer(base64.b64decode(got["b64"]), np.uint8).reshape(got["height"], got["width"], 4)
        assert pixels.shape == want.shape, f"{engine.name} {name}"
        assert np.array_equal(pixels[..., 3], want[..., 3]), f"{engine.name} {name} ({got['path']}): alpha"
        # Opaque pixels exactly; translucent ones within the rounding of the premultiplied pixels every engine keeps
        # (a canvas does; so does Chromium's ImageDecoder), fully transparent ones have no colour to compare.
        a = want[..., 3:].astype(np.int32)
        slack = np.where(a == 255, 0, np.where(a == 0, 255, 255 // np.maximum(a, 1) + 1))
        diff = np.abs(pixels[..., :3].astype(np.int32) - want[..., :3])
        bad = np.argwhere(diff > slack)
        assert not len(bad), f"{engine.name} {name} ({got['path']}): {len(bad)} values differ, first at {bad[0]}: " \
                             f"{pixels[tuple(bad[0][:2])]} vs Pillow {want[tuple(bad[0][:2])]}"
        opaque += int((a == 255).sum())
    assert opaque > 0.9 * sum(_pillow_rgba(p)[..., 3].size for p in photos.values())  # mostly exact comparisons
    print(engine.name, "decode paths:", paths)
    if engine.name == "chromium":
        assert paths.get("frame", 0) >= 5  # the one-copy path is what Chromium takes for JPEGs and opaque PNGs
