"""GraphBuilder: small ONNX graphs written the way real exporters write them (Conv + BatchNormalization + Relu/Clip,
depthwise convs as group=C, HardSwish, squeeze-excitation, asymmetric pads, NHWC input + Transpose, Gemm or
MatMul+Add heads), with deterministic random weights and a dynamic batch dimension "N". The tests' model families
(tests/onnx_builders.py) and the benchmark's zoo (benchmarks/bench/zoo.py) are built with it.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class GraphBuilder:
    """Accumulates nodes and initializers; ``model()`` wraps them in a checked ModelProto."""

    def __init__(self, seed: int = 0, opset: int = 13, input_shape=("N", 3, 224, 224), input_name: str = "input"):
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.input_name = input_name
        self.input_shape = list(input_shape)
        self._k = 0

    # ------------------------------------------------------------------ plumbing
    def name(self, hint: str) -> str:
        self._k += 1
        return f"{hint}_{self._k}"

    def init(self, hint: str, array) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs, n_out: int = 1, name: str | None = None, **attrs):
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name or self.name(op), **attrs))
        return outs[0] if n_out == 1 else outs

    def const_node(self, array) -> str:
        """A Constant node (rather than an initializer), as exporters emit for shapes and bounds."""
        out = self.name("const")
        self.nodes.append(helper.make_node("Constant", [], [out], value=numpy_helper.from_array(np.asarray(array))))
        return out

    def model(self, output: str, out_shape, name: str = "test", output_name: str = "logits") -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [output], [output_name], name="output_identity"))
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, list(out_shape))],
            initializer=self.inits)
        ir = 8 if self.opset <= 18 else 9
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)], ir_version=ir,
                                  producer_name="wasmvision-tests")
        onnx.checker.check_model(model)
        return model

    # ------------------------------------------------------------------ layers
    def conv(self, x, cin, cout, k, stride=1, group=1, pad=None, auto_pad=None, bias=True, dilation=1):
        fan_in = cin // group * k * k
        w = (self.rng.standard_normal((cout, cin // group, k, k)) * math.sqrt(2.0 / fan_in)).astype(np.float32)
        inputs = [x, self.init("w", w)]
        if bias:
            inputs.append(self.init("b", (self.rng.standard_normal(cout) * 0.1).astype(np.float32)))
        attrs = {"kernel_shape": [k, k], "strides": [stride, stride], "group": group}
        if dilation != 1:
            attrs["dilations"] = [dilation, dilation]
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        else:
            p = (k - 1) // 2 * dilation if pad is None else pad
            attrs["pads"] = list(p) if isinstance(p, (list, tuple)) else [p, p, p, p]
        return self.node("Conv", inputs, **attrs)

    def bn(self, x, c):
        r = self.rng
        scale = (0.5 + r.random(c)).astype(np.float32)
        bias = (r.standard_normal(c) * 0.1).astype(np.float32)
        mean = (r.standard_normal(c) * 0.1).astype(np.float32)
        var = (0.5 + r.random(c)).astype(np.float32)
        return self.node("BatchNormalization", [x, self.init("bn_s", scale), self.init("bn_b", bias),
                                                self.init("bn_m", mean), self.init("bn_v", var)], epsilon=1e-3)

    def relu(self, x):
        return self.node("Relu", [x])

    def relu6(self, x, style: str = "auto"):
        """Clip(0, 6): bounds as attributes before opset 11, as (Constant) inputs from 11."""
        if style == "attrs" or (style == "auto" and self.opset < 11):
            return self.node("Clip", [x], min=0.0, max=6.0)
        lo = self.const_node(np.array(0.0, np.float32))
        hi = self.init("six", np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi])

    def hardswish(self, x):
        if self.opset >= 14:
            return self.node("HardSwish", [x])
        # What torch exports before opset 14: x * HardSigmoid(x, alpha=1/6, beta=0.5).
        return self.node("Mul", [x, self.node("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)])

    def act(self, x, kind):
        if kind == "relu":
            return self.relu(x)
        if kind == "relu6":
            return self.relu6(x)
        if kind == "hswish":
            return self.hardswish(x)
        raise ValueError(kind)

    def conv_bn_act(self, x, cin, cout, k, stride=1, group=1, act="relu", **kw):
        y = self.bn(self.conv(x, cin, cout, k, stride, group, bias=False, **kw), cout)
        return self.act(y, act) if act else y

    def gap(self, x, style="gap"):
        if style == "gap":
            return self.node("GlobalAveragePool", [x])
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.init("axes", np.array([2, 3], np.int64))], keepdims=1)
        return self.node("ReduceMean", [x], axes=[2, 3], keepdims=1)

    def se(self, x, c, squeeze, style="gap"):
        s = self.gap(x, style)
        s = self.relu(self.conv(s, c, squeeze, 1))
        s = self.node("HardSigmoid", [self.conv(s, squeeze, c, 1)], alpha=1.0 / 6, beta=0.5)
        return self.node("Mul", [x, s])

    def flatten(self, x, style="flatten"):
        if style == "flatten":
            return self.node("Flatten", [x], axis=1)
        if style == "reshape":
            return self.node("Reshape", [x, self.const_node(np.array([0, -1], np.int64))])
        if style == "squeeze":
            if self.opset >= 13:
                return self.node("Squeeze", [x, self.init("axes", np.array([2, 3], np.int64))])
            return self.node("Squeeze", [x], axes=[2, 3])
        raise ValueError(style)

    def dense(self, x, k, m, head="gemm"):
        w = (self.rng.standard_normal((m, k)) / math.sqrt(k)).astype(np.float32)
        b = (self.rng.standard_normal(m) * 0.1).astype(np.float32)
        if head == "gemm":
            return self.node("Gemm", [x, self.init("fc_w", w), self.init("fc_b", b)], transB=1)
        if head == "gemm_notrans":
            return self.node("Gemm", [x, self.init("fc_w", w.T.copy()), self.init("fc_b", b)], alpha=1.0, beta=1.0)
        if head == "matmul":
            return self.node("Add", [self.node("MatMul", [x, self.init("fc_w", w.T.copy())]), self.init("fc_b", b)])
        raise ValueError(head)
