"""Depthwise kernel variants side by side in Pyodide (V8): MobileNetV2's 17 depthwise layers (224x224 input,
3x3, pad 1, ReLU6), every variant checked against the first, then timed call by call interleaved (order rotated
each round). --fresh rewrites the input with numpy before each call (as the previous pointwise layer does in the
network) instead of calling on a hot cache. Prints per-shape best / median ms and GFLOPS, and the 17-layer sums."""
import argparse
import ctypes
import statistics
import time

import numpy as np

from wasmvision.simd.descriptors import ACT_CLIP, ActParams, DwconvParams

MBV2 = [  # (H, W, C, stride, layers of this shape)
    (112, 112, 32, 1, 1), (112, 112, 96, 2, 1), (56, 56, 144, 1, 1), (56, 56, 144, 2, 1), (28, 28, 192, 1, 2),
    (28, 28, 192, 2, 1), (14, 14, 384, 1, 4), (14, 14, 576, 1, 2), (14, 14, 576, 2, 1), (7, 7, 960, 1, 3)]

ap = argparse.ArgumentParser()
ap.add_argument("variants", nargs="+")
ap.add_argument("--build", default="plain")
ap.add_argument("--reps", type=int, default=30)
ap.add_argument("--fresh", action="store_true")
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--sample-ms", type=float, default=0.0, help="calls per sample so that one lasts this long")
a = ap.parse_args()
lib = ctypes.CDLL(f"/libs/libdw_{a.build}.so")
fns = {v: getattr(lib, f"wv_dw_{v}") for v in a.variants}
rng = np.random.default_rng(0)
tot = {v: [0.0, 0.0] for v in a.variants}
print(f"build {a.build}, {'fresh input' if a.fresh else 'hot cache'}, {a.reps} calls each")
for h, w, c, s, count in MBV2:
    oh, ow = (h + 2 - 3) // s + 1, (w + 2 - 3) // s + 1
    x0 = rng.standard_normal((a.batch, h, w, c)).astype(np.float32)
    x = x0.copy()
    wt = rng.standard_normal((3, 3, c)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    ys = {v: np.full((a.batch, oh, ow, c), np.nan, np.float32) for v in a.variants}
    ps = {v: DwconvParams(x=x.ctypes.data, wt=wt.ctypes.data, bias=b.ctypes.data, y=ys[v].ctypes.data, n=a.batch,
                          h=h, w=w, c=c, kh=3, kw=3, sh=s, sw=s, pt=1, pl=1, oh=oh, ow=ow,
                          act=ActParams(kind=ACT_CLIP, lo=0.0, hi=6.0)) for v in a.variants}
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
    flop = 2 * 9 * a.batch * oh * ow * c
    row = []
    for v in a.variants:
        best, med = min(samples[v]), statistics.median(samples[v])
        tot[v][0] += best * count
        tot[v][1] += med * count
        row.append(f"{v}: {best:.3f}/{med:.3f} ({flop / med / 1e6:.1f})")
    print(f"{h}x{w}x{c} s{s} x{count}: " + "  ".join(row))
flop = sum(2 * 9 * a.batch * ((h - 1) // s + 1) ** 2 * c * n for h, w, c, s, n in MBV2)
print("17 layers, best / median sum ms (GFLOPS of median): " + "  ".join(
    f"{v}: {t[0]:.3f}/{t[1]:.3f} ({flop / t[1] / 1e6:.1f})" for v, t in tot.items()))
