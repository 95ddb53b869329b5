"""Album mode end to end in headless Chromium (web/album.html), plus the one-pass classify+embed it relies on.

50 photos: the browser-decodable real photos of the build (build/photos) plus generated ones, one of them broken.
The grid must show all 50 (the broken one with its error); the JSON export must equal what the library computes
natively for the same files and the same bundle; "similar photos" must put the picked photo first.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu
import npm_tools

ROOT = Path(__file__).resolve().parent.parent
PROB_TOL = 1e-3
TIMEOUT_MS = 600_000  # 50 photos on a shared, loaded 2-core machine
N_PHOTOS = 50
BROKEN = "broken-0017.jpg"
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".gif")  # build/photos also has TIFFs, which browsers do not decode

pytestmark = pytest.mark.browser


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def site(dist_dir) -> Path:
    return bu.require_built(dist_dir, "album.html", "album.js", "wasmvision.mjs", "manifest.json")


@pytest.fixture(scope="module")
def bundle(site) -> Path:
    """The bundle the page loads by default (the manifest's default)."""
    models = json.loads((site / "manifest.json").read_text())["models"]
    return site / next(m for m in models if m["default"])["file"]


@pytest.fixture(scope="module")
def album_files(photos_dir, tmp_path_factory) -> list[Path]:
    """50 files: every browser-decodable real photo, generated ones to make up 50, one broken."""
    from PIL import Image

    out = tmp_path_factory.mktemp("album")
    real = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in BROWSER_FORMATS)
    assert len(real) >= 20, real
    files = []
    for p in real[:N_PHOTOS - 10]:
        shutil.copy(p, out / p.name)
        files.append(out / p.name)
    rng = np.random.default_rng(10)
    i = 0
    while len(files) < N_PHOTOS - 1:
        # Smooth colour fields with a few shapes: varied content, exact in PNG (no codec differences).
        h, w = int(rng.integers(90, 400)), int(rng.integers(90, 400))
        yy, xx = np.mgrid[0:h, 0:w]
        c = rng.uniform(0, 255, (3, 3))
        img = np.stack([c[k, 0] + (c[k, 1] - c[k, 0]) * xx / w + (c[k, 2] - c[k, 0]) * yy / h for k in range(3)], -1)
        for _ in range(3):
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(10, 60)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        path = out / f"generated-{i:04d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
        files.append(path)
        i += 1
    # A JPEG cut off after its header: the browser cannot decode it.
    good = (photos_dir / "rocket.jpg").read_bytes()
    (out / BROKEN).write_bytes(good[:600])
    files.append(out / BROKEN)
    assert len(files) == N_PHOTOS
    return files


@pytest.fixture(scope="module")
def native(bundle, album_files) -> dict:
    """name -> (classification dict, embedding) natively, PIL-decoded RGB, for every decodable file."""
    from PIL import Image

    import wasmvision

    clf = wasmvision.load(bundle)
    out = {}
    for p in album_files:
        if p.name == BROKEN:
            continue
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
        result, vector = clf.classify_and_embed(rgb, top_k=5)
        out[p.name] = (result.to_dict(), vector)
    return out


