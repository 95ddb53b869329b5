"""Each SIMD kernel against numpy inside Pyodide (Node): one Node process runs every case.

The cases cover the edges of the kernels: M and N not multiples of the 6x8 / 4x8 register tiles, 1 row,
1 channel, K = 1, misaligned and row-strided A and C, every padding form of the depthwise kernel (none,
symmetric, TF-style bottom/right, asymmetric, padding larger than the kernel reach), stride 1 and 2,
3x3 / 5x5 / 7x7 (the generic path), the row kernels' x tiles and borders (3x3 and 5x5, stride 1 and 2), dilation 2 (im2col), C not a
multiple of 4 or 16, batch 2, every fused activation, and the conv strategies that feed the GEMM (strided pointwise,
the im2col stem and grouped convolutions, whose windows the GEMM gathers 64 rows at a time: blocks of 1-3 rows,
blocks straddling two images), dense,
and the global average pool.
The reference is numpy (float64 for the raw GEMM, the numpy engine's own kernels for the ops). Every case runs
with both builds of the library (plain SIMD128 forced in plain Node; relaxed SIMD in Node with V8's flag), each
against numpy and the two against each other.
"""

from __future__ import annotations

import json

import pytest

import numpy as np

from pyodide_harness import RELAXED_SIMD, run_in_pyodide

ACTS = {
    "none": None,
    "relu": {"kind": "relu"},
    "relu6": {"kind": "clip", "min": 0.0, "max": 6.0},
    "clip_-1_2.5": {"kind": "clip", "min": -1.0, "max": 2.5},
    "clip_lo_only": {"kind": "clip", "min": -0.5},
    "hardswish": {"kind": "hardswish"},
    "hardsigmoid": {"kind": "hardsigmoid", "alpha": 0.2, "beta": 0.5},
    "hardsigmoid_1/6": {"kind": "hardsigmoid", "alpha": 1 / 6, "beta": 0.5},
    "sigmoid": {"kind": "sigmoid"},
}
ACT_NAMES = list(ACTS)


