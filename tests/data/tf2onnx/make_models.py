"""Regenerate the committed tf2onnx exports in this folder (real TensorFlow -> ONNX, not hand-built).

Needs TensorFlow and tf2onnx, which the project does not depend on, so run it from a separate venv:

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx tf-keras onnx onnxruntime
    /tmp/tfvenv/bin/python tests/data/tf2onnx/make_models.py

For each model it writes ``NAME.onnx`` (tf2onnx ``from_keras``, dynamic batch, NHWC input) and
``NAME.npz`` holding a seeded input ``x`` (N, H, W, C) and Keras's own output ``y`` on it, so
tests/test_import_tf2onnx.py can compare wasmvision with onnxruntime *and* with TensorFlow without
TensorFlow installed. ``manifest.json`` records versions, opsets, operator counts and sizes.
Most models are Keras 3; the ``*_keras2`` one is built with tf-keras (Keras 2), whose export differs
(TensorFlow folds BatchNormalization into the convs; clip_by_value becomes Min and Max).

Weights are random (seeded); the BatchNormalization statistics and the biases are randomised too,
so folding them is actually exercised (Keras starts BN at the identity and biases at zero). The
classifier activation is left off: logits make a far sharper parity check than a near-uniform
softmax of random weights.
"""

from __future__ import annotations

import collections
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
from tf2onnx import optimizer as tf2onnx_optimizer  # noqa: E402

import keras  # noqa: E402
from keras import layers  # noqa: E402

try:
    import tf_keras  # Keras 2, for the *_keras2 models
except ImportError:  # pragma: no cover - only the Keras 2 models need it
    tf_keras = None

HERE = Path(__file__).resolve().parent
BATCH = 2  # a batch above 1 checks that the exported batch dimension really is dynamic


# ---------------------------------------------------------------------------------------------- models

def mobilenet_v1():
    return keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, weights=None, classes=100,
                                        classifier_activation=None)


def mobilenet_v2():
    # Keras keeps the 1280-wide last conv at any alpha; 100 classes keeps the file small.
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=100,
                                          classifier_activation=None)


def mobilenet_v3_small():
    # Keras's own top (1x1 conv head with bias, hard-swish, 1x1 conv logits, Flatten). Its Rescaling
    # layer (include_preprocessing: x/127.5 - 1) is left on, as Keras users get it.
    return keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=10,
                                               classifier_activation=None)


def mobilenet_v3_large_minimal():
    """How Keras users fine-tune: the backbone without its top, average pooling, a new Dense head.
    Minimalistic: no SE, no hard-swish, 3x3 kernels only."""
    base = keras.applications.MobileNetV3Large(input_shape=(96, 96, 3), alpha=0.5, minimalistic=True,
                                               weights=None, include_top=False, pooling="avg")
    out = layers.Dense(10, name="logits")(base.output)
    return keras.Model(base.input, out, name="mobilenet_v3_large_minimal_finetuned")


def efficientnet_lite_like(size=96, classes=100):
    """EfficientNet-Lite's recipe (Keras has no Lite): ReLU6, no SE, 3x3/5x5 depthwise MBConv, and
    TensorFlow "same" padding, which pads a stride-2 layer asymmetrically (more at bottom/right)."""
    def cba(x, filters, k, s=1, act=True, name=""):
        x = layers.Conv2D(filters, k, strides=s, padding="same", use_bias=False, name=name + "_conv")(x)
        x = layers.BatchNormalization(name=name + "_bn")(x)
        return layers.ReLU(6.0, name=name + "_relu6")(x) if act else x

    def mbconv(x, cin, cout, k, s, expand, name):
        y = cba(x, cin * expand, 1, name=name + "_expand") if expand != 1 else x
        y = layers.DepthwiseConv2D(k, strides=s, padding="same", use_bias=False, name=name + "_dw")(y)
        y = layers.BatchNormalization(name=name + "_dw_bn")(y)
        y = layers.ReLU(6.0, name=name + "_dw_relu6")(y)
        y = cba(y, cout, 1, act=False, name=name + "_project")
        return layers.Add(name=name + "_add")([x, y]) if s == 1 and cin == cout else y

    inp = keras.Input((size, size, 3), name="input")
    x = cba(inp, 16, 3, 2, name="stem")
    for i, (cin, cout, k, s, e) in enumerate([(16, 8, 3, 1, 1), (8, 16, 3, 2, 6), (16, 16, 3, 1, 6),
                                               (16, 24, 5, 2, 6), (24, 24, 5, 1, 6), (24, 40, 3, 2, 6),
                                               (40, 48, 5, 1, 6), (48, 48, 5, 1, 6), (48, 96, 5, 2, 6)]):
        x = mbconv(x, cin, cout, k, s, e, f"block{i}")
    x = cba(x, 320, 1, name="head")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    out = layers.Dense(classes, name="logits")(x)
    return keras.Model(inp, out, name="efficientnet_lite_like")


