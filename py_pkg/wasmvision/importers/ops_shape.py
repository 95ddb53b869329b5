"""Exporter plumbing: Identity, Dropout, Constant, Cast, Reshape, Flatten, Squeeze, Unsqueeze,
Transpose, Concat, Pad. Most of these move no data: they are folded on constants or only change
how a runtime value is described (shape / layout)."""

from __future__ import annotations

import math

import numpy as np

from .context import ImportContext, Value, compose, inverse
from .onnx_proto import Node
from .ops_common import emit_reshape, is_symbolic, settle, shape_list
from .proto_tensor import DATA_TYPES


def _alias(ctx: ImportContext, node: Node) -> None:
    src = node.inputs[0]
    if ctx.is_const(src):
        ctx.set_const(node.outputs[0], ctx.consts[src])
    else:
        ctx.set_value(node.outputs[0], ctx.value(src))


def identity_op(ctx, node):
    _alias(ctx, node)


def dropout(ctx, node):
    if ctx.present(node, 2):
        training = ctx.const(node.inputs[2], "training_mode")
        if bool(np.asarray(training).reshape(-1)[0]):
            raise ctx.fail("training_mode=True is not supported (export the model in eval mode)")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise ctx.fail("the mask output is not supported")
    _alias(ctx, node)  # inference: Dropout is the identity


def constant(ctx, node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attributes:
            v = node.attr(key)
            if key == "value":
                if v.array is None:
                    raise ctx.fail("a Constant with external data is not supported")
                array = v.array
            elif key.startswith("value_float"):
                array = np.asarray(v, dtype=np.float32)
            else:
                array = np.asarray(v, dtype=np.int64)
            ctx.set_const(node.outputs[0], array)
            return
    raise ctx.fail(f"Constant with attribute(s) {sorted(node.attributes)} is not supported")


def cast(ctx, node):
    to = int(node.attr("to", 1))
    if ctx.is_const(node.inputs[0]):
        if to not in DATA_TYPES:
            raise ctx.fail(f"cast to data type {to} is not supported")
        a = ctx.consts[node.inputs[0]]
        if is_symbolic(a):
            if not np.issubdtype(DATA_TYPES[to], np.integer):
                raise ctx.fail("casting the dynamic batch size to a non-integer type is not supported")
            ctx.set_const(node.outputs[0], a)  # shape arithmetic stays symbolic
            return
        ctx.set_const(node.outputs[0], a.astype(DATA_TYPES[to]))
    elif to == 1:
        _alias(ctx, node)  # runtime tensors are float32 already
    else:
        raise ctx.fail(f"casting a computed tensor to data type {to} is not supported")


# ----------------------------------------------------------------------------- reshapes

def batch_reshape(ctx: ImportContext, in_shape, target, allowzero: bool = False) -> tuple[int, ...]:
    """ONNX Reshape target -> output shape with dimension 0 the batch (-1); the batch must stay put."""
    if -1 in in_shape[1:]:
        raise ctx.fail(f"input shape {list(in_shape)} has a dynamic non-batch dimension")
    dims: list = list(target)  # None: the batch symbol from a folded Shape
    if None in dims[1:]:
        raise ctx.fail(f"shape {target} puts the batch size on a non-batch axis")
    if not allowzero:
        # 0 copies the input dimension; a copied batch is marked None (it is not an inferred -1).
        dims = [((None if i == 0 else in_shape[i]) if d == 0 else d) for i, d in enumerate(dims)]
    per_sample = math.prod(in_shape[1:])
    if not dims:
        raise ctx.fail("reshape to a scalar is not supported")
    first, rest = dims[0], dims[1:]
    if rest.count(-1) > 1 or (first == -1 and -1 in rest):
        raise ctx.fail(f"shape {list(target)} has more than one -1")
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        if known == 0 or per_sample % known:
            raise ctx.fail(f"cannot reshape {list(in_shape)} to {list(target)}")
        rest[rest.index(-1)] = per_sample // known
    # dims[0] is the batch when it is copied (0), inferred (-1), or 1 (exported at batch 1).
    if first not in (None, -1, 1) or math.prod(rest) != per_sample:
        raise ctx.fail(f"reshape {list(in_shape)} -> {list(target)} moves data across the batch dimension")
    return (-1, *rest)


def _const_axes(ctx: ImportContext, node: Node, attr_before: int) -> list[int] | None:
    """`axes` as an attribute (before opset ``attr_before``) or as the optional input 1."""
    if ctx.opset < attr_before:
        axes = node.attr("axes")
        return None if axes is None else [int(a) for a in axes]
    c = ctx.optional_const(node, 1, "axes")
    return None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]


