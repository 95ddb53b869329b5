"""The page end to end in headless Chromium, plus the Python glue (wasmvision.browser) natively.

Browser tests (marked ``browser``) need the built site: ``python build.py`` writes dist/. They share one page per
module: Pyodide boots once (several seconds), and the page must keep working across good and bad inputs anyway.
Chromium is /usr/bin/chromium unless WASMVISION_CHROMIUM says otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu
from builders import tiny_onnx

ROOT = Path(__file__).resolve().parent.parent
PROB_TOL = 1e-3
TIMEOUT_MS = 240_000  # a cold Pyodide boot on a loaded 2-core machine can take tens of seconds


# ---------------------------------------------------------------------------------------------- fixtures

def _fixture_or(request, name: str, fallback: Path) -> Path:
    # tests/conftest.py (BUILD helper) provides these and fails with the build command when outputs are missing.
    try:
        return Path(request.getfixturevalue(name))
    except pytest.FixtureLookupError:
        return fallback


@pytest.fixture(scope="module")
def site(request) -> Path:
    # WASMVISION_DIST points the tests at another copy of the site (e.g. one deployed elsewhere on disk).
    override = os.environ.get("WASMVISION_DIST")
    dist = Path(override) if override else _fixture_or(request, "dist_dir", ROOT / "dist")
    return bu.require_built(dist, "index.html", "worker.js", "manifest.json", "pyodide/pyodide.mjs",
                            "models/mobilenet_v2.wvb")


@pytest.fixture(scope="module")
def photos(request) -> Path:
    d = _fixture_or(request, "photos_dir", ROOT / "build" / "photos")
    return bu.require_built(d, "chelsea.png")


def builtin_models(site: Path) -> list[dict]:
    return json.loads((site / "manifest.json").read_text())["models"]


def default_model(site: Path) -> dict:
    """The manifest entry the page loads first (the default weight storage, see docs/quantization.md)."""
    return next(m for m in builtin_models(site) if m["default"])


@pytest.fixture(scope="module")
def native_chelsea(site, photos) -> dict:
    """The native run the page must reproduce: same bundle, PIL-decoded RGB."""
    Image = pytest.importorskip("PIL.Image")
    import wasmvision

    rgb = np.asarray(Image.open(photos / "chelsea.png").convert("RGB"))
    return wasmvision.load(site / default_model(site)["file"]).classify(rgb, top_k=5).to_dict()


@contextmanager
def _fresh_page(browser):
    """A page in a new browser context (its own empty cache), with the context's request log."""
    context = browser.new_context()
    try:
        log = bu.RequestLog(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page, log
    finally:
        context.close()


@pytest.fixture(scope="module")
def session(browser, served, site):
    """One page with the runtime booted, its request log, and the console errors it printed."""
    with _fresh_page(browser) as (page, log):
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(served)
        bu.wait_ready(page, TIMEOUT_MS)
        yield {"page": page, "log": log, "base": served, "errors": errors, "site": site}


def _assert_private(session, photo_bytes: list[bytes]) -> None:
    log: bu.RequestLog = session["log"]
    assert log.foreign(session["base"]) == [], "the page requested something outside its own origin"
    for url, body in log.bodies():
        for photo in photo_bytes:
            assert photo[:4096] not in body, f"a request to {url} carried the photo's bytes"
    assert all(r.method == "GET" for r in log.requests), [f"{r.method} {r.url}" for r in log.requests]


def _wait_result(page) -> list[dict]:
    # Either a result or an error ends the wait; an error fails with the page's own message.
    page.wait_for_function(
        """() => !document.querySelector('[data-testid=error]').hidden ||
                 (document.querySelector('[data-testid=result-item]') &&
                  !document.querySelector('[data-testid=results]').hasAttribute('aria-busy'))""",
        timeout=TIMEOUT_MS)
    assert _error_hidden(page), f"the page shows an error: {page.inner_text('[data-testid=error]')}"
    return page.eval_on_selector_all(
        "[data-testid=result-item]",
        """items => items.map(li => ({
            index: Number(li.dataset.index),
            probability: Number(li.dataset.probability),
            label: li.querySelector('[data-testid=result-label]').textContent,
            shown: li.querySelector('[data-testid=result-probability]').textContent,
        }))""",
    )


def _wait_error(page) -> str:
    page.wait_for_selector("[data-testid=error]:not([hidden])", timeout=TIMEOUT_MS)
    return page.inner_text("[data-testid=error]")


def _error_hidden(page) -> bool:
    return page.eval_on_selector("[data-testid=error]", "e => e.hidden")


def _clear_results(page) -> None:
    page.evaluate("document.querySelector('[data-testid=result-list]').replaceChildren()")


# ---------------------------------------------------------------------------------------------- the page

@pytest.mark.browser
def test_upload_chelsea_matches_native(session, photos, native_chelsea):
    page = session["page"]
    _clear_results(page)
    page.set_input_files("[data-testid=file-input]", str(photos / "chelsea.png"))
    items = _wait_result(page)

    assert len(items) == 5
    assert items[0]["label"] == "Egyptian cat"
    native_top = native_chelsea["top"]
    assert [i["index"] for i in items] == [p["index"] for p in native_top]
    for got, want in zip(items, native_top):
        assert abs(got["probability"] - want["probability"]) <= PROB_TOL, (got, want)
    assert items[0]["shown"] == f"{native_top[0]['probability'] * 100:.1f}%"
    assert _error_hidden(page)

    timings = page.inner_text("[data-testid=timings]")
    for stage in ("Decode", "Preprocess", "Inference", "Postprocess", "Total"):
        assert stage in timings
    assert "–" not in timings, f"a stage has no time: {timings!r}"
    # The model that ran, as the picker names it ("MobileNetV2 · int8"), with its exact name and version on hover.
    entry = default_model(session["site"])
    assert page.inner_text("[data-testid=model-name]") == f"{entry['title']} · {entry['storage']}"
    model = page.get_attribute("[data-testid=model-name]", "title")
    assert native_chelsea["model"]["name"] in model and native_chelsea["model"]["version"] in model
    assert "Egyptian cat" in page.inner_text("[data-testid=status]")
    assert page.is_visible("[data-testid=preview] img")

    page.screenshot(path="/tmp/wasmvision-page.png", full_page=True)
    _assert_private(session, [(photos / "chelsea.png").read_bytes()])
    assert session["errors"] == []


@pytest.mark.browser
@pytest.mark.parametrize("name, data, expect", [
    ("notes.txt", b"this is not an image, just some text\n" * 20, "not an image"),
    ("empty.png", b"", "empty"),
    ("truncated.png", None, "could not be decoded"),
    ("random.jpg", bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)), "not an image"),
])
def test_bad_file_shows_error_then_next_photo_works(session, photos, native_chelsea, name, data, expect):
    page = session["page"]
    if data is None:  # the PNG cut in the middle of its image data
        whole = (photos / "chelsea.png").read_bytes()
        data = whole[: len(whole) // 2]
    page.set_input_files("[data-testid=file-input]", files=[{"name": name, "mimeType": "", "buffer": data}])
    message = _wait_error(page)
    assert expect in message.lower(), message
    assert page.get_attribute("[data-testid=error]", "role") == "alert"

    _clear_results(page)
    page.set_input_files("[data-testid=file-input]", str(photos / "chelsea.png"))
    items = _wait_result(page)
    assert items[0]["index"] == native_chelsea["top"][0]["index"]
    assert _error_hidden(page)


def _unusual_image(kind: str, photos: Path, tmp_path: Path) -> Path:
    """Valid images that take other decoder paths; each decodes to known pixels natively."""
    from PIL import Image

    chelsea = Image.open(photos / "chelsea.png").convert("RGB")
    path = tmp_path / f"{kind}.png"
    if kind == "one-pixel":
        Image.new("RGB", (1, 1), (200, 30, 90)).save(path)
    elif kind == "grayscale":
        chelsea.convert("L").save(path)
    elif kind == "rgba-opaque":
        rgba = chelsea.copy()
        rgba.putalpha(255)
        rgba.save(path)
    elif kind == "gray-16bit":
        # 16-bit values g*257 decode to exactly g at 8 bits, in the browser and natively (high byte).
        gray = np.asarray(chelsea.convert("L")).astype(np.uint16) * 257
        Image.fromarray(gray).save(path)
    elif kind == "exif-rotated":
        # Pixels stored rotated 90° counter-clockwise with EXIF orientation 6 ("rotate 90° clockwise to view"):
        # shown upright, this is chelsea again.
        exif = Image.Exif()
        exif[0x0112] = 6
        chelsea.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    else:
        raise ValueError(kind)
    return path


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["one-pixel", "grayscale", "rgba-opaque", "gray-16bit", "exif-rotated"])
def test_unusual_valid_images_match_native(session, photos, tmp_path, kind):
    pytest.importorskip("PIL.Image")
    import wasmvision
    from wasmvision.image_io import read_image

    path = _unusual_image(kind, photos, tmp_path)
    native = wasmvision.load(session["site"] / default_model(session["site"])["file"]).classify(read_image(path)).to_dict()
    page = session["page"]
    _clear_results(page)
    page.set_input_files("[data-testid=file-input]", str(path))
    items = _wait_result(page)
    assert [i["index"] for i in items[:3]] == [p["index"] for p in native["top"][:3]], (items, native["top"])
    for got, want in zip(items, native["top"]):
        assert abs(got["probability"] - want["probability"]) <= PROB_TOL, (kind, got, want)
    if kind == "exif-rotated":
        assert items[0]["label"] == "Egyptian cat"


