"""The first result's phases, cold (a fresh browser profile) and on a repeat visit (the same profile again).

    python benchmarks/phases.py [--dist dist] [--runs 3] [--out bench-results/phases.json]

From Python (benchmarks/run.py):

    from phases import measure_phases
    table = measure_phases(Path("dist"), runs=3)             # its own Playwright and Chromium
    table = measure_phases(Path("dist"), pw, runs=3)         # a started sync Playwright (or pw.chromium)

Each run opens the page in a new persistent profile (a real disk cache; a throwaway context's in-memory cache
refuses the 10 MB runtime), hands it a photo as soon as the page has parsed, as a user would, and reads the worker's
phase marks (web/worker/phases.js, via window.wasmvision.stats.phases) once the first result is shown. The page then
stays open until it has stored what a repeat visit uses (the memory snapshot; the service worker's cache when the
site has one), and a second page in the same profile is the repeat visit. Every time is ms from the page's
navigation start (the worker's clock is moved onto the page's). The result is JSON: medians over the runs per
phase, plus every run's raw marks.

The site is served by the site's own server (buildtools.server): the same Cache-Control and ETags as
`python3 build.py serve`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from buildtools.chromium import CHROMIUM_ARGS, SNAPSHOT_STORED, chromium_path  # noqa: E402 -- after the path tweak
from buildtools.server import Background  # noqa: E402

STORE_WAIT_S = 20  # a visitor reads the first result meanwhile; the page stores the snapshot ~2 s after boot

# Progress label changes from the first paint on, on the page's clock: the longest pause while loading is what a
# visitor sees as "stuck". Injected before the page's scripts (Playwright bypasses the page's CSP for it).
PROGRESS_RECORDER = """
window.__wvProgress = [];
document.addEventListener("DOMContentLoaded", () => {
  const label = document.querySelector("[data-testid=progress-label]");
  const bar = document.querySelector("[data-testid=progress]");
  if (!label) return;
  const note = () => window.__wvProgress.push([performance.now(), label.textContent, bar ? bar.hidden : false]);
  note();
  new MutationObserver(note).observe(label, {childList: true, characterData: true, subtree: true});
  if (bar) new MutationObserver(note).observe(bar, {attributes: true, attributeFilter: ["hidden"]});
});
"""

FIRST_RESULT = """async (b64) => {
  const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], {type: "image/png"});
  const r = await window.wasmvision.classify(blob, {topK: 5});
  return {first_result: performance.now(), top: r.top.map((p) => [p.index, p.probability]), timings_ms: r.timings_ms};
}"""

PAGE_FACTS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource").map((e) => ({name: e.name, start: e.startTime,
    end: e.responseEnd, bytes: e.encodedBodySize, transferred: e.transferSize, worker: e.workerStart || null}));
  return {origin: performance.timeOrigin, html_end: nav ? nav.responseEnd : null,
    dom_content_loaded: nav ? nav.domContentLoadedEventEnd : null, resources: res,
    controlled: Boolean(navigator.serviceWorker && navigator.serviceWorker.controller),
    stats: JSON.parse(JSON.stringify(window.wasmvision.stats)), progress: window.__wvProgress || []};
}"""

# Stored for the next visit: the memory snapshot (a file in the origin private file system, written last with its
# magic word "wvs1": web/worker/snapshot.js) and, when the site has a service worker, its cache.
STORED = """async (wantSw) => {
  let snap = Boolean(await (%s)());
  // Sites built before round 5 kept it in IndexedDB (so phases_ab.py can compare them).
  if (!snap && (await indexedDB.databases()).some((d) => d.name === "wasmvision-snapshot")) {
    snap = await new Promise((res) => {
      const r = indexedDB.open("wasmvision-snapshot");
      r.onsuccess = () => { const db = r.result;
        if (!db.objectStoreNames.contains("snapshots")) { db.close(); return res(false); }
        const c = db.transaction("snapshots").objectStore("snapshots").count();
        c.onsuccess = () => { db.close(); res(c.result > 0); }; c.onerror = () => { db.close(); res(false); }; };
      r.onerror = () => res(false);
    });
  }
  const offline = document.documentElement.dataset.offline || null;
  return {snapshot: snap, offline, done: snap && (!wantSw || offline === "ready" || offline === "unavailable")};
}""" % SNAPSHOT_STORED


