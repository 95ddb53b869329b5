"""What real tf2onnx exports of Keras models contain that hand-built graphs had missed, one piece
at a time (small onnx.helper graphs, checked against onnxruntime):

* a channels-last input that passes through Keras's Rescaling (Mul, Add) before its Transpose;
* Keras's hard sigmoid relu6(x + 3) / 6 and hard swish x * relu6(x + 3) / 6 (both associations),
  which tf2onnx keeps as Add, Clip, Mul: fused to hardsigmoid / hardswish and into the conv;
* ReduceMean over axes (1, 2) of a channels-last tensor (Keras's GlobalAveragePooling2D with
  keepdims, the SE squeeze): global average pooling as stored;
* tf.clip_by_value as Min then Max against constants (Keras 2's hard_sigmoid): clips, merged;
* Keras's GlobalMaxPooling2D: GlobalMaxPool (or ReduceMax over H, W): a whole-image max_pool.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_builders import GraphBuilder, parity  # noqa: E402

TOL = 1e-4
C = 6  # channels after the conv
S = 8  # spatial size


def f32(value) -> np.ndarray:
    return np.array(value, np.float32)


def nhwc_graph(opset: int = 13, seed: int = 0) -> GraphBuilder:
    return GraphBuilder(seed, opset, ("N", S, S, 3), input_name="input")


def tf_conv(g: GraphBuilder, x: str, cin: int = 3, cout: int = C) -> str:
    """A Keras conv as tf2onnx writes it: NHWC -> Transpose -> Conv -> Transpose -> NHWC."""
    y = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    y = g.conv(y, cin, cout, 3)
    return g.node("Transpose", [y], perm=[0, 2, 3, 1])


def relu6_plus3(g: GraphBuilder, x: str, three_first: bool = False) -> str:
    three = g.init("three", f32(3.0))
    s = g.node("Add", [three, x] if three_first else [x, three])
    return g.node("Clip", [s, g.init("zero", f32(0.0)), g.init("six", f32(6.0))])


def sixth(g: GraphBuilder, y: str, style: str = "mul") -> str:
    if style == "mul":
        return g.node("Mul", [y, g.init("sixth", f32(1.0 / 6.0))])
    if style == "mul_const_first":
        return g.node("Mul", [g.init("sixth", f32(1.0 / 6.0)), y])
    return g.node("Div", [y, g.init("six_d", f32(6.0))])


def nhwc_out(g: GraphBuilder, y: str, name: str):
    return g.model(y, ["N", S, S, C], name)


def check(model, **expect_counts):
    rel, same_argmax, b = parity(model, batch=2)
    assert rel <= TOL, f"relative max |Δ| {rel:.3g}"
    assert same_argmax
    counts = b.op_counts()
    for op, n in expect_counts.items():
        assert counts.get(op, 0) == n, counts
    return b


def conv_activations(b) -> list[str]:
    return [(n.attrs.get("activation") or {}).get("kind") for n in b.nodes if n.op == "conv2d"]


# ------------------------------------------------------------------------------------- input layout

@pytest.mark.parametrize("ops", [("Mul", "Add"), ("Div", "Sub"), ("Cast", "Mul"), ()])
def test_channels_last_input_behind_rescaling(ops):
    """Keras's Rescaling(1/127.5, offset=-1) sits between the NHWC input and tf2onnx's Transpose."""
    g = nhwc_graph()
    x = g.input_name
    for op in ops:
        if op == "Cast":
            x = g.node("Cast", [x], to=1)
        else:
            x = g.node(op, [x, g.init("k", f32(127.5 if op in ("Mul", "Div") else 1.0))])
    y = tf_conv(g, x)
    b = check(nhwc_out(g, y, "rescaled_input"), transpose=0, conv2d=1)
    assert b.metadata["source_layout"] == "NHWC"
    assert b.inputs[0].shape == [-1, S, S, 3]


def test_channels_last_input_with_per_channel_normalization():
    """Keras's Normalization layer: (x - mean) / sqrt(var) with (C,) constants on the NHWC input."""
    g = nhwc_graph()
    x = g.node("Sub", [g.input_name, g.init("mean", f32([0.4, 0.5, 0.6]))])
    x = g.node("Div", [x, g.init("std", f32([0.2, 0.25, 0.3]))])
    b = check(nhwc_out(g, tf_conv(g, x), "normalized_input"), transpose=0)
    assert b.metadata["source_layout"] == "NHWC"


