"""Each supported ONNX operator on its own (small graphs), imported and run against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from builders import conv_pre, i64, onnx_op_cases  # noqa: E402
from onnx_builders import single_op, parity  # noqa: E402

TOL = 1e-4
CASES = onnx_op_cases()



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