@pytest.mark.browser
def test_huge_image_is_refused_before_decoding(session, photos, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "huge.png"
    Image.new("1", (12000, 9000)).save(path)  # 108 MP, a few hundred kB on disk
    page = session["page"]
    page.set_input_files("[data-testid=file-input]", str(path))
    message = _wait_error(page)
    assert "too large" in message and "12000" in message, message
    max_pixels = page.evaluate("window.wasmvision.ready.then(r => r.maxPixels)")
    from wasmvision import preprocess

    assert max_pixels == preprocess.MAX_PIXELS

    _clear_results(page)
    page.set_input_files("[data-testid=file-input]", str(photos / "chelsea.png"))
    assert _wait_result(page)[0]["label"] == "Egyptian cat"


@pytest.mark.browser
def test_js_api_classifies_a_blob(session, photos, native_chelsea):
    page = session["page"]
    result = bu.classify_in_page(page, photos / "chelsea.png", top_k=3)
    assert [p["index"] for p in result["top"]] == [p["index"] for p in native_chelsea["top"][:3]]
    assert abs(result["top"][0]["probability"] - native_chelsea["top"][0]["probability"]) <= PROB_TOL
    assert set(result["top"][0]) >= {"index", "label", "probability"}
    assert set(result["timings_ms"]) >= {"decode", "preprocess", "inference", "postprocess", "total"}
    assert all(v >= 0 for v in result["timings_ms"].values())
    assert result["model"]["name"] == native_chelsea["model"]["name"]
    assert result["model"]["version"] == native_chelsea["model"]["version"]

    models = page.evaluate("window.wasmvision.models()")
    assert any(m["name"] == "mobilenet_v2" and m["builtin"] for m in models)
    stats = page.evaluate("({...window.wasmvision.stats})")
    assert stats["readyMs"] > 0 and stats["firstResultMs"] >= stats["readyMs"]

    # An API error is a rejected promise with a message, and the page keeps working.
    message = page.evaluate(
        "window.wasmvision.classify(new Blob([]), {topK: 5}).then(() => 'resolved', e => e.message)")
    assert "empty" in message
    _assert_private(session, [(photos / "chelsea.png").read_bytes()])


@pytest.mark.browser
def test_every_builtin_weight_storage_matches_its_native_run(session, photos):
    """The picker offers fp32, fp16 and int8 bundles; each must give what the same bundle gives natively."""
    Image = pytest.importorskip("PIL.Image")
    import wasmvision

    page = session["page"]
    rgb = np.asarray(Image.open(photos / "chelsea.png").convert("RGB"))
    blob = bu.put_blob(page, photos / "chelsea.png")
    entries = builtin_models(session["site"])
    assert {m["storage"] for m in entries} >= {"fp32", "fp16", "int8"}
    options = page.eval_on_selector_all("[data-testid=model-select] option", "os => os.map(o => o.value)")
    for entry in entries:
        assert entry["key"] in options
        native = wasmvision.load(session["site"] / entry["file"]).classify(rgb, top_k=5).to_dict()
        got = page.evaluate(f"(key) => window.wasmvision.classify({blob}, {{topK: 5, model: key}})", entry["key"])
        assert [p["index"] for p in got["top"]] == [p["index"] for p in native["top"]], entry["key"]
        for a, b in zip(got["top"], native["top"]):
            assert abs(a["probability"] - b["probability"]) <= PROB_TOL, (entry["key"], a, b)
    _assert_private(session, [(photos / "chelsea.png").read_bytes()])


_DROP_OR_PASTE = """async ([b64, name, event]) => {
    // Builds a File in the page and fires the events a real drop or paste would.
    const file = new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, {type: "image/png"});
    const dt = new DataTransfer();
    dt.items.add(file);
    if (event === "drop") {
        const zone = document.querySelector('[data-testid=drop-zone]');
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
        }
    } else {
        document.dispatchEvent(new ClipboardEvent("paste", {bubbles: true, cancelable: true, clipboardData: dt}));
    }
}"""


@pytest.mark.browser
@pytest.mark.parametrize("event", ["drop", "paste"])
def test_drop_and_paste(session, photos, event):
    import base64

    page = session["page"]
    _clear_results(page)
    name, label = ("coffee.png", "espresso") if (photos / "coffee.png").exists() else ("chelsea.png", "Egyptian cat")
    data = base64.b64encode((photos / name).read_bytes()).decode()
    page.evaluate(_DROP_OR_PASTE, [data, name, event])
    items = _wait_result(page)
    assert items[0]["label"] == label
    assert name in page.inner_text("#preview-caption")


@pytest.mark.browser
def test_drop_zone_is_keyboard_accessible(session, photos):
    page = session["page"]
    zone = page.locator("[data-testid=drop-zone]")
    assert zone.get_attribute("tabindex") == "0" and zone.get_attribute("role") == "button"
    assert page.get_attribute("[data-testid=status]", "aria-live") == "polite"
    # A standing listener keeps Playwright's chooser interception on; toggling it per expectation races with
    # the key press and the chooser then opens unseen.
    choosers = []

    def on_chooser(chooser):
        choosers.append(chooser)

    page.on("filechooser", on_chooser)
    page.wait_for_timeout(200)
    try:
        for key in ("Enter", " "):
            zone.focus()
            before = len(choosers)
            page.keyboard.press(key)
            for _ in range(100):
                if len(choosers) > before:
                    break
                page.wait_for_timeout(50)
            assert len(choosers) > before, f"pressing {key!r} on the drop zone opened no file chooser"
        _clear_results(page)
        choosers[-1].set_files(str(photos / "chelsea.png"))
        assert _wait_result(page)[0]["label"] == "Egyptian cat"
    finally:
        page.remove_listener("filechooser", on_chooser)


@pytest.mark.browser
def test_user_onnx_model_opens_and_classifies(session, photos, native_chelsea, tmp_path):
    onnx_import = pytest.importorskip("wasmvision.importers.onnx_import")
    Image = pytest.importorskip("PIL.Image")
    import wasmvision

    data = tiny_onnx()
    path = tmp_path / "my_tiny_net.onnx"
    path.write_bytes(data)
    rgb = np.asarray(Image.open(photos / "chelsea.png").convert("RGB"))
    native = wasmvision.load(onnx_import.import_onnx(data, name="my_tiny_net")).classify(rgb, top_k=5).to_dict()

    page = session["page"]
    page.set_input_files("[data-testid=model-input]", str(path))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=model-select]').value === 'my_tiny_net'", timeout=TIMEOUT_MS)
    assert _error_hidden(page), page.inner_text("[data-testid=error]")
    options = page.eval_on_selector_all("[data-testid=model-select] option", "os => os.map(o => o.value)")
    assert "mobilenet_v2" in options and "my_tiny_net" in options

    _clear_results(page)
    page.set_input_files("[data-testid=file-input]", str(photos / "chelsea.png"))
    items = _wait_result(page)
    assert "my_tiny_net" in page.inner_text("[data-testid=model-name]")
    assert [i["index"] for i in items] == [p["index"] for p in native["top"]]
    for got, want in zip(items, native["top"]):
        assert abs(got["probability"] - want["probability"]) <= PROB_TOL

    # Back to the built-in model: still cached, and it gives the built-in answer again.
    _clear_results(page)
    page.select_option("[data-testid=model-select]", default_model(session["site"])["key"])
    items = _wait_result(page)  # re-classifies the current photo with the selected model
    assert items[0]["label"] == "Egyptian cat"
    assert abs(items[0]["probability"] - native_chelsea["top"][0]["probability"]) <= PROB_TOL
    _assert_private(session, [(photos / "chelsea.png").read_bytes(), data])