def test_channels_first_input_behind_rescaling_stays_nchw():
    """The same Mul/Add in front of a Conv reading the input directly: an NCHW model."""
    g = GraphBuilder(0, 13, ("N", 3, S, S), input_name="input")
    x = g.node("Mul", [g.input_name, g.init("k", f32(0.5))])
    x = g.node("Add", [x, g.init("k", f32(-1.0))])
    y = g.conv(x, 3, C, 3)
    b = check(g.model(y, ["N", C, S, S], "nchw_rescaled"), transpose=0)
    assert b.metadata["source_layout"] == "NCHW"
    assert b.inputs[0].shape == [-1, S, S, 3]


def test_input_read_by_a_transpose_and_a_conv_is_nchw():
    """Only when every path reaches a Transpose to NCHW is the input channels-last."""
    g = GraphBuilder(0, 13, ("N", 3, S, S), input_name="input")
    a = g.conv(g.input_name, 3, C, 3)
    t = g.node("Transpose", [g.input_name], perm=[0, 3, 1, 2])  # (N, S, 3, S): odd, but legal
    t = g.node("ReduceMean", [t], axes=[1, 2, 3], keepdims=1)  # (N, 1, 1, 1)
    y = g.node("Add", [a, t])
    b = check(g.model(y, ["N", C, S, S], "mixed_readers"))
    assert b.metadata["source_layout"] == "NCHW"


# ------------------------------------------------------------------------------------- hard sigmoid

@pytest.mark.parametrize("style", ["mul", "mul_const_first", "div"])
@pytest.mark.parametrize("three_first", [False, True])
def test_keras_hard_sigmoid_fuses_into_the_conv(style, three_first):
    g = nhwc_graph()
    y = sixth(g, relu6_plus3(g, tf_conv(g, g.input_name), three_first), style)
    b = check(nhwc_out(g, y, "hard_sigmoid"), conv2d=1, add=0, clip=0, mul=0, div=0, hardsigmoid=0)
    act = b.nodes[0].attrs["activation"]
    assert act["kind"] == "hardsigmoid" and abs(act["alpha"] - 1 / 6) < 1e-9 and act["beta"] == 0.5


def test_keras_hard_sigmoid_without_a_conv_before_it():
    """After a computed Mul (no producer to fuse into) it stays one hardsigmoid op."""
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    x = g.node("Mul", [x, x])
    y = sixth(g, relu6_plus3(g, x))
    check(nhwc_out(g, y, "hard_sigmoid_alone"), hardsigmoid=1, clip=0, add=0)


def test_squeeze_excitation_gate_as_keras_writes_it():
    """MobileNetV3's SE: ReduceMean(1, 2) -> conv -> relu -> conv -> relu6(x + 3) / 6 -> Mul."""
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    s = g.node("ReduceMean", [x], axes=[1, 2], keepdims=1)  # (N, 1, 1, C)
    s = g.relu(tf_conv(g, s, C, 4))
    s = sixth(g, relu6_plus3(g, tf_conv(g, s, 4, C)))
    y = g.node("Mul", [x, s])
    b = check(nhwc_out(g, y, "se_gate"), global_avg_pool=1, reduce_mean=0, transpose=0, clip=0, add=0, mul=1)
    assert conv_activations(b) == ["none", "relu", "hardsigmoid"]


# ------------------------------------------------------------------------------------- hard swish

@pytest.mark.parametrize("style", ["mul", "div"])
def test_keras_hard_swish_gate_first(style):
    """x * (relu6(x + 3) / 6): the hard sigmoid fuses, then x * hardsigmoid(x) is hard swish."""
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    y = g.node("Mul", [x, sixth(g, relu6_plus3(g, x), style)])
    b = check(nhwc_out(g, y, "hard_swish_a"), conv2d=1, add=0, clip=0, mul=0, div=0, hardswish=0)
    assert conv_activations(b) == ["hardswish"]


