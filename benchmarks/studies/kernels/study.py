"""Kernel-formulation study: which numpy formulation of each MobileNetV2 layer is fastest in Pyodide (Wasm).

Run inside Pyodide (Node: `node benchmarks/studies/kernels/run_node.mjs benchmarks/studies/kernels/study.py [--quick] [--only KIND]`,
or in Chromium via benchmarks/studies/kernels/browser_study.py). Running it natively measures OpenBLAS numpy, which says
nothing about Wasm speed.

Method: every candidate of one shape is checked against a reference once, warmed up twice, then timed call by
call in round-robin order (ROUNDS rounds x `reps` calls, the order rotated each round), so drift and bursts of
load from other processes hit all candidates alike; a candidate's figure is the median over all its calls. GFLOPS counts a multiply-add as 2 FLOPs.
Prints a JSON document on the last line after the marker `STUDY-JSON:` (also written to /out when mounted).
"""
import json
import os
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import as_strided

ROUNDS = 5
QUICK = "--quick" in sys.argv
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
rng = np.random.default_rng(0)
UMATH_CLIP = np._core.umath.clip if hasattr(np, "_core") else np.core.umath.clip


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def race(cands, flops, reps, ref=None, check=None):
    """cands: {name: fn}. fn() returns the result array (for the check). Returns {name: {ms, gflops, p90}}."""
    samples = {k: [] for k in cands}
    if ref is not None:
        for k, fn in cands.items():
            got = fn()
            got = check(got) if check else got
            if not np.allclose(got, ref, rtol=1e-3, atol=1e-3):
                raise AssertionError(f"{k}: wrong result (max err {np.abs(got - ref).max()})")
    for fn in cands.values():
        fn(); fn()
    rounds = 2 if QUICK else ROUNDS
    clock = time.perf_counter
    items = list(cands.items())
    for r in range(rounds):
        # call-level round robin (rotated each round): bursts of load from other processes hit every
        # candidate alike, so the ratios stay meaningful even when absolute times drift
        order = items[r % len(items):] + items[:r % len(items)]
        for _ in range(reps):
            for k, fn in order:
                t0 = clock()
                fn()
                samples[k].append((clock() - t0) * 1e3)
    res = {}
    for k, s in samples.items():
        s = np.sort(np.array(s))
        med = float(np.median(s))
        res[k] = {"ms": round(med, 4), "p90": round(float(s[int(0.9 * (len(s) - 1))]), 4),
                  "gflops": round(flops / med / 1e6, 3) if flops else None, "n": len(s)}
    return res


def reps_for(flops):
    # ~ 40 ms of work per round per candidate at ~5 GFLOPS, between 3 and 60 calls
    return int(min(60, max(3, 0.04 * 5e9 / max(flops, 1))))


# ---------------------------------------------------------------------------------------------- pointwise
POINTWISE = [  # (pixels, cin, cout, role)
    (112 * 112, 32, 16, "project b0"), (112 * 112, 16, 96, "expand b1"), (56 * 56, 96, 24, "project b1"),
    (56 * 56, 24, 144, "expand"), (56 * 56, 144, 24, "project"), (28 * 28, 144, 32, "project"),
    (28 * 28, 32, 192, "expand"), (28 * 28, 192, 32, "project"), (14 * 14, 192, 64, "project"),
    (14 * 14, 64, 384, "expand"), (14 * 14, 384, 64, "project"), (14 * 14, 384, 96, "project"),
    (14 * 14, 96, 576, "expand"), (14 * 14, 576, 96, "project"), (7 * 7, 576, 160, "project"),
    (7 * 7, 160, 960, "expand"), (7 * 7, 960, 160, "project"), (7 * 7, 960, 320, "project"),
    (7 * 7, 320, 1280, "final 1x1"),
]
# how many times each (P, cin, cout) occurs in the network (for weighting)
POINTWISE_COUNT = {(12544, 32, 16): 1, (12544, 16, 96): 1, (3136, 96, 24): 1, (3136, 24, 144): 2,
                   (3136, 144, 24): 1, (784, 144, 32): 1, (784, 32, 192): 3, (784, 192, 32): 2,
                   (196, 192, 64): 1, (196, 64, 384): 4, (196, 384, 64): 3, (196, 384, 96): 1,
                   (196, 96, 576): 3, (196, 576, 96): 2, (49, 576, 160): 1, (49, 160, 960): 3,
                   (49, 960, 160): 2, (49, 960, 320): 1, (49, 320, 1280): 1}


