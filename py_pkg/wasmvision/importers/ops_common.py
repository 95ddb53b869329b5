"""Helpers the importer functions of several ops_* modules share: window attributes (conv and pooling),
the reshape every shape op ends with, and the batch symbol of folded shape arithmetic. Op modules import from
here, never from each other.
"""

from __future__ import annotations

import math

import numpy as np

from ..messages import quote
from .context import NHWC, ImportContext, Value, identity, reshape_attr, same_order
from .onnx_proto import Node


# ----------------------------------------------------------------------------- window attributes

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


# ----------------------------------------------------------------------------- shapes

def broadcast_shape(a, b) -> tuple[int, ...]:
    """numpy broadcasting where -1 (the batch) wins over 1."""
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"shapes {a} and {b} do not broadcast")
    return tuple(out)




def emit_reshape(ctx: ImportContext, x: Value, shape, out: str) -> None:
    """Record ONNX output ``out`` = ``x`` reshaped (row-major, ONNX order) to ``shape``.

    A spatial NHWC tensor goes back to NCHW order first unless only size-1 axes differ (H*W == 1);
    a 4-D result is stored NHWC when that costs nothing, so a following Conv needs no transpose."""
    shape = tuple(int(d) for d in shape)
    src = x if same_order(x.shape, x.perm, identity(x.rank)) else ctx.plain(x)
    perm = NHWC if len(shape) == 4 and same_order(shape, identity(4), NHWC) else identity(len(shape))
    result = Value(src.name, shape, perm)
    if result.stored_shape[1:] != src.stored_shape[1:]:
        result = ctx.emit("reshape", [src.name], {"shape": reshape_attr(result.stored_shape)}, out=out,
                          shape=shape, perm=perm)
    ctx.set_value(out, result)


# ----------------------------------------------------------------------------- folded shapes

class _Batch:
    """The dynamic batch size inside a folded shape computation."""

    def __repr__(self) -> str:
        return "N"


BATCH = _Batch()


def is_symbolic(a) -> bool:
    a = np.asarray(a)
    return a.dtype == object and any(v is BATCH for v in a.reshape(-1))


def settle(a) -> np.ndarray:
    """Object arrays without the batch symbol back to int64."""
    a = np.asarray(a)
    return a.astype(np.int64) if a.dtype == object and not is_symbolic(a) else a


def shape_list(ctx: ImportContext, a, what: str) -> list:
    """A 1-D shape constant as a list; the batch symbol becomes None."""
    out = []
    for v in np.asarray(a).reshape(-1):
        if v is BATCH:
            out.append(None)
        else:
            try:
                out.append(int(v))
            except (TypeError, ValueError):
                raise ctx.fail(f"{what} is not a list of integers") from None
    return out
