"""Repeat visits in one persistent browser profile: the worker keeps a Pyodide memory snapshot in IndexedDB after
the first visit and boots from it later (web/worker.js). A second visit must classify exactly like the first, and a
damaged snapshot must fall back to a normal boot, not break the page. Needs the built site (python3 build.py build).
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

STORED = """async () => {
  if (!(await indexedDB.databases()).some((d) => d.name === "wasmvision-snapshot")) return 0;
  return await new Promise((res) => {
    const r = indexedDB.open("wasmvision-snapshot");
    r.onsuccess = () => { const db = r.result;
      if (!db.objectStoreNames.contains("snapshots")) { db.close(); return res(0); }
      const c = db.transaction("snapshots").objectStore("snapshots").count();
      c.onsuccess = () => { db.close(); res(c.result); }; };
    r.onerror = () => res(0);
  });
}"""

# Overwrite every stored snapshot with bytes that look like one (right magic word, plausible size) but are not.
DAMAGE = """async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open("wasmvision-snapshot");
    r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const keys = await new Promise((res) => { const r = db.transaction("snapshots").objectStore("snapshots").getAllKeys();
    r.onsuccess = () => res(r.result); });
  const junk = new Uint8Array(2 << 20);
  new DataView(junk.buffer).setUint32(0, 0x706e7300, true);
  junk.fill(7, 4);
  await new Promise((res, rej) => { const tx = db.transaction("snapshots", "readwrite");
    for (const k of keys) tx.objectStore("snapshots").put(junk, k);
    tx.oncomplete = res; tx.onerror = () => rej(tx.error); });
  db.close();
  return keys.length;
}"""


@pytest.fixture(scope="module")
def site() -> Path:
    dist = ROOT / "dist"
    for needed in ("index.html", "worker.js", "manifest.json", "pyodide/pyodide.mjs", "models/mobilenet_v2.wvb"):
        if not (dist / needed).exists():
            pytest.fail(f"{dist / needed} is missing: run `python3 build.py build` first", pytrace=False)
    return dist


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


def _visit(context, base, chelsea, native_top, wait_for_snapshot=False):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
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


@pytest.mark.browser
def test_second_visit_in_the_same_profile_classifies_the_same(pw, site, chelsea, native_top):
    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-repeat-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            page, boot, stored = _visit(context, base, chelsea, native_top, wait_for_snapshot=True)
            assert boot.get("snapshot") == "made", boot
            assert stored == 1, "the first visit did not keep a memory snapshot"
            page.close()

            page, boot, _ = _visit(context, base, chelsea, native_top)
            assert boot.get("snapshot") == "restored", boot
            damaged = page.evaluate(DAMAGE)
            assert damaged == 1
            page.close()

            # A damaged snapshot: the page boots normally, still classifies, and stores a fresh snapshot.
            page, boot, stored = _visit(context, base, chelsea, native_top, wait_for_snapshot=True)
            assert boot.get("snapshot") == "failed", boot
            assert stored == 1
            page.close()

            page, boot, _ = _visit(context, base, chelsea, native_top)
            assert boot.get("snapshot") == "restored", boot
            page.close()
        finally:
            context.close()
