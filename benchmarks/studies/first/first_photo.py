"""The first classify after ready, at several delays after ready, each in a fresh browser context (a first visit),
conditions interleaved round by round: python3 benchmarks/studies/first/first_photo.py [--rounds N] [--delays ...]
Prints per delay the median of the first photo's stages and of the next photos' stages (same page)."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench.common import CHROMIUM_FLAGS  # noqa: E402
from buildtools.server import Background  # noqa: E402

RUN = """async ([url, delay, later]) => {
  const blob = await (await fetch(url)).blob();
  await window.wasmvision.ready;
  const tReady = performance.now();
  if (delay) await new Promise((r) => setTimeout(r, delay));
  const t0 = performance.now();
  const r = await window.wasmvision.classify(blob, {topK: 5});
  const first = {...r.timings_ms, wall: performance.now() - t0};
  const next = [];
  for (let i = 0; i < later; i++) {
    const t1 = performance.now();
    const q = await window.wasmvision.classify(blob, {topK: 5});
    next.push({...q.timings_ms, wall: performance.now() - t1});
  }
  return {ready_ms: tReady, first, next, boot: window.wasmvision.stats.bootTimings};
}"""
STAGES = ("decode", "preprocess", "inference", "postprocess", "total")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dist", nargs="+", default=[str(ROOT / "dist")], help="one or more builds, interleaved")
    ap.add_argument("--image", default=str(ROOT / "build/photos/chelsea.png"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--delays", type=float, nargs="+", default=[0, 0.25, 0.5, 1, 2])
    ap.add_argument("--later", type=int, default=5)
    ap.add_argument("--query", default="engine=simd")
    ap.add_argument("--json")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    image = Path(a.image)
    conds = [(i, d) for i in range(len(a.dist)) for d in a.delays]
    out = {c: [] for c in conds}
    mounts = {f"/wv{i}/": dist for i, dist in enumerate(a.dist)}
    with Background(mounts={**mounts, "/img/": str(image.parent)}, csp=False) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        for r in range(a.rounds):
            order = conds[r % len(conds):] + conds[:r % len(conds)]
            for i, d in order:
                ctx = browser.new_context()
                page = ctx.new_page()
                page.goto(f"{srv.origin}/wv{i}/index.html?{a.query}")
                page.wait_for_function("() => window.wasmvision")
                res = page.evaluate(RUN, [f"/img/{image.name}", d * 1000, a.later])
                out[(i, d)].append(res)
                f = res["first"]
                print(f"round {r} build {i} delay {d}: ready {res['ready_ms']:.0f} first " +
                      " ".join(f"{k} {f[k]:.1f}" for k in STAGES) + " | next total " +
                      " ".join(f"{x['total']:.1f}" for x in res["next"]), file=sys.stderr, flush=True)
                ctx.close()
        browser.close()
    print("| build | delay s | ready ms | first: " + " / ".join(STAGES) + " | later medians | first/median total | first result ms |")
    print("|---|---|---|---|---|---|---|")
    for (i, d), runs in out.items():
        med = lambda xs: statistics.median(xs)  # noqa: E731
        first = {k: med([x["first"][k] for x in runs]) for k in STAGES}
        later = {k: med([y[k] for x in runs for y in x["next"]]) for k in STAGES}
        ready = med([x["ready_ms"] for x in runs])
        result = med([x["ready_ms"] + d * 1000 + x["first"]["wall"] for x in runs])
        print(f"| {i} | {d} | {ready:.0f} | " + " / ".join(f"{first[k]:.1f}" for k in STAGES) + " | " +
              " / ".join(f"{later[k]:.1f}" for k in STAGES) + f" | {first['total'] / later['total']:.2f}x | {result:.0f} |")
    if a.json:
        Path(a.json).write_text(json.dumps({f"{i}:{d}": v for (i, d), v in out.items()}))


if __name__ == "__main__":
    main()
