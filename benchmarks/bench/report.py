"""Tables from a result dict (pure functions: no browser, no timing): the console table, the README's Markdown block,
issue 4's and issue 8's targets, the per-layer GFLOPS table, issue 12's phase table; the README block writer.
Every browser ratio is to onnxruntime-web 1 thread on the same model, measured in the same run."""
from __future__ import annotations

from pathlib import Path

from .common import BASELINE, dig, fmt_ratio, ratio

README_START, README_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
V2 = "mobilenet_v2"
FAMILIES = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_lite0")
# "The numpy engine no slower than today": its inference stage was 3.95x onnxruntime-web 1 thread in the README's
# run of 2026-11-21 (before the SIMD engine); a ratio to a peer of the same run travels better than milliseconds.
NUMPY_BEFORE_RATIO = 3.95
NOISE = 0.10  # the margin "no slower" and "same speed" allow on 2 shared cores


# ------------------------------------------------------------------------------------------------ ratios
def baseline_of(res, name):
    """The onnxruntime-web 1-thread system a row is compared with (same model), or None."""
    systems = res.get("systems") or {}
    b = (systems.get(name) or {}).get("baseline") or BASELINE
    return systems.get(b)


def ratios(res):
    """{system: {"latency": x, "inference": x}}: medians over the same model's onnxruntime-web 1 thread."""
    out = {}
    for name, s in (res.get("systems") or {}).items():
        base = dig(baseline_of(res, name), "latency_ms")
        out[name] = {"latency": ratio(s.get("latency_ms"), base), "inference": ratio(s.get("inference_ms"), base)}
    return out


def peak_gflops(res):
    vals = [p.get("best_gflops") for p in res.get("peak") or []]
    vals = [v for v in vals if v]
    return max(vals) if vals else None


# ------------------------------------------------------------------------------------------------ per layer
def kernel_name(layer):
    label, eng = layer["label"], layer.get("engine")
    if eng == "simd":
        return {"conv2d/pointwise": "sgemm 1x1 conv", "conv2d/depthwise": "depthwise kxk",
                "dense": "sgemm dense", "matmul": "sgemm matmul"}.get(label, "sgemm im2col conv"
                                                                       if label.startswith("conv2d") else label)
    return f"numpy {label}"


def kernel_rows(profile, peak):
    """Per kernel: layers, GFLOP, ms, GFLOPS, share of the peak (only steps that do multiply-adds)."""
    agg = {}
    for lay in profile.get("layers") or []:
        if not lay.get("flops"):
            continue
        k = kernel_name(lay)
        a = agg.setdefault(k, {"kernel": k, "layers": 0, "flops": 0, "ms": 0.0})
        a["layers"] += 1
        a["flops"] += lay["flops"]
        a["ms"] += lay["ms"]
    rows = []
    for a in sorted(agg.values(), key=lambda a: -a["ms"]):
        g = a["flops"] / a["ms"] / 1e6 if a["ms"] > 0 else None
        rows.append({**a, "gflops": g, "peak_share": g / peak if g and peak else None})
    return rows


def layer_rows(profile, peak, top=None):
    rows = []
    for lay in profile.get("layers") or []:
        if not lay.get("flops"):
            continue
        g = lay["flops"] / lay["ms"] / 1e6 if lay["ms"] > 0 else None
        rows.append({**lay, "kernel": kernel_name(lay), "gflops": g, "peak_share": g / peak if g and peak else None})
    rows.sort(key=lambda r: -r["ms"])
    return rows[:top] if top else rows


def graph_systems(res, engine="simd"):
    return [(n, s) for n, s in (res.get("systems") or {}).items()
            if s.get("kind") == "graph" and s.get("engine") == engine and s.get("profile")]


