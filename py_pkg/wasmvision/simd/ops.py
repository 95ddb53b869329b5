"""SIMD kernels per op, registered by name like the numpy kernels (``SIMD_OPS``).

Each entry is ``prepare(lib, op, inputs, outputs, scratch) -> Step | None``: the same binding as ``Op.prepare``
(same buffers, same scratch the numpy op asked for), or None when the kernels do not cover this node, which then
runs in numpy. Everything is decided here at plan time: weights packed, parameter structs (descriptors.py) filled, so a step
is one ctypes call with one argument (~1 us in the browser, vs ~5-12 us with a dozen arguments).

The kernel only sees addresses: each step keeps every array it touches (``step.keep``), because a freed
temporary is silently reused memory (the probe saw wrong results, not a crash).
"""

from __future__ import annotations

import ctypes
from typing import Callable

import numpy as np

from ..kernels.base import Step, make_activation
from .descriptors import (ACT_CLIP, ACT_HARDSIGMOID, ACT_HARDSWISH, ACT_NONE, ActParams, DwconvParams, GapParams,
                          GemmParams, Im2colParams, PwDwParams)

NR = 8        # B panel width (floats): two SIMD vectors
GEMM_MC = 64  # rows of A per block: a block stays in cache while all panels of B pass over it

SIMD_OPS: dict[str, Callable] = {}


def simd_op(name: str):
    def deco(fn):
        SIMD_OPS[name] = fn
        return fn
    return deco


def prepare_simd(lib, op, inputs, outputs, scratch) -> Step | None:
    fn = SIMD_OPS.get(op.op_name)
    return None if fn is None else fn(lib, op, inputs, outputs, scratch)


# --------------------------------------------------------------------------------------------- parameters

def split_activation(spec) -> tuple[ActParams, dict | None]:
    """(the kernel's fused epilogue, the part numpy applies after the kernel or None). Sigmoid is left to numpy
    (no vector exp in the library); everything else the bundle format fuses runs in the kernel."""
    spec = dict(spec or {})
    kind = spec.get("kind", "none")
    inf = float("inf")
    if kind == "none":
        return ActParams(kind=ACT_NONE), None
    if kind == "relu":
        return ActParams(kind=ACT_CLIP, lo=0.0, hi=inf), None
    if kind == "clip":
        lo, hi = spec.get("min"), spec.get("max")
        return ActParams(kind=ACT_CLIP, lo=-inf if lo is None else lo, hi=inf if hi is None else hi), None
    if kind == "hardswish":
        return ActParams(kind=ACT_HARDSWISH, alpha=1.0 / 6.0, beta=0.5), None
    if kind == "hardsigmoid":
        return ActParams(kind=ACT_HARDSIGMOID, alpha=spec.get("alpha", 0.2), beta=spec.get("beta", 0.5)), None
    return ActParams(kind=ACT_NONE), spec  # sigmoid (or an unknown kind: make_activation names it)


def _row_major(a: np.ndarray) -> bool:
    """2-D float32 with unit column stride and a whole-float row stride: what the GEMM reads and writes."""
    return (a.ndim == 2 and a.dtype == np.float32 and a.strides[1] == 4 and a.strides[0] % 4 == 0
            and a.strides[0] >= 4 * a.shape[1])


def pack_b(w2: np.ndarray) -> np.ndarray:
    """(K, N) -> (ceil(N/8), K, 8) panels, zero-padded past N: the GEMM's inner loop reads 8 contiguous floats."""
    k, n = w2.shape
    full, tail = divmod(n, NR)
    # One copy of the weights straight into the panels (no padded temporary, no second transposing copy): the
    # model's whole weights pass through here once per load.
    out = np.empty((full + (tail > 0), k, NR), np.float32)  # (panels, K, 8)
    np.copyto(out[:full], w2[:, :full * NR].reshape(k, full, NR).transpose(1, 0, 2))
    if tail:
        out[full, :, tail:] = 0.0
        out[full, :, :tail] = w2[:, full * NR:]
    return out


def _bound(kernel, params: ctypes.Structure, *buffers) -> Step:
    """One kernel call on its parameter struct, built once; the step keeps the struct and the buffers its
    addresses point into alive."""
    addr = ctypes.addressof(params)

    def call():
        kernel(addr)
    call.keep = (*buffers, params)
    return call