def resnet_small(size=64, classes=10):
    """A small ResNet: 7x7 stem, max-pool, basic blocks with projection shortcuts, then an
    average-pool + Flatten head (Flatten of a 2x2 NHWC map: element order matters)."""
    def block(x, filters, stride, name):
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=name + "_conv1")(x)
        y = layers.BatchNormalization(name=name + "_bn1")(y)
        y = layers.Activation("relu", name=name + "_relu1")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name + "_conv2")(y)
        y = layers.BatchNormalization(name=name + "_bn2")(y)
        if stride != 1 or x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=name + "_proj")(x)
            x = layers.BatchNormalization(name=name + "_proj_bn")(x)
        return layers.Activation("relu", name=name + "_out")(layers.Add(name=name + "_add")([x, y]))

    inp = keras.Input((size, size, 3), name="input")
    x = layers.Conv2D(24, 7, strides=2, padding="same", name="stem_conv")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for i, (f, s) in enumerate([(24, 1), (48, 2), (64, 2)]):
        x = block(x, f, s, f"stage{i}")
    x = layers.AveragePooling2D(2, name="avg_pool")(x)  # 4x4 -> 2x2
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(classes, name="logits")(x)
    return keras.Model(inp, out, name="resnet_small")


def ops_zoo(k=keras, size=32, classes=10):
    """Keras layers a fine-tuned classifier may add around a backbone, in one small model: Rescaling,
    SeparableConv2D, a standalone BatchNormalization after an Add, swish, the hard_sigmoid activation,
    DepthwiseConv2D with depth_multiplier 2, channel Concatenate, ZeroPadding2D, max pooling,
    average pooling with "same" padding (TF leaves the padding out of the count), and global max and
    average pooling side by side. ``k`` is keras (3) or tf_keras (2)."""
    L = k.layers
    inp = k.Input((size, size, 3), name="input")
    x = L.Rescaling(1.0 / 255.0, offset=-0.5, name="rescale")(inp)
    x = L.Conv2D(16, 3, strides=2, padding="same", name="stem")(x)
    x = L.ReLU(6.0, name="stem_relu6")(x)
    x = L.Add(name="residual")([x, L.SeparableConv2D(16, 3, padding="same", name="separable")(x)])
    x = L.BatchNormalization(name="bn_after_add")(x)
    x = L.Activation("swish", name="swish")(x)
    a = L.Activation("hard_sigmoid", name="hard_sigmoid")(L.Conv2D(8, 1, name="pw")(x))
    b = L.Activation("sigmoid", name="sigmoid")(L.DepthwiseConv2D(5, padding="same", depth_multiplier=2,
                                                                  name="dw5_x2")(x))
    x = L.Concatenate(axis=-1, name="concat")([a, b, x])  # 8 + 32 + 16 channels
    x = L.ZeroPadding2D(((0, 1), (0, 1)), name="zero_pad")(x)
    x = L.Conv2D(24, 3, strides=2, padding="valid", activation="relu", name="valid_s2")(x)
    x = L.MaxPooling2D(2, name="max_pool")(x)
    x = L.AveragePooling2D(3, strides=1, padding="same", name="avg_pool_same")(x)
    x = L.Concatenate(name="pooled")([L.GlobalMaxPooling2D(name="gmp")(x), L.GlobalAveragePooling2D(name="gap")(x)])
    out = L.Dense(classes, name="logits")(x)
    return k.Model(inp, out, name="ops_zoo")


# name, builder, opset, tf2onnx optimizers to skip
MODELS = [
    ("mobilenet_v1_a025_128", mobilenet_v1, 13, ()),
    ("mobilenet_v2_a035_96", mobilenet_v2, 13, ()),
    ("mobilenet_v3_small_a075_96", mobilenet_v3_small, 18, ()),
    ("mobilenet_v3_large_min_a050_96", mobilenet_v3_large_minimal, 13, ()),
    ("efficientnet_lite_like_96", efficientnet_lite_like, 13, ()),
    ("resnet_small_64", resnet_small, 17, ()),
    # What tf2onnx writes when its transpose optimizer gives up (it logs "Failed to apply
    # optimize_transpose" and carries on; seen with MobileNetV3Small's zero-initialised biases):
    # NHWC <-> NCHW Transposes around every Conv and pool.
    ("resnet_small_64_no_transpose_opt", resnet_small, 13, ("optimize_transpose",)),
    ("ops_zoo_32", ops_zoo, 13, ()),
    ("ops_zoo_32_keras2", lambda: ops_zoo(tf_keras), 13, ()),
]


