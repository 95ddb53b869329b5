"""Build small ONNX models with onnx.helper and deterministic random weights, for importer tests.

Each family builder mirrors what real exporters write for that architecture (Conv + BatchNormalization
+ Relu/Clip, depthwise convs as group=C, HardSwish, squeeze-excitation, asymmetric pads, tf2onnx's
NHWC input + Transpose, Gemm or MatMul+Add heads) with a dynamic batch dimension "N".
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


from buildtools.onnx_graph import GraphBuilder, make_divisible  # noqa: E402,F401 (re-exported for tests)


def _batch_out(classes):
    return ["N", classes]


# ---------------------------------------------------------------------------------------------- families

def mobilenet_v1(width=1.0, size=224, classes=1000, opset=13, act="relu", head="gemm", seed=1, depth="short"):
    g = GraphBuilder(seed, opset, ("N", 3, size, size))
    c = make_divisible(32 * width)
    x = g.conv_bn_act(g.input_name, 3, c, 3, 2, act=act)
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (1024, 2), (1024, 1)]
    if depth == "short":
        cfg = [(64, 1), (128, 2), (256, 2), (512, 2), (1024, 2)]
    for cout, s in cfg:
        cout = make_divisible(cout * width)
        x = g.conv_bn_act(x, c, c, 3, s, group=c, act=act)
        x = g.conv_bn_act(x, c, cout, 1, act=act)
        c = cout
    x = g.flatten(g.gap(x))
    g.nodes.append(helper.make_node("Dropout", [x], ["dropped"], name="dropout"))
    return g.model(g.dense("dropped", c, classes, head), _batch_out(classes), "mobilenet_v1")


def mobilenet_v2(width=1.0, size=224, classes=1000, opset=13, clip_style="auto", flatten="flatten", seed=2,
                 depth="short"):
    g = GraphBuilder(seed, opset, ("N", 3, size, size))

    def act(y):
        return g.relu6(y, clip_style)

    def cba(y, cin, cout, k, s=1, group=1, use_act=True):
        y = g.bn(g.conv(y, cin, cout, k, s, group, bias=False), cout)
        return act(y) if use_act else y

    c = make_divisible(32 * width)
    x = cba(g.input_name, 3, c, 3, 2)
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    if depth == "short":
        cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 1, 2), (6, 96, 2, 1)]
    for t, cout, n, s in cfg:
        cout = make_divisible(cout * width)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            y = x if t == 1 else cba(x, c, hidden, 1)
            y = cba(y, hidden, hidden, 3, stride, group=hidden)
            y = cba(y, hidden, cout, 1, use_act=False)
            x = g.node("Add", [x, y]) if stride == 1 and c == cout else y
            c = cout
    last = make_divisible(1280 * max(1.0, width))
    x = cba(x, c, last, 1)
    x = g.flatten(g.gap(x), flatten)
    return g.model(g.dense(x, last, classes), _batch_out(classes), "mobilenet_v2")


def mobilenet_v3(variant="small", width=1.0, size=224, classes=1000, opset=14, se_style="gap", seed=3,
                 depth="short"):
    g = GraphBuilder(seed, opset, ("N", 3, size, size))
    # (kernel, expanded, out, use_se, activation, stride) as in torchvision
    if variant == "small":
        cfg = [(3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
               (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 120, 48, True, "hswish", 1),
               (5, 288, 96, True, "hswish", 2), (5, 576, 96, True, "hswish", 1)]
        last_conv, hidden = 576, 1024
    else:
        cfg = [(3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
               (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (3, 240, 80, False, "hswish", 2),
               (3, 200, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1),
               (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1)]
        last_conv, hidden = 960, 1280
    if depth == "short":
        cfg = cfg[:2] + cfg[3:5] + cfg[-2:]
    c = make_divisible(16 * width)
    x = g.conv_bn_act(g.input_name, 3, c, 3, 2, act="hswish")
    for k, exp, out, use_se, a, s in cfg:
        exp, out = make_divisible(exp * width), make_divisible(out * width)
        y = x if exp == c else g.conv_bn_act(x, c, exp, 1, act=a)
        y = g.conv_bn_act(y, exp, exp, k, s, group=exp, act=a)
        if use_se:
            y = g.se(y, exp, make_divisible(exp // 4), se_style)
        y = g.conv_bn_act(y, exp, out, 1, act=None)
        x = g.node("Add", [x, y]) if s == 1 and c == out else y
        c = out
    lc = make_divisible(last_conv * width)
    x = g.conv_bn_act(x, c, lc, 1, act="hswish")
    x = g.flatten(g.gap(x, se_style))
    x = g.hardswish(g.dense(x, lc, hidden))
    g.nodes.append(helper.make_node("Dropout", [x], ["dropped"], name="dropout"))
    return g.model(g.dense("dropped", hidden, classes), _batch_out(classes), f"mobilenet_v3_{variant}")


def efficientnet_lite(size=224, width=1.0, classes=1000, opset=13, pad_style="pad", seed=4):
    """EfficientNet-Lite: ReLU6, no SE, 5x5 depthwise, TF "SAME" padding on strided convs
    (asymmetric: one more pixel at the end), written as a Pad node or as auto_pad=SAME_UPPER."""
    g = GraphBuilder(seed, opset, ("N", 3, size, size))

    def same_conv(y, cin, cout, k, s, group=1):
        if s == 1:
            return g.conv(y, cin, cout, k, s, group, bias=False)
        if pad_style == "auto_pad":
            return g.conv(y, cin, cout, k, s, group, bias=False, auto_pad="SAME_UPPER")
        h = hw[0]
        out = math.ceil(h / s)
        total = max(0, (out - 1) * s + k - h)
        b, e = total // 2, total - total // 2
        pads = np.array([0, 0, b, b, 0, 0, e, e], np.int64)
        if opset >= 11:
            p = g.node("Pad", [y, g.init("pads", pads), g.init("pad_value", np.array(0.0, np.float32))],
                       mode="constant")
        else:
            p = g.node("Pad", [y], pads=pads.tolist(), mode="constant", value=0.0)
        return g.conv(p, cin, cout, k, s, group, bias=False, pad=0)

    def cba(y, cin, cout, k, s=1, group=1, act=True):
        y = g.bn(same_conv(y, cin, cout, k, s, group), cout)
        if s > 1:
            hw[0] = math.ceil(hw[0] / s)
        return g.relu6(y) if act else y

    hw = [size]
    c = 32
    x = cba(g.input_name, 3, c, 3, 2)
    # (expand, kernel, stride, out, repeats) — EfficientNet-B0 stages, shortened
    cfg = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 1), (6, 3, 2, 80, 1), (6, 5, 1, 112, 1),
           (6, 5, 2, 192, 1)]
    for t, k, s, cout, n in cfg:
        cout = make_divisible(cout * width)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            y = x if t == 1 else cba(x, c, hidden, 1)
            y = cba(y, hidden, hidden, k, stride, group=hidden)
            y = cba(y, hidden, cout, 1, act=False)
            x = g.node("Add", [x, y]) if stride == 1 and c == cout else y
            c = cout
    x = cba(x, c, 1280, 1)
    x = g.flatten(g.gap(x))
    return g.model(g.dense(x, 1280, classes), _batch_out(classes), "efficientnet_lite")


def resnet_small(size=224, classes=1000, opset=13, width=32, seed=5):
    g = GraphBuilder(seed, opset, ("N", 3, size, size))
    x = g.conv_bn_act(g.input_name, 3, width, 7, 2)
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = width
    for cout, s in [(width, 1), (width * 2, 2), (width * 4, 2), (width * 8, 2)]:
        y = g.conv_bn_act(x, c, cout, 3, s)
        y = g.conv_bn_act(y, cout, cout, 3, act=None)
        sc = x if s == 1 and c == cout else g.conv_bn_act(x, c, cout, 1, s, act=None)
        x = g.relu(g.node("Add", [y, sc]))
        c = cout
    x = g.flatten(g.gap(x))
    return g.model(g.dense(x, c, classes), _batch_out(classes), "resnet_small")


def tf_channels_last(size=224, classes=1001, opset=13, seed=6):
    """tf2onnx style: NHWC input, a Transpose to NCHW, pooling with ReduceMean, Squeeze, MatMul+Add,
    Softmax at the output."""
    g = GraphBuilder(seed, opset, ("N", size, size, 3), input_name="input_1:0")
    x = g.node("Transpose", [g.input_name], perm=[0, 3, 1, 2])
    x = g.conv_bn_act(x, 3, 16, 3, 2, act="relu6", auto_pad="SAME_UPPER")
    x = g.conv_bn_act(x, 16, 16, 3, 1, group=16, act="relu6")
    x = g.conv_bn_act(x, 16, 32, 1, act="relu6")
    x = g.conv_bn_act(x, 32, 32, 3, 2, group=32, act="relu6", auto_pad="SAME_UPPER")
    x = g.conv_bn_act(x, 32, 64, 1, act="relu6")
    x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], auto_pad="VALID")
    x = g.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    x = g.dense(x, 64, classes, "matmul")
    return g.model(g.node("Softmax", [x], axis=-1 if opset >= 13 else 1), _batch_out(classes), "tf_mobilenet")


def tf_transposes(size=64, classes=10, opset=13, seed=8):
    """tf2onnx without its transpose optimizer: every Conv wrapped in NHWC<->NCHW Transposes, the
    elementwise ops, Pad, ReduceMean (axes 1, 2) and a Keras Flatten (H*W > 1) in NHWC order."""
    g = GraphBuilder(seed, opset, ("N", size, size, 3), input_name="image")

    def conv_nhwc(y, cin, cout, k, s=1, group=1, pad=None):
        y = g.node("Transpose", [y], perm=[0, 3, 1, 2])
        y = g.conv(y, cin, cout, k, s, group, pad=pad)
        return g.node("Transpose", [y], perm=[0, 2, 3, 1])

    x = conv_nhwc(g.input_name, 3, 16, 3, 2)
    x = g.node("Mul", [x, g.init("scale", (0.5 + g.rng.random(16)).astype(np.float32))])  # (C,) broadcasts on NHWC
    x = g.node("Add", [x, g.init("shift", (g.rng.standard_normal(16) * 0.1).astype(np.float32))])
    x = g.relu(x)
    x = conv_nhwc(x, 16, 16, 3, 1, group=16)
    x = g.relu6(x)
    x = g.node("Pad", [x, g.init("pads", np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64))], mode="constant")
    x = conv_nhwc(x, 16, 32, 3, 2, pad=0)
    x = g.relu(x)
    pooled = g.node("ReduceMean", [x], axes=[1, 2], keepdims=0)
    a = g.dense(pooled, 32, classes, "matmul")
    flat = g.node("Flatten", [x], axis=1)  # Keras Flatten: NHWC element order
    b = g.dense(flat, 32 * (size // 4) ** 2, classes, "matmul")  # size: a multiple of 4
    return g.model(g.node("Softmax", [g.node("Add", [a, b])], axis=-1), _batch_out(classes), "tf_transposes")


def concat_net(size=64, classes=10, opset=13, seed=7):
    """Inception-ish branches joined by Concat, an AveragePool, a flatten of a spatial tensor (H*W>1)."""
    g = GraphBuilder(seed, opset, ("N", 3, size, size))
    x = g.conv_bn_act(g.input_name, 3, 16, 3, 2)
    a = g.conv_bn_act(x, 16, 8, 1)
    b = g.conv_bn_act(x, 16, 8, 3)
    p = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    x = g.node("Concat", [a, b, p], axis=1)
    x = g.node("AveragePool", [x], kernel_shape=[4, 4], strides=[4, 4], ceil_mode=1)
    x = g.node("Flatten", [x], axis=1)  # (N, 32*4*4): element order must be NCHW
    h = size // 2
    k = 32 * math.ceil(h / 4) ** 2
    return g.model(g.dense(x, k, classes), _batch_out(classes), "concat_net")


FAMILIES = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": lambda **kw: mobilenet_v3("small", **kw),
    "mobilenet_v3_large": lambda **kw: mobilenet_v3("large", **kw),
    "efficientnet_lite": efficientnet_lite,
    "resnet_small": resnet_small,
    "tf_channels_last": tf_channels_last,
    "tf_transposes": tf_transposes,
    "concat_net": concat_net,
}


# ---------------------------------------------------------------------------------------------- single ops

def single_op(op: str, inputs=(), attrs=None, in_shape=("N", 4, 9, 9), opset=13, n_inputs_const=None,
              pre=None, post=None, seed=10, in_name="x"):
    """input -> [pre nodes] -> op(input, *inputs) -> [post nodes] -> output.

    ``inputs`` entries: numpy arrays (initializers), ("const", array) for a Constant node, "" for an
    omitted optional input, or a callable g, x -> name for a computed second operand."""
    g = GraphBuilder(seed, opset, in_shape, input_name=in_name)
    x = g.input_name
    if pre is not None:
        x = pre(g, x)
    names = [x]
    for item in inputs:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, tuple) and item[0] == "const":
            names.append(g.const_node(item[1]))
        elif callable(item):
            names.append(item(g, x))
        else:
            names.append(g.init("in", np.asarray(item)))
    y = g.node(op, names, **(attrs or {}))
    if post is not None:
        y = post(g, y)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="output_identity"))
    graph = helper.make_graph(g.nodes, f"single_{op}",
                              [helper.make_tensor_value_info(g.input_name, TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8 if opset <= 18 else 9)
    # Shape inference fills in the output shape the checker insists on.
    inferred = onnx.shape_inference.infer_shapes(model)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name == "y" and vi.type.tensor_type.HasField("shape"):
            model.graph.output[0].CopyFrom(vi)
            onnx.checker.check_model(model)
            break
    return model  # (a data-dependent output shape cannot be checked; onnxruntime still validates)


# ---------------------------------------------------------------------------------------------- parity

def run_onnxruntime(model, x_nhwc: np.ndarray, source_layout: str) -> np.ndarray:
    import onnxruntime as ort

    raw = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    sess = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    feed = x_nhwc if source_layout == "NHWC" else x_nhwc.transpose(0, 3, 1, 2)
    return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(feed)})[0]


def parity(model, batch: int = 1, seed: int = 0, runner: str = "executor", **import_kw):
    """Import ``model``, run it and onnxruntime on the same random input.

    Returns (relative max |Δ| = max|Δ| / max(1, max|ref|), whether argmax agrees, the bundle).
    The bundle goes through its byte format first, so serialisation is part of what is tested."""
    from wasmvision import bundle as _bundle
    from wasmvision.importers.onnx_import import import_onnx

    raw = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    b = _bundle.from_bytes(_bundle.to_bytes(import_onnx(raw, **import_kw)))
    _, h, w, c = b.inputs[0].shape
    x = np.random.default_rng(seed).standard_normal((batch, h, w, c)).astype(np.float32)
    ref = run_onnxruntime(raw, x, b.metadata["source_layout"])
    if runner == "classifier":
        import wasmvision
        got = wasmvision.load(b).run(x)
    else:
        from wasmvision.plan import Executor
        got = Executor(b).run(x)[0]
    if ref.ndim == 4 and b.metadata["source_layout"] == "NCHW":
        ref = ref.transpose(0, 2, 3, 1)  # the bundle's 4-D outputs are NHWC
    assert got.shape == ref.shape, (got.shape, ref.shape)
    rel = float(np.abs(got.astype(np.float64) - ref).max() / max(1.0, float(np.abs(ref).max())))
    same_argmax = bool(np.array_equal(got.reshape(batch, -1).argmax(-1), ref.reshape(batch, -1).argmax(-1)))
    return rel, same_argmax, b
