"""Interleaved timing of several copies of the wasmvision package on the same model and input (run by
ab_node.mjs inside Pyodide). Prints per-variant median / p90 of Plan.run, the per-kind profile, and the
largest output difference from the first variant. A measurement tool: nothing asserts a timing."""

import argparse
import importlib
import statistics
import time

import numpy as np


def main(variants, argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/repo/dist/models/mobilenet_v2.wvb")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5, help="runs per variant per round")
    ap.add_argument("--profile", type=int, default=3, help="profiled runs per variant per round (0: none)")
    ap.add_argument("--input", help=".npy NHWC float32 input (default: uniform random)")
    ap.add_argument("--by-shape", action="store_true", help="also print ms per (kind, input shape, weight shape)")
    a = ap.parse_args(argv)
    raw = open(a.model, "rb").read()
    x = (np.load(a.input).astype(np.float32) if a.input else
         np.random.default_rng(0).uniform(-2, 2, (1, 224, 224, 3)).astype(np.float32))
    plans, outs, shape_keys = [], [], []
    for name, label in variants:
        m = importlib.import_module(name)
        b = importlib.import_module(name + ".bundle").from_bytes(raw)
        plan = importlib.import_module(name + ".plan").Plan(b, x.shape)
        out = plan.run(x)[0]
        plan.run(x)
        plans.append((label, plan))
        shape_keys.append(_shape_keys(b, plan))
        outs.append(out)
    for (label, _), o in zip(plans, outs):
        d = np.abs(o.astype(np.float64) - outs[0]).max()
        z = o.astype(np.float64).reshape(-1)
        pmax = float(np.exp(z.max() - z.max()) / np.exp(z - z.max()).sum())
        print(f"{label}: max |diff| vs first = {d:.3g}  (argmax {int(o.argmax())}, p = {pmax:.6f})")
    times = {label: [] for label, _ in plans}
    by_shape = {label: {} for label, _ in plans}
    prof = {label: {} for label, _ in plans}
    for r in range(a.rounds):
        order = plans[r % len(plans):] + plans[:r % len(plans)]
        for label, plan in order:
            for _ in range(a.runs):
                t0 = time.perf_counter()
                plan.run(x)
                times[label].append((time.perf_counter() - t0) * 1e3)
            if a.by_shape:
                keys = shape_keys[[p for _, p in plans].index(plan)]
                for k, v in _step_times(plan, x, keys).items():
                    by_shape[label].setdefault(k, []).append(v)
            for _ in range(a.profile):
                for k, v in plan.profile(x).items():
                    prof[label].setdefault(k, []).append(v)
    kinds = sorted({k for p in prof.values() for k in p})
    print("variant | median | p90 | min | " + " | ".join(kinds))
    for label, _ in plans:
        ts = sorted(times[label])
        p = prof[label]
        print(f"{label} | {statistics.median(ts):.1f} | {ts[int(0.9 * (len(ts) - 1))]:.1f} | {ts[0]:.1f} | "
              + " | ".join(f"{statistics.median(p[k]):.2f}" if k in p else "-" for k in kinds))
    if a.by_shape:
        keys = sorted({k for d in by_shape.values() for k in d})
        print("shape group | " + " | ".join(label for label, _ in plans))
        for k in keys:
            print(k + " | " + " | ".join(f"{statistics.median(by_shape[l][k]):.3f}" if k in by_shape[l] else "-"
                                         for l, _ in plans))


def _shape_keys(bundle, plan):
    nodes = {n.name: n for n in bundle.nodes}
    keys = []
    for label, name in plan.labels:
        n = nodes[name]
        keys.append(f"{label} {'x'.join(map(str, plan.shapes[n.inputs[0]]))}"
                    + (f" w{'x'.join(map(str, plan.shapes[n.inputs[1]]))}" if len(n.inputs) > 1 and n.inputs[1] else ""))
    return keys


def _step_times(plan, x, keys):
    """ms per shape group (summed over its nodes) for one run; the main op only (not its epilogue)."""
    np.copyto(plan.input_buffer, x, casting="same_kind")
    out = {}
    for step, key in zip(plan.steps, keys):
        parts = getattr(step, "parts", None) or [step]
        t0 = time.perf_counter()
        parts[0]()
        t1 = time.perf_counter()
        for q in parts[1:]:
            q()
        t2 = time.perf_counter()
        out[key] = out.get(key, 0.0) + (t1 - t0) * 1e3
        if len(parts) > 1:
            out["epilogue " + key] = out.get("epilogue " + key, 0.0) + (t2 - t1) * 1e3
    return out
