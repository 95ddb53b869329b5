"""The benchmark's Pyodide page (benchmarks/pages/pyodide.html: the product's Pyodide and numpy on the main thread):
the plain-numpy peer, PyPI planer, and wasmvision's graph run per engine with per-step timings — the per-kind profile
and the per-layer GFLOPS table come from the same runs."""
from __future__ import annotations

import json
import statistics

PEER_SETUP = """
import sys, json, time, io
import numpy as np
sys.path.insert(0, "/bench")
from plain_numpy import PlainNumpyNet
_peer = PlainNumpyNet("/bench/peer.npz")
_x_nhwc = np.load("/bench/input.npy")                       # (1, 224, 224, 3)
_x_nchw = np.ascontiguousarray(_x_nhwc.transpose(0, 3, 1, 2))
_peer_logits = _peer.run(_x_nchw)
def _peer_run(n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); _peer.run(_x_nchw); out.append((time.perf_counter() - t0) * 1e3)
    return json.dumps(out)
json.dumps({"top5": [int(i) for i in np.argsort(-_peer_logits[0])[:5]]})
"""

PLANER_SETUP = """
import micropip, json, time, io, contextlib
await micropip.install("WHEEL_URL", deps=False)
with contextlib.redirect_stdout(io.StringIO()):
    import planer
    import planer.util


class _SyncPool:
    # planer 0.35 fills its im2col buffer from a ThreadPoolExecutor; Pyodide cannot start threads
    # ("RuntimeError: can't start new thread"), so the same calls run inline.
    def __init__(self, *a, **k):
        pass

    def submit(self, fn, *a, **k):
        fn(*a, **k)

    def shutdown(self, wait=True):
        pass


planer.util.ThreadPoolExecutor = _SyncPool
_planer = planer.read_net("/bench/planer_model")
_planer_logits = np.asarray(_planer(_x_nchw))
def _planer_run(n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); _planer(_x_nchw); out.append((time.perf_counter() - t0) * 1e3)
    return json.dumps(out)
json.dumps({"top5": [int(i) for i in np.argsort(-_planer_logits.reshape(-1))[:5]],
            "max_abs_diff_vs_plain_peer": float(np.abs(_planer_logits.reshape(-1) - _peer_logits.reshape(-1)).max())})
"""

# One plan per (model, engine). _wv_profile alternates one instrumented run (every step, and every part of a numpy
# step's fused epilogue, timed on its own) with one plain Plan.run, so both see the same load.
PROFILE_SETUP = """
import json, time, math
import numpy as np
import wasmvision
from wasmvision import bundle as _wvb
from wasmvision.plan import Executor
from wasmvision.simd import resolve_engine
_plans = {}
def _wv_open(key, path, engine):
    b = _wvb.load(path)
    kernels, ran, notice = resolve_engine(engine)
    plan = Executor(b, kernels=kernels).plan(_x_nhwc.shape)
    logits = plan.run(_x_nhwc)[0]
    plan.run(_x_nhwc)  # first calls of each kernel run V8's baseline tier
    nodes = {n.name: n for n in b.nodes}
    layers = []
    for (label, name), eng, step_node in zip(plan.labels, plan.engines, plan.nodes):
        n = nodes[name]
        out = plan.shapes[n.outputs[0]]
        w = plan.shapes.get(n.inputs[1]) if len(n.inputs) > 1 and n.inputs[1] in b.tensors else None
        # a conv or dense does prod(out) * (prod(w) / out channels) multiply-adds, whatever the weight layout
        flops = 2 * math.prod(out) * math.prod(w) // out[-1] if w and (label.startswith("conv2d") or label in ("dense", "matmul")) else 0
        if step_node.op == "conv2d+depthwise":  # one step runs both convs: its own row, both convs' FLOPs
            label = "conv2d+depthwise/" + label.split("/")[-1]
            out, w2 = plan.shapes[step_node.outputs[0]], plan.shapes[step_node.inputs[3]]
            flops += 2 * math.prod(out) * math.prod(w2) // out[-1]
        layers.append({"name": name, "label": label, "engine": eng, "out": list(out), "w": list(w) if w else None, "flops": flops})
    _plans[key] = (plan, layers)
    return json.dumps({"engine": ran, "notice": notice, "steps": len(plan.steps),
                       "simd_build": getattr(kernels, "build", None),
                       "simd_steps": sum(e == "simd" for e in plan.engines),
                       "top5": [int(i) for i in np.argsort(-logits.reshape(-1))[:5]],
                       "version": getattr(wasmvision, "__version__", None), "layers": layers})
def _wv_profile(key, n):
    plan, _ = _plans[key]
    clock = time.perf_counter
    steps = [(getattr(s, "parts", None) or [s]) for s in plan.steps]
    main, epi, run = [[] for _ in steps], [[] for _ in steps], []
    for _ in range(n):
        np.copyto(plan.input_buffer, _x_nhwc)
        for i, parts in enumerate(steps):
            t0 = clock(); parts[0](); t1 = clock()
            for p in parts[1:]:
                p()
            main[i].append((t1 - t0) * 1e3); epi[i].append((clock() - t1) * 1e3)
        t0 = clock(); plan.run(_x_nhwc); run.append((clock() - t0) * 1e3)
    return json.dumps({"main": main, "epilogue": epi, "run_ms": run})
"""


