"""Cold start: a fresh browser profile (empty HTTP cache, like a first visit), then a second page in the same profile
(repeat visit: disk cache, V8's compiled-Wasm cache and the page's memory snapshot warm), with the bytes our server
sent. Incognito contexts are not used: their memory-only cache drops 14 MB files."""
from __future__ import annotations

import tempfile
import time

from . import browser_page, ort_web
from .common import CHROMIUM_FLAGS, log, stats

METHOD = (
    "first_result_ms = performance.now() in the page when the first result arrives (from navigation start); "
    "wasmvision: ready + fetch chelsea.png + classify; ort-web: fetch model+input, create session, first run. "
    "empty cache: a fresh browser profile; warm cache: a second page in the same profile, opened after the "
    "first page stored its Pyodide memory snapshot (waits at most 15 s; a visitor reads the result meanwhile). "
    "Server Cache-Control: {cc!r}. Bytes: response bodies our server sent (cache hits never reach it); "
    "the benchmark's own inputs (the photo for wasmvision, the preprocessed tensor for ort-web) are counted "
    "separately; the ONNX model ort-web loads counts as its page's bytes.")


def record(info, wall, srv):
    snap = srv.counter.snapshot()
    own = sum(n for p, _, n in snap["requests"] if p.startswith(("/work/chelsea", "/work/input")))
    return {"first_result_ms": info.get("first_result_ms"), "harness_wall_ms": wall,
            "bytes_total": snap["bytes"], "bytes_page": snap["bytes"] - own, "bytes_bench_inputs": own,
            "requests": len(snap["requests"]), "info": {k: v for k, v in info.items() if k != "top"}}


def summary(recs):
    if not recs:
        return {}
    return {"first_result_ms": stats([r["first_result_ms"] for r in recs]),
            "bytes_total": recs[-1]["bytes_total"], "bytes_page": recs[-1]["bytes_page"],
            "bytes_bench_inputs": recs[-1]["bytes_bench_inputs"],
            "requests": recs[-1]["requests"], "runs": recs}


def measure(pw, plain, bench):
    a = bench.args
    out = {}
    targets = [("ort-web 1 thread", lambda ctx: ort_web.open_ort(ctx, plain, 1))]
    if bench.has_page:
        targets.insert(0, ("wasmvision", lambda ctx: browser_page.open_wv(ctx, plain)))
    for name, opener in targets:
        empty, warm = [], []
        for _ in range(a.cold_repeats):
            with tempfile.TemporaryDirectory(prefix="wv-bench-profile-") as prof:
                ctx = pw.chromium.launch_persistent_context(prof, executable_path=a.chromium,
                                                            args=CHROMIUM_FLAGS, headless=True)
                try:
                    plain.counter.reset()
                    t0 = time.perf_counter()
                    page, info = opener(ctx)
                    empty.append(record(info, (time.perf_counter() - t0) * 1e3, plain))
                    if name == "wasmvision":
                        # A visitor stays on the page after the first result: the worker stores its memory
                        # snapshot for the next visit ~2 s after boot. Wait for it (at most 15 s).
                        deadline = time.time() + 15
                        while not page.evaluate(browser_page.SNAPSHOT_STORED) and time.time() < deadline:
                            time.sleep(0.25)
                        empty[-1]["snapshot_stored"] = bool(page.evaluate(browser_page.SNAPSHOT_STORED))
                    page.close()
                    time.sleep(1.0)  # let the cache writes and code-cache bookkeeping settle
                    plain.counter.reset()
                    t0 = time.perf_counter()
                    page, info = opener(ctx)
                    warm.append(record(info, (time.perf_counter() - t0) * 1e3, plain))
                except Exception as exc:
                    bench.note(f"cold start {name} failed: {exc}")
                finally:
                    ctx.close()
        out[name] = {"empty_cache": summary(empty), "warm_cache": summary(warm)}
        log(f"cold {name}: {(out[name]['empty_cache'].get('first_result_ms') or {}).get('median')} / "
            f"{(out[name]['warm_cache'].get('first_result_ms') or {}).get('median')} ms")
    bench.result["cold_start"] = out
    bench.result["cold_start_method"] = METHOD.format(cc=a.cache_control)