def _cases() -> list[dict]:
    cases = []
    gemm_shapes = [(1, 1, 1), (1, 5, 3), (7, 5, 11), (6, 8, 8), (4, 3, 16), (13, 17, 9), (2, 64, 7), (65, 33, 17),
                   (100, 27, 32), (129, 96, 24), (3, 1280, 1000), (197, 144, 40), (50, 320, 1280)]
    for i, (m, k, n) in enumerate(gemm_shapes):
        for layout in ("contiguous", "misaligned_strided"):
            act = ACT_NAMES[(i + (layout != "contiguous")) % len(ACT_NAMES)]
            cases.append({"kind": "gemm", "m": m, "k": k, "n": n, "layout": layout, "act": act,
                          "bias": (i % 3) != 2})
    for act in ACT_NAMES:
        cases.append({"kind": "gemm", "m": 23, "k": 19, "n": 21, "layout": "misaligned_strided", "act": act,
                      "bias": True})
    dw = [  # (N, H, W, C, K, stride, pads (top, left, bottom, right))
        (1, 7, 5, 4, 3, 1, (1, 1, 1, 1)), (1, 7, 5, 4, 3, 2, (1, 1, 1, 1)), (1, 14, 14, 32, 3, 1, (1, 1, 1, 1)),
        (1, 14, 14, 96, 3, 2, (0, 0, 1, 1)), (1, 15, 13, 20, 3, 2, (1, 0, 1, 2)), (1, 9, 9, 37, 3, 1, (0, 0, 0, 0)),
        (1, 1, 1, 16, 3, 1, (1, 1, 1, 1)), (1, 6, 6, 1, 3, 1, (1, 1, 1, 1)), (1, 6, 6, 3, 3, 2, (1, 1, 1, 1)),
        (2, 8, 10, 24, 3, 1, (1, 1, 1, 1)), (1, 5, 5, 8, 3, 1, (3, 3, 3, 3)), (1, 14, 14, 40, 5, 1, (2, 2, 2, 2)),
        (1, 14, 14, 48, 5, 2, (1, 1, 2, 2)), (1, 11, 9, 7, 5, 2, (2, 2, 2, 2)), (1, 12, 12, 17, 7, 1, (3, 3, 3, 3)),
        (1, 10, 8, 16, 7, 2, (0, 3, 2, 1)), (1, 2, 3, 5, 5, 1, (2, 2, 2, 2)),
        # the 3x3 stride-1 row kernels: rows split into x tiles (C=64: 30 outputs per tile; C=8: one tile), odd and
        # 1-3 pixel widths, 1-2 row images (windows of 1 and 2 rows), C not a multiple of 4 (the rest per pixel),
        # padding 0 / 2 / one-sided (the run's first or last column outside, or border pixels per pixel)
        (1, 5, 71, 64, 3, 1, (1, 1, 1, 1)), (2, 4, 67, 66, 3, 1, (1, 0, 1, 2)), (1, 9, 33, 8, 3, 1, (1, 1, 1, 1)),
        (1, 3, 1, 12, 3, 1, (1, 1, 1, 1)), (1, 4, 2, 9, 3, 1, (1, 1, 1, 1)), (1, 3, 3, 4, 3, 1, (0, 1, 0, 1)),
        (1, 1, 9, 13, 3, 1, (1, 1, 1, 1)), (1, 2, 10, 6, 3, 1, (1, 1, 1, 1)), (3, 7, 11, 7, 3, 1, (1, 2, 1, 0)),
        (1, 6, 12, 20, 3, 1, (2, 2, 2, 2)), (1, 8, 9, 16, 3, 1, (0, 0, 2, 2)), (1, 5, 5, 11, 3, 1, (1, 0, 1, 0)),
        (1, 4, 2, 8, 3, 1, (0, 2, 0, 2)), (1, 7, 7, 960, 3, 1, (1, 1, 1, 1)),
        # the 5x5 stride-1 row kernels: images narrower than the window (1-4 pixels), pad 2 / 0 / asymmetric /
        # beyond the window (rows and columns wholly in the padding), 1-2 row images, C not a multiple of 4 and
        # below 4 (per pixel), batch 2, MobileNetV3 / EfficientNet-Lite shapes
        (1, 7, 7, 1152, 5, 1, (2, 2, 2, 2)), (1, 6, 1, 8, 5, 1, (2, 2, 2, 2)), (1, 5, 2, 12, 5, 1, (2, 2, 2, 2)),
        (1, 3, 3, 6, 5, 1, (2, 2, 2, 2)), (1, 8, 4, 16, 5, 1, (2, 2, 2, 2)), (2, 9, 13, 37, 5, 1, (2, 2, 2, 2)),
        (1, 10, 11, 20, 5, 1, (0, 0, 0, 0)), (1, 8, 9, 24, 5, 1, (1, 2, 3, 2)), (1, 7, 8, 8, 5, 1, (0, 0, 4, 4)),
        (1, 6, 7, 12, 5, 1, (4, 3, 1, 0)), (1, 1, 9, 10, 5, 1, (2, 2, 2, 2)), (1, 2, 6, 3, 5, 1, (2, 2, 2, 2)),
        (1, 5, 5, 8, 5, 1, (6, 6, 6, 6)), (1, 28, 28, 120, 5, 1, (2, 2, 2, 2)),
        # window rows with stride 2 (5x5; 3x3 up to 64 pixels wide in the relaxed build): widths 1-6, odd and
        # even, TF-style end padding, padding beyond the window (rows and columns wholly in the padding), C below 4
        # and not a multiple of 4, batch 2, MobileNetV3 / MobileNetV2 shapes
        (1, 9, 1, 8, 5, 2, (2, 2, 2, 2)), (1, 6, 2, 12, 5, 2, (1, 1, 2, 2)), (1, 7, 3, 4, 3, 2, (1, 1, 1, 1)),
        (1, 8, 6, 16, 3, 2, (0, 0, 1, 1)), (2, 11, 12, 19, 5, 2, (1, 1, 2, 2)), (1, 10, 10, 8, 5, 2, (5, 5, 5, 5)),
        (1, 9, 10, 2, 3, 2, (1, 1, 1, 1)), (1, 28, 28, 72, 5, 2, (2, 2, 2, 2)), (1, 56, 56, 24, 3, 2, (1, 1, 1, 1)),
        (1, 5, 9, 8, 3, 2, (4, 4, 4, 4)), (1, 13, 17, 12, 3, 2, (1, 2, 0, 1)),
        # stride 2 with odd sizes, batch > 1, 5x5
        (2, 13, 11, 10, 3, 2, (1, 1, 1, 1)), (1, 9, 7, 36, 5, 2, (2, 1, 2, 3)), (2, 9, 10, 19, 5, 1, (2, 2, 2, 2)),
    ]
    for i, (n, h, w, c, k, s, pads) in enumerate(dw):
        cases.append({"kind": "depthwise", "n": n, "h": h, "w": w, "c": c, "k": k, "stride": s, "pads": pads,
                      "act": ACT_NAMES[i % len(ACT_NAMES)], "bias": i % 4 != 3})
    for act in ACT_NAMES:
        cases.append({"kind": "depthwise", "n": 1, "h": 9, "w": 7, "c": 21, "k": 3, "stride": 1,
                      "pads": (1, 1, 1, 1), "act": act, "bias": True})
    convs = [  # (N, H, W, Cin, Cout, KH, KW, stride, pads, groups)
        (1, 12, 12, 16, 24, 1, 1, 1, (0, 0, 0, 0), 1), (1, 13, 11, 16, 9, 1, 1, 2, (0, 0, 0, 0), 1),
        (1, 7, 7, 1, 1, 1, 1, 1, (0, 0, 0, 0), 1), (2, 5, 6, 3, 13, 1, 1, 1, (0, 0, 0, 0), 1),
        (1, 33, 31, 3, 16, 3, 3, 2, (0, 0, 1, 1), 1), (1, 32, 32, 3, 32, 3, 3, 2, (1, 1, 1, 1), 1),
        (1, 9, 9, 8, 12, 3, 3, 1, (1, 1, 1, 1), 2), (1, 10, 10, 16, 16, 3, 3, 2, (1, 0, 1, 2), 4),
        (1, 11, 11, 6, 10, 1, 1, 1, (0, 0, 0, 0), 2), (1, 8, 8, 5, 7, 2, 3, 1, (0, 1, 1, 1), 1),
        (2, 9, 10, 9, 6, 3, 3, 2, (2, 1, 0, 3), 3), (1, 17, 15, 4, 5, 3, 3, 1, (2, 2, 2, 2), 1, 2),
        # im2col's whole-kernel-row runs: 6 floats (KW*C, one vector + an overlapping one), 1-wide image rows;
        # a group's 5-channel taps (overlapping vector tail); the stem's shape on a small image, batch 3
        (1, 9, 8, 2, 6, 3, 3, 1, (1, 1, 1, 1), 1), (1, 6, 1, 4, 3, 3, 3, 1, (1, 1, 1, 1), 1),
        (1, 10, 9, 10, 4, 3, 3, 2, (1, 1, 1, 1), 2), (3, 15, 13, 3, 8, 3, 3, 2, (1, 1, 1, 1), 1),
        # the GEMM gathers 64 windows per block: 66 pixels leave a 2-row block (the few-rows path); blocks that
        # straddle two images of a batch; 129 pixels per group of a grouped conv
        (1, 11, 6, 3, 10, 3, 3, 1, (1, 1, 1, 1), 1), (2, 9, 10, 5, 9, 3, 3, 1, (1, 1, 1, 1), 1),
        (1, 3, 43, 6, 6, 3, 3, 1, (1, 1, 1, 1), 3),
    ]
    for i, (n, h, w, ci, co, kh, kw, s, pads, g, *dil) in enumerate(convs):
        cases.append({"kind": "conv", "n": n, "h": h, "w": w, "cin": ci, "cout": co, "kh": kh, "kw": kw,
                      "stride": s, "pads": pads, "groups": g, "dilation": dil[0] if dil else 1,
                      "act": ACT_NAMES[(i * 2) % len(ACT_NAMES)], "bias": i % 3 != 1})
    for i, (n, k, m) in enumerate([(1, 1280, 1000), (3, 17, 9), (1, 1, 1), (2, 64, 129)]):
        cases.append({"kind": "dense", "n": n, "k": k, "m": m, "act": ACT_NAMES[(i * 3) % len(ACT_NAMES)],
                      "bias": i != 2})
    # a projection and its residual add as one GEMM (plan_fusion.ConvAdd): M past and below the 64-row blocks, 1-3 rows
    # (the few-rows path), N not a multiple of 8 or 4, no bias, the add's activation after the residual
    for i, (n, h, w, ci, co, act) in enumerate([(1, 7, 7, 16, 24, "none"), (1, 9, 11, 32, 20, "relu6"),
                                                (2, 5, 5, 8, 3, "hardswish"), (1, 1, 3, 5, 7, "none"),
                                                (1, 14, 14, 96, 32, "sigmoid"), (1, 8, 9, 24, 13, "relu")]):
        cases.append({"kind": "conv_add", "n": n, "h": h, "w": w, "cin": ci, "cout": co, "act": act, "bias": i != 3})
    # an expansion 1x1 conv and its depthwise conv by bands of output rows (plan_fusion.PointwiseDepthwise): band
    # buffers of 1 output row up to the whole image (band bytes), stride 1 (2 rows carried to the next band) and 2,
    # pads 0 / 1 / TF-style / 2 (5x5), batch 2, C not a multiple of 4, both activations in the kernels or the
    # second one (sigmoid) after them
    pwdw = [  # (N, H, W, Cin, C, K, stride, pads, band bytes, act1, act2)
        (1, 9, 7, 8, 12, 3, 1, (1, 1, 1, 1), 1, "relu6", "relu6"),
        (1, 9, 7, 8, 12, 3, 2, (1, 1, 1, 1), 1, "relu6", "none"),
        (2, 10, 6, 5, 7, 3, 2, (0, 0, 1, 1), 3000, "hardswish", "relu"),
        (1, 12, 5, 16, 24, 3, 1, (1, 1, 1, 1), 2000, "none", "sigmoid"),
        (1, 11, 9, 6, 20, 5, 1, (2, 2, 2, 2), 4000, "relu", "hardswish"),
        (2, 13, 8, 4, 9, 5, 2, (2, 2, 2, 2), 5000, "relu6", "relu6"),
        (1, 8, 8, 3, 16, 3, 1, (0, 0, 0, 0), 1500, "clip_-1_2.5", "none"),
        (1, 14, 14, 16, 96, 3, 2, (1, 1, 1, 1), 1 << 20, "relu6", "relu6"),
    ]
    # the stem's form: a 3x3 stride-2 conv whose windows the GEMM gathers (64 rows per block, a band's rows
    # starting mid-image), then the depthwise conv (K1, stride 1, pads 1 of the first conv)
    pwdw += [(1, 17, 15, 3, 8, 3, 1, (1, 1, 1, 1), 1, "relu6", "relu6", 3, 2),
             (2, 20, 19, 3, 16, 3, 2, (1, 1, 1, 1), 6000, "relu", "none", 3, 2),
             (1, 9, 11, 5, 12, 3, 1, (1, 1, 1, 1), 2500, "hardswish", "relu6", 3, 1)]
    for n, h, w, ci, c, k, s, pads, band, a1, a2, *first in pwdw:
        cases.append({"kind": "pwdw", "n": n, "h": h, "w": w, "cin": ci, "c": c, "k": k, "stride": s,
                      "pads": pads, "band": band, "act1": a1, "act": a2, "bias": c % 2 == 0,
                      "k1": first[0] if first else 1, "s1": first[1] if first else 1})
    for n, h, w, c in [(1, 7, 7, 1280), (1, 1, 1, 3), (2, 14, 14, 37), (1, 56, 56, 24), (1, 3, 5, 21)]:
        cases.append({"kind": "gap", "n": n, "h": h, "w": w, "c": c, "act": "none"})
    for i, c in enumerate(cases):
        c["name"] = f"{i:03d}-" + "-".join(f"{k}={v}" for k, v in c.items() if k != "kind").replace(" ", "")
        c["name"] = c["kind"] + "-" + c["name"]
    return cases