def _open_album(context, base: str, query: str = "", errors: list[str] | None = None):
    """A new page of ``context`` on album.html``query``, returned once the album's classifier is ready; page errors
    go to ``errors`` from the start when given."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "album.html" + query)
    page.wait_for_function("() => window.wasmvisionAlbum")
    page.evaluate("() => window.wasmvisionAlbum.ready")
    return page


@pytest.fixture(scope="module")
def album(browser, site, album_files, tmp_path_factory):
    """The album page after classifying the 50 files, with its request log and page errors."""
    with bu.serve(site) as base:
        context = browser.new_context(accept_downloads=True)
        try:
            log = bu.RequestLog(context)
            errors: list[str] = []
            page = _open_album(context, base, errors=errors)
            page.set_input_files("[data-testid=album-files]", [str(p) for p in album_files])
            page.wait_for_function(
                f"() => document.querySelectorAll('[data-testid=album-item]').length === {N_PHOTOS} && "
                "!window.wasmvisionAlbum.state().running", polling=250)
            yield {"page": page, "log": log, "base": base, "errors": errors,
                   "downloads": tmp_path_factory.mktemp("downloads")}
        finally:
            context.close()


def _items(page) -> list[dict]:
    return page.eval_on_selector_all("[data-testid=album-item]", """items => items.map(li => ({
        file: li.dataset.file, status: li.dataset.status, label: li.dataset.label ?? null,
        probability: li.dataset.probability ? Number(li.dataset.probability) : null, hidden: li.hidden,
        text: li.textContent}))""")


def _download(album, testid: str) -> Path:
    page = album["page"]
    with page.expect_download() as info:
        page.click(f"[data-testid={testid}]")
    d = info.value
    path = album["downloads"] / d.suggested_filename
    d.save_as(path)
    return path


def _reset_order(page) -> None:
    page.fill("[data-testid=album-filter]", "")
    page.select_option("[data-testid=album-sort]", "added")


# ---------------------------------------------------------------------------------------------- the album

def test_grid_shows_every_photo_and_the_broken_one_with_its_error(album, album_files):
    page = album["page"]
    items = _items(page)
    assert len(items) == N_PHOTOS
    assert sorted(i["file"] for i in items) == sorted(p.name for p in album_files)
    failed = [i for i in items if i["status"] == "error"]
    assert [i["file"] for i in failed] == [BROKEN], failed
    assert "could not be decoded" in failed[0]["text"] and BROKEN in failed[0]["text"]
    for i in items:
        if i["status"] == "ok":
            assert i["label"] and 0 < i["probability"] <= 1 and i["label"] in i["text"]
    progress = page.inner_text("[data-testid=album-progress]")
    assert f"Done: {N_PHOTOS} photos" in progress and "1 could not be classified" in progress, progress
    # Thumbnails are small object URLs made in the page, not the photos.
    thumbs = page.eval_on_selector_all("[data-testid=album-item] img", "imgs => imgs.map(i => i.src)")
    assert len(thumbs) == N_PHOTOS - 1 and all(t.startswith("blob:") for t in thumbs)
    assert page.evaluate("() => window.wasmvisionAlbum.state().thumbnailBytes") < N_PHOTOS * 40_000
    assert album["errors"] == []


def test_two_workers_by_default_and_the_option_is_checked(album):
    page = album["page"]
    # The default the measurement chose (README, "Album mode"); the exports above come from both workers.
    assert page.evaluate("async () => (await window.wasmvisionAlbum.ready).workers") == 2
    for bad in ("0", "5", "1.5", "'2'"):
        kind, message = page.evaluate(f"""async () => {{
            const m = await import("./wasmvision.mjs");
            try {{ await m.load({{workers: {bad}}}); return [null, null]; }} catch (e) {{ return [e.kind, e.message]; }}
        }}""")
        assert kind == "ArgumentError" and "workers must be an integer from 1 to 4" in message, (bad, message)


def test_json_export_equals_the_native_library(album, native, bundle):
    path = _download(album, "album-export-json")
    assert path.suffix == ".json"
    doc = json.loads(path.read_text())
    rows = {r["file"]: r for r in doc["photos"]}
    assert len(doc["photos"]) == N_PHOTOS == len(rows)
    assert "error" in rows[BROKEN] and "could not be decoded" in rows[BROKEN]["error"]
    worst = 0.0
    for name, (want, _) in native.items():
        got = rows[name]
        assert "error" not in got, (name, got)
        assert [t["label"] for t in got["top"]] == [t["label"] for t in want["top"]], name
        assert [t["index"] for t in got["top"]] == [t["index"] for t in want["top"]], name
        diff = max(abs(a["probability"] - b["probability"]) for a, b in zip(got["top"], want["top"]))
        worst = max(worst, diff)
        assert got["model"]["name"] == want["model"]["name"]
    assert worst <= PROB_TOL, worst
    assert doc["model"]["file"] == f"models/{bundle.name}"


def test_csv_export_has_a_row_per_photo(album, native):
    path = _download(album, "album-export-csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))  # with a BOM: spreadsheets
    assert len(rows) == N_PHOTOS
    by_file = {r["file"]: r for r in rows}
    assert by_file[BROKEN]["error"] and not by_file[BROKEN]["label"]
    for name, (want, _) in native.items():
        r = by_file[name]
        assert r["label"] == want["top"][0]["label"] and r["error"] == ""
        assert abs(float(r["probability"]) - want["top"][0]["probability"]) <= PROB_TOL
        assert r["top5"].count(";") == 4


def test_similar_photos_puts_the_picked_one_first(album, native):
    page = album["page"]
    _reset_order(page)
    picked = "chelsea.png"
    page.click(f"[data-testid=album-item][data-file='{picked}'] button")
    page.wait_for_selector("[data-testid=album-detail][open]")
    page.click("[data-testid=album-similar]")
    page.wait_for_selector("[data-testid=album-detail]:not([open])", state="attached")
    order = [i["file"] for i in _items(page)]
    assert order[0] == picked
    assert order[-1] == BROKEN  # no embedding: last
    # The order follows the native embeddings' cosine similarity (ties within float error may swap).
    v0 = native[picked][1]
    sims = [float(np.dot(v0, native[f][1]) / (np.linalg.norm(v0) * np.linalg.norm(native[f][1])))
            for f in order[:-1]]
    assert all(a >= b - 1e-3 for a, b in zip(sims, sims[1:])), list(zip(order, sims))
    assert page.eval_on_selector("[data-testid=album-sort]", "s => s.value") == "similar"
    assert picked in page.inner_text("[data-testid=album-similar-note]")


def test_filter_and_sort(album, native):
    page = album["page"]
    _reset_order(page)
    page.select_option("[data-testid=album-sort]", "name")
    names = [i["file"] for i in _items(page)]
    assert names == sorted(names, key=str.lower)
    page.select_option("[data-testid=album-sort]", "confidence")
    probs = [i["probability"] for i in _items(page) if i["status"] == "ok"]
    assert probs == sorted(probs, reverse=True)
    assert _items(page)[-1]["file"] == BROKEN
    cat = native["chelsea.png"][0]["top"][0]["label"]
    page.fill("[data-testid=album-filter]", cat.split(",")[0].upper()[:5])
    shown = [i for i in _items(page) if not i["hidden"]]
    assert shown and all(cat.split(",")[0].upper()[:5].lower() in i["label"].lower() for i in shown)
    assert "chelsea.png" in [i["file"] for i in shown]
    assert "shown" in page.inner_text("#album-count")
    _reset_order(page)
    assert not any(i["hidden"] for i in _items(page))


def test_keyboard_opens_a_photos_top5_and_escape_returns(album, native):
    page = album["page"]
    _reset_order(page)
    button = page.locator("[data-testid=album-item][data-file='chelsea.png'] button")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=album-detail][open]")
    top = page.eval_on_selector_all("[data-testid=album-top-item]", """lis => lis.map(li => ({
        index: Number(li.dataset.index), probability: Number(li.dataset.probability)}))""")
    want = native["chelsea.png"][0]["top"]
    assert [t["index"] for t in top] == [t["index"] for t in want]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(top, want)) <= PROB_TOL
    # Focus starts on the dialog's first action, Escape closes it and gives focus back to the photo.
    assert page.evaluate("() => document.activeElement.dataset.testid") == "album-similar"
    page.keyboard.press("Escape")
    page.wait_for_selector("[data-testid=album-detail]:not([open])", state="attached")
    assert page.evaluate("() => document.activeElement.closest('[data-testid=album-item]')?.dataset.file") \
        == "chelsea.png"
    label = button.get_attribute("aria-label")
    assert "chelsea.png" in label and want[0]["label"] in label


def test_nothing_leaves_the_page(album, album_files):
    log: bu.RequestLog = album["log"]
    assert log.foreign(album["base"]) == []
    assert all(r.method == "GET" for r in log.requests), [f"{r.method} {r.url}" for r in log.requests]
    photo_heads = [p.read_bytes()[:4096] for p in album_files[:5]]
    for url, body in log.bodies():
        assert not any(h in body for h in photo_heads), url
    # No request for the photos themselves: they are read from the disk, in the page.
    served = {u.rsplit("/", 1)[-1] for u in log.urls()}
    assert not served & {p.name for p in album_files}


def test_cancel_stops_the_queue(browser, site, album_files):
    with bu.serve(site) as base:
        context = browser.new_context()
        try:
            page = _open_album(context, base)
            page.set_input_files("[data-testid=album-files]", [str(p) for p in album_files[:30]])
            page.wait_for_selector("[data-testid=album-cancel]:not([hidden])")
            page.wait_for_function("() => document.querySelectorAll('[data-testid=album-item]').length >= 1")
            page.click("[data-testid=album-cancel]")
            page.wait_for_function("() => !window.wasmvisionAlbum.state().running")
            n = len(_items(page))
            assert 1 <= n < 30
            assert "Cancelled" in page.inner_text("[data-testid=album-progress]")
            assert page.is_hidden("[data-testid=album-cancel]")
            # The page keeps working: more photos after a cancel are classified.
            page.set_input_files("[data-testid=album-files]", [str(album_files[0])])
            page.wait_for_function(f"() => document.querySelectorAll('[data-testid=album-item]').length === {n + 1}")
        finally:
            context.close()


def test_the_offline_copy_waits_until_the_photos_are_done(browser, site, album_files):
    """The offline copy's install (the site's ~60 MB read again and stored) would take the CPU from the photos: it
    starts once the album's queue is idle (offline.js, idle), and then completes."""
    with bu.serve(site) as base:
        context = browser.new_context()
        try:
            page = _open_album(context, base)
            page.set_input_files("[data-testid=album-files]", [str(p) for p in album_files])
            seen = page.evaluate("""async () => {
                const t0 = performance.now(), states = new Set();
                while (window.wasmvisionAlbum.state().running) {
                    states.add(document.documentElement.dataset.offline ?? "not yet");
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
                return {states: [...states], seconds: (performance.now() - t0) / 1000};
            }""")
            if seen["seconds"] < 3:
                pytest.skip(f"the photos took {seen['seconds']:.1f} s: over before an install would have started")
            assert "installing" not in seen["states"], seen
            page.wait_for_function("() => document.documentElement.dataset.offline === 'ready'")
        finally:
            context.close()


