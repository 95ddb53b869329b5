"""The SIMD engine against the numpy engine, in the same Pyodide, same run (issue 8). A measurement, not a test.

    .venv/bin/python benchmarks/simd_engine.py [--rounds 20] [--chromium] [--out bench-results/simd.json]

Runs in Pyodide under Node (default) or in headless Chromium (--chromium, Debian /usr/bin/chromium via Python
playwright, a blank page served from dist/). Models: the built MobileNetV2 bundle (dist/models/mobilenet_v2.wvb)
plus MobileNetV3-Large/-Small and an EfficientNet-Lite0-shaped network from tests/onnx_builders.py (random weights,
224x224). Per model: Plan.run medians of both engines in interleaved rounds, and per-layer-kind medians from
Plan.profile with the GEMM/depthwise layers' GFLOPS. Prints Markdown tables; --out writes the JSON.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PY_CODE = r"""
import json, time
import numpy as np
import wasmvision
from wasmvision.plan import profile_kind

ROUNDS = %(rounds)d
report = {}


def flops(plan, node):
    # multiply-adds x 2 of a conv2d / dense node, from the plan's shapes
    s = plan.shapes
    if node.op == "conv2d":
        kh, kw, cg, cout = s[node.inputs[1]]
        n, oh, ow, _ = s[node.outputs[0]]
        return 2 * n * oh * ow * cout * kh * kw * cg
    if node.op == "dense":
        k, m = s[node.inputs[1]]
        return 2 * s[node.inputs[0]][0] * k * m
    return 0


for name, path in json.loads(%(models)r):
    data = open(path, "rb").read()
    t0 = time.perf_counter()
    clfs = {e: wasmvision.load(data, engine=e) for e in ("simd", "numpy")}
    assert clfs["simd"].engine == "simd", clfs["simd"].engine_notice
    size = clfs["simd"].input_size
    x = np.random.default_rng(0).standard_normal((1, *size, 3)).astype(np.float32)
    plans = {e: c._executor.plan(x.shape) for e, c in clfs.items()}
    nodes = {}
    for n in clfs["simd"].bundle.nodes:
        nodes[n.name] = n
    runs = {e: [] for e in plans}
    step_sums = {e: [] for e in plans}
    per_step = {e: [[] for _ in plans[e].steps] for e in plans}
    for r in range(ROUNDS):
        for e, plan in plans.items():  # interleaved: both engines see the same machine load
            t = time.perf_counter()
            plan.run(x)
            runs[e].append((time.perf_counter() - t) * 1e3)
            np.copyto(plan.input_buffer, x)
            total = 0.0
            for i, step in enumerate(plan.steps):
                t = time.perf_counter()
                step()
                dt = (time.perf_counter() - t) * 1e3
                per_step[e][i].append(dt)
                total += dt
            step_sums[e].append(total)
    out = {"input": list(x.shape), "run_ms": {e: float(np.median(v)) for e, v in runs.items()},
           "run_p90_ms": {e: float(np.percentile(v, 90)) for e, v in runs.items()},
           "steps_sum_ms": {e: float(np.median(v)) for e, v in step_sums.items()}, "kinds": {}, "layers": []}
    for e, plan in plans.items():
        kinds = {}
        for (label, node), ts, eng in zip(plan.labels, per_step[e], plan.engines):
            k = profile_kind(label)
            kinds[k] = kinds.get(k, 0.0) + float(np.median(ts))
            if e == "simd":
                f = flops(plan, nodes[node])
                ms = float(np.median(ts))
                out["layers"].append({"node": node, "label": label, "engine": eng, "ms": ms,
                                      "numpy_ms": float(np.median(per_step["numpy"][len(out["layers"])])),
                                      "gflops": f / ms / 1e6 if f and ms > 0 else None})
        out["kinds"][e] = kinds
        out["steps_" + e] = {k: plan.engines.count(k) for k in ("simd", "numpy")}
    report[name] = out
