"""conv2d: NHWC activations, HWIO weights, ONNX Conv semantics (zero padding), fused bias + activation.

Three strategies, chosen per node at plan time. Pyodide's numpy has no BLAS: there np.einsum's
own loops are ~10x faster than ``@``, so contractions are einsums with ``out=`` (natively they are
``np.matmul``, i.e. OpenBLAS; see base.CONTRACTION):

* pointwise (1x1, one group): one contraction over the (N*H*W, Cin) view, no copies;
* depthwise (groups == Cin == Cout): zero-pad into scratch, then one einsum over a strided
  (N, OH, OW, KH, KW, C) window view of it;
* anything else (the stem, grouped convs): im2col into a scratch buffer, then one einsum per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import CONTRACTION, Op, activation_scratch, chain, contract, make_activation, register
from .window import WindowGeometry


def conv_output_size(size: int, k: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


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


def _bias_step(y: np.ndarray, b: np.ndarray):
    """y += b over (N*OH, OW*C) rows with the bias tiled OW times: one long inner loop per row
    instead of one per pixel (measured in Pyodide on 112x112x96: 0.96 -> 0.57 ms)."""
    n, oh, ow, c = y.shape
    rows = y.reshape(n * oh, ow * c)
    tiled = np.tile(np.asarray(b, np.float32), ow)  # (OW*C,)
    return lambda: np.add(rows, tiled, out=rows)


def pointwise_formulation(cin: int, cout: int) -> str:
    """How a 1x1 conv contracts under einsum platforms (Pyodide), a rule from the kernel study in
    docs/perf.md: "dot" = einsum('pc,dc->pd') with (Cout, Cin) weights, a dot-product inner loop
    over Cin (best from Cin >= 96); "axpy" = einsum('pc,cd->pd'), inner loop over Cout (best for
    expansions from Cin <= 64); "matmul" for few channels in and fewer out (112x112 32->16)."""
    if cin <= 64 and cout > cin:
        return "axpy"
    if cin <= 32:
        return "matmul"
    return "dot"


@dataclass(frozen=True)
class ConvGeometry(WindowGeometry):
    """A conv node's window plus its channels: weights (kh, kw, cg, cout), cg input channels per group."""
    cg: int
    cout: int
    groups: int

    @property
    def kind(self) -> str:
        """The strategy: "pointwise", "depthwise" or "im2col"."""
        if self.kh == self.kw == 1 and self.groups == 1 and not self.padded:
            return "pointwise"
        if self.groups == self.c == self.cout and self.cg == 1:
            return "depthwise"
        return "im2col"


