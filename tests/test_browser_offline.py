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


def _file_sets(site_dir: Path) -> tuple[set[str], set[str]]:
    """(the shipped snapshot's files, the full stdlib and the wheels): what a boot from the build's snapshot reads
    and what a normal boot reads instead (web/sw.js keeps only the set the page booted with)."""
    manifest = json.loads((site_dir / "manifest.json").read_text())
    snapshot = manifest.get("snapshot") or {}
    small = {snapshot[k] for k in ("file", "stdlib", "packages") if k in snapshot}
    full = {f["path"] for f in manifest["files"] if f["path"] == "pyodide/python_stdlib.zip" or
            (f["path"].startswith("pyodide/") and f["path"].endswith(".whl") and
             not f["path"].split("/")[-1].startswith(("micropip-", "packaging-")))}
    return small, full


def _booted_stdlib(page) -> str:
    return page.evaluate("() => window.wasmvision.stats.bootTimings.stdlib")


def _offline_round_trip(browser, site_dir: Path, subpath: str, chelsea: Path, shipped: bool = True):
    """Visit (online), stop the server and go offline, reload, classify: same top-5, nothing from elsewhere.
    The offline copy holds the files of the set the visit booted with (`shipped`: the build's snapshot and its small
    zips, else the full stdlib and the wheels), not the other; after a shipped boot, nothing downloaded the other."""
    context = browser.new_context()
    log = bu.RequestLog(context)
    small, full = _file_sets(site_dir / subpath)
    kept, other = (small, full) if shipped and small else (full, small)
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
            assert _booted_stdlib(page) in kept, (_booted_stdlib(page), kept)
            for needed in ("index.html", "worker.js", "pyodide/pyodide.asm.wasm", "manifest.json", *kept):
                assert base + needed in urls, needed
            assert not {base + p for p in other} & set(urls), sorted({base + p for p in other} & set(urls))
            if shipped:  # a boot that tried the shipped snapshot first did fetch it
                fetched = {path.lstrip("/") for path, _ in root.statuses}
                assert not {subpath + p for p in other} & fetched, sorted({subpath + p for p in other} & fetched)
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
def test_offline_after_a_visit_that_could_not_use_the_shipped_snapshot(browser, site, chelsea, tmp_path):
    """A browser that boots normally (here: the shipped file is not the manifest's, as for a browser whose side
    modules differ) keeps the full stdlib and the wheels, and works offline from them."""
    from buildtools.snapshot import SITE_PATH

    if not _file_sets(site)[0]:
        pytest.skip("this build has no shipped memory snapshot")
    data = (site / SITE_PATH).read_bytes()
    variant = bu.site_variant(site, tmp_path / "site", replace={SITE_PATH: data[:-1] + bytes([data[-1] ^ 1])})
    _offline_round_trip(browser, variant, "", chelsea, shipped=False)


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
            default = next(m["file"] for m in json.loads((copy / "manifest.json").read_text())["models"] if m["default"])
            small, full = _file_sets(copy)
            booted = small if _booted_stdlib(page) in small else full
            for unchanged in (*sorted(booted), default, "index.html", "worker.js"):
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