def _r(x):
    return None if x is None else round(float(x), 1)


def _span(marks, name):
    for s in marks["spans"]:
        if s["name"] == name and s["end"] is not None:
            return s
    return None


def visit_phases(facts: dict) -> dict:
    """One visit's phase table (ms): durations, and start/end on the page's clock."""
    marks = facts["stats"].get("phases") or {}
    shift = (marks.get("origin", facts["origin"]) - facts["origin"]) if marks else 0.0  # worker clock -> page clock
    rows: dict = {}

    def add(name, start, end, **extra):
        if start is None or end is None:
            return
        rows[name] = {"start": _r(start), "end": _r(end), "ms": _r(end - start), **extra}

    add("html", 0.0, facts["html_end"])
    add("page_to_worker_start", 0.0, shift)
    for s in marks.get("spans", []):
        if s["end"] is not None and s["name"] not in rows:
            add(s["name"], s["start"] + shift, s["end"] + shift)
    # The runtime's compile (streaming: overlaps its download) and what follows it inside loadPyodide: Python's
    # own start, the stdlib mount and init.
    events = marks.get("wasm_events", [])
    rt = _span(marks, "runtime")
    rt_compiles = [e for e in events if e["span"] == "runtime" and "Streaming" in e.get("api", "")]
    early = _span(marks, "runtime_instantiate")  # the runtime compiled at the worker's start (runtime-start.js)
    if rt and early:
        add("python_start", early["end"] + shift, rt["end"] + shift)
    elif rt and rt_compiles:
        main = max(rt_compiles, key=lambda e: e["end"] - e["start"])  # pyodide.asm.wasm
        add("runtime_wasm_compile_instantiate", main["start"] + shift, main["end"] + shift)
        add("python_start", main["end"] + shift, rt["end"] + shift)
    for span, w in (marks.get("wasm") or {}).items():
        rows.setdefault("wasm_by_span", {})[span] = w
    # Every file: download start/end and whether it came over the network (transferred > 0) or from a cache.
    files = {}
    for e in facts["resources"]:
        name = e["name"].split("?", 1)[0].rsplit("/", 1)[-1]
        files[name] = {"start": _r(e["start"]), "end": _r(e["end"]), "bytes": e["bytes"],
                       "transferred": e["transferred"], "via_sw": e["worker"] is not None and e["worker"] > 0}
    for e in marks.get("files", []):
        name = e["path"].split("?", 1)[0]
        files[name] = {"start": _r(e["start"] + shift), "end": _r(e["end"] + shift), "bytes": e["bytes"],
                       "transferred": e["transferred"], "via_sw": bool(e.get("worker"))}
    stats = facts["stats"]
    out = {"phases": rows, "files": files,
           "ready_ms": _r(stats.get("readyMs")), "first_result_ms": _r(facts["first_result"]),
           "snapshot": (stats.get("bootTimings") or {}).get("snapshot"), "controlled": facts["controlled"],
           "bytes_from_network": sum(f["transferred"] or 0 for f in files.values())}
    out["progress_max_still_ms"], out["progress_max_still_at"] = progress_stall(facts["progress"], out["ready_ms"])
    # The target is about pauses while bytes arrive: up to the end of the last download.
    last_byte = max((f["end"] for f in files.values() if f["end"] is not None), default=None)
    out["last_byte_ms"] = _r(last_byte)
    out["progress_max_still_downloading_ms"], _ = progress_stall(facts["progress"], out["ready_ms"], until=last_byte)
    return out


def progress_stall(progress: list, ready_ms: float | None, until: float | None = None) -> tuple:
    """The longest time the progress label stood still before the page was ready (or, with `until`, among the
    pauses that began before that time, counted up to it), and the label it showed."""
    if not progress or ready_ms is None:
        return None, None
    times = [t for t, _, _ in progress if t <= ready_ms] + [ready_ms]
    labels = [text for t, text, _ in progress if t <= ready_ms] + ["ready"]
    if until is not None:
        keep = [i for i, t in enumerate(times) if t < until]
        times = [times[i] for i in keep] + [min(until, ready_ms)]
        labels = [labels[i] for i in keep] + ["downloads done"]
    best, at = 0.0, None
    for i in range(1, len(times)):
        if times[i] - times[i - 1] > best:
            best, at = times[i] - times[i - 1], labels[i - 1]
    return _r(best), at