@register("conv2d")
class Conv2D(Op):
    def geometry(self, xs, ws) -> ConvGeometry:
        """The geometry for input shape xs and weight shape ws (a KernelError when they do not fit)."""
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
        return ConvGeometry(n=n, h=h, w=w, c=c, kh=kh, kw=kw, cg=cg, cout=cout, groups=groups, sh=sh, sw=sw, dh=dh,
                            dw=dw, pt=pt, pl=pl, pb=pb, pr=pr, oh=oh, ow=ow)

    def infer(self, shapes):
        g = self.geometry(shapes[0], shapes[1])
        if len(shapes) > 2 and shapes[2] is not None and tuple(shapes[2]) != (g.cout,):
            raise self.error(f"bias shape {shapes[2]} != ({g.cout},)")
        return [(g.n, g.oh, g.ow, g.cout)]

    def kind(self, shapes) -> str:
        return self.geometry(shapes[0], shapes[1]).kind

    def _scratch_parts(self, g: ConvGeometry):
        """(scratch of the strategy, of the activation)."""
        padded = (g.n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.c)
        if g.kind == "pointwise":
            own = [(g.n, g.oh, g.ow, g.c)] if (g.sh, g.sw) != (1, 1) else []
        elif g.kind == "depthwise":
            own = [padded] if g.padded else []
        else:
            own = [padded, (g.groups, g.n * g.oh * g.ow, g.kh * g.kw * g.cg)]
        return own, activation_scratch(self.attrs.get("activation"), (g.n, g.oh, g.ow, g.cout))

    def scratch(self, shapes):
        own, act = self._scratch_parts(self.geometry(shapes[0], shapes[1]))
        return own + act

    def prepare(self, inputs, outputs, scratch):
        x, wt = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        y = outputs[0]  # (N, OH, OW, Cout)
        g = self.geometry(x.shape, wt.shape)
        kind = g.kind
        own, _ = self._scratch_parts(g)
        act = make_activation(self.attrs.get("activation"), y, scratch[len(own):])
        bias = None if b is None else _bias_step(y, b)
        core = getattr(self, "_prepare_" + kind)(g, x, wt, y, scratch[:len(own)])
        return chain(core, bias, act)

    # -- (N,H,W,Cin) x (1,1,Cin,Cout) -> (N,H,W,Cout)
    def _prepare_pointwise(self, g, x, wt, y, scratch):
        c, cout, sh, sw = g.c, g.cout, g.sh, g.sw
        w2 = np.ascontiguousarray(wt.reshape(c, cout))  # (Cin, Cout)
        y2 = y.reshape(-1, cout)  # (N*OH*OW, Cout)
        if (sh, sw) == (1, 1):
            x2 = x.reshape(-1, c)  # (N*H*W, Cin), a view
            form = pointwise_formulation(c, cout) if CONTRACTION == "einsum" else "matmul"
            einsum, matmul = np.einsum, np.matmul
            if form == "dot":
                wt2 = np.ascontiguousarray(w2.T)  # (Cout, Cin)
                return lambda: einsum("pc,dc->pd", x2, wt2, out=y2)
            if form == "axpy":
                return lambda: einsum("pc,cd->pd", x2, w2, out=y2)
            return lambda: matmul(x2, w2, out=y2)
        sub = scratch[0]  # (N, OH, OW, Cin)
        xs = x[:, ::sh, ::sw, :][:, :sub.shape[1], :sub.shape[2], :]
        s2 = sub.reshape(-1, c)

        def strided_pointwise():
            np.copyto(sub, xs)
            contract(s2, w2, y2)
        return strided_pointwise

    # -- (N,H,W,C) x (KH,KW,1,C) -> (N,OH,OW,C)
    def _prepare_depthwise(self, g, x, wt, y, scratch):
        n, c, kh, kw, oh, ow = g.n, g.c, g.kh, g.kw, g.oh, g.ow
        sh, sw, dh, dw = g.sh, g.sw, g.dh, g.dw
        w3 = np.ascontiguousarray(wt[:, :, 0, :])  # (KH, KW, C)
        if not g.padded:
            src, fill = x, None
        else:
            src = scratch[0]  # (N, H+pt+pb, W+pl+pr, C), zero border
            fill = _pad_into(src, x, g.pt, g.pl)
        sn, sy, sx, sc = src.strides
        einsum = np.einsum
        if sw == 1 and sx == c * sc:  # (W, C) contiguous, true for plan buffers and the padded scratch
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
        n, kh, kw, cg, cout, groups, oh, ow = g.n, g.kh, g.kw, g.cg, g.cout, g.groups, g.oh, g.ow
        sh, sw, dh, dw = g.sh, g.sw, g.dh, g.dw
        padded, cols = scratch[0], scratch[1]  # (N,H+pt+pb,W+pl+pr,C), (G, N*OH*OW, KH*KW*Cg)
        fill = _pad_into(padded, x, g.pt, g.pl)
        cog = cout // groups
        y2 = y.reshape(-1, cout)
        copies, products = [], []
        sn, sy, sx, sc = padded.strides
        for gi in range(groups):
            col6 = cols[gi].reshape(n, oh, ow, kh, kw, cg)  # (N,OH,OW,KH,KW,Cg)
            # Every output pixel's window as one strided view, gathered by ONE copy: numpy's copy loop
            # walks the whole window at C speed (the stem in Pyodide: 9 tap copies 7.0 ms, one per
            # kernel row 6.4, one copy + matmul 4.6).
            src = as_strided(padded[..., gi * cg:], (n, oh, ow, kh, kw, cg),
                             (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc), writeable=False)
            copies.append((col6, src))
            wg = np.ascontiguousarray(wt[..., gi * cog:(gi + 1) * cog].reshape(kh * kw * cg, cog))
            products.append((cols[gi], wg, y2[:, gi * cog:(gi + 1) * cog]))
        copyto, matmul = np.copyto, np.matmul

        def im2col():
            fill()
            for dst, src in copies:
                copyto(dst, src)
            # (P, K) x (K, Cout/G) with K = KH*KW*Cg: matmul on every platform. Without BLAS it still
            # beats einsum's axpy loop for the stem's K = 27 (Pyodide, one run: 5.6 vs 9.6 ms with the
            # one-copy gather; kernel study 4.6 vs 7.0 ms).
            for a, wg, yg in products:
                matmul(a, wg, out=yg)
        return im2col