def study_pointwise(dtype=np.float32, chunks=(256, 512, 1024, 2048)):
    results = []
    for P, ci, co, role in POINTWISE:
        x = rng.standard_normal((P, ci)).astype(dtype)          # (P, Cin) NHWC rows
        w = (rng.standard_normal((ci, co)) * 0.1).astype(dtype)  # (Cin, Cout)
        wt = np.ascontiguousarray(w.T)                           # (Cout, Cin)
        xc = np.ascontiguousarray(x.T)                           # (Cin, P) channel-major (NCHW)
        b = rng.standard_normal(co).astype(dtype)
        y = np.empty((P, co), dtype)
        yc = np.empty((co, P), dtype)
        ref = x.astype(np.float64) @ w.astype(np.float64)
        tr = lambda a: a.T  # noqa: E731  channel-major results compared transposed
        c = {
            "einsum pc,cd->pd out": lambda: np.einsum("pc,cd->pd", x, w, out=y),
            "einsum pc,cd->pd": lambda: np.einsum("pc,cd->pd", x, w),
            "einsum cd,pc->pd out": lambda: np.einsum("cd,pc->pd", w, x, out=y),
            "einsum pc,dc->pd out (W^T stored)": lambda: np.einsum("pc,dc->pd", x, wt, out=y),
            "matmul out": lambda: np.matmul(x, w, out=y),
            "np.dot out": lambda: np.dot(x, w, out=y),
            "tensordot": lambda: np.tensordot(x, w, axes=1),
        }
        for B in chunks:
            if B < P:
                def chunked(B=B):
                    for s in range(0, P, B):
                        np.einsum("pc,cd->pd", x[s:s + B], w, out=y[s:s + B])
                    return y
                c[f"einsum pc,cd->pd out, {B}-row chunks"] = chunked
        res = race(c, 2 * P * ci * co, reps_for(2 * P * ci * co), ref=ref)
        cc = {
            "NCHW einsum dc,cp->dp out": lambda: np.einsum("dc,cp->dp", wt, xc, out=yc),
            "NCHW einsum cd,cp->dp out": lambda: np.einsum("cd,cp->dp", w, xc, out=yc),
            "NCHW matmul out": lambda: np.matmul(wt, xc, out=yc),
        }
        for B in chunks:
            if B < P:
                def chunked_c(B=B):
                    for s in range(0, P, B):
                        np.einsum("dc,cp->dp", wt, xc[:, s:s + B], out=yc[:, s:s + B])
                    return yc
                cc[f"NCHW einsum dc,cp->dp out, {B}-col chunks"] = chunked_c
        res.update(race(cc, 2 * P * ci * co, reps_for(2 * P * ci * co), ref=ref, check=tr))
        # epilogues on the (P, Cout) result: bias + ReLU6
        e = {
            "bias np.add out": lambda: np.add(y, b, out=y),
            "clip(0,6) out": lambda: np.clip(y, 0, 6, out=y),
            "clip(0.0,6.0) out": lambda: np.clip(y, 0.0, 6.0, out=y),
            "clip(f32 0,6) out": lambda: np.clip(y, np.float32(0), np.float32(6), out=y),
            "maximum+minimum out": lambda: (np.maximum(y, 0, out=y), np.minimum(y, 6, out=y)),
            "umath.clip out (no python wrapper)": lambda: UMATH_CLIP(y, np.float32(0), np.float32(6), out=y),
        }
        er = race(e, 0, max(3, min(200, int(2e6 / (P * co)))))
        results.append({"shape": [P, ci, co], "role": role, "count": POINTWISE_COUNT[(P, ci, co)],
                        "mflop": round(2 * P * ci * co / 1e6, 3), "candidates": res, "epilogue": er})
        best = min(res, key=lambda k: res[k]["ms"])
        print(f"pw {P:6d}x{ci:4d}->{co:4d}: best {best} {res[best]['gflops']} GFLOPS;"
              f" einsum-out {res['einsum pc,cd->pd out']['gflops']}; matmul {res['matmul out']['gflops']};"
              f" clip {er['clip(0,6) out']['ms']:.3f} ms bias {er['bias np.add out']['ms']:.3f} ms", flush=True)
    return results


