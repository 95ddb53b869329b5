"""The benchmark server's link (buildtools/server.py SharedLink, LinkProfile) and CDN-like gzip: one download rate
shared by every connection, a delay before each response, gzip of compressible types only. A fake clock stands in
for time: nothing here is timed."""

from __future__ import annotations

import gzip
import io
import threading
import urllib.request

import pytest

from buildtools import server as server_mod
from buildtools.server import LinkProfile, SharedLink


class FakeClock:
    """Time that moves only when someone sleeps; records the sleeps."""

    def __init__(self):
        self.t = 100.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        with self.lock:
            self.sleeps.append(s)
            self.t += s


def link(mbit_s=None, delay_ms=0.0, exempt=()):
    clock = FakeClock()
    return SharedLink(LinkProfile("test", mbit_s, delay_ms), clock=clock.now, sleep=clock.sleep, exempt=exempt), clock


def _counted(counter, timeout=5.0):
    """The counter's total once the server thread recorded the body (it does so after the client has it all)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if counter.bytes_sent():
            break
        done.wait(0.01)
    return counter.bytes_sent()


def test_unthrottled_link_never_waits():
    lk, clock = link()
    out = io.BytesIO()
    assert lk.send(io.BytesIO(b"x" * 100_000), out.write) == 100_000
    lk.before_response()
    assert out.getvalue() == b"x" * 100_000 and clock.sleeps == []


def test_a_body_takes_its_bytes_over_the_rate():
    lk, clock = link(mbit_s=8.0)  # 1 MB/s
    out = io.BytesIO()
    n = 10 * SharedLink.CHUNK + 123
    assert lk.send(io.BytesIO(b"y" * n), out.write) == n
    assert len(out.getvalue()) == n
    assert sum(clock.sleeps) == pytest.approx(n / 1e6)
    assert len(clock.sleeps) == 11  # one slot per chunk


def test_the_rate_is_shared_by_every_connection():
    # Two downloads reserving in turn (as two connections interleave) finish together at the sum of their bytes
    # over the rate, not each at its own bytes over the rate.
    lk, clock = link(mbit_s=80.0)  # 10 MB/s
    ends = [lk.reserve(1_000_000), lk.reserve(1_000_000)]
    assert ends[0] - 100.0 == pytest.approx(0.1) and ends[1] - 100.0 == pytest.approx(0.2)
    # After an idle spell the link starts from now, with no credit for the idle time.
    clock.t = 200.0
    assert lk.reserve(500_000) == pytest.approx(200.05)


def test_delay_before_each_response_and_profile_switch():
    lk, clock = link(mbit_s=20.0, delay_ms=40.0)
    lk.before_response()
    assert clock.sleeps == [pytest.approx(0.04)]
    lk.reserve(10_000_000)
    lk.set_profile(server_mod.UNTHROTTLED)
    assert lk.reserve(10_000_000) == clock.now()  # the switch forgets what the old profile had reserved
    lk.before_response()
    assert len(clock.sleeps) == 1


def test_server_gzips_compressible_types_only_and_counts_what_it_sent(tmp_path):
    payload = b"0123456789abcdef" * 4096  # 64 KiB, compresses well
    for name in ("a.wasm", "b.js", "c.onnx", "d.zip", "e.png"):
        (tmp_path / name).write_bytes(payload)
    (tmp_path / "own.bin").write_bytes(payload)
    lk, clock = link(mbit_s=8.0, delay_ms=20.0, exempt=("/own",))
    with server_mod.Background(tmp_path, gzip=True, link=lk, csp=False, cache_control="public, max-age=60") as srv:
        for name, compressed in (("a.wasm", True), ("b.js", True), ("c.onnx", True), ("d.zip", False),
                                 ("e.png", False)):
            srv.counter.reset()
            clock.sleeps.clear()
            req = urllib.request.Request(f"{srv.origin}/{name}", headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(req, timeout=10) as r:
                body, enc, cc = r.read(), r.headers.get("Content-Encoding"), r.headers["Cache-Control"]
            assert cc == "public, max-age=60"
            assert (enc == "gzip") is compressed, name
            assert (gzip.decompress(body) if compressed else body) == payload
            assert _counted(srv.counter) == len(body)
            # The delay first, then the body's slots: the sleeps add up to delay + bytes over the rate.
            assert clock.sleeps[0] == pytest.approx(0.02)
            assert sum(clock.sleeps[1:]) == pytest.approx(len(body) / 1e6)
        # The visitor's own file skips the link: no delay, no slots (still counted).
        srv.counter.reset()
        clock.sleeps.clear()
        with urllib.request.urlopen(f"{srv.origin}/own.bin", timeout=10) as r:
            assert r.read() == payload
        assert _counted(srv.counter) == len(payload) and clock.sleeps == []