CASES = _cases()

CODE = r"""
import json
import os
import numpy as np
from wasmvision import simd
from wasmvision.kernels import get_op
from wasmvision.kernels.base import make_activation
from wasmvision.plan_fusion import ConvAdd, PointwiseDepthwise
from wasmvision.simd import ops as simd_ops

BAND_BYTES = simd_ops.PWDW_BAND_BYTES
from wasmvision.simd.ops import gemm_call, prepare_simd, split_activation

build = open("/work/in/build.txt").read()
if build == "plain":
    os.environ[simd.BUILD_ENV] = "plain"
lib, why = simd.default_library()
assert lib is not None, why
assert lib.build == build, f"loaded the {lib.build} build, not the {build} one"
outputs = {}
cases = json.load(open("/work/in/cases.json"))
acts = json.load(open("/work/in/acts.json"))
rng = np.random.default_rng(0)
results = {}


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def misaligned(shape, extra_cols):
    # A row-strided (M, K) view starting one float into its buffer: neither 16-byte aligned nor contiguous.
    base = np.zeros(shape[0] * (shape[1] + extra_cols) + 1, np.float32)[1:].reshape(shape[0], shape[1] + extra_cols)
    return base[:, :shape[1]]


def run_simd(op, arrays, out_shapes):
    shapes = [a.shape if a is not None else None for a in arrays]
    outs = [np.full(s, np.nan, np.float32) for s in op.infer(shapes)]
    scratch = [np.full(s, np.nan, np.float32) for s in op.scratch(shapes)]
    step = prepare_simd(lib, op, arrays, outs, scratch)
    assert step is not None, "the SIMD kernels did not take this node"
    step()
    return outs[0]


for c in cases:
    spec = acts[c["act"]]
    if c["kind"] == "gemm":
        m, k, n = c["m"], c["k"], c["n"]
        if c["layout"] == "contiguous":
            a, y = rand(m, k), np.full((m, n), np.nan, np.float32)
        else:
            a, y = misaligned((m, k), 3), misaligned((m, n), 5)
            a[...] = rand(m, k)
            y[...] = np.nan
        w, b = rand(k, n), (rand(n) if c["bias"] else None)
        act, rest = split_activation(spec)
        step = gemm_call(lib, a, w, b, y, act)
        assert step is not None
        step()
        post = make_activation(rest, y)
        if post is not None:
            post()
        ref = a.astype(np.float64) @ w.astype(np.float64) + (0 if b is None else b)
        ref = ref.astype(np.float32)
        rp = make_activation(spec, ref, [np.empty_like(ref)])
        if rp is not None:
            rp()
        got = y
    else:
        if c["kind"] == "depthwise":
            x, wt = rand(c["n"], c["h"], c["w"], c["c"]), rand(c["k"], c["k"], 1, c["c"])
            attrs = {"strides": [c["stride"]] * 2, "pads": list(c["pads"]), "groups": c["c"]}
            b = rand(c["c"]) if c["bias"] else None
        elif c["kind"] == "conv":
            x = rand(c["n"], c["h"], c["w"], c["cin"])
            wt = rand(c["kh"], c["kw"], c["cin"] // c["groups"], c["cout"])
            attrs = {"strides": [c["stride"]] * 2, "pads": list(c["pads"]), "groups": c["groups"],
                     "dilations": [c["dilation"]] * 2}
            b = rand(c["cout"]) if c["bias"] else None
        elif c["kind"] == "conv_add":
            x, wt = rand(c["n"], c["h"], c["w"], c["cin"]), rand(1, 1, c["cin"], c["cout"])
            b, r = (rand(c["cout"]) if c["bias"] else None), rand(c["n"], c["h"], c["w"], c["cout"])
            attrs, op = {}, ConvAdd(get_op("conv2d", {}, node=c["name"]), spec, node=c["name"])
            ref = op.conv.compute(*[a for a in (x, wt, b) if a is not None]) + r
            rp = make_activation(spec, ref, [np.empty_like(ref)])
            if rp is not None:
                rp()
            got = run_simd(op, [x, wt, b, r], None)
        elif c["kind"] == "pwdw":
            k1, s1 = c["k1"], c["s1"]
            x, w1 = rand(c["n"], c["h"], c["w"], c["cin"]), rand(k1, k1, c["cin"], c["c"])
            w2 = rand(c["k"], c["k"], 1, c["c"])
            b1, b2 = (rand(c["c"]), rand(c["c"])) if c["bias"] else (None, None)
            pw = get_op("conv2d", {"activation": acts[c["act1"]] or {"kind": "none"}, "strides": [s1, s1],
                                   "pads": [k1 // 2] * 4}, node=c["name"])
            dw = get_op("conv2d", {"strides": [c["stride"]] * 2, "pads": list(c["pads"]), "groups": c["c"],
                                   "activation": spec or {"kind": "none"}}, node=c["name"])
            attrs, op = {}, PointwiseDepthwise(pw, dw, node=c["name"])
            ref = dw.compute(*[a for a in (pw.compute(*[a for a in (x, w1, b1) if a is not None]), w2, b2)
                               if a is not None])
            simd_ops.PWDW_BAND_BYTES = c["band"]
            got = run_simd(op, [x, w1, b1, w2, b2], None)
            simd_ops.PWDW_BAND_BYTES = BAND_BYTES
        elif c["kind"] == "dense":
            x, wt = rand(c["n"], c["k"]), rand(c["k"], c["m"])
            attrs, b = {}, (rand(c["m"]) if c["bias"] else None)
        else:
            x, wt, b, attrs = rand(c["n"], c["h"], c["w"], c["c"]), None, None, {}
        if spec:
            attrs["activation"] = spec
        if c["kind"] not in ("conv_add", "pwdw"):
            name = {"dense": "dense", "gap": "global_avg_pool"}.get(c["kind"], "conv2d")
            op = get_op(name, attrs, node=c["name"])
            arrays = [a for a in (x, wt, b) if a is not None]
            ref = op.compute(*arrays)
            got = run_simd(op, arrays, None)
    err = float(np.abs(got.astype(np.float64) - ref).max()) if got.size else 0.0
    outputs[c["name"]] = got
    results[c["name"]] = {"err": err, "scale": float(np.abs(ref).max()), "shape": list(got.shape),
                          "ref_shape": list(ref.shape), "nan": bool(np.isnan(got).any())}
json.dump(results, open("/work/out/results.json", "w"))
json.dump(lib.layout, open("/work/out/layout.json", "w"))
linked = [lib.still_linked()]
lib.layout = {**lib.layout, "GemmParams.act": -1}  # what a library at another memory base would report
linked.append(lib.still_linked())
json.dump(linked, open("/work/out/linked.json", "w"))
np.savez("/work/out/outputs.npz", **outputs)
"""

