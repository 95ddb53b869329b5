"""dense (x @ w + b, fused activation) and matmul. Contractions use np.einsum: Pyodide's numpy has
no BLAS and its einsum loops are far faster there than ``@``."""

from __future__ import annotations

import numpy as np

from .base import CONTRACTION, Op, contract, activation_scratch, chain, make_activation, register


@register("dense")
class Dense(Op):
    def infer(self, shapes):
        xs, ws = shapes[0], shapes[1]
        if len(xs) != 2 or len(ws) != 2 or xs[1] != ws[0]:
            raise self.error(f"expects x (N,K) and w (K,M), got {xs} and {ws}")
        if len(shapes) > 2 and shapes[2] is not None and tuple(shapes[2]) != (ws[1],):
            raise self.error(f"bias shape {shapes[2]} != ({ws[1]},)")
        return [(xs[0], ws[1])]

    def scratch(self, shapes):
        return activation_scratch(self.attrs.get("activation"), self.infer(shapes)[0])

    # (N, K) x (K, M) -> (N, M)
    def prepare(self, inputs, outputs, scratch):
        x, w = inputs[0], np.ascontiguousarray(inputs[1])
        b = inputs[2] if len(inputs) > 2 else None
        y = outputs[0]
        if CONTRACTION == "einsum":
            # (M, K) weights: einsum's inner loop becomes a contiguous dot product over K (Pyodide,
            # 1280 -> 1000: 0.42 vs 0.55 ms for the axpy loop over M).
            wt, einsum = np.ascontiguousarray(w.T), np.einsum
            core = lambda: einsum("nk,mk->nm", x, wt, out=y)  # noqa: E731
        else:
            core = lambda: contract(x, w, y)  # noqa: E731
        bias = None if b is None else (lambda: np.add(y, b, out=y))
        return chain(core, bias, make_activation(self.attrs.get("activation"), y, scratch))


def matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """np.matmul's result shape from the operand shapes alone: no arrays, so no allocation or arithmetic whatever
    the (possibly hostile) sizes. A 1-D operand is a row (a) or column (b) vector whose axis is dropped after."""
    if not a or not b:
        raise ValueError("matmul needs operands of at least one dimension")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ValueError(f"inner dimensions {a2[-1]} and {b2[-2]} differ")
    out = (*np.broadcast_shapes(a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@register("matmul")
class MatMul(Op):
    def infer(self, shapes):
        a, b = (tuple(int(d) for d in s) for s in shapes)
        try:
            return [matmul_shape(a, b)]
        except ValueError as exc:
            raise self.error(f"shapes {a} and {b} do not multiply: {exc}") from None

    # (..., M, K) x (..., K, P) -> (..., M, P)
    def prepare(self, inputs, outputs, scratch):
        a, b = inputs
        y = outputs[0]
        if a.ndim == 2 and b.ndim == 2:
            return lambda: contract(a, b, y)
        return lambda: np.matmul(a, b, out=y)
