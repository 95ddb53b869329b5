"""Weight storage on the real MobileNetV2: parity of each stored variant with onnxruntime on an ONNX copy whose
initializers carry the same quantization (done independently here, in ONNX's own OIHW layout), the measured
int8 policy, the top-1 limit on every real photo, corrupt quantized bundles, and `convert --weights`."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import numpy_helper  # noqa: E402

import wasmvision  # noqa: E402
from wasmvision import bundle as B  # noqa: E402
from wasmvision import quantize as Q  # noqa: E402
from wasmvision.cli import main  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402
from wasmvision.image_io import read_image  # noqa: E402


@pytest.fixture(scope="module")
def imported(mobilenet_onnx):
    return import_onnx(mobilenet_onnx)


@pytest.fixture(scope="module")
def onnx_model(mobilenet_onnx):
    return onnx.load(str(mobilenet_onnx))


def _output_axes(model) -> dict[str, int]:
    """ONNX weight name -> its output-channel axis: 0 for Conv (OIHW); Gemm's B is (M, K) with transB=1."""
    axes = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            axes[node.input[1]] = 0
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axes[node.input[1]] = 0 if trans_b else 1
    return axes


def _store_like(w: np.ndarray, kind: str, axis: int) -> np.ndarray:
    """What ``kind`` storage gives back, computed independently of quantize.py, per channel along ``axis``."""
    if kind == "float32":
        return w
    if kind == "float16":
        return w.astype(np.float16).astype(np.float32)
    assert kind == "int8"
    moved = np.moveaxis(w, axis, -1)  # (..., C_out)
    max_abs = np.abs(moved.reshape(-1, moved.shape[-1])).max(axis=0)
    scale = np.where(max_abs > 0, max_abs / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(moved / scale), -127, 127)
    return np.moveaxis((q.astype(np.float32) * scale).astype(np.float32), -1, axis)


def _equivalent_onnx(model, storage: dict[str, str]) -> bytes:
    """A copy of ``model`` whose Conv/Gemm weights hold the values their bundle storage decodes to."""
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    axes = _output_axes(clone)
    for init in clone.graph.initializer:
        if init.name in axes and storage.get(init.name, "float32") != "float32":
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(_store_like(w, storage[init.name], axes[init.name]), init.name))
    return clone.SerializeToString()


def _inputs(clf, photos_dir) -> np.ndarray:
    rng = np.random.default_rng(7)
    images = [read_image(photos_dir / name) for name in ("chelsea.png", "coffee.png", "astronaut.png")]
    images.append(rng.integers(0, 256, (240, 300, 3), dtype=np.uint8))
    return np.stack([clf.preprocess(im) for im in images])  # (4, 224, 224, 3)


def _ort(onnx_bytes: bytes, x_nhwc: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x_nhwc.transpose(0, 3, 1, 2).copy()})[0]


@pytest.mark.parametrize("variant", ["fp16", "int8", "int8-all"])
def test_variant_matches_onnxruntime_on_its_dequantized_onnx(imported, onnx_model, photos_dir, variant):
    stored = Q.make_variant(imported, variant)
    clf = wasmvision.load(B.to_bytes(stored))
    x = _inputs(clf, photos_dir)
    twin = _equivalent_onnx(onnx_model, stored.storage)

    # The two quantizations (quantize.py on HWIO, the one above on OIHW) must give identical weights.
    axes = _output_axes(onnx_model)
    twin_weights = {i.name: numpy_helper.to_array(i) for i in onnx.load_from_string(twin).graph.initializer}
    changed = 0
    for name in Q.weight_tensors(stored):
        w = twin_weights[name]
        as_bundle = w.transpose(2, 3, 1, 0) if w.ndim == 4 else (w.T if axes[name] == 0 else w)  # HWIO / (K, M)
        np.testing.assert_array_equal(clf.bundle.tensors[name], as_bundle, err_msg=name)
        changed += not np.array_equal(clf.bundle.tensors[name], imported.tensors[name])
    assert changed == len(Q.weight_tensors(stored))  # every weight really went through its storage

    got = clf.run(x)
    want = _ort(twin, x)
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-4 * scale, np.abs(got - want).max() / scale
    # ...and quantization moved the logits far more than that tolerance, so the check can tell them apart.
    original = _ort(onnx_model.SerializeToString(), x)
    assert np.abs(original - want).max() > 10 * 1e-4 * scale