BUILDS = {"plain": (), "relaxed": RELAXED_SIMD}


@pytest.fixture(scope="module", params=list(BUILDS))
def pyodide_out(request, tmp_path_factory):
    return _run_build(tmp_path_factory, request.param)


_RUNS: dict[str, dict] = {}  # one Node run per build, shared by the per-build tests and the cross-build one


def _run_build(tmp_path_factory, build):
    if build not in _RUNS:
        work = tmp_path_factory.mktemp(f"simd-kernels-{build}")
        _RUNS[build] = _run_in(work, build)
    return _RUNS[build]


def _run_in(work, build):
    return run_in_pyodide(work, CODE, {"cases.json": json.dumps(CASES).encode(), "acts.json": json.dumps(ACTS).encode(),
                                       "build.txt": build.encode()}, node_args=BUILDS[build])


@pytest.fixture(scope="module")
def results(pyodide_out):
    return json.loads(pyodide_out["results.json"])


def test_the_wasm_library_parameter_layout_matches_the_ctypes_structs(pyodide_out):
    """layout.c's table as the Wasm side module reports it (wasm32 offsets) against descriptors.py."""
    from wasmvision.simd.descriptors import expected_layout, layout_problems

    c_table = json.loads(pyodide_out["layout.json"])
    assert set(c_table) == set(expected_layout()) and "GemmParams.act" in c_table
    assert layout_problems(c_table) == []


