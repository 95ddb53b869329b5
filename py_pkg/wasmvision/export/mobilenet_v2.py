"""torchvision's MobileNetV2, from its state dict to an ONNX model, without torch or torchvision.

The architecture follows ``torchvision.models.mobilenetv2`` parameter for parameter, so a state dict
saved from torchvision (any width multiplier) maps onto it by name:

    features.0          Conv 3x3 s2 + BN + ReLU6                      (features.0.0 conv, features.0.1 BN)
    features.1          InvertedResidual, expand_ratio 1: dw 3x3 + BN + ReLU6 (conv.0.*), pw conv.1 + BN conv.2
    features.2 .. 17    InvertedResidual, expand_ratio 6: pw conv.0.* + ReLU6, dw conv.1.* + ReLU6,
                        pw-linear conv.2 + BN conv.3; residual add when stride 1 and in == out channels
    features.18         Conv 1x1 → 1280 + BN + ReLU6
    classifier.1        Linear (classifier.0 is Dropout, a no-op at inference)

Channel counts are read from the weights; strides come from torchvision's settings table, which the
width multiplier does not change. BatchNorm is folded into the convolution before it, ReLU6 is
``Clip(x, 0, 6)`` with its bounds as inputs (opset ≥ 11), the head is GlobalAveragePool → Flatten →
Gemm. Input "input" is NCHW float32 ``[N, 3, H, W]`` with a dynamic batch, output "logits" ``[N, classes]``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .fold import fold_batchnorm

# torchvision's inverted_residual_setting: expand ratio t, output channels c, repeats n, first stride s.
MOBILENET_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
BN_EPS = 1e-5  # torch.nn.BatchNorm2d default, which torchvision's MobileNetV2 uses


class ExportError(ValueError):
    """The state dict does not have the shape of the architecture being exported."""


def _block_strides() -> list[int]:
    strides = []
    for _t, _c, n, s in MOBILENET_V2_SETTINGS:
        strides += [s] + [1] * (n - 1)
    return strides


class _GraphWriter:
    """Accumulates nodes and initializers; one method per ONNX operator used."""

    def __init__(self, state_dict: Mapping[str, np.ndarray], eps: float, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.sd, self.eps = state_dict, eps
        self.nodes: list = []
        self.initializers: list = []
        self.used: set[str] = set()

    def param(self, key: str) -> np.ndarray:
        try:
            value = self.sd[key]
        except KeyError:
            raise ExportError(f"state dict has no {key!r}: not a torchvision MobileNetV2 checkpoint") from None
        self.used.add(key)
        return np.asarray(value)

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int, depthwise: bool) -> str:
        """Conv2d(bias=False) followed by BatchNorm2d, folded into one Conv."""
        weight = self.param(f"{conv}.weight")  # (O, I/groups, KH, KW)
        w, b = fold_batchnorm(weight, None, self.param(f"{bn}.weight"), self.param(f"{bn}.bias"),
                              self.param(f"{bn}.running_mean"), self.param(f"{bn}.running_var"), self.eps)
        self.used.add(f"{bn}.num_batches_tracked")
        kh, kw = w.shape[2:]
        groups = w.shape[0] if depthwise else 1
        if depthwise and w.shape[1] != 1:
            raise ExportError(f"{conv}: expected a depthwise weight (O, 1, k, k), got {tuple(w.shape)}")
        out = f"{conv}.out"
        self.nodes.append(self.helper.make_node(
            "Conv", [x, self.const(f"{conv}.weight", w), self.const(f"{conv}.bias", b)], [out], name=conv,
            kernel_shape=[kh, kw], strides=[stride, stride], pads=[(kh - 1) // 2, (kw - 1) // 2] * 2,
            dilations=[1, 1], group=groups))
        return out

    def relu6(self, x: str, name: str) -> str:
        out = f"{name}.relu6"
        self.nodes.append(self.helper.make_node("Clip", [x, "relu6.min", "relu6.max"], [out], name=out))
        return out

    def add(self, a: str, b: str, name: str) -> str:
        out = f"{name}.add"
        self.nodes.append(self.helper.make_node("Add", [a, b], [out], name=out))
        return out


def _conv_bn_relu6(g: _GraphWriter, x: str, prefix: str, *, stride: int = 1, depthwise: bool = False) -> str:
    """torchvision's Conv2dNormActivation: ``prefix.0`` conv, ``prefix.1`` BN, then ReLU6."""
    return g.relu6(g.conv_bn(x, f"{prefix}.0", f"{prefix}.1", stride=stride, depthwise=depthwise), prefix)


