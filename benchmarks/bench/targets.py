"""The speed targets (docs/perf.md), computed from one run's result dict only. Pure functions."""
from __future__ import annotations

from .common import BASELINE, dig, fmt_ratio, ratio
from .layers import graph_systems, kernel_rows, peak_gflops

V2 = "mobilenet_v2"
FAMILIES = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_lite0")
# "The numpy engine no slower than today": its inference stage was 3.95x onnxruntime-web 1 thread in the README's
# run of 2026-11-21 (before the SIMD engine); a ratio to a peer of the same run travels better than milliseconds.
NUMPY_BEFORE_RATIO = 3.95
NOISE = 0.10  # the margin "no slower" and "same speed" allow on 2 shared cores


def yes(ok):
    """A target's "met" cell: yes, no, or - when this run did not measure it."""
    return "-" if ok is None else ("yes" if ok else "no")


def _find(res, kind, model, engine, bundle=None):
    for name, s in (res.get("systems") or {}).items():
        if s.get("kind") == kind and s.get("model") == model and s.get("engine") == engine and \
                (bundle is None or s.get("bundle") == bundle):
            return name, s
    return None, None


def wv_row(res, model, engine="simd"):
    """The row the SIMD targets use for a model: its fp32 bundle loaded in the engine's page."""
    name, s = _find(res, "model", model, engine, bundle=model)
    if s is None and model == V2:
        name, s = _find(res, "page", model, engine)
    return name, s


def issue8_targets(res):
    """[(target, this run, met)] for the SIMD engine's targets, from this run only."""
    systems = res.get("systems") or {}
    rows = []

    for model in (V2,) + FAMILIES:
        base = dig(systems, BASELINE if model == V2 else f"{BASELINE} {model}", "latency_ms", "median")
        name, s = wv_row(res, model)
        if not base or s is None:
            continue
        inf, trip = ratio(s.get("inference_ms"), base), ratio(s.get("latency_ms"), base)
        extra = ""
        two = dig(systems, "ort-web 2 threads", "latency_ms", "median") if model == V2 else None
        if two and s.get("inference_ms"):
            r2 = s["inference_ms"]["median"] / two
            extra = f"; stretch (faster than 2 threads): {r2:.2f}x of 2 threads, {yes(r2 < 1)}"
        rows.append((f"{model}: SIMD inference stage <= 0.75x onnxruntime-web 1 thread",
                     f"{fmt_ratio(inf)} ({dig(s, 'inference_ms', 'median') or 0:.1f} vs {base:.1f} ms){extra}",
                     yes(inf is not None and inf <= 0.75) if inf is not None else "-"))
        rows.append((f"{model}: SIMD classify round trip <= 1.25x onnxruntime-web 1 thread session.run",
                     f"{fmt_ratio(trip)} ({s['latency_ms']['median']:.1f} vs {base:.1f} ms)",
                     yes(trip is not None and trip <= 1.25)))
    base = dig(systems, BASELINE, "latency_ms", "median")
    name, s = _find(res, "model", V2, "numpy", bundle=V2)
    if s is None:
        name, s = _find(res, "page", V2, "numpy")
    if base and s and s.get("inference_ms"):
        r = s["inference_ms"]["median"] / base
        rows.append((f"numpy engine no slower than before (inference stage, {NUMPY_BEFORE_RATIO:.2f}x before; "
                     f"+{NOISE:.0%} noise margin)", f"{r:.2f}x ({name})",
                     yes(r <= NUMPY_BEFORE_RATIO * (1 + NOISE))))
    _, fp32 = _find(res, "model", V2, "simd", bundle=V2)
    for variant in ("mobilenet_v2-fp16", "mobilenet_v2-int8"):
        _, v = _find(res, "model", V2, "simd", bundle=variant)
        r = ratio(dig(v, "inference_ms"), dig(fp32, "inference_ms"))
        if r is not None:
            rows.append((f"{variant.split('-')[1]} bundle at the speed of fp32 (SIMD inference stage, within "
                         f"{NOISE:.0%})", f"{r:.2f}x of fp32 ({v['inference_ms']['median']:.1f} vs "
                         f"{fp32['inference_ms']['median']:.1f} ms)", yes(r <= 1 + NOISE)))
    return rows


def issue4_targets(res):
    systems, cold = res.get("systems") or {}, res.get("cold_start") or {}
    ort = dig(systems, BASELINE, "latency_ms", "median")
    _, page = _find(res, "page", V2, "simd")
    if page is None:
        _, page = _find(res, "page", V2, "numpy")
    inf = dig(page, "inference_ms", "median")
    graph = dig(systems, "wasmvision graph run (Pyodide, simd)", "latency_ms", "median") or \
        dig(systems, "wasmvision graph run (Pyodide, numpy)", "latency_ms", "median")
    peer = dig(systems, "plain numpy (Pyodide)", "latency_ms", "median")
    cold_wv = dig(cold, "wasmvision", "empty_cache", "first_result_ms", "median")
    cold_ort = dig(cold, BASELINE, "empty_cache", "first_result_ms", "median")
    rep = dig(cold, "wasmvision", "warm_cache", "first_result_ms", "median")
    rows = []
    if ort and inf:
        rows.append(("warm latency <= 3.0x onnxruntime-web 1 thread", f"{inf / ort:.2f}x (inference stage, page "
                     f"default engine)", "yes" if inf / ort <= 3.0 else "no"))
    if peer and graph:
        rows.append((">= 10x faster than the plain-numpy peer, same Pyodide", f"{peer / graph:.2f}x (graph vs peer)",
                     "yes" if peer / graph >= 10 else "no"))
    if cold_wv and cold_ort:
        rows.append(("first result, empty cache <= 2.0x onnxruntime-web", f"{cold_wv / cold_ort:.2f}x "
                     f"({cold_wv:.0f} vs {cold_ort:.0f} ms)", "yes" if cold_wv / cold_ort <= 2.0 else "no"))
    if rep:
        rows.append(("first result, repeat visit <= 1 s", f"{rep:.0f} ms", "yes" if rep <= 1000 else "no"))
    return rows


