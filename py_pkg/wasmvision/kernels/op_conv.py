"""conv2d: NHWC activations, HWIO weights, ONNX Conv semantics (zero padding), fused bias + activation.

Three strategies, chosen per node at plan time (Pyodide's numpy has no BLAS; np.einsum's own
loops are ~10x faster there than ``@``, so every contraction is an einsum with ``out=``):

* pointwise (1x1, one group): one einsum over the (N*H*W, Cin) view, no copies;
* depthwise (groups == Cin == Cout): zero-pad into scratch, then one einsum over a strided
  (N, OH, OW, KH, KW, C) window view of it;
* anything else (the stem, grouped convs): im2col into a scratch buffer, then one einsum per group.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import CONTRACTION, Op, contract, activation_scratch, chain, make_activation, register


def conv_output_size(size: int, k: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def _tap_range(out_size: int, in_size: int, offset: int, stride: int) -> tuple[int, int, int]:
    """For input index ``o*stride + offset``: the output range [o0, o1) that stays inside the
    input, and the first input index. (o1 <= o0 means the tap only ever reads padding.)"""
    o0 = max(0, (-offset + stride - 1) // stride)
    o1 = min(out_size, (in_size - 1 - offset) // stride + 1) if in_size - 1 - offset >= 0 else 0
    return o0, o1, o0 * stride + offset


def _pad_into(padded: np.ndarray, x: np.ndarray, pt: int, pl: int):
    """A callable copying x (N,H,W,C) into the middle of ``padded`` and zeroing the border. The
    scratch arena is shared by all nodes of a plan, so the border is rewritten on every call."""
    h, w = x.shape[1:3]
    interior = padded[:, pt:pt + h, pl:pl + w, :]
    borders = [v for v in (padded[:, :pt], padded[:, pt + h:], padded[:, pt:pt + h, :pl],
                           padded[:, pt:pt + h, pl + w:]) if v.size]

    def fill():
        for v in borders:
            v.fill(0.0)
        np.copyto(interior, x)
    return fill


def pointwise_transposed(cin: int, cout: int) -> bool:
    """Use (Cout, Cin) weights in the einsum (see _prepare_pointwise); a rule from Pyodide timings."""
    return not (cin < 48 and cout > cin)


@register("conv2d")
class Conv2D(Op):
    def _geometry(self, xs, ws):
        a = self.attrs
        if len(xs) != 4 or len(ws) != 4:
            raise self.error(f"expects x (N,H,W,C) and w (KH,KW,Cin/groups,Cout), got {xs} and {ws}")
        n, h, w, c = xs
        kh, kw, cg, cout = ws
        groups = int(a.get("groups", 1))
        sh, sw = (int(v) for v in a.get("strides", (1, 1)))
        dh, dw = (int(v) for v in a.get("dilations", (1, 1)))
        pt, pl, pb, pr = (int(v) for v in a.get("pads", (0, 0, 0, 0)))
        if c != cg * groups or cout % groups:
            raise self.error(f"input has {c} channels, weights expect {cg} x {groups} groups -> {cout}")
        oh = conv_output_size(h, kh, sh, dh, pt, pb)
        ow = conv_output_size(w, kw, sw, dw, pl, pr)
        if oh <= 0 or ow <= 0:
            raise self.error(f"output would be empty for input {xs}")
        return n, h, w, c, kh, kw, cg, cout, groups, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow

    def _kind(self, g) -> str:
        n, h, w, c, kh, kw, cg, cout, groups, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow = g
        if kh == kw == 1 and groups == 1 and pt == pl == pb == pr == 0:
            return "pointwise"
        if groups == c == cout and cg == 1:
            return "depthwise"
        return "im2col"

    def infer(self, shapes):
        g = self._geometry(shapes[0], shapes[1])
        if len(shapes) > 2 and shapes[2] is not None and tuple(shapes[2]) != (g[7],):
            raise self.error(f"bias shape {shapes[2]} != ({g[7]},)")
        return [(g[0], g[17], g[18], g[7])]

    def kind(self, shapes) -> str:
        return self._kind(self._geometry(shapes[0], shapes[1]))

    def scratch(self, shapes):
        g = self._geometry(shapes[0], shapes[1])
        n, h, w, c, kh, kw, cg, cout, groups, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow = g
        out_shape = (n, oh, ow, cout)
        act = activation_scratch(self.attrs.get("activation"), out_shape)
        kind = self._kind(g)
        if kind == "pointwise":
            return ([(n, oh, ow, c)] if (sh, sw) != (1, 1) else []) + act
        if kind == "depthwise":
            return ([(n, h + pt + pb, w + pl + pr, c)] if (pt, pl, pb, pr) != (0, 0, 0, 0) else []) + act
        return [(n, h + pt + pb, w + pl + pr, c), (groups, n * oh * ow, kh * kw * cg)] + act

    def prepare(self, inputs, outputs, scratch):
        x, wt = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        y = outputs[0]  # (N, OH, OW, Cout)
        g = self._geometry(x.shape, wt.shape)
        kind = self._kind(g)
        n_act = len(activation_scratch(self.attrs.get("activation"), y.shape))
        act = make_activation(self.attrs.get("activation"), y, scratch[len(scratch) - n_act:])
        bias = None if b is None else (lambda: np.add(y, b, out=y))
        core = getattr(self, "_prepare_" + kind)(g, x, wt, y, scratch)
        return chain(core, bias, act)

    # -- (N,H,W,Cin) x (1,1,Cin,Cout) -> (N,H,W,Cout)
    def _prepare_pointwise(self, g, x, wt, y, scratch):
        n, h, w, c, kh, kw, cg, cout, groups, sh, sw = g[:11]
        w2 = np.ascontiguousarray(wt.reshape(c, cout))  # (Cin, Cout)
        y2 = y.reshape(-1, cout)  # (N*OH*OW, Cout)
        if (sh, sw) == (1, 1):
            x2 = x.reshape(-1, c)  # (N*H*W, Cin), a view
            if CONTRACTION == "einsum":
                # Measured in Pyodide: einsum's dot-product inner loop over Cin, with (Cout, Cin) weights,
                # beats the axpy loop over Cout except for expansions from few channels (16-32 -> 6x).
                if pointwise_transposed(c, cout):
                    wt2 = np.ascontiguousarray(w2.T)  # (Cout, Cin)
                    return lambda: np.einsum("pc,dc->pd", x2, wt2, out=y2)
                return lambda: np.einsum("pc,cd->pd", x2, w2, out=y2)
            return lambda: np.matmul(x2, w2, out=y2)
        sub = scratch[0]  # (N, OH, OW, Cin)
        xs = x[:, ::sh, ::sw, :][:, :sub.shape[1], :sub.shape[2], :]
        s2 = sub.reshape(-1, c)

        def strided_pointwise():
            np.copyto(sub, xs)
            contract(s2, w2, y2)
        return strided_pointwise

    # -- (N,H,W,C) x (KH,KW,1,C) -> (N,OH,OW,C)
    def _prepare_depthwise(self, g, x, wt, y, scratch):
        n, h, w, c, kh, kw, cg, cout, groups, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow = g
        w3 = np.ascontiguousarray(wt[:, :, 0, :])  # (KH, KW, C)
        if pt == pl == pb == pr == 0:
            src, fill = x, None
        else:
            src = scratch[0]  # (N, H+pt+pb, W+pl+pr, C), zero border
            fill = _pad_into(src, x, pt, pl)
        sn, sy, sx, sc = src.strides
        einsum = np.einsum
        if sw == 1:
            # Stride 1 along W: a window row is ONE contiguous run of OW*C values, so the einsum's
            # inner loop runs over OW*C (weights tiled OW times) instead of C: 1.1-3.7x faster in
            # Pyodide than the per-pixel form below (biggest gain at C = 32).
            win = as_strided(src, (n, oh, kh, kw, ow * c), (sn, sy * sh, sy * dh, sx * dw, sc), writeable=False)
            wk = np.ascontiguousarray(np.tile(w3, (1, 1, ow)))  # (KH, KW, OW*C)
            yk = y.reshape(n, oh, ow * c)
            spec = "nhijk,ijk->nhk"
        else:
            # Every output pixel's window as one strided view (N, OH, OW, KH, KW, C): one einsum does
            # all taps, 3-4x faster in Pyodide than a multiply + add pass over the tensor per tap.
            win = as_strided(src, (n, oh, ow, kh, kw, c), (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc),
                             writeable=False)
            wk, yk, spec = w3, y, "nhwijc,ijc->nhwc"

        def depthwise():
            if fill is not None:
                fill()
            einsum(spec, win, wk, out=yk)
        return depthwise

    # -- general: (N,H,W,Cin) x (KH,KW,Cin/groups,Cout) -> (N,OH,OW,Cout)
    def _prepare_im2col(self, g, x, wt, y, scratch):
        n, h, w, c, kh, kw, cg, cout, groups, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow = g
        padded, cols = scratch[0], scratch[1]  # (N,H+pt+pb,W+pl+pr,C), (G, N*OH*OW, KH*KW*Cg)
        fill = _pad_into(padded, x, pt, pl)
        cog = cout // groups
        y2 = y.reshape(-1, cout)
        copies, products = [], []
        for gi in range(groups):
            col6 = cols[gi].reshape(n, oh, ow, kh, kw, cg)  # (N,OH,OW,KH,KW,Cg)
            for i in range(kh):
                for j in range(kw):
                    src = padded[:, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                 j * dw:j * dw + sw * (ow - 1) + 1:sw, gi * cg:(gi + 1) * cg]
                    copies.append((col6[:, :, :, i, j, :], src))
            wg = np.ascontiguousarray(wt[..., gi * cog:(gi + 1) * cog].reshape(kh * kw * cg, cog))
            products.append((cols[gi], wg, y2[:, gi * cog:(gi + 1) * cog]))
        copyto = np.copyto

        def im2col():
            fill()
            for dst, src in copies:
                copyto(dst, src)
            for a, wg, yg in products:
                contract(a, wg, yg)
        return im2col
