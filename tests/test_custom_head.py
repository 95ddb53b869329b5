"""Custom heads natively: training on the real MobileNetV2's embeddings, the .wvh file, load(head=...), the CLI.

The labeled set is built from the real test photos: crops of each photo are one label's examples. The reference
is the same training on onnxruntime's embeddings of the same crops (the ONNX model's "embedding" output)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wasmvision
from wasmvision import head_format, head_train
from wasmvision.custom import CustomClassifier, base_model

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"cat": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg"}
TRAIN, HELD = 3, 2  # crops per label: trained on, held out


def _crops(path: Path, n: int, seed: int) -> list[np.ndarray]:
    from PIL import Image

    im = np.asarray(Image.open(path).convert("RGB"))
    rng = np.random.default_rng(seed)
    h, w, _ = im.shape
    out = []
    for _ in range(n):
        s = rng.uniform(0.45, 0.75)
        ch, cw = int(h * s), int(w * s)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = im[y:y + ch, x:x + cw]
        out.append(np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop))
    return out


@pytest.fixture(scope="module")
def crops(photos_dir):
    return {label: _crops(photos_dir / name, TRAIN + HELD, seed) for seed, (label, name) in enumerate(LABELS.items())}


@pytest.fixture(scope="module")
def base(mobilenet_bundle):
    return wasmvision.load(mobilenet_bundle, engine="numpy")


@pytest.fixture(scope="module")
def tiny_classifier():
    from builders import tiny_bundle

    return wasmvision.load(tiny_bundle(), engine="numpy")


@pytest.fixture
def tiny_bundle_path(tmp_path):
    from builders import tiny_bundle
    from wasmvision import bundle

    path = tmp_path / "tiny.wvb"
    bundle.save(tiny_bundle(), path)
    return path


@pytest.fixture(scope="module")
def custom(base, crops):
    return base.train({label: images[:TRAIN] for label, images in crops.items()})


def test_trained_head_recognises_held_out_crops(custom, crops):
    assert custom.labels == list(LABELS)
    for label, images in crops.items():
        for image in images[TRAIN:]:
            result = custom.classify(image, top_k=3)
            assert result.top[0].label == label, (label, result.to_dict())
            assert len(result.top) == 3 and {p.label for p in result.top} == set(LABELS)
    assert custom.head.accuracy is not None and 0.0 <= custom.head.accuracy <= 1.0
    assert custom.head.examples == {label: TRAIN for label in LABELS}


def test_training_is_deterministic(base, crops, custom):
    again = base.train({label: images[:TRAIN] for label, images in crops.items()})
    assert again.to_bytes() == custom.to_bytes()


def test_scores_match_training_on_onnxruntime_embeddings(custom, crops, base, mobilenet_onnx):
    """Reference: onnxruntime's embeddings of the same preprocessed crops, the same training."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(mobilenet_onnx))
    model.graph.output.append(onnx.helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def ort_embedding(image):
        x = base.preprocess(image)[None].transpose(0, 3, 1, 2)  # NHWC -> NCHW, the ONNX layout
        return session.run(["embedding"], {name: np.ascontiguousarray(x)})[0].reshape(-1)

    train = [(i, ort_embedding(img)) for i, images in enumerate(crops.values()) for img in images[:TRAIN]]
    ref = head_train.train(np.stack([e for _, e in train]), [i for i, _ in train], list(LABELS),
                           custom.head.base).head
    for images in crops.values():
        for image in images[TRAIN:]:
            want = _softmax(ref.logits(ort_embedding(image))[0])
            got = custom.probabilities(image)
            assert np.abs(got - want).max() < 1e-4


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_save_and_load_round_trip(custom, crops, mobilenet_bundle, tmp_path):
    path = tmp_path / "mine.wvh"
    size = custom.save(path)
    assert size == path.stat().st_size < 64 * 1024  # 3 labels x 1280 features: small
    for again in (wasmvision.load(mobilenet_bundle, head=path, engine="numpy"),
                  wasmvision.load(model=mobilenet_bundle, head=path.read_bytes(), engine="numpy")):
        assert isinstance(again, CustomClassifier) and again.labels == custom.labels
        image = crops["coffee"][-1]
        assert np.array_equal(again.probabilities(image), custom.probabilities(image))
        assert again.classify(image).model["head"] == "custom"


def test_head_for_another_model_is_refused(custom, tiny_classifier):
    with pytest.raises(wasmvision.HeadError, match="trained on model") as info:
        CustomClassifier(tiny_classifier, custom.head)
    assert info.value.kind == "wrong-model"


@pytest.mark.parametrize("examples, kind", [
    ({"a": [np.zeros((8, 8, 3), np.uint8)] * 2}, "single-label"),
    ({}, "single-label"),
    ({"a": [np.zeros((8, 8, 3), np.uint8)] * 2, "b": []}, "empty-label"),
    ({"a": [np.zeros((8, 8, 3), np.uint8)] * 2, "b": [np.zeros((8, 8, 3), np.uint8)]}, "too-few-examples"),
    ({"a": [np.zeros((8, 8, 3), np.uint8)] * 2, " ": [np.zeros((8, 8, 3), np.uint8)] * 2}, "bad-label"),
])
def test_bad_examples_name_their_kind(tiny_classifier, examples, kind):
    with pytest.raises(wasmvision.TrainingError) as info:
        tiny_classifier.train(examples)
    assert info.value.kind == kind and "\n" not in str(info.value)


def test_both_methods_train_and_differ(tiny_classifier):
    rng = np.random.default_rng(1)
    examples = {f"l{i}": [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(4)] for i in range(3)}
    heads = {m: tiny_classifier.train(examples, method=m).head for m in head_format.METHODS}
    assert {h.method for h in heads.values()} == set(head_format.METHODS)
    assert not np.array_equal(heads["ncm"].weight, heads["softmax"].weight)


# ------------------------------------------------------------------------------------------- the file

def _resigned(raw: bytes, header: dict | None = None, data: bytes | None = None) -> bytes:
    """A head file with a replaced header or data and a valid checksum: only the schema checks can refuse it."""
    _, version, hlen, _ = struct.unpack_from("<8sII32s", raw)
    text = raw[48:48 + hlen] if header is None else json.dumps(header).encode()
    body = text + (raw[48 + hlen:] if data is None else data)
    import hashlib
    return struct.pack("<8sII32s", head_format.MAGIC, version, len(text), hashlib.sha256(body).digest()) + body


def _header(raw: bytes) -> dict:
    hlen = struct.unpack_from("<I", raw, 12)[0]
    return json.loads(raw[48:48 + hlen])


def _bad_heads(raw: bytes):
    h = _header(raw)
    yield "empty", b""
    yield "truncated", raw[:-7]
    yield "bit flip", raw[:100] + bytes([raw[100] ^ 1]) + raw[101:]
    yield "a bundle", b"\x89WVB\r\n\x1a\n" + raw[8:]
    yield "version", raw[:8] + struct.pack("<I", 9) + raw[12:]
    yield "repeated labels", _resigned(raw, {**h, "labels": [h["labels"][0]] * len(h["labels"])})
    yield "one label", _resigned(raw, {**h, "labels": h["labels"][:1]})
    yield "huge dim", _resigned(raw, {**h, "base": {**h["base"], "dim": 10 ** 9}})
    yield "bad sha", _resigned(raw, {**h, "base": {**h["base"], "sha256": "x" * 64}})
    yield "bad method", _resigned(raw, {**h, "method": "magic"})
    yield "not an object", _resigned(raw, [1, 2])  # type: ignore[arg-type]
    yield "deep", _resigned(raw, {**h, "name": [[[[[[["x"]]]]]]]})
    yield "short data", _resigned(raw, data=b"\0" * 12)
    nan = np.full((len(raw) - 48 - struct.unpack_from("<I", raw, 12)[0]) // 4, np.nan, "<f4").tobytes()
    yield "nan", _resigned(raw, data=nan)


def test_malformed_head_files_fail_with_one_line(custom):
    raw = custom.to_bytes()
    assert head_format.from_bytes(raw).labels == custom.labels
    for what, bad in _bad_heads(raw):
        with pytest.raises(wasmvision.HeadError) as info:
            head_format.from_bytes(bad)
        message = str(info.value)
        assert "\n" not in message and len(message) < 300, what


def test_random_mutations_never_escape_as_other_errors(custom):
    raw = bytearray(custom.to_bytes())
    rng = np.random.default_rng(7)
    for _ in range(300):
        bad = bytearray(raw)
        for pos in rng.integers(0, len(bad), int(rng.integers(1, 4))):
            bad[pos] = int(rng.integers(0, 256))
        bad = bad[:int(rng.integers(0, len(bad) + 1))] if rng.random() < 0.3 else bad
        try:
            head_format.from_bytes(bytes(bad))
        except wasmvision.HeadError:
            pass


# --------------------------------------------------------------------------------------------- the CLI

def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "wasmvision", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory, crops):
    from PIL import Image

    root = tmp_path_factory.mktemp("examples")
    for label, images in crops.items():
        (root / label).mkdir()
        for i, image in enumerate(images[:TRAIN]):
            Image.fromarray(image).save(root / label / f"{i}.png")
    return root


def test_cli_train_then_classify_with_the_head(examples_dir, crops, mobilenet_bundle, tmp_path):
    from PIL import Image

    out = tmp_path / "mine.wvh"
    done = _cli("train", examples_dir, "-o", out, "--model", mobilenet_bundle)
    assert done.returncode == 0, done.stderr
    for label in LABELS:
        assert f"{label}" in done.stdout and f"{TRAIN} photos" in done.stdout
    assert "accuracy estimate" in done.stdout and out.exists()
    photo = tmp_path / "held.png"
    Image.fromarray(crops["rocket"][-1]).save(photo)
    done = _cli("classify", photo, "--model", mobilenet_bundle, "--head", out, "--json", "--top-k", "2")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["top"][0]["label"] == "rocket" and len(row["top"]) == 2 and row["model"]["head"] == "mine"
    again = _cli("train", examples_dir, "-o", out, "--model", mobilenet_bundle)
    assert again.returncode == 2 and "--force" in again.stderr


def test_cli_train_reports_bad_example_folders(tmp_path, mobilenet_bundle):
    (tmp_path / "ex" / "only").mkdir(parents=True)
    done = _cli("train", tmp_path / "ex", "-o", tmp_path / "h.wvh", "--model", mobilenet_bundle)
    assert done.returncode == 2 and "at least two labels" in done.stderr and done.stderr.count("\n") == 1
    (tmp_path / "ex" / "empty").mkdir()
    done = _cli("train", tmp_path / "ex", "-o", tmp_path / "h.wvh", "--model", mobilenet_bundle)
    assert done.returncode == 2 and "has no examples" in done.stderr


def test_cli_refuses_a_head_for_another_model(custom, tmp_path, tiny_bundle_path):
    head = tmp_path / "mine.wvh"
    custom.save(head)
    done = _cli("classify", ROOT / "build" / "photos" / "chelsea.png", "--model", tiny_bundle_path, "--head", head)
    assert done.returncode == 2 and "trained on model" in done.stderr and done.stderr.count("\n") == 1