def per_layer_markdown(res, top=8):
    peak = peak_gflops(res)
    lines = []
    head = f"Wasm SIMD peak in this Chromium (f32x4 mul+add loop, same clang flags): **{peak:.1f} GFLOPS**" \
        if peak else "Wasm SIMD peak: not measured"
    lines.append(head + ".")
    for name, s in graph_systems(res):
        prof = s["profile"]
        lines += ["", f"{s['model']}, SIMD engine, `Plan.run` {prof['graph_run_median_ms']:.1f} ms (Pyodide, main "
                      "thread; per-step medians):", "",
                  "| kernel | layers | GFLOP | ms | GFLOPS | share of peak |", "|---|---:|---:|---:|---:|---:|"]
        for r in kernel_rows(prof, peak):
            lines.append(f"| {r['kernel']} | {r['layers']} | {r['flops'] / 1e9:.3f} | {r['ms']:.2f} | "
                         f"{r['gflops']:.1f} | {fmt_ratio(r['peak_share'] and 100 * r['peak_share'], '%')} |")
        rest = {k: v for k, v in prof["by_kind"].items()}
        lines.append("")
        lines.append("ms per run by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                      sorted(rest.items(), key=lambda kv: -kv[1])) + ".")
    return lines


def per_layer_text(res, top=10):
    peak = peak_gflops(res)
    out = [f"Wasm SIMD peak (same Chromium): {peak:.1f} GFLOPS" if peak else "Wasm SIMD peak: not measured"]
    for name, s in graph_systems(res) + graph_systems(res, "numpy"):
        prof = s["profile"]
        out.append(f"{name}: Plan.run median {prof['graph_run_median_ms']:.1f} ms")
        out.append(f"  {'kernel':<22}{'layers':>7}{'GFLOP':>8}{'ms':>8}{'GFLOPS':>8}{'%peak':>7}")
        for r in kernel_rows(prof, peak):
            out.append(f"  {r['kernel']:<22}{r['layers']:>7}{r['flops'] / 1e9:>8.3f}{r['ms']:>8.2f}"
                       f"{r['gflops']:>8.1f}{fmt_ratio(r['peak_share'] and 100 * r['peak_share'], ''):>7}")
        out.append(f"  slowest {top} layers:")
        for r in layer_rows(prof, peak, top):
            out.append(f"    {r['name'][:28]:<28} {r['kernel']:<18} out {'x'.join(map(str, r['out'])):<14} "
                       f"{r['flops'] / 1e6:7.1f} MFLOP {r['ms']:6.3f} ms {r['gflops']:6.1f} GFLOPS "
                       f"{fmt_ratio(r['peak_share'] and 100 * r['peak_share'], '%')}")
        out.append("  by kind (ms): " + ", ".join(f"{k}={v:.2f}" for k, v in
                                                  sorted(prof["by_kind"].items(), key=lambda kv: -kv[1])))
    return out


# ------------------------------------------------------------------------------------------------ targets
def _find(res, kind, model, engine, bundle=None):
    for name, s in (res.get("systems") or {}).items():
        if s.get("kind") == kind and s.get("model") == model and s.get("engine") == engine and \
                (bundle is None or s.get("bundle") == bundle):
            return name, s
    return None, None


def wv_row(res, model, engine="simd"):
    """The row issue 8's targets use for a model: its fp32 bundle loaded in the engine's page."""
    name, s = _find(res, "model", model, engine, bundle=model)
    if s is None and model == V2:
        name, s = _find(res, "page", model, engine)
    return name, s


def issue8_targets(res):
    """[(target, this run, met)] for issue 8, from this run only."""
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


# ------------------------------------------------------------------------------------------------ rows
def system_rows(res):
    """(label, median, p90, ratio text) for every warm system, with its inference stage, then cold, then native."""
    rows, rs = [], ratios(res)
    for name, s in (res.get("systems") or {}).items():
        lat = s.get("latency_ms")
        if not lat:
            continue
        what = {"page": "classify round trip", "model": "classify round trip", "graph": "Plan.run"}.get(s.get("kind"), "")
        rows.append((f"{name}" + (f", {what}" if what else ""), lat["median"], lat["p90"], fmt_ratio(rs[name]["latency"])))
        if s.get("inference_ms"):
            inf = s["inference_ms"]
            rows.append((f"{name}, inference stage", inf["median"], inf["p90"], fmt_ratio(rs[name]["inference"])))
    cold = res.get("cold_start") or {}
    for mode, what in (("empty_cache", "first result, empty cache"), ("warm_cache", "first result, repeat visit")):
        b = dig(cold, BASELINE, mode, "first_result_ms", "median")
        for k, v in cold.items():
            c = v.get(mode) or {}
            s = c.get("first_result_ms")
            if s:
                mb = f", {c['bytes_page'] / 1e6:.1f} MB downloaded" if c.get("bytes_page") is not None else ""
                rows.append((f"{what}: {k}{mb}", s["median"], s["p90"], fmt_ratio(ratio(s, b))))
    nat = res.get("native") or {}
    nb = dig(nat, "onnxruntime native CPU 1 thread", "median")
    for k, s in nat.items():
        rows.append((f"native: {k}", s["median"], s["p90"], f"{fmt_ratio(ratio(s, nb))} of onnxruntime native"))
    return rows


def stage_lines(res):
    """The worker's stage medians for each page/model row: where a classify round trip goes."""
    out = []
    for name, s in (res.get("systems") or {}).items():
        st = s.get("stages_ms") or {}
        if st and s.get("engine") == "simd":
            out.append(f"{name}: " + ", ".join(f"{k} {v['median']:.1f}" for k, v in st.items() if v))
    if out:
        out.insert(0, "Stage medians of the SIMD classify round trips (ms, the worker's timings_ms):")
    return out


def phases_lines(res):
    ph = res.get("phases")
    if not ph:
        return []
    if isinstance(ph, dict) and isinstance(ph.get("table"), str):
        return ["", ph["table"]]
    return ["", "Phases (issue 12): " + ", ".join(f"{k}={v}" for k, v in ph.items() if not isinstance(v, (dict, list)))]


def footer(res):
    m = res.get("machine") or {}
    load = m.get("loadavg_start")
    quick = " --quick" if dig(res, "args", "quick") else ""
    wall = f", {res['wall_s'] / 60:.1f} min wall" if res.get("wall_s") else ""
    return (f"One run of `python3 build.py bench{quick}`, {res.get('started', '?')}, {res.get('browser', 'Chromium')} "
            f"headless, {m.get('cpus', '?')} shared cores" + (f", load average {load[0]:.1f} at the start" if load else "")
            + wall + ". Zoo models (V3-L, V3-S, EfficientNet-Lite0) have seeded random weights (speed only); "
            "ratios are to onnxruntime-web 1 thread on the same ONNX model in the same run.")


def table(res):
    """The console table."""
    rows = system_rows(res)
    hdr = ("system", "median ms", "p90 ms", "vs ort-web 1t")
    cells = [hdr] + [(a, f"{b:.1f}", f"{c:.1f}", d) for a, b, c, d in rows]
    w = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in cells]
    for title, tr in (("issue 8", issue8_targets(res)), ("issue 4", issue4_targets(res))):
        if tr:
            lines.append("")
            lines += [f"target ({title}): {a}: {b} -> met: {c}" for a, b, c in tr]
    lines += [""] + stage_lines(res)
    lines.append("")
    lines += per_layer_text(res)
    lines += phases_lines(res)
    return "\n".join(lines)


