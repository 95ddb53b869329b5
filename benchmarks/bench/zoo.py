"""The extra families at 224x224 with seeded random weights (speed only; the real MobileNetV2 comes from
the build): MobileNetV3-Large, MobileNetV3-Small (torchvision's block tables) and an EfficientNet-Lite0-shaped
network (EfficientNet-B0's stages, ReLU6, no SE, TF "SAME" padding as a Pad node). Written with the test suite's
ONNX GraphBuilder, converted with wasmvision's own ONNX importer; onnxruntime-web runs the same .onnx file."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import ROOT, log

FAMILIES = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_lite0")

# (kernel, expanded, out, squeeze-excitation, activation, stride), torchvision's mobilenetv3.py
V3_LARGE = [(3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
            (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
            (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
            (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
            (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1)]
V3_SMALL = [(3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
            (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
            (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
            (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1)]
# (expand, kernel, stride, out, repeats): EfficientNet-B0's stages, which Lite0 keeps
LITE0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
         (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


def _builders():
    from buildtools import onnx_graph
    return onnx_graph


def mobilenet_v3(cfg, last_conv, hidden, name, size=224, classes=1000, seed=3):
    ob = _builders()
    g = ob.GraphBuilder(seed, 14, ("N", 3, size, size))
    c = 16
    x = g.conv_bn_act(g.input_name, 3, c, 3, 2, act="hswish")
    for k, exp, out, use_se, act, s in cfg:
        y = x if exp == c else g.conv_bn_act(x, c, exp, 1, act=act)
        y = g.conv_bn_act(y, exp, exp, k, s, group=exp, act=act)
        if use_se:
            y = g.se(y, exp, ob.make_divisible(exp // 4))
        y = g.conv_bn_act(y, exp, out, 1, act=None)
        x = g.node("Add", [x, y]) if s == 1 and c == out else y
        c = out
    x = g.conv_bn_act(x, c, last_conv, 1, act="hswish")
    x = g.hardswish(g.dense(g.flatten(g.gap(x)), last_conv, hidden))
    return g.model(g.dense(x, hidden, classes), ["N", classes], name)


def efficientnet_lite0(size=224, classes=1000, seed=4):
    ob = _builders()
    g = ob.GraphBuilder(seed, 13, ("N", 3, size, size))
    hw = [size]

    def same_conv(y, cin, cout, k, s, group=1):  # TF "SAME": the extra pixel of a strided conv goes at the end
        if s == 1:
            return g.conv(y, cin, cout, k, s, group, bias=False)
        total = max(0, (math.ceil(hw[0] / s) - 1) * s + k - hw[0])
        b, e = total // 2, total - total // 2
        p = g.node("Pad", [y, g.init("pads", np.array([0, 0, b, b, 0, 0, e, e], np.int64)),
                           g.init("pad_value", np.array(0.0, np.float32))], mode="constant")
        return g.conv(p, cin, cout, k, s, group, bias=False, pad=0)

    def cba(y, cin, cout, k, s=1, group=1, act=True):
        y = g.bn(same_conv(y, cin, cout, k, s, group), cout)
        hw[0] = math.ceil(hw[0] / s)
        return g.relu6(y) if act else y

    c = 32
    x = cba(g.input_name, 3, c, 3, 2)
    for t, k, s, cout, n in LITE0:
        for i in range(n):
            stride = s if i == 0 else 1
            y = x if t == 1 else cba(x, c, c * t, 1)
            y = cba(y, c * t, c * t, k, stride, group=c * t)
            y = cba(y, c * t, cout, 1, act=False)
            x = g.node("Add", [x, y]) if stride == 1 and c == cout else y
            c = cout
    x = cba(x, c, 1280, 1)
    return g.model(g.dense(g.flatten(g.gap(x)), 1280, classes), ["N", classes], "efficientnet_lite0")


def build_onnx(family: str):
    if family == "mobilenet_v3_large":
        return mobilenet_v3(V3_LARGE, 960, 1280, family)
    if family == "mobilenet_v3_small":
        return mobilenet_v3(V3_SMALL, 576, 1024, family)
    if family == "efficientnet_lite0":
        return efficientnet_lite0()
    raise ValueError(family)


def ensure(family: str, work: Path) -> tuple[Path, Path]:
    """(family.onnx, family.wvb) in work/zoo, built once (same seed, same bytes)."""
    import onnx
    from wasmvision import bundle as wvb
    from wasmvision.importers.onnx_import import import_onnx
    folder = work / "zoo"
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path, wvb_path = folder / f"{family}.onnx", folder / f"{family}.wvb"
    if not onnx_path.exists() or not wvb_path.exists():
        log(f"building {family} (seeded random weights, 224x224) and importing it")
        onnx.save_model(build_onnx(family), str(onnx_path))
        b = import_onnx(str(onnx_path), labels=[f"class {i}" for i in range(1000)], name=family, version="bench")
        wvb.save(b, wvb_path)
    return onnx_path, wvb_path