def study_bias_fold():
    """Bias folded into the contraction as an extra input column of ones (W gets a bias row)."""
    out = []
    for P, ci, co in [(12544, 16, 96), (3136, 24, 144), (784, 32, 192), (196, 96, 576), (49, 160, 960)]:
        x1 = np.ones((P, ci + 1), np.float32); x1[:, :ci] = rng.standard_normal((P, ci))
        w1 = rng.standard_normal((ci + 1, co)).astype(np.float32)
        y = np.empty((P, co), np.float32)
        x = np.ascontiguousarray(x1[:, :ci]); w = np.ascontiguousarray(w1[:ci]); b = w1[ci].copy()
        ref = x1.astype(np.float64) @ w1
        def sep():
            np.einsum("pc,cd->pd", x, w, out=y); np.add(y, b, out=y); return y
        def fold():
            return np.einsum("pc,cd->pd", x1, w1, out=y)
        def fold_strided_view():  # x1[:, :ci] is what the previous layer writes into
            np.einsum("pc,cd->pd", x1[:, :ci], w, out=y); np.add(y, b, out=y); return y
        r = race({"einsum + np.add(out)": sep, "ones column folded": fold,
                  "einsum on strided (P,Cin) view + add": fold_strided_view},
                 2 * P * ci * co, reps_for(2 * P * ci * co), ref=ref)
        out.append({"shape": [P, ci, co], "candidates": r})
        print("bias", P, ci, co, {k: v["ms"] for k, v in r.items()}, flush=True)
    return out


def study_einsum_layout():
    """Does einsum speed depend on operand contiguity and on which index is innermost?"""
    P, ci, co = 3136, 24, 144
    x = rng.standard_normal((P, ci)).astype(np.float32)
    w = rng.standard_normal((ci, co)).astype(np.float32)
    xF = np.asfortranarray(x); wF = np.asfortranarray(w)
    y = np.empty((P, co), np.float32); yF = np.empty((P, co), np.float32, order="F")
    xs = np.empty((P, 2 * ci), np.float32)[:, ::2]; xs[...] = x  # strided, non-contiguous rows
    ref = x.astype(np.float64) @ w
    c = {
        "C x, C w, C out": lambda: np.einsum("pc,cd->pd", x, w, out=y),
        "F x (c outer), C w": lambda: np.einsum("pc,cd->pd", xF, w, out=y),
        "C x, F w": lambda: np.einsum("pc,cd->pd", x, wF, out=y),
        "F x, F w": lambda: np.einsum("pc,cd->pd", xF, wF, out=y),
        "C x, C w, F out": lambda: np.einsum("pc,cd->pd", x, w, out=yF),
        "strided x (step 2)": lambda: np.einsum("pc,cd->pd", xs, w, out=y),
        "x from NCHW .T view, C out": lambda: np.einsum("cp,cd->pd", xF.T, w, out=y),
        "optimize=True": lambda: np.einsum("pc,cd->pd", x, w, optimize=True),
    }
    r = race(c, 2 * P * ci * co, reps_for(2 * P * ci * co), ref=ref)
    for k, v in r.items():
        print(f"layout {k}: {v['gflops']} GFLOPS", flush=True)
    return {"shape": [P, ci, co], "candidates": r}


# ---------------------------------------------------------------------------------------------- depthwise
DEPTHWISE = [(112, 32, 1, 1), (112, 96, 2, 1), (56, 144, 1, 1), (56, 144, 2, 1), (28, 192, 1, 2),
             (28, 192, 2, 1), (14, 384, 1, 4), (14, 576, 1, 2), (14, 576, 2, 1), (7, 960, 1, 3)]
# (input size, channels, stride, occurrences)


def dw_reference(xp, w, s, Ho):
    # xp (H+2, W+2, C) zero padded, w (3, 3, C) -> (Ho, Ho, C)
    acc = np.zeros((Ho, Ho, xp.shape[2]))
    for i in range(3):
        for j in range(3):
            acc += xp[i:i + s * Ho:s, j:j + s * Ho:s].astype(np.float64) * w[i, j]
    return acc


