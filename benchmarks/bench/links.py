"""Link profiles: first visits on a real link, ours vs onnxruntime-web 1 thread.

One server that behaves like a CDN (gzip -9 of compressible types, a fixed `Cache-Control: max-age`, one download
rate shared by every connection, a delay before each response: buildtools/server.py SharedLink) and counts the
bytes it sent per visit. For each profile (LINK_PROFILES), storage (a persistent browser profile on disk, or a
private one: a fresh incognito-like context with no disk cache) and system, a cold visit and then a repeat visit
in the same storage. The photo (wasmvision) and the preprocessed tensor (onnxruntime-web) come from the visitor's
device, so they skip the link and are counted apart.
"""
from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass

from buildtools.server import UNTHROTTLED, Background, LinkProfile, SharedLink

from . import browser_page, ort_web
from .common import CHROMIUM_FLAGS, log, stats

LINK_PROFILES = (UNTHROTTLED, LinkProfile("50 Mbit/s + 20 ms", 50.0, 20.0),
                 LinkProfile("20 Mbit/s + 40 ms", 20.0, 40.0))
STORAGES = ("persistent", "private")
VISITS = ("cold", "repeat")
BENCH_INPUTS = ("/work/chelsea", "/work/input")  # the visitor's own photo: never over the link
INT8_MODEL = "model-int8.onnx"
WV, ORT, ORT_INT8 = "wasmvision", "ort-web 1 thread", "ort-web 1 thread int8"
SNAPSHOT_WAIT_S = 15  # the page stores its memory snapshot ~2 s after boot; a visitor reads the result meanwhile

METHOD = (
    "first result = performance.now() in the page when the first classification is shown (from navigation start): "
    "wasmvision: ready + classify of the photo; onnxruntime-web: model fetched, session created, first run. "
    "Server: gzip -9 of text/JS/JSON/Wasm/model bodies (not zip, wheels, images), Cache-Control {cc!r}, one "
    "download rate shared by all connections, the profile's delay before each response. persistent: a fresh "
    "browser profile on disk; private: a fresh incognito-like context (memory cache only). cold: the first page "
    "of that storage; repeat: a second page in it (wasmvision: after its memory snapshot was stored, at most "
    f"{SNAPSHOT_WAIT_S} s). bytes: response bodies the server sent from the page's start until it was closed, "
    "without the photo / input tensor (the visitor's own file, not sent over the link).")


