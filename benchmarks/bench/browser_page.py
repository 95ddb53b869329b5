"""The wasmvision page (dist/index.html, its Web Worker) with ``?engine=``: the page's own classify (its default
model) and, through the public ES module (window.wasmvision.module), any other bundle by URL with the same engine.
A run is one classify(blob) round trip timed from the main thread, with the worker's stage timings."""
from __future__ import annotations

from buildtools.chromium import SNAPSHOT_STORED  # noqa: F401 -- 1 once the page stored its memory snapshot

WV_RUN = """async ([n, url]) => {
  window.__blobs = window.__blobs || {};  // one blob per photo URL
  if (!window.__blobs[url]) window.__blobs[url] = await (await fetch(url)).blob();
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await window.wasmvision.classify(window.__blobs[url], {topK: 5});
    out.push({wall: performance.now() - t0, t: r.timings_ms, engine: r.engine ?? null,
              top: r.top.map(p => [p.index, p.probability])});
  }
  return out;
}"""

WV_FIRST = """async (arg) => {  // a photo URL, or [URL, ms to wait after ready]
  const [url, idleMs] = Array.isArray(arg) ? arg : [arg, 0];
  await window.wasmvision.ready;
  const tReady = performance.now();
  if (idleMs) await new Promise((r) => setTimeout(r, idleMs));  // a person choosing a photo
  const blob = await (await fetch(url)).blob();
  const r = await window.wasmvision.classify(blob, {topK: 5});
  const st = window.wasmvision.stats;  // not part of the contract: the page's boot split when it exposes one
  const boot = st && typeof st === "object" && st.bootTimings ? st.bootTimings : null;
  return {ready_ms: tReady, first_result_ms: performance.now(), top: r.top.map(p => [p.index, p.probability]),
          model: r.model, engine: r.engine ?? null, timings_ms: r.timings_ms, boot_ms: boot};
}"""

# A bundle by URL through the public module, with the page's engine; kept in window.__clf[url].
MODEL_LOAD = """async ([url, engine]) => {
  window.__clf = window.__clf || {};
  const t0 = performance.now();
  const clf = await window.wasmvision.module.load({model: url, engine});
  window.__clf[url] = clf;
  return {load_ms: performance.now() - t0, engine: clf.engine ?? null, model: clf.model ?? null};
}"""

MODEL_RUN = """async ([n, url, img]) => {
  if (!window.__blob) window.__blob = await (await fetch(img)).blob();
  const clf = window.__clf[url];
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await clf.classify(window.__blob, {topK: 5});
    out.push({wall: performance.now() - t0, t: r.timings_ms, engine: r.engine ?? null,
              top: r.top.map(p => [p.index, p.probability])});
  }
  return out;
}"""

IMAGE = "/work/chelsea.png"


IDLE_S = 1.0  # the "first photo after an idle second" row: the page ready, then a person picks a photo


def open_wv(ctx, srv, engine=None, idle_s=0.0):
    """(page, info) after the page's first classification, made right after ready (or ``idle_s`` later); engine
    None = the page's default (auto)."""
    page = ctx.new_page()
    page.goto(f"{srv.origin}/wv/index.html" + (f"?engine={engine}" if engine else ""))
    page.wait_for_function("() => window.wasmvision")
    info = page.evaluate(WV_FIRST, [IMAGE, idle_s * 1000])
    return page, info


def first_after_idle(browser, srv, engine, idle_s=IDLE_S):
    """The first classification ``idle_s`` after ready, on a first visit of its own (a fresh context): its info."""
    ctx = browser.new_context()
    try:
        return {**open_wv(ctx, srv, engine, idle_s)[1], "idle_s": idle_s}
    finally:
        ctx.close()


def page_runner(page, image=IMAGE):
    return lambda n: page.evaluate(WV_RUN, [n, image])


def load_model(page, url, engine):
    return page.evaluate(MODEL_LOAD, [url, engine])


def model_runner(page, url):
    return lambda n: page.evaluate(MODEL_RUN, [n, url, IMAGE])


def summarize(runs, stats):
    """Chunks of classify records -> round trip (wall), the worker's total, the inference stage, every stage."""
    runs = [x for chunk in runs for x in chunk]
    stages = {}
    for x in runs:
        for s, v in (x["t"] or {}).items():
            stages.setdefault(s, []).append(v)
    return {"latency_ms": stats([x["wall"] for x in runs]),
            "classify_total_ms": stats(stages.get("total") or [x["wall"] for x in runs]),
            "inference_ms": stats(stages.get("inference", [])),
            "stages_ms": {s: stats(v) for s, v in stages.items()},
            "engine": runs[-1].get("engine") if runs else None,
            "top5": runs[-1]["top"] if runs else None}
