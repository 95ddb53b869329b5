"""The benchmark's pure parts (benchmarks/bench/report.py, common.py, run.py's options) on a canned result dict:
ratios, targets, the per-layer table, the tables and the README block. No browser, no timing assertion."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import common, layers, report, targets  # noqa: E402


def s(median, p90=None, n=10):
    return {"median": median, "p90": p90 if p90 is not None else median * 1.2, "min": median * 0.9, "n": n}


def wv(model, engine, bundle, trip, inference, kind="model"):
    return {"kind": kind, "model": model, "engine": engine, "bundle": bundle,
            "baseline": "ort-web 1 thread" if model == "mobilenet_v2" else f"ort-web 1 thread {model}",
            "latency_ms": s(trip), "inference_ms": s(inference), "stages_ms": {"inference": s(inference)}}


@pytest.fixture()
def res():
    layers = [  # 2 * 112*112*96 * 16 = 38.5 MFLOP in 1 ms = 38.5 GFLOPS; depthwise 2*56*56*144*9 in 0.5 ms
        {"name": "pw1", "label": "conv2d/pointwise", "engine": "simd", "out": [1, 112, 112, 96], "w": [16, 96],
         "flops": 2 * 112 * 112 * 96 * 16, "kind": "pointwise", "ms": 1.0},
        {"name": "dw1", "label": "conv2d/depthwise", "engine": "simd", "out": [1, 56, 56, 144], "w": [3, 3, 144],
         "flops": 2 * 56 * 56 * 144 * 9, "kind": "depthwise", "ms": 0.5},
        {"name": "add1", "label": "add", "engine": "numpy", "out": [1, 56, 56, 24], "w": None, "flops": 0,
         "kind": "elementwise", "ms": 0.1},
    ]
    systems = {
        "ort-web 1 thread": {"kind": "ort", "model": "mobilenet_v2", "engine": "ort-web",
                             "baseline": "ort-web 1 thread", "latency_ms": s(30.0)},
        "ort-web 2 threads": {"kind": "ort", "model": "mobilenet_v2", "engine": "ort-web",
                              "baseline": "ort-web 1 thread", "latency_ms": s(20.0)},
        "ort-web 1 thread mobilenet_v3_small": {"kind": "ort", "model": "mobilenet_v3_small", "engine": "ort-web",
                                                "baseline": "ort-web 1 thread mobilenet_v3_small",
                                                "latency_ms": s(10.0)},
        "wasmvision page (simd)": wv("mobilenet_v2", "simd", None, 40.0, 21.0, kind="page"),
        "wasmvision mobilenet_v2 (simd)": wv("mobilenet_v2", "simd", "mobilenet_v2", 36.0, 21.0),
        "wasmvision mobilenet_v2-fp16 (simd)": wv("mobilenet_v2", "simd", "mobilenet_v2-fp16", 36.0, 22.0),
        "wasmvision mobilenet_v2-int8 (simd)": wv("mobilenet_v2", "simd", "mobilenet_v2-int8", 36.0, 27.0),
        "wasmvision mobilenet_v2 (numpy)": wv("mobilenet_v2", "numpy", "mobilenet_v2", 130.0, 111.0),
        "wasmvision mobilenet_v3_small (simd)": wv("mobilenet_v3_small", "simd", "mobilenet_v3_small", 13.0, 5.0),
        "wasmvision graph run (Pyodide, simd)": {
            "kind": "graph", "model": "mobilenet_v2", "engine": "simd", "baseline": "ort-web 1 thread",
            "latency_ms": s(1.7), "profile": {"by_kind": {"pointwise": 1.0, "depthwise": 0.5, "elementwise": 0.1},
                                              "layers": layers, "graph_run_median_ms": 1.7}},
    }
    return {"started": "2026-11-29T16:00:00Z", "browser": "156.0", "machine": {"cpus": 2, "loadavg_start": [1.5]},
            "systems": systems, "peak": [{"best_gflops": 50.0, "fma": {"best_gflops": 80.0}}, {"best_gflops": 64.0, "fma": None}],
            "cold_start": {"ort-web 1 thread": {"empty_cache": {"first_result_ms": s(1000.0), "bytes_page": 28e6,
                                                                "bytes_bench_inputs": 6e5, "requests": 5}},
                           "wasmvision": {"empty_cache": {"first_result_ms": s(3000.0), "bytes_page": 21e6,
                                                          "bytes_bench_inputs": 4e5, "requests": 40}}},
            "native": {"onnxruntime native CPU 1 thread": s(5.0), "wasmvision native (clf.run)": s(10.0)},
            "phases": {"table": "| phase | ms |\n|---|---:|\n| boot | 900 |"},
            "args": {"quick": True}, "wall_s": 180.0, "notes": []}


def test_ratio_helpers():
    assert common.ratio(s(30.0), s(20.0)) == pytest.approx(1.5)
    assert common.ratio(3.0, {"median": 2.0}) == pytest.approx(1.5)
    assert common.ratio(None, 2.0) is None and common.ratio(1.0, 0) is None
    assert common.fmt_ratio(None) == "-" and common.fmt_ratio(0.756) == "0.76x"
    st = common.stats([5, 1, 3, 2, 4])
    assert st["median"] == 3 and st["min"] == 1 and st["n"] == 5 and common.stats([]) is None


def test_ratios_use_the_same_models_baseline(res):
    r = report.ratios(res)
    assert r["wasmvision mobilenet_v2 (simd)"]["inference"] == pytest.approx(21.0 / 30.0)
    assert r["wasmvision mobilenet_v3_small (simd)"]["latency"] == pytest.approx(13.0 / 10.0)
    assert r["ort-web 1 thread"]["latency"] == pytest.approx(1.0)
    assert r["ort-web 2 threads"]["inference"] is None


def test_issue8_targets(res):
    rows = {a: (b, c) for a, b, c in targets.issue8_targets(res)}
    inf = rows["mobilenet_v2: SIMD inference stage <= 0.75x onnxruntime-web 1 thread"]
    assert inf[1] == "yes" and inf[0].startswith("0.70x") and "1.05x of 2 threads, no" in inf[0]
    trip = rows["mobilenet_v2: SIMD classify round trip <= 1.25x onnxruntime-web 1 thread session.run"]
    assert trip == ("1.20x (36.0 vs 30.0 ms)", "yes")
    assert rows["mobilenet_v3_small: SIMD classify round trip <= 1.25x onnxruntime-web 1 thread session.run"][1] == "no"
    assert rows["mobilenet_v3_small: SIMD inference stage <= 0.75x onnxruntime-web 1 thread"][1] == "yes"
    numpy_row = next(v for k, v in rows.items() if k.startswith("numpy engine"))
    assert numpy_row == ("3.70x (wasmvision mobilenet_v2 (numpy))", "yes")
    fp16 = next(v for k, v in rows.items() if k.startswith("fp16"))
    int8 = next(v for k, v in rows.items() if k.startswith("int8"))
    assert fp16[1] == "yes" and int8[1] == "no"  # 22/21 within 10 %, 27/21 is not
    assert not any(k.startswith("mobilenet_v3_large") for k in rows)  # no measurement, no row


def test_issue18_targets(res):
    page = res["systems"]["wasmvision page (simd)"]
    page["stages_ms"] = {"decode": s(4.0), "preprocess": s(6.0), "inference": s(21.0), "postprocess": s(0.5),
                         "total": s(32.0)}
    res["page_info"] = {"wasmvision page (simd)": {"timings_ms": {"decode": 9.0, "preprocess": 30.0, "inference": 22.0,
                                                                  "postprocess": 1.0, "total": 64.0}}}
    res["inputs"] = {"image": "/x/chelsea.png"}
    res["systems"]["wasmvision page (simd) 4032x3024 JPEG"] = {
        "kind": "photo", "model": "mobilenet_v2", "engine": "simd", "photo": "4032x3024 JPEG", "latency_ms": s(300.0),
        "stages_ms": {"decode": s(200.0), "preprocess": s(2.5), "inference": s(21.0)}}
    rows = {a: (b, c) for a, b, c in targets.issue18_targets(res)}
    assert rows["mobilenet_v2: SIMD inference stage <= 0.5x onnxruntime-web 1 thread"] == ("0.70x (21.0 vs 30.0 ms)",
                                                                                             "no")
    assert rows["mobilenet_v3_small: classify round trip <= 1.25x onnxruntime-web 1 thread session.run"][1] == "no"
    assert rows["preprocess stage <= 0.1x onnxruntime-web mobilenet_v2 session.run (chelsea.png)"] == (
        "0.20x (6.0 vs 30.0 ms; best 5.4; decode 4.0)", "no")
    assert rows["preprocess stage <= 0.1x onnxruntime-web mobilenet_v2 session.run (4032x3024 JPEG)"] == (
        "0.08x (2.5 vs 30.0 ms; best 2.2; decode 200.0)", "yes")
    first = next(v for k, v in rows.items() if k.startswith("first classify after ready"))
    assert first[1] == "no" and first[0].startswith("2.00x of the median") and "preprocess 30.0 (median 6.0)" in first[0]
    assert not any("after ready, a fresh page" in k for k in rows)  # not measured, no row
    res["page_info"]["wasmvision page (simd) after idle"] = {"idle_s": 1.0, "timings_ms": {
        "decode": 5.0, "preprocess": 6.5, "inference": 24.0, "postprocess": 0.5, "total": 36.0}}
    rows = {a: (b, c) for a, b, c in targets.issue18_targets(res)}
    idle = rows["(not a target) first classify 1 s after ready, a fresh page: total vs the median"]
    assert idle[1] == "-" and idle[0].startswith("1.12x of the median") and "inference 24.0 (median 21.0)" in idle[0]
    first = next(v for k, v in rows.items() if k.startswith("first classify after ready"))
    assert first[0].startswith("2.00x of the median")  # the target row is still the photo right after ready
    dw = next(v for k, v in rows.items() if k.startswith("depthwise kxk"))
    # 2*56*56*144*9 FLOP in 0.5 ms = 16.3 GFLOPS: 25 % of the 64.0 peak, 20 % of the FMA one
    assert dw[1] == "no" and dw[0].startswith("25% (16.3 of 64.0 GFLOPS, 20% of the FMA peak 80.0")
    assert "| target (issue 18) | this run | met |" in report.markdown_table(res)
    assert "target (issue 18): first classify after ready" in report.table(res)


def test_per_layer_gflops_and_peak_share(res):
    assert layers.peak_gflops(res) == 64.0 and layers.peak_gflops(res, fma=True) == 80.0
    prof = res["systems"]["wasmvision graph run (Pyodide, simd)"]["profile"]
    rows = {r["kernel"]: r for r in layers.kernel_rows(prof, 64.0)}
    assert set(rows) == {"sgemm 1x1 conv", "depthwise kxk"}  # no FLOPs, no row
    assert rows["sgemm 1x1 conv"]["gflops"] == pytest.approx(2 * 112 * 112 * 96 * 16 / 1e6)
    assert rows["sgemm 1x1 conv"]["peak_share"] == pytest.approx(rows["sgemm 1x1 conv"]["gflops"] / 64.0)
    assert rows["sgemm 1x1 conv"]["fma_peak_share"] is None  # no FMA peak given, no share
    fma_rows = {r["kernel"]: r for r in layers.kernel_rows(prof, 64.0, 80.0)}
    assert fma_rows["sgemm 1x1 conv"]["fma_peak_share"] == pytest.approx(rows["sgemm 1x1 conv"]["gflops"] / 80.0)
    assert [r["name"] for r in layers.layer_rows(prof, 64.0)] == ["pw1", "dw1"]


def test_tables_render(res):
    text = report.table(res)
    md = report.markdown_table(res)
    for out in (text, md):
        assert "wasmvision mobilenet_v2 (simd), inference stage" in out
        assert "| boot | 900 |" in out  # the phase table passes through
    assert "| sgemm 1x1 conv | 38.5, 60% (1, 1.00) |" in md and "| 1.6 / 1.7 |" in md
    assert "mul+add 64.0 GFLOPS, relaxed_madd 80.0 GFLOPS" in md and "per-step medians" in md and "3.0 min wall" in md and "`python3 build.py bench --quick`" in md
    assert "| first result, empty cache: wasmvision, 21.0 MB downloaded | 3000.0 | 3600.0 | 3.00x |" in md
    assert "| first result, empty cache <= 2.0x onnxruntime-web | 3.00x (3000 vs 1000 ms) | no |" in md
    assert report.table({"systems": {}}).strip()  # an empty run still prints


def test_write_readme(tmp_path, res):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\noutro\n")
    assert report.write_readme(readme, report.markdown_table(res))
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| target (issue 8) | this run | met |" in text
    no_markers = tmp_path / "other.md"
    no_markers.write_text("nothing\n")
    assert not report.write_readme(no_markers, "x") and no_markers.read_text() == "nothing\n"


def test_quick_option_sets_small_defaults_but_explicit_options_win():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run
    a = run.parse(["--quick", "--runs", "7"])
    assert a.runs == 7 and a.rounds == run.QUICK["rounds"] and a.no_planer and a.engines == ["numpy", "simd"]
    b = run.parse([])
    assert b.runs == 40 and not b.quick and not b.no_planer


def test_phases_hook_calls_measure_phases_and_keeps_its_table(tmp_path, monkeypatch):
    import types

    import run
    from bench.harness import Bench
    calls = []
    fake = types.ModuleType("phases")
    fake.measure_phases = lambda dist, browser, runs: calls.append((dist, browser, runs)) or {"cold": {"ready_ms": 1}}
    fake.markdown = lambda result: "| phase | ms |"
    monkeypatch.setitem(sys.modules, "phases", fake)
    bench = Bench(run.parse(["--quick", "--work", str(tmp_path / "w"), "--dist", str(tmp_path / "d")]))
    bench.phases("the playwright")
    assert calls == [(tmp_path / "d", "the playwright", 1)]
    assert bench.result["phases"]["table"] == "| phase | ms |"
    assert "| phase | ms |" in report.table(bench.result)
    fake.measure_phases = lambda *a: 1 / 0  # a failing phase run is a note, not a failed benchmark
    bench.phases(None)
    assert any("measure_phases failed" in n for n in bench.result["notes"])


def test_trace_summary_sums_events_per_thread_and_samples_the_worker():
    """benchmarks/studies/trace_cold.py: scheduler wrappers are not counted; the worker's samples become self times."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "studies"))
    import trace_cold

    worker, pool = (1, 10), (1, 11)
    meta = [{"ph": "M", "name": "thread_name", "pid": p, "tid": t, "args": {"name": n}}
            for (p, t), n in ((worker, "DedicatedWorker thread"), (pool, "ThreadPoolForegroundWorker"))]
    x = [{"ph": "X", "pid": worker[0], "tid": worker[1], "name": "wasm.CompileLazy", "dur": 15_000},
         {"ph": "X", "pid": worker[0], "tid": worker[1], "name": "wasm.CompileLazy", "dur": 10_000},
         {"ph": "X", "pid": worker[0], "tid": worker[1], "name": "RunTask", "dur": 90_000},
         {"ph": "X", "pid": pool[0], "tid": pool[1], "name": "wasm.TopTierCompilation", "dur": 40_000},
         {"ph": "X", "pid": pool[0], "tid": pool[1], "name": "tiny", "dur": 1_000}]
    profile = [{"name": "Profile", "id": "0x1", "pid": worker[0], "tid": worker[1], "args": {"data": {}}},
               {"name": "ProfileChunk", "id": "0x1", "pid": worker[0], "tid": 99, "args": {"data": {
                   "cpuProfile": {"nodes": [{"id": 1, "callFrame": {"functionName": "run", "url": "https://x/a.js"}},
                                            {"id": 2, "callFrame": {"functionName": "", "url": ""}}],
                                  "samples": [1, 1, 2]},
                   "timeDeltas": [500, 1500, 250]}}}]
    out = trace_cold.summarize(meta + x + profile)
    assert out["threads"] == {"DedicatedWorker thread (1:10)": [["wasm.CompileLazy", 25.0, 2]],
                              "ThreadPoolForegroundWorker (1:11)": [["wasm.TopTierCompilation", 40.0, 1],
                                                                    ["tiny", 1.0, 1]]}
    assert out["worker_functions"] == [["run a.js", 2.0], ["(anonymous)", 0.2]]
