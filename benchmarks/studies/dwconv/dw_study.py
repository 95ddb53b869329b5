"""Depthwise kernel variants side by side in Pyodide (V8): the depthwise layers of MobileNetV2 (3x3, pad 1),
MobileNetV3-Large (3x3 and 5x5, pad K//2) and EfficientNet-Lite0 (TF "SAME": strided layers pad one more pixel at
the end) at 224x224, ReLU6 (--act hardswish); every variant checked against the first, then timed call by call
interleaved (order rotated each round). --fresh rewrites the input with numpy before each call (as the previous
pointwise layer does in the network) instead of calling on a hot cache. Prints per-shape best / median ms and
GFLOPS, and each network's sums."""
import argparse
import ctypes
import statistics
import time

import numpy as np

from wasmvision.simd.descriptors import ACT_CLIP, ACT_HARDSWISH, ActParams, DwconvParams

NETS = {  # (H, W, C, K, stride, pad top/left, layers of this shape); every output is ceil(H / stride)
    "mbv2": [(112, 112, 32, 3, 1, 1, 1), (112, 112, 96, 3, 2, 1, 1), (56, 56, 144, 3, 1, 1, 1),
             (56, 56, 144, 3, 2, 1, 1), (28, 28, 192, 3, 1, 1, 2), (28, 28, 192, 3, 2, 1, 1),
             (14, 14, 384, 3, 1, 1, 4), (14, 14, 576, 3, 1, 1, 2), (14, 14, 576, 3, 2, 1, 1),
             (7, 7, 960, 3, 1, 1, 3)],
    "v3l": [(112, 112, 16, 3, 1, 1, 1), (112, 112, 64, 3, 2, 1, 1), (56, 56, 72, 3, 1, 1, 1),
            (56, 56, 72, 5, 2, 2, 1), (28, 28, 120, 5, 1, 2, 2), (28, 28, 240, 3, 2, 1, 1),
            (14, 14, 200, 3, 1, 1, 1), (14, 14, 184, 3, 1, 1, 2), (14, 14, 480, 3, 1, 1, 1),
            (14, 14, 672, 3, 1, 1, 1), (14, 14, 672, 5, 2, 2, 1), (7, 7, 960, 5, 1, 2, 2)],
    "eff": [(112, 112, 32, 3, 1, 1, 1), (112, 112, 96, 3, 2, 0, 1), (56, 56, 144, 3, 1, 1, 1),
            (56, 56, 144, 5, 2, 1, 1), (28, 28, 240, 5, 1, 2, 1), (28, 28, 240, 3, 2, 0, 1),
            (14, 14, 480, 3, 1, 1, 2), (14, 14, 480, 5, 1, 2, 1), (14, 14, 672, 5, 1, 2, 2),
            (14, 14, 672, 5, 2, 1, 1), (7, 7, 1152, 5, 1, 2, 3), (7, 7, 1152, 3, 1, 1, 1)],
}

ap = argparse.ArgumentParser()
ap.add_argument("variants", nargs="+")
ap.add_argument("--nets", default="mbv2", help="comma-separated: " + ",".join(NETS))
ap.add_argument("--only", default="", help="only shapes whose K,stride match, e.g. 5,1")
ap.add_argument("--build", default="plain")
ap.add_argument("--act", default="relu6", choices=["relu6", "hardswish"])
ap.add_argument("--reps", type=int, default=30)
ap.add_argument("--fresh", action="store_true")
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--sample-ms", type=float, default=0.0, help="calls per sample so that one lasts this long")
a = ap.parse_args()
fns = {v: ctypes.CDLL(f"/libs/libdw_{a.build}_{v}.so").wv_dwconv for v in a.variants}
rng = np.random.default_rng(0)
act = (ActParams(kind=ACT_CLIP, lo=0.0, hi=6.0) if a.act == "relu6"
       else ActParams(kind=ACT_HARDSWISH, alpha=1 / 6, beta=0.5))
print(f"build {a.build}, {'fresh input' if a.fresh else 'hot cache'}, {a.reps} calls each")
for net in a.nets.split(","):
    shapes = [sh for sh in NETS[net] if not a.only or f"{sh[3]},{sh[4]}" == a.only]
    tot = {v: [0.0, 0.0] for v in a.variants}
    print(f"-- {net}")
    for h, w, c, k, s, pad, count in shapes:
        oh, ow = -(-h // s), -(-w // s)
        x0 = rng.standard_normal((a.batch, h, w, c)).astype(np.float32)
        x = x0.copy()
        wt = rng.standard_normal((k, k, c)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        ys = {v: np.full((a.batch, oh, ow, c), np.nan, np.float32) for v in a.variants}
        ps = {v: DwconvParams(x=x.ctypes.data, wt=wt.ctypes.data, bias=b.ctypes.data, y=ys[v].ctypes.data, n=a.batch,
                              h=h, w=w, c=c, kh=k, kw=k, sh=s, sw=s, pt=pad, pl=pad, oh=oh, ow=ow,
                              act=act) for v in a.variants}
        for v in a.variants:
            for _ in range(3):
                fns[v](ctypes.byref(ps[v]))
            err = float(np.abs(ys[v] - ys[a.variants[0]]).max())
            assert err < 1e-4, (v, err)
        # calls per sample: a sample lasts ~sample_ms (Chromium's clock has 0.1 ms steps); with --fresh each call
        # follows a copy of the input, whose median time (measured alike) is subtracted
        t0 = time.perf_counter()
        for _ in range(20):
            fns[a.variants[0]](ctypes.byref(ps[a.variants[0]]))
        inner = 1 if not a.sample_ms else max(1, int(a.sample_ms / max((time.perf_counter() - t0) * 1e3 / 20, 0.01)))
        copy = lambda: np.copyto(x, x0)  # noqa: E731
        calls = {v: (lambda f=fns[v], q=ps[v]: f(ctypes.byref(q))) for v in a.variants}
        samples = {v: [] for v in a.variants}
        copies = []
        order = list(a.variants)
        for r in range(a.reps):
            order = order[1:] + order[:1]
            if a.fresh:
                t0 = time.perf_counter()
                for _ in range(inner):
                    copy()
                copies.append((time.perf_counter() - t0) * 1e3 / inner)
            for v in order:
                f = calls[v]
                t0 = time.perf_counter()
                for _ in range(inner):
                    if a.fresh:
                        copy()
                    f()
                samples[v].append((time.perf_counter() - t0) * 1e3 / inner)
        if a.fresh:
            cm = statistics.median(copies)
            samples = {v: [t - cm for t in s] for v, s in samples.items()}
        flop = 2 * k * k * a.batch * oh * ow * c
        row = []
        for v in a.variants:
            best, med = min(samples[v]), statistics.median(samples[v])
            tot[v][0] += best * count
            tot[v][1] += med * count
            row.append(f"{v}: {best:.3f}/{med:.3f} ({flop / med / 1e6:.1f})")
        print(f"{h}x{w}x{c} k{k} s{s} x{count}: " + "  ".join(row))
    flop = sum(2 * k * k * a.batch * (-(-h // s)) ** 2 * c * n for h, w, c, k, s, pad, n in shapes)
    print(f"{net} {sum(sh[-1] for sh in shapes)} layers, best / median sum ms (GFLOPS of median): " + "  ".join(
        f"{v}: {t[0]:.3f}/{t[1]:.3f} ({flop / t[1] / 1e6:.1f})" for v, t in tot.items()))