def test_a_folder_and_a_drop_of_files_are_added(browser, site, album_files, photos_dir, tmp_path):
    import base64

    folder = tmp_path / "trip"
    (folder / "day2").mkdir(parents=True)
    shutil.copy(photos_dir / "chelsea.png", folder / "chelsea.png")
    shutil.copy(photos_dir / "coffee.png", folder / "day2" / "coffee.png")
    (folder / "notes.txt").write_text("not a photo")
    with bu.serve(site) as base:
        context = browser.new_context()
        try:
            page = _open_album(context, base, "?workers=1")
            page.set_input_files("[data-testid=album-folder]", str(folder))
            page.wait_for_function("() => document.querySelectorAll('[data-testid=album-item]').length === 2 && "
                                   "!window.wasmvisionAlbum.state().running")
            assert sorted(i["file"] for i in _items(page)) == ["trip/chelsea.png", "trip/day2/coffee.png"]
            assert "Skipped 1 file" in page.inner_text("[data-testid=album-error]")
            # A drop of files (what a drag from a file manager gives when entries are not available).
            data = base64.b64encode((photos_dir / "rocket.jpg").read_bytes()).decode()
            page.evaluate("""(b64) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], "dropped.jpg", { type: "image/jpeg" }));
                document.body.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
            }""", data)
            page.wait_for_function("() => document.querySelectorAll('[data-testid=album-item]').length === 3")
            assert "dropped.jpg" in [i["file"] for i in _items(page)]
        finally:
            context.close()


