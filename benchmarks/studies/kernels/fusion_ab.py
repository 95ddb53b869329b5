"""Layer fusion on and off, one Pyodide, one SIMD library: MobileNetV2's Plan.run and the steps the fusion touches.

Run: node --experimental-wasm-relaxed-simd benchmarks/studies/kernels/run_node.mjs \
         benchmarks/studies/kernels/fusion_ab.py [--rounds 12] [--runs 5] [--model /repo/dist/models/mobilenet_v2.wvb]
(run_node.mjs mounts this folder at /host; the repository's py_pkg is put on sys.path from /repo, mounted below.)
Plans: "fused" (what the SIMD engine plans) and "unfused" (plan_fusion.fuse replaced by the identity). Calls are
interleaved, order rotated per round; printed: max |d| between the two, Plan.run best / median, and per group of
steps (every step a fusion touches, summed per run) best / median. Nothing asserts a timing.
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
ap.add_argument("--cpu", action="store_true", help="time with the process's CPU time instead of the wall clock")
ap.add_argument("--steps", action="store_true", help="also print each step's median per plan, slowest first")
ap.add_argument("--variants", default="256", help="fused plans: BAND_KB[/MIN_EXPANDED_KB[/PASS+PASS]],... (e.g. "
                "128,256,512/0,256//conv_add+conv_depthwise)")
a = ap.parse_args(sys.argv[1:])

sys.path.insert(0, "/repo/py_pkg")
from wasmvision import bundle as wvb, plan as wvplan  # noqa: E402
from wasmvision.plan_fusion import FUSED_OPS  # noqa: E402
from wasmvision.simd import resolve_engine  # noqa: E402

lib, ran, why = resolve_engine("simd")
print(f"library: {lib.build} build")
b = wvb.from_bytes(open(a.model, "rb").read())
x = np.random.default_rng(0).uniform(-2, 2, (1, 224, 224, 3)).astype(np.float32)
from wasmvision import plan_fusion  # noqa: E402
from wasmvision.simd import ops as simd_ops  # noqa: E402

real = wvplan.fuse


def make(fusion=True, band=None, min_bytes=None, fusions=None):
    """A plan with the fusion on or off, the band's bytes, the smallest expanded tensor fused and the passes
    (plan_fusion.FUSIONS, by function name) overridden."""
    saved = simd_ops.PWDW_BAND_BYTES, plan_fusion.PWDW_MIN_BYTES, plan_fusion.FUSIONS
    if fusions:
        plan_fusion.FUSIONS = tuple(f for f in saved[2] if f.__name__.strip("_") in fusions)
    if band:
        simd_ops.PWDW_BAND_BYTES = band
    if min_bytes is not None:
        plan_fusion.PWDW_MIN_BYTES = min_bytes
    wvplan.fuse = real if fusion else (lambda nodes, ops, shapes, protected: (nodes, ops))
    try:
        return wvplan.Plan(b, x.shape, kernels=lib)
    finally:
        wvplan.fuse = real
        simd_ops.PWDW_BAND_BYTES, plan_fusion.PWDW_MIN_BYTES, plan_fusion.FUSIONS = saved


plans = {"unfused": make(False)}
for spec in a.variants.split(","):
    band, mb, passes = (spec.split("/") + ["", ""])[:3]
    plans[spec] = make(True, int(band) * 1024, int(mb) * 1024 if mb else None, passes.split("+") if passes else None)
outs = {k: p.run(x)[0] for k, p in plans.items()}
for k, p in plans.items():
    print(f"{k}: steps {len(p.steps)}, fused {sum(n.op in FUSED_OPS for n in p.nodes)}, max |d| vs unfused "
          f"{np.abs(outs[k] - outs['unfused']).max():.3g} (scale {np.abs(outs['unfused']).max():.3g})")

# The steps any fusion touches, in each plan: the fused steps (named after their first node) and, in the unfused
# plan, the steps of the nodes they replace (which a fused plan no longer has).
base = plans["unfused"]
touched = set()
for p in plans.values():
    names = {name for _, name in p.labels}
    touched |= {n.name for n in p.nodes if n.op in FUSED_OPS}
    touched |= {name for _, name in base.labels} - names
groups = {"fused": {k: [i for i, (_, name) in enumerate(p.labels) if name in touched] for k, p in plans.items()}}

run_t = {k: [] for k in plans}
grp_t = {(g, k): [] for g in groups for k in plans}
clock = time.perf_counter
if a.cpu:  # the process's CPU time (Node's process.cpuUsage, microseconds): what the load of others does not add
    from js import process

    def clock():
        u = process.cpuUsage()
        return (u.user + u.system) * 1e-6
items = list(plans.items())
per_step = {}
for r in range(a.rounds):
    for k, p in items[r % len(items):] + items[:r % len(items)]:
        for _ in range(a.runs):
            t0 = clock()
            p.run(x)
            run_t[k].append((clock() - t0) * 1e3)
        np.copyto(p.input_buffer, x)
        step_ms = []
        for step in p.steps:
            t0 = clock()
            step()
            step_ms.append((clock() - t0) * 1e3)
        for i, ms in enumerate(step_ms):
            per_step.setdefault((k, p.labels[i][1]), []).append(ms)
        for g, idx in groups.items():
            grp_t[(g, k)].append(sum(step_ms[i] for i in idx[k]))
for k in plans:
    print(f"{k}: Plan.run best {min(run_t[k]):.2f} median {statistics.median(run_t[k]):.2f} ms; " + "; ".join(
        f"{g} steps best {min(grp_t[(g, k)]):.3f} median {statistics.median(grp_t[(g, k)]):.3f}" for g in groups))
if a.steps:
    names = [name for _, name in base.labels]
    rows = sorted(names, key=lambda nm: -statistics.median(per_step[("unfused", nm)]))
    print("step | " + " | ".join(plans))
    for nm in rows[:25]:
        print(nm + " | " + " | ".join(f"{statistics.median(per_step[(k, nm)]):.3f}" if (k, nm) in per_step else "-"
                                      for k in plans))
