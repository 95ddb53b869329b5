"""Where a cold visit's CPU goes: one Chrome trace of the page from an empty cache to the first result, summed per
thread (the worker's, V8's background compile threads, the page's).

    python benchmarks/studies/trace_cold.py [--dist dist] [--out bench-results/work/trace-cold.json] [--keep-trace]

The phase table (phases.py) says when each step ran; this says what the threads did meanwhile: on 2 shared cores the
first result is mostly CPU, so time spent on another thread (V8 optimizing Wasm in the background, the page) is time
the worker does not get. Prints, per thread, the trace events that took the most time (e.g. `wasm.CompileLazy`: a
Wasm function compiled on its first call, on the thread that calls it; `wasm.TopTierCompilation`: V8 re-compiling hot
functions with its optimizing tier in the background), and the worker's most sampled functions. Tracing and
sampling slow the page down: read the shares, not the milliseconds, and never compare with phases.py's times.
The site is served as phases.py serves it; a throwaway context (its in-memory cache is empty, as on a first visit).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from buildtools.chromium import launch  # noqa: E402 -- after the path tweak
from buildtools.server import Background  # noqa: E402

CATEGORIES = ["devtools.timeline", "v8", "v8.wasm", "v8.execute", "blink", "loading", "toplevel",
              "disabled-by-default-v8.cpu_profiler", "disabled-by-default-devtools.timeline"]
# Scheduler wrappers around every task: they contain the events worth reading, not add to them.
WRAPPERS = {"RunTask", "ThreadControllerImpl::RunTask", "ThreadPool_RunTask", "RunMicrotasks", "V8.StackGuard",
            "V8.HandleInterrupts", "wasm.LogCode", "TaskGraphRunner::RunTask", "AsyncTask Run", "v8.callFunction",
            "SimpleWatcher::OnHandleReady", "Receive mojo message", "TimerBase::run", "TimerFire",
            "wasm.ExecuteCompilationUnits", "FunctionCall", "HandlePostMessage"}


def record(dist: Path, photo: Path, trace_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with Background(dist) as srv, sync_playwright() as p:
        base = srv.url
        browser = launch(p, headless=True)
        try:
            page = browser.new_context().new_page()
            browser.start_tracing(page=page, path=str(trace_path), categories=CATEGORIES)
            page.goto(base)
            page.wait_for_selector("[data-testid=file-input]", state="attached")
            page.set_input_files("[data-testid=file-input]", str(photo))
            page.wait_for_selector("[data-testid=result-list] li", timeout=300_000)
            browser.stop_tracing()
        finally:
            browser.close()


def summarize(events: list[dict], top: int = 12) -> dict:
    """{thread name: {"events": [[name, ms, count]...], "total_ms": ...}} plus the worker's sampled functions."""
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    per_thread: dict = collections.defaultdict(lambda: collections.defaultdict(lambda: [0.0, 0]))
    for e in events:
        if e.get("ph") != "X" or e.get("name") in WRAPPERS:
            continue
        slot = per_thread[(e["pid"], e["tid"])][e["name"]]
        slot[0] += e.get("dur", 0) / 1000
        slot[1] += 1
    out: dict = {"threads": {}}
    for key, by_name in per_thread.items():
        thread = names.get(key, f"thread {key[1]}")
        ranked = sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top]
        if not ranked or ranked[0][1][0] < 20:
            continue
        label = f"{thread} ({key[0]}:{key[1]})"
        out["threads"][label] = [[n, round(ms, 1), c] for n, (ms, c) in ranked]
    # Sampled functions of the worker thread (self time): the Profile event names the thread of its chunks.
    worker = {k for k, v in names.items() if v == "DedicatedWorker thread"}
    profiles = {e["id"]: (e["pid"], e["tid"]) for e in events if e.get("name") == "Profile"}
    nodes: dict = {}
    self_ms: collections.Counter = collections.Counter()
    for e in events:
        if e.get("name") != "ProfileChunk" or profiles.get(e.get("id")) not in worker:
            continue
        data = e["args"]["data"]
        profile = data.get("cpuProfile", {})
        for n in profile.get("nodes", []) or []:
            nodes[(e["id"], n["id"])] = n["callFrame"]
        for sample, delta in zip(profile.get("samples", []) or [], data.get("timeDeltas", []) or []):
            frame = nodes.get((e["id"], sample))
            if frame:
                where = frame.get("url", "").rsplit("/", 1)[-1]
                self_ms[f"{frame.get('functionName') or '(anonymous)'} {where}".strip()] += delta / 1000
    out["worker_functions"] = [[k, round(v, 1)] for k, v in self_ms.most_common(top * 2)]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--photo", type=Path, default=ROOT / "build" / "photos" / "chelsea.png")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results" / "work" / "trace-cold.json")
    ap.add_argument("--keep-trace", action="store_true", help="also keep the raw trace beside --out")
    args = ap.parse_args(argv)
    if not (args.dist / "manifest.json").exists():
        ap.error(f"{args.dist} is not a built site: run `python3 build.py build` first")
    with tempfile.TemporaryDirectory(prefix="wasmvision-trace-") as tmp:
        trace_path = Path(tmp) / "trace.json"
        record(args.dist, args.photo, trace_path)
        raw = json.loads(trace_path.read_text())
        if args.keep_trace:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".trace.json").write_text(json.dumps(raw))
    summary = summarize(raw["traceEvents"] if isinstance(raw, dict) else raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    for thread, rows in summary["threads"].items():
        print(f"\n{thread}")
        for name, ms, count in rows:
            print(f"  {ms:9.1f} ms {count:6d}  {name}")
    print("\nworker thread, sampled self time")
    for name, ms in summary["worker_functions"]:
        print(f"  {ms:9.1f} ms  {name}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