# ---------------------------------------------------------------------------------------------- accessibility

def test_no_axe_violations(browser, site, album_files):
    # The accessibility checker at the version pinned for every page test (tests/npm_tools.py); never a product
    # dependency.
    source = (npm_tools.npm_package("axe-core") / "axe.min.js").read_text()
    with bu.serve(site) as base:
        # axe is injected as a script: only this context lifts the page's CSP, the product pages keep theirs.
        context = browser.new_context(bypass_csp=True)
        try:
            page = _open_album(context, base)
            page.set_input_files("[data-testid=album-files]", [str(p) for p in album_files[-4:]])
            page.wait_for_function("() => document.querySelectorAll('[data-testid=album-item]').length === 4 && "
                                   "!window.wasmvisionAlbum.state().running")
            page.add_script_tag(content=source)
            checks = {"grid": None}
            checks["grid"] = page.evaluate("async () => (await axe.run(document)).violations")
            page.click("[data-testid=album-item] button >> nth=0")
            page.wait_for_selector("[data-testid=album-detail][open]")
            checks["detail"] = page.evaluate("async () => (await axe.run(document)).violations")
            for where, violations in checks.items():
                assert violations == [], (where, [(v["id"], v["help"], [n["html"] for n in v["nodes"]][:3])
                                                  for v in violations])
        finally:
            context.close()