@pytest.mark.parametrize("style", ["mul", "mul_const_first", "div"])
@pytest.mark.parametrize("x_first", [True, False])
def test_keras_hard_swish_product_first(style, x_first):
    """(x * relu6(x + 3)) / 6: the other association of Keras's formula."""
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    r = relu6_plus3(g, x)
    y = sixth(g, g.node("Mul", [x, r] if x_first else [r, x]), style)
    b = check(nhwc_out(g, y, "hard_swish_b"), conv2d=1, add=0, clip=0, mul=0, div=0, hardswish=0)
    assert conv_activations(b) == ["hardswish"]


# ------------------------------------------------------------------------------------- near misses

@pytest.mark.parametrize("case", ["plus_2.5", "clip_0_5", "times_0.2", "relu6_read_twice", "sum_read_twice"])
def test_near_misses_are_not_fused_and_stay_exact(case):
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    three = g.init("three", f32(2.5 if case == "plus_2.5" else 3.0))
    s = g.node("Add", [x, three])
    hi = 5.0 if case == "clip_0_5" else 6.0
    r = g.node("Clip", [s, g.init("zero", f32(0.0)), g.init("hi", f32(hi))])
    y = g.node("Mul", [r, g.init("k", f32(0.2 if case == "times_0.2" else 1.0 / 6.0))])
    if case == "relu6_read_twice":
        y = g.node("Add", [y, r])
    if case == "sum_read_twice":
        y = g.node("Add", [y, s])
    b = check(nhwc_out(g, y, case), hardsigmoid=0)
    assert "hardsigmoid" not in conv_activations(b)


# ------------------------------------------------------------------------------------- ReduceMean

@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("axes", [[1, 2], [2, 1], [-3, -2]])
def test_channels_last_reduce_mean_is_global_average_pooling(opset, axes):
    g = nhwc_graph(opset)
    x = tf_conv(g, g.input_name)
    if opset >= 18:
        y = g.node("ReduceMean", [x, g.init("axes", np.array(axes, np.int64))], keepdims=1)
    else:
        y = g.node("ReduceMean", [x], axes=axes, keepdims=1)
    b = check(g.model(y, ["N", 1, 1, C], "reduce_mean_nhwc"), global_avg_pool=1, reduce_mean=0, transpose=0)
    assert b.outputs[0].shape == [-1, 1, 1, C]


def test_channels_last_reduce_mean_over_channels_stays_a_reduction():
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    y = g.node("ReduceMean", [x], axes=[3], keepdims=1)
    check(g.model(y, ["N", S, S, 1], "reduce_mean_c"), global_avg_pool=0, reduce_mean=1)


# ------------------------------------------------------------------------------------- Min / Max

def test_keras2_hard_sigmoid_clip_by_value_fuses_into_the_conv():
    """Keras 2: clip(0.2 x + 0.5, 0, 1) as Mul, Add, Min(1), Max(0) with (1, 1, 1, 1) constants."""
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    x = g.node("Add", [g.node("Mul", [x, g.init("a", f32(0.2))]), g.init("b", f32(0.5))])
    x = g.node("Min", [x, g.init("one", np.ones((1, 1, 1, 1), np.float32))])
    y = g.node("Max", [x, g.init("zero", np.zeros((1, 1, 1, 1), np.float32))])
    b = check(nhwc_out(g, y, "clip_by_value"), conv2d=1, clip=0, relu=0, mul=0, add=0)
    act = b.nodes[0].attrs["activation"]
    assert act == {"kind": "clip", "min": 0.0, "max": 1.0}


@pytest.mark.parametrize("case", ["min", "max", "max_0", "min_const_first", "max_two_consts", "max_then_min"])
def test_min_max_against_constants(case):
    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    x = g.node("Mul", [x, x])  # a computed product: no conv for the clip to fuse into
    if case == "min":
        y = g.node("Min", [x, g.init("c", f32(0.5))])
    elif case == "max":
        y = g.node("Max", [x, g.init("c", f32(-0.5))])
    elif case == "max_0":
        y = g.node("Max", [x, g.init("c", f32(0.0))])
    elif case == "min_const_first":
        y = g.node("Min", [g.init("c", f32([[[[0.25]]]])), x])
    elif case == "max_two_consts":
        y = g.node("Max", [x, g.init("c", f32(-1.0)), g.const_node(f32(0.5))])
    else:
        y = g.node("Min", [g.node("Max", [x, g.init("lo", f32(-0.5))]), g.init("hi", f32(0.5))])
    b = check(nhwc_out(g, y, case))
    counts = b.op_counts()
    assert counts.get("clip", 0) + counts.get("relu", 0) == 1, counts  # merged into one op


