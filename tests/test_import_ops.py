"""Each supported ONNX operator on its own (small graphs), imported and run against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_builders import single_op, parity  # noqa: E402

TOL = 1e-4
rng = np.random.default_rng(123)


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


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
    from onnx import TensorProto, helper

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


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_matches_onnxruntime(case):
    rel, _, b = parity(CASES[case](), batch=2)
    assert rel <= TOL, f"{case}: relative max |Δ| {rel:.3g}"


def test_batchnorm_folds_into_conv_and_activation_fuses():
    rel, _, b = parity(single_op("Relu", pre=lambda g, x: g.bn(g.conv(x, 4, 6, 3, bias=False), 6)))
    assert rel <= TOL
    assert b.op_counts() == {"conv2d": 1}
    assert b.nodes[0].attrs["activation"] == {"kind": "relu"}


def test_clip_fuses_as_relu6():
    rel, _, b = parity(single_op("Clip", [np.array(0.0, np.float32), np.array(6.0, np.float32)], pre=conv_pre))
    assert rel <= TOL
    assert b.op_counts() == {"conv2d": 1}
    assert b.nodes[0].attrs["activation"] == {"kind": "clip", "min": 0.0, "max": 6.0}


def test_activation_not_fused_when_conv_output_is_shared():
    # conv -> relu and conv -> add: fusing relu into the conv would change the add's input.
    model = single_op("Add", [lambda g, x: g.relu(x)], pre=conv_pre)
    rel, _, b = parity(model)
    assert rel <= TOL
    assert b.op_counts().get("relu") == 1


def test_pad_folds_into_conv():
    rel, _, b = parity(CASES["pad_then_conv_folded"]())
    assert rel <= TOL
    assert b.op_counts() == {"conv2d": 1}
    assert b.nodes[0].attrs["pads"] == [1, 1, 2, 2]


def test_flatten_of_spatial_tensor_transposes_back_to_nchw_order():
    _, _, b = parity(CASES["flatten_spatial"]())
    assert "transpose" in b.op_counts()
    _, _, b = parity(CASES["flatten_pooled"]())  # H*W == 1: same element order, no transpose
    assert "transpose" not in b.op_counts()


def test_matmul_add_becomes_one_dense():
    _, _, b = parity(CASES["matmul_add"]())
    assert b.op_counts().get("dense") == 1 and "add" not in b.op_counts()
    dense = next(n for n in b.nodes if n.op == "dense")
    assert len(dense.inputs) == 3  # the Add became the bias


def test_arithmetic_on_the_batch_size_is_a_clear_error():
    from wasmvision.importers import UnsupportedOperatorError
    from wasmvision.importers.onnx_import import import_onnx

    def batch_times_c(g, x):
        n = g.node("Gather", [g.node("Shape", [x]), g.const_node(np.array(0, np.int64))], axis=0)
        return g.node("Unsqueeze", [g.node("Mul", [n, g.init("k", np.array(6, np.int64))]), g.init("ax", i64(0))])

    model = single_op("Reshape", [lambda g, x: g.node("Concat", [batch_times_c(g, x), g.init("m", i64(-1))],
                                                      axis=0)], pre=conv_pre)
    with pytest.raises(UnsupportedOperatorError, match="batch size"):
        import_onnx(model.SerializeToString())