def _inverted_residual(g: _GraphWriter, x: str, index: int, stride: int) -> str:
    p = f"features.{index}.conv"
    expanded = f"{p}.3.weight" in g.sd  # expand_ratio != 1 adds a pointwise stage in front
    h = _conv_bn_relu6(g, x, f"{p}.0") if expanded else x
    k = 1 if expanded else 0
    h = _conv_bn_relu6(g, h, f"{p}.{k}", stride=stride, depthwise=True)
    h = g.conv_bn(h, f"{p}.{k + 1}", f"{p}.{k + 2}", stride=1, depthwise=False)  # linear bottleneck
    in_ch = g.sd[f"{p}.0.0.weight"].shape[1] if expanded else g.sd[f"{p}.0.0.weight"].shape[0]
    out_ch = g.sd[f"{p}.{k + 1}.weight"].shape[0]
    if stride == 1 and in_ch == out_ch:
        h = g.add(x, h, f"features.{index}")
    return h


def export_mobilenet_v2(state_dict: Mapping[str, np.ndarray], *, input_size: int = 224, opset: int = 13,
                        eps: float = BN_EPS, model_name: str = "mobilenet_v2", doc: str = "",
                        check: bool = True, use_onnx: bool = True):
    """Return an ``onnx.ModelProto`` computing torchvision's MobileNetV2 with these weights.

    ``use_onnx=False`` writes the same model without the onnx package (``onnx_lite``, numpy only): the
    result then only has ``SerializeToString()``, giving the same bytes, and ``check`` is not run."""
    if use_onnx:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    else:
        from . import onnx_lite
        onnx = None
        TensorProto, helper, numpy_helper = onnx_lite.TensorProto, onnx_lite, onnx_lite

    if opset < 11:
        raise ExportError("Clip takes its bounds as inputs only from opset 11 on")
    feature_ids = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("features.")})
    strides = _block_strides()
    if feature_ids != list(range(len(strides) + 2)):
        raise ExportError(f"expected features.0 .. features.{len(strides) + 1}, found {feature_ids}: "
                          "not a torchvision MobileNetV2 state dict")

    g = _GraphWriter(state_dict, eps, helper, numpy_helper)
    g.const("relu6.min", np.array(0.0, np.float32))
    g.const("relu6.max", np.array(6.0, np.float32))

    h = _conv_bn_relu6(g, "input", "features.0", stride=2)  # (N, 32·α, H/2, W/2)
    for i, stride in enumerate(strides, start=1):
        h = _inverted_residual(g, h, i, stride)
    h = _conv_bn_relu6(g, h, f"features.{feature_ids[-1]}")  # (N, 1280, H/32, W/32)

    g.nodes.append(helper.make_node("GlobalAveragePool", [h], ["pooled"], name="avgpool"))  # (N, C, 1, 1)
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["embedding"], name="flatten", axis=1))  # (N, C)
    fc_w, fc_b = g.param("classifier.1.weight"), g.param("classifier.1.bias")  # (classes, C), (classes,)
    g.nodes.append(helper.make_node(
        "Gemm", ["embedding", g.const("classifier.1.weight", fc_w.astype(np.float32)),
                 g.const("classifier.1.bias", fc_b.astype(np.float32))],
        ["logits"], name="classifier.1", alpha=1.0, beta=1.0, transB=1))

    unused = sorted(set(state_dict) - g.used)
    if unused:
        raise ExportError(f"state dict has parameters the MobileNetV2 graph does not use: {unused[:5]}")

    graph = helper.make_graph(
        g.nodes, model_name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, input_size, input_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", int(fc_w.shape[0])])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="wasmvision.export", producer_version="1", doc_string=doc)
    if onnx is None:
        return model  # onnx_lite writes ir_version 8 already
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime releases too
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model