def test_int8_policy_on_mobilenet_keeps_first_depthwise_and_linear_convs_in_float16(imported):
    before = dict(imported.storage)
    variant = Q.make_variant(imported, "int8")
    assert imported.storage == before and variant is not imported  # the input is not touched
    roles = Q.weight_roles(imported)
    weights = Q.weight_tensors(imported)
    assert len(weights) == 53
    depthwise = [n for n in weights if "depthwise" in roles[n]]
    linear = [n for n in weights if "linear" in roles[n]]
    assert len(depthwise) == 17 and len(linear) == 17 and "first" in roles[weights[0]]
    kept = {weights[0], *depthwise, *linear}
    for name in weights:
        assert variant.storage[name] == ("float16" if name in kept else "int8"), name
    assert variant.storage["classifier.1.weight"] == "int8"
    biases = [n for n in imported.tensors if n not in weights]
    assert biases and all(variant.storage.get(n, "float32") == "float32" for n in biases)
    sizes = {k: len(B.to_bytes(Q.make_variant(imported, k))) for k in ("fp32", "fp16", "int8", "int8-all")}
    assert sizes["int8-all"] < sizes["int8"] < sizes["fp32"] / 2.8 and sizes["fp16"] < sizes["fp32"] / 1.9


def test_int8_keeps_the_float32_top1_on_every_real_photo(mobilenet_bundle, photos_dir):
    fp32 = wasmvision.load(mobilenet_bundle)
    int8 = wasmvision.load(B.to_bytes(Q.make_variant(fp32.bundle, "int8")))
    checked = []
    for path in sorted(p for p in photos_dir.iterdir() if p.is_file()):
        try:
            image = read_image(path)
        except wasmvision.ImageError:
            continue  # e.g. a TIFF Pillow cannot identify: the same for both models
        x = fp32.preprocess(image)[None]
        a, b = fp32.run(x)[0], int8.run(x)[0]
        assert int(np.argmax(b)) == int(np.argmax(a)), path.name
        checked.append(path.name)
    assert len(checked) >= 20 and "chelsea.png" in checked


def _repack(raw: bytes, edit) -> bytes:
    """Apply ``edit(header)`` and write a bundle with a valid checksum again (so only the content is wrong)."""
    header, data = B.read_header(raw)
    edit(header)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    offset = B._align(64 + len(header_bytes))
    body = header_bytes + b"\0" * (offset - 64 - len(header_bytes)) + bytes(data)
    prefix = B._PREFIX.pack(B.MAGIC, B.FORMAT_VERSION, len(header_bytes), offset, len(data),
                            hashlib.sha256(body).digest())
    return prefix + body


@pytest.fixture(scope="module")
def int8_raw(imported):
    return B.to_bytes(Q.make_variant(imported, "int8"))


def test_flipped_bit_in_int8_weights_is_refused(int8_raw):
    header, _ = B.read_header(int8_raw)
    entry = header["tensors"]["classifier.1.weight"]
    data = next(p for p in entry["parts"] if p["name"] == "data")
    at = B._PREFIX.unpack_from(int8_raw)[3] + data["offset"] + 1000
    raw = bytearray(int8_raw)
    raw[at] ^= 0x10
    with pytest.raises(wasmvision.BundleError, match="checksum mismatch: the file is corrupt"):
        wasmvision.load(bytes(raw))


