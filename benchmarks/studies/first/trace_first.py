"""Where the first classify's wall time goes: a Chrome trace of a first visit, the first classify right after ready
(or after --delay s) and --later more; per classify window, each thread's CPU time (sum of its top-level tasks'
thread durations inside the window) and the V8 compile work in it. python3 .../trace_first.py [--dist D] [--js-flags F]"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from first_photo import CHROMIUM_FLAGS, ROOT, Background  # noqa: E402,F401 (the study's paths and server)

RUN = """async ([url, delay, later]) => {
  const blob = await (await fetch(url)).blob();
  await window.wasmvision.ready;
  performance.mark("wv-ready");
  const clock = [Date.now()];
  if (delay) await new Promise((r) => setTimeout(r, delay));
  const out = [];
  for (let i = 0; i <= later; i++) {
    performance.mark(`wv-c${i}-start`);
    const r = await window.wasmvision.classify(blob, {topK: 5});
    performance.mark(`wv-c${i}-end`);
    out.push(r.timings_ms);
    clock.push(Date.now());
  }
  console.log("clock " + JSON.stringify(clock));
  return {out, clock};
}"""
CATEGORIES = ["toplevel", "blink.user_timing", "v8.wasm", "disabled-by-default-v8.compile", "v8", "devtools.timeline",
              "disabled-by-default-devtools.timeline"]


def thread_names(events):
    names = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e["pid"], e["tid"])] = e["args"]["name"]
    return names


def windows(events):
    marks = {}
    for e in events:
        if e.get("cat", "").startswith("blink.user_timing") and e.get("name", "").startswith("wv-"):
            marks.setdefault(e["name"], e["ts"])
    out, i = [], 0
    while f"wv-c{i}-start" in marks and f"wv-c{i}-end" in marks:
        out.append((marks[f"wv-c{i}-start"], marks[f"wv-c{i}-end"]))
        i += 1
    return out


def cpu_in(events, names, lo, hi):
    """thread name -> ms of top-level task CPU (tdur, clipped by the share of its wall inside the window)."""
    per = defaultdict(float)
    compile_ms = defaultdict(float)
    for e in events:
        if e.get("ph") != "X" or "tdur" not in e:
            continue
        s, d = e["ts"], e.get("dur", 0)
        if s >= hi or s + d <= lo or d <= 0:
            continue
        share = (min(hi, s + d) - max(lo, s)) / d
        name = names.get((e["pid"], e["tid"]), str(e["tid"]))
        if e.get("cat") == "toplevel" or e["name"] in ("ThreadControllerImpl::RunTask", "RunTask"):
            per[name] += e["tdur"] * share / 1000
        if "Compil" in e["name"] or "TierUp" in e["name"]:
            compile_ms[f"{name}:{e['name']}"] += e["tdur"] * share / 1000
    return per, compile_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dist", default=str(ROOT / "dist"))
    ap.add_argument("--image", default=str(ROOT / "build/photos/chelsea.png"))
    ap.add_argument("--delay", type=float, default=0)
    ap.add_argument("--later", type=int, default=3)
    ap.add_argument("--query", default="engine=simd")
    ap.add_argument("--save")
    ap.add_argument("--js-flags", default="")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    image = Path(a.image)
    with Background(mounts={"/wv/": a.dist, "/img/": str(image.parent)}, csp=False) as srv, sync_playwright() as p:
        flags = CHROMIUM_FLAGS + ([f"--js-flags={a.js_flags}"] if a.js_flags else [])
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        ctx = browser.new_context()
        page = ctx.new_page()
        browser.start_tracing(page=None, categories=CATEGORIES)
        page.goto(f"{srv.origin}/wv/index.html?{a.query}")
        page.wait_for_function("() => window.wasmvision")
        got = page.evaluate(RUN, [f"/img/{image.name}", a.delay * 1000, a.later])
        timings = got["out"]
        print("clock (ms since epoch: ready, end of each classify):", got["clock"])
        raw = browser.stop_tracing()
        browser.close()
    if a.save:
        Path(a.save).write_bytes(raw)
    events = json.loads(raw)
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = thread_names(events)
    for i, ((lo, hi), t) in enumerate(zip(windows(events), timings)):
        per, comp = cpu_in(events, names, lo, hi)
        top = sorted(per.items(), key=lambda kv: -kv[1])[:8]
        print(f"classify {i}: wall {(hi - lo) / 1000:.1f} ms; stages " +
              " ".join(f"{k} {v:.1f}" for k, v in t.items()))
        print("   thread CPU ms: " + "; ".join(f"{k} {v:.1f}" for k, v in top))
        ctop = sorted(comp.items(), key=lambda kv: -kv[1])[:6]
        print("   compile ms: " + "; ".join(f"{k} {v:.1f}" for k, v in ctop))


if __name__ == "__main__":
    main()
