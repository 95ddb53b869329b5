"""Conv and BatchNormalization (BN becomes mul+add; passes.fold_affine folds it into the conv)."""

from __future__ import annotations

import math

import numpy as np

from ..messages import quote
from .context import NHWC, ImportContext
from .onnx_proto import Node
from .registry import onnx_op


def ints_attr(node: Node, name: str, default):
    value = node.attr(name)
    return list(default) if value is None else [int(v) for v in value]


def window_attr(ctx: ImportContext, node: Node, name: str, default, minimum: int) -> list[int]:
    """A 2-D window attribute (kernel_shape, strides, dilations: >= 1; pads: >= 0), refused by name otherwise:
    a stride of 0 would divide by zero and a kernel of 0 leave empty windows."""
    values = ints_attr(node, name, default)
    if any(v < minimum for v in values):
        raise ctx.fail(f"{name} {quote(values)} must be integers >= {minimum}")
    return values


def spatial_pads(ctx: ImportContext, node: Node, hw, kernel, strides, dilations) -> list[int]:
    """ONNX pads / auto_pad -> explicit [top, left, bottom, right] for a 2-D window op."""
    auto_pad = node.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("NOTSET", ""):
        pads = window_attr(ctx, node, "pads", [0, 0, 0, 0], 0)
        if len(pads) != 4:
            raise ctx.fail(f"pads {pads} are not 2-D (4 values)")
        return pads
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.fail(f"unknown auto_pad {auto_pad!r}")
    begin, end = [], []
    for size, k, s, d in zip(hw, kernel, strides, dilations):
        out = math.ceil(size / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        # SAME_UPPER puts the odd pixel at the end (TensorFlow's "SAME"), SAME_LOWER at the start.
        b, e = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        begin.append(b)
        end.append(e)
    return [begin[0], begin[1], end[0], end[1]]


def window_out(size: int, k: int, s: int, d: int, pad_begin: int, pad_end: int, ceil_mode: bool = False) -> int:
    span = size + pad_begin + pad_end - (k - 1) * d - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    # The last window must start inside the input or the leading padding (ONNX / PyTorch rule).
    if (out - 1) * s >= size + pad_begin:
        out -= 1
    return out


@onnx_op("Conv")
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


@onnx_op("BatchNormalization")
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
