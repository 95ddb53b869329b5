"""The per-layer table: each multiply-add step's GFLOPS (FLOPs from the plan's shapes / the per-step median
of the instrumented Plan.run) and its share of the Wasm SIMD peak measured in the same browser. Pure functions."""
from __future__ import annotations



def pct(share, suffix="%"):
    return "-" if share is None else f"{100 * share:.0f}{suffix}"


def peak_gflops(res, fma=False):
    """The best plain (mul+add) peak of the run, or with fma=True the relaxed-SIMD (fused multiply-add) one."""
    vals = [(p.get("fma") or {}).get("best_gflops") if fma else p.get("best_gflops") for p in res.get("peak") or []]
    vals = [v for v in vals if v]
    return max(vals) if vals else None


def peak_line(res):
    """Both peaks of the run in one sentence."""
    peak, fma = peak_gflops(res), peak_gflops(res, fma=True)
    if not peak:
        return "Wasm SIMD peak: not measured"
    return (f"Wasm SIMD peak in this Chromium (f32x4 loop, same clang flags): mul+add {peak:.1f} GFLOPS, relaxed_madd "
            + (f"{fma:.1f} GFLOPS" if fma else "not measured"))


def kernel_name(layer):
    label, eng = layer["label"], layer.get("engine")
    if label.startswith("conv2d+depthwise/"):  # a fused step: the first conv and the depthwise conv it feeds
        return "fused " + ("1x1" if label.endswith("/pointwise") else "stem") + " + depthwise"
    if eng == "simd":
        return {"conv2d/pointwise": "sgemm 1x1 conv", "conv2d/depthwise": "depthwise kxk",
                "dense": "sgemm dense", "matmul": "sgemm matmul"}.get(label, "sgemm im2col conv"
                                                                       if label.startswith("conv2d") else label)
    return f"numpy {label}"


def kernel_rows(profile, peak, fma_peak=None):
    """Per kernel: layers, GFLOP, ms, GFLOPS, share of the peak and of the FMA peak (only multiply-add steps)."""
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
        rows.append({**a, "gflops": g, "peak_share": g / peak if g and peak else None,
                     "fma_peak_share": g / fma_peak if g and fma_peak else None})
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


def steps_ms(profile):
    """The graph's time without preemption: a step (~0.01-1 ms) mostly runs within one time slice of a loaded
    core, a whole Plan.run does not, so on a busy machine this sum is well below Plan.run's median."""
    return sum(lay["ms"] for lay in profile.get("layers") or [])


def graph_systems(res, engine="simd"):
    return [(n, s) for n, s in (res.get("systems") or {}).items()
            if s.get("kind") == "graph" and s.get("engine") == engine and s.get("profile")]


def per_layer_markdown(res):
    """One compact table for the README: per kernel and model, GFLOPS and share of the peak (layers, ms); the
    console table and the JSON have every layer."""
    peak = peak_gflops(res)
    graphs = graph_systems(res)
    lines = [peak_line(res) + ". Per kernel, SIMD engine in Pyodide (main thread), per-step medians: GFLOPS, share of "
             "the peak (layers, ms per run)."]
    if not graphs:
        return lines
    per_model = [(s["model"], {r["kernel"]: r for r in kernel_rows(s["profile"], peak)}, s["profile"])
                 for _, s in graphs]
    kernels = list(dict.fromkeys(k for _, rows, _ in per_model for k in rows))
    lines += ["", "| kernel | " + " | ".join(m for m, _, _ in per_model) + " |",
              "|---|" + "---:|" * len(per_model)]
    for k in kernels:
        cells = []
        for _, rows, _ in per_model:
            r = rows.get(k)
            cells.append("-" if r is None else f"{r['gflops']:.1f}, {pct(r['peak_share'])}"
                         f" ({r['layers']}, {r['ms']:.2f})")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("| sum of per-step medians / `Plan.run` median (ms) | " + " | ".join(
        f"{steps_ms(p):.1f} / {p['graph_run_median_ms']:.1f}" for _, _, p in per_model) + " |")
    v2 = per_model[0][2]
    lines += ["", f"{per_model[0][0]} by kind (ms per run): " + ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(v2["by_kind"].items(), key=lambda kv: -kv[1])) + "."]
    return lines


def per_layer_text(res, top=10):
    peak, fma = peak_gflops(res), peak_gflops(res, fma=True)
    out = [peak_line(res)]
    for name, s in graph_systems(res) + graph_systems(res, "numpy"):
        prof = s["profile"]
        out.append(f"{name}: sum of per-step medians {steps_ms(prof):.1f} ms, Plan.run median "
                   f"{prof['graph_run_median_ms']:.1f} ms" + (f", {s['simd_build']} kernel build"
                                                             if s.get("simd_build") else ""))
        out.append(f"  {'kernel':<22}{'layers':>7}{'GFLOP':>8}{'ms':>8}{'GFLOPS':>8}{'%peak':>7}{'%fma':>6}")
        for r in kernel_rows(prof, peak, fma):
            out.append(f"  {r['kernel']:<22}{r['layers']:>7}{r['flops'] / 1e9:>8.3f}{r['ms']:>8.2f}"
                       f"{r['gflops']:>8.1f}{pct(r['peak_share'], ''):>7}{pct(r['fma_peak_share'], ''):>6}")
        out.append(f"  slowest {top} layers:")
        for r in layer_rows(prof, peak, top):
            out.append(f"    {r['name'][:28]:<28} {r['kernel']:<18} out {'x'.join(map(str, r['out'])):<14} "
                       f"{r['flops'] / 1e6:7.1f} MFLOP {r['ms']:6.3f} ms {r['gflops']:6.1f} GFLOPS "
                       f"{pct(r['peak_share'])}")
        out.append("  by kind (ms): " + ", ".join(f"{k}={v:.2f}" for k, v in
                                                  sorted(prof["by_kind"].items(), key=lambda kv: -kv[1])))
    return out
