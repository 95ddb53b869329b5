"""Tables from a result dict (pure functions: no browser, no timing): the console table and the README's Markdown
block (with the targets of targets.py, the per-layer table of layers.py, the start-up phase table); the block writer.
Every browser ratio is to onnxruntime-web 1 thread on the same model, measured in the same run."""
from __future__ import annotations

from pathlib import Path

from .common import BASELINE, dig, fmt_ratio, ratio
from .engines import lines as engine_table
from .layers import graph_systems, per_layer_markdown, per_layer_text
from .links_report import links_footer, links_markdown, links_text
from .targets import (FAMILIES, issue4_targets, issue8_targets, issue18_targets,  # noqa: F401 (FAMILIES: run.py)
                      targets_markdown)

README_START, README_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
LINKS_MARKERS = ("<!-- link-table:start -->", "<!-- link-table:end -->")  # its own block: `--only links` writes it


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


# ------------------------------------------------------------------------------------------------ rows
def system_rows(res):
    """(label, median, p90, ratio text) for every warm system, with its inference stage, then cold, then native."""
    rows, rs = [], ratios(res)
    for name, s in (res.get("systems") or {}).items():
        lat = s.get("latency_ms")
        if not lat:
            continue
        what = {"page": "classify round trip", "model": "classify round trip", "photo": "classify round trip",
                "graph": "Plan.run"}.get(s.get("kind"), "")
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


def engine_lines(res):
    """Per engine (benchmarks/bench/engines.py): ready, first result, repeat visit, warm round trip."""
    rows = engine_table(res)
    return ["", "Per engine (first and repeat visit of the public module, same photo):", ""] + rows if rows else []


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
    for title, tr in (("issue 8", issue8_targets(res)), ("issue 4", issue4_targets(res)),
                      ("issue 18", issue18_targets(res))):
        if tr:
            lines.append("")
            lines += [f"target ({title}): {a}: {b} -> met: {c}" for a, b, c in tr]
    lines += [""] + stage_lines(res)
    lines.append("")
    lines += per_layer_text(res)
    lines += phases_lines(res)
    lines += links_text(res)
    lines += engine_lines(res)
    return "\n".join(lines)


def markdown_table(res):
    """The README block."""
    lines = ["| system | median ms | p90 ms | vs onnxruntime-web 1 thread (same model) |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b:.1f} | {c:.1f} | {d} |" for a, b, c, d in system_rows(res)]
    for title, tr in (("issue 8", issue8_targets(res)), ("issue 4", issue4_targets(res)),
                      ("issue 18", issue18_targets(res))):
        if tr:
            lines += [""] + targets_markdown(title, tr)
    stages = stage_lines(res)
    if stages:
        lines += ["", stages[0], ""] + [f"- {x}" for x in stages[1:]]
    if graph_systems(res):
        lines += [""] + per_layer_markdown(res)
    lines += phases_lines(res)
    lines += engine_lines(res)
    model = dig(res, "page_info", "wasmvision page (simd)", "model") or \
        dig(res, "page_info", "wasmvision page (numpy)", "model") or {}
    if model.get("key"):
        lines += ["", f"The page rows ran the site's default model `{model['key']}` (weights stored as in that bundle, "
                      "computed in float32); the `mobilenet_v2 (engine)` rows load the float32 bundle; "
                      "onnxruntime-web ran the float32 ONNX model."]
    lines += ["", footer(res)]
    return "\n".join(lines)


def links_block(res):
    """The README's link-table block (empty when the run measured no link profile)."""
    lines = links_markdown(res)
    return "\n".join(lines[1:] + ["", links_footer(res)]) if lines else ""


def write_readme(readme: Path, block: str, markers: tuple[str, str] = (README_START, README_END)) -> bool:
    """Replace the text between the markers; False (and a note) when the markers are missing."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    start_mark, end_mark = markers
    start, end = text.find(start_mark), text.find(end_mark)
    if start < 0 or end < start:
        print(f"note: {readme} has no {start_mark} ... {end_mark} block; table not written")
        return False
    new = text[:start + len(start_mark)] + "\n" + block.strip() + "\n" + text[end:]
    readme.write_text(new, encoding="utf-8")
    print(f"updated the benchmark table in {readme}")
    return True