def test_min_of_constants_folds():
    g = nhwc_graph()
    k = g.node("Min", [g.init("a", f32([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])), g.const_node(f32(3.5))])
    y = g.node("Mul", [tf_conv(g, g.input_name), k])  # (C,) scale on the NHWC tensor
    check(nhwc_out(g, y, "min_consts"), clip=0)


def test_min_of_two_computed_tensors_is_refused_clearly():
    from wasmvision.importers import UnsupportedOperatorError
    from wasmvision.importers.onnx_import import import_onnx

    g = nhwc_graph()
    x = tf_conv(g, g.input_name)
    y = g.node("Min", [x, g.relu(x)], name="the_min")
    with pytest.raises(UnsupportedOperatorError, match=r"the_min.*Min of 2 computed tensors.*Supported operators"):
        import_onnx(nhwc_out(g, y, "min_runtime").SerializeToString())


def test_min_against_a_per_channel_constant_is_refused_clearly():
    from wasmvision.importers import UnsupportedOperatorError
    from wasmvision.importers.onnx_import import import_onnx

    g = nhwc_graph()
    y = g.node("Min", [tf_conv(g, g.input_name), g.init("c", np.linspace(0, 1, C).astype(np.float32))])
    with pytest.raises(UnsupportedOperatorError, match=r"constant of shape \[6\]"):
        import_onnx(nhwc_out(g, y, "min_vec").SerializeToString())


# ------------------------------------------------------------------------------------- global max

def test_global_max_pool_after_channels_last_conv():
    """tf2onnx's form of Keras's GlobalMaxPooling2D: GlobalMaxPool on NCHW, then Squeeze."""
    g = nhwc_graph()
    x = g.conv(g.node("Transpose", [g.input_name], perm=[0, 3, 1, 2]), 3, C, 3)
    x = g.node("GlobalMaxPool", [x])
    y = g.node("Squeeze", [x, g.init("axes", np.array([2, 3], np.int64))])
    b = check(g.model(y, ["N", C], "global_max"), max_pool=1, transpose=0)
    pool = next(n for n in b.nodes if n.op == "max_pool")
    assert pool.attrs["kernel"] == [S, S]


def test_global_max_pool_nchw_model():
    g = GraphBuilder(0, 13, ("N", 3, S, S), input_name="input")
    y = g.node("GlobalMaxPool", [g.conv(g.input_name, 3, C, 3, stride=2)])
    check(g.model(y, ["N", C, 1, 1], "global_max_nchw"), max_pool=1, transpose=0)


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("keepdims", [1, 0])
def test_channels_last_reduce_max(opset, keepdims):
    """Keras's GlobalMaxPooling2D when tf2onnx's pooling optimizer does not run: ReduceMax(1, 2)."""
    g = nhwc_graph(opset)
    x = tf_conv(g, g.input_name)
    if opset >= 18:
        y = g.node("ReduceMax", [x, g.init("axes", np.array([1, 2], np.int64))], keepdims=keepdims)
    else:
        y = g.node("ReduceMax", [x], axes=[1, 2], keepdims=keepdims)
    check(g.model(y, ["N", 1, 1, C] if keepdims else ["N", C], "reduce_max"), max_pool=1, transpose=0)


def test_reduce_max_nchw_spatial_axes():
    g = GraphBuilder(0, 13, ("N", 3, S, S), input_name="input")
    y = g.node("ReduceMax", [g.conv(g.input_name, 3, C, 3)], axes=[2, 3], keepdims=0)
    check(g.model(y, ["N", C], "reduce_max_nchw"), max_pool=1, transpose=0)


def test_reduce_max_over_channels_is_refused_clearly():
    from wasmvision.importers import UnsupportedOperatorError
    from wasmvision.importers.onnx_import import import_onnx

    g = nhwc_graph()
    y = g.node("ReduceMax", [tf_conv(g, g.input_name)], axes=[3], keepdims=1)
    with pytest.raises(UnsupportedOperatorError, match="only over the two spatial axes"):
        import_onnx(g.model(y, ["N", S, S, 1], "reduce_max_c").SerializeToString())
