"""The memory snapshot made at build time and shipped to first visitors (buildtools/snapshot.py, web/worker/shipped.js):
a first visit restored from it classifies real photos exactly like a normal boot, and a shipped file that is corrupt,
truncated, from another build or not the one the manifest hashes boots normally and says so once.
Needs the built site (python3 build.py build) with its shipped snapshot (Chromium at build time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import tempfile
import time
from pathlib import Path

import pytest

import browser_util as bu
from buildtools.snapshot import PACKAGES_PATH, SITE_PATH

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000
PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png"]
NOTICE = "the site's memory snapshot is unusable"


@pytest.fixture(scope="module")
def site() -> Path:
    dist = bu.require_built(ROOT / "dist", "index.html", "worker.js", "manifest.json", "models/mobilenet_v2.wvb")
    if "snapshot" not in json.loads((dist / "manifest.json").read_text()):
        pytest.fail("dist/ has no shipped memory snapshot: the build could not run Chromium (see its log)",
                    pytrace=False)
    return dist


def _visit(pw, site: Path, photos: list[Path], then=None) -> tuple[dict, list, list[str]]:
    """One first visit in a new profile: its boot timings, the top-5 of each photo, the worker's console lines.
    `then(page)`: more to do on the page before it closes."""
    with bu.serve(site) as base:
        browser = bu.launch(pw)
        try:
            page, errors = bu.new_page(browser.new_context(), TIMEOUT_MS)
            lines: list[str] = []
            page.on("console", lambda m: lines.append(m.text))
            page.goto(base)
            bu.wait_ready(page, TIMEOUT_MS)
            tops = [bu.classify_in_page(page, p)["top"] for p in photos]
            if then:
                then(page)
            boot = page.evaluate("() => window.wasmvision.stats.bootTimings") or {}
            assert errors == [], errors
        finally:
            browser.close()
    return boot, tops, lines


def _with_manifest_for(site: Path, dest: Path, data: bytes) -> Path:
    """The site with the shipped file replaced by `data` and the manifest hashing it (a build that shipped it)."""
    manifest = json.loads((site / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == SITE_PATH:
            entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest["snapshot"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    return bu.site_variant(site, dest, replace={SITE_PATH: data, "manifest.json": json.dumps(manifest).encode()})


def _changed(data: bytes, how: str) -> bytes:
    """The shipped file changed `how` (its layout: magic, meta length, meta JSON, padding, Pyodide's header, ...)."""
    meta_length = struct.unpack_from("<I", data, 4)[0]
    meta = json.loads(data[8:8 + meta_length])
    header_at = -(-(8 + meta_length) // 4) * 4
    if how == "truncated":
        return data[:len(data) // 2]
    if how == "corrupt":  # Pyodide's own header (magic, build id) garbled
        return data[:header_at] + bytes(b ^ 0x5A for b in data[header_at:header_at + 64]) + data[header_at + 64:]
    assert how == "foreign"
    meta["key"] = meta["key"].replace("|", "|0", 1)
    text = json.dumps(meta, separators=(",", ":")).encode()
    head = struct.pack("<II", 0x31647677, len(text)) + text
    head += bytes(-len(head) % 4)
    return head + data[header_at:]


def _later_imports(onnx_path: Path, photo: Path, expect_top: list):
    """What a restored interpreter imports only later: an ONNX model's importer, a bad photo's error path."""
    def run(page):
        got = page.evaluate(f"""async () => {{
          await window.wasmvision.loadModel(new File([{bu.put_blob(page, onnx_path)}], "tiny_net.onnx"));
          return (await window.wasmvision.classify({bu.put_blob(page, photo, "__photo")}, {{topK: 5}})).top;
        }}""")
        assert [p["index"] for p in got] == [p["index"] for p in expect_top]
        error = page.evaluate(f"""async () => {{
          try {{ await window.wasmvision.classify({bu.put_blob(page, onnx_path, "__bad")}); return null; }}
          catch (err) {{ return [err.name, err.kind, err.message]; }}
        }}""")
        assert error and error[1] and error[1] != "InternalError", error
    return run


@pytest.mark.browser
def test_shipped_snapshot_classifies_like_a_normal_boot(pw, site, photos_dir, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pytest.importorskip("onnx")
    import numpy as np
    import onnx_builders as B
    import wasmvision
    from wasmvision.importers.onnx_import import import_onnx

    photos = [photos_dir / p for p in PHOTOS]
    onnx_bytes = B.concat_net(size=64, classes=10).SerializeToString()
    onnx_path = tmp_path / "tiny_net.onnx"
    onnx_path.write_bytes(onnx_bytes)
    rgb = np.asarray(Image.open(photos[0]).convert("RGB"))
    onnx_top = wasmvision.load(import_onnx(onnx_bytes, name="tiny_net")).classify(rgb, top_k=5).to_dict()["top"]
    boot, shipped, lines = _visit(pw, site, photos, _later_imports(onnx_path, photos[0], onnx_top))
    assert boot.get("snapshot") == "shipped", boot
    assert boot.get("packages_via") == "snapshot", boot
    assert not any(NOTICE in line for line in lines), lines
    normal_site = bu.site_variant(site, tmp_path / "normal", drop={SITE_PATH})
    boot, normal, _ = _visit(pw, normal_site, photos)
    assert boot.get("snapshot") == "made", boot
    for got, want in zip(shipped, normal):
        assert [p["index"] for p in got] == [p["index"] for p in want]
        assert [p["probability"] for p in got] == pytest.approx([p["probability"] for p in want], abs=1e-7)


@pytest.mark.browser
@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign", "hash-mismatched", "zip-hash-mismatched"])
def test_a_bad_shipped_snapshot_boots_normally_and_says_so_once(pw, site, photos_dir, tmp_path, how):
    data = (site / SITE_PATH).read_bytes()
    if how == "hash-mismatched":  # the file is not the one the manifest lists
        variant = bu.site_variant(site, tmp_path / how, replace={SITE_PATH: data[:-1] + bytes([data[-1] ^ 1])})
    elif how == "zip-hash-mismatched":  # its site-packages: hashed by the worker, not the browser (fetch.js fetchBytes)
        zipped = (site / PACKAGES_PATH).read_bytes()
        variant = bu.site_variant(site, tmp_path / how, replace={PACKAGES_PATH: zipped[:-1] + bytes([zipped[-1] ^ 1])})
    else:
        variant = _with_manifest_for(site, tmp_path / how, _changed(data, how))
    boot, tops, lines = _visit(pw, variant, [photos_dir / "chelsea.png"])
    assert boot.get("snapshot") == "made", boot
    assert boot.get("shipped_failed"), boot
    assert sum(NOTICE in line for line in lines) == 1, [line for line in lines if "snapshot" in line]
    assert tops[0][0]["label"] == "Egyptian cat", tops


@contextlib.contextmanager
def _one_profile(pw, site: Path):
    """(context, base): a persistent profile (a real disk cache and OPFS) on the served site, for several visits."""
    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-shipped-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            yield context, base
        finally:
            context.close()


def _visit_in(context, base: str, photo: Path, lines: list[str] | None = None) -> tuple[dict, list, object]:
    """(boot timings, top-5 of `photo`, the page) of one visit in `context`; once stored, what the next visit uses."""
    page, errors = bu.new_page(context, TIMEOUT_MS)
    if lines is not None:
        page.on("console", lambda m: lines.append(m.text))
    page.goto(base)
    bu.wait_ready(page, TIMEOUT_MS)
    top = bu.classify_in_page(page, photo)["top"]
    boot = page.evaluate("() => window.wasmvision.stats.bootTimings") or {}
    deadline = time.time() + 60
    while boot.get("snapshot") == "shipped" and time.time() < deadline and not page.evaluate(bu.SNAPSHOT_STORED):
        time.sleep(0.25)
    assert errors == [], errors
    return boot, top, page


@pytest.mark.browser
def test_a_visitor_restored_from_it_keeps_its_own_copy(pw, site, photos_dir):
    """The first visit restores the shipped snapshot and keeps the delta it downloaded; the repeat visit boots from
    that copy (read from local storage, not the HTTP cache), with the same results and nothing unpacked or imported."""
    photo = photos_dir / "chelsea.png"
    with _one_profile(pw, site) as (context, base):
        tops = []
        for visit in ("shipped", "restored"):
            boot, top, page = _visit_in(context, base, photo)
            tops.append(top)
            assert boot.get("snapshot") == visit, boot
            assert boot.get("packages_via") == "snapshot", boot
            assert page.evaluate(bu.SNAPSHOT_STORED) == 1
            page.close()
        assert tops[0] == tops[1]


# Stores the shipped delta the way a visitor keeps its copy of it (web/worker/nextvisit.js: when no model was loaded
# by then), with its last byte flipped: a well-formed file, not the manifest's. Returns the stored kind.
TAMPER_STORED = """async (file) => {
  %s
  const { handle, magic, meta } = await stored.read();
  const delta = new Uint8Array(await (await fetch(file)).arrayBuffer());
  delta[delta.length - 1] ^= 1;
  const copy = { key: meta.key, libs: [], handles: {}, heap: delta.byteLength, kind: "delta" };
  await stored.write(handle, magic, copy, [delta]);
  return (await stored.read()).meta.kind;
}""" % bu.STORED_SNAPSHOT_JS


@pytest.mark.browser
def test_a_changed_stored_copy_is_refused_and_the_shipped_one_restored(pw, site, photos_dir):
    """Any script of the origin can write the stored copy of the delta: it is hashed against the manifest when read,
    and a changed one is dropped (one notice) for the shipped file, with the same results."""
    photo = photos_dir / "chelsea.png"
    shipped = json.loads((site / "manifest.json").read_text())["snapshot"]["file"]
    with _one_profile(pw, site) as (context, base):
        boot, first, page = _visit_in(context, base, photo)
        assert boot.get("snapshot") == "shipped", boot
        assert page.evaluate(TAMPER_STORED, shipped) == "delta"
        page.close()
        lines: list[str] = []
        boot, again, page = _visit_in(context, base, photo, lines)
        assert boot.get("snapshot") == "shipped", boot
        refused = [line for line in lines if "not the manifest's" in line]
        assert len(refused) == 1, [line for line in lines if "snapshot" in line]
        assert again == first
        page.close()


STORED_META = """async () => {
  %s
  return (await stored.read()).meta;
}""" % bu.STORED_SNAPSHOT_JS

# Changes the sha256 the stored snapshot records for its model: what a new build of that model file looks like.
OTHER_MODEL_BUILD = """async () => {
  %s
  const { handle, magic, meta, heap, site } = await stored.read();
  meta.model.sha256 = meta.model.sha256.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  await stored.write(handle, magic, meta, [heap, site]);
}""" % bu.STORED_SNAPSHOT_JS


# The worker's phase marks now (the page's own stats are refreshed only after its results).
WORKER_SPANS = """async () => {
  const wv = await import("./wasmvision.mjs");
  return (await (await wv.load()).stats()).phases.spans.map((s) => s.name);
}"""


def _model_stats(page) -> dict:
    timings = page.evaluate("() => window.wasmvision.stats.bootTimings") or {}
    spans = page.evaluate("() => (window.wasmvision.stats.phases?.spans || []).map((s) => s.name)")
    return {"adopted": timings.get("model_from_snapshot"), "fetched": "model_fetch" in spans,
            "loaded": "model_load" in spans}


@pytest.mark.browser
def test_a_repeat_visit_restores_the_model_loaded(pw, site, photos_dir):
    """The first visit keeps a snapshot taken right after the default model loaded (its meta names the model and
    the manifest's sha256); the repeat visit restores it and classifies with no model download or load, with the
    same results. A snapshot whose model is not the manifest's any more is restored without it: the model is
    downloaded and loaded again, with the same results."""
    photo = photos_dir / "chelsea.png"
    manifest = json.loads((site / "manifest.json").read_text())
    default = next(m for m in manifest["models"] if m.get("default"))
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    with _one_profile(pw, site) as (context, base):
        boot, first, page = _visit_in(context, base, photo)
        assert boot.get("snapshot") == "shipped", boot
        deadline = time.time() + 60
        while time.time() < deadline and not (page.evaluate(STORED_META).get("model") or {}).get("key"):
            time.sleep(0.25)
        meta = page.evaluate(STORED_META)
        # A whole heap, kept as runs: its zero pages past the fresh heap's break are left out (heapruns.js).
        assert meta.get("kind") == "sparse" and meta["sparse"]["total"] > meta["heap"], meta
        assert meta["model"]["key"] == default["key"], meta
        assert meta["model"]["sha256"] == listed[default["file"]], meta
        page.close()
        boot, again, page = _visit_in(context, base, photo)
        assert boot.get("snapshot") == "restored", boot
        assert _model_stats(page) == {"adopted": default["key"], "fetched": False, "loaded": False}
        assert again == first
        # Once idle, the adopted model is warmed up through the photo path, as a loaded one is. Each look is a request,
        # which the worker's idle slot waits out: looked at 1 s apart.
        spans = []
        for _ in range(20):
            time.sleep(1.0)
            spans = page.evaluate(WORKER_SPANS)
            if "warm_up" in spans:
                break
        assert "warm_up" in spans, spans
        page.evaluate(OTHER_MODEL_BUILD)
        page.close()
        boot, third, page = _visit_in(context, base, photo)
        assert boot.get("snapshot") == "restored", boot
        assert _model_stats(page) == {"adopted": None, "fetched": True, "loaded": True}
        assert third == first
        # The snapshot stored then holds the manifest's build of the model again.
        deadline = time.time() + 60
        while time.time() < deadline and page.evaluate(STORED_META)["model"]["sha256"] != listed[default["file"]]:
            time.sleep(0.25)
        assert page.evaluate(STORED_META)["model"]["sha256"] == listed[default["file"]]
        page.close()
