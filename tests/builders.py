"""Builders shared by several test files (models, bundles, references, site variants): one home, so no test
file imports another's helpers. The ONNX graph builders for model families stay in onnx_builders.py.

onnx and Pillow are test extras: the builders that need them fail only when called without them (their test
files skip first).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fuzz_readers import _varint
from wasmvision import bundle as B
from wasmvision.bundle import Bundle, Node, ValueInfo

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from wasmvision.importers import onnx_proto
except ImportError:
    onnx = None
try:
    from PIL import Image
except ImportError:
    Image = None


# ----------------------------------------------------------------------------------------- bundles

def tiny_bundle(classes=4, seed=0, final_softmax=False):
    """conv 3x3 s2 (ReLU6) -> depthwise -> pointwise + residual -> GAP -> flatten -> dense."""
    rng = np.random.default_rng(seed)
    r = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    t = {"w0": r(3, 3, 3, 8), "b0": r(8), "w1": r(3, 3, 1, 8), "w2": r(1, 1, 8, 8), "b2": r(8),
         "fw": r(8, classes), "fb": r(classes)}
    relu6 = {"kind": "clip", "min": 0.0, "max": 6.0}
    nodes = [
        Node("conv2d", ["input", "w0", "b0"], ["t0"], "stem",
             {"strides": [2, 2], "pads": [0, 0, 1, 1], "groups": 1, "activation": relu6}),
        Node("conv2d", ["t0", "w1"], ["t1"], "dw", {"groups": 8, "pads": [1, 1, 1, 1], "activation": relu6}),
        Node("conv2d", ["t1", "w2", "b2"], ["t2"], "pw", {}),
        Node("add", ["t0", "t2"], ["t3"], "res"),
        Node("global_avg_pool", ["t3"], ["gap"], "gap"),
        Node("flatten", ["gap"], ["pooled"], "flat", {"axis": 1}),
        Node("dense", ["pooled", "fw", "fb"], ["logits"], "fc"),
    ]
    if final_softmax:
        nodes[-1].outputs = ["z"]
        nodes.append(Node("softmax", ["z"], ["logits"], "sm", {"axis": -1}))
    return Bundle(nodes=nodes, inputs=[ValueInfo("input", [-1, 32, 32, 3])],
                  outputs=[ValueInfo("logits", [-1, classes], layout="NC")], tensors=t,
                  name="tiny", version="1.2", labels=[f"thing {i}" for i in range(classes)],
                  preprocess={"kind": "imagenet", "resize_shorter": 36, "crop": [32, 32]}, embedding="pooled")


def one_conv_bundle(**kw):
    rng = np.random.default_rng(0)
    tensors = {
        "w": rng.standard_normal((3, 3, 3, 8)).astype(np.float32),
        "b": rng.standard_normal(8).astype(np.float32),
        "shape": np.array([1, -1], np.int64),
    }
    return B.Bundle(
        nodes=[B.Node("conv2d", ["x", "w", "b"], ["y"], name="conv",
                      attrs={"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 1})],
        inputs=[B.ValueInfo("x", [-1, 8, 8, 3])], outputs=[B.ValueInfo("y", [-1, 8, 8, 8])],
        tensors=tensors, name="tiny", version="1.2", labels=[f"class {i}" for i in range(8)],
        preprocess={"kind": "none"}, **kw)


# ----------------------------------------------------------------------------------------- references

def ref_conv(x, w, b, strides, pads, dilations, groups):
    """Direct definition: zero-pad, then for every output pixel sum over the window (float64)."""
    n, h, wd, c = x.shape
    kh, kw, cg, cout = w.shape
    pt, pl, pb, pr = pads
    xp = np.zeros((n, h + pt + pb, wd + pl + pr, c))
    xp[:, pt:pt + h, pl:pl + wd] = x
    sh, sw = strides
    dh, dw = dilations
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cog = cout // groups
    y = np.zeros((n, oh, ow, cout))
    for i, j in itertools.product(range(oh), range(ow)):
        win = xp[:, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw, :]  # (N,KH,KW,C)
        for g in range(groups):
            y[:, i, j, g * cog:(g + 1) * cog] = np.einsum(
                "nhwc,hwcd->nd", win[..., g * cg:(g + 1) * cg], w[..., g * cog:(g + 1) * cog])
    if b is not None:
        y += b
    return y


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")


def torchvision_preprocess(path: Path) -> np.ndarray:
    """(1, 3, 224, 224) float32, as torchvision.transforms Resize(256), CenterCrop(224), ToTensor, Normalize."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = 256, int(256 * long / short)
    im = im.resize((new_short, new_long) if w <= h else (new_long, new_short), Image.BILINEAR)
    w, h = im.size
    left, top = int(round((w - 224) / 2.0)), int(round((h - 224) / 2.0))
    x = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255.0  # (224, 224, 3)
    return ((x - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)


# ----------------------------------------------------------------------------------------- ONNX models

def tiny_onnx(num_classes: int = 10) -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.5).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32) * 0.1
    fc = (rng.standard_normal((num_classes, 8)) * 2.0).astype(np.float32)
    fcb = rng.standard_normal(num_classes).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", num_classes])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"), (fcb, "fcb"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def big_input_model(side=4000) -> bytes:
    """1x3x4000x4000 -> 1x1 conv (8 channels) -> global average pool -> flatten: about a kilobyte."""
    w = numpy_helper.from_array(np.ones((8, 3, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["logits"], name="flat")]
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                           [1, 3, side, side])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_if_model(depth: int) -> bytes:
    """A ModelProto whose graph holds an If node whose then_branch holds an If node ... ``depth`` levels deep."""
    graph = _field(2, b"g")
    for _ in range(depth):
        attr = _field(1, b"then_branch") + _varint(20 << 3) + _varint(5) + _field(6, graph)
        node = _field(4, b"If") + _field(5, attr)
        graph = _field(1, node) + _field(2, b"g")
    output = _field(1, b"y")
    graph += _field(12, output)
    return _varint(1 << 3) + _varint(8) + _field(7, graph) + _field(8, _field(1, b"") + _varint(2 << 3) + _varint(13))


_OP_RNG = np.random.default_rng(123)


def f32(*shape, scale=1.0):
    return (_OP_RNG.standard_normal(shape) * scale).astype(np.float32)


def i64(*values):
    return np.array(values, np.int64)


def conv_pre(g, x):
    """A conv in front, so elementwise ops see an NHWC-stored tensor (the common case)."""
    return g.conv(x, 4, 6, 3)


def flat_pre(g, x):
    """The importer takes 4-D images; vector ops get (N, C, 1, 1) -> Flatten -> (N, C)."""
    return g.node("Flatten", [x], axis=1)


def vec(c):
    return {"in_shape": ("N", c, 1, 1), "pre": flat_pre}


def _const_first_model(op):
    """c - x and c / x: the constant is the first operand."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = numpy_helper.from_array((np.abs(f32(4, 1, 1)) + 1.0), "c")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "one"], ["r1"]),
             helper.make_node(op, ["c", "r1"], ["y"])]
    graph = helper.make_graph(nodes, "const_first", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                    ["N", 4, 9, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 9, 9])],
                              initializer=[c, numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def _flatten_alias_model():
    """Flatten(x) + Flatten(Transpose(x)): one stored tensor, two different NCHW orders needed."""
    from onnx_builders import GraphBuilder

    g = GraphBuilder(11, 13, ("N", 4, 9, 9))
    x = conv_pre(g, g.input_name)
    a = g.node("Flatten", [x])
    b = g.node("Flatten", [g.node("Transpose", [x], perm=[0, 1, 3, 2])])
    c = g.node("Flatten", [g.node("Transpose", [x], perm=[0, 2, 3, 1])])
    return g.model(g.node("Add", [g.node("Add", [a, b]), g.node("Mul", [c, g.init("k", f32(486))])]),
                   ["N", 486], output_name="y")


def _view_shape(g, x):
    """Shape -> Gather(0) -> Unsqueeze -> Concat([N, -1]): TorchScript's x.view(x.size(0), -1)."""
    n = g.node("Gather", [g.node("Shape", [x]), g.const_node(np.array(0, np.int64))], axis=0)
    n = g.node("Unsqueeze", [n, g.init("ax", i64(0))])
    return g.node("Concat", [n, g.const_node(i64(-1))], axis=0)


def _int_tensor(v):
    from onnx import numpy_helper
    return numpy_helper.from_array(np.array([v], np.int64))


def _const_attr(g, **attr):
    from onnx import helper
    out = g.name("const")
    g.nodes.append(helper.make_node("Constant", [], [out], **attr))
    return out


def onnx_op_cases() -> dict:
    """Each supported ONNX operator on its own: name -> a function building the model (weights from f32)."""
    from onnx_builders import single_op

    CASES = {
        # convolutions
        "conv_3x3": lambda: single_op("Conv", [f32(8, 4, 3, 3), f32(8)], {"pads": [1, 1, 1, 1]}),
        "conv_stride2_nobias": lambda: single_op("Conv", [f32(8, 4, 3, 3)], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
        "conv_depthwise": lambda: single_op("Conv", [f32(4, 1, 3, 3), f32(4)], {"group": 4, "pads": [1, 1, 1, 1]}),
        "conv_depthwise_5x5_s2": lambda: single_op("Conv", [f32(4, 1, 5, 5)], {"group": 4, "strides": [2, 2],
                                                                              "pads": [1, 1, 2, 2]}),
        "conv_grouped": lambda: single_op("Conv", [f32(6, 2, 3, 3), f32(6)], {"group": 2}),
        "conv_dilated": lambda: single_op("Conv", [f32(5, 4, 3, 3)], {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
        "conv_1x1": lambda: single_op("Conv", [f32(7, 4, 1, 1), f32(7)]),
        "conv_asym_pads": lambda: single_op("Conv", [f32(3, 4, 3, 3)], {"pads": [0, 1, 2, 0], "strides": [2, 1]}),
        "conv_same_upper": lambda: single_op("Conv", [f32(3, 4, 4, 4)], {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
                                             in_shape=("N", 4, 10, 10)),
        "conv_same_lower": lambda: single_op("Conv", [f32(3, 4, 4, 4)], {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
                                             in_shape=("N", 4, 10, 10)),
        "conv_valid": lambda: single_op("Conv", [f32(3, 4, 3, 3)], {"auto_pad": "VALID", "strides": [2, 2]}),
        # normalisation / activations
        "batchnorm": lambda: single_op("BatchNormalization", [f32(4), f32(4), f32(4), np.abs(f32(4)) + 0.5],
                                       {"epsilon": 1e-3}),
        "conv_batchnorm": lambda: single_op("BatchNormalization", [f32(6), f32(6), f32(6), np.abs(f32(6)) + 0.5],
                                            pre=conv_pre),
        "relu": lambda: single_op("Relu", pre=conv_pre),
        "sigmoid": lambda: single_op("Sigmoid", pre=conv_pre),
        "hardswish": lambda: single_op("HardSwish", pre=conv_pre, opset=14),
        "hardsigmoid": lambda: single_op("HardSigmoid", [], {"alpha": 0.3, "beta": 0.4}),
        "clip_inputs": lambda: single_op("Clip", [np.array(-0.5, np.float32), ("const", np.array(0.7, np.float32))]),
        "clip_max_only": lambda: single_op("Clip", ["", np.array(0.5, np.float32)], pre=conv_pre),
        "clip_min_only_is_relu": lambda: single_op("Clip", [np.array(0.0, np.float32)], pre=conv_pre),
        "clip_attrs_opset9": lambda: single_op("Clip", [], {"min": -0.25, "max": 0.5}, opset=9),
        "softmax_2d": lambda: single_op("Softmax", [], {"axis": 1}, **vec(10)),
        "softmax_channels": lambda: single_op("Softmax", [], {"axis": 1}, pre=conv_pre),
        "softmax_opset11": lambda: single_op("Softmax", [], {}, opset=11, **vec(10)),
        # elementwise with constants (reshaped for NHWC broadcasting) and with computed operands
        "add_per_channel": lambda: single_op("Add", [f32(6, 1, 1)], pre=conv_pre),
        "mul_per_channel": lambda: single_op("Mul", [f32(1, 6, 1, 1)], pre=conv_pre),
        "sub_scalar": lambda: single_op("Sub", [np.array(0.3, np.float32)], pre=conv_pre),
        "div_full": lambda: single_op("Div", [np.abs(f32(6, 9, 9)) + 0.5], pre=conv_pre),
        "add_row": lambda: single_op("Add", [f32(9)], pre=conv_pre),
        "sub_const_first": lambda: _const_first_model("Sub"),
        "div_const_first": lambda: _const_first_model("Div"),
        "add_two_tensors": lambda: single_op("Add", [lambda g, x: g.conv(x, 6, 6, 1)], pre=conv_pre),
        "mul_se_broadcast": lambda: single_op("Mul", [lambda g, x: g.node("GlobalAveragePool", [x])], pre=conv_pre),
        "add_input_plain": lambda: single_op("Add", [f32(4, 1, 1)]),
        # pooling and reductions
        "global_avg_pool": lambda: single_op("GlobalAveragePool"),
        "reduce_mean_attr_keep": lambda: single_op("ReduceMean", [], {"axes": [2, 3], "keepdims": 1}, pre=conv_pre),
        "reduce_mean_attr_drop": lambda: single_op("ReduceMean", [], {"axes": [2, 3], "keepdims": 0}, pre=conv_pre),
        "reduce_mean_channels": lambda: single_op("ReduceMean", [], {"axes": [1], "keepdims": 1}, pre=conv_pre),
        "reduce_mean_input_opset18": lambda: single_op("ReduceMean", [i64(2, 3)], {"keepdims": 1}, opset=18),
        "reduce_mean_input_drop_opset18": lambda: single_op("ReduceMean", [i64(-1, -2)], {"keepdims": 0}, opset=18),
        "max_pool": lambda: single_op("MaxPool", [], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        "max_pool_ceil": lambda: single_op("MaxPool", [], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
                                           in_shape=("N", 4, 10, 10)),
        "max_pool_same_upper": lambda: single_op("MaxPool", [], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                                 "auto_pad": "SAME_UPPER"}, in_shape=("N", 4, 10, 10)),
        "max_pool_same_lower": lambda: single_op("MaxPool", [], {"kernel_shape": [2, 2], "strides": [1, 1],
                                                                 "auto_pad": "SAME_LOWER"}),
        "avg_pool": lambda: single_op("AveragePool", [], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                          "pads": [1, 1, 1, 1]}),
        "avg_pool_include_pad": lambda: single_op("AveragePool", [], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                                      "pads": [1, 1, 1, 1], "count_include_pad": 1}),
        "avg_pool_ceil": lambda: single_op("AveragePool", [], {"kernel_shape": [2, 2], "strides": [2, 2],
                                                               "ceil_mode": 1}),
        "avg_pool_same_upper": lambda: single_op("AveragePool", [], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                                     "auto_pad": "SAME_UPPER"}, in_shape=("N", 4, 10, 10)),
        "avg_pool_valid": lambda: single_op("AveragePool", [], {"kernel_shape": [3, 3], "auto_pad": "VALID"}),
        # padding
        "pad_constant_input": lambda: single_op("Pad", [i64(0, 0, 1, 2, 0, 0, 2, 1), np.array(0.5, np.float32)],
                                                {"mode": "constant"}),
        "pad_reflect": lambda: single_op("Pad", [i64(0, 0, 2, 1, 0, 0, 1, 2)], {"mode": "reflect"}, pre=conv_pre),
        "pad_edge": lambda: single_op("Pad", [i64(0, 0, 1, 1, 0, 0, 1, 1)], {"mode": "edge"}),
        "pad_attrs_opset9": lambda: single_op("Pad", [], {"pads": [0, 0, 0, 0, 0, 0, 1, 1], "value": 0.0}, opset=9),
        "pad_axes_opset18": lambda: single_op("Pad", [i64(1, 2, 2, 1), "", i64(2, 3)], {"mode": "constant"}, opset=18),
        "pad_then_conv_folded": lambda: single_op(
            "Conv", [f32(5, 4, 3, 3)], {"strides": [2, 2]},
            pre=lambda g, x: g.node("Pad", [x, g.init("p", i64(0, 0, 1, 1, 0, 0, 2, 2))], mode="constant")),
        # shapes and layout
        "concat_channels": lambda: single_op("Concat", [lambda g, x: g.conv(x, 6, 3, 1)], {"axis": 1}, pre=conv_pre),
        "concat_width": lambda: single_op("Concat", [lambda g, x: g.relu(x)], {"axis": -1}, pre=conv_pre),
        "transpose_to_nhwc": lambda: single_op("Transpose", [], {"perm": [0, 2, 3, 1]}, pre=conv_pre),
        "transpose_inner": lambda: single_op("Transpose", [], {"perm": [0, 1, 3, 2]}, pre=conv_pre),
        "flatten_spatial": lambda: single_op("Flatten", [], {"axis": 1}, pre=conv_pre),
        "flatten_of_tensor_and_its_transposes": lambda: _flatten_alias_model(),
        "flatten_pooled": lambda: single_op("Flatten", [], {"axis": 1},
                                            pre=lambda g, x: g.node("GlobalAveragePool", [conv_pre(g, x)])),
        "reshape_spatial": lambda: single_op("Reshape", [i64(0, -1)], pre=conv_pre),
        "reshape_split_channels": lambda: single_op("Reshape", [i64(-1, 2, 3, 81)], pre=conv_pre),
        "reshape_to_4d_then_conv": lambda: single_op(
            "Conv", [f32(3, 6, 1, 1)], pre=lambda g, x: g.node("Reshape", [g.node("Flatten", [
                g.node("GlobalAveragePool", [conv_pre(g, x)])]), g.const_node(i64(-1, 6, 1, 1))])),
        "squeeze_opset13": lambda: single_op("Squeeze", [i64(2, 3)],
                                             pre=lambda g, x: g.node("GlobalAveragePool", [conv_pre(g, x)])),
        "squeeze_opset11_attr": lambda: single_op("Squeeze", [], {"axes": [2, 3]}, opset=11,
                                                  pre=lambda g, x: g.node("GlobalAveragePool", [x])),
        "unsqueeze_opset13": lambda: single_op("Unsqueeze", [i64(2, 3)], **vec(6)),
        "unsqueeze_opset11_attr": lambda: single_op("Unsqueeze", [], {"axes": [-1]}, opset=11, **vec(6)),
        "identity": lambda: single_op("Identity", pre=conv_pre),
        "dropout_inference": lambda: single_op("Dropout", [np.array(0.5, np.float32)], pre=conv_pre),
        "constant_value_float": lambda: single_op(
            "Mul", [lambda g, x: _const_attr(g, value_float=1.5)], pre=conv_pre),
        "constant_value_floats": lambda: single_op(
            "Add", [lambda g, x: _const_attr(g, value_floats=[0.1 * i for i in range(9)])], pre=conv_pre),
        "constant_ints_reshape": lambda: single_op(
            "Reshape", [lambda g, x: _const_attr(g, value_ints=[0, -1])], pre=conv_pre),
        "cast_constant": lambda: single_op(
            "Add", [lambda g, x: g.node("Cast", [g.init("c", np.full((6, 1, 1), 2, np.int64))], to=1)], pre=conv_pre),
        # shape arithmetic folded at import (TorchScript's x.view(x.size(0), -1), F.pad's pads computation)
        "shape_gather_view": lambda: single_op("Reshape", [lambda g, x: _view_shape(g, x)],
                                               pre=lambda g, x: g.node("GlobalAveragePool", [conv_pre(g, x)])),
        "shape_start_end_opset15": lambda: single_op(
            "Reshape", [lambda g, x: g.node("Concat", [g.node("Shape", [x], start=0, end=1), g.init("m1", i64(-1))],
                                            axis=0)], pre=conv_pre, opset=15),
        "constant_of_shape_pads": lambda: single_op(
            "Pad", [lambda g, x: g.node("Cast", [g.node("Concat", [g.node("ConstantOfShape", [g.init("n", i64(6))],
                                                                            value=_int_tensor(0)),
                                                                   g.init("hw", i64(1, 2))], axis=0)], to=7)]),
        "slice_constant": lambda: single_op(
            "Add", [lambda g, x: g.node("Slice", [g.init("big", f32(6, 20, 1)), g.init("s", i64(2)),
                                                  g.init("e", i64(11)), g.init("a", i64(1))])], pre=conv_pre),
        "slice_runtime_crop": lambda: single_op("Slice", [i64(1, 2), i64(8, -1), i64(2, 3)], pre=conv_pre),
        "slice_runtime_channels": lambda: single_op("Slice", [i64(1), i64(2**62), i64(1)], pre=conv_pre),
        # dense heads
        "gemm_transB": lambda: single_op("Gemm", [f32(5, 6), f32(5)], {"transB": 1}, **vec(6)),
        "gemm_alpha_beta": lambda: single_op("Gemm", [f32(6, 5), f32(1, 5)], {"alpha": 0.5, "beta": 2.0}, **vec(6)),
        "gemm_no_bias": lambda: single_op("Gemm", [f32(6, 5)], {}, **vec(6)),
        "matmul": lambda: single_op("MatMul", [f32(6, 5)], **vec(6)),
        "matmul_add": lambda: single_op("Add", [f32(5)], in_shape=("N", 6, 1, 1),
                                        pre=lambda g, x: g.node("MatMul", [flat_pre(g, x), g.init("w", f32(6, 5))])),
        "matmul_3d": lambda: single_op("MatMul", [f32(9, 4)],
                                       pre=lambda g, x: g.node("Reshape", [x, g.const_node(i64(0, 36, 9))])),
    }
    return CASES


# ----------------------------------------------------------------------------------------- the ONNX reader

def _attr_value(a):
    """onnx's AttributeProto -> the representation onnx_proto uses."""
    v = helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(v)
    if a.type == onnx.AttributeProto.TENSORS:
        return [numpy_helper.to_array(t) for t in v]
    if a.type == onnx.AttributeProto.GRAPH:
        return ("graph", v.name, [n.op_type for n in v.node])
    if a.type == onnx.AttributeProto.GRAPHS:
        return [("graph", g.name, [n.op_type for n in g.node]) for g in v]
    if a.type == onnx.AttributeProto.FLOATS:
        return [float(np.float32(x)) for x in v]
    return list(v) if isinstance(v, (list, tuple)) else v


def _ours(a: onnx_proto.Attribute):
    v = a.value
    if isinstance(v, onnx_proto.Tensor):
        return v.array
    if isinstance(v, onnx_proto.Graph):
        return ("graph", v.name, [n.op_type for n in v.nodes])
    if isinstance(v, list) and v and isinstance(v[0], onnx_proto.Tensor):
        return [t.array for t in v]
    if isinstance(v, list) and v and isinstance(v[0], onnx_proto.Graph):
        return [("graph", g.name, [n.op_type for n in g.nodes]) for g in v]
    return v


def _same(x, y) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        x, y = np.asarray(x), np.asarray(y)
        return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    if isinstance(x, float) or isinstance(y, float):
        return np.float32(x) == np.float32(y)
    return x == y


def assert_reader_agrees(model: onnx.ModelProto) -> None:
    raw = model.SerializeToString()
    ref = onnx.load_from_string(raw)
    ours = onnx_proto.parse_model(raw)
    assert ours.ir_version == ref.ir_version
    assert ours.opset_import == {o.domain: o.version for o in ref.opset_import}
    assert ours.producer_name == ref.producer_name
    g, rg = ours.graph, ref.graph
    assert g.name == rg.name
    assert len(g.nodes) == len(rg.node)
    for n, rn in zip(g.nodes, rg.node):
        assert (n.op_type, n.name, n.domain, n.inputs, n.outputs) == (
            rn.op_type, rn.name, rn.domain, list(rn.input), list(rn.output))
        assert set(n.attributes) == {a.name for a in rn.attribute}
        for ra in rn.attribute:
            a = n.attributes[ra.name]
            assert a.type == ra.type, ra.name
            assert _same(_ours(a), _attr_value(ra)), (n.name, ra.name)
    assert set(g.initializers) == {t.name for t in rg.initializer}
    for t in rg.initializer:
        assert _same(g.initializers[t.name].array, numpy_helper.to_array(t)), t.name
        assert g.initializers[t.name].dims == list(t.dims)

    def dims(vi):
        if not vi.type.tensor_type.HasField("shape"):
            return None
        out = []
        for d in vi.type.tensor_type.shape.dim:
            out.append(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None)
        return out

    for ours_list, ref_list in ((g.inputs, rg.input), (g.outputs, rg.output)):
        assert [(v.name, v.elem_type, v.shape) for v in ours_list] == [
            (v.name, v.type.tensor_type.elem_type, dims(v)) for v in ref_list]


# ----------------------------------------------------------------------------------------- site variants

LIBRARY = "wasmvision/simd/libwvsimd.so"
RELAXED_LIBRARY = "wasmvision/simd/libwvsimd_relaxed.so"
LIBRARIES = (RELAXED_LIBRARY, LIBRARY)  # every build of the kernel library; each has a .json record beside it
BROKEN = b"\x00asm\x01\x00\x00\x00" + b"\xff" * 64  # a Wasm header, then nothing a loader can read


def site_with_library(dist_dir: Path, dest: Path, library: bytes, recorded_sha256: str,
                      members: tuple[str, ...] = LIBRARIES) -> Path:
    """A copy of the site whose wasmvision wheel carries ``library`` as the kernel file of each build in ``members``
    (default: every build) and ``recorded_sha256`` as its recorded hash; the lock and the manifest list the new wheel
    (so the site's own checks accept it, and only the kernel loader can object)."""
    records = {m[:-3] + ".json" for m in members}
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    wheel_path = manifest["wasmvision"]["wheel"]
    out = io.BytesIO()
    with zipfile.ZipFile(dist_dir / wheel_path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename in members:
                data = library
            elif item.filename in records:
                record = json.loads(data)
                record.update(bytes=len(library), sha256=recorded_sha256)
                data = json.dumps(record).encode()
            dst.writestr(item, data)
    wheel = out.getvalue()
    lock = json.loads((dist_dir / "pyodide" / "pyodide-lock.json").read_text())
    lock["packages"]["wasmvision"]["sha256"] = hashlib.sha256(wheel).hexdigest()
    replace = {wheel_path: wheel, "pyodide/pyodide-lock.json": json.dumps(lock).encode()}
    for f in manifest["files"]:
        if f["path"] in replace:
            f["bytes"], f["sha256"] = len(replace[f["path"]]), hashlib.sha256(replace[f["path"]]).hexdigest()
    replace["manifest.json"] = json.dumps(manifest, indent=1).encode()
    import browser_util as bu

    return bu.site_variant(dist_dir, dest / "site", replace=replace)
