"""The pure-Python ONNX reader agrees with `onnx.load`, and rejects what is not (complete) ONNX."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import onnx_builders as B  # noqa: E402
from builders import assert_reader_agrees, onnx_op_cases  # noqa: E402
from wasmvision.importers import ModelImportError  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402


FAMILY_MODELS = {
    "mobilenet_v1": lambda: B.mobilenet_v1(size=64),
    "mobilenet_v2_opset9": lambda: B.mobilenet_v2(size=64, opset=9),
    "mobilenet_v2": lambda: B.mobilenet_v2(size=64, flatten="reshape"),
    "mobilenet_v3_small": lambda: B.mobilenet_v3("small", size=64),
    "mobilenet_v3_large_opset18": lambda: B.mobilenet_v3("large", size=64, opset=18, se_style="rm"),
    "efficientnet_lite": lambda: B.efficientnet_lite(size=64),
    "efficientnet_lite_auto_pad": lambda: B.efficientnet_lite(size=64, pad_style="auto_pad"),
    "resnet_small": lambda: B.resnet_small(size=64),
    "tf_channels_last": lambda: B.tf_channels_last(size=64),
    "concat_net": lambda: B.concat_net(size=32),
    "tf_transposes": lambda: B.tf_transposes(size=32),
}


@pytest.mark.parametrize("name", sorted(FAMILY_MODELS))
def test_reader_agrees_with_onnx_on_builder_models(name):
    assert_reader_agrees(FAMILY_MODELS[name]())


def test_reader_agrees_with_onnx_on_single_op_models():
    cases = onnx_op_cases()
    for case in sorted(cases):
        assert_reader_agrees(cases[case]())


def _typed_tensor_model():
    """Initializers in every storage field (typed and raw) and attributes of every type."""
    rng = np.random.default_rng(0)
    f = rng.standard_normal((2, 3)).astype(np.float32)
    tensors = [
        helper.make_tensor("float_data", TensorProto.FLOAT, [2, 3], f.reshape(-1).tolist()),
        helper.make_tensor("float_raw", TensorProto.FLOAT, [2, 3], f.tobytes(), raw=True),
        helper.make_tensor("int64_data", TensorProto.INT64, [4], [-1, 0, 2**40, -2**62]),
        helper.make_tensor("int32_data", TensorProto.INT32, [3], [-7, 0, 2**31 - 1]),
        helper.make_tensor("int8_data", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("uint8_data", TensorProto.UINT8, [3], [0, 200, 255]),
        helper.make_tensor("bool_data", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("double_data", TensorProto.DOUBLE, [2], [1.5, -2.25]),
        helper.make_tensor("float16_data", TensorProto.FLOAT16, [3], np.array([1.5, -2.0, 65504], np.float16)),
        numpy_helper.from_array(np.array([1.5, -2.0], np.float16), "float16_raw"),
        numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3), "int64_raw"),
        numpy_helper.from_array(np.array(3.25, np.float32), "scalar"),
        helper.make_tensor("empty", TensorProto.FLOAT, [0], []),
    ]
    sub = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "sub",
                            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
                            [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    node = helper.make_node(
        "Custom", ["x"], ["y"], name="all_attrs", domain="test.domain",
        f=0.25, i=-3, s=b"text", t=numpy_helper.from_array(f, "t"), g=sub,
        floats=[1.0, -0.5], ints=[-1, 0, 2**40], strings=[b"a", b"bc"],
        tensors=[numpy_helper.from_array(f, "t1"), numpy_helper.from_array(np.arange(3, dtype=np.int64), "t2")],
        graphs=[sub, sub])
    graph = helper.make_graph([node], "typed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])], initializer=tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("test.domain", 1)])


def test_reader_decodes_every_tensor_field_and_attribute_type():
    assert_reader_agrees(_typed_tensor_model())


def test_custom_domain_op_is_reported_as_unsupported():
    from wasmvision.importers import UnsupportedOperatorError

    m = _typed_tensor_model()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 5  # static H so only the op is the problem
    with pytest.raises(UnsupportedOperatorError) as exc:
        import_onnx(m.SerializeToString())
    assert "all_attrs" in str(exc.value) and "test.domain.Custom" in str(exc.value)


def test_external_data_gives_a_clear_error(tmp_path):
    model = B.mobilenet_v1(size=32, width=0.25)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=0)
    with pytest.raises(ModelImportError, match="outside the .onnx file.*m.onnx.data"):
        import_onnx(path)


@pytest.mark.parametrize("raw", [b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"hello, world\n" * 10,
                                 b"\x89WVB\r\n\x1a\n" + b"\0" * 100, bytes(range(256))])
def test_not_onnx_is_rejected(raw):
    with pytest.raises(ModelImportError, match="not an ONNX"):
        import_onnx(raw)


def test_truncated_file_is_rejected():
    raw = B.mobilenet_v1(size=32, width=0.25).SerializeToString()
    for cut in (1, 2, 10, 100, len(raw) // 3, len(raw) // 2, len(raw) - 20, len(raw) - 1):
        with pytest.raises(ModelImportError) as exc:
            import_onnx(raw[:cut])
        assert "truncated" in str(exc.value) or "not an ONNX" in str(exc.value), (cut, str(exc.value))


def test_missing_file(tmp_path):
    with pytest.raises(ModelImportError, match="not found"):
        import_onnx(tmp_path / "nope.onnx")
