"""The page with each engine (issue 8): ?engine=simd and ?engine=numpy give the native top-5 and say which engine
ran; a site whose kernel library cannot load (or does not match its recorded hash) falls back to numpy with a
one-line notice and the same answers. Needs the built site (python3 build.py build) and Chromium."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu

pytestmark = pytest.mark.browser
TIMEOUT_MS = 300_000
LIBRARY = "wasmvision/simd/libwvsimd.so"
RECORD = "wasmvision/simd/libwvsimd.json"


@pytest.fixture(scope="module")
def site(dist_dir):
    return dist_dir


@pytest.fixture(scope="module")
def native_top(dist_dir, chelsea):
    """The native result of the page's default bundle on chelsea.png: [(index, probability)] of the top 5."""
    from PIL import Image

    import wasmvision

    manifest = json.loads((dist_dir / "manifest.json").read_text())
    default = next(m for m in manifest["models"] if m["default"])
    rgb = np.asarray(Image.open(chelsea).convert("RGB"))
    result = wasmvision.load(dist_dir / default["file"], engine="numpy").classify(rgb, top_k=5)
    return [(p.index, p.probability) for p in result.top]


def _classify_on_page(browser, base: str, query: str, chelsea: Path) -> tuple[dict, str, str]:
    """(result, the page's engine label, the page's notice text) for chelsea.png on a fresh page."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + query)
        bu.wait_ready(page, TIMEOUT_MS)
        notice = page.inner_text("[data-testid=error]") if page.is_visible("[data-testid=error]") else ""
        page.set_input_files("[data-testid=file-input]", str(chelsea))
        page.wait_for_selector("[data-testid=result-item]")
        result = bu.classify_in_page(page, chelsea)
        return result, page.inner_text("[data-testid=engine]"), notice
    finally:
        context.close()


def _same_top(result: dict, native: list[tuple[int, float]]) -> None:
    assert [p["index"] for p in result["top"]] == [i for i, _ in native]
    for p, (_, prob) in zip(result["top"], native):
        assert abs(p["probability"] - prob) <= 1e-3


@pytest.mark.parametrize("engine", ["simd", "numpy"])
def test_each_engine_gives_the_native_answer_and_says_so(browser, served, chelsea, native_top, engine):
    result, label, notice = _classify_on_page(browser, served, f"?engine={engine}", chelsea)
    assert result["engine"] == engine
    assert f"{engine} engine" in label
    assert notice == ""
    _same_top(result, native_top)


def _site_with_library(dist_dir: Path, dest: Path, library: bytes, recorded_sha256: str) -> Path:
    """A copy of the site whose wasmvision wheel carries ``library`` as the kernel file and ``recorded_sha256`` as
    its recorded hash; the lock and the manifest list the new wheel (so the site's own checks accept it, and only
    the kernel loader can object)."""
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    wheel_path = manifest["wasmvision"]["wheel"]
    out = io.BytesIO()
    with zipfile.ZipFile(dist_dir / wheel_path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == LIBRARY:
                data = library
            elif item.filename == RECORD:
                record = json.loads(data)
                record.update(bytes=len(library), sha256=recorded_sha256)
                data = json.dumps(record).encode()
            dst.writestr(item, data)
    wheel = out.getvalue()
    lock = json.loads((dist_dir / "pyodide" / "pyodide-lock.json").read_text())
    lock["packages"]["wasmvision"]["sha256"] = hashlib.sha256(wheel).hexdigest()
    replace = {wheel_path: wheel, "pyodide/pyodide-lock.json": json.dumps(lock).encode()}
    for f in manifest["files"]:
        if f["path"] in replace:
            f["bytes"], f["sha256"] = len(replace[f["path"]]), hashlib.sha256(replace[f["path"]]).hexdigest()
    replace["manifest.json"] = json.dumps(manifest, indent=1).encode()
    return bu.site_variant(dist_dir, dest / "site", replace=replace)


BROKEN = b"\x00asm\x01\x00\x00\x00" + b"\xff" * 64  # a Wasm header, then nothing a loader can read


@pytest.mark.parametrize("case", ["fails to load", "does not match its recorded hash"])
def test_a_kernel_library_that_cannot_be_used_falls_back_to_numpy(browser, dist_dir, chelsea, native_top, tmp_path,
                                                                  case):
    recorded = hashlib.sha256(BROKEN).hexdigest() if case == "fails to load" else "0" * 64
    site = _site_with_library(dist_dir, tmp_path, BROKEN, recorded)
    with bu.serve(site) as base:
        result, label, notice = _classify_on_page(browser, base, "", chelsea)
    assert result["engine"] == "numpy" and "numpy engine" in label
    assert "libwvsimd.so" in notice and "numpy" in notice.lower(), notice
    _same_top(result, native_top)