@pytest.mark.browser
def test_corrupt_model_bundle_shows_error(session, site, photos, tmp_path):
    raw = bytearray((site / "models" / "mobilenet_v2.wvb").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "damaged.wvb"
    bad.write_bytes(bytes(raw))
    page = session["page"]
    before = page.eval_on_selector("[data-testid=model-select]", "s => s.value")
    page.set_input_files("[data-testid=model-input]", str(bad))
    message = _wait_error(page)
    assert "damaged.wvb" in message and "checksum" in message.lower(), message
    assert page.eval_on_selector("[data-testid=model-select]", "s => s.value") == before

    truncated = tmp_path / "cut.wvb"
    truncated.write_bytes(bytes(raw[: len(raw) // 3]))
    page.set_input_files("[data-testid=model-input]", str(truncated))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=error]').textContent.includes('cut.wvb')", timeout=TIMEOUT_MS)
    assert "truncated" in page.inner_text("[data-testid=error]").lower()

    _clear_results(page)
    page.set_input_files("[data-testid=file-input]", str(photos / "chelsea.png"))
    assert _wait_result(page)[0]["label"] == "Egyptian cat"


@pytest.mark.browser
def test_missing_model_bundle_shows_error(browser, site, tmp_path):
    # The site without its models/ folder, as a half-finished upload to a static host would be.
    variant = bu.site_variant(site, tmp_path / "site", drop={"models"})
    with bu.serve(variant) as base, _fresh_page(browser) as (page, _log):
        page.goto(base)
        bu.wait_ready(page, TIMEOUT_MS)
        message = _wait_error(page)
        assert Path(default_model(site)["file"]).name in message and "404" in message, message
        result = page.evaluate(
            "window.wasmvision.classify(new Blob([new Uint8Array([1,2,3])])).then(() => 'ok', e => e.message)")
        assert result != "ok"


@pytest.mark.browser
def test_lock_without_our_wheel_falls_back_to_micropip(browser, site, photos, tmp_path):
    lock = json.loads((site / "pyodide" / "pyodide-lock.json").read_text())
    del lock["packages"]["wasmvision"]
    new_lock = json.dumps(lock).encode()
    # A site built that way: its manifest lists the lock it serves (else the lock is refused as tampered).
    manifest = json.loads((site / "manifest.json").read_text())
    for e in manifest["files"]:
        if e["path"] == "pyodide/pyodide-lock.json":
            e.update(sha256=hashlib.sha256(new_lock).hexdigest(), bytes=len(new_lock))
    variant = bu.site_variant(site, tmp_path / "site", replace={"pyodide/pyodide-lock.json": new_lock,
                                                             "manifest.json": json.dumps(manifest).encode()})
    with bu.serve(variant) as base, _fresh_page(browser) as (page, log):
        page.goto(base)
        bu.wait_ready(page, TIMEOUT_MS)
        assert any("micropip" in u for u in log.urls())
        result = bu.classify_in_page(page, photos / "chelsea.png")
        assert result["top"][0]["label"] == "Egyptian cat"
        assert log.foreign(base) == []


@pytest.mark.browser
def test_broken_runtime_reports_instead_of_hanging(browser, site, tmp_path):
    variant = bu.site_variant(site, tmp_path / "site", drop={"pyodide/pyodide.asm.wasm"})
    with bu.serve(variant) as base, _fresh_page(browser) as (page, _log):
        page.goto(base)
        message = page.evaluate("window.wasmvision.ready.then(() => 'ready', e => e.message)")
        assert message != "ready"
        assert "could not start" in _wait_error(page)
        # A request made after the failure is refused too, promptly.
        result = page.evaluate("window.wasmvision.models().then(() => 'ok', e => e.message)")
        assert result != "ok"


# ---------------------------------------------------------------------------------------------- wasmvision.browser natively

def _tiny_bundle(name: str = "tiny", classes: int = 6, embedding: str | None = None):
    from wasmvision import bundle as B

    rng = np.random.default_rng(3)
    tensors = {
        "w0": (rng.standard_normal((3, 3, 3, 4)) * 0.5).astype(np.float32),
        "b0": rng.standard_normal(4).astype(np.float32),
        "w1": rng.standard_normal((4, classes)).astype(np.float32),
        "b1": rng.standard_normal(classes).astype(np.float32),
    }
    nodes = [
        B.Node("conv2d", ["input", "w0", "b0"], ["t0"], "conv",
               {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 1,
                "activation": {"kind": "relu"}}),
        B.Node("global_avg_pool", ["t0"], ["t1"], "pool"),
        B.Node("flatten", ["t1"], ["t2"], "flat", {"axis": 1}),
        B.Node("dense", ["t2", "w1", "b1"], ["logits"], "fc", {"activation": {"kind": "none"}}),
    ]
    return B.Bundle(nodes=nodes, inputs=[B.ValueInfo("input", [-1, 16, 16, 3])],
                    outputs=[B.ValueInfo("logits", [-1, classes], layout="NC")], tensors=tensors,
                    name=name, version="1", labels=[f"class {i}" for i in range(classes)],
                    preprocess={"kind": "none"}, embedding=embedding)


@pytest.fixture
def glue():
    wasmvision = pytest.importorskip("wasmvision")
    if not hasattr(wasmvision, "load"):
        pytest.skip("the runtime (wasmvision.load) is not available yet")
    from wasmvision import browser

    browser._cache = browser._ModelCache()
    return browser


def _ok(text: str) -> dict:
    reply = json.loads(text)
    assert reply["ok"], reply
    return reply["value"]


def test_glue_classify_rgba_equals_public_api_on_rgb(glue):
    import wasmvision
    from wasmvision import bundle as B

    raw = B.to_bytes(_tiny_bundle())
    info = _ok(glue.load_model("tiny", raw))
    assert info["name"] == "tiny" and info["version"] == "1" and info["bytes"] == len(raw)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (21, 30, 1), dtype=np.uint8)], axis=2)
    got = _ok(glue.classify_rgba("tiny", memoryview(rgba.tobytes()), 30, 21, 3))
    want = wasmvision.load(raw).classify(rgb, top_k=3).to_dict()
    assert [p["index"] for p in got["top"]] == [p["index"] for p in want["top"]]
    np.testing.assert_allclose([p["probability"] for p in got["top"]],
                               [p["probability"] for p in want["top"]], rtol=0, atol=1e-6)
    assert got["model"] == {"name": "tiny", "version": "1"} or got["model"]["name"] == "tiny"
    assert {"preprocess", "inference", "postprocess", "handover"} <= set(got["timings_ms"])