def gemm_params(a2: np.ndarray, w2: np.ndarray, bias, y2: np.ndarray, act: ActParams,
                gather: Im2colParams | None = None, residual: np.ndarray | None = None
                ) -> tuple[GemmParams, tuple] | None:
    """(the GemmParams of y2 = act(a2 @ w2 + bias), the arrays its addresses point into), or None if a layout is
    not one the kernel reads: a2 (M, K), w2 (K, N), y2 (M, N).
    With ``gather`` (an im2col conv), A's rows are its windows, gathered GEMM_MC rows at a time into a2 (the
    block buffer: at least min(GEMM_MC, M) rows of K contiguous floats) just before they are multiplied.
    With ``residual`` (M, N): y2 = act(a2 @ w2 + bias + residual), added block by block while C is in L1."""
    if not (_row_major(a2) and _row_major(y2)):
        return None
    if residual is not None and not (_row_major(residual) and residual.shape == y2.shape):
        return None
    m, k = (y2.shape[0], a2.shape[1]) if gather is not None else a2.shape
    if gather is not None and (a2.strides[0] != 4 * k or a2.shape[0] < min(GEMM_MC, m)):
        return None
    n = w2.shape[1]
    bp = pack_b(np.asarray(w2, np.float32))
    bb = np.zeros(bp.shape[0] * NR, np.float32)  # padded like the panels: the kernel loads 8 at a time
    if bias is not None:
        bb[:n] = bias
    params = GemmParams(a=a2.ctypes.data, lda=a2.strides[0] // 4, bp=bp.ctypes.data, bias=bb.ctypes.data,
                        c=y2.ctypes.data, ldc=y2.strides[0] // 4, m=m, k=k, n=n, mc=GEMM_MC,
                        gather=0 if gather is None else ctypes.addressof(gather), act=act,
                        res=0 if residual is None else residual.ctypes.data,
                        ldr=0 if residual is None else residual.strides[0] // 4)
    return params, (a2, bp, bb, y2, *(v for v in (gather, residual) if v is not None))


def gemm_call(lib, a2: np.ndarray, w2: np.ndarray, bias, y2: np.ndarray, act: ActParams,
              gather: Im2colParams | None = None, residual: np.ndarray | None = None) -> Step | None:
    """The GEMM of ``gemm_params`` as a step, or None."""
    made = gemm_params(a2, w2, bias, y2, act, gather, residual)
    return None if made is None else _bound(lib.gemm, made[0], *made[1])


def dwconv_params(x, w3, bias, y, strides, pads, act: ActParams) -> tuple[DwconvParams, tuple]:
    """(the DwconvParams, the arrays its addresses point into): x (N, H, W, C), w3 (KH, KW, C), y (N, OH, OW, C),
    all C-contiguous; pads (top, left)."""
    n, h, w, c = x.shape
    kh, kw = w3.shape[:2]
    w3 = np.ascontiguousarray(w3, np.float32)
    bb = np.zeros(c, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    params = DwconvParams(x=x.ctypes.data, wt=w3.ctypes.data, bias=bb.ctypes.data, y=y.ctypes.data, n=n, h=h, w=w,
                          c=c, kh=kh, kw=kw, sh=strides[0], sw=strides[1], pt=pads[0], pl=pads[1], oh=y.shape[1],
                          ow=y.shape[2], act=act)
    return params, (x, w3, bb, y)


def dwconv_call(lib, x, w3, bias, y, strides, pads, act: ActParams) -> Step:
    """The depthwise conv of ``dwconv_params`` as a step."""
    params, keep = dwconv_params(x, w3, bias, y, strides, pads, act)
    return _bound(lib.dwconv, params, *keep)


def _then(core: Step, post: Step | None) -> Step:
    if post is None:
        return core

    def run():
        core()
        post()
    run.keep = core.keep
    return run


# --------------------------------------------------------------------------------------------- ops

@simd_op("conv2d")
def conv2d(lib, op, inputs, outputs, scratch) -> Step | None:
    x, wt = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    y = outputs[0]  # (N, OH, OW, Cout)
    g = op.geometry(x.shape, wt.shape)
    c, cout, sh, sw = g.c, g.cout, g.sh, g.sw
    act, rest = split_activation(op.attrs.get("activation"))
    post = make_activation(rest, y)
    if not (x.flags.c_contiguous and y.flags.c_contiguous):
        return None
    if g.kind == "pointwise":
        w2 = wt.reshape(c, cout)  # (Cin, Cout)
        y2 = y.reshape(-1, cout)  # (N*OH*OW, Cout)
        if (sh, sw) == (1, 1):
            step = gemm_call(lib, x.reshape(-1, c), w2, b, y2, act)
            return None if step is None else _then(step, post)
        sub = scratch[0]  # (N, OH, OW, Cin): the strided pixels, gathered by numpy
        xs = x[:, ::sh, ::sw, :][:, :g.oh, :g.ow, :]
        step = gemm_call(lib, sub.reshape(-1, c), w2, b, y2, act)
        if step is None:
            return None
        copyto = np.copyto

        def strided_pointwise():
            copyto(sub, xs)
            step()
        strided_pointwise.keep = (step.keep, xs)
        return _then(strided_pointwise, post)
    if g.kind == "depthwise":
        if (g.dh, g.dw) != (1, 1):
            return None
        return _then(dwconv_call(lib, x, wt[:, :, 0, :], b, y, (sh, sw), (g.pt, g.pl), act), post)
    # im2col (the stem, grouped convs): per group, the GEMM gathers GEMM_MC windows at a time (zeros for the
    # padding) into the first rows of the numpy op's cols scratch and multiplies them while they are in L1; the
    # numpy op's padded scratch is left unused.
    cols = scratch[1]  # (G, N*OH*OW, KH*KW*Cg)
    cg, cog = g.cg, cout // g.groups
    y2 = y.reshape(-1, cout)
    steps = []
    for gi in range(g.groups):
        windows = Im2colParams(x=x.ctypes.data, cols=cols[gi].ctypes.data, n=g.n, h=g.h, w=g.w, c=c, kh=g.kh,
                               kw=g.kw, sh=sh, sw=sw, dh=g.dh, dw=g.dw, pt=g.pt, pl=g.pl, oh=g.oh, ow=g.ow,
                               c0=gi * cg, cg=cg)
        wg = wt[..., gi * cog:(gi + 1) * cog].reshape(g.kh * g.kw * cg, cog)
        bg = None if b is None else b[gi * cog:(gi + 1) * cog]
        gemm = gemm_call(lib, cols[gi], wg, bg, y2[:, gi * cog:(gi + 1) * cog], act, gather=windows)
        if gemm is None:
            return None
        steps.append(gemm)

    def im2col():
        for gemm in steps:
            gemm()
    im2col.keep = (x, cols, steps)
    return _then(im2col, post)


@simd_op("conv2d+add")
def conv2d_add(lib, op, inputs, outputs, scratch) -> Step | None:
    """A 1x1 stride-1 projection and the residual add after it (plan_fusion.ConvAdd): one GEMM whose blocks get
    the residual added while they are in L1, instead of a numpy add over three tensors in memory."""
    x, wt, b, r = inputs[0], inputs[1], inputs[2], inputs[3]
    y = outputs[0]
    g = op.conv.geometry(x.shape, wt.shape)
    if g.kind != "pointwise" or (g.sh, g.sw) != (1, 1) or r.shape != y.shape:
        return None
    if not (x.flags.c_contiguous and y.flags.c_contiguous and r.flags.c_contiguous):
        return None
    act, rest = split_activation(op.add_activation)
    step = gemm_call(lib, x.reshape(-1, g.c), wt.reshape(g.c, g.cout), b, y.reshape(-1, g.cout), act,
                     residual=r.reshape(-1, g.cout))
    return None if step is None else _then(step, make_activation(rest, y))


@simd_op("conv2d+depthwise")
def pointwise_depthwise(lib, op, inputs, outputs, scratch) -> Step | None:
    """An expansion 1x1 conv (or the stem: an ungrouped conv whose windows the GEMM gathers) and the depthwise conv
    after it (plan_fusion.PointwiseDepthwise), by bands of output rows through a buffer in L2 (the first floats
    of the fused op's scratch): the expanded tensor is never written whole. Both activations must run in the
    kernels (no numpy epilogue between them)."""
    x, w1, b1, w2, b2 = (list(inputs) + [None] * 5)[:5]
    y = outputs[0]
    gp, gd = op.pw.geometry(x.shape, w1.shape), op.dw.geometry(op.mid_shape(x.shape, w1.shape), w2.shape)
    act1, rest1 = split_activation(op.pw.attrs.get("activation"))
    act2, rest2 = split_activation(op.dw.attrs.get("activation"))
    pointwise = gp.kind == "pointwise" and (gp.sh, gp.sw) == (1, 1)
    if (not (pointwise or (gp.kind == "im2col" and gp.groups == 1)) or gd.kind != "depthwise"
            or (gd.dh, gd.dw) != (1, 1) or rest1 is not None or not (x.flags.c_contiguous and y.flags.c_contiguous)):
        return None
    c = gd.c
    rows = band_rows(gd.oh, gd.sh, gd.kh, gd.w * c)
    mid, own_pw, _ = op.split_scratch([x.shape, w1.shape, None, w2.shape, None], scratch)
    band = mid.reshape(-1)[:((rows - 1) * gd.sh + gd.kh) * gd.w * c].reshape(-1, c)
    gather = None
    if pointwise:
        a2 = x.reshape(-1, gp.c)
    else:  # the windows, GEMM_MC at a time, into the numpy route's cols scratch (as the conv2d op does)
        a2 = own_pw[1][0]
        gather = Im2colParams(x=x.ctypes.data, cols=a2.ctypes.data, n=gp.n, h=gp.h, w=gp.w, c=gp.c, kh=gp.kh,
                              kw=gp.kw, sh=gp.sh, sw=gp.sw, dh=gp.dh, dw=gp.dw, pt=gp.pt, pl=gp.pl, oh=gp.oh,
                              ow=gp.ow, c0=0, cg=gp.c)
    pw = gemm_params(a2, w1.reshape(-1, c), b1, band, act1, gather=gather)
    if pw is None:
        return None
    dw = dwconv_params(band.reshape(1, -1, gd.w, c), w2[:, :, 0, :], b2, y, (gd.sh, gd.sw), (gd.pt, gd.pl), act2)
    dw[0].n, dw[0].h, dw[0].x = gd.n, gd.h, 0  # the whole layer; the kernel sets x, h, pt, oh, y per band
    params = PwDwParams(pw=ctypes.addressof(pw[0]), dw=ctypes.addressof(dw[0]), band=band.ctypes.data, band_oh=rows)
    return _then(_bound(lib.pwdw, params, pw, dw, band, x), make_activation(rest2, y))


PWDW_BAND_BYTES = 256 * 1024  # the expanded rows of one band: written by the GEMM, read by the depthwise, in L2


def band_rows(oh: int, sh: int, kh: int, row_floats: int) -> int:
    """Output rows per band: as many as keep the band's input rows within PWDW_BAND_BYTES (at least one)."""
    rows = (PWDW_BAND_BYTES // (4 * row_floats) - kh) // sh + 1
    return max(1, min(oh, rows))


@simd_op("dense")
def dense(lib, op, inputs, outputs, scratch) -> Step | None:
    x, w = inputs[0], inputs[1]  # (N, K), (K, M)
    b = inputs[2] if len(inputs) > 2 else None
    y = outputs[0]  # (N, M)
    act, rest = split_activation(op.attrs.get("activation"))
    step = gemm_call(lib, x, w, b, y, act)
    return None if step is None else _then(step, make_activation(rest, y))


@simd_op("global_avg_pool")
def global_avg_pool(lib, op, inputs, outputs, scratch) -> Step | None:
    x, y = inputs[0], outputs[0]  # (N, H, W, C) -> (N, 1, 1, C)
    if not (x.flags.c_contiguous and y.flags.c_contiguous):
        return None
    n, h, w, c = x.shape
    return _bound(lib.gap, GapParams(x=x.ctypes.data, y=y.ctypes.data, n=n, p=h * w, c=c, inv=1.0 / (h * w)), x, y)


# --------------------------------------------------------------------------------------------- self-check

def _probe(shape, phase: float) -> np.ndarray:
    """Deterministic, sign-mixed test data. Not numpy.random: importing it would load nine more Wasm modules at
    start-up, and every module loaded before the memory snapshot must be loaded again when it is restored."""
    return (2 * np.sin(np.arange(np.prod(shape)) * 0.731 + phase)).reshape(shape).astype(np.float32)


def self_check(lib) -> str | None:
    """Tiny cases against numpy right after loading: a library that computes garbage must not be used."""
    a = _probe((7, 5), 0.1)
    w = _probe((5, 11), 0.2)
    b = _probe((11,), 0.3)
    y = np.empty((7, 11), np.float32)
    gemm_call(lib, a, w, b, y, split_activation({"kind": "relu"})[0])()
    if not np.allclose(y, np.maximum(a @ w + b, 0), atol=1e-4):
        return "GEMM"
    x = _probe((1, 5, 6, 7), 0.4)
    k = _probe((3, 3, 7), 0.5)
    yd = np.empty((1, 5, 6, 7), np.float32)
    dwconv_call(lib, x, k, None, yd, (1, 1), (1, 1), split_activation(None)[0])()
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = sum(xp[:, i:i + 5, j:j + 6, :] * k[i, j] for i in range(3) for j in range(3))
    if not np.allclose(yd, ref, atol=1e-4):
        return "depthwise"
    return None
