"""The one static server: `build.py serve`, the tests and the benchmarks all serve through SiteHandler.

What a static host must send for the site (README): MIME types, Cache-Control by file, strong ETags with conditional
GET, the Content-Security-Policy headers, and on request cross-origin isolation. The tests and benchmarks add what
only they need through make_server's options: several folders under URL prefixes, a fixed Cache-Control, gzip of
compressible bodies, a count of the statuses and body bytes sent, and a link (SharedLink: one download rate shared by
every connection and a delay before each response), which together make it behave like a CDN on a real link.
"""

from __future__ import annotations

import email.utils
import gzip as gzip_mod
import http.server
import mimetypes
import os
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .util import BuildError, sha256_file

MIME_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".wasm": "application/wasm", ".wvb": "application/octet-stream",
    ".whl": "application/octet-stream", ".zip": "application/zip", ".onnx": "application/octet-stream",
    ".png": "image/png", ".jpg": "image/jpeg", ".svg": "image/svg+xml", ".ico": "image/x-icon",
}
# What a CDN gzips: text, JSON, JavaScript, Wasm and the model files (.onnx, .wvb: float weights shrink a little);
# never what is compressed already (zip, wheels, images).
COMPRESSIBLE = ("text/", "application/json", "application/wasm", "application/octet-stream", "image/svg+xml")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def cache_policy(rel: str) -> str:
    """Versioned third-party files never change under their name; everything we build is revalidated.

    pyodide/* (core and official wheels) carry the Pyodide version in their folder's lock and never change
    for a given release. Our own wheel and numpy's (compiled by numpy_for_site) keep their names across
    rebuilds, and the lock, the page, the manifest and the models change with every build, so those are
    revalidated (a 304 costs one round trip).
    """
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith("pyodide/") and name != "pyodide-lock.json" and not name.startswith(("wasmvision-", "numpy-")):
        return IMMUTABLE
    return REVALIDATE


# Content-Security-Policy headers (README: what a static host must send). The page's equals its <meta> policy; a
# worker's policy comes only from its script's response (the page's does not reach it), and it is what refuses
# cross-origin fetch, XHR, WebSocket and import() to code running in the worker. 'wasm-unsafe-eval': Pyodide compiles
# Wasm. Module scripts imported by a worker ignore the header, so every script gets the worker's.
PAGE_CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; "
            "img-src 'self' blob: data:; style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'")
WORKER_CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'none'; "
              "object-src 'none'; base-uri 'none'; form-action 'none'")


def csp_for(rel: str) -> str | None:
    if rel.endswith(".html") or rel == "":
        return PAGE_CSP
    if rel.endswith((".js", ".mjs")):
        return WORKER_CSP
    return None