def _median_table(visits: list[dict]) -> dict:
    """Medians per phase (ms, start, end) and per file across runs."""
    def med(xs):
        xs = [x for x in xs if x is not None]
        return _r(statistics.median(xs)) if xs else None

    phases, files = {}, {}
    names = []
    for v in visits:
        for n in v["phases"]:
            if n not in names and n != "wasm_by_span":
                names.append(n)
    for n in names:
        got = [v["phases"][n] for v in visits if n in v["phases"]]
        phases[n] = {k: med([g[k] for g in got]) for k in ("ms", "start", "end")}
    wasm = {}
    for v in visits:
        for span, w in v["phases"].get("wasm_by_span", {}).items():
            wasm.setdefault(span, []).append(w)
    wasm = {span: {k: med([w[k] for w in ws]) for k in ("compile_ms", "instantiate_ms", "modules")}
            for span, ws in wasm.items()}
    fnames = sorted({f for v in visits for f in v["files"]})
    for f in fnames:
        got = [v["files"][f] for v in visits if f in v["files"]]
        files[f] = {"start": med([g["start"] for g in got]), "end": med([g["end"] for g in got]),
                    "bytes": got[-1]["bytes"], "transferred": med([g["transferred"] for g in got]),
                    "via_sw": got[-1]["via_sw"]}
    scalars = {k: med([v[k] for v in visits])
               for k in ("ready_ms", "first_result_ms", "progress_max_still_ms", "progress_max_still_downloading_ms",
                         "last_byte_ms", "bytes_from_network")}
    return {**scalars, "runs": len(visits), "phases": phases, "wasm_by_span": wasm, "files": files,
            "snapshot": [v["snapshot"] for v in visits], "controlled": [v["controlled"] for v in visits],
            "progress_max_still_at": [v["progress_max_still_at"] for v in visits]}


def _visit(context, base: str, photo_b64: str) -> dict:
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(base, wait_until="domcontentloaded")
    page.wait_for_function("() => window.wasmvision !== undefined", polling=10)
    first = page.evaluate(FIRST_RESULT, photo_b64)
    # app.js refreshes its stats (the worker's phase marks) right after the first result.
    page.wait_for_function("() => { const p = window.wasmvision.stats.phases;"
                           " return p && p.spans.some((s) => s.name === 'first_classify' && s.end !== null); }",
                           polling=20, timeout=30_000)
    facts = page.evaluate(PAGE_FACTS)
    facts.update(first)
    return page, facts


def _chromium(browser):
    if browser is None:
        return None
    return browser.chromium if hasattr(browser, "chromium") else browser


