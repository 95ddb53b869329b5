"""Every kernel against a straightforward reference (loops / direct formulas), and plan correctness."""

import itertools
import math

import numpy as np
import pytest

from builders import ref_conv
from wasmvision.bundle import Bundle, Node, ValueInfo
from wasmvision.kernels import OPS, KernelError, get_op
from wasmvision.plan import Plan, PlanError

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------------------- references

def ref_pool(x, kernel, strides, pads, ceil_mode, kind, count_include_pad=False, dilations=(1, 1)):
    """Window by window, PyTorch/ONNX rules written out with Python loops."""
    n, h, w, c = x.shape
    out = []
    for size, k, s, d, p0, p1 in ((h, kernel[0], strides[0], dilations[0], pads[0], pads[2]),
                                   (w, kernel[1], strides[1], dilations[1], pads[1], pads[3])):
        span = d * (k - 1) + 1
        o = (size + p0 + p1 - span) / s + 1
        o = math.ceil(o) if ceil_mode else math.floor(o)
        if ceil_mode and (o - 1) * s >= size + p0:
            o -= 1
        out.append(o)
    oh, ow = out
    y = np.zeros((n, oh, ow, c))
    for i, j in itertools.product(range(oh), range(ow)):
        rows = [i * strides[0] - pads[0] + t * dilations[0] for t in range(kernel[0])]
        cols = [j * strides[1] - pads[1] + t * dilations[1] for t in range(kernel[1])]
        vals = [x[:, r, q, :] for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
        if kind == "max":
            y[:, i, j] = np.max(vals, axis=0)
        else:
            if count_include_pad:
                cnt = sum(1 for r in rows if -pads[0] <= r < h + pads[2]) * \
                      sum(1 for q in cols if -pads[1] <= q < w + pads[3])
            else:
                cnt = len(vals)
            y[:, i, j] = np.sum(vals, axis=0) / cnt
    return y


# ----------------------------------------------------------------------------------------- conv2d

CONV_CASES = [
    # (x shape, kernel, cin/groups, cout, groups, strides, pads, dilations, activation)
    ((1, 9, 9, 8), 1, 8, 16, 1, (1, 1), (0, 0, 0, 0), (1, 1), None),  # pointwise
    ((2, 9, 9, 8), 1, 8, 5, 1, (2, 2), (0, 0, 0, 0), (1, 1), None),  # strided pointwise
    ((1, 12, 12, 6), 3, 1, 6, 6, (1, 1), (1, 1, 1, 1), (1, 1), {"kind": "clip", "min": 0.0, "max": 6.0}),  # dw
    ((1, 12, 11, 6), 3, 1, 6, 6, (2, 2), (1, 1, 1, 1), (1, 1), {"kind": "relu"}),  # depthwise stride 2
    ((1, 12, 12, 4), 3, 1, 4, 4, (2, 2), (0, 0, 1, 1), (1, 1), None),  # depthwise, TF-style asymmetric pads
    ((1, 10, 10, 4), 3, 1, 4, 4, (1, 1), (2, 2, 2, 2), (2, 2), None),  # dilated depthwise
    ((1, 7, 7, 3), 5, 1, 3, 3, (1, 1), (3, 0, 1, 2), (1, 1), None),  # depthwise, taps reading only padding
    ((1, 9, 8, 5), 3, 1, 5, 5, (2, 1), (1, 1, 1, 1), (1, 2), None),  # depthwise, stride only along H
    ((2, 6, 6, 4), 3, 1, 4, 4, (1, 1), (0, 0, 0, 0), (1, 1), None),  # depthwise without padding
    ((1, 6, 9, 4), 3, 1, 4, 4, (1, 2), (1, 1, 1, 1), (2, 1), None),  # depthwise, stride only along W
    ((1, 16, 16, 3), 3, 3, 8, 1, (2, 2), (0, 0, 1, 1), (1, 1), {"kind": "clip", "min": 0.0, "max": 6.0}),  # stem
    ((2, 8, 9, 4), 3, 4, 6, 1, (1, 2), (1, 0, 2, 1), (1, 1), {"kind": "hardswish"}),  # general, asymmetric
    ((1, 8, 8, 4), 3, 2, 6, 2, (1, 1), (1, 1, 1, 1), (1, 1), {"kind": "sigmoid"}),  # grouped
    ((1, 8, 8, 4), 3, 1, 8, 4, (1, 1), (1, 1, 1, 1), (1, 1), None),  # depthwise multiplier 2
    ((1, 9, 9, 4), 3, 4, 4, 1, (1, 1), (2, 2, 2, 2), (2, 2), {"kind": "hardsigmoid", "alpha": 0.2, "beta": 0.5}),
]


def apply_act(y, spec):
    kind = (spec or {}).get("kind", "none")
    if kind == "relu":
        return np.maximum(y, 0)
    if kind == "clip":
        return np.clip(y, spec["min"], spec["max"])
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-y))
    if kind == "hardsigmoid":
        return np.clip(spec["alpha"] * y + spec["beta"], 0, 1)
    if kind == "hardswish":
        return y * np.clip(y / 6 + 0.5, 0, 1)
    return y


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(case, bias):
    xs, k, cg, cout, groups, strides, pads, dil, act = case
    x, w = rand(*xs), rand(k, k, cg, cout)
    b = rand(cout) if bias else None
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dil), "groups": groups}
    if act:
        attrs["activation"] = act
    op = get_op("conv2d", attrs)
    y = op.compute(x, w, b) if bias else op.compute(x, w)
    ref = apply_act(ref_conv(x, w, b, strides, pads, dil, groups), act)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_conv2d_picks_the_expected_strategy():
    op = get_op("conv2d", {"groups": 8, "pads": [1, 1, 1, 1]})
    assert op.kind([(1, 8, 8, 8), (3, 3, 1, 8)]) == "depthwise"
    assert get_op("conv2d", {}).kind([(1, 8, 8, 8), (1, 1, 8, 4)]) == "pointwise"
    assert get_op("conv2d", {"strides": [2, 2]}).kind([(1, 8, 8, 3), (3, 3, 3, 4)]) == "im2col"


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(KernelError, match="channels"):
        get_op("conv2d", {}).infer([(1, 4, 4, 3), (1, 1, 4, 8)])