def reshape(ctx, node):
    if ctx.opset < 5:
        target = [int(d) for d in node.attr("shape", [])]
    else:
        target = shape_list(ctx, ctx.const(node.inputs[1], "the shape"), "the shape")
    allowzero = bool(node.attr("allowzero", 0))
    if ctx.is_const(node.inputs[0]):
        if None in target:
            raise ctx.fail("reshaping a constant to the dynamic batch size is not supported")
        a = ctx.consts[node.inputs[0]]
        dims = [a.shape[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
        ctx.set_const(node.outputs[0], a.reshape(dims))
        return
    x = ctx.value(node.inputs[0])
    emit_reshape(ctx, x, batch_reshape(ctx, x.shape, target, allowzero), node.outputs[0])


def flatten(ctx, node):
    axis = int(node.attr("axis", 1))
    if ctx.is_const(node.inputs[0]):
        a = ctx.consts[node.inputs[0]]
        axis %= max(a.ndim, 1)
        ctx.set_const(node.outputs[0], a.reshape(math.prod(a.shape[:axis]), -1))
        return
    x = ctx.value(node.inputs[0])
    axis = axis % x.rank if axis < 0 else axis
    if axis == 0 or any(d != 1 for d in x.shape[1:axis]):
        raise ctx.fail(f"Flatten at axis {axis} of shape {list(x.shape)} moves data across the batch dimension")
    emit_reshape(ctx, x, (-1, math.prod(x.shape[axis:])), node.outputs[0])


def squeeze(ctx, node):
    axes = _const_axes(ctx, node, 13)
    if ctx.is_const(node.inputs[0]):
        a = ctx.consts[node.inputs[0]]
        ctx.set_const(node.outputs[0], np.squeeze(a, axis=None if axes is None else tuple(axes)))
        return
    x = ctx.value(node.inputs[0])
    drop = {i for i, d in enumerate(x.shape) if d == 1} if axes is None else {a % x.rank for a in axes}
    if 0 in drop or any(x.shape[a] != 1 for a in drop):
        raise ctx.fail(f"cannot squeeze axes {sorted(drop)} of shape {list(x.shape)}")
    emit_reshape(ctx, x, tuple(d for i, d in enumerate(x.shape) if i not in drop), node.outputs[0])


def unsqueeze(ctx, node):
    axes = _const_axes(ctx, node, 13)
    if axes is None:
        raise ctx.fail("Unsqueeze needs axes")
    if ctx.is_const(node.inputs[0]):
        a = ctx.consts[node.inputs[0]]
        ctx.set_const(node.outputs[0], np.expand_dims(a, tuple(ax % (a.ndim + len(axes)) for ax in axes)))
        return
    x = ctx.value(node.inputs[0])
    rank = x.rank + len(axes)
    new = sorted(a % rank for a in axes)
    if 0 in new:
        raise ctx.fail("inserting an axis before the batch dimension is not supported")
    shape, it = [], iter(x.shape)
    for i in range(rank):
        shape.append(1 if i in new else next(it))
    emit_reshape(ctx, x, shape, node.outputs[0])


# ----------------------------------------------------------------------------- layout ops

def transpose(ctx, node):
    if ctx.is_const(node.inputs[0]):
        a = ctx.consts[node.inputs[0]]
        perm = node.attr("perm")
        ctx.set_const(node.outputs[0], np.transpose(a, None if perm is None else [int(p) for p in perm]))
        return
    x = ctx.value(node.inputs[0])
    perm = node.attr("perm")
    p = tuple(reversed(range(x.rank))) if perm is None else tuple(int(v) % x.rank for v in perm)
    if sorted(p) != list(range(x.rank)):
        raise ctx.fail(f"perm {list(p)} is not a permutation of {x.rank} axes")
    # No data moves: the same stored array, described as the transposed ONNX tensor.
    q = inverse(compose(inverse(x.perm), p))
    ctx.set_value(node.outputs[0], Value(x.name, tuple(x.shape[i] for i in p), q))


def concat(ctx, node):
    names = [n for n in node.inputs if n]
    axis = int(node.attr("axis"))
    if all(ctx.is_const(n) for n in names):
        ctx.set_const(node.outputs[0], settle(np.concatenate([np.asarray(ctx.consts[n]) for n in names], axis=axis)))
        return
    values = [ctx.value(n) for n in names]
    first = values[0]
    axis %= first.rank
    if axis == 0:
        raise ctx.fail("concatenating along the batch axis is not supported")
    values = [ctx.to_layout(v, first.perm) for v in values]
    shape = list(first.shape)
    shape[axis] = sum(v.shape[axis] for v in values)
    out = ctx.emit("concat", [v.name for v in values], {"axis": first.stored_axis(axis)}, out=node.outputs[0],
                   shape=shape, perm=first.perm)
    ctx.set_value(node.outputs[0], out)


def pad(ctx, node):
    mode = node.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.fail(f"pad mode {mode!r} is not supported (constant, reflect, edge)")
    x = ctx.value(node.inputs[0])
    if ctx.opset < 11:
        pads = [int(p) for p in node.attr("pads", node.attr("paddings", []))]
        value = float(node.attr("value", 0.0))
        axes = list(range(x.rank))
    else:
        pads = [int(p) for p in np.asarray(ctx.const(node.inputs[1], "pads")).reshape(-1)]
        c = ctx.optional_const(node, 2, "constant_value")
        value = 0.0 if c is None else float(np.asarray(c).reshape(-1)[0])
        a = ctx.optional_const(node, 3, "axes")
        axes = list(range(x.rank)) if a is None else [int(v) % x.rank for v in np.asarray(a).reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise ctx.fail(f"{len(pads)} pads for {len(axes)} axes")
    per_axis = {ax: (pads[i], pads[i + len(axes)]) for i, ax in enumerate(axes)}
    if per_axis.get(0, (0, 0)) != (0, 0):
        raise ctx.fail("padding the batch axis is not supported")
    shape = tuple(d if i == 0 else d + sum(per_axis.get(i, (0, 0))) for i, d in enumerate(x.shape))
    stored_pads = [list(per_axis.get(p, (0, 0))) for p in x.perm]  # [[before, after], ...] in stored order
    out = ctx.emit("pad", [x.name], {"pads": stored_pads, "mode": mode, "value": value}, out=node.outputs[0],
                   shape=shape, perm=x.perm)
    ctx.set_value(node.outputs[0], out)
