"""The pure-Python ONNX reader agrees with `onnx.load`, and rejects what is not (complete) ONNX."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import onnx_builders as B  # noqa: E402
from wasmvision.importers import ModelImportError  # noqa: E402
from wasmvision.importers import onnx_proto  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402


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
    from test_import_ops import CASES

    for case in sorted(CASES):
        assert_reader_agrees(CASES[case]())


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