def study_depthwise(dtype=np.float32):
    results = []
    for H, C, s, count in DEPTHWISE:
        Ho = H // s
        x = rng.standard_normal((H, H, C)).astype(dtype)
        w = rng.standard_normal((3, 3, C)).astype(dtype)
        b = rng.standard_normal(C).astype(dtype)
        xp = np.zeros((H + 2, H + 2, C), dtype); xp[1:-1, 1:-1] = x           # (H+2, W+2, C) pre-padded
        xpc = np.ascontiguousarray(xp.transpose(2, 0, 1))                      # (C, H+2, W+2)
        wc = np.ascontiguousarray(w.transpose(2, 0, 1))[..., None, None]       # (C, 3, 3, 1, 1)
        out = np.empty((Ho, Ho, C), dtype); tmp = np.empty_like(out)
        outc = np.empty((C, Ho, Ho), dtype); tmpc = np.empty_like(outc)
        full = np.empty((H, H, C), dtype); fulltmp = np.empty_like(full)
        ref = dw_reference(xp, w, s, Ho)
        E = s * Ho

        def taps_ufunc_out():
            np.multiply(xp[0:E:s, 0:E:s], w[0, 0], out=out)
            for i in range(3):
                for j in range(3):
                    if i or j:
                        np.multiply(xp[i:i + E:s, j:j + E:s], w[i, j], out=tmp)
                        np.add(out, tmp, out=out)
            return out

        def taps_ufunc_out_bias_first():
            # bias folded into the first tap: out = x*w00 + b, then 8 more taps
            np.multiply(xp[0:E:s, 0:E:s], w[0, 0], out=out); np.add(out, b, out=out)
            for i in range(3):
                for j in range(3):
                    if i or j:
                        np.multiply(xp[i:i + E:s, j:j + E:s], w[i, j], out=tmp)
                        np.add(out, tmp, out=out)
            return out

        def taps_expr():
            acc = xp[0:E:s, 0:E:s] * w[0, 0]
            for i in range(3):
                for j in range(3):
                    if i or j:
                        acc += xp[i:i + E:s, j:j + E:s] * w[i, j]
            return acc

        def taps_nchw():
            np.multiply(xpc[:, 0:E:s, 0:E:s], wc[:, 0, 0], out=outc)
            for i in range(3):
                for j in range(3):
                    if i or j:
                        np.multiply(xpc[:, i:i + E:s, j:j + E:s], wc[:, i, j], out=tmpc)
                        np.add(outc, tmpc, out=outc)
            return outc

        def taps_nhwc_wide():
            # stride 1 only: compute on the padded width so each tap is one contiguous 2-D slab
            Wp = H + 2
            flat = xp.reshape(-1, C)
            o = fullw.reshape(-1, C); t = tmpw.reshape(-1, C)
            n = H * Wp - 2
            np.multiply(flat[0:n], w[0, 0], out=o[:n])
            for i in range(3):
                for j in range(3):
                    if i or j:
                        off = i * Wp + j
                        np.multiply(flat[off:off + n], w[i, j], out=t[:n])
                        np.add(o[:n], t[:n], out=o[:n])
            return fullw[:, :H]

        def taps_nchw_wide():
            Wp = H + 2
            flat = xpc.reshape(C, -1)
            o = fullwc.reshape(C, -1); t = tmpwc.reshape(C, -1)
            n = H * Wp - 2
            w2 = wc[:, :, :, 0]  # (C, 3, 3, 1)
            np.multiply(flat[:, 0:n], w2[:, 0, 0], out=o[:, :n])
            for i in range(3):
                for j in range(3):
                    if i or j:
                        off = i * Wp + j
                        np.multiply(flat[:, off:off + n], w2[:, i, j], out=t[:, :n])
                        np.add(o[:, :n], t[:, :n], out=o[:, :n])
            return fullwc[:, :, :H]

        def stride1_then_subsample():
            np.multiply(xp[0:H, 0:H], w[0, 0], out=full)
            for i in range(3):
                for j in range(3):
                    if i or j:
                        np.multiply(xp[i:i + H, j:j + H], w[i, j], out=fulltmp)
                        np.add(full, fulltmp, out=full)
            return full[::2, ::2]

        sh = xp.strides
        win = as_strided(xp, (Ho, Ho, 3, 3, C), (sh[0] * s, sh[1] * s, sh[0], sh[1], sh[2]), writeable=False)

        def einsum_window():
            return np.einsum("hwijc,ijc->hwc", win, w, out=out)

        winf = as_strided(xp, (Ho, Ho, 3, 3, C), (sh[0] * s, sh[1] * s, sh[0], sh[1], sh[2]), writeable=False)

        def einsum_per_row():
            # 3 einsums over (Ho, Ho, 3, C) row windows, accumulate
            np.einsum("hwjc,jc->hwc", winf[:, :, 0], w[0], out=out)
            for i in (1, 2):
                np.einsum("hwjc,jc->hwc", winf[:, :, i], w[i], out=tmp)
                np.add(out, tmp, out=out)
            return out

        fullw = np.zeros((H, H + 2, C), dtype); tmpw = np.zeros_like(fullw)
        fullwc = np.zeros((C, H, H + 2), dtype); tmpwc = np.zeros_like(fullwc)
        c = {"9 taps NHWC multiply/add out=": taps_ufunc_out,
             "9 taps NHWC + bias in first tap": taps_ufunc_out_bias_first,
             "9 taps NHWC x*w accumulate (allocating)": taps_expr,
             "einsum over as_strided 3x3 window": einsum_window,
             "3 einsums over row windows + add": einsum_per_row}
        chk = {"9 taps NHWC + bias in first tap": lambda r: r - b}
        r = {}
        if s == 1:
            # a window row is one contiguous run of Ho*C values: einsum's inner loop runs over Ho*C
            rowrun = as_strided(xp, (Ho, 3, 3, Ho * C), (sh[0], sh[0], sh[1], sh[2]), writeable=False)
            wtile = np.ascontiguousarray(np.tile(w, (1, 1, Ho)))  # (3, 3, Ho*C)
            out_rows = out.reshape(Ho, Ho * C)
            c["einsum over row-run window (Ho*C inner, tiled w)"] = \
                lambda: (np.einsum("hijk,ijk->hk", rowrun, wtile, out=out_rows), out)[1]
            c["9 taps NHWC wide rows (2-D contiguous slabs)"] = taps_nhwc_wide
            c["9 taps NCHW wide rows (2-D contiguous slabs)"] = taps_nchw_wide
        else:
            c["stride 1 everywhere then [::2, ::2]"] = stride1_then_subsample
        flops = 2 * 9 * Ho * Ho * C
        # check each (NCHW ones transposed)
        for k, fn in list(c.items()):
            got = fn()
            got = chk.get(k, lambda a: a)(got)
            if "NCHW" in k:
                got = got.transpose(1, 2, 0)
            if not np.allclose(got, ref, rtol=1e-3, atol=1e-3):
                raise AssertionError(f"dw {H} {C} {s} {k}: max err {np.abs(got - ref).max()}")
        c["9 taps NCHW multiply/add out="] = taps_nchw
        r = race(c, flops, reps_for(flops * 4))
        results.append({"shape": [H, H, C], "stride": s, "count": count, "mflop": round(flops / 1e6, 3),
                        "candidates": r})
        best = min(r, key=lambda k: r[k]["ms"])
        print(f"dw {H}x{H}x{C} s{s}: best {best} {r[best]['ms']:.3f} ms ({r[best]['gflops']} GFLOPS); "
              + "; ".join(f"{k}={v['ms']:.2f}" for k, v in r.items()), flush=True)
    return results


