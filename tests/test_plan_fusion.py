"""The SIMD engine's layer fusion pass (plan_fusion.py) natively: which node pairs it fuses, and the fused nodes'
numpy route (what runs where the kernels decline a fused node) against the unfused graph. The SIMD kernels of the
fused nodes are checked in Pyodide (test_simd_kernels.py conv_add cases, test_simd_networks.py)."""

import numpy as np
import pytest

from wasmvision import bundle as wvb
from wasmvision.bundle import Bundle, Node, ValueInfo
from wasmvision.plan import Plan
from wasmvision.plan_fusion import FUSED_OPS

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def graph(conv_attrs=None, extra_reader=False, target_mid=False):
    """x -> conv 1x1 (a) -> add(a, x) with ReLU6 -> y; optionally a second reader of a, or a as an output."""
    t = {"w": rand(1, 1, 8, 8), "b": rand(8), "w2": rand(1, 1, 8, 8)}
    nodes = [Node("conv2d", ["x", "w", "b"], ["a"], name="proj", attrs=dict(conv_attrs or {})),
             Node("add", ["a", "x"], ["y"], name="res", attrs={"activation": {"kind": "clip", "min": 0.0, "max": 6.0}}),
             Node("conv2d", ["y", "w2"], ["z"], name="next")]
    outputs = [ValueInfo("z", [-1, 5, 7, 8])]
    if extra_reader:
        nodes.append(Node("relu", ["a"], ["a2"], name="other"))
        outputs.append(ValueInfo("a2", [-1, 5, 7, 8]))
    if target_mid:
        outputs.append(ValueInfo("a", [-1, 5, 7, 8]))
    return Bundle(nodes=nodes, inputs=[ValueInfo("x", [-1, 5, 7, 8])], outputs=outputs, tensors=t)


@pytest.fixture
def numpy_route(monkeypatch):
    """Plans with kernels (so the fusion pass runs) whose SIMD kernels decline every node: the numpy route."""
    import wasmvision.simd.ops as simd_ops
    monkeypatch.setattr(simd_ops, "prepare_simd", lambda *args: None)
    return object()


def fused_ops(plan):
    return [n.op for n in plan.nodes if n.op in FUSED_OPS]


def test_a_projection_and_its_residual_add_become_one_node_with_the_same_results(numpy_route):
    b = graph()
    x = rand(2, 5, 7, 8)
    plain = Plan(b, x.shape)
    fused = Plan(b, x.shape, kernels=numpy_route)
    assert fused_ops(plain) == []
    assert fused_ops(fused) == ["conv2d+add"] and len(fused.steps) == len(plain.steps) - 1
    assert fused.nodes[0].name == "proj" and fused.labels[0] == ("conv2d/pointwise", "proj")
    np.testing.assert_allclose(fused.run(x)[0], plain.run(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("case", ["activation", "strided", "second_reader", "target"])
def test_what_is_not_fused(numpy_route, case):
    kw = {"activation": {"conv_attrs": {"activation": {"kind": "relu"}}},
          "strided": {"conv_attrs": {"strides": [2, 2]}},
          "second_reader": {"extra_reader": True}, "target": {"target_mid": True}}[case]
    b = graph(**kw)
    x = rand(1, 5, 7, 8)
    if case == "strided":  # the add no longer matches shapes: a (3, 4) against x (5, 7) is not a residual
        b.nodes[1] = Node("add", ["a", "a"], ["y"], name="res")
    assert fused_ops(Plan(b, x.shape, kernels=numpy_route)) == []


def expansion_graph(dw_attrs, second_reader=False):
    """x -> 1x1 conv with ReLU6 (e) -> depthwise 3x3 (attrs) -> y."""
    t = {"w1": rand(1, 1, 4, 12), "b1": rand(12), "w2": rand(3, 3, 1, 12)}
    nodes = [Node("conv2d", ["x", "w1", "b1"], ["e"], name="expand",
                  attrs={"activation": {"kind": "clip", "min": 0.0, "max": 6.0}}),
             Node("conv2d", ["e", "w2"], ["y"], name="dw", attrs={"groups": 12, **dw_attrs})]
    outputs = [ValueInfo("y", [-1, -1, -1, 12])]
    if second_reader:
        nodes.append(Node("relu", ["e"], ["e2"], name="other"))
        outputs.append(ValueInfo("e2", [-1, 9, 8, 12]))
    return Bundle(nodes=nodes, inputs=[ValueInfo("x", [-1, 9, 8, 4])], outputs=outputs, tensors=t)


@pytest.mark.parametrize("dw_attrs", [{"pads": [1, 1, 1, 1]}, {"strides": [2, 2], "pads": [0, 0, 1, 1],
                                                                "activation": {"kind": "relu"}}])
def test_an_expansion_and_its_depthwise_conv_become_one_node_with_the_same_results(numpy_route, monkeypatch,
                                                                                    dw_attrs):
    import wasmvision.plan_fusion as plan_fusion
    monkeypatch.setattr(plan_fusion, "PWDW_MIN_BYTES", 0)
    b = expansion_graph(dw_attrs)
    x = rand(2, 9, 8, 4)
    plain, fused = Plan(b, x.shape), Plan(b, x.shape, kernels=numpy_route)
    assert fused_ops(fused) == ["conv2d+depthwise"] and len(fused.steps) == 1
    assert fused.labels == [("conv2d/pointwise", "expand")]
    np.testing.assert_allclose(fused.run(x)[0], plain.run(x)[0], rtol=0, atol=0)
    assert fused_ops(Plan(expansion_graph(dw_attrs, second_reader=True), x.shape, kernels=numpy_route)) == []
    monkeypatch.setattr(plan_fusion, "PWDW_MIN_BYTES", 4 * 2 * 9 * 8 * 12 + 1)  # above the expanded tensor's bytes
    assert fused_ops(Plan(b, x.shape, kernels=numpy_route)) == []


def test_mobilenet_v2_fuses_its_residual_adds_its_stem_and_its_large_expansions(numpy_route, mobilenet_bundle):
    b = wvb.load(mobilenet_bundle)
    x = np.random.default_rng(0).uniform(-2, 2, (1, 224, 224, 3)).astype(np.float32)
    plain = Plan(b, x.shape)
    fused = Plan(b, x.shape, kernels=numpy_route)
    assert sorted(fused_ops(fused)) == ["conv2d+add"] * 10 + ["conv2d+depthwise"] * 4
    # the stem (112x112x32 out) and the expansions of features.2-4 (112x112x96, 56x56x144 twice), named after the
    # first conv
    assert [n.name for n in fused.nodes if n.op == "conv2d+depthwise"] == ["features.0.0"] + [
        n.name for n in b.nodes if n.name.startswith(("features.2.", "features.3.", "features.4."))
        and n.name.endswith("conv.0.0")]
    assert not any(n.op == "add" for n in fused.nodes)
    assert fused.buffer_bytes <= plain.buffer_bytes
    np.testing.assert_allclose(fused.run(x)[0], plain.run(x)[0], rtol=0, atol=1e-5)