def quantized_model(bench):
    """An int8 ONNX of the same network (onnxruntime.quantization, static QDQ, calibrated on the benchmark's input),
    or None when it cannot be made."""
    out = bench.work / INT8_MODEL
    if out.exists():
        return out
    try:
        import numpy as np
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        class OneInput(CalibrationDataReader):
            def __init__(self, name, x):
                self.items = iter([{name: x}])

            def get_next(self):
                return next(self.items, None)

        import onnx
        name = onnx.load(str(bench.model), load_external_data=False).graph.input[0].name
        x = np.ascontiguousarray(bench.x.transpose(0, 3, 1, 2)).astype(np.float32)
        quantize_static(str(bench.model), str(out), OneInput(name, x), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        return out
    except Exception as exc:
        bench.note(f"links: no int8 ONNX for onnxruntime-web: {str(exc)[-300:]}")
        return None


def visit(ctx, opener, srv, wait_snapshot):
    """One page: first result, the bytes sent until then and until the page closes."""
    srv.counter.reset()
    page, info = opener(ctx)
    at_result = srv.counter.snapshot()
    if wait_snapshot:
        deadline = time.time() + SNAPSHOT_WAIT_S
        while not page.evaluate(browser_page.SNAPSHOT_STORED) and time.time() < deadline:
            time.sleep(0.25)
    page.close()
    time.sleep(0.5)  # the cache writes and the requests still in flight
    whole = srv.counter.snapshot()

    def page_bytes(snap):
        return sum(n for p, _, n in snap["requests"] if not p.startswith(BENCH_INPUTS))
    return {"first_result_ms": info.get("first_result_ms"), "bytes_to_first_result": page_bytes(at_result),
            "bytes": page_bytes(whole), "requests": len(whole["requests"]),
            "per_file": per_file(whole), "top": info.get("top")}


def per_file(snap):
    """{path without query: [bodies sent, bytes]} of one visit."""
    out = {}
    for p, _, n in snap["requests"]:
        seen = out.setdefault(p.split("?", 1)[0], [0, 0])
        seen[0] += 1
        seen[1] += n
    return out


def downloaded_twice(files, min_bytes=1):
    """The paths of a visit's per_file sent more than once (each body at least `min_bytes`, on average)."""
    return sorted(p for p, (count, n) in files.items() if count > 1 and n >= count * min_bytes)


def session(pw, browser, storage, a):
    """A context manager-like pair (context, closer) for one storage."""
    if storage == "private":
        ctx = browser.new_context()
        return ctx, ctx.close
    tmp = tempfile.TemporaryDirectory(prefix="wv-bench-links-")
    ctx = pw.chromium.launch_persistent_context(tmp.name, executable_path=a.chromium, args=CHROMIUM_FLAGS,
                                                headless=True)

    def close():
        ctx.close()
        tmp.cleanup()
    return ctx, close


@dataclass
class Setup:
    """What every visit of a run shares: Playwright, the browser (private contexts), the server and its link."""
    pw: object
    browser: object
    srv: Background
    link: SharedLink
    bench: object


def visits(setup, storage, prof, name, opener):
    """[(visit, record)] of a cold and a repeat visit of one system in a fresh storage, over `prof`'s link."""
    out = []
    setup.link.set_profile(prof)
    ctx, close = session(setup.pw, setup.browser, storage, setup.bench.args)
    try:
        for v in VISITS:
            out.append((v, visit(ctx, lambda c: opener(c, setup.srv), setup.srv,
                                 wait_snapshot=name == WV and v == "cold")))
    except Exception as exc:
        setup.bench.note(f"links {prof.name} {storage} {name} failed: {str(exc)[-300:]}")
    finally:
        setup.link.set_profile(UNTHROTTLED)
        close()
    return out


def summary(runs):
    runs = [r for r in runs if r.get("first_result_ms") is not None]
    if not runs:
        return {}
    med = lambda k: stats([r[k] for r in runs])["median"]  # noqa: E731
    return {"first_result_ms": stats([r["first_result_ms"] for r in runs]), "bytes": med("bytes"),
            "bytes_to_first_result": med("bytes_to_first_result"), "per_file": runs[-1]["per_file"],
            "downloaded_twice": downloaded_twice(runs[-1]["per_file"], min_bytes=100_000), "runs": [
                {k: v for k, v in r.items() if k != "per_file"} for r in runs]}


def systems(bench):
    out = []
    if bench.has_page:
        out.append((WV, lambda ctx, srv: browser_page.open_wv(ctx, srv)))
    out.append((ORT, lambda ctx, srv: ort_web.open_ort(ctx, srv, 1)))
    int8 = quantized_model(bench)
    if int8 is not None:
        out.append((ORT_INT8, lambda ctx, srv: ort_web.open_ort(ctx, srv, 1, model=f"/work/{INT8_MODEL}")))
    return out


def measure(pw, bench):
    a = bench.args
    link = SharedLink(exempt=BENCH_INPUTS)
    profiles = [p for p in LINK_PROFILES if not a.link_profiles or p.name.split()[0] in a.link_profiles]
    cells = {}
    with Background(mounts=bench.mounts, csp=False, gzip=True, cache_control=a.cache_control, link=link) as srv:
        browser = pw.chromium.launch(executable_path=a.chromium, args=CHROMIUM_FLAGS)
        setup = Setup(pw, browser, srv, link, bench)
        targets = systems(bench)
        raw = {}
        try:
            # Unmeasured, unthrottled: the server gzips each file once (a CDN has it compressed already).
            for name, opener in targets:
                ctx = browser.new_context()
                try:
                    opener(ctx, srv)[0].close()
                finally:
                    ctx.close()
            for rep in range(a.link_repeats):
                for prof, storage, (name, opener) in itertools.product(profiles, STORAGES, targets):
                    for v, r in visits(setup, storage, prof, name, opener):
                        raw.setdefault((prof.name, storage, v, name), []).append(r)
                log(f"links: round {rep + 1}/{a.link_repeats} done")
        finally:
            browser.close()
    for (prof, storage, v, name), runs in raw.items():
        cells.setdefault(prof, {}).setdefault(storage, {}).setdefault(v, {})[name] = summary(runs)
    bench.result["links"] = {
        "profiles": [{"name": p.name, "mbit_s": p.mbit_s, "delay_ms": p.delay_ms} for p in profiles],
        "systems": [n for n, _ in targets], "cells": cells, "method": METHOD.format(cc=a.cache_control)}
