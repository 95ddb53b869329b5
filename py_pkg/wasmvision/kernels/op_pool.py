"""Pooling and reductions on NHWC tensors: global_avg_pool, reduce_mean, max_pool, avg_pool.

max_pool / avg_pool follow ONNX (= PyTorch) semantics: explicit pads, dilations, ``ceil_mode``
(a last window that would start in the trailing padding is dropped), ``count_include_pad`` for
the average (padding inside the explicit pads counts, the ceil-mode overhang never does)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Op, register
from .window import WindowGeometry


@register("global_avg_pool")
class GlobalAvgPool(Op):
    def infer(self, shapes):
        if len(shapes[0]) != 4:
            raise self.error(f"expects (N,H,W,C), got {shapes[0]}")
        n, h, w, c = shapes[0]
        return [(n, 1, 1, c)]

    # (N, H, W, C) -> (N, 1, 1, C)
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        n, h, w, c = x.shape
        x3 = x.reshape(n, h * w, c)
        y2 = y.reshape(n, c)
        count = np.float32(h * w)

        def gap():
            np.sum(x3, axis=1, out=y2)
            np.divide(y2, count, out=y2)
        return gap


@register("reduce_mean")
class ReduceMean(Op):
    def _axes(self, ndim):
        axes = self.attrs.get("axes")
        if axes is None:
            return tuple(range(ndim))
        axes = tuple(sorted(int(a) % ndim for a in axes))
        return axes

    def infer(self, shapes):
        shape = tuple(shapes[0])
        axes = self._axes(len(shape))
        if int(self.attrs.get("keepdims", 1)):
            return [tuple(1 if i in axes else d for i, d in enumerate(shape))]
        return [tuple(d for i, d in enumerate(shape) if i not in axes)]

    # x -> mean over `axes` (kept as 1 when keepdims)
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        axes = self._axes(x.ndim)
        count = np.float32(math.prod(x.shape[a] for a in axes))
        keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        yk = y.reshape(keep)

        def reduce_mean():
            np.sum(x, axis=axes, keepdims=True, out=yk)
            np.divide(yk, count, out=yk)
        return reduce_mean


def pool_output_size(size, k, stride, dilation, pad_before, pad_after, ceil_mode):
    span = dilation * (k - 1) + 1
    numer = size + pad_before + pad_after - span
    out = (-(-numer // stride) if ceil_mode else numer // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_before:
        out -= 1  # that window would start entirely in the trailing padding
    return out


@dataclass(frozen=True)
class PoolGeometry(WindowGeometry):
    """A pooling node's window plus (ph, pw), the padded extent every window fits in (ceil-mode overhang too)."""
    ph: int
    pw: int


class _Pool(Op):
    def geometry(self, xs) -> PoolGeometry:
        if len(xs) != 4:
            raise self.error(f"expects (N,H,W,C), got {xs}")
        a = self.attrs
        n, h, w, c = xs
        kh, kw = (int(v) for v in a["kernel"])
        sh, sw = (int(v) for v in a.get("strides", (1, 1)))
        dh, dw = (int(v) for v in a.get("dilations", (1, 1)))
        pt, pl, pb, pr = (int(v) for v in a.get("pads", (0, 0, 0, 0)))
        ceil = bool(a.get("ceil_mode", 0))
        oh = pool_output_size(h, kh, sh, dh, pt, pb, ceil)
        ow = pool_output_size(w, kw, sw, dw, pl, pr, ceil)
        if oh <= 0 or ow <= 0:
            raise self.error(f"output would be empty for input {xs}")
        # Padded extent that every window fits in (explicit pads plus any ceil-mode overhang).
        ph = max(h + pt + pb, (oh - 1) * sh + dh * (kh - 1) + 1)
        pw = max(w + pl + pr, (ow - 1) * sw + dw * (kw - 1) + 1)
        return PoolGeometry(n=n, h=h, w=w, c=c, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pt=pt, pl=pl, pb=pb, pr=pr,
                            oh=oh, ow=ow, ph=ph, pw=pw)

    def infer(self, shapes):
        g = self.geometry(shapes[0])
        return [(g.n, g.oh, g.ow, g.c)]

    def scratch(self, shapes):
        g = self.geometry(shapes[0])
        return [(g.n, g.ph, g.pw, g.c)]

    fill = 0.0

    def _windows(self, g: PoolGeometry, padded):
        sh, sw, dh, dw, oh, ow = g.sh, g.sw, g.dh, g.dw, g.oh, g.ow
        return [padded[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw, :]
                for i in range(g.kh) for j in range(g.kw)]

    # (N, H, W, C) -> (N, OH, OW, C)
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        g = self.geometry(x.shape)
        padded = scratch[0]
        interior = padded[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w, :]
        wins = self._windows(g, padded)
        fill, reduce_, finish = self.fill, self.ufunc, self._finish(g)

        def pool():
            padded.fill(fill)
            np.copyto(interior, x)
            np.copyto(y, wins[0])
            for v in wins[1:]:
                reduce_(y, v, out=y)
            if finish is not None:
                finish(y)
        return pool

    def _finish(self, g):
        return None


@register("max_pool")
class MaxPool(_Pool):
    fill = -np.inf
    ufunc = np.maximum


@register("avg_pool")
class AvgPool(_Pool):
    ufunc = np.add

    def _finish(self, g):
        include_pad = bool(self.attrs.get("count_include_pad", 0))

        def counts(out, k, s, d, size, p0, p1):
            res = np.empty(out, np.float32)
            for o in range(out):
                taps = [o * s - p0 + t * d for t in range(k)]
                lo, hi = (-p0, size + p1) if include_pad else (0, size)
                res[o] = sum(1 for t in taps if lo <= t < hi)
            return res

        ch = counts(g.oh, g.kh, g.sh, g.dh, g.h, g.pt, g.pb)
        cw = counts(g.ow, g.kw, g.sw, g.dw, g.w, g.pl, g.pr)
        divisor = (ch[:, None] * cw[None, :])[None, :, :, None]  # (1, OH, OW, 1)
        return lambda y: np.divide(y, divisor, out=y)