def targets_markdown(title, rows):
    if not rows:
        return []
    return [f"| target ({title}) | this run | met |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]


FIRST_PHOTO_MARGIN = 0.25  # "the first photo is as fast as the tenth": first classify total within 25 % of the median
ROUND_TRIP_18 = {V2: 0.8, "mobilenet_v3_large": 0.8, "efficientnet_lite0": 0.8, "mobilenet_v3_small": 1.25}
SHARE_18 = {"depthwise kxk": 0.40, "sgemm dense": 0.30}  # of the Wasm SIMD peak (mul+add), per kernel


def first_photo_line(res, engine="simd", when=""):
    """The first classify after ready, stage by stage, beside the same page's stage medians: (text, total ratio).
    when: "" (right after ready: the target) or " after idle" (a fresh page's first photo an idle second later)."""
    first = dig(res, "page_info", f"wasmvision page ({engine}){when}", "timings_ms") or {}
    _, page = _find(res, "page", V2, engine)
    warm = (page or {}).get("stages_ms") or {}
    if not first:
        return None, None
    parts = [f"{k} {first[k]:.1f}" + (f" (median {warm[k]['median']:.1f})" if dig(warm, k, "median") else "")
             for k in ("decode", "preprocess", "inference", "postprocess", "total") if first.get(k) is not None]
    return ", ".join(parts), ratio(first.get("total"), dig(warm, "total", "median"))


def issue18_targets(res):
    """[(target, this run, met)] for issue 18's rows (docs/perf.md), from this run only."""
    systems = res.get("systems") or {}
    rows = []

    base = dig(systems, BASELINE, "latency_ms", "median")
    _, v2 = wv_row(res, V2)
    inf = ratio(dig(v2, "inference_ms"), base)
    if inf is not None:
        rows.append(("mobilenet_v2: SIMD inference stage <= 0.5x onnxruntime-web 1 thread",
                     f"{fmt_ratio(inf)} ({v2['inference_ms']['median']:.1f} vs {base:.1f} ms)", yes(inf <= 0.5)))
    for model, limit in ROUND_TRIP_18.items():
        b = dig(systems, BASELINE if model == V2 else f"{BASELINE} {model}", "latency_ms", "median")
        _, s = wv_row(res, model)
        trip = ratio(dig(s, "latency_ms"), b)
        if trip is not None:
            rows.append((f"{model}: classify round trip <= {limit}x onnxruntime-web 1 thread session.run",
                         f"{fmt_ratio(trip)} ({s['latency_ms']['median']:.1f} vs {b:.1f} ms)", yes(trip <= limit)))
    _, page = _find(res, "page", V2, "simd")
    photos = [((dig(res, "inputs", "image") or "the bench image").rsplit("/", 1)[-1], page)]  # + issue 18's photos
    photos += [(p["photo"], p) for p in systems.values() if p.get("kind") == "photo" and p.get("engine") == "simd"]
    for image, p in photos:
        pre, stages = dig(p, "stages_ms", "preprocess"), dig(p, "stages_ms") or {}
        if pre and base:
            rows.append((f"preprocess stage <= 0.1x onnxruntime-web mobilenet_v2 session.run ({image})",
                         f"{pre['median'] / base:.2f}x ({pre['median']:.1f} vs {base:.1f} ms; best {pre['min']:.1f}; "
                         f"decode {dig(stages, 'decode', 'median') or 0:.1f})", yes(pre["median"] / base <= 0.1)))
    text, first = first_photo_line(res)
    if text:
        rows.append((f"first classify after ready as fast as the later ones (total within {FIRST_PHOTO_MARGIN:.0%})",
                     f"{fmt_ratio(first)} of the median; first photo: {text} ms",
                     yes(None if first is None else first <= 1 + FIRST_PHOTO_MARGIN)))
    text, idle = first_photo_line(res, when=" after idle")
    if text:  # not a target: what a person sees, who takes a while to choose a photo once the page says ready
        after = dig(res, "page_info", "wasmvision page (simd) after idle", "idle_s") or 0
        rows.append((f"(not a target) first classify {after:g} s after ready, a fresh page: total vs the median",
                     f"{fmt_ratio(idle)} of the median; first photo: {text} ms", "-"))
    peak, fma = peak_gflops(res), peak_gflops(res, fma=True)
    graphs = [s for _, s in graph_systems(res) if s.get("model") == V2] or [s for _, s in graph_systems(res)]
    if graphs and peak:
        by_kernel = {r["kernel"]: r for r in kernel_rows(graphs[0]["profile"], peak, fma)}
        for kernel, share in SHARE_18.items():
            r = by_kernel.get(kernel)
            if r and r["peak_share"] is not None:
                fma_txt = f", {r['fma_peak_share']:.0%} of the FMA peak {fma:.1f}" if r["fma_peak_share"] else ""
                fused = sum(x["layers"] for k, x in by_kernel.items() if k.endswith("+ depthwise"))
                scope = f", {r['layers']} layers; {fused} more run fused with the conv before them" if (
                    fused and kernel == "depthwise kxk") else ""
                rows.append((f"{kernel}: >= {share:.0%} of the Wasm SIMD peak ({graphs[0].get('simd_build') or '?'} "
                             f"build{scope})", f"{r['peak_share']:.0%} ({r['gflops']:.1f} of {peak:.1f} GFLOPS{fma_txt})",
                             yes(r["peak_share"] >= share)))
    return rows
