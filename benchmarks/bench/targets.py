"""The speed targets (docs/perf.md), computed from one run's result dict only. Pure functions."""
from __future__ import annotations

from .common import BASELINE, dig, fmt_ratio, ratio

V2 = "mobilenet_v2"
FAMILIES = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_lite0")
# "The numpy engine no slower than today": its inference stage was 3.95x onnxruntime-web 1 thread in the README's
# run of 2026-11-21 (before the SIMD engine); a ratio to a peer of the same run travels better than milliseconds.
NUMPY_BEFORE_RATIO = 3.95
NOISE = 0.10  # the margin "no slower" and "same speed" allow on 2 shared cores


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

    def yes(ok):
        return "-" if ok is None else ("yes" if ok else "no")

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
