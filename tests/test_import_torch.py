"""Graphs as torch.onnx.export writes them (TorchScript exporter at opset 11/13/17, dynamo exporter at 18),
for small MobileNet-like nn.Modules, imported and compared with onnxruntime. Skipped without torch
(an optional test extra: `pip install torch==2.13.0`, a local CPU wheel here)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import onnx  # noqa: E402
from builders import assert_reader_agrees  # noqa: E402
from onnx_builders import make_divisible, parity  # noqa: E402

TOL = 1e-4


def _randomize_bn(module: nn.Module, seed: int) -> nn.Module:
    """Random running statistics, so folding BatchNormalization is actually exercised; He-scaled
    weights so activations (and the logits the tolerance is relative to) stay of order 1..10."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def conv_bn(cin, cout, k, s=1, groups=1, act=nn.ReLU6, padding=None):
    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2 if padding is None else padding, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, s, t, k=3, act=nn.ReLU6, se=False, se_mean=False):
        super().__init__()
        hidden = cin * t
        self.use_res = s == 1 and cin == cout
        layers = [] if t == 1 else [conv_bn(cin, hidden, 1, act=act)]
        layers.append(conv_bn(hidden, hidden, k, s, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden, make_divisible(hidden // 4), se_mean))
        layers.append(conv_bn(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class SqueezeExcite(nn.Module):
    def __init__(self, c, squeeze, use_mean):
        super().__init__()
        self.use_mean = use_mean
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True) if self.use_mean else F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class MobileNetV1(nn.Module):
    def __init__(self, width=1.0, classes=1000):
        super().__init__()
        c = make_divisible(32 * width)
        layers = [conv_bn(3, c, 3, 2, act=nn.ReLU)]
        for cout, s in [(64, 1), (128, 2), (256, 2), (512, 2), (1024, 2)]:
            cout = make_divisible(cout * width)
            layers += [conv_bn(c, c, 3, s, groups=c, act=nn.ReLU), conv_bn(c, cout, 1, act=nn.ReLU)]
            c = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.fc(x.view(x.size(0), -1))  # the classic head: Shape-free only in newer exporters


class MobileNetV2(nn.Module):
    def __init__(self, width=1.0, classes=1000):
        super().__init__()
        c = make_divisible(32 * width)
        layers = [conv_bn(3, c, 3, 2)]
        for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 1, 2), (6, 96, 2, 1)]:
            cout = make_divisible(cout * width)
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
        last = make_divisible(1280 * max(1.0, width))
        layers.append(conv_bn(c, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class MobileNetV3(nn.Module):
    def __init__(self, large=False, width=1.0, classes=1000, se_mean=False):
        super().__init__()
        hs = nn.Hardswish
        cfg = ([(3, 16, 16, True, nn.ReLU, 2), (3, 72, 24, False, nn.ReLU, 2), (5, 96, 40, True, hs, 2),
                (5, 240, 40, True, hs, 1), (5, 288, 96, True, hs, 2)] if not large else
               [(3, 64, 24, False, nn.ReLU, 2), (5, 72, 40, True, nn.ReLU, 2), (3, 240, 80, False, hs, 2),
                (3, 480, 112, True, hs, 1), (5, 672, 160, True, hs, 2)])
        c = make_divisible(16 * width)
        layers = [conv_bn(3, c, 3, 2, act=hs)]
        for k, exp, out, se, act, s in cfg:
            exp, out = make_divisible(exp * width), make_divisible(out * width)
            layers.append(InvertedResidual(c, out, s, max(1, exp // c), k=k, act=act, se=se, se_mean=se_mean))
            c = out
        last = make_divisible((960 if large else 576) * width)
        layers.append(conv_bn(c, last, 1, act=hs))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(last, 1280 if large else 1024), nn.Hardswish(),
                                        nn.Dropout(0.2), nn.Linear(1280 if large else 1024, classes))
        self.se_mean = se_mean

    def forward(self, x):
        x = self.features(x)
        x = x.mean((2, 3)) if self.se_mean else torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


class EfficientNetLite(nn.Module):
    """ReLU6, 5x5 depthwise, TF "SAME" padding written as F.pad before each strided conv."""

    def __init__(self, classes=1000):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2, padding=0)
        self.b1 = InvertedResidual(32, 16, 1, 1)
        self.b2_expand = conv_bn(16, 96, 1)
        self.b2_dw = conv_bn(96, 96, 5, 2, groups=96, padding=0)
        self.b2_project = conv_bn(96, 40, 1, act=None)
        self.b3 = InvertedResidual(40, 40, 1, 6, k=5)
        self.head = conv_bn(40, 1280, 1)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        x = self.stem(F.pad(x, (0, 1, 0, 1)))
        x = self.b1(x)
        x = self.b2_expand(x)
        x = self.b2_project(self.b2_dw(F.pad(x, (1, 2, 1, 2))))
        x = self.head(self.b3(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, s):
        super().__init__()
        self.conv1, self.conv2 = conv_bn(cin, cout, 3, s, act=nn.ReLU), conv_bn(cout, cout, 3, act=None)
        self.down = None if s == 1 and cin == cout else conv_bn(cin, cout, 1, s, act=None)

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + (x if self.down is None else self.down(x)))


class ResNetSmall(nn.Module):
    def __init__(self, width=32, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, width, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1))
        blocks, c = [], width
        for cout, s in [(width, 1), (width * 2, 2), (width * 4, 2)]:
            blocks.append(BasicBlock(c, cout, s))
            c = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


MODELS = {
    "mobilenet_v1_w0.5": (lambda: MobileNetV1(0.5), 128),
    "mobilenet_v2": (lambda: MobileNetV2(1.0), 128),
    "mobilenet_v2_w1.4_192": (lambda: MobileNetV2(1.4), 192),
    "mobilenet_v3_small": (lambda: MobileNetV3(False), 128),
    "mobilenet_v3_large_mean": (lambda: MobileNetV3(True, se_mean=True), 160),
    "efficientnet_lite": (lambda: EfficientNetLite(), 128),
    "resnet_small": (lambda: ResNetSmall(), 160),
}

EXPORTERS = {
    "torchscript_opset11": {"dynamo": False, "opset_version": 11},
    "torchscript_opset13": {"dynamo": False, "opset_version": 13},
    "torchscript_opset17": {"dynamo": False, "opset_version": 17},
    "dynamo_opset18": {"dynamo": True, "opset_version": 18},
}


def export(module: nn.Module, size: int, exporter: str) -> bytes:
    kw = EXPORTERS[exporter]
    x = torch.randn(2, 3, size, size)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kw["dynamo"]:
            pytest.importorskip("onnxscript")
            program = torch.onnx.export(module, (x,), dynamo=True, opset_version=kw["opset_version"],
                                        input_names=["input"], output_names=["logits"],
                                        dynamic_shapes={"x": {0: torch.export.Dim("batch", max=64)}},
                                        verbose=False)
            return program.model_proto.SerializeToString()
        torch.onnx.export(module, (x,), f, dynamo=False, opset_version=kw["opset_version"],
                          input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "N"}})
    return f.getvalue()


@pytest.mark.parametrize("exporter", sorted(EXPORTERS))
@pytest.mark.parametrize("family", sorted(MODELS))
def test_torch_export_matches_onnxruntime(family, exporter):
    build, size = MODELS[family]
    torch.manual_seed(0)
    module = _randomize_bn(build(), seed=1)
    raw = export(module, size, exporter)
    assert_reader_agrees(onnx.load_from_string(raw))
    rel, same_argmax, b = parity(raw, batch=2, runner="classifier")
    assert rel <= TOL, f"{family}/{exporter}: relative max |Δ| {rel:.3g}"
    assert same_argmax
    assert "BatchNormalization" not in str(b.op_counts())
    # the bundle agrees with torch itself too (onnxruntime is the reference, torch a second opinion)
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    import wasmvision
    with torch.no_grad():
        ref = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    got = wasmvision.load(b).run(x)
    assert np.abs(got - ref).max() / max(1.0, np.abs(ref).max()) <= 1e-3
