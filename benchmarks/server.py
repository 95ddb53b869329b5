"""A small static server for the benchmark: several folders under URL prefixes, optional cross-origin isolation.

Not the product's server (that is `build.py serve`). It counts the response body bytes it sends, so the harness
can report what a page really downloaded (browser-cache hits never reach it).
"""
import http.server
import mimetypes
import os
import threading
import urllib.parse

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/json", ".json")


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.bytes = 0
            self.requests = []  # (path, status, body bytes)

    def add(self, path, status, n):
        with self.lock:
            self.bytes += n
            self.requests.append((path, status, n))

    def snapshot(self):
        with self.lock:
            return {"bytes": self.bytes, "requests": list(self.requests)}


def make_handler(mounts, isolated, cache_control, counter):
    """mounts: {"/prefix/": "/abs/dir"}; the longest matching prefix wins."""
    prefixes = sorted(mounts, key=len, reverse=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def translate_path(self, path):
            path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
            for p in prefixes:
                if path.startswith(p):
                    rel = os.path.normpath(path[len(p):]).lstrip("/")
                    if rel.startswith(".."):
                        return "/nonexistent"
                    return os.path.join(mounts[p], rel)
            return "/nonexistent"

        def end_headers(self):
            if isolated:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            self.send_header("Cache-Control", cache_control)
            super().end_headers()

        def copyfile(self, source, outputfile):
            n = 0
            while True:
                buf = source.read(1 << 16)
                if not buf:
                    break
                outputfile.write(buf)
                n += len(buf)
            counter.add(self.path, 200, n)

        def log_message(self, *args):
            pass

    return Handler


class Server:
    def __init__(self, mounts, *, isolated=False, cache_control="no-cache", port=0):
        self.counter = Counter()
        handler = make_handler(mounts, isolated, cache_control, self.counter)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