# ----------------------------------------------------------------------------------------- dense, matmul

@pytest.mark.parametrize("act", [None, {"kind": "relu"}])
def test_dense(act):
    x, w, b = rand(3, 7), rand(7, 5), rand(5)
    attrs = {"activation": act} if act else {}
    y = get_op("dense", attrs).compute(x, w, b)
    np.testing.assert_allclose(y, apply_act(x.astype(np.float64) @ w + b, act), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapes", [((4, 6), (6, 3)), ((2, 4, 6), (6, 3)), ((2, 3, 4), (2, 4, 5))])
def test_matmul(shapes):
    a, b = rand(*shapes[0]), rand(*shapes[1])
    np.testing.assert_allclose(get_op("matmul").compute(a, b), np.matmul(a.astype(np.float64), b),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("a, b", [((4, 6), (6, 3)), ((6,), (6, 3)), ((4, 6), (6,)), ((6,), (6,)),
                                  ((1, 4, 6), (3, 6, 2)), ((5, 1, 4, 6), (3, 6, 2)), ((2, 3, 4), (2, 4, 5))])
def test_matmul_shape_is_numpys(a, b):
    from wasmvision.kernels.op_dense import matmul_shape

    assert matmul_shape(a, b) == np.matmul(np.zeros(a), np.zeros(b)).shape


@pytest.mark.parametrize("a, b", [((4, 6), (5, 3)), ((2, 4, 6), (3, 6, 2)), ((), (3,))])
def test_matmul_shape_refuses_what_numpy_refuses(a, b):
    from wasmvision.kernels.op_dense import matmul_shape

    with pytest.raises(ValueError):
        np.matmul(np.zeros(a), np.zeros(b))
    with pytest.raises(ValueError):
        matmul_shape(a, b)


def test_matmul_infer_allocates_nothing_for_huge_shapes():
    # 2^40 elements each: inferring the shape must not try to allocate them.
    assert get_op("matmul").infer([(1 << 20, 1 << 20), (1 << 20, 3)]) == [(1 << 20, 3)]


# ----------------------------------------------------------------------------------------- elementwise

@pytest.mark.parametrize("op,fn", [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide)])
@pytest.mark.parametrize("bshape", [(2, 3, 4, 5), (5,), (1, 1, 1, 5), (2, 1, 4, 1)])
def test_binary(op, fn, bshape):
    a, b = rand(2, 3, 4, 5), rand(*bshape)
    if op == "div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    np.testing.assert_allclose(get_op(op).compute(a, b), fn(a, b), rtol=1e-6)


def test_binary_fused_activation():
    a, b = rand(2, 3), rand(2, 3)
    y = get_op("add", {"activation": {"kind": "clip", "min": 0.0, "max": 0.5}}).compute(a, b)
    np.testing.assert_allclose(y, np.clip(a + b, 0, 0.5), rtol=1e-6)


def test_unary():
    x = rand(2, 3, 4, 5) * 5
    np.testing.assert_array_equal(get_op("relu").compute(x), np.maximum(x, 0))
    np.testing.assert_array_equal(get_op("identity").compute(x), x)
    np.testing.assert_array_equal(get_op("clip", {"min": -1.0, "max": 2.0}).compute(x), np.clip(x, -1, 2))
    np.testing.assert_array_equal(get_op("clip", {"min": 0.0}).compute(x), np.maximum(x, 0))
    np.testing.assert_allclose(get_op("sigmoid").compute(x), 1 / (1 + np.exp(-x.astype(np.float64))), atol=1e-6)
    np.testing.assert_allclose(get_op("hardswish").compute(x), x * np.clip(x + 3, 0, 6) / 6, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(get_op("hardsigmoid", {"alpha": 0.3, "beta": 0.4}).compute(x),
                               np.clip(0.3 * x + 0.4, 0, 1), atol=1e-6)


def test_sigmoid_extreme_values_do_not_overflow():
    x = np.array([-1e4, -100, 0, 100, 1e4], np.float32)
    with np.errstate(all="raise"):
        y = get_op("sigmoid").compute(x)
    np.testing.assert_allclose(y, [0, 0, 0.5, 1, 1], atol=1e-7)


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax(axis):
    x = rand(3, 4, 5) * 50
    x[0, 0, 0] = 1e4  # would overflow exp without the max subtraction
    y = get_op("softmax", {"axis": axis}).compute(x)
    z = x.astype(np.float64) - x.max(axis=axis, keepdims=True)
    ref = np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(y, ref, atol=1e-6)


# ----------------------------------------------------------------------------------------- pooling

def test_global_avg_pool():
    x = rand(2, 7, 5, 3)
    np.testing.assert_allclose(get_op("global_avg_pool").compute(x), x.mean(axis=(1, 2), keepdims=True),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axes,keep", [([1, 2], 1), ([1, 2], 0), ([-1], 1), (None, 0)])
def test_reduce_mean(axes, keep):
    x = rand(2, 3, 4, 5)
    attrs = {"keepdims": keep} | ({"axes": axes} if axes is not None else {})
    ref = x.astype(np.float64).mean(axis=tuple(axes) if axes else None, keepdims=bool(keep))
    np.testing.assert_allclose(get_op("reduce_mean", attrs).compute(x), ref, rtol=1e-5, atol=1e-6)


POOL_CASES = [
    ((3, 3), (2, 2), (0, 0, 0, 0), 0, 0),
    ((3, 3), (2, 2), (0, 0, 0, 0), 1, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, 1),
    ((2, 2), (2, 2), (0, 0, 0, 0), 1, 0),
    ((3, 2), (1, 2), (1, 0, 1, 1), 0, 1),
    ((3, 3), (3, 3), (1, 1, 1, 1), 1, 0),
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool(case, kind):
    kernel, strides, pads, ceil_mode, include = case
    x = rand(2, 8, 7, 3)
    attrs = {"kernel": list(kernel), "strides": list(strides), "pads": list(pads), "ceil_mode": ceil_mode}
    if kind == "avg":
        attrs["count_include_pad"] = include
    y = get_op(kind + "_pool", attrs).compute(x)
    ref = ref_pool(x, kernel, strides, pads, ceil_mode, kind, include)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_max_pool_dilated():
    x = rand(1, 9, 9, 2)
    attrs = {"kernel": [2, 2], "strides": [1, 1], "dilations": [2, 2], "pads": [0, 0, 0, 0]}
    np.testing.assert_allclose(get_op("max_pool", attrs).compute(x),
                               ref_pool(x, (2, 2), (1, 1), (0, 0, 0, 0), 0, "max", dilations=(2, 2)))


# ----------------------------------------------------------------------------------------- data movement

@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(mode):
    x = rand(1, 4, 5, 2)
    pads = [[0, 0], [1, 2], [2, 1], [0, 0]]
    y = get_op("pad", {"pads": pads, "mode": mode, "value": 0.5}).compute(x)
    ref = np.pad(x, pads, mode=mode, **({"constant_values": 0.5} if mode == "constant" else {}))
    np.testing.assert_array_equal(y, ref)


def test_pad_negative_crops():
    x = rand(1, 4, 5, 2)
    y = get_op("pad", {"pads": [[0, 0], [-1, 1], [0, -2], [0, 0]]}).compute(x)
    np.testing.assert_array_equal(y, np.pad(x[:, 1:, :3], [[0, 0], [0, 1], [0, 0], [0, 0]]))


def test_concat_transpose_reshape_flatten():
    a, b = rand(2, 3, 4, 5), rand(2, 3, 4, 2)
    np.testing.assert_array_equal(get_op("concat", {"axis": 3}).compute(a, b), np.concatenate([a, b], axis=3))
    np.testing.assert_array_equal(get_op("concat", {"axis": -1}).compute(a, b), np.concatenate([a, b], axis=-1))
    np.testing.assert_array_equal(get_op("transpose", {"perm": [0, 3, 1, 2]}).compute(a), a.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(get_op("reshape", {"shape": [-1, 60]}).compute(a), a.reshape(2, 60))
    np.testing.assert_array_equal(get_op("reshape", {"shape": [1, 12, -1]}).compute(a), a.reshape(2, 12, 5))
    np.testing.assert_array_equal(get_op("flatten", {"axis": 1}).compute(a), a.reshape(2, -1))
    np.testing.assert_array_equal(get_op("flatten", {"axis": 2}).compute(a), a.reshape(6, 20))


def test_every_documented_op_is_registered():
    documented = {"conv2d", "dense", "add", "mul", "sub", "div", "relu", "sigmoid", "hardswish", "identity", "clip",
                  "hardsigmoid", "softmax", "global_avg_pool", "reduce_mean", "max_pool", "avg_pool", "pad",
                  "concat", "transpose", "reshape", "flatten", "matmul"}
    assert documented <= set(OPS)


def test_unknown_op():
    with pytest.raises(KernelError, match="unknown op 'lstm'"):
        get_op("lstm", node="n1")


# ----------------------------------------------------------------------------------------- plans

def residual_bundle():
    """x -> conv a -> relu b -> conv c ; out = a + c ; d = out * 2 : buffer reuse must not clobber `a`."""
    t = {"w1": rand(1, 1, 4, 4), "w2": rand(3, 3, 1, 4), "two": np.full((4,), 2.0, np.float32)}
    nodes = [
        Node("conv2d", ["x", "w1"], ["a"], name="c1"),
        Node("relu", ["a"], ["b"], name="r"),
        Node("conv2d", ["b", "w2"], ["c"], name="dw", attrs={"groups": 4, "pads": [1, 1, 1, 1]}),
        Node("clip", ["c"], ["c2"], name="clip", attrs={"min": -1.0, "max": 1.0}),
        Node("add", ["a", "c2"], ["s"], name="res"),
        Node("mul", ["s", "two"], ["out"], name="scale"),
        Node("global_avg_pool", ["out"], ["g"], name="gap"),
        Node("flatten", ["g"], ["emb"], name="flat"),
    ]
    return Bundle(nodes=nodes, inputs=[ValueInfo("x", [-1, 6, 6, 4])], outputs=[ValueInfo("emb", [-1, 4], layout="NC")],
                  tensors=t, embedding="g")


def numpy_residual(b, x):
    a = ref_conv(x, b.tensors["w1"], None, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    c = ref_conv(np.maximum(a, 0), b.tensors["w2"], None, (1, 1), (1, 1, 1, 1), (1, 1), 4)
    out = (a + np.clip(c, -1, 1)) * 2
    return out.mean(axis=(1, 2))


def test_plan_reuses_buffers_without_clobbering_live_tensors():
    b = residual_bundle()
    x = rand(2, 6, 6, 4)
    plan = Plan(b, x.shape)
    y = plan.run(x)[0]
    np.testing.assert_allclose(y, numpy_residual(b, x), rtol=1e-5, atol=1e-5)
    # Liveness: fewer buffers than tensors (7 intermediates + input), yet the residual input survived.
    distinct = {id(v.base) for v in [plan.input_buffer] + [plan.outputs[0]]}
    assert plan.buffer_bytes < 8 * x.nbytes
    assert distinct
    # Running twice gives the same answer (scratch and buffers are rewritten, not accumulated).
    np.testing.assert_array_equal(plan.run(x)[0], y)
    # The returned array is a copy: the next run does not change it.
    y2 = plan.run(rand(2, 6, 6, 4))[0]
    assert not np.array_equal(y, y2)
    np.testing.assert_allclose(y, numpy_residual(b, x), rtol=1e-5, atol=1e-5)


def test_plan_warm_up_runs_one_step_per_variant_and_changes_no_result():
    """warm_up calls each kind of step once (the smallest of a repeated kind), on zeroed buffers; a run after it
    gives what a fresh plan gives."""
    b = residual_bundle()
    b.nodes.insert(2, Node("conv2d", ["b", "w1"], ["b2"], name="c2"))  # a second 1x1 conv, like c1
    b.nodes[3] = Node("conv2d", ["b2", "w2"], ["c"], name="dw", attrs={"groups": 4, "pads": [1, 1, 1, 1]})
    x = rand(1, 6, 6, 4)
    plan = Plan(b, x.shape)
    calls = []
    for i, step in enumerate(plan.steps):
        plan.steps[i] = lambda i=i, step=step: (calls.append(plan.labels[i][1]), step())
    for buf in plan._storage:
        buf.fill(np.nan)  # what a reused heap may hold: warm_up must not depend on it
    plan.warm_up()
    # c1 and c2 are 1x1 convs with the same strides and activation: one of them runs; the rest once each.
    assert len(calls) == len(plan.steps) - 1 and sorted(calls) == sorted(set(calls))
    assert ("c1" in calls) != ("c2" in calls)
    got = plan.run(x)[0]
    np.testing.assert_array_equal(got, Plan(b, x.shape).run(x)[0])


def test_plan_stops_at_embedding_and_caches_per_shape():
    from wasmvision.plan import Executor
    b = residual_bundle()
    ex = Executor(b)
    x = rand(1, 6, 6, 4)
    g = ex.run(x, ["g"])[0]
    assert g.shape == (1, 1, 1, 4)
    assert len(ex.plan(x.shape, ["g"]).steps) == 7  # the flatten node is not needed
    assert ex.plan(x.shape) is ex.plan(x.shape)
    assert ex.plan((3, 6, 6, 4)) is not ex.plan(x.shape)
    np.testing.assert_allclose(ex.run(np.concatenate([x, x, x]))[0], np.repeat(g.reshape(1, 4), 3, 0), rtol=1e-5)


def test_plan_errors():
    b = residual_bundle()
    with pytest.raises(PlanError, match="does not match"):
        Plan(b, (1, 7, 6, 4))
    b.nodes[1].op = "lstm"
    with pytest.raises(PlanError, match="unknown op"):
        Plan(b, (1, 6, 6, 4))
    b = residual_bundle()
    b.nodes[4].inputs = ["a", "nowhere"]
    with pytest.raises(PlanError, match="nowhere"):
        Plan(b, (1, 6, 6, 4))
    b = residual_bundle()
    b.nodes[0], b.nodes[1] = b.nodes[1], b.nodes[0]
    with pytest.raises(PlanError, match="before"):
        Plan(b, (1, 6, 6, 4))


@pytest.mark.parametrize("contraction", ["einsum", "matmul"])
def test_both_contraction_paths(contraction, monkeypatch):
    import wasmvision.kernels.base as base
    import wasmvision.kernels.op_conv as op_conv
    monkeypatch.setattr(base, "CONTRACTION", contraction)
    monkeypatch.setattr(op_conv, "CONTRACTION", contraction)
    x, w = rand(1, 5, 5, 8), rand(1, 1, 8, 3)
    np.testing.assert_allclose(get_op("conv2d").compute(x, w), ref_conv(x, w, None, (1, 1), (0,) * 4, (1, 1), 1),
                               rtol=1e-5, atol=1e-5)
    xs, ws = rand(1, 6, 6, 3), rand(3, 3, 3, 4)
    np.testing.assert_allclose(get_op("conv2d", {"strides": [2, 2], "pads": [1, 1, 1, 1]}).compute(xs, ws),
                               ref_conv(xs, ws, None, (2, 2), (1,) * 4, (1, 1), 1), rtol=1e-5, atol=1e-5)


def test_branch_free_relu_and_relu6_special_values():
    x = np.array([-np.inf, -7.5, -1e-45, -0.0, 0.0, 1e-45, 0.3, 5.999, 6.0, 6.5, np.inf, np.nan], np.float32)
    relu = get_op("relu").compute(x)
    np.testing.assert_array_equal(relu[:-1], np.maximum(x, 0)[:-1])
    assert not np.signbit(relu[:-1]).any()  # -0.0 and negative denormals become +0.0
    assert np.isnan(relu[-1])
    relu6 = get_op("clip", {"min": 0.0, "max": 6.0}).compute(x)
    np.testing.assert_array_equal(relu6[:-1], np.clip(x, 0, 6)[:-1])
    other = get_op("clip", {"min": -1.0, "max": 2.0}).compute(x)
    np.testing.assert_array_equal(other, np.clip(x, -1, 2))
    big = rand(3, 17, 19, 8) * 8  # random signs, every element checked
    np.testing.assert_array_equal(get_op("clip", {"min": 0.0, "max": 6.0}).compute(big), np.clip(big, 0, 6))


def test_plan_cache_is_bounded():
    from wasmvision.plan import Executor
    ex = Executor(residual_bundle(), max_plans=2)
    first = ex.plan((1, 6, 6, 4))
    ex.plan((2, 6, 6, 4))
    assert ex.plan((1, 6, 6, 4)) is first  # still cached, now most recent
    ex.plan((3, 6, 6, 4))  # evicts batch 2
    assert len(ex._plans) == 2 and ex.plan((1, 6, 6, 4)) is first
