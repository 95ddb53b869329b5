"""The link-profile table (pure functions of result["links"], written by links.py): first result per profile, storage
and visit, ours over onnxruntime-web 1 thread (float32 ONNX, and int8 when measured), and the MB sent per visit."""
from __future__ import annotations

from .common import dig, fmt_ratio, ratio

WV, ORT, ORT_INT8 = "wasmvision", "ort-web 1 thread", "ort-web 1 thread int8"
HEADER = ("link", "storage", "visit", "wasmvision ms", "ort-web fp32 ms", "ours/fp32", "ort-web int8 ms", "ours/int8",
          "MB sent: ours", "fp32", "int8")


def _ms(cell):
    return dig(cell, "first_result_ms", "median")


def _mb(cell):
    b = (cell or {}).get("bytes")
    return "-" if b is None else f"{b / 1e6:.1f}"


def link_rows(res):
    """One tuple of HEADER's cells (text) per (profile, storage, visit) measured."""
    links = res.get("links") or {}
    rows = []
    for prof in links.get("profiles") or []:
        by_storage = dig(links, "cells", prof["name"]) or {}
        for storage in ("persistent", "private"):
            for visit in ("cold", "repeat"):
                c = dig(by_storage, storage, visit)
                if not c:
                    continue
                ours, f32, i8 = c.get(WV), c.get(ORT), c.get(ORT_INT8)
                rows.append((prof["name"], storage, visit, *(f"{m:.0f}" if m is not None else "-" for m in (
                    _ms(ours), _ms(f32))), fmt_ratio(ratio(_ms(ours), _ms(f32))),
                    f"{_ms(i8):.0f}" if _ms(i8) is not None else "-", fmt_ratio(ratio(_ms(ours), _ms(i8))),
                    _mb(ours), _mb(f32), _mb(i8)))
    return rows


def _runs(res):
    ns = [dig(sys_, "first_result_ms", "n") for by_s in (dig(res, "links", "cells") or {}).values()
          for by_v in by_s.values() for cell in by_v.values() for sys_ in cell.values()]
    ns = [n for n in ns if n]
    return f"{min(ns)}-{max(ns)}" if ns and min(ns) != max(ns) else (str(ns[0]) if ns else "?")


def caption(res):
    return (f"Link profiles: first result (ms from navigation start, median of {_runs(res)} visits per cell), ours over "
            "onnxruntime-web 1 thread, and the MB the CDN-like server sent per visit (gzip; without the photo).")


def links_text(res):
    rows = link_rows(res)
    if not rows:
        return []
    cells = [HEADER] + rows
    w = [max(len(r[i]) for r in cells) for i in range(len(HEADER))]
    return ["", caption(res)] + ["  ".join(c.ljust(w[i]) if i < 3 else c.rjust(w[i]) for i, c in enumerate(r))
                             for r in cells]


def links_markdown(res):
    rows = link_rows(res)
    if not rows:
        return []
    return ["", caption(res), "", "| " + " | ".join(HEADER) + " |", "|---|---|---|" + "---:|" * (len(HEADER) - 3)] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def links_footer(res):
    m = res.get("machine") or {}
    load = m.get("loadavg_start")
    how = "python benchmarks/run.py --only links" if dig(res, "args", "only") == "links" else "python3 build.py bench"
    return (f"One run of `{how}`, {res.get('started', '?')}, {res.get('browser', 'Chromium')} headless, "
            f"{m.get('cpus', '?')} shared cores" + (f", load average {load[0]:.1f} at the start" if load else "") +
            ". The page ran the site's default model; onnxruntime-web the float32 ONNX and an int8 ONNX of it "
            "(onnxruntime.quantization, static QDQ, per channel). Times move with the machine's load; bytes do not.")
