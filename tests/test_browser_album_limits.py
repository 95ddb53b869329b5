"""The album's limits and summaries in headless Chromium: thumbnails bounded by the
classifier's pixel limit before anything is decoded, a run's summary counting that run only (not a cancelled or a
cleared one), and a CSV export spreadsheets read as UTF-8. One album page (one worker) serves every test; each test
starts from Clear.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu

TIMEOUT_MS = 300_000
CLEARED = "Cleared. Choose photos or a folder."

pytestmark = pytest.mark.browser

# Every createImageBitmap call of the page (not its workers'), with the size of what it was given.
SPY = """(() => {
  const original = window.createImageBitmap;
  window.__bitmapSources = [];
  window.createImageBitmap = function (source, ...rest) {
    window.__bitmapSources.push(source && typeof source.size === "number" ? source.size : -1);
    return original.call(this, source, ...rest);
  };
})();"""


@pytest.fixture(scope="module")
def site(dist_dir) -> Path:
    return bu.require_built(dist_dir, "album.html", "album.js", "wasmvision.mjs", "manifest.json")


@pytest.fixture(scope="module")
def photos(photos_dir, tmp_path_factory) -> dict[str, Path]:
    """Small generated PNGs, a broken JPEG, a real photo under a non-ASCII name, and a PNG over the pixel limit
    (7500 x 7000 = 52.5 MP, a few KB: 1-bit)."""
    from PIL import Image

    out = tmp_path_factory.mktemp("album-limits")
    rng = np.random.default_rng(22)
    files: dict[str, Path] = {}
    for i in range(16):
        path = out / f"small-{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(path)
        files[path.name] = path
    broken = out / "broken.jpg"
    broken.write_bytes((photos_dir / "rocket.jpg").read_bytes()[:600])
    files["broken"] = broken
    files["named"] = out / "Müsli café ß.png"
    shutil.copy(photos_dir / "chelsea.png", files["named"])
    files["huge"] = out / "huge-7500x7000.png"
    Image.new("1", (7500, 7000), 1).save(files["huge"])
    assert files["huge"].stat().st_size < 100_000
    return files


@pytest.fixture(scope="module")
def album(browser, site):
    with bu.serve(site) as base:
        context = browser.new_context(accept_downloads=True)
        context.add_init_script(SPY)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(base + "album.html?workers=1")
            page.wait_for_function("() => window.wasmvisionAlbum")
            page.evaluate("() => window.wasmvisionAlbum.ready")
            yield page
        finally:
            context.close()


def clear(page) -> None:
    if page.is_enabled("[data-testid=album-clear]"):
        page.click("[data-testid=album-clear]")
    page.wait_for_function("() => !window.wasmvisionAlbum.state().running")
    page.evaluate("() => { window.__bitmapSources = []; }")


def add(page, files: list[Path]) -> None:
    page.set_input_files("[data-testid=album-files]", [str(p) for p in files])


def wait_items(page, n: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=album-item]').length === {n} && "
                           "!window.wasmvisionAlbum.state().running", polling=100)


def progress(page) -> str:
    return page.inner_text("#album-progress-text")


def test_thumbnails_respect_the_pixel_limit(album, photos):
    page = album
    clear(page)
    add(page, [photos["huge"], photos["small-00.png"]])
    wait_items(page, 2)
    items = page.eval_on_selector_all("[data-testid=album-item]", """items => items.map((li) => ({
        file: li.dataset.file, status: li.dataset.status, text: li.textContent, thumb: Boolean(li.querySelector('img'))}))""")
    by_file = {i["file"]: i for i in items}
    huge = by_file[photos["huge"].name]
    print(huge)
    assert huge["status"] == "error" and "too large" in huge["text"], huge
    assert not huge["thumb"], "a thumbnail was made of a photo over the pixel limit"
    assert by_file["small-00.png"]["thumb"]
    # Refused from its header: the page never decoded it.
    sources = page.evaluate("() => window.__bitmapSources")
    assert photos["huge"].stat().st_size not in sources, sources
    assert photos["small-00.png"].stat().st_size in sources, sources


def test_a_summary_counts_its_own_run_only(album, photos):
    page = album
    clear(page)
    first = [photos["broken"]] + [photos[f"small-{i:02d}.png"] for i in range(12)]
    add(page, first)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=album-item]').length >= 2")
    # Cancel, then add two photos while the cancelled run's last photos are still in the worker.
    page.click("[data-testid=album-cancel]")
    add(page, [photos["small-14.png"], photos["small-15.png"]])
    page.wait_for_function("() => !window.wasmvisionAlbum.state().running")
    page.wait_for_timeout(1500)  # anything of the cancelled run still in flight finishes meanwhile
    text = progress(page)
    print(text)
    assert text.startswith("Done: 2 photos"), text
    assert "could not be classified" not in text, text  # the broken photo was the cancelled run's


def test_a_cleared_run_changes_nothing_when_its_last_photos_finish(album, photos):
    page = album
    clear(page)
    add(page, [photos[f"small-{i:02d}.png"] for i in range(8)])
    page.wait_for_function("() => document.querySelectorAll('[data-testid=album-item]').length >= 1")
    page.click("[data-testid=album-clear]")
    page.wait_for_timeout(3000)
    assert progress(page) == CLEARED
    assert page.evaluate("() => document.querySelectorAll('[data-testid=album-item]').length") == 0
    add(page, [photos["small-13.png"]])
    wait_items(page, 1)
    assert progress(page).startswith("Done: 1 photos"), progress(page)


def test_csv_export_is_utf8_with_a_bom(album, photos, tmp_path):
    page = album
    clear(page)
    add(page, [photos["named"]])
    wait_items(page, 1)
    with page.expect_download() as info:
        page.click("[data-testid=album-export-csv]")
    path = tmp_path / "album.csv"
    info.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:16]
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["file"] for r in rows] == [photos["named"].name]
    assert rows[0]["label"] == "Egyptian cat"