class SentCounter:
    """What a server sent: ``statuses`` [(path, status)], ``sent`` {path without query: body bytes} and
    ``requests`` [(path, status, body bytes)] of the bodies (what a page downloaded; cache hits never arrive)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: list[tuple[str, int]] = []
        self.sent: dict[str, int] = {}
        self.requests: list[tuple[str, int, int]] = []

    def reset(self) -> None:
        with self.lock:
            self.statuses.clear()
            self.sent.clear()
            self.requests.clear()

    def status(self, path: str, code: int) -> None:
        with self.lock:
            self.statuses.append((path, code))

    def body(self, path: str, n: int) -> None:
        with self.lock:
            key = path.split("?", 1)[0]
            self.sent[key] = self.sent.get(key, 0) + n
            self.requests.append((path, 200, n))

    def bytes_sent(self) -> int:
        with self.lock:
            return sum(self.sent.values())

    def snapshot(self) -> dict:
        with self.lock:
            return {"bytes": sum(n for _, _, n in self.requests), "requests": list(self.requests)}


@dataclass(frozen=True)
class LinkProfile:
    """A network link: ``mbit_s`` download rate (None: unthrottled) and ``delay_ms`` before each response."""

    name: str
    mbit_s: float | None = None
    delay_ms: float = 0.0


UNTHROTTLED = LinkProfile("unthrottled")


class SharedLink:
    """One download rate shared by every connection of a server, and a delay before each response.

    Each body chunk reserves the next free slot of the link (first come, first served) and is written when its slot
    ends, so concurrent downloads split the rate. URL paths starting with one of ``exempt`` skip the link (a benchmark's
    inputs that stand for the visitor's own files). ``clock`` and ``sleep`` are injectable (tests use a fake clock).
    """

    CHUNK = 16 * 1024

    def __init__(self, profile: LinkProfile = UNTHROTTLED, clock=time.monotonic, sleep=time.sleep,
                 exempt: tuple[str, ...] = ()):
        self.profile, self.exempt = profile, tuple(exempt)
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()
        self.free_at = 0.0  # clock time at which the link has sent everything reserved so far

    def applies(self, url_path: str) -> bool:
        return not url_path.startswith(self.exempt) if self.exempt else True

    def set_profile(self, profile: LinkProfile) -> None:
        with self.lock:
            self.profile, self.free_at = profile, 0.0

    def reserve(self, n: int) -> float:
        """The clock time at which `n` more bytes have left the link (now, when unthrottled)."""
        with self.lock:
            now = self.clock()
            if not self.profile.mbit_s:
                return now
            self.free_at = max(now, self.free_at) + n * 8 / (self.profile.mbit_s * 1e6)
            return self.free_at

    def before_response(self) -> None:
        if self.profile.delay_ms > 0:
            self.sleep(self.profile.delay_ms / 1e3)

    def send(self, source, write) -> int:
        """Copy file-like `source` to `write` at the link's rate; returns the bytes written."""
        sent = 0
        while chunk := source.read(self.CHUNK):
            wait = self.reserve(len(chunk)) - self.clock()
            if wait > 0:
                self.sleep(wait)
            write(chunk)
            sent += len(chunk)
        return sent


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with correct MIME types, Cache-Control, strong ETags and conditional GET."""

    isolate = False
    csp = True  # send PAGE_CSP / WORKER_CSP (csp_for)
    cache_control: str | None = None  # None: cache_policy per file
    gzip = False  # gzip -9 a COMPRESSIBLE body when the client accepts it (what a static host with compression sends)
    link: SharedLink | None = None  # None: as fast as the loopback goes
    mounts: dict[str, str] = {}  # {"/prefix/": folder}, the longest prefix wins; empty: `directory` at "/"
    counter: SentCounter | None = None
    quiet = False
    protocol_version = "HTTP/1.1"  # keep-alive: the page fetches a dozen files from one origin
    extensions_map = {**mimetypes.types_map, **MIME_TYPES}
    _etags: dict = {}  # (path, size, mtime_ns) -> etag; per server (make_server), shared by its handler threads
    _gzipped: dict = {}  # (path, size, mtime_ns) -> compressed body

    def translate_path(self, path):
        self._root = self.directory
        if not self.mounts:
            return super().translate_path(path)
        url = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        for prefix in sorted(self.mounts, key=len, reverse=True):
            if url.startswith(prefix):
                rel = os.path.normpath(url[len(prefix):]).lstrip("/")
                if rel.startswith(".."):
                    break
                self._root = self.mounts[prefix]
                return os.path.join(self._root, rel)
        return os.path.join(os.sep, "nonexistent")

    def etag_for(self, path: str) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_size, st.st_mtime_ns)
        tag = self._etags.get(key)
        if tag is None:
            tag = '"' + sha256_file(Path(path))[:32] + '"'
            self._etags[key] = tag
        return tag

    def send_head(self):
        if self.link is not None and self.link.applies(self.path):
            self.link.before_response()
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            index = os.path.join(path, "index.html")
            if not self.path.split("?", 1)[0].endswith("/") or not os.path.isfile(index):
                return super().send_head()  # the base class redirects to "dir/" or lists
            path = index
        etag = self.etag_for(path)
        self._extra = {}
        if etag:
            rel = os.path.relpath(path, self._root).replace(os.sep, "/")
            self._extra = {"ETag": etag, "Cache-Control": self.cache_control or cache_policy(rel)}
            if self.csp and csp_for(rel):
                self._extra["Content-Security-Policy"] = csp_for(rel)
            inm = self.headers.get("If-None-Match")
            if inm and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]):
                self.send_response(http.HTTPStatus.NOT_MODIFIED)
                self.send_header("Last-Modified", email.utils.formatdate(os.stat(path).st_mtime, usegmt=True))
                self.end_headers()
                return None
            if self.gzip and "gzip" in self.headers.get("Accept-Encoding", "") and \
                    self.guess_type(path).startswith(COMPRESSIBLE):
                return self._send_gzipped(path)
        return super().send_head()

    def _send_gzipped(self, path: str):
        import io

        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in self._gzipped:
            self._gzipped[key] = gzip_mod.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)
        body = self._gzipped[key]
        self.send_response(http.HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        self.end_headers()
        return io.BytesIO(body)

    def send_response(self, code, message=None):
        if self.counter is not None:
            self.counter.status(self.path, int(code))
        super().send_response(code, message)

    def copyfile(self, source, outputfile):
        before = source.tell()
        if self.link is not None and self.link.applies(self.path):
            self.link.send(source, outputfile.write)
        else:
            super().copyfile(source, outputfile)
        if self.counter is not None:
            self.counter.body(self.path, source.tell() - before)

    def end_headers(self):
        for k, v in getattr(self, "_extra", {}).items():
            self.send_header(k, v)
        self._extra = {}
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format, *args):  # one short line per request
        if not self.quiet:
            sys.stderr.write(f"[serve] {self.address_string()} {format % args}\n")


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000, isolate: bool = False, *,
                mounts: dict[str, str | Path] | None = None, csp: bool = True, cache_control: str | None = None,
                gzip: bool = False, counter: SentCounter | None = None, quiet: bool = False,
                link: SharedLink | None = None):
    """A threading HTTP server of SiteHandler for `directory` (or `mounts`), not yet serving."""
    handler = type("Handler", (SiteHandler,), {
        "isolate": isolate, "csp": csp, "cache_control": cache_control, "gzip": gzip, "counter": counter,
        "link": link,
        "quiet": quiet, "mounts": {k: str(v) for k, v in (mounts or {}).items()}, "_etags": {}, "_gzipped": {}})
    handler_factory = lambda *a, **kw: handler(*a, directory=str(directory), **kw)  # noqa: E731
    try:
        httpd = http.server.ThreadingHTTPServer((host, port), handler_factory)
    except OSError as exc:
        raise BuildError(f"cannot listen on {host}:{port}: {exc.strerror} (try --port)") from None
    httpd.daemon_threads = True
    return httpd


class Background:
    """`with Background(dist) as srv:` serves in a thread on a free port; ``srv.url`` is ``srv.origin`` + "/",
    ``srv.counter`` counts what was sent. Keyword arguments go to make_server."""

    def __init__(self, directory: str | Path = os.curdir, host: str = "127.0.0.1", port: int = 0, **options):
        self.counter = options.pop("counter", None) or SentCounter()
        options.setdefault("quiet", True)
        self.httpd = make_server(Path(directory), host, port, counter=self.counter, **options)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://{host}:{self.port}"
        self.url = self.origin + "/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="wasmvision-server", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve(directory: Path, host: str = "127.0.0.1", port: int = 8000, isolate: bool = False) -> int:
    httpd = make_server(directory, host, port, isolate)
    shown = f"[{host}]" if ":" in host else host
    print(f"\nServing {directory} at http://{shown}:{httpd.server_address[1]}/"
          f"{'  (cross-origin isolated)' if isolate else ''}  — Ctrl+C to stop", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    finally:
        httpd.server_close()
    return 0
