"""Helpers for driving the wasmvision page in headless Chromium: a static server, the browser launch, a request log.

Used by tests/test_browser.py, and runnable as a script to measure the page:

    python tests/browser_util.py measure [--dist dist] [--photo build/photos/chelsea.png] [--runs 20]

prints cold first-result time (empty HTTP cache), warm classification median with its stage split, and the bytes
the page downloads.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from buildtools.chromium import CHROMIUM_ARGS, SNAPSHOT_FILE, SNAPSHOT_STORED, chromium_path, launch  # noqa: F401
from buildtools.server import Background

class ServedSite(str):
    """The base URL of a served directory (a str), plus what the server sent: ``.sent`` maps path -> bytes of
    response bodies, ``.statuses`` lists (path, status). Counting at the server shows what HTTP caching saved."""

    sent: dict
    statuses: list

    def bytes_sent(self) -> int:
        return sum(self.sent.values())

    def reset(self) -> None:
        self.sent.clear()
        self.statuses.clear()


def require_built(root: Path, *paths: str) -> Path:
    """``root``, once every one of ``paths`` exists under it; otherwise the test fails with the command that
    builds them."""
    import pytest  # only tests call this; the benchmarks import this module without pytest

    for rel in paths:
        if not (root / rel).exists():
            pytest.fail(f"{root / rel} is missing: run `python3 build.py build` first", pytrace=False)
    return root


@contextmanager
def serve(directory: str | Path, host: str = "127.0.0.1") -> Iterator[ServedSite]:
    """Serve ``directory`` with the site's own server (buildtools.server) on a free port in a background thread;
    yields the base URL (ending in "/") with what was sent."""
    with Background(directory, host) as srv:
        url = ServedSite(srv.url)
        url.sent, url.statuses = srv.counter.sent, srv.counter.statuses
        yield url


def site_variant(site: Path, dest: Path, drop=frozenset(), replace: dict | None = None) -> Path:
    """A copy of the site at ``dest`` made of symlinks, without the paths in ``drop`` (files or folders) and with
    ``replace`` {path: bytes} written as real files (also paths the site does not have). Replaced files are never
    symlinks, so writing them cannot reach the real site."""
    replace = replace or {}
    for src in sorted(Path(site).rglob("*")):
        rel = src.relative_to(site).as_posix()
        if src.is_dir() or rel in replace or any(rel == d or rel.startswith(d + "/") for d in drop):
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.symlink_to(src.resolve())
    for rel, data in replace.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


def without_shipped_snapshot(site: Path, dest: Path) -> Path:
    """The site as a build without its shipped memory snapshot serves it: first visits boot normally and store
    the per-visitor snapshot (what the repeat-visit tests exercise)."""
    from buildtools.snapshot import SITE_PATH

    folder = SITE_PATH.split("/")[0]
    manifest = json.loads((Path(site) / "manifest.json").read_text())
    manifest.pop("snapshot", None)  # such a build's manifest lists none (the worker then never looks for one)
    manifest["files"] = [f for f in manifest["files"] if not f["path"].startswith(folder + "/")]
    return site_variant(site, dest, drop={folder}, replace={"manifest.json": json.dumps(manifest).encode()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RequestLog:
    """Every request a browser context makes (page and workers), with its body, and every response's size."""

    def __init__(self, context):
        self.requests: list = []
        self.responses: list = []
        self.failed: list = []
        # Playwright needs handlers it can tag with attributes, so lambdas rather than bound builtins.
        context.on("request", lambda r: self.requests.append(r))
        context.on("response", lambda r: self.responses.append(r))
        context.on("requestfailed", lambda r: self.failed.append(r))

    def urls(self) -> list[str]:
        return [r.url for r in self.requests]

    def foreign(self, base_url: str) -> list[str]:
        from urllib.parse import urlsplit

        origin = urlsplit(base_url)[:2]
        return [u for u in self.urls() if not u.startswith(("data:", "blob:")) and urlsplit(u)[:2] != origin]

    def bodies(self) -> list[tuple[str, bytes]]:
        out = []
        for r in self.requests:
            body = r.post_data_buffer
            if body:
                out.append((r.url, body))
        return out

    def bytes_received(self) -> int:
        """Sum of response body sizes as sent on the wire (encoded), from the browser's own accounting."""
        total = 0
        for r in self.responses:
            try:
                sizes = r.request.sizes()
            except Exception:  # noqa: BLE001 -- a response whose request was discarded has no sizes
                continue
            total += max(0, sizes.get("responseBodySize", 0))
        return total


def new_page(context, timeout_ms: int):
    """A new page of ``context`` with ``timeout_ms`` as its default timeout, and the list its uncaught errors
    go to from the start."""
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