def markdown_table(res):
    """The README block."""
    lines = ["| system | median ms | p90 ms | vs onnxruntime-web 1 thread (same model) |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b:.1f} | {c:.1f} | {d} |" for a, b, c, d in system_rows(res)]
    for title, tr in (("issue 8", issue8_targets(res)), ("issue 4", issue4_targets(res))):
        if tr:
            lines += [""] + targets_markdown(title, tr)
    stages = stage_lines(res)
    if stages:
        lines += ["", stages[0], ""] + [f"- {x}" for x in stages[1:]]
    if graph_systems(res):
        lines += [""] + per_layer_markdown(res)
    lines += phases_lines(res)
    model = dig(res, "page_info", "wasmvision page (simd)", "model") or \
        dig(res, "page_info", "wasmvision page (numpy)", "model") or {}
    if model.get("key"):
        lines += ["", f"The page rows ran the site's default model `{model['key']}` (weights stored as in that bundle, "
                      "computed in float32); the `mobilenet_v2 (engine)` rows load the float32 bundle; "
                      "onnxruntime-web ran the float32 ONNX model."]
    lines += ["", footer(res)]
    return "\n".join(lines)


def write_readme(readme: Path, block: str) -> bool:
    """Replace the text between the bench-table markers; False (and a note) when the markers are missing."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        print(f"note: {readme} has no {README_START} ... {README_END} block; table not written")
        return False
    new = text[:start + len(README_START)] + "\n" + block.strip() + "\n" + text[end:]
    readme.write_text(new, encoding="utf-8")
    print(f"updated the benchmark table in {readme}")
    return True
