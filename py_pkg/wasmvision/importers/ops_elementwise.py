"""Elementwise operators: Add/Sub/Mul/Div (runtime or constant operands), activations, Min/Max against
a constant (clips), Softmax."""

from __future__ import annotations

import numpy as np

from .context import ImportContext, Value
from .onnx_proto import Node
from .ops_common import broadcast_shape

FLOAT_MAX = float(np.finfo(np.float32).max)


def _binary(ctx: ImportContext, node: Node, op: str, fn) -> None:
    name_a, name_b = node.inputs[0], node.inputs[1]
    if ctx.all_const(node):
        try:
            ctx.set_const(node.outputs[0], fn(ctx.consts[name_a], ctx.consts[name_b]))
        except TypeError:  # the batch symbol of a folded Shape takes no arithmetic
            raise ctx.fail("shape arithmetic on the dynamic batch size is not supported "
                           "(export with torch.flatten(x, 1) or a fixed batch)") from None
        return
    base = node.name or node.outputs[0]
    if ctx.is_const(name_a) or ctx.is_const(name_b):
        const_first = ctx.is_const(name_a)
        v = ctx.value(name_b if const_first else name_a)
        c = ctx.consts[name_a if const_first else name_b].astype(np.float32)
        try:
            shape = broadcast_shape(v.shape, c.shape)
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
        if len(shape) != v.rank:
            raise ctx.fail(f"constant {list(c.shape)} would add axes to the {v.rank}-D input")
        c_name = ctx.add_weight(ctx.const_for(c, v), f"{base}.const")  # shaped for v's stored layout
        inputs = [c_name, v.name] if const_first else [v.name, c_name]
        perm = v.perm
    else:
        va, vb = ctx.value(name_a), ctx.value(name_b)
        if va.rank == vb.rank:
            vb = ctx.to_layout(vb, va.perm)
        else:
            va, vb = ctx.plain(va), ctx.plain(vb)
        try:
            shape = broadcast_shape(va.shape, vb.shape)
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
        inputs = [va.name, vb.name]
        perm = va.perm if len(shape) == va.rank else tuple(range(len(shape)))
    attrs = {"activation": {"kind": "none"}} if op in ("add", "sub", "mul", "div") else {}
    out = ctx.emit(op, inputs, attrs, out=node.outputs[0], shape=shape, perm=perm)
    ctx.set_value(node.outputs[0], out)


def add(ctx, node):
    _binary(ctx, node, "add", np.add)


def sub(ctx, node):
    _binary(ctx, node, "sub", np.subtract)


def mul(ctx, node):
    _binary(ctx, node, "mul", np.multiply)


def div(ctx, node):
    def divide(a, b):
        if np.issubdtype(np.result_type(a, b), np.integer):
            return np.asarray(np.trunc(a / b)).astype(np.result_type(a, b))  # ONNX integer Div truncates
        return np.divide(a, b)
    _binary(ctx, node, "div", divide)


def _unary(ctx: ImportContext, node: Node, op: str, attrs: dict | None = None) -> Value:
    x = ctx.value(node.inputs[0])
    out = ctx.emit(op, [x.name], attrs, out=node.outputs[0], shape=x.shape, perm=x.perm)
    ctx.set_value(node.outputs[0], out)
    return out


def relu(ctx, node):
    _unary(ctx, node, "relu")


def sigmoid(ctx, node):
    _unary(ctx, node, "sigmoid")


def hard_swish(ctx, node):
    _unary(ctx, node, "hardswish")


def hard_sigmoid(ctx, node):
    _unary(ctx, node, "hardsigmoid", {"alpha": float(node.attr("alpha", 0.2)), "beta": float(node.attr("beta", 0.5))})


def clip(ctx, node):
    if ctx.opset < 11:
        lo, hi = float(node.attr("min", -FLOAT_MAX)), float(node.attr("max", FLOAT_MAX))
    else:
        lo_c = ctx.optional_const(node, 1, "min")
        hi_c = ctx.optional_const(node, 2, "max")
        lo = -FLOAT_MAX if lo_c is None else float(np.asarray(lo_c).reshape(-1)[0])
        hi = FLOAT_MAX if hi_c is None else float(np.asarray(hi_c).reshape(-1)[0])
    lo_attr = None if lo <= -FLOAT_MAX else lo
    hi_attr = None if hi >= FLOAT_MAX else hi
    if lo_attr == 0.0 and hi_attr is None:
        _unary(ctx, node, "relu")  # torch's clamp(min=0) exports as Clip
    else:
        _unary(ctx, node, "clip", {"min": lo_attr, "max": hi_attr})


def _bound(ctx: ImportContext, node: Node, fold, op_name: str):
    """Min / Max of one computed tensor and constants: ``(value, bound)``; ``fold`` (np.minimum or
    np.maximum) combines several constant operands. tf.clip_by_value exports as Min then Max."""
    names = [n for n in node.inputs if n]
    if all(ctx.is_const(n) for n in names):
        out = ctx.consts[names[0]]
        for n in names[1:]:
            out = fold(out, ctx.consts[n])
        ctx.set_const(node.outputs[0], out)
        return None, None
    computed = [n for n in names if not ctx.is_const(n)]
    if len(computed) != 1:
        raise ctx.fail(f"{op_name} of {len(computed)} computed tensors is not supported (only against constants)")
    x = ctx.value(computed[0])
    bound = None
    for n in names:
        if ctx.is_const(n):
            c = np.asarray(ctx.consts[n], dtype=np.float64)
            if c.size != 1 or c.ndim > x.rank:
                raise ctx.fail(f"{op_name} against a constant of shape {list(c.shape)} is not supported "
                               "(only a single value)")
            bound = float(c.reshape(-1)[0]) if bound is None else float(fold(bound, c.reshape(-1)[0]))
    return x, bound


def min_op(ctx, node):
    x, hi = _bound(ctx, node, np.minimum, "Min")
    if x is not None:
        out = ctx.emit("clip", [x.name], {"min": None, "max": hi}, out=node.outputs[0], shape=x.shape, perm=x.perm)
        ctx.set_value(node.outputs[0], out)


def max_op(ctx, node):
    x, lo = _bound(ctx, node, np.maximum, "Max")
    if x is not None:
        op, attrs = ("relu", {}) if lo == 0.0 else ("clip", {"min": lo, "max": None})
        out = ctx.emit(op, [x.name], attrs, out=node.outputs[0], shape=x.shape, perm=x.perm)
        ctx.set_value(node.outputs[0], out)


def softmax(ctx, node):
    x = ctx.value(node.inputs[0])
    axis = int(node.attr("axis", -1 if ctx.opset >= 13 else 1)) % x.rank
    if ctx.opset < 13 and any(d != 1 for d in x.shape[axis + 1:]):
        # Before opset 13 Softmax normalised over all axes from `axis` on (a 2-D coercion).
        raise ctx.fail(f"opset-{ctx.opset} Softmax over axes {axis}.. of shape {list(x.shape)} "
                       "(only the last non-trivial axis is supported)")
    _unary(ctx, node, "softmax", {"axis": x.stored_axis(axis)})