# The stored memory snapshot file in the page's JavaScript: [magic, meta length, meta JSON, padding to 16, heap,
# site-packages]. stored.read() -> {handle, file, magic, meta, heap, site}; stored.write(handle, magic, meta, parts)
# writes meta and the byte parts after it, laid out the same way. For tests that change the file as an attacker or a
# broken disk would.
STORED_SNAPSHOT_JS = """const stored = {
  async read() {
    const root = await navigator.storage.getDirectory();
    const handle = await root.getFileHandle("%s");
    const file = new Uint8Array(await (await handle.getFile()).arrayBuffer());
    const view = new DataView(file.buffer);
    const metaLength = view.getUint32(4, true);
    const meta = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + metaLength)));
    const start = Math.ceil((8 + metaLength) / 16) * 16;
    return { handle, file, magic: view.getUint32(0, true), meta, heap: file.subarray(start, start + meta.heap),
      site: file.subarray(start + meta.heap) };
  },
  async write(handle, magic, meta, parts) {
    const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
    const at = Math.ceil((8 + metaBytes.byteLength) / 16) * 16;
    const out = new Uint8Array(at + parts.reduce((n, p) => n + p.byteLength, 0));
    new DataView(out.buffer).setUint32(0, magic, true);
    new DataView(out.buffer).setUint32(4, metaBytes.byteLength, true);
    out.set(metaBytes, 8);
    let offset = at;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.byteLength;
    }
    await stored.put(handle, out);
  },
  async put(handle, bytes) {
    const w = await handle.createWritable();
    await w.write(bytes);
    await w.close();
  },
};""" % SNAPSHOT_FILE


@contextmanager
def example_page(browser, base: str, timeout_ms: int) -> Iterator[dict]:
    """The module's example page (dist/examples/) in a new context, its classifier ready (window.example =
    {wasmvision, clf}): {"page", "errors", "log", "base"}; the context closes on exit."""
    context = browser.new_context()
    try:
        log = RequestLog(context)
        page, errors = new_page(context, timeout_ms)
        page.goto(base + "examples/")
        page.wait_for_function("() => window.example && window.example.clf", timeout=timeout_ms)
        yield {"page": page, "errors": errors, "log": log, "base": base}
    finally:
        context.close()


def wait_ready(page, timeout_ms: int = 180_000) -> dict:
    """Wait until the page's runtime and default model are loaded; returns window.wasmvision.ready's value."""
    # Function form: the page's CSP forbids eval, which Playwright uses for bare expressions.
    page.wait_for_function("() => window.wasmvision !== undefined", timeout=timeout_ms)
    return page.evaluate("window.wasmvision.ready")


_BLOB_FROM_BASE64 = "(b64) => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))])"


def put_blob(page, path: str | Path, name: str = "__wasmvisionTestBlob") -> str:
    """Create a Blob of a local file in the page as ``window[name]``; returns the JS expression naming it.

    Base64 crosses Playwright's protocol quickly; a list of numbers would take seconds for a photo.
    """
    import base64

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    page.evaluate(f"(b64) => {{ window[{name!r}] = ({_BLOB_FROM_BASE64})(b64); }}", data)
    return f"window[{name!r}]"


def classify_in_page(page, path: str | Path, top_k: int = 5) -> dict:
    """Classify a local file through the JS API (the file is sent as a Blob; nothing leaves the browser)."""
    blob = put_blob(page, path)
    return page.evaluate(f"(topK) => window.wasmvision.classify({blob}, {{topK}})", top_k)


# ---------------------------------------------------------------------------------------------- measuring