print("REPORT " + json.dumps(report))
"""

PAGE = """<!doctype html><meta charset="utf-8"><title>simd bench</title><script type="module">
window.onerror = (m) => { window.REPORT = "ERROR " + m; };
window.onunhandledrejection = (e) => { window.REPORT = "ERROR " + (e.reason && e.reason.message || e.reason); };
import {loadPyodide} from "/pyodide/pyodide.mjs";
const py = await loadPyodide({indexURL: "/pyodide/"});
await py.loadPackage(["numpy", "wasmvision"]);
for (const [name, url] of JSON.parse(%(models)s)) {
  const buf = new Uint8Array(await (await fetch(url)).arrayBuffer());
  py.FS.mkdirTree("/models"); py.FS.writeFile("/models/" + name + ".wvb", buf);
}
let out = "";
py.setStdout({batched: (s) => { out += s + "\\n"; }});
await py.runPythonAsync(await (await fetch("/bench/bench.py")).text());
window.REPORT = out;
</script>"""


def build_models(work: Path) -> list[tuple[str, Path]]:
    import onnx_builders as B
    from wasmvision import bundle as wvb
    from wasmvision.importers.onnx_import import import_onnx

    models = [("mobilenet_v2", ROOT / "dist" / "models" / "mobilenet_v2.wvb")]
    for name, make in (("mobilenet_v3_large", lambda: B.mobilenet_v3("large", size=224)),
                       ("mobilenet_v3_small", lambda: B.mobilenet_v3("small", size=224)),
                       ("efficientnet_lite0_shaped", lambda: B.efficientnet_lite(size=224))):
        p = work / f"{name}.wvb"
        wvb.save(import_onnx(make().SerializeToString()), p)
        models.append((name, p))
    return models


def run_node(work: Path, models, rounds: int) -> dict:
    """Pyodide under Node, through the tests' harness (the working tree's package, the models as its inputs)."""
    from pyodide_harness import run_in_pyodide

    listed = json.dumps([[n, f"/work/in/{n}.wvb"] for n, _ in models])
    files = run_in_pyodide(work, PY_CODE % {"rounds": rounds, "models": listed},
                           inputs={f"{n}.wvb": p.read_bytes() for n, p in models}, timeout=3600)
    line = [s for s in files["stdout"].decode().splitlines() if s.startswith("REPORT ")][-1]
    return json.loads(line[7:])


def run_chromium(work: Path, models, rounds: int, chromium: str) -> dict:
    """A blank page from a copy of dist/ (the wheel as the site ships it) plus the models and the script."""
    from playwright.sync_api import sync_playwright

    site = work / "site"
    subprocess.run(["cp", "-r", str(ROOT / "dist"), str(site)], check=True)
    (site / "bench").mkdir()
    for name, p in models:
        (site / "bench" / f"{name}.wvb").write_bytes(p.read_bytes())
    listed = json.dumps([[n, f"/bench/{n}.wvb"] for n, _ in models])
    (site / "bench" / "bench.py").write_text(PY_CODE % {"rounds": rounds, "models": json.dumps(
        [[n, f"/models/{n}.wvb"] for n, _ in models])})
    (site / "bench" / "index.html").write_text(PAGE % {"models": json.dumps(listed)})
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and print("page:", m.text, file=sys.stderr))
            page.goto(f"http://127.0.0.1:{server.server_port}/bench/index.html")
            page.wait_for_function("window.REPORT !== undefined", timeout=900_000)
            out = page.evaluate("window.REPORT")
            if out.startswith("ERROR "):
                sys.exit(f"the benchmark page failed: {out[6:]}")
            browser.close()
    finally:
        server.shutdown()
    line = [s for s in out.splitlines() if s.startswith("REPORT ")][-1]
    return json.loads(line[7:])


def print_tables(report: dict, where: str) -> None:
    print(f"\n### {where}: Plan.run, median ms (p90)\n")
    print("| model | SIMD engine | numpy engine | numpy / SIMD | steps on SIMD kernels | SIMD: sum of timed steps |")
    print("|---|---|---|---|---|---|")
    for name, r in report.items():
        s, n = r["run_ms"]["simd"], r["run_ms"]["numpy"]
        print(f"| {name} {r['input'][1]}x{r['input'][2]} | {s:.1f} ({r['run_p90_ms']['simd']:.1f}) | "
              f"{n:.1f} ({r['run_p90_ms']['numpy']:.1f}) | {n / s:.1f}x | "
              f"{r['steps_simd']['simd']} of {sum(r['steps_simd'].values())} | {r['steps_sum_ms']['simd']:.1f} |")
    for name, r in report.items():
        print(f"\n### {where}: {name}, per layer kind (sum of per-step medians, ms)\n")
        print("| kind | SIMD engine | numpy engine | speed-up |")
        print("|---|---|---|---|")
        kinds = sorted(set(r["kinds"]["simd"]) | set(r["kinds"]["numpy"]), key=lambda k: -r["kinds"]["numpy"].get(k, 0))
        for k in kinds:
            s, n = r["kinds"]["simd"].get(k, 0.0), r["kinds"]["numpy"].get(k, 0.0)
            print(f"| {k} | {s:.2f} | {n:.2f} | {n / s:.1f}x |" if s > 0 else f"| {k} | {s:.2f} | {n:.2f} | |")
        layers = [lay for lay in r["layers"] if lay["gflops"]]
        for label in ("conv2d/pointwise", "conv2d/depthwise", "conv2d/im2col", "dense"):
            sel = [lay for lay in layers if lay["label"] == label]
            if sel:
                g = sorted(lay["gflops"] for lay in sel)
                print(f"\n{label}: {len(sel)} layers, {sum(lay['ms'] for lay in sel):.2f} ms, "
                      f"GFLOPS min {g[0]:.1f} / median {g[len(g) // 2]:.1f} / max {g[-1]:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--chromium", action="store_true", help="measure in headless Chromium instead of Node")
    ap.add_argument("--chromium-path", default="/usr/bin/chromium")
    ap.add_argument("--only-v2", action="store_true", help="only the built MobileNetV2")
    ap.add_argument("--out", type=Path, help="write the JSON report here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = build_models(work)
        if args.only_v2:
            models = models[:1]
        report = (run_chromium(work, models, args.rounds, args.chromium_path) if args.chromium
                  else run_node(work, models, args.rounds))
    print_tables(report, "Chromium" if args.chromium else "Node")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