# ---------------------------------------------------------------------------------------------- stem
def study_stem(dtype=np.float32):
    x = rng.standard_normal((224, 224, 3)).astype(dtype)
    w = (rng.standard_normal((3, 3, 3, 32)) * 0.1).astype(dtype)  # HWIO
    xp = np.zeros((226, 226, 3), dtype); xp[1:-1, 1:-1] = x       # pads 1 (torchvision); 225 would do for s2
    out = np.empty((112, 112, 32), dtype); tmp = np.empty_like(out)
    cols = np.empty((112, 112, 27), dtype)
    sh = xp.strides
    win = as_strided(xp, (112, 112, 3, 3, 3), (2 * sh[0], 2 * sh[1], sh[0], sh[1], sh[2]), writeable=False)
    rowwin = as_strided(xp, (3, 112, 112, 9), (sh[0], 2 * sh[0], 2 * sh[1], sh[2]), writeable=False)
    w27 = w.reshape(27, 32); w9 = w.reshape(3, 9, 32)
    ref = np.einsum("hwijc,ijcd->hwd", win.astype(np.float64), w.astype(np.float64))

    def im2col_copy():
        cols[...] = win.reshape(112, 112, 27)
        return np.einsum("hwk,kd->hwd", cols, w27, out=out)

    def im2col_taps():
        for i in range(3):
            for j in range(3):
                cols[:, :, (i * 3 + j) * 3:(i * 3 + j + 1) * 3] = xp[i:i + 224:2, j:j + 224:2]
        return np.einsum("hwk,kd->hwd", cols, w27, out=out)

    def im2col_flat():
        cols[...] = win.reshape(112, 112, 27)
        np.einsum("pk,kd->pd", cols.reshape(-1, 27), w27, out=out.reshape(-1, 32))
        return out

    def taps9():
        np.einsum("hwc,cd->hwd", xp[0:224:2, 0:224:2], w[0, 0], out=out)
        for i in range(3):
            for j in range(3):
                if i or j:
                    np.einsum("hwc,cd->hwd", xp[i:i + 224:2, j:j + 224:2], w[i, j], out=tmp)
                    np.add(out, tmp, out=out)
        return out

    def rows3():
        np.einsum("hwk,kd->hwd", rowwin[0], w9[0], out=out)
        for i in (1, 2):
            np.einsum("hwk,kd->hwd", rowwin[i], w9[i], out=tmp)
            np.add(out, tmp, out=out)
        return out

    def einsum_window():
        return np.einsum("hwijc,ijcd->hwd", win, w, out=out)

    def im2col_matmul():
        cols[...] = win.reshape(112, 112, 27)
        np.matmul(cols.reshape(-1, 27), w27, out=out.reshape(-1, 32))
        return out

    w27t = np.ascontiguousarray(w27.T)  # (32, 27)
    colsc = np.empty((27, 112 * 112), dtype)
    outc = np.empty((32, 112 * 112), dtype)

    def im2col_wt():
        cols[...] = win.reshape(112, 112, 27)
        np.einsum("pk,dk->pd", cols.reshape(-1, 27), w27t, out=out.reshape(-1, 32))
        return out

    def im2col_nchw():
        colsc[...] = win.reshape(-1, 27).T
        np.einsum("dk,kp->dp", w27t, colsc, out=outc)
        return outc.T.reshape(112, 112, 32)

    out_nhwc = np.empty((112 * 112, 32), dtype)

    def im2col_nchw_to_nhwc():
        # the same, then the (32, P) result copied to NHWC for an NHWC network
        colsc[...] = win.reshape(-1, 27).T
        np.einsum("dk,kp->dp", w27t, colsc, out=outc)
        np.copyto(out_nhwc, outc.T)
        return out_nhwc.reshape(112, 112, 32)

    def im2col_nchw_matmul():
        colsc[...] = win.reshape(-1, 27).T
        np.matmul(w27t, colsc, out=outc)
        return outc.T.reshape(112, 112, 32)

    flops = 2 * 112 * 112 * 27 * 32
    r = race({"im2col copy + einsum pk,dk->pd (W^T stored)": im2col_wt,
              "im2col (27, P) channel-major + einsum dk,kp->dp": im2col_nchw,
              "im2col (27, P) channel-major + matmul": im2col_nchw_matmul,
              "im2col (27, P) + einsum dk,kp->dp + copy to NHWC": im2col_nchw_to_nhwc,"im2col (window copy) + einsum hwk,kd": im2col_copy, "im2col (9 tap copies) + einsum": im2col_taps,
              "im2col copy + einsum pk,kd (2-D)": im2col_flat, "im2col copy + matmul": im2col_matmul,
              "9 taps of (3->32) einsum + add": taps9, "3 row windows (9->32) einsum + add": rows3,
              "einsum over 5-D window": einsum_window},
             flops, reps_for(flops), ref=ref)
    for k, v in r.items():
        print(f"stem {k}: {v['ms']:.2f} ms {v['gflops']} GFLOPS", flush=True)
    return {"mflop": flops / 1e6, "candidates": r}


