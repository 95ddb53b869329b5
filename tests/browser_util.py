"""Helpers for driving the wasmvision page in headless Chromium: a static server, the browser launch, a request log.

Used by tests/test_browser.py, and runnable as a script to measure the page:

    python tests/browser_util.py measure [--dist dist] [--photo build/photos/chelsea.png] [--runs 20]

prints cold first-result time (empty HTTP cache), warm classification median with its stage split, and the bytes
the page downloads.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import statistics
import threading
import time
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    return os.environ.get("WASMVISION_CHROMIUM", "/usr/bin/chromium")


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".wvb": "application/octet-stream",
        ".whl": "application/octet-stream",
        ".zip": "application/zip",
    }

    def log_message(self, format, *args):  # noqa: A002 -- the base class's name
        pass


@contextmanager
def serve(directory: str | Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``directory`` on a free port in a background thread; yields the base URL (ending in "/")."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="wasmvision-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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


def launch(playwright, **kwargs):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, **kwargs)


def wait_ready(page, timeout_ms: int = 180_000) -> dict:
    """Wait until the page's runtime and default model are loaded; returns window.wasmvision.ready's value."""
    page.wait_for_function("window.wasmvision !== undefined", timeout=timeout_ms)
    return page.evaluate("window.wasmvision.ready")


def classify_in_page(page, path: str | Path, top_k: int = 5) -> dict:
    """Classify a local file through the JS API (the file is sent as a Blob; nothing leaves the browser)."""
    data = list(Path(path).read_bytes())
    return page.evaluate(
        """async ([bytes, topK]) => {
            const blob = new Blob([new Uint8Array(bytes)]);
            return await window.wasmvision.classify(blob, {topK});
        }""",
        [data, top_k],
    )


# ---------------------------------------------------------------------------------------------- measuring

def measure(dist: Path, photo: Path, runs: int = 20) -> dict:
    from playwright.sync_api import sync_playwright

    photo_bytes = list(photo.read_bytes())
    out: dict = {}
    with serve(dist) as base, sync_playwright() as p:
        browser = launch(p)
        try:
            # A fresh context has an empty HTTP cache: this is a first visit.
            context = browser.new_context()
            log = RequestLog(context)
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(base)
            ready = page.evaluate("window.wasmvision.ready")
            ready_s = time.perf_counter() - t0
            page.evaluate(
                "async (b) => window.wasmvision.classify(new Blob([new Uint8Array(b)]), {topK: 5})", photo_bytes)
            first_s = time.perf_counter() - t0
            stats = page.evaluate("({...window.wasmvision.stats})")
            out["cold"] = {
                "ready_ms_wall": round(ready_s * 1000), "first_result_ms_wall": round(first_s * 1000),
                "ready_ms_page": round(stats["readyMs"]), "first_result_ms_page": round(stats["firstResultMs"]),
                "boot_timings_ms": {k: round(v) for k, v in (stats.get("bootTimings") or {}).items()},
                "bytes_downloaded": log.bytes_received(), "requests": len(log.requests),
                "foreign_requests": log.foreign(base), "model": ready.get("current"),
            }
            # Warm: the same page, repeated classifications of the same photo.
            results = page.evaluate(
                """async ([b, n]) => {
                    const blob = new Blob([new Uint8Array(b)]);
                    for (let i = 0; i < 3; i++) await window.wasmvision.classify(blob, {topK: 5});
                    const out = [];
                    for (let i = 0; i < n; i++) out.push((await window.wasmvision.classify(blob, {topK: 5})).timings_ms);
                    return out;
                }""",
                [photo_bytes, runs],
            )
            out["warm"] = {"runs": runs, **{
                stage: round(statistics.median(r[stage] for r in results), 2)
                for stage in ("decode", "preprocess", "inference", "postprocess", "total")}}
            # Repeat visit: same context, so the HTTP cache (and V8's code cache) are warm.
            page2 = context.new_page()
            t0 = time.perf_counter()
            page2.goto(base)
            page2.evaluate(
                "async (b) => window.wasmvision.classify(new Blob([new Uint8Array(b)]), {topK: 5})", photo_bytes)
            stats2 = page2.evaluate("({...window.wasmvision.stats})")
            out["repeat_visit"] = {"first_result_ms_wall": round((time.perf_counter() - t0) * 1000),
                                   "first_result_ms_page": round(stats2["firstResultMs"])}
            context.close()
        finally:
            browser.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    root = Path(__file__).resolve().parent.parent
    m.add_argument("--dist", type=Path, default=root / "dist")
    m.add_argument("--photo", type=Path, default=root / "build" / "photos" / "chelsea.png")
    m.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.dist, args.photo, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
