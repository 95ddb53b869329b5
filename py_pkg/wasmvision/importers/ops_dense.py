"""Gemm and MatMul -> dense (weights stored (K, M)); a following Add is folded into the bias later."""

from __future__ import annotations

import numpy as np

from .context import ImportContext
from .onnx_proto import Node
from .ops_common import broadcast_shape


def _bias_vector(ctx: ImportContext, c: np.ndarray, m: int) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    if c.size not in (1, m) or any(d != 1 for d in c.shape[:-1]):
        raise ctx.fail(f"bias of shape {list(c.shape)} is not a per-output vector of {m}")
    return np.broadcast_to(c.reshape(-1), (m,))


def gemm(ctx: ImportContext, node: Node) -> None:
    if ctx.all_const(node):
        raise ctx.fail("Gemm on constants only is not supported")
    if int(node.attr("transA", 0)):
        raise ctx.fail("transA=1 is not supported")
    x = ctx.plain(ctx.value(node.inputs[0]))  # (N, K)
    if x.rank != 2:
        raise ctx.fail(f"input A must be 2-D, got shape {list(x.shape)}")
    b = ctx.const(node.inputs[1], "B (the weight)").astype(np.float64)
    w = b.T if int(node.attr("transB", 0)) else b  # (K, M)
    if w.shape[0] != x.shape[1]:
        raise ctx.fail(f"input has {x.shape[1]} features, the weight {list(b.shape)} expects {w.shape[0]}")
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    base = node.name or node.outputs[0]
    inputs = [x.name, ctx.add_weight(alpha * w, f"{base}.weight")]
    runtime_c = None
    if ctx.present(node, 2):
        if ctx.is_const(node.inputs[2]):
            inputs.append(ctx.add_weight(beta * _bias_vector(ctx, ctx.consts[node.inputs[2]], w.shape[1]),
                                         f"{base}.bias"))
        else:
            runtime_c = ctx.value(node.inputs[2])
    shape = (x.shape[0], w.shape[1])
    out_name = node.outputs[0] if runtime_c is None else f"{node.outputs[0]}/ab"
    out = ctx.emit("dense", inputs, {"activation": {"kind": "none"}}, out=out_name, shape=shape, perm=(0, 1))
    if runtime_c is not None:
        if beta != 1.0:
            raise ctx.fail("a computed C input with beta != 1 is not supported")
        c = ctx.plain(runtime_c)
        out = ctx.emit("add", [out.name, c.name], {"activation": {"kind": "none"}}, out=node.outputs[0],
                       shape=shape, perm=(0, 1))
    ctx.set_value(node.outputs[0], out)


def matmul(ctx: ImportContext, node: Node) -> None:
    name_a, name_b = node.inputs[0], node.inputs[1]
    if ctx.all_const(node):
        ctx.set_const(node.outputs[0], np.matmul(ctx.consts[name_a], ctx.consts[name_b]))
        return
    base = node.name or node.outputs[0]
    if ctx.is_const(name_b) and not ctx.is_const(name_a):
        x = ctx.plain(ctx.value(name_a))  # (..., K)
        w = ctx.consts[name_b].astype(np.float32)
        if w.ndim == 2 and x.rank == 2:
            if w.shape[0] != x.shape[1]:
                raise ctx.fail(f"input has {x.shape[1]} features, the weight {list(w.shape)} expects {w.shape[0]}")
            out = ctx.emit("dense", [x.name, ctx.add_weight(w, f"{base}.weight")], {"activation": {"kind": "none"}},
                           out=node.outputs[0], shape=(x.shape[0], w.shape[1]), perm=(0, 1))
            ctx.set_value(node.outputs[0], out)
            return
        a_name, b_name, a_shape, b_shape = x.name, ctx.add_weight(w, f"{base}.weight"), x.shape, w.shape
    elif ctx.is_const(name_a):
        y = ctx.plain(ctx.value(name_b))
        a_name, b_name = ctx.add_weight(ctx.consts[name_a], f"{base}.a"), y.name
        a_shape, b_shape = ctx.consts[name_a].shape, y.shape
    else:
        va, vb = ctx.plain(ctx.value(name_a)), ctx.plain(ctx.value(name_b))
        a_name, b_name, a_shape, b_shape = va.name, vb.name, va.shape, vb.shape
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise ctx.fail("1-D MatMul operands are not supported")
    try:
        batch = broadcast_shape(a_shape[:-2], b_shape[:-2])
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
    shape = (*batch, a_shape[-2], b_shape[-1])
    out = ctx.emit("matmul", [a_name, b_name], out=node.outputs[0], shape=shape, perm=tuple(range(len(shape))))
    ctx.set_value(node.outputs[0], out)