def test_the_check_after_a_restore_tells_a_moved_library(pyodide_out):
    """still_linked() (run on every restored memory snapshot) holds for the loaded library, and fails once what the
    entry points report no longer matches what the library recorded at load."""
    assert json.loads(pyodide_out["linked.json"]) == [True, False]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_simd_kernel_matches_numpy(results, case):
    r = results[case["name"]]
    assert r["shape"] == r["ref_shape"]
    assert not r["nan"], "the kernel left unwritten (NaN) outputs"
    # float32 sums in another order: a few ulps of the largest partial sums
    assert r["err"] <= 2e-5 * max(1.0, r["scale"]) * max(1, case.get("k", 1) ** 0.5 / 4), r


def test_relaxed_and_plain_builds_agree(tmp_path_factory):
    """The fused multiply-adds change roundings only: every case within 1e-4 of its output scale of the plain build."""
    import io

    plain, relaxed = (np.load(io.BytesIO(_run_build(tmp_path_factory, b)["outputs.npz"])) for b in ("plain", "relaxed"))
    assert sorted(plain.files) == sorted(relaxed.files) == sorted(c["name"] for c in CASES)
    worst = max(((float(np.abs(plain[n].astype(np.float64) - relaxed[n]).max(initial=0.0))
                  / max(1.0, float(np.abs(plain[n]).max(initial=0.0))), n) for n in plain.files))
    assert worst[0] <= 1e-4, worst
