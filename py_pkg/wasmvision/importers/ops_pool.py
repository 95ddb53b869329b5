"""Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean, and
ReduceMax over the spatial axes (a max_pool whose window is the whole image)."""

from __future__ import annotations

import numpy as np

from .context import NHWC, ImportContext, Value
from .onnx_proto import Node
from .ops_common import emit_reshape, spatial_pads, window_attr, window_out


def _pool(ctx: ImportContext, node: Node, op: str) -> None:
    if any(o for o in node.outputs[1:]):
        raise ctx.fail("the Indices output is not supported")
    x = ctx.value(node.inputs[0])
    if x.rank != 4:
        raise ctx.fail(f"only 2-D pooling is supported (input shape {list(x.shape)})")
    kernel = window_attr(ctx, node, "kernel_shape", [], 1)
    if len(kernel) != 2:
        raise ctx.fail(f"kernel_shape {kernel} is not 2-D")
    strides = window_attr(ctx, node, "strides", [1, 1], 1)
    dilations = window_attr(ctx, node, "dilations", [1, 1], 1)
    if dilations != [1, 1]:
        raise ctx.fail(f"dilated pooling ({dilations}) is not supported")
    ceil_mode = bool(node.attr("ceil_mode", 0))
    hw = x.shape[2:]
    pads = spatial_pads(ctx, node, hw, kernel, strides, dilations)
    out_hw = [window_out(hw[i], kernel[i], strides[i], 1, pads[i], pads[i + 2], ceil_mode) for i in range(2)]
    attrs = {"kernel": kernel, "strides": strides, "pads": pads, "ceil_mode": int(ceil_mode)}
    if op == "avg_pool":
        attrs["count_include_pad"] = int(node.attr("count_include_pad", 0))
    xs = ctx.nhwc(x)
    out = ctx.emit(op, [xs.name], attrs, out=node.outputs[0], shape=(x.shape[0], x.shape[1], *out_hw), perm=NHWC)
    ctx.set_value(node.outputs[0], out)


def max_pool(ctx, node):
    _pool(ctx, node, "max_pool")


def average_pool(ctx, node):
    _pool(ctx, node, "avg_pool")


def global_average_pool(ctx, node):
    x = ctx.value(node.inputs[0])
    if x.rank != 4:
        raise ctx.fail(f"only 4-D inputs are supported (shape {list(x.shape)})")
    xs = ctx.nhwc(x)
    out = ctx.emit("global_avg_pool", [xs.name], out=node.outputs[0], shape=(x.shape[0], x.shape[1], 1, 1),
                   perm=NHWC)
    ctx.set_value(node.outputs[0], out)


def _whole_image_max(ctx: ImportContext, x: Value, out: str, shape) -> Value:
    """max_pool with one window covering the stored H and W of ``x`` (stored (N, H, W, C))."""
    _, h, w, _ = x.stored_shape
    attrs = {"kernel": [h, w], "strides": [1, 1], "pads": [0, 0, 0, 0], "ceil_mode": 0}
    return ctx.emit("max_pool", [x.name], attrs, out=out, shape=shape, perm=x.perm)


def global_max_pool(ctx, node):
    x = ctx.value(node.inputs[0])
    if x.rank != 4:
        raise ctx.fail(f"only 4-D inputs are supported (shape {list(x.shape)})")
    xs = ctx.nhwc(x)  # (N, H, W, C)
    ctx.set_value(node.outputs[0], _whole_image_max(ctx, xs, node.outputs[0], (x.shape[0], x.shape[1], 1, 1)))


def _reduce_axes(ctx: ImportContext, node: Node, x: Value) -> list[int] | None:
    """Sorted non-negative ONNX axes of a Reduce* node (attribute before opset 18, input from 18);
    None when the node is a no-op (empty axes with noop_with_empty_axes)."""
    if ctx.opset >= 18:
        axes_c = ctx.optional_const(node, 1, "axes")
        axes = None if axes_c is None else [int(a) for a in np.asarray(axes_c).reshape(-1)]
        if not axes:
            if node.attr("noop_with_empty_axes", 0):
                return None
            axes = None
    else:
        axes = node.attr("axes")
        axes = None if axes is None else [int(a) for a in axes]
    return sorted({a % x.rank for a in (axes if axes is not None else range(x.rank))})


def reduce_max(ctx, node):
    x = ctx.value(node.inputs[0])
    axes = _reduce_axes(ctx, node, x)
    if axes is None:
        ctx.set_value(node.outputs[0], x)
        return
    if x.rank != 4 or len(axes) != 2 or 0 in axes:
        raise ctx.fail(f"ReduceMax over axes {axes} of shape {list(x.shape)} is not supported "
                       "(only over the two spatial axes of an image)")
    keep_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if sorted(x.stored_axis(a) for a in axes) != [1, 2]:
        x = ctx.nhwc(x)  # ONNX axes (2, 3) of an NCHW tensor: bring H, W to the stored middle
        if sorted(x.stored_axis(a) for a in axes) != [1, 2]:
            raise ctx.fail(f"ReduceMax over axes {axes} of shape {list(x.shape)} is not a spatial maximum")
    if node.attr("keepdims", 1):
        ctx.set_value(node.outputs[0], _whole_image_max(ctx, x, node.outputs[0], keep_shape))
        return
    pooled = _whole_image_max(ctx, x, f"{node.outputs[0]}/keepdims", keep_shape)
    emit_reshape(ctx, pooled, tuple(d for i, d in enumerate(x.shape) if i not in axes), node.outputs[0])


def reduce_mean(ctx, node):
    x = ctx.value(node.inputs[0])
    keepdims = bool(node.attr("keepdims", 1))
    axes = _reduce_axes(ctx, node, x)
    if axes is None:
        ctx.set_value(node.outputs[0], x)
        return
    if 0 in axes:
        raise ctx.fail("reducing over the batch axis is not supported")
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        if x.rank == 4 and axes == [2, 3]:
            xs = ctx.nhwc(x)  # a spatial mean is exactly global average pooling
            out = ctx.emit("global_avg_pool", [xs.name], out=node.outputs[0], shape=shape, perm=NHWC)
            ctx.set_value(node.outputs[0], out)
            return
        if x.rank == 4 and sorted(x.stored_axis(a) for a in axes) == [1, 2]:
            # The same mean over the stored H and W axes, e.g. tf2onnx's channels-last ReduceMean
            # over ONNX axes (1, 2) of an NHWC tensor: global average pooling as stored.
            out = ctx.emit("global_avg_pool", [x.name], out=node.outputs[0], shape=shape, perm=x.perm)
            ctx.set_value(node.outputs[0], out)
            return
        perm = x.perm
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        kept = [p for p in x.perm if p not in axes]  # ONNX axes in stored order
        renumber = {a: i for i, a in enumerate(sorted(kept))}
        perm = tuple(renumber[p] for p in kept)
    stored_axes = sorted(x.stored_axis(a) for a in axes)
    out = ctx.emit("reduce_mean", [x.name], {"axes": stored_axes, "keepdims": int(keepdims)},
                   out=node.outputs[0], shape=shape, perm=perm)
    ctx.set_value(node.outputs[0], out)

