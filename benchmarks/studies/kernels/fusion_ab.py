"""Layer fusion on and off, one Pyodide, one SIMD library: MobileNetV2's Plan.run and the steps the fusion touches.

Run: node --experimental-wasm-relaxed-simd benchmarks/studies/kernels/run_node.mjs \
         benchmarks/studies/kernels/fusion_ab.py [--rounds 12] [--runs 5] [--model /repo/dist/models/mobilenet_v2.wvb]
(run_node.mjs mounts this folder at /host; the repository's py_pkg is put on sys.path from /repo, mounted below.)
Plans: "fused" (what the SIMD engine plans) and "unfused" (plan_fusion.fuse replaced by the identity). Calls are
interleaved, order rotated per round; printed: max |d| between the two, Plan.run best / median, and per group of
steps (the fused steps against the nodes they replace, summed per run) best / median. Nothing asserts a timing.
"""
import argparse
import statistics
import sys
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=12)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--model", default="/repo/dist/models/mobilenet_v2.wvb")
a = ap.parse_args(sys.argv[1:])

sys.path.insert(0, "/repo/py_pkg")
from wasmvision import bundle as wvb, plan as wvplan  # noqa: E402
from wasmvision.plan_fusion import FusedNode  # noqa: E402
from wasmvision.simd import resolve_engine  # noqa: E402

lib, ran, why = resolve_engine("simd")
print(f"library: {lib.build} build")
b = wvb.from_bytes(open(a.model, "rb").read())
x = np.random.default_rng(0).uniform(-2, 2, (1, 224, 224, 3)).astype(np.float32)
fused = wvplan.Plan(b, x.shape, kernels=lib)
real = wvplan.fuse
wvplan.fuse = lambda nodes, ops, shapes, protected: (nodes, ops)
unfused = wvplan.Plan(b, x.shape, kernels=lib)
wvplan.fuse = real
plans = {"fused": fused, "unfused": unfused}
outs = {k: p.run(x)[0] for k, p in plans.items()}
print(f"max |d| fused vs unfused: {np.abs(outs['fused'] - outs['unfused']).max():.3g} "
      f"(scale {np.abs(outs['unfused']).max():.3g}); steps {len(fused.steps)} vs {len(unfused.steps)}")

# The fused plan's fused steps (named after their first node) against the unfused plan's steps of the nodes
# they replace (the first node's name and the later node's, which the fused plan no longer has).
fused_names = {name for _, name in fused.labels}
removed = {name for _, name in unfused.labels} - fused_names
leads = {n.name for n in fused.nodes if isinstance(n, FusedNode)}
groups = {"fused": [i for i, (_, name) in enumerate(fused.labels) if name in leads],
          "unfused": [i for i, (_, name) in enumerate(unfused.labels) if name in leads or name in removed]}
print(f"fused steps: {len(groups['fused'])}, the steps they replace: {len(groups['unfused'])}")

run_t = {k: [] for k in plans}
grp_t = {k: [] for k in plans}
clock = time.perf_counter
items = list(plans.items())
for r in range(a.rounds):
    for k, p in (items if r % 2 == 0 else items[::-1]):
        for _ in range(a.runs):
            t0 = clock()
            p.run(x)
            run_t[k].append((clock() - t0) * 1e3)
        np.copyto(p.input_buffer, x)
        total, sel = 0.0, set(groups[k])
        for i, step in enumerate(p.steps):
            t0 = clock()
            step()
            if i in sel:
                total += (clock() - t0) * 1e3
        grp_t[k].append(total)
for k in plans:
    print(f"{k}: Plan.run best {min(run_t[k]):.2f} median {statistics.median(run_t[k]):.2f} ms; "
          f"fusion's steps best {min(grp_t[k]):.3f} median {statistics.median(grp_t[k]):.3f} ms")