# ---------------------------------------------------------------------------------------------- head
def study_head():
    x = np.maximum(rng.standard_normal((7, 7, 1280)), 0).astype(np.float32)
    x2 = x.reshape(49, 1280)
    W = (rng.standard_normal((1280, 1000)) * 0.05).astype(np.float32)
    Wt = np.ascontiguousarray(W.T)
    pooled = np.empty(1280, np.float32)
    y = np.empty(1000, np.float32)
    pr = x2.astype(np.float64).mean(0)
    gap = race({
        "x.mean(axis=(0,1))": lambda: x.mean(axis=(0, 1)),
        "np.add.reduce(x2, 0, out) * (1/49)": lambda: np.multiply(np.add.reduce(x2, 0, out=pooled), 1 / 49, out=pooled),
        "einsum pc->c out": lambda: np.multiply(np.einsum("pc->c", x2, out=pooled), 1 / 49, out=pooled),
        "x2.sum(0) / 49": lambda: x2.sum(0) / 49,
        "ones @ x2": lambda: np.dot(np.full(49, 1 / 49, np.float32), x2),
    }, 49 * 1280, 200, ref=pr)
    p = pr.astype(np.float32)
    dr = p.astype(np.float64) @ W
    dense = race({
        "einsum k,km->m out": lambda: np.einsum("k,km->m", p, W, out=y),
        "np.dot(p, W) out": lambda: np.dot(p, W, out=y),
        "matmul (1,K)@(K,M)": lambda: np.matmul(p[None], W)[0],
        "einsum mk,k->m (W^T stored)": lambda: np.einsum("mk,k->m", Wt, p, out=y),
        "np.dot(Wt, p) (W^T stored)": lambda: np.dot(Wt, p, out=y),
        "matmul Wt @ p": lambda: np.matmul(Wt, p),
    }, 2 * 1280 * 1000, 50, ref=dr)
    for k, v in {**gap, **dense}.items():
        print(f"head {k}: {v['ms']:.3f} ms", flush=True)
    a = rng.standard_normal((56 * 56, 24)).astype(np.float32); a2 = a.copy(); o = np.empty_like(a)
    resid = race({"np.add(a, b, out=a)": lambda: np.add(a, a2, out=a), "a += b": lambda: a.__iadd__(a2),
                  "np.add(a, b, out=new)": lambda: np.add(a, a2, out=o)}, 0, 100)
    t1 = np.ones(4, np.float32); t2 = np.ones(4, np.float32)
    noop = lambda: None  # noqa: E731
    calls = race({"empty python call": noop, "np.add(4 elems, out=)": lambda: np.add(t1, t2, out=t1),
                  "np.einsum tiny out=": lambda: np.einsum("i,i->i", t1, t2, out=t1),
                  "np.clip tiny out=": lambda: np.clip(t1, 0, 6, out=t1),
                  "umath.clip tiny out=": lambda: UMATH_CLIP(t1, np.float32(0), np.float32(6), out=t1),
                  "np.matmul tiny": lambda: np.matmul(t1, t2)}, 0, 2000)
    for k, v in calls.items():
        print(f"call overhead {k}: {v['ms'] * 1e3:.2f} us", flush=True)
    return {"gap": gap, "dense": dense, "residual_add_56x56x24": resid, "call_overhead": calls}