def open_pyodide(ctx, srv, bench):
    """(page, info): the peers set up; wasmvision installed from the site's Pyodide lock when it lists it."""
    page = ctx.new_page()
    page.goto(f"{srv.origin}/pages/pyodide.html?pyodide=/pyodide/")
    page.wait_for_function("() => window.bench")
    page.evaluate("() => window.bench.ready")
    for url, path in [("/work/peer.npz", "/bench/peer.npz"), ("/work/input.npy", "/bench/input.npy"),
                      ("/peers/plain_numpy.py", "/bench/plain_numpy.py")]:
        page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", [url, path])
    info = {"peer": py(page, PEER_SETUP)}
    if bench.planer_wheel is not None:
        try:
            page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", ["/work/planer_model.pla", "/bench/planer_model.pla"])
            page.evaluate("() => window.py.loadPackage('micropip', {messageCallback: () => {}})")
            info["planer"] = py(page, PLANER_SETUP.replace("WHEEL_URL", f"{srv.origin}/work/{bench.planer_wheel.name}"))
        except Exception as exc:
            bench.note(f"planer in Pyodide failed: {str(exc)[-600:]}")
    if bench.bundle is not None and bench.pyodide_has_wv:
        page.evaluate("() => window.py.loadPackage('wasmvision', {messageCallback: () => {}})")
        page.evaluate("(c) => window.bench.runPython(c)", PROFILE_SETUP)
        info["wasmvision"] = {}
    elif bench.bundle is not None:
        bench.note("dist/pyodide lock does not list wasmvision: in-Pyodide profile skipped")
    return page, info


def py(page, code):
    return json.loads(page.evaluate("(c) => window.bench.runPython(c)", code))


def open_plan(page, key, url, path, engine):
    """Load a bundle (fetched from url into path) into a plan for engine; returns its info (layers, engine)."""
    page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", [url, path])
    return py(page, f"_wv_open({key!r}, {path!r}, {engine!r})")


def peer_runner(page, fn):
    return lambda n: py(page, f"{fn}({n})")


def profile_runner(page, key):
    return lambda n: py(page, f"_wv_profile({key!r}, {n})")


def summarize_profile(chunks, layers, kind_of, stats):
    """Chunks of _wv_profile -> graph run stats, per-kind ms, and per-layer rows (ms = step incl. its epilogue)."""
    run_ms = [x for c in chunks for x in c["run_ms"]]
    n_steps = len(layers)
    main = [[x for c in chunks for x in c["main"][i]] for i in range(n_steps)]
    epi = [[x for c in chunks for x in c["epilogue"][i]] for i in range(n_steps)]
    kinds, rows = {}, []
    for lay, m, e in zip(layers, main, epi):
        m_med, e_med = statistics.median(m), statistics.median(e)
        k = kind_of(lay["label"])
        kinds[k] = kinds.get(k, 0.0) + m_med
        if e_med > 0.0005:  # a numpy step's separate bias+activation parts
            kinds["activations"] = kinds.get("activations", 0.0) + e_med
        rows.append({**lay, "kind": k, "ms": round(m_med + e_med, 4)})
    run_med = statistics.median(run_ms)
    # Plan.run minus the per-step medians: the Python loop, the input and output copies, and, on a loaded machine,
    # the time slices other processes took in the middle of a run (a single step mostly escapes them)
    kinds["overhead (run - sum of steps)"] = run_med - sum(r["ms"] for r in rows)
    return {"latency_ms": stats(run_ms), "by_kind": {k: round(v, 3) for k, v in kinds.items()},
            "layers": rows, "graph_run_median_ms": round(run_med, 3)}
