"""A MobileNetV2-shaped ONNX model with random weights, for developing the benchmark before the build writes the
real one (build/models/mobilenet_v2.onnx). Same graph form as the build's export: BatchNorm folded into Conv bias,
Clip(min, max as inputs, opset 13) for ReLU6, NCHW input "input" [1, 3, 224, 224], output "logits"."""
import sys

import numpy as np

# (expansion t, output channels c, repeats n, first stride s) — torchvision's inverted residual settings
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def build(path, seed=0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr, prefix):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), n))
        return n

    lo, hi = const(0.0, "clip_min"), const(6.0, "clip_max")

    def conv(x, cin, cout, k, s, groups, relu6):
        fan_in = cin // groups * k * k
        w = const(rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in), "w")
        b = const(rng.standard_normal(cout) * 0.01, "b")
        y = name("conv")
        nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], strides=[s, s],
                                      pads=[k // 2] * 4, group=groups))
        if relu6:
            z = name("relu6")
            nodes.append(helper.make_node("Clip", [y, lo, hi], [z]))
            return z
        return y

    x = conv("input", 3, 32, 3, 2, 1, True)
    cin = 32
    for t, c, n, s in SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            hid = cin * t
            h = x if t == 1 else conv(x, cin, hid, 1, 1, 1, True)
            h = conv(h, hid, hid, 3, stride, hid, True)
            h = conv(h, hid, c, 1, 1, 1, False)
            if stride == 1 and cin == c:
                y = name("add")
                nodes.append(helper.make_node("Add", [x, h], [y]))
                h = y
            x, cin = h, c
    x = conv(x, cin, 1280, 1, 1, 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1))
    W = const(rng.standard_normal((1000, 1280)) * 0.03, "fc_w")
    B = const(np.zeros(1000), "fc_b")
    nodes.append(helper.make_node("Gemm", ["flat", W, B], ["logits"], transB=1))
    graph = helper.make_graph(nodes, "mobilenet_v2_random",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "mobilenet_v2_random.onnx")