# ---------------------------------------------------------------------------------------------- float64
def study_f64():
    out = {}
    for P, ci, co in [(12544, 16, 96), (3136, 24, 144), (196, 96, 576)]:
        r = {}
        for dt in (np.float32, np.float64):
            x = rng.standard_normal((P, ci)).astype(dt); w = rng.standard_normal((ci, co)).astype(dt)
            y = np.empty((P, co), dt)
            r[np.dtype(dt).name] = lambda x=x, w=w, y=y: np.einsum("pc,cd->pd", x, w, out=y)
        out[f"pw {P}x{ci}->{co}"] = race(r, 2 * P * ci * co, reps_for(2 * P * ci * co))
    for H, C in [(112, 32), (28, 192)]:
        r = {}
        for dt in (np.float32, np.float64):
            xp = rng.standard_normal((H + 2, H + 2, C)).astype(dt); w = rng.standard_normal((3, 3, C)).astype(dt)
            o = np.empty((H, H, C), dt); t = np.empty_like(o)
            def f(xp=xp, w=w, o=o, t=t):
                np.multiply(xp[0:H, 0:H], w[0, 0], out=o)
                for i in range(3):
                    for j in range(3):
                        if i or j:
                            np.multiply(xp[i:i + H, j:j + H], w[i, j], out=t); np.add(o, t, out=o)
            r[np.dtype(dt).name] = f
        out[f"dw {H}x{H}x{C}"] = race(r, 18 * H * H * C, reps_for(18 * H * H * C * 4))
    for k, v in out.items():
        print(f"dtype {k}: " + ", ".join(f"{d} {s['gflops']} GFLOPS" for d, s in v.items()), flush=True)
    return out