def test_int8_tensor_with_wrong_scale_count_is_refused_with_its_name(int8_raw):
    def shorten(header):
        part = next(p for p in header["tensors"]["classifier.1.weight"]["parts"] if p["name"] == "scale")
        part["nbytes"] -= 4

    with pytest.raises(wasmvision.BundleError, match=r"'classifier.1.weight' cannot be decoded: int8 scale has 999"):
        wasmvision.load(_repack(int8_raw, shorten))


def test_int8_tensor_without_scales_is_refused(int8_raw):
    def drop(header):
        entry = header["tensors"]["features.18.0.weight"]
        entry["parts"] = [p for p in entry["parts"] if p["name"] != "scale"]

    with pytest.raises(wasmvision.BundleError, match=r"'features.18.0.weight' cannot be decoded"):
        wasmvision.load(_repack(int8_raw, drop))


def test_int8_data_shorter_than_the_shape_is_refused(int8_raw):
    def shrink(header):
        part = next(p for p in header["tensors"]["features.18.0.weight"]["parts"] if p["name"] == "data")
        part["nbytes"] //= 2

    with pytest.raises(wasmvision.BundleError, match=r"'features.18.0.weight' cannot be decoded"):
        wasmvision.load(_repack(int8_raw, shrink))


# ------------------------------------------------------------------------------------------------ CLI

@pytest.mark.parametrize("weights, expected", [
    ("fp32", {"float32"}), ("fp16", {"float16"}), ("float16", {"float16"}), ("int8", {"int8", "float16"}),
    ("int8-all", {"int8"})])
def test_convert_weights_option(mobilenet_onnx, tmp_path, capsys, weights, expected):
    out = tmp_path / "m.wvb"
    assert main(["convert", str(mobilenet_onnx), "-o", str(out), "--weights", weights]) == 0
    loaded = B.load(out)
    assert {loaded.storage[n] for n in Q.weight_tensors(loaded)} == expected
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["storage"]) == set(info["storage_bytes"]) == expected | {"float32"}  # biases stay float32
    header, _ = B.read_header(out.read_bytes())
    stored = {}
    for name, entry in header["tensors"].items():
        stored[entry["storage"]] = stored.get(entry["storage"], 0) + sum(p["nbytes"] for p in entry["parts"])
    assert info["storage_bytes"] == stored
    assert sum(info["storage"].values()) == len(loaded.tensors)


def test_convert_keep_float_keeps_named_layers_in_float32(mobilenet_onnx, tmp_path, capsys):
    out = tmp_path / "m.wvb"
    assert main(["convert", str(mobilenet_onnx), "-o", str(out), "--weights", "int8-all",
                 "--keep-float", "first,last"]) == 0
    loaded = B.load(out)
    weights = Q.weight_tensors(loaded)
    assert loaded.storage[weights[0]] == loaded.storage[weights[-1]] == "float32"
    assert {loaded.storage[n] for n in weights[1:-1]} == {"int8"}
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "int8" in text and "tensors" in text and "int8-all variant" in text


def test_convert_unknown_weights_kind_is_a_clear_error(mobilenet_onnx, tmp_path, capsys):
    out = tmp_path / "m.wvb"
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(mobilenet_onnx), "-o", str(out), "--weights", "int4"])
    assert exc.value.code == 2
    assert "unknown weight storage 'int4'; choose one of fp32, fp16, int8, int8-all" in capsys.readouterr().err
    assert not out.exists()


def test_convert_unknown_keep_float_selector_writes_nothing(mobilenet_onnx, tmp_path, capsys):
    out = tmp_path / "m.wvb"
    assert main(["convert", str(mobilenet_onnx), "-o", str(out), "--weights", "int8", "--keep-float", "stem"]) == 2
    err = capsys.readouterr().err
    assert "'stem' is neither a weight tensor of this model nor one of first, last, depthwise, linear" in err
    assert not out.exists()
