"""Upgrades and a damaged offline copy, end to end in headless Chromium.

The site is served from a copy of dist/ (symlinks, plus the changed files written as real files) in a temp dir; a new
build is made in that copy by changing files and rewriting manifest.json to match, as build.py would. Cached files
are damaged through the page's own Cache Storage API (any script of the origin can). WASMVISION_DIST points the
tests at another built site (conftest's dist_dir; e.g. the branch point's, to see them fail there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import browser_util as bu

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000
STATES = "['ready', 'failed', 'unavailable']"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(dist_dir) -> Path:
    return bu.require_built(dist_dir, "index.html", "album.html", "sw.js", "manifest.json", "pyodide/pyodide.asm.wasm")


# ---------------------------------------------------------------------------------------------- helpers

def manifest_of(site: Path) -> dict:
    return json.loads((site / "manifest.json").read_text())


def default_model(site: Path) -> str:
    return next(m["file"] for m in manifest_of(site)["models"] if m["default"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rebuild(copy: Path, changed: dict[str, bytes]) -> None:
    """A new build in the served copy: ``changed`` {path: bytes} written (never through a symlink) and manifest.json
    rewritten to list them."""
    manifest = manifest_of(copy)
    for rel, data in changed.items():
        (copy / rel).unlink(missing_ok=True)
        (copy / rel).write_bytes(data)
    for f in manifest["files"]:
        if f["path"] in changed:
            f["bytes"], f["sha256"] = len(changed[f["path"]]), sha256(changed[f["path"]])
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def with_custom_section(wasm: bytes, note: bytes) -> bytes:
    """The module with a custom section appended: other bytes, the same program (engines ignore custom sections)."""
    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)
    name = b"wasmvision-test"
    body = leb(len(name)) + name + note
    return wasm + b"\x00" + leb(len(body)) + body


def forged_model(data: bytes) -> bytes:
    """The bundle with one weight byte changed and its own checksum recomputed: a valid bundle, not the build's."""
    raw = bytearray(data)
    raw[len(raw) - 100] ^= 0x01
    raw[32:64] = hashlib.sha256(bytes(raw[64:])).digest()
    return bytes(raw)


@contextmanager
def served_copy(browser, site: Path, tmp_path: Path, **variant):
    """(context, base URL, the copy's folder): a fresh browser context on a served copy of the site
    (bu.site_variant's ``drop`` and ``replace``)."""
    copy = bu.site_variant(site, tmp_path / "site", **variant)
    context = browser.new_context()
    try:
        with bu.serve(copy) as base:
            yield context, base, copy
    finally:
        context.close()


def open_page(context, url: str):
    page, errors = bu.new_page(context, TIMEOUT_MS)
    page.goto(url)
    return page, errors


def started(page) -> str:
    """'ready' or the page's start error, once one of them shows."""
    page.wait_for_function("() => document.body.classList.contains('is-ready') || "
                           "!document.querySelector('[data-testid=error]').hidden", timeout=TIMEOUT_MS)
    if page.evaluate("() => document.body.classList.contains('is-ready')"):
        return "ready"
    return page.inner_text("#error-text")


def offline_state(page, timeout_ms: int = TIMEOUT_MS) -> str | None:
    """The offline copy's final state on this page (offline.js), or None when the page never reports one."""
    try:
        page.wait_for_function(f"() => {STATES}.includes(document.documentElement.dataset.offline)",
                               timeout=timeout_ms, polling=100)
    except Exception:  # noqa: BLE001 -- Playwright's TimeoutError: the page never set a state
        return None
    return page.evaluate("() => document.documentElement.dataset.offline")


CACHED = """async () => {
  const out = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    out[name] = {};
    for (const request of await cache.keys()) {
      const bytes = await (await cache.match(request)).arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      out[name][request.url] = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    }
  }
  return out;
}"""

PUT = """async ([url, b64]) => {
  const names = (await caches.keys()).filter((n) => n.startsWith("wasmvision-"));
  if (names.length !== 1) throw new Error("expected one offline copy, got " + names);
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const cache = await caches.open(names[0]);
  const old = await cache.match(url); // its headers (the MIME type) kept: only the bytes change
  await cache.put(url, new Response(bytes, { headers: old ? old.headers : {} }));
}"""


def cached(page) -> dict[str, dict[str, str]]:
    """cache name -> {url: sha256 of the cached bytes}."""
    return page.evaluate(CACHED)


def damage(page, url: str, data: bytes) -> None:
    page.evaluate(PUT, [url, base64.b64encode(data).decode()])


def repaired(page, site: Path, base: str, model: str, damaged: list[str]) -> bool:
    copies = cached(page)
    if len(copies) != 1:
        return False
    entries = next(iter(copies.values()))
    paths = [model if what == "model" else what for what in damaged]
    return all(entries.get(base + rel) == sha256((site / rel).read_bytes()) for rel in paths)


def chelsea_top1(page, chelsea: Path) -> str:
    return bu.classify_in_page(page, chelsea)["top"][0]["label"]


# ---------------------------------------------------------------------------------------------- item 1: upgrades

