"""Repeat visits in one persistent browser profile: the worker keeps a Pyodide memory snapshot (one file in the
origin private file system, web/worker/snapshot.js) after
the first visit, with numpy, wasmvision.browser and the SIMD kernels already loaded in it, and boots from it later
(web/worker/boot.js, dylibs.js). A second visit must classify exactly like the first, still import what it had not
imported (an ONNX model's importer), and a damaged or foreign snapshot must fall back to a normal boot, not break the
page. Needs the built site (python3 build.py build).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000
PROB_TOL = 1e-3

STORED = bu.SNAPSHOT_STORED  # 1 once a whole snapshot file is stored, else 0

# Changes the stored snapshot file with `how`: "damage" replaces the heap with bytes that look like one (right magic
# word, plausible size) but are not; "foreign" keeps the heap but says it was made with the side modules in another
# order (what a snapshot from another build or engine would look like); "truncate" cuts the file in half (a write
# that stopped halfway, a full disk); "read" changes nothing. The file: [magic, meta length, meta JSON, padding to
# 16, heap, site-packages]. Returns [the stored libs] (as stored before the change).
CHANGE = """async (how) => {
  %s
  const { handle, file, meta, site, heap: storedHeap } = await stored.read();
  let heap = storedHeap;
  const libs = meta.libs;
  if (how === "read") return [libs];
  if (how === "truncate") {
    await stored.put(handle, file.subarray(0, file.byteLength >> 1));
    return [libs];
  }
  if (how === "damage") {
    heap = new Uint8Array(2 << 20);
    new DataView(heap.buffer).setUint32(0, 0x706e7300, true);
    heap.fill(7, 4);
  } else {
    meta.libs = [...meta.libs].reverse();
  }
  meta.heap = heap.byteLength;
  await stored.write(handle, 0x31737677, meta, [heap, site]);
  return [libs];
}""" % bu.STORED_SNAPSHOT_JS

# Every side module the restore loads first: numpy's four that `import numpy` uses, then the kernel library (its
# relaxed-SIMD build: Chromium has relaxed SIMD).
PRELOADED = ["_multiarray_umath", "_multiarray_tests", "_umath_linalg", "libwvsimd_relaxed"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    dist = bu.require_built(ROOT / "dist", "index.html", "worker.js", "manifest.json", "pyodide/pyodide.mjs",
                            "models/mobilenet_v2.wvb")
    return bu.without_shipped_snapshot(dist, tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def native_top(site, chelsea):
    """Top-5 of the native runtime on the model file the page used (looked up by its key in the manifest)."""
    Image = pytest.importorskip("PIL.Image")
    import json

    import wasmvision

    rgb = np.asarray(Image.open(chelsea).convert("RGB"))
    files = {m.get("key"): m["file"] for m in json.loads((site / "manifest.json").read_text())["models"]}
    cache = {}

    def top(key):
        if key not in cache:
            path = site / files.get(key, "models/mobilenet_v2.wvb")
            cache[key] = wasmvision.load(path).classify(rgb, top_k=5).to_dict()["top"]
        return cache[key]
    return top


def _tiny_onnx() -> bytes:
    pytest.importorskip("onnx")
    import onnx_builders as B

    return B.concat_net(size=64, classes=10).SerializeToString()


def _visit(context, base, chelsea, native_top, wait_for_snapshot=False):
    page, errors = bu.new_page(context, TIMEOUT_MS)
    page.goto(base)
    bu.wait_ready(page, TIMEOUT_MS)
    result = bu.classify_in_page(page, chelsea)
    got, want = result["top"], native_top(result["model"]["key"])
    assert [p["index"] for p in got] == [p["index"] for p in want]
    for g, n in zip(got, want):
        assert abs(g["probability"] - n["probability"]) <= PROB_TOL, (g, n)
    boot = page.evaluate("() => window.wasmvision.stats.bootTimings") or {}
    stored = 0
    if wait_for_snapshot:
        deadline = time.time() + 60
        while time.time() < deadline and not stored:
            stored = page.evaluate(STORED)
            time.sleep(0.25)
    assert errors == [], errors
    return page, boot, stored


def _refused_then_stored(context, base, chelsea, native_top):
    """A visit after the stored snapshot was changed: it is refused, the page still classifies like the native
    package, and a fresh snapshot is stored."""
    page, boot, stored = _visit(context, base, chelsea, native_top, wait_for_snapshot=True)
    assert boot.get("snapshot") == "failed", boot
    assert stored == 1
    page.close()


def _phases(page) -> set[str]:
    marks = page.evaluate("() => window.wasmvision.stats.phases") or {}
    spans = marks.get("spans", marks) if isinstance(marks, dict) else marks
    return {s.get("name") for s in spans if isinstance(s, dict)}


@pytest.mark.browser
def test_second_visit_in_the_same_profile_classifies_the_same(pw, site, chelsea, native_top, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    import wasmvision
    from wasmvision.importers.onnx_import import import_onnx

    onnx_bytes = _tiny_onnx()
    onnx_path = tmp_path / "tiny_net.onnx"
    onnx_path.write_bytes(onnx_bytes)
    rgb = np.asarray(Image.open(chelsea).convert("RGB"))
    onnx_native = wasmvision.load(import_onnx(onnx_bytes, name="tiny_net")).classify(rgb, top_k=5).to_dict()["top"]

    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-repeat-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            page, boot, stored = _visit(context, base, chelsea, native_top, wait_for_snapshot=True)
            assert boot.get("snapshot") == "made", boot
            assert stored == 1, "the first visit did not keep a memory snapshot"
            # The page remembers it for the next visit's download order (wasmvision.mjs snapshotStored).
            assert base in page.evaluate("() => JSON.parse(localStorage.getItem('wasmvision-snapshot-sites'))")
            page.close()

            # The restored interpreter has numpy and wasmvision imported: nothing is unpacked or imported again.
            page, boot, _ = _visit(context, base, chelsea, native_top)
            assert boot.get("snapshot") == "restored", boot
            assert boot.get("packages_via") == "snapshot", boot
            phases = _phases(page)
            assert "snapshot_read" in phases and not {"unpack", "import_numpy", "import_wasmvision"} & phases, phases
            # An ONNX model needs a module the snapshot did not import (the importer): its files must be there.
            blob = bu.put_blob(page, onnx_path)
            got = page.evaluate(f"""async () => {{
              await window.wasmvision.loadModel(new File([{blob}], "tiny_net.onnx"));
              return (await window.wasmvision.classify({bu.put_blob(page, chelsea, "__photo")}, {{topK: 5}})).top;
            }}""")
            assert [p["index"] for p in got] == [p["index"] for p in onnx_native]
            for g, n in zip(got, onnx_native):
                assert abs(g["probability"] - n["probability"]) <= PROB_TOL, (g, n)
            libs = page.evaluate(CHANGE, "damage")
            assert len(libs) == 1
            assert [lib.rsplit("/", 1)[-1].split(".")[0] for lib in libs[0]] == PRELOADED, libs
            page.close()

            # A damaged snapshot: the page boots normally, still classifies, and stores a fresh snapshot.
            _refused_then_stored(context, base, chelsea, native_top)
            # A snapshot made with other side modules is refused before the heap is used; a file cut short (its
            # writing stopped, a full disk) is forgotten. Each time the page boots normally and stores a fresh one.
            for how in ("foreign", "truncate"):
                page, boot, _ = _visit(context, base, chelsea, native_top)
                assert boot.get("snapshot") == "restored", boot
                assert page.evaluate(CHANGE, how)
                page.close()
                _refused_then_stored(context, base, chelsea, native_top)
        finally:
            context.close()


@pytest.mark.browser
def test_a_kernel_library_that_cannot_load_stays_out_of_the_snapshot(pw, site, chelsea, native_top, tmp_path):
    """A Wasm file this engine cannot compile (as on one without SIMD) is not loaded before Python starts; the
    snapshot holds numpy alone and the restored page runs the numpy engine with the same notice and answers."""
    from builders import BROKEN, site_with_library

    import hashlib

    variant = site_with_library(site, tmp_path, BROKEN, hashlib.sha256(BROKEN).hexdigest())
    with bu.serve(variant) as base, tempfile.TemporaryDirectory(prefix="wasmvision-repeat-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            page, boot, stored = _visit(context, base, chelsea, native_top, wait_for_snapshot=True)
            assert boot.get("snapshot") == "made" and stored == 1, boot
            page.close()
            page, boot, _ = _visit(context, base, chelsea, native_top)
            assert boot.get("snapshot") == "restored", boot
            result = bu.classify_in_page(page, chelsea)
            assert result["engine"] == "numpy", result
            libs = page.evaluate(CHANGE, "read")[0]
            assert [lib.rsplit("/", 1)[-1].split(".")[0] for lib in libs] == PRELOADED[:3], libs
            page.close()
        finally:
            context.close()