def measure_phases(dist: Path, browser=None, runs: int = 3, *, photo: Path | None = None,
                   chromium: str | None = None, repeats: int = 1, log=print) -> dict:
    """The phase table of the first result, cold and on a repeat visit: medians over `runs` fresh profiles.

    dist: the built site. browser: None (start Playwright here), a started sync Playwright, or its `.chromium`.
    photo: the image classified (default build/photos/chelsea.png). repeats: repeat visits per profile (the table
    "repeat" is the first; with more, "repeat_last" the last: caches a browser fills on a visit serve the next).
    Returns a JSON-serialisable dict:
    {"cold": table, "repeat": table, "raw": [{"cold": visit, "repeat": visit}, ...], "method": str, ...}.
    """
    import base64

    dist = Path(dist).resolve()
    photo = Path(photo or ROOT / "build" / "photos" / "chelsea.png")
    photo_b64 = base64.b64encode(photo.read_bytes()).decode("ascii")
    want_sw = (dist / "sw.js").exists()
    own = None
    bt = _chromium(browser)
    if bt is None:
        from playwright.sync_api import sync_playwright
        own = sync_playwright().start()
        bt = own.chromium
    raw = []
    try:
        with Background(dist) as srv:
            base, sent = srv.url, srv.counter
            for i in range(runs):
                with tempfile.TemporaryDirectory(prefix="wv-phases-") as prof:
                    ctx = bt.launch_persistent_context(prof, executable_path=chromium or chromium_path(),
                                                       args=CHROMIUM_ARGS, headless=True)
                    try:
                        ctx.add_init_script(PROGRESS_RECORDER)
                        sent.reset()
                        page, facts = _visit(ctx, base, photo_b64)
                        cold = visit_phases(facts)
                        cold["bytes_sent_by_server"] = sent.bytes_sent()
                        cold["bytes_sent_by_path"] = dict(sent.sent)
                        deadline = time.time() + STORE_WAIT_S
                        stored = page.evaluate(STORED, want_sw)
                        while not stored["done"] and time.time() < deadline:
                            time.sleep(0.25)
                            stored = page.evaluate(STORED, want_sw)
                        cold["stored_for_next_visit"] = stored
                        cold["bytes_sent_by_server_with_stores"] = sent.bytes_sent()  # + the offline copy
                        page.close()
                        later = []
                        for _ in range(repeats):
                            time.sleep(1.0)  # let cache writes settle
                            sent.reset()
                            page, facts = _visit(ctx, base, photo_b64)
                            later.append(visit_phases(facts))
                            later[-1]["bytes_sent_by_server"] = sent.bytes_sent()
                            page.close()
                        repeat = later[0]
                    finally:
                        ctx.close()
                raw.append({"cold": cold, "repeat": repeat, **({"repeat_last": later[-1]} if repeats > 1 else {})})
                log(f"phases run {i + 1}/{runs}: cold {cold['first_result_ms']:.0f} ms, repeat "
                    + ", ".join(f"{v['first_result_ms']:.0f}" for v in later) + " ms")
    finally:
        if own is not None:
            own.stop()
    return {
        "method": "medians over runs; each run a fresh persistent Chromium profile (cold), then a second page in "
                  "the same profile (repeat) once the first stored its snapshot/offline cache; times in ms from the "
                  "page's navigation start; photo handed over as soon as the page parsed; phases from the worker's "
                  "performance.now() marks (web/worker/phases.js), files from Resource Timing (transferred = 0: "
                  "served from a cache)",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg": list(__import__("os").getloadavg()),
        "cold": _median_table([r["cold"] for r in raw]),
        "repeat": _median_table([r["repeat"] for r in raw]),
        **({"repeat_last": _median_table([r["repeat_last"] for r in raw])} if repeats > 1 else {}),
        "raw": raw,
    }


# Rows of the printed/markdown table, in the order a first result goes through them.
TABLE_ROWS = ["html", "page_to_worker_start", "manifest", "snapshot_read", "runtime",
              "runtime_wasm_compile_instantiate", "runtime_compile", "runtime_script", "runtime_instantiate",
              "python_start", "code_check",
              "site_files", "snapshot_check", "snapshot_make", "wheels_fetch", "unpack", "import_numpy",
              "import_wasmvision", "model_fetch", "model_wait", "model_load", "first_classify", "snapshot_model",
              "warm_up"]  # the last two: once the worker is idle, or the snapshot before the first request


def markdown(result: dict) -> str:
    """The phase table as markdown: duration (start → end) per phase, cold and repeat."""
    def cell(t, n):
        p = t["phases"].get(n)
        if not p or p["ms"] is None:
            return "–"
        return f"{p['ms']:.0f} ({p['start']:.0f} → {p['end']:.0f})"

    c, r = result["cold"], result["repeat"]
    lines = ["| phase | cold: ms (start → end) | repeat: ms (start → end) |", "|---|---:|---:|"]
    for n in TABLE_ROWS:
        if n in c["phases"] or n in r["phases"]:
            lines.append(f"| {n} | {cell(c, n)} | {cell(r, n)} |")
    for span in sorted(set(c["wasm_by_span"]) | set(r["wasm_by_span"])):
        def w(t):
            x = t["wasm_by_span"].get(span)
            return f"{x['compile_ms']:.0f} + {x['instantiate_ms']:.0f} ({x['modules']:.0f} modules)" if x else "–"
        lines.append(f"| Wasm compile + instantiate in {span} | {w(c)} | {w(r)} |")
    for k in ("ready_ms", "first_result_ms", "progress_max_still_ms", "progress_max_still_downloading_ms",
              "last_byte_ms", "bytes_from_network"):
        lines.append(f"| **{k}** | {c[k]} | {r[k]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="repeat visits per profile")
    ap.add_argument("--photo", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here (default: print it)")
    args = ap.parse_args(argv)
    result = measure_phases(args.dist, runs=args.runs, photo=args.photo, repeats=args.repeats,
                            log=lambda m: print(m, file=sys.stderr))
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    else:
        print(text)
    print(markdown(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