# ---------------------------------------------------------------------------------------------- export

def randomize_params(model, rng) -> None:
    """Non-trivial, well-conditioned BN parameters and statistics and non-zero biases: Keras starts
    BN at the identity and biases at zero, and a zero bias add can vanish from the export."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":  # keras or tf_keras
            c = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.6, 1.4, c).astype(np.float32),    # gamma
                rng.normal(0.0, 0.1, c).astype(np.float32),     # beta
                rng.normal(0.0, 0.1, c).astype(np.float32),     # moving mean
                rng.uniform(0.5, 1.5, c).astype(np.float32),    # moving variance
            ])
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))


def scale_logits(model, x, target: float = 8.0) -> None:
    """Scale the last linear layer so the logits reach about ``target``: random deep nets shrink
    their signal, and a relative error judged against max(1, max|y|) would then be a loose one."""
    last = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None][-1]
    peak = float(np.abs(np.asarray(model(x, training=False))).max())
    layer_weights = last.get_weights()
    last.set_weights([w * np.float32(target / peak) for w in layer_weights])


def export(name: str, build, opset: int, skip: tuple, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    if tf_keras is not None:
        tf_keras.utils.set_random_seed(seed)
    model = build()
    rng = np.random.default_rng(seed)
    randomize_params(model, rng)
    h, w, c = model.input_shape[1:]
    x = rng.standard_normal((BATCH, h, w, c)).astype(np.float32)
    if name.startswith("mobilenet_v3"):
        x = (x * 60.0 + 127.5).astype(np.float32)  # these take 0..255 pixels (their Rescaling layer)
    scale_logits(model, x)
    y = np.asarray(model(x, training=False), dtype=np.float32)

    spec = (tf.TensorSpec((None, h, w, c), tf.float32, name="input"),)
    optimizers = collections.OrderedDict((k, v) for k, v in tf2onnx_optimizer._optimizers.items() if k not in skip)
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset, optimizers=optimizers)
    onnx_model.doc_string = f"wasmvision test model {name}: random weights (seed {seed}), made by make_models.py"
    raw = onnx_model.SerializeToString()
    (HERE / f"{name}.onnx").write_bytes(raw)
    np.savez_compressed(HERE / f"{name}.npz", x=x, y=y)

    ops = collections.Counter(n.op_type for n in onnx_model.graph.node)
    flavor = f"tf_keras {tf_keras.__version__}" if name.endswith("_keras2") else f"keras {keras.__version__}"
    return {"name": name, "keras": flavor, "opset": opset, "seed": seed, "skipped_optimizers": list(skip),
            "onnx_bytes": len(raw), "npz_bytes": (HERE / f"{name}.npz").stat().st_size, "params": int(model.count_params()),
            "input_shape": [None, h, w, c], "output_shape": list(y.shape[1:]),
            "max_abs_keras_output": float(np.abs(y).max()), "ops": dict(sorted(ops.items()))}


def main(argv: list[str]) -> int:
    wanted = set(argv[1:])
    entries = []
    for seed, (name, build, opset, skip) in enumerate(MODELS, start=100):
        if wanted and name not in wanted:
            continue
        info = export(name, build, opset, skip, seed)
        entries.append(info)
        print(f"{name}: opset {opset}, {info['onnx_bytes'] / 1e6:.2f} MB onnx + {info['npz_bytes'] / 1e3:.0f} KB npz, "
              f"max|y| {info['max_abs_keras_output']:.3g}, ops {info['ops']}", flush=True)
    manifest_path = HERE / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() and wanted else {"models": []}
    merged = {e["name"]: e for e in old.get("models", [])}
    merged.update({e["name"]: e for e in entries})
    manifest = {"tensorflow": tf.__version__, "keras": keras.__version__,
                "tf_keras": tf_keras.__version__ if tf_keras is not None else None, "tf2onnx": tf2onnx.__version__,
                "made_by": "tests/data/tf2onnx/make_models.py",
                "models": [merged[m[0]] for m in MODELS if m[0] in merged]}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(e["onnx_bytes"] + e["npz_bytes"] for e in manifest["models"])
    print(f"total {total / 1e6:.2f} MB in {len(manifest['models'])} models")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