def test_a_new_runtime_does_not_strand_a_returning_visitor(browser, site, chelsea, tmp_path):
    with served_copy(browser, site, tmp_path) as (context, base, copy):
        page, errors = open_page(context, base)
        assert started(page) == "ready"
        assert offline_state(page) == "ready"
        # A runtime upgrade: pyodide.asm.wasm's bytes change (the tests' copy keeps the program: a custom
        # section), the manifest with it.
        new_wasm = with_custom_section((site / "pyodide/pyodide.asm.wasm").read_bytes(), b"build 2")
        rebuild(copy, {"pyodide/pyodide.asm.wasm": new_wasm})
        page.reload()
        outcome = started(page)
        print(f"returning visit after the upgrade: {outcome}")
        assert outcome == "ready", outcome  # the cached build runs; nothing is called tampered with
        notice = page.locator("[data-testid=update-notice]")
        notice.wait_for(state="visible", timeout=TIMEOUT_MS)  # the new build replaced the offline copy
        copies = cached(page)
        assert len(copies) == 1, list(copies)
        assert next(iter(copies.values()))[base + "pyodide/pyodide.asm.wasm"] == sha256(new_wasm)
        # The next visit runs the new build (the worker fetches the Wasm with the new manifest's sha256).
        page.reload()
        assert started(page) == "ready"
        assert chelsea_top1(page, chelsea) == "Egyptian cat"
        assert errors == [], errors


# ---------------------------------------------------------------------------------------------- item 2: fail closed

@pytest.mark.parametrize("manifest, why", [
    (b"{ garbage", "is not valid JSON"),
    (None, "could not be downloaded (HTTP 404)"),
    (b'{"files": [], "models": []}', "does not list the site's files"),
    (b'{"files": [{"path": "worker.js", "bytes": 1}]}', "does not list the site's files"),
], ids=["garbage", "missing", "empty", "no-sha256"])
def test_no_manifest_no_start(browser, site, tmp_path, manifest, why):
    variant = {"drop": {"manifest.json"}} if manifest is None else {"replace": {"manifest.json": manifest}}
    with served_copy(browser, site, tmp_path, **variant) as (context, base, _copy):
        page, _ = open_page(context, base)
        outcome = started(page)
        print(outcome)
        assert outcome != "ready", "started without a manifest: nothing was checked"
        assert "could not start" in outcome and "manifest.json" in outcome and why in outcome, outcome
        assert "\n" not in outcome.strip() and len(outcome) < 300, outcome


# ---------------------------------------------------------------------------------------------- item 3: repair

@pytest.mark.parametrize("damaged", [["app.js"], ["model"], ["manifest.json", "model"]],
                         ids=["app.js", "model", "garbage-manifest-and-forged-model"])
def test_a_damaged_offline_copy_is_repaired(browser, site, chelsea, tmp_path, damaged):
    model = default_model(site)
    bad = {"app.js": (site / "app.js").read_bytes() + b"\n/* changed in the cache */\n",
           "model": forged_model((site / model).read_bytes()),
           "manifest.json": b"{ garbage"}
    with served_copy(browser, site, tmp_path) as (context, base, _copy):
        page, errors = open_page(context, base)
        assert started(page) == "ready"
        assert offline_state(page) == "ready"
        for what in damaged:
            damage(page, base + (model if what == "model" else what), bad[what])
        page.reload()
        outcome = started(page)
        print(f"{damaged}: {outcome}")
        assert outcome == "ready", outcome
        assert chelsea_top1(page, chelsea) == "Egyptian cat"
        # A model restored with the page's memory snapshot is read from the cache ~1 s after it is adopted.
        deadline = time.time() + 20
        while time.time() < deadline and not repaired(page, site, base, model, damaged):
            time.sleep(0.25)
        copies = cached(page)
        assert len(copies) == 1, list(copies)
        entries = next(iter(copies.values()))
        for what in damaged:
            rel = model if what == "model" else what
            assert entries[base + rel] == sha256((site / rel).read_bytes()), f"{rel} was not repaired"
        assert errors == [], errors


# ---------------------------------------------------------------------------------------------- item 14: quota

def test_a_failed_install_leaves_no_partial_cache(browser, site, tmp_path):
    # The page does not need wasmvision.d.ts, the install does: the page starts, the install fails.
    with served_copy(browser, site, tmp_path, drop={"wasmvision.d.ts"}) as (context, base, _copy):
        page, _ = open_page(context, base)
        assert started(page) == "ready"
        assert offline_state(page) == "failed"
        names = list(cached(page))
        assert [n for n in names if n.startswith("wasmvision-")] == [], names


# ---------------------------------------------------------------------------------------------- item 15: tabs

def test_an_old_tab_sees_a_good_update_elsewhere_as_ready(browser, site, tmp_path):
    with served_copy(browser, site, tmp_path) as (context, base, copy):
        old, _ = open_page(context, base)
        assert started(old) == "ready"
        assert offline_state(old) == "ready"
        rebuild(copy, {"style.css": (site / "style.css").read_bytes() + b"\n/* build 2 */\n"})
        new, _ = open_page(context, base)
        assert started(new) == "ready"
        new.locator("[data-testid=update-notice]").wait_for(state="visible", timeout=TIMEOUT_MS)
        old.wait_for_timeout(2000)  # the old tab's worker was replaced by the new build's
        assert old.evaluate("() => document.documentElement.dataset.offline") == "ready"


# ---------------------------------------------------------------------------------------------- item 9: the album

def test_the_album_keeps_the_offline_copy_current(browser, site, tmp_path):
    with served_copy(browser, site, tmp_path) as (context, base, copy):
        page, errors = open_page(context, base + "album.html")
        page.wait_for_function("() => window.wasmvisionAlbum")
        page.evaluate("() => window.wasmvisionAlbum.ready")
        assert offline_state(page, 90_000) == "ready"
        copies = cached(page)
        assert len(copies) == 1, list(copies)
        assert {base + "album.html", base + "index.html", base + "manifest.json"} <= set(next(iter(copies.values())))
        new_css = (site / "album.css").read_bytes() + b"\n/* build 2 */\n"
        rebuild(copy, {"album.css": new_css})
        page.reload()
        page.locator("[data-testid=update-notice]").wait_for(state="visible", timeout=TIMEOUT_MS)
        assert next(iter(cached(page).values()))[base + "album.css"] == sha256(new_css)
        assert errors == [], errors
