"""Code planted in the stored memory snapshot never runs. Any script of the site's origin can write the snapshot's
file in the origin private file system (web/worker/snapshot.js); a restore must take every code file it needs from
the wheels checked against the manifest, never from that file. The planted module shadows the ONNX importer, which
the snapshot has not imported, so it would run as soon as the visitor opens an .onnx model.
Needs the built site (python3 build.py build).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000
PROB_TOL = 1e-3
PLANTED_PATH = "/lib/python3.12/site-packages/wasmvision/importers/onnx_import.py"
PLANTED_CODE = 'raise ImportError("planted code ran")\n'

# Adds `path` with `code` to the stored file's site-packages section the way that file keeps them (meta.index:
# [path, offset, length] into the bytes after the heap); where the file keeps no such section, adds one. Returns
# whether the file held a site-packages section before.
PLANT = """async ([path, code]) => {
  %s
  const { handle, magic, meta, heap, site } = await stored.read();
  const had = Array.isArray(meta.index);
  const planted = new TextEncoder().encode(code);
  meta.index = [...(meta.index || []), [path, site.byteLength, planted.byteLength]];
  meta.site = site.byteLength + planted.byteLength;
  await stored.write(handle, magic, meta, [heap, site, planted]);
  return had;
}""" % bu.STORED_SNAPSHOT_JS


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    dist = bu.require_built(ROOT / "dist", "index.html", "worker.js", "manifest.json", "pyodide/pyodide.mjs")
    return bu.without_shipped_snapshot(dist, tmp_path_factory.mktemp("site"))


@pytest.mark.browser
def test_code_planted_in_the_stored_snapshot_never_runs(pw, site, chelsea, tmp_path):
    pytest.importorskip("onnx")
    Image = pytest.importorskip("PIL.Image")
    import onnx_builders as B
    import wasmvision
    from wasmvision.importers.onnx_import import import_onnx

    onnx_bytes = B.concat_net(size=64, classes=10).SerializeToString()
    onnx_path = tmp_path / "tiny_net.onnx"
    onnx_path.write_bytes(onnx_bytes)
    rgb = np.asarray(Image.open(chelsea).convert("RGB"))
    native = wasmvision.load(import_onnx(onnx_bytes, name="tiny_net")).classify(rgb, top_k=5).to_dict()["top"]

    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-plant-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            page, errors = bu.new_page(context, TIMEOUT_MS)
            page.goto(base)
            bu.wait_ready(page, TIMEOUT_MS)
            deadline = time.time() + 60
            while time.time() < deadline and not page.evaluate(bu.SNAPSHOT_STORED):
                time.sleep(0.25)
            assert page.evaluate(bu.SNAPSHOT_STORED) == 1, "the first visit did not keep a memory snapshot"
            page.evaluate(PLANT, [PLANTED_PATH, PLANTED_CODE])
            assert errors == [], errors
            page.close()

            page, errors = bu.new_page(context, TIMEOUT_MS)
            page.goto(base)
            bu.wait_ready(page, TIMEOUT_MS)
            blob = bu.put_blob(page, onnx_path)
            got = page.evaluate(f"""async () => {{
              try {{
                await window.wasmvision.loadModel(new File([{blob}], "tiny_net.onnx"));
              }} catch (err) {{
                return String(err.message);
              }}
              return (await window.wasmvision.classify({bu.put_blob(page, chelsea, "__photo")}, {{topK: 5}})).top;
            }}""")
            assert not isinstance(got, str), f"opening an .onnx model failed after the plant: {got}"
            assert [p["index"] for p in got] == [p["index"] for p in native]
            for g, n in zip(got, native):
                assert abs(g["probability"] - n["probability"]) <= PROB_TOL, (g, n)
            assert errors == [], errors
            page.close()
        finally:
            context.close()


# Opens a writable stream on the stored snapshot, as a worker replacing it does, and keeps it open until
# window.__releaseSnapshot() (which discards it: the file stays as it was).
HOLD = """async () => {
  const root = await navigator.storage.getDirectory();
  const stream = await (await root.getFileHandle("%s")).createWritable({ keepExistingData: true });
  window.__releaseSnapshot = () => stream.abort();
}""" % bu.SNAPSHOT_FILE

# Starts `count` workers of the site at once, as the album's pool does, each without a model; resolves to each one's
# timings.snapshot once all are ready ("restored", "made", "failed"). `keep`: ms the workers live after that (a
# snapshot is stored ~2 s after a boot).
WORKERS = """async ([count, keep]) => {
  const start = () => new Promise((resolve, reject) => {
    const w = new Worker(new URL("worker.js", location.href));
    w.onmessage = ({ data }) => {
      if (data.type === "ready") resolve([w, data.timings.snapshot]);
      else if (data.type === "fatal") reject(new Error(data.error.message));
    };
    w.postMessage({ type: "init", prefetch: null, ranOnPage: [] });
  });
  const started = await Promise.all(Array.from({ length: count }, start));
  await new Promise((r) => setTimeout(r, keep));
  for (const [w] of started) w.terminate();
  return started.map(([, snapshot]) => snapshot);
}"""


@pytest.mark.browser
def test_workers_of_one_page_share_the_snapshot(pw, site):
    """Two workers booting at once in a new profile both make a snapshot and one whole file is stored; two workers
    of the next visit both restore it (neither blocks the other's read), and so does one that starts while the file
    is being replaced."""
    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-share-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            # A document of the site that starts no worker of its own.
            page, errors = bu.new_page(context, TIMEOUT_MS)
            page.goto(base + "manifest.json")
            assert page.evaluate(WORKERS, [2, 6000]) == ["made", "made"]
            assert page.evaluate(bu.SNAPSHOT_STORED) == 1
            assert page.evaluate(WORKERS, [2, 0]) == ["restored", "restored"]
            page.evaluate(HOLD)
            assert page.evaluate(WORKERS, [1, 0]) == ["restored"]
            page.evaluate("() => window.__releaseSnapshot()")
            assert page.evaluate(bu.SNAPSHOT_STORED) == 1
            assert errors == [], errors
            page.close()
        finally:
            context.close()


# Keeps a readwrite transaction on the IndexedDB store of the snapshot open (a request chained on each success), as
# a page frozen mid-write by the browser would, until window.__releaseStore().
HOLD_STORE = """async () => {
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open("%s", 1);
    req.onupgradeneeded = () => req.result.createObjectStore("%s");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  let held = true;
  const store = db.transaction("%s", "readwrite").objectStore("%s");
  const again = () => { if (held) store.get("nothing").onsuccess = again; };
  again();
  window.__releaseStore = () => { held = false; };
}"""


def _store_names() -> tuple[str, str]:
    src = (ROOT / "web" / "worker" / "snapshot-stores.js").read_text()
    db = re.search(r'const DB_NAME = "([^"]+)"', src).group(1)
    store = re.search(r'const DB_STORE = "([^"]+)"', src).group(1)
    return db, store


@pytest.mark.browser
def test_a_store_that_never_answers_does_not_hold_the_boot(pw, site):
    """A worker whose look for a stored snapshot waits behind a write that never ends boots normally without it."""
    db, store = _store_names()
    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-stall-") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                        args=bu.CHROMIUM_ARGS, headless=True)
        try:
            page, errors = bu.new_page(context, TIMEOUT_MS)
            warnings: list[str] = []
            page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
            page.goto(base + "manifest.json")
            page.evaluate(HOLD_STORE % (db, store, store, store))
            assert page.evaluate(WORKERS, [1, 0]) == ["made"]
            assert any("did not answer" in w for w in warnings), warnings
            page.evaluate("() => window.__releaseStore()")
            assert errors == [], errors
            page.close()
        finally:
            context.close()