# ---------------------------------------------------------------------------------------------- native glue

def test_classify_and_embed_equals_classify_and_infer(bundle, photos_dir):
    from PIL import Image

    import wasmvision
    from wasmvision import browser as glue

    clf = wasmvision.load(bundle)
    rgb = np.asarray(Image.open(photos_dir / "chelsea.png").convert("RGB"))
    result, vector = clf.classify_and_embed(rgb, top_k=5)
    assert result.to_dict()["top"] == clf.classify(rgb, top_k=5).to_dict()["top"]
    np.testing.assert_array_equal(vector, clf.infer(rgb, embedding=True))

    glue._cache = glue._ModelCache()
    assert json.loads(glue.load_model("m", bundle.read_bytes()))["ok"]
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    reply = json.loads(glue.classify_embed_rgba("m", rgba.tobytes(), rgb.shape[1], rgb.shape[0], 5))
    assert reply["ok"], reply
    value = reply["value"]
    assert [t["index"] for t in value["top"]] == [t.index for t in result.top]
    np.testing.assert_allclose(value["embedding"], vector, rtol=0, atol=1e-6)
    assert {"preprocess", "inference", "handover"} <= set(value["timings_ms"])


# ---------------------------------------------------------------------------------------------- the site

def test_album_files_are_in_the_manifest_and_same_origin_only(site):
    import hashlib
    import re

    manifest = json.loads((site / "manifest.json").read_text())
    listed = {e["path"]: e for e in manifest["files"]}
    web = ROOT / "web"
    for src in [web / "album.html", web / "album.css"]:
        rel = src.relative_to(web).as_posix()
        assert rel in listed, rel
        data = (site / rel).read_bytes()
        assert listed[rel]["sha256"] == hashlib.sha256(data).hexdigest() and data == src.read_bytes(), rel
    # album.js ships with its modules bundled in (build.py bundle_page), listed with its own hash.
    data = (site / "album.js").read_bytes()
    assert listed["album.js"]["sha256"] == hashlib.sha256(data).hexdigest()
    for module in sorted((web / "album").glob("*.js")):
        assert f"// album/{module.name}\n".encode() in data or f"album/{module.name}" in listed, module.name
    html = (site / "album.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html).group(1)
    sources = " ".join(csp.split(";"))
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert not re.search(r"https?:|\*|'unsafe-eval'|'unsafe-inline'", sources), csp
    assert 'href="./album.html"' in (site / "index.html").read_text()
