"""Conv and BatchNormalization (BN becomes mul+add; passes.fold_affine folds it into the conv)."""

from __future__ import annotations

import numpy as np

from .context import NHWC, ImportContext
from .onnx_proto import Node
from .ops_common import spatial_pads, window_attr, window_out


def conv(ctx: ImportContext, node: Node) -> None:
    x = ctx.value(node.inputs[0])
    if x.rank != 4:
        raise ctx.fail(f"only 2-D convolution is supported (input shape {list(x.shape)})")
    w = ctx.const(node.inputs[1], "the weight").astype(np.float32)  # (M, C/groups, KH, KW)
    b = ctx.optional_const(node, 2, "the bias")
    groups = int(node.attr("group", 1))
    if groups < 1:
        raise ctx.fail(f"group {groups} must be >= 1")
    if w.ndim != 4:
        raise ctx.fail(f"weight shape {list(w.shape)} is not 4-D")
    if x.shape[1] != w.shape[1] * groups:
        raise ctx.fail(f"input has {x.shape[1]} channels, weight {list(w.shape)} with group={groups} expects "
                       f"{w.shape[1] * groups}")
    kernel = list(w.shape[2:])
    strides = window_attr(ctx, node, "strides", [1, 1], 1)
    dilations = window_attr(ctx, node, "dilations", [1, 1], 1)
    hw = x.shape[2:]
    pads = spatial_pads(ctx, node, hw, kernel, strides, dilations)
    out_hw = [window_out(hw[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + 2]) for i in range(2)]
    xs = ctx.nhwc(x)  # (N, H, W, C)
    base = node.name or node.outputs[0]
    inputs = [xs.name, ctx.add_weight(w.transpose(2, 3, 1, 0), f"{base}.weight")]  # HWIO (KH, KW, C/g, M)
    if b is not None:
        inputs.append(ctx.add_weight(b.astype(np.float32).reshape(-1), f"{base}.bias"))  # (M,)
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "groups": groups,
             "activation": {"kind": "none"}}
    out = ctx.emit("conv2d", inputs, attrs, out=node.outputs[0],
                   shape=(x.shape[0], w.shape[0], *out_hw), perm=NHWC)
    ctx.set_value(node.outputs[0], out)


def batch_normalization(ctx: ImportContext, node: Node) -> None:
    if any(o for o in node.outputs[1:]):
        raise ctx.fail("training-mode BatchNormalization (running-statistics outputs) is not supported")
    x = ctx.value(node.inputs[0])
    scale, bias, mean, var = (ctx.const(node.inputs[i], what).astype(np.float64)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    eps = float(node.attr("epsilon", 1e-5))
    a = scale / np.sqrt(var + eps)  # y = a * x + c, per channel
    c = bias - mean * a
    channel_shape = (-1,) + (1,) * (x.rank - 2)  # ONNX channel axis is 1
    base = node.name or node.outputs[0]
    a_name = ctx.add_weight(ctx.const_for(a.reshape(channel_shape), x), f"{base}.scale")
    c_name = ctx.add_weight(ctx.const_for(c.reshape(channel_shape), x), f"{base}.shift")
    scaled = ctx.emit("mul", [x.name, a_name], out=f"{node.outputs[0]}/scaled", shape=x.shape, perm=x.perm)
    out = ctx.emit("add", [scaled.name, c_name], {"activation": {"kind": "none"}}, out=node.outputs[0],
                   shape=x.shape, perm=x.perm)
    ctx.set_value(node.outputs[0], out)
