"""Offline after the first visit: the service worker (web/sw.js, registered by web/offline.js) keeps the
build's files, so the page loads and classifies with the network off; a new build (a changed manifest) replaces the
offline copy and the page says so; all of it under a subpath too. Needs the built site (python3 build.py build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import browser_util as bu

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000

CACHES = """async () => {
  const out = {};
  for (const name of await caches.keys()) out[name] = (await (await caches.open(name)).keys()).map((r) => r.url);
  return out;
}"""

CACHED_TEXT = """async (url) => { const r = await caches.match(url); return r ? await r.text() : null; }"""


@pytest.fixture(scope="module")
def site() -> Path:
    dist = ROOT / "dist"
    return bu.require_built(dist, "index.html", "sw.js", "app.js", "manifest.json", "pyodide/pyodide.mjs")


def _open(context, url):
    page, errors = bu.new_page(context, TIMEOUT_MS)
    page.goto(url)
    bu.wait_ready(page, TIMEOUT_MS)
    return page, errors


def _wait_offline_ready(page):
    page.wait_for_function("() => ['ready', 'failed', 'unavailable'].includes(document.documentElement.dataset.offline)",
                           timeout=TIMEOUT_MS, polling=100)
    assert page.evaluate("() => document.documentElement.dataset.offline") == "ready"


def _top(page, photo):
    return [p["index"] for p in bu.classify_in_page(page, photo)["top"]]


def _offline_round_trip(browser, site_dir: Path, subpath: str, chelsea: Path):
    """Visit (online), stop the server and go offline, reload, classify: same top-5, nothing from elsewhere."""
    context = browser.new_context()
    log = bu.RequestLog(context)
    try:
        with bu.serve(site_dir) as root:
            base = root + subpath
            page, errors = _open(context, base)
            online_top = _top(page, chelsea)
            _wait_offline_ready(page)
            scope = page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).scope")
            assert scope == base, scope
            cached = page.evaluate(CACHES)
            assert len(cached) == 1, cached
            urls = next(iter(cached.values()))
            for needed in ("index.html", "worker.js", "pyodide/pyodide.asm.wasm", "manifest.json"):
                assert base + needed in urls, needed
        # The server is gone; the browser is offline as well.
        context.set_offline(True)
        page.reload()
        bu.wait_ready(page, TIMEOUT_MS)
        assert page.evaluate("() => Boolean(navigator.serviceWorker.controller)")
        assert _top(page, chelsea) == online_top
        assert errors == [], errors
        assert log.foreign(base) == []
    finally:
        context.close()


@pytest.mark.browser
def test_offline_after_the_first_visit(browser, site, chelsea):
    _offline_round_trip(browser, site, "", chelsea)


@pytest.mark.browser
def test_offline_under_a_subpath(browser, site, chelsea, tmp_path):
    (tmp_path / "apps").mkdir()
    os.symlink(site, tmp_path / "apps" / "wasmvision")
    _offline_round_trip(browser, tmp_path, "apps/wasmvision/", chelsea)


def _rebuild(site_dir: Path, rel: str, extra: bytes) -> str:
    """A new build of the copy: `rel` changed and the manifest updated to match; returns the new file's text."""
    path = site_dir / rel
    data = path.read_bytes() + extra
    path.write_bytes(data)
    manifest_path = site_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for f in manifest["files"]:
        if f["path"] == rel:
            f["bytes"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return data.decode()


@pytest.mark.browser
def test_a_new_build_updates_the_offline_copy(browser, site, chelsea, tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    context = browser.new_context()
    try:
        with bu.serve(copy) as base:
            page, errors = _open(context, base)
            _wait_offline_ready(page)
            before = page.evaluate(CACHES)
            assert page.locator("[data-testid=update-notice]").is_hidden()

            new_css = _rebuild(copy, "style.css", b"\n/* build 2 */\n")
            base.reset()
            page.reload()
            bu.wait_ready(page, TIMEOUT_MS)
            notice = page.locator("[data-testid=update-notice]")
            notice.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert "Update applied" in notice.inner_text()
            after = page.evaluate(CACHES)
            assert len(after) == 1 and set(after) != set(before), (before, after)
            assert page.evaluate(CACHED_TEXT, base + "style.css") == new_css
            # Unchanged files came from the old copy, not the server again (the runtime's Wasm aside: the service
            # worker sends it to the network first, and this test context's memory cache does not keep 10 MB).
            lock = json.loads((copy / "pyodide" / "pyodide-lock.json").read_text())
            default = next(m["file"] for m in json.loads((copy / "manifest.json").read_text())["models"] if m["default"])
            for unchanged in ("pyodide/python_stdlib.zip", f"pyodide/{lock['packages']['numpy']['file_name']}",
                              default, "index.html", "worker.js"):
                assert base.sent.get("/" + unchanged, 0) == 0, (unchanged, base.sent)
            assert base.sent.get("/style.css", 0) == len(new_css.encode())

        # The new build works offline.
        context.set_offline(True)
        page.reload()
        bu.wait_ready(page, TIMEOUT_MS)
        assert page.evaluate("async () => (await fetch('style.css')).text()") == new_css
        _top(page, chelsea)
        assert page.locator("[data-testid=update-notice]").is_hidden()
        assert errors == [], errors
    finally:
        context.close()