def study_padded():
    """A pointwise conv writing straight into the interior of the next depthwise conv's zero-padded buffer
    (a strided out= view) vs writing a contiguous result and copying it in."""
    out = []
    for H, ci, co in [(112, 16, 96), (56, 24, 144), (28, 32, 192), (14, 96, 576), (7, 160, 960)]:
        x = rng.standard_normal((H, H, ci)).astype(np.float32)
        w = rng.standard_normal((ci, co)).astype(np.float32)
        wt = np.ascontiguousarray(w.T)
        xc = np.ascontiguousarray(x.transpose(2, 0, 1))
        xp = np.zeros((H + 2, H + 2, co), np.float32); inner = xp[1:-1, 1:-1]
        xpc = np.zeros((co, H + 2, H + 2), np.float32); innerc = xpc[:, 1:-1, 1:-1]
        y = np.empty((H * H, co), np.float32); yc = np.empty((co, H * H), np.float32)
        ref = np.einsum("hwc,cd->hwd", x.astype(np.float64), w)
        x2 = x.reshape(-1, ci); xc2 = xc.reshape(ci, -1)
        c = {
            "NHWC einsum into padded interior (3-D strided out)":
                lambda: np.einsum("hwc,cd->hwd", x, w, out=inner),
            "NHWC einsum hwc,dc->hwd (W^T) into padded interior":
                lambda: np.einsum("hwc,dc->hwd", x, wt, out=inner),
            "NHWC einsum contiguous + copyto interior":
                lambda: (np.einsum("pc,cd->pd", x2, w, out=y), np.copyto(inner, y.reshape(H, H, co)))[1] or inner,
            "NHWC einsum contiguous only (no padding)": lambda: np.einsum("pc,cd->pd", x2, w, out=y).reshape(H, H, co),
            "NCHW einsum into padded interior": lambda: np.einsum("dc,chw->dhw", wt, xc, out=innerc).transpose(1, 2, 0),
            "NCHW einsum contiguous only": lambda: np.einsum("dc,cp->dp", wt, xc2, out=yc).reshape(co, H, H).transpose(1, 2, 0),
            "NCHW in -> NHWC out einsum cp,cd->pd": lambda: np.einsum("cp,cd->pd", xc2, w, out=y).reshape(H, H, co),
        }
        flops = 2 * H * H * ci * co
        r = race(c, flops, reps_for(flops), ref=ref)
        r["clip on padded interior"] = race({"a": lambda: np.clip(inner, 0, 6, out=inner)}, 0, 20)["a"]
        r["clip contiguous"] = race({"a": lambda: np.clip(y, 0, 6, out=y)}, 0, 20)["a"]
        out.append({"shape": [H, H, ci, co], "candidates": r})
        print(f"padded {H}x{H}x{ci}->{co}: " + "; ".join(f"{k}={v['ms']:.3f}" for k, v in r.items()), flush=True)
    return out


def main():
    env = {"numpy": np.__version__, "platform": sys.platform, "python": sys.version.split()[0],
           "rounds": ROUNDS if not QUICK else 2}
    doc = {"env": env}
    t0 = time.perf_counter()
    parts = {"pointwise": study_pointwise, "layout": study_einsum_layout, "bias_fold": study_bias_fold,
             "depthwise": study_depthwise, "stem": study_stem, "head": study_head, "dtype": study_f64,
             "padded": study_padded}
    for name, fn in parts.items():
        if ONLY and name not in ONLY.split(","):
            continue
        doc[name] = fn()
    doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(doc)
    if os.path.isdir("/out"):
        with open("/out/study.json", "w") as f:
            f.write(text)
    print("STUDY-JSON:" + text)


if __name__ == "__main__":
    main()
