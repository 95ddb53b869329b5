"""Whole MobileNet-family graphs (built with onnx.helper) imported and run against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx_builders as B  # noqa: E402
from onnx_builders import parity  # noqa: E402

TOL = 1e-4

CASES = {
    # family, builder kwargs
    "mobilenet_v1": (B.mobilenet_v1, {"size": 128}),
    "mobilenet_v1_w0.5_160": (B.mobilenet_v1, {"width": 0.5, "size": 160}),
    "mobilenet_v1_clip_head_matmul": (B.mobilenet_v1, {"size": 96, "act": "relu6", "head": "matmul"}),
    "mobilenet_v1_head_gemm_notrans": (B.mobilenet_v1, {"size": 96, "head": "gemm_notrans"}),
    "mobilenet_v2_opset13": (B.mobilenet_v2, {"size": 128}),
    "mobilenet_v2_opset9_clip_attrs": (B.mobilenet_v2, {"size": 128, "opset": 9}),
    "mobilenet_v2_opset11_reshape": (B.mobilenet_v2, {"size": 96, "opset": 11, "flatten": "reshape"}),
    "mobilenet_v2_squeeze_head": (B.mobilenet_v2, {"size": 96, "flatten": "squeeze"}),
    "mobilenet_v2_w0.5_160": (B.mobilenet_v2, {"width": 0.5, "size": 160}),
    "mobilenet_v2_w1.4_192": (B.mobilenet_v2, {"width": 1.4, "size": 192}),
    "mobilenet_v2_full_224": (B.mobilenet_v2, {"size": 224, "depth": "full"}),
    "mobilenet_v3_small_gap": (lambda **kw: B.mobilenet_v3("small", **kw), {"size": 128}),
    "mobilenet_v3_small_reducemean": (lambda **kw: B.mobilenet_v3("small", **kw), {"size": 128, "se_style": "rm"}),
    "mobilenet_v3_small_opset13_hardsigmoid_mul": (lambda **kw: B.mobilenet_v3("small", **kw),
                                                   {"size": 96, "opset": 13}),
    "mobilenet_v3_small_opset18_reducemean_input": (lambda **kw: B.mobilenet_v3("small", **kw),
                                                    {"size": 96, "opset": 18, "se_style": "rm"}),
    "mobilenet_v3_small_w0.75_160": (lambda **kw: B.mobilenet_v3("small", **kw), {"width": 0.75, "size": 160}),
    "mobilenet_v3_large_gap": (lambda **kw: B.mobilenet_v3("large", **kw), {"size": 128}),
    "mobilenet_v3_large_reducemean_224": (lambda **kw: B.mobilenet_v3("large", **kw),
                                          {"size": 224, "se_style": "rm", "depth": "full"}),
    "efficientnet_lite_pad_node": (B.efficientnet_lite, {"size": 128}),
    "efficientnet_lite_pad_opset9": (B.efficientnet_lite, {"size": 96, "opset": 9}),
    "efficientnet_lite_same_upper": (B.efficientnet_lite, {"size": 128, "pad_style": "auto_pad"}),
    "efficientnet_lite_odd_size": (B.efficientnet_lite, {"size": 113, "pad_style": "auto_pad"}),
    "efficientnet_lite_w1.2_192": (B.efficientnet_lite, {"size": 192, "width": 1.2}),
    "resnet_small_224": (B.resnet_small, {"size": 224}),
    "resnet_small_160": (B.resnet_small, {"size": 160}),
    "tf_channels_last_224": (B.tf_channels_last, {"size": 224}),
    "tf_channels_last_opset11": (B.tf_channels_last, {"size": 128, "opset": 11}),
    "tf_transposes_around_every_conv": (B.tf_transposes, {"size": 96}),
    "concat_net": (B.concat_net, {"size": 64}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_family_matches_onnxruntime(case):
    build, kw = CASES[case]
    rel, same_argmax, b = parity(build(**kw), runner="classifier")
    assert rel <= TOL, f"{case}: relative max |Δ| {rel:.3g}"
    assert same_argmax
    size = kw.get("size", 224)
    assert b.inputs[0].shape == [-1, size, size, 3]
    assert b.preprocess["crop"] == [size, size]


@pytest.mark.parametrize("case", ["mobilenet_v2_opset13", "tf_channels_last_224", "mobilenet_v3_small_gap"])
def test_dynamic_batch_runs_at_batch_3(case):
    build, kw = CASES[case]
    rel, same_argmax, b = parity(build(**kw), batch=3, runner="classifier")
    assert rel <= TOL and same_argmax


def test_channels_last_input_is_absorbed():
    _, _, b = parity(B.tf_channels_last(size=64))
    assert b.metadata["source_layout"] == "NHWC"
    assert "transpose" not in b.op_counts()
    assert b.nodes[-1].op == "softmax"


def test_nchw_source_layout_and_folding():
    _, _, b = parity(B.mobilenet_v2(size=64))
    assert b.metadata["source_layout"] == "NCHW"
    ops = b.op_counts()
    # every BatchNormalization folded, every Clip fused: only convs, adds, the pool and the head remain
    assert set(ops) <= {"conv2d", "add", "global_avg_pool", "reshape", "flatten", "dense"}
    assert all(n.attrs["activation"]["kind"] in ("clip", "none") for n in b.nodes if n.op == "conv2d")


def test_embedding_is_the_flattened_pooled_features():
    import onnx

    from wasmvision.plan import Executor

    model = B.mobilenet_v3("small", size=96)
    _, _, b = parity(model)
    flat = next(n for n in model.graph.node if n.op_type == "Flatten").output[0]
    extra = onnx.helper.make_tensor_value_info(flat, onnx.TensorProto.FLOAT, None)
    model.graph.output.append(extra)
    x = np.random.default_rng(5).standard_normal((2, 96, 96, 3)).astype(np.float32)
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = sess.run([flat], {"input": x.transpose(0, 3, 1, 2)})[0]
    got = Executor(b).run(x, [b.embedding])[0]
    assert got.shape == ref.shape == (2, 576)
    assert np.abs(got - ref).max() <= TOL * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("kind,resize,mean", [("imagenet", 256, [0.485, 0.456, 0.406]), ("inception", 256, [0.5] * 3)])
def test_preprocess_spec_follows_input_size(kind, resize, mean):
    from wasmvision.importers.onnx_import import import_onnx

    b = import_onnx(B.mobilenet_v1(size=224, width=0.25).SerializeToString(), preprocess=kind)
    assert b.preprocess["kind"] == kind
    assert b.preprocess["crop"] == [224, 224]
    assert b.preprocess["resize_shorter"] == resize
    assert b.preprocess["mean"] == mean
    b = import_onnx(B.mobilenet_v1(size=160, width=0.25).SerializeToString(), preprocess="none")
    assert b.preprocess["kind"] == "none" and b.preprocess["crop"] == [160, 160]


def test_hardswish_before_opset_14_fuses_like_the_op():
    # torch writes HardSwish as x * HardSigmoid(x, 1/6, 0.5) before opset 14: same bundle either way.
    _, _, b13 = parity(B.mobilenet_v3("small", size=64, opset=13))
    _, _, b14 = parity(B.mobilenet_v3("small", size=64, opset=14))
    assert b13.op_counts() == b14.op_counts()
    assert "hardsigmoid" not in b13.op_counts() and "hardswish" not in b13.op_counts()
    kinds = {n.attrs["activation"]["kind"] for n in b13.nodes if n.op == "conv2d"}
    assert {"hardswish", "hardsigmoid", "relu", "none"} <= kinds


def test_transposes_around_convs_move_no_data():
    # NHWC <-> NCHW Transposes only relabel the stored tensor; the NHWC-order Keras Flatten reads
    # the stored NHWC array as is, and the NHWC-axis Pad folds into the next conv.
    _, _, b = parity(B.tf_transposes(size=64))
    assert "transpose" not in b.op_counts() and "pad" not in b.op_counts()
    assert b.op_counts()["conv2d"] == 3
