"""Builds side by side, by CPU time as well as wall time: per build and round, a traced first visit (fresh context),
the first classify right after ready and --later more. Per build, medians of: ready (page clock), the worker
thread's CPU until ready, and for the first and the later classifies their wall time, the worker thread's CPU and
the CPU of V8's background compile threads inside the classify.
python3 benchmarks/studies/first/trace_ab.py --dist BUILD_A BUILD_B [--rounds N]"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from first_photo import CHROMIUM_FLAGS, ROOT, Background  # noqa: E402
from trace_first import CATEGORIES, RUN, cpu_in, thread_names, windows  # noqa: E402

WORKER, POOL = "DedicatedWorker thread", "ThreadPoolForegroundWorker"


def one_visit(browser, srv, prefix, image, later):
    ctx = browser.new_context()
    page = ctx.new_page()
    browser.start_tracing(page=None, categories=CATEGORIES)
    page.goto(f"{srv.origin}{prefix}index.html?engine=simd")
    page.wait_for_function("() => window.wasmvision")
    got = page.evaluate(RUN, [f"/img/{image.name}", 0, later])
    ready_ms = page.evaluate("window.wasmvision.stats.readyMs")
    raw = browser.stop_tracing()
    ctx.close()
    events = json.loads(raw)
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = thread_names(events)
    wins = windows(events)
    first_ts = min(e["ts"] for e in events if e.get("ts"))
    before, _ = cpu_in(events, names, first_ts, wins[0][0])
    rows = []
    for (lo, hi), t in zip(wins, got["out"]):
        per, _ = cpu_in(events, names, lo, hi)
        rows.append({"wall": (hi - lo) / 1000, "total": t["total"], "worker": per.get(WORKER, 0.0),
                     "pool": per.get(POOL, 0.0), "decode": t["decode"], "preprocess": t["preprocess"],
                     "inference": t["inference"]})
    return {"ready_ms": ready_ms, "worker_before": before.get(WORKER, 0.0), "first": rows[0], "later": rows[1:]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dist", nargs="+", required=True)
    ap.add_argument("--image", default=str(ROOT / "build/photos/chelsea.png"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--later", type=int, default=4)
    ap.add_argument("--json")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    image = Path(a.image)
    out = {i: [] for i in range(len(a.dist))}
    mounts = {f"/wv{i}/": d for i, d in enumerate(a.dist)}
    with Background(mounts={**mounts, "/img/": str(image.parent)}, csp=False) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        for r in range(a.rounds):
            order = list(range(len(a.dist)))
            order = order[r % len(order):] + order[:r % len(order)]
            for i in order:
                v = one_visit(browser, srv, f"/wv{i}/", image, a.later)
                out[i].append(v)
                f = v["first"]
                print(f"round {r} build {i}: ready {v['ready_ms']:.0f} worker CPU before {v['worker_before']:.0f}; "
                      f"first wall {f['wall']:.1f} worker {f['worker']:.1f} pool {f['pool']:.1f}; later wall " +
                      " ".join(f"{x['wall']:.0f}" for x in v["later"]), file=sys.stderr, flush=True)
        browser.close()
    med = statistics.median
    print("| build | ready ms | worker CPU to ready | first: wall / total / worker CPU / compile CPU | "
          "first: decode / preprocess / inference | later: wall / worker CPU / compile CPU | first/later total |")
    print("|---|---|---|---|---|---|---|")
    for i, runs in out.items():
        f = {k: med([v["first"][k] for v in runs]) for k in runs[0]["first"]}
        lt = {k: med([x[k] for v in runs for x in v["later"]]) for k in runs[0]["first"]}
        print(f"| {Path(a.dist[i]).name} | {med([v['ready_ms'] for v in runs]):.0f} | "
              f"{med([v['worker_before'] for v in runs]):.0f} | {f['wall']:.1f} / {f['total']:.1f} / {f['worker']:.1f} / "
              f"{f['pool']:.1f} | {f['decode']:.1f} / {f['preprocess']:.1f} / {f['inference']:.1f} | "
              f"{lt['wall']:.1f} / {lt['worker']:.1f} / {lt['pool']:.1f} | {f['total'] / lt['total']:.2f}x |")
    if a.json:
        Path(a.json).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
