"""Warm runs in one browser context, in interleaved rounds (the order rotates so no system always goes first):
every system of the run is opened first, warmed up, then measured round by round, so all see the same load.

A system is one row: a name, the page it runs in, a runner (n -> n timed runs), its model and engine, and the
onnxruntime-web 1-thread system of the same model its ratios are taken to."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import browser_page, ort_web, peak, pyodide_peers
from .common import log, stats

V2 = "mobilenet_v2"
VARIANTS = ("mobilenet_v2", "mobilenet_v2-fp16", "mobilenet_v2-int8")  # the site's built-in keys


@dataclass
class System:
    name: str
    page: str
    run: Callable
    kind: str  # "page" (page.classify), "model" (module load + classify), "ort", "peer", "graph"
    model: str = V2
    engine: str | None = None
    runs: int = 0
    meta: dict = field(default_factory=dict)


def ort_name(model, threads=1):
    base = "ort-web 1 thread" if threads == 1 else f"ort-web {threads} threads"
    return base if model == V2 else f"{base} {model}"


def open_all(ctx, plain, isolated, bench):
    """Open every page and return (pages, systems, info)."""
    a = bench.args
    pages, systems, info = {}, [], {}

    def add(system):
        system.runs = system.runs or a.runs
        systems.append(system)

    # onnxruntime-web: the real MobileNetV2 at 1 and 2 threads, each zoo family at 1 thread
    pages["ort"], info["ort-web 1 thread"] = ort_web.open_ort(ctx, plain, 1)
    add(System("ort-web 1 thread", "ort", ort_web.runner(pages["ort"]), "ort", engine="ort-web"))
    if not a.no_threads:
        pages["ort2"], info["ort-web 2 threads"] = ort_web.open_ort(ctx, isolated, 2)
        if not info["ort-web 2 threads"].get("crossOriginIsolated"):
            bench.note("2-thread page is not cross-origin isolated")
        add(System("ort-web 2 threads", "ort2", ort_web.runner(pages["ort2"]), "ort", engine="ort-web"))
    for fam in bench.families:
        key = f"ort:{fam}"
        pages[key], info[ort_name(fam)] = ort_web.open_ort(ctx, plain, 1, f"/work/zoo/{fam}.onnx")
        add(System(ort_name(fam), key, ort_web.runner(pages[key]), "ort", model=fam, engine="ort-web"))

    # wasmvision: one page per engine (its own worker); the page's default model, then bundles by key/URL
    if bench.has_page:
        for engine in a.engines:
            key = f"wv:{engine}"
            # The first photo once a person has had a second to choose it (not the target), measured before the
            # page below opens: that page's own work after ready (its offline copy, its snapshot's store) would share
            # the cores with it.
            if engine == "simd":
                try:
                    info[f"wasmvision page ({engine}) after idle"] = browser_page.first_after_idle(
                        ctx.browser, plain, engine)
                except Exception as exc:
                    bench.note(f"wasmvision page (engine={engine}) first photo after idle failed: {str(exc)[:300]}")
            try:
                pages[key], info[f"wasmvision page ({engine})"] = browser_page.open_wv(ctx, plain, engine)
            except Exception as exc:  # report, keep measuring the others
                bench.note(f"wasmvision page (engine={engine}) failed: {str(exc)[:300]}")
                continue
            ran = info[f"wasmvision page ({engine})"].get("engine")
            if ran != engine:
                bench.note(f"page ?engine={engine} ran engine {ran!r}")
            add(System(f"wasmvision page ({engine})", key, browser_page.page_runner(pages[key]), "page",
                       engine=engine))
            if engine == "simd":  # issue 18's preprocess stage on a 640x427 and a 12-megapixel JPEG
                for label, file in bench.preprocess_photos.items():
                    add(System(f"wasmvision page ({engine}) {label}", key,
                               browser_page.page_runner(pages[key], f"/work/{file}"), "photo", engine=engine,
                               runs=max(a.rounds, a.runs // 2), meta={"photo": label}))
            models = list(VARIANTS if engine == "simd" or a.numpy_variants else VARIANTS[:1])
            models += [f"/work/zoo/{f}.wvb" for f in bench.families]
            for m in models:
                short = m.rsplit("/", 1)[-1].removesuffix(".wvb")
                name = f"wasmvision {short} ({engine})"
                try:
                    info[name] = browser_page.load_model(pages[key], m, engine)
                    browser_page.model_runner(pages[key], m)(1)
                except Exception as exc:
                    bench.note(f"{name} failed to load: {str(exc)[:300]}")
                    continue
                add(System(name, key, browser_page.model_runner(pages[key], m), "model",
                           model=V2 if short.startswith(V2) else short, engine=engine, meta={"bundle": short}))

    # the Pyodide page: peers, and wasmvision's plans with per-step timings. Served cross-origin isolated: there
    # performance.now() (Pyodide's clock) ticks in 5 us, not 100 us, which per-step times of 0.05 ms need.
    pages["pyodide"], info["pyodide"] = pyodide_peers.open_pyodide(ctx, isolated, bench)
    add(System("plain numpy (Pyodide)", "pyodide", pyodide_peers.peer_runner(pages["pyodide"], "_peer_run"), "peer",
               runs=a.peer_runs))
    if "planer" in info["pyodide"]:
        add(System("planer (Pyodide)", "pyodide", pyodide_peers.peer_runner(pages["pyodide"], "_planer_run"),
                   "peer", runs=a.planer_runs))
    if "wasmvision" in info["pyodide"]:
        plans = [(V2, f"/wv/models/{bench.bundle.name}", e) for e in a.engines]
        plans += [(f, f"/work/zoo/{f}.wvb", "simd") for f in bench.families if "simd" in a.engines]
        for model, url, engine in plans:
            key = f"{model}/{engine}"
            try:
                info["pyodide"]["wasmvision"][key] = pyodide_peers.open_plan(
                    pages["pyodide"], key, url, f"/bench/{model}.wvb", engine)
            except Exception as exc:
                bench.note(f"Pyodide plan {key} failed: {str(exc)[-400:]}")
                continue
            label = f"wasmvision graph run{'' if model == V2 else ' ' + model} (Pyodide, {engine})"
            add(System(label, "pyodide", pyodide_peers.profile_runner(pages["pyodide"], key), "graph",
                       model=model, engine=engine, runs=max(2, a.runs // 2), meta={"plan": key}))
    return pages, systems, info


def measure(browser, plain, isolated, bench):
    a = bench.args
    ctx = browser.new_context()
    pages, systems, info = open_all(ctx, plain, isolated, bench)
    bench.result["page_info"] = info
    peaks = bench.result["peak"] = []  # measured before, during and after: the best one is the peak

    def measure_peak():
        if bench.peak_wasm is not None:
            pages["pyodide"].bring_to_front()
            peaks.append(peak.measure(pages["pyodide"]))

    measure_peak()
    for s in systems:  # warm-up
        pages[s.page].bring_to_front()
        s.run(1 if s.kind == "peer" else a.warmup)
    samples = {s.name: [] for s in systems}
    for r in range(a.rounds):
        order = systems[r % len(systems):] + systems[:r % len(systems)]
        for s in order:
            pages[s.page].bring_to_front()
            samples[s.name].append(s.run(max(1, s.runs // a.rounds)))
        measure_peak()
        log(f"round {r + 1}/{a.rounds} done" + (f"; Wasm SIMD peak so far {max(p['best_gflops'] for p in peaks):.1f}"
                                                 " GFLOPS" if peaks else ""))
    out = bench.result["systems"]
    for s in systems:
        head = {"kind": s.kind, "model": s.model, "engine": s.engine, "baseline": ort_name(s.model), **s.meta}
        if s.kind in ("page", "model", "photo"):
            out[s.name] = {**head, **browser_page.summarize(samples[s.name], stats)}
        elif s.kind == "graph":
            layers = info["pyodide"]["wasmvision"][s.meta["plan"]]["layers"]
            prof = pyodide_peers.summarize_profile(samples[s.name], layers, bench.kind_of, stats)
            out[s.name] = {**head, "latency_ms": prof.pop("latency_ms"), "profile": prof,
                           "simd_build": info["pyodide"]["wasmvision"][s.meta["plan"]].get("simd_build")}
        else:
            out[s.name] = {**head, "latency_ms": stats([x for chunk in samples[s.name] for x in chunk])}
    ctx.close()