def measure(dist: Path, photo: Path, runs: int = 20) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with serve(dist) as base, sync_playwright() as p:
        profile = tempfile.TemporaryDirectory(prefix="wasmvision-profile-")
        # A persistent profile has a real disk cache; the in-memory cache of a throwaway context refuses entries
        # over ~10 MB (the Wasm runtime, the model), which would make every visit look like the first.
        context = p.chromium.launch_persistent_context(
            profile.name, executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            # A new profile has an empty HTTP cache: this is a first visit. The photo goes in through the file
            # input as soon as the page has parsed, as a user would; the page classifies it once it is ready.
            log = RequestLog(context)
            page = context.new_page()
            page.set_default_timeout(300_000)
            page.goto(base, wait_until="domcontentloaded")
            page.set_input_files("[data-testid=file-input]", str(photo))
            page.wait_for_function("() => window.wasmvision && window.wasmvision.stats.firstResultMs !== null",
                                   polling=20)
            stats = page.evaluate("({...window.wasmvision.stats})")
            out["cold"] = {
                "ready_ms": round(stats["readyMs"]), "first_result_ms": round(stats["firstResultMs"]),
                "boot_timings_ms": {k: round(v) if isinstance(v, (int, float)) else v
                                for k, v in (stats.get("bootTimings") or {}).items()},
                "bytes_downloaded": base.bytes_sent(), "bytes_by_file": dict(base.sent),
                "requests": len(log.requests),
                "foreign_requests": log.foreign(base),
            }
            # Warm: the same page, repeated classifications of the same photo.
            blob = put_blob(page, photo)
            results = page.evaluate(
                f"""async (n) => {{
                    for (let i = 0; i < 3; i++) await window.wasmvision.classify({blob}, {{topK: 5}});
                    const out = [];
                    for (let i = 0; i < n; i++) out.push((await window.wasmvision.classify({blob}, {{topK: 5}})).timings_ms);
                    return out;
                }}""",
                runs,
            )
            out["warm_median_ms"] = {"runs": runs, **{
                stage: round(statistics.median(r[stage] for r in results), 2)
                for stage in ("decode", "preprocess", "inference", "postprocess", "total")}}
            out["warm_p90_total_ms"] = round(sorted(r["total"] for r in results)[int(0.9 * (runs - 1))], 2)
            # Repeat visit: same context, so the HTTP cache (and V8's code cache) are warm.
            page.close()
            base.reset()
            page2 = context.new_page()
            page2.set_default_timeout(300_000)
            page2.goto(base, wait_until="domcontentloaded")
            page2.set_input_files("[data-testid=file-input]", str(photo))
            page2.wait_for_function("() => window.wasmvision && window.wasmvision.stats.firstResultMs !== null",
                                    polling=20)
            stats2 = page2.evaluate("({...window.wasmvision.stats})")
            out["repeat_visit"] = {"ready_ms": round(stats2["readyMs"]), "first_result_ms": round(stats2["firstResultMs"]),
                                   "bytes_downloaded": base.bytes_sent(),
                                   "statuses": sorted({f"{p} {c}" for p, c in base.statuses})}
        finally:
            context.close()
            profile.cleanup()
    return out


_LOAD_TO_READY = """async () => {
    const wv = await import("./wasmvision.mjs");
    const t0 = performance.now();
    const clf = await wv.load();
    const ms = performance.now() - t0;
    const stats = await clf.stats();
    return {ms, snapshot: stats.timings.snapshot, network_bytes: stats.networkBytes};
}"""


def measure_module(dist: Path, runs: int = 3) -> dict:
    """Milliseconds from wasmvision.load() to the classifier being ready, from a blank page of the site: `cold`
    in a new profile each run (empty HTTP cache, no memory snapshot), `repeat` in one profile after a first visit
    (warm cache, snapshot restored). Medians and all runs."""
    from playwright.sync_api import sync_playwright

    (dist / "__blank.html").write_text("<!doctype html><title>blank</title>\n")
    out: dict = {"cold": [], "repeat": []}
    try:
        with serve(dist) as base, sync_playwright() as p:
            for kind in ("cold", "repeat"):
                for _ in range(runs):
                    with tempfile.TemporaryDirectory(prefix="wasmvision-load-") as profile:
                        context = p.chromium.launch_persistent_context(
                            profile, executable_path=chromium_path(), args=CHROMIUM_ARGS)
                        try:
                            visits = 1 if kind == "cold" else 2
                            for _visit in range(visits):
                                page = context.new_page()
                                page.set_default_timeout(300_000)
                                page.goto(base + "__blank.html")
                                got = page.evaluate(_LOAD_TO_READY)
                                if kind == "repeat" and _visit == 0:
                                    time.sleep(4)  # the snapshot is stored ~2 s after the first boot
                                page.close()
                            out[kind].append({k: (round(v) if isinstance(v, float) else v) for k, v in got.items()})
                        finally:
                            context.close()
    finally:
        (dist / "__blank.html").unlink()
    for kind in ("cold", "repeat"):
        out[f"{kind}_median_ms"] = round(statistics.median(r["ms"] for r in out[kind]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    root = Path(__file__).resolve().parent.parent
    m.add_argument("--dist", type=Path, default=root / "dist")
    m.add_argument("--photo", type=Path, default=root / "build" / "photos" / "chelsea.png")
    m.add_argument("--runs", type=int, default=20)
    mm = sub.add_parser("measure-module", help="time from wasmvision.load() to ready (cold and repeat visits)")
    mm.add_argument("--dist", type=Path, default=root / "dist")
    mm.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    if args.cmd == "measure-module":
        print(json.dumps(measure_module(args.dist, args.runs), indent=2))
        return 0
    print(json.dumps(measure(args.dist, args.photo, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
