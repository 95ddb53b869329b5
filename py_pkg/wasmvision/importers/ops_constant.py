"""Shape arithmetic that exporters emit and the importer folds away: Shape, Gather, Slice,
ConstantOfShape (plus the constant paths of Concat/Unsqueeze/Reshape/Cast in ops_shape).

TorchScript writes ``x.view(x.size(0), -1)`` as Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
and ``F.pad`` as ConstantOfShape -> Concat -> Reshape -> Slice -> Transpose -> Cast -> Pad. Shapes of
runtime tensors are known except the batch, which folds as the symbol ``ops_common.BATCH`` (in an object
array); the Reshape importer accepts it as "keep the batch". Arithmetic on it is refused clearly.
"""

from __future__ import annotations

import math

import numpy as np

from ..messages import quote
from .errors import MAX_CONST_ELEMENTS
from .context import ImportContext
from .onnx_proto import Node
from .ops_common import BATCH, settle, shape_list


def shape(ctx: ImportContext, node: Node) -> None:
    if ctx.is_const(node.inputs[0]):
        ctx.set_const(node.outputs[0], np.array(ctx.consts[node.inputs[0]].shape, np.int64))
        return
    x = ctx.value(node.inputs[0])
    dims = np.array([BATCH if d == -1 else int(d) for d in x.shape], dtype=object)
    start, end = node.attr("start", 0), node.attr("end")
    ctx.set_const(node.outputs[0], settle(dims[int(start):None if end is None else int(end)]))


def gather(ctx: ImportContext, node: Node) -> None:
    if not ctx.all_const(node):
        raise ctx.fail("Gather is only supported on constants and shapes")
    data, idx = ctx.consts[node.inputs[0]], ctx.consts[node.inputs[1]]
    axis = int(node.attr("axis", 0))
    ctx.set_const(node.outputs[0], settle(np.take(data, np.asarray(idx, np.int64), axis=axis)))


def constant_of_shape(ctx: ImportContext, node: Node) -> None:
    dims = shape_list(ctx, ctx.const(node.inputs[0], "the shape"), "the shape")
    if None in dims:
        raise ctx.fail("a constant as large as the dynamic batch is not supported")
    if any(d < 0 for d in dims) or math.prod(dims) > MAX_CONST_ELEMENTS:
        raise ctx.fail(f"shape {quote(dims)} is negative or larger than {MAX_CONST_ELEMENTS:,} elements")
    value = node.attr("value")
    fill = np.zeros(1, np.float32) if value is None else value.array.reshape(-1)
    ctx.set_const(node.outputs[0], np.full(dims, fill[0], dtype=fill.dtype))


def _slice_params(ctx: ImportContext, node: Node, rank: int):
    if ctx.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes = node.attr("axes")
        steps = None
    else:
        starts = shape_list(ctx, ctx.const(node.inputs[1], "starts"), "starts")
        ends = shape_list(ctx, ctx.const(node.inputs[2], "ends"), "ends")
        axes = ctx.optional_const(node, 3, "axes")
        steps = ctx.optional_const(node, 4, "steps")
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    steps = [1] * len(starts) if steps is None else [int(s) for s in np.asarray(steps).reshape(-1)]
    return [int(s) for s in starts], [int(e) for e in ends], axes, steps


def slice_op(ctx: ImportContext, node: Node) -> None:
    src = node.inputs[0]
    if ctx.is_const(src):
        a = ctx.consts[src]
        starts, ends, axes, steps = _slice_params(ctx, node, a.ndim)
        index = [slice(None)] * a.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            index[ax] = slice(s, e, st)  # Python slicing clamps like ONNX Slice
        ctx.set_const(node.outputs[0], settle(a[tuple(index)]))
        return
    # A crop of a runtime tensor: a pad with negative amounts (the bundle `pad` op crops).
    x = ctx.value(src)
    starts, ends, axes, steps = _slice_params(ctx, node, x.rank)
    crop = {}
    shape = list(x.shape)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st != 1:
            raise ctx.fail("strided Slice of a computed tensor is not supported")
        if ax == 0:
            raise ctx.fail("slicing the batch axis is not supported")
        begin, stop, _ = slice(s, e).indices(x.shape[ax])
        stop = max(stop, begin)
        crop[ax] = (-begin, -(x.shape[ax] - stop))
        shape[ax] = stop - begin
    if any(d == 0 for d in shape):
        raise ctx.fail("the slice is empty")
    pads = [list(crop.get(p, (0, 0))) for p in x.perm]
    out = ctx.emit("pad", [x.name], {"pads": pads, "mode": "constant", "value": 0.0}, out=node.outputs[0],
                   shape=shape, perm=x.perm)
    ctx.set_value(node.outputs[0], out)