def test_glue_embed_rgba_equals_infer_embedding(glue):
    import wasmvision
    from wasmvision import bundle as B

    raw = B.to_bytes(_tiny_bundle(embedding="t2"))
    info = _ok(glue.load_model("tiny", raw))
    assert info["embedding"] is True and info["classes"] == 6
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (17, 23, 4), dtype=np.uint8)
    got = _ok(glue.embed_rgba("tiny", memoryview(rgba.tobytes()), 23, 17))
    want = wasmvision.load(raw).infer(np.ascontiguousarray(rgba[..., :3]), embedding=True)
    assert len(got["embedding"]) == want.size == 4
    np.testing.assert_allclose(got["embedding"], want, rtol=0, atol=1e-6)

    _ok(glue.load_model("plain", B.to_bytes(_tiny_bundle("plain"))))
    reply = json.loads(glue.embed_rgba("plain", rgba.tobytes(), 23, 17))
    assert not reply["ok"] and reply["error"]["kind"] == "BundleError" and "embedding" in reply["error"]["message"]
    assert _ok(glue.release_model("tiny"))["released"] and "tiny" not in _ok(glue.cached_models())["cached"]


def test_glue_binary_embedding_and_pixel_buffer_give_the_same_numbers(glue):
    """The worker's one-copy path: pixels decoded into pixel_buffer's array, the embedding taken as float32 values
    (take_embedding) instead of JSON numbers; the same result as the JSON path, bit for bit."""
    from wasmvision import bundle as B

    _ok(glue.load_model("tiny", B.to_bytes(_tiny_bundle(embedding="t2"))))
    rgba = np.random.default_rng(2).integers(0, 256, (17, 23, 4), dtype=np.uint8)
    heap = glue.pixel_buffer(23, 17)
    assert heap.dtype == np.uint8 and heap.shape == (17 * 23 * 4,)
    heap[:] = rgba.reshape(-1)
    listed = _ok(glue.classify_embed_rgba("tiny", rgba.tobytes(), 23, 17, 3))
    binary = _ok(glue.classify_embed_rgba("tiny", heap, 23, 17, 3, binary=True))
    assert binary["embedding"] == {"float32": 4} and binary["top"] == listed["top"]
    taken = glue.take_embedding()
    assert taken.dtype == np.float32 and taken.tolist() == listed["embedding"]
    with pytest.raises(LookupError):
        glue.take_embedding()  # taken once
    assert _ok(glue.embed_rgba("tiny", heap, 23, 17, binary=True))["embedding"] == {"float32": 4}
    assert glue.take_embedding().tolist() == listed["embedding"]
    reply = json.loads(glue.classify_rgba("tiny", glue.pixel_buffer(23, 16), 23, 17))
    assert not reply["ok"] and reply["error"]["kind"] == "ImageError"


