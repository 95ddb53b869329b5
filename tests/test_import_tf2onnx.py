"""Real tf2onnx exports of Keras models (tests/data/tf2onnx, made by make_models.py there with
TensorFlow + tf2onnx in a separate venv) imported and checked three ways: against onnxruntime on
the same ONNX file, against the output Keras itself computed (saved next to each model), and for
the shape of the imported graph (NHWC input, no transposes left, activations fused).

TensorFlow is not needed here: the .onnx files and Keras's outputs are committed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import wasmvision
from wasmvision import bundle as wv_bundle
from wasmvision.importers.onnx_import import import_onnx

DATA = Path(__file__).parent / "data" / "tf2onnx"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
MODELS = {m["name"]: m for m in MANIFEST["models"]}

TOL_ORT = 1e-4    # relative to max(1, max|ref|), as for every importer parity test
TOL_KERAS = 1e-3  # TensorFlow's own kernels sum in another order

# Standalone activation ops: in these Keras models every activation follows a conv, dense or add
# and should be fused into it, including Keras's hard-swish / hard-sigmoid written as relu6(x + 3) / 6.
UNFUSED = ("relu", "clip", "hardswish", "hardsigmoid", "sigmoid")
# ...except swish, x * sigmoid(x), whose sigmoid input is read twice (no swish activation exists).
STANDALONE = {"ops_zoo_32": {"sigmoid": 1}, "ops_zoo_32_keras2": {"sigmoid": 1}}


def rel_err(got, ref) -> float:
    ref = np.asarray(ref, np.float64)
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / max(1.0, float(np.abs(ref).max())))


def _load(name: str):
    raw = (DATA / f"{name}.onnx").read_bytes()
    # Through the byte format, so serialisation is part of what is tested.
    b = wv_bundle.from_bytes(wv_bundle.to_bytes(import_onnx(raw, preprocess="none")))
    data = np.load(DATA / f"{name}.npz")
    return raw, b, data["x"], data["y"]


def test_manifest_lists_the_committed_files():
    assert MODELS, "no models in manifest.json"
    on_disk = {p.stem for p in DATA.glob("*.onnx")}
    assert on_disk == set(MODELS)
    assert {p.stem for p in DATA.glob("*.npz")} == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_onnxruntime_and_keras(name):
    ort = pytest.importorskip("onnxruntime")
    raw, b, x, y_keras = _load(name)
    got = wasmvision.load(b).run(x)

    sess = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    assert b.metadata["source_layout"] == "NHWC"  # so onnxruntime takes x as it is
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]

    assert got.shape == ref.shape == y_keras.shape
    err_ort, err_keras = rel_err(got, ref), rel_err(got, y_keras)
    assert err_ort <= TOL_ORT, f"{name}: relative max |Δ| vs onnxruntime {err_ort:.3g}"
    assert err_keras <= TOL_KERAS, f"{name}: relative max |Δ| vs Keras {err_keras:.3g}"
    assert np.array_equal(got.argmax(-1), ref.argmax(-1))
    assert np.array_equal(got.argmax(-1), y_keras.argmax(-1))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_imported_graph_is_channels_last_and_clean(name):
    info = MODELS[name]
    _, b, x, _ = _load(name)
    h, w, c = info["input_shape"][1:]
    assert b.metadata["source_layout"] == "NHWC"
    assert b.metadata["producer"].startswith("tf2onnx"), b.metadata["producer"]
    assert b.metadata["opset"] == info["opset"]
    assert b.inputs[0].layout == "NHWC" and b.inputs[0].shape == [-1, h, w, c]
    assert b.outputs[0].shape == [-1, *info["output_shape"]]
    counts = b.op_counts()
    # tf2onnx's NHWC <-> NCHW Transposes (20 of them when its transpose optimizer is skipped) only
    # change how the importer describes a tensor; none of these models needs data moved.
    assert counts.get("transpose", 0) == 0, counts
    for op in UNFUSED:
        assert counts.get(op, 0) == STANDALONE.get(name, {}).get(op, 0), counts
    # Every Conv of the export survives (BN's Mul/Add, biases, pads and activations fold into them).
    assert counts["conv2d"] == info["ops"]["Conv"], counts


@pytest.mark.parametrize("name", ["mobilenet_v3_small_a075_96"])
def test_keras_hard_swish_and_se_gate_are_fused(name):
    _, b, _, _ = _load(name)
    kinds = [(n.attrs.get("activation") or {}).get("kind") for n in b.nodes if n.op == "conv2d"]
    # Every Clip in the export is the relu6 of a relu6(x + 3) / 6: 9 SE gates (hard sigmoid),
    # the rest hard swish. Each must end up as the activation of the conv before it.
    assert kinds.count("hardsigmoid") == 9, kinds
    assert kinds.count("hardswish") == MODELS[name]["ops"]["Clip"] - 9, kinds
    gate = next(n for n in b.nodes if (n.attrs.get("activation") or {}).get("kind") == "hardsigmoid")
    assert abs(gate.attrs["activation"]["alpha"] - 1 / 6) < 1e-9 and gate.attrs["activation"]["beta"] == 0.5


def test_dynamic_batch_of_one_matches_the_batch_run():
    _, b, x, y_keras = _load("mobilenet_v2_a035_96")
    clf = wasmvision.load(b)
    one = clf.run(x[1:2])
    assert one.shape == (1, y_keras.shape[1])
    assert rel_err(one, y_keras[1:2]) <= TOL_KERAS
