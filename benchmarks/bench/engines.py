"""Per engine (Chromium, Firefox ESR, WebKitGTK with and without Safari's storage features): a first visit and a
repeat visit of the public module in a fresh browser, on the same photo: ready, first result, repeat-visit ready,
warm round trip, where the snapshot lives, and the worker's start-up phases of the first visit (where each engine's
time goes). The browsers are started by buildtools/engines_drivers (the engine tests use the same code)."""
from __future__ import annotations

from buildtools.engines_drivers import ENGINES, WEBKIT_STORAGE_FEATURES, EngineUnavailable, start
from buildtools.engines_drivers.visits import module_visit

from .common import BENCH_DIR, log, stats

VARIANTS = {name: {} for name in ENGINES} | {"webkit-storage": {"features": WEBKIT_STORAGE_FEATURES}}
METHOD = ("A fresh browser per run; the page is benchmarks/pages/blank.html, into which wasmvision.mjs is imported "
          "(same origin). ready = performance.now() when load() resolves, first result = when the first classify "
          "of {photo} answers (both from navigation start); repeat = ready of a second visit in the same browser "
          "once the first stored its snapshot (waits at most 60 s); warm = median of {warm} more classify round "
          "trips on the first visit. Phases: the worker's spans on the first visit (web/worker/phases.js).")


def spans_ms(visit) -> dict:
    """The worker's start-up spans of a visit: duration and start on the page's clock (ms), with the Wasm compile
    time spent inside each."""
    marks = visit.phases or {}
    shift = marks.get("origin", visit.page_origin) - visit.page_origin
    wasm = marks.get("wasm") or {}
    out = {"worker_started": {"start": round(shift + (marks.get("worker_started") or 0), 1), "ms": None}}
    for s in marks.get("spans", []):
        if s["end"] is None or s["name"] in out:
            continue
        out[s["name"]] = {"start": round(s["start"] + shift, 1), "ms": round(s["end"] - s["start"], 1),
                          "wasm_compile_ms": (wasm.get(s["name"]) or {}).get("compile_ms")}
    return out


def one_run(name: str, options: dict, base: str, photo, warm: int) -> dict:
    page, module = base + "pages/blank.html", base + "wv/wasmvision.mjs"
    with start(name.partition("-")[0], **options) as driver:
        first = module_visit(driver, page, module, photo, warm=warm)
        second = module_visit(driver, page, module, photo, warm=0, store_wait_s=0)
    return {"ready_ms": first.ready_ms, "first_result_ms": first.first_result_ms, "repeat_ready_ms": second.ready_ms,
            "repeat_first_result_ms": second.first_result_ms, "warm_ms": first.warm_median_ms,
            "snapshot_first": first.snapshot, "snapshot_repeat": second.snapshot, "store": first.snapshot_store,
            "top1": [first.top[0].index, round(first.top[0].probability, 6)], "warm_stages_ms": first.stages_ms,
            "phases_first": spans_ms(first),
            "phases_repeat": spans_ms(second)}


def summary(runs: list[dict]) -> dict:
    keys = ("ready_ms", "first_result_ms", "repeat_ready_ms", "repeat_first_result_ms", "warm_ms")
    out = {k: stats([r[k] for r in runs if r.get(k) is not None]) for k in keys}
    out["restored"] = sum(r["snapshot_repeat"] == "restored" for r in runs)
    out["store"] = sorted({r["store"] for r in runs if r["store"]})
    out["top1"] = sorted({tuple(r["top1"]) for r in runs})
    out["runs"] = runs
    return out


def measure(bench) -> None:
    from buildtools.server import Background

    a = bench.args
    wanted = [v for v in (a.browser_engines or list(VARIANTS)) if v in VARIANTS]
    out = {}
    with Background(mounts={"/wv/": str(bench.dist), "/pages/": str(BENCH_DIR / "pages")},
                    cache_control=a.cache_control) as srv:
        for name in wanted:
            runs = []
            for _ in range(a.engine_runs):
                try:
                    runs.append(one_run(name, VARIANTS[name], srv.url, bench.image, a.engine_warm))
                except EngineUnavailable as exc:
                    bench.note(f"engines: {name} skipped: {exc}")
                    break
                except Exception as exc:  # noqa: BLE001 -- one engine's failure must not end the benchmark
                    bench.note(f"engines: {name} failed: {str(exc)[-300:]}")
            if runs:
                out[name] = summary(runs)
                s = out[name]
                log(f"engines {name}: ready {s['ready_ms']['median']:.0f} ms, first result "
                    f"{s['first_result_ms']['median']:.0f} ms, repeat {s['repeat_ready_ms']['median']:.0f} ms, "
                    f"warm {s['warm_ms']['median']:.1f} ms")
    bench.result["engines"] = out
    bench.result["engines_method"] = METHOD.format(photo=bench.image.name, warm=a.engine_warm)


def lines(res) -> list[str]:
    """The per-engine table (markdown), then the first visit's start-up spans per engine, for report.py."""
    eng = res.get("engines") or {}
    if not eng:
        return []

    def med(s, k):
        v = (s.get(k) or {}).get("median")
        return "-" if v is None else f"{v:.0f}"
    out = ["| engine | ready ms | first result ms | repeat ready ms | repeat / first | warm round trip ms | "
           "snapshot store | restored |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, s in eng.items():
        r, f = (s.get("repeat_ready_ms") or {}).get("median"), (s.get("ready_ms") or {}).get("median")
        ratio = f"{r / f:.2f}x" if r and f else "-"
        warm = (s.get("warm_ms") or {}).get("median")
        out.append(f"| {name} | {med(s, 'ready_ms')} | {med(s, 'first_result_ms')} | {med(s, 'repeat_ready_ms')} | "
                   f"{ratio} | {'-' if warm is None else f'{warm:.1f}'} | {', '.join(s['store']) or 'none'} | "
                   f"{s['restored']}/{len(s['runs'])} |")
    spans = phase_lines(res)
    if spans:
        out += ["", "First visit's start-up spans (ms; in brackets the Wasm compile inside the span):", ""] + spans
    return out


def phase_lines(res, visit: str = "phases_first") -> list[str]:
    """The worker's start-up spans per engine (medians over runs, ms; in brackets the Wasm compile inside the span):
    where each engine's first visit goes."""
    eng = res.get("engines") or {}
    names = [n for n in eng if any(r.get(visit) for r in eng[n]["runs"])]
    if not names:
        return []
    spans = []
    for n in names:
        for r in eng[n]["runs"]:
            spans += [k for k in r[visit] if k not in spans]

    def cell(n, span):
        rows = [r[visit][span] for r in eng[n]["runs"] if span in r[visit]]
        if not rows:
            return "-"
        key = "ms" if rows[0]["ms"] is not None else "start"
        v = stats([x[key] for x in rows])["median"]
        wasm = [x.get("wasm_compile_ms") for x in rows if x.get("wasm_compile_ms")]
        text = f"{v:.0f}" if key == "ms" else f"at {v:.0f}"
        return text + (f" ({stats(wasm)['median']:.0f})" if wasm else "")
    out = ["| span | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    out += [f"| {span} | " + " | ".join(cell(n, span) for n in names) + " |" for span in spans]
    return out