def test_glue_checked_skips_only_the_bundle_checksum(glue):
    # `checked`: the browser matched the bytes against the manifest (SRI), so the bundle's own sha256 is not
    # repeated; every other check still runs, and the same model loads to the same classifier.
    from wasmvision import bundle as B

    raw = B.to_bytes(_tiny_bundle())
    rgba = np.random.default_rng(5).integers(0, 256, (17, 23, 4), dtype=np.uint8)
    plain = _ok(glue.load_model("plain", raw))
    fast = _ok(glue.load_model("fast", raw, checked=True))
    assert {k: v for k, v in plain.items() if k not in ("key", "load_ms")} == \
        {k: v for k, v in fast.items() if k not in ("key", "load_ms")}
    assert _ok(glue.classify_rgba("plain", rgba.tobytes(), 23, 17))["top"] == \
        _ok(glue.classify_rgba("fast", rgba.tobytes(), 23, 17))["top"]
    stale = bytearray(raw)
    stale[-1] ^= 1  # only the checksum can tell: unchecked, it is refused
    reply = json.loads(glue.load_model("bad", bytes(stale)))
    assert not reply["ok"] and "checksum" in reply["error"]["message"]
    reply = json.loads(glue.load_model("cut", raw[: len(raw) // 2], checked=True))
    assert not reply["ok"] and reply["error"]["kind"] == "BundleError" and "truncated" in reply["error"]["message"]


def test_glue_errors_are_reported_not_raised(glue):
    from wasmvision import bundle as B

    raw = bytearray(B.to_bytes(_tiny_bundle()))
    raw[-1] ^= 1
    reply = json.loads(glue.load_model("bad", bytes(raw)))
    assert not reply["ok"] and reply["error"]["kind"] == "BundleError" and "checksum" in reply["error"]["message"]
    reply = json.loads(glue.load_model("empty", b""))
    assert not reply["ok"] and "empty" in reply["error"]["message"]

    _ok(glue.load_model("tiny", B.to_bytes(_tiny_bundle())))
    reply = json.loads(glue.classify_rgba("tiny", b"\0" * 10, 2, 2, 5))
    assert not reply["ok"] and reply["error"]["kind"] == "ImageError"
    reply = json.loads(glue.classify_rgba("tiny", b"", 20000, 20000, 5))
    assert not reply["ok"] and "limit" in reply["error"]["message"]
    reply = json.loads(glue.classify_rgba("nope", b"\0" * 16, 2, 2, 5))
    assert not reply["ok"] and reply["error"]["kind"] == "ModelNotLoaded"


def test_glue_keeps_every_model_until_the_worker_releases_it(glue):
    # The worker's registry (web/worker/models.js) owns the LRU: Python never drops a model behind its back.
    from wasmvision import bundle as B

    for key in ("a", "b", "c", "d", "e"):
        assert "evicted" not in _ok(glue.load_model(key, B.to_bytes(_tiny_bundle(key))))
    assert _ok(glue.cached_models())["cached"] == ["a", "b", "c", "d", "e"]
    pixels = np.zeros((4, 4, 4), np.uint8).tobytes()
    assert _ok(glue.classify_rgba("a", pixels, 4, 4, 1))["top"]
    assert _ok(glue.release_model("b"))["released"] and not _ok(glue.model_status("b"))["loaded"]
    reply = json.loads(glue.classify_rgba("b", pixels, 4, 4, 1))
    assert not reply["ok"] and reply["error"]["kind"] == "ModelNotLoaded"


def test_glue_max_pixels_follows_the_runtime(glue):
    from wasmvision import preprocess

    assert glue.max_pixels() == preprocess.MAX_PIXELS
