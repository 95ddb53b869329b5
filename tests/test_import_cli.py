"""`wasmvision convert` / `inspect`, labels, and error reporting (nothing written on failure)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import onnx_builders as B  # noqa: E402
from wasmvision import bundle as wvb  # noqa: E402
from wasmvision.cli import main  # noqa: E402
from wasmvision.importers import ModelImportError, UnsupportedOperatorError  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402


def _unsupported_model():
    model = B.mobilenet_v1(size=32, width=0.25, classes=10)
    g = model.graph
    relu = next(n for n in g.node if n.op_type == "Relu")
    relu.op_type = "LeakyRelu"
    relu.name = "features.3/leaky"
    relu.attribute.append(helper.make_attribute("alpha", 0.1))
    return model


@pytest.fixture
def small_onnx(tmp_path):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(B.mobilenet_v1(size=32, width=0.25, classes=10).SerializeToString())
    return path


def test_unsupported_operator_names_node_op_and_supported_list():
    with pytest.raises(UnsupportedOperatorError) as exc:
        import_onnx(_unsupported_model().SerializeToString())
    err = exc.value
    assert err.node_name == "features.3/leaky" and err.op_type == "LeakyRelu"
    msg = str(err)
    assert "'features.3/leaky'" in msg and "'LeakyRelu'" in msg
    for op in ("Conv", "BatchNormalization", "Clip", "HardSwish", "Gemm", "GlobalAveragePool"):
        assert op in msg
    assert isinstance(err, ValueError)


def test_convert_unsupported_writes_nothing(tmp_path, capsys):
    src = tmp_path / "bad.onnx"
    src.write_bytes(_unsupported_model().SerializeToString())
    out = tmp_path / "bad.wvb"
    assert main(["convert", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "LeakyRelu" in err and "features.3/leaky" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temporary files either


@pytest.mark.parametrize("raw", [b"GIF89a" + b"\0" * 50, b"", None])
def test_convert_not_onnx_or_truncated_writes_nothing(tmp_path, capsys, raw):
    src = tmp_path / "x.onnx"
    if raw is None:
        raw = B.mobilenet_v1(size=32, width=0.25).SerializeToString()[:-7]  # truncated
    src.write_bytes(raw)
    out = tmp_path / "x.wvb"
    assert main(["convert", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not an ONNX" in err or "truncated" in err
    assert not out.exists()


def test_convert_then_inspect(tmp_path, small_onnx, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class-{i}\n" for i in range(10)))
    out = tmp_path / "tiny.wvb"
    assert main(["convert", str(small_onnx), "-o", str(out), "--labels", str(labels), "--preprocess", "inception",
                 "--name", "tiny-net", "--version", "7"]) == 0
    summary = capsys.readouterr().out
    assert "wrote" in summary and str(out) in summary
    b = wvb.load(out)
    assert (b.name, b.version) == ("tiny-net", "7")
    assert b.labels == [f"class-{i}" for i in range(10)]
    assert b.preprocess["kind"] == "inception" and b.preprocess["mean"] == [0.5, 0.5, 0.5]

    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("tiny-net 7", "[-1, 32, 32, 3]", "[-1, 10]", "conv2d", "parameters", "inception", "labels"):
        assert needle in text, needle

    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["inputs"][0]["shape"] == [-1, 32, 32, 3]
    assert info["outputs"][0]["shape"] == [-1, 10]
    assert info["parameters"] == b.parameter_count
    assert info["file_bytes"] == out.stat().st_size
    assert info["labels"] == 10 and info["storage"] == {"float32": len(b.tensors)}
    assert info["operators"]["conv2d"] == sum(n.op == "conv2d" for n in b.nodes)


def test_converted_bundle_classifies(tmp_path, small_onnx):
    import wasmvision

    out = tmp_path / "tiny.wvb"
    assert main(["convert", str(small_onnx), "-o", str(out)]) == 0
    clf = wasmvision.load(out)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    res = clf.classify(image, top_k=3)
    assert len(res.top) == 3
    assert abs(sum(p.probability for p in clf.classify(image, top_k=10).top) - 1.0) < 1e-5
    emb = clf.infer(image, embedding=True)
    assert emb.shape == (B.make_divisible(1024 * 0.25),)


def test_python_dash_m_convert(tmp_path, small_onnx):
    out = tmp_path / "m.wvb"
    r = subprocess.run([sys.executable, "-m", "wasmvision", "convert", str(small_onnx), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    r = subprocess.run([sys.executable, "-m", "wasmvision", "inspect", str(tmp_path / "missing.wvb")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("kind", ["txt", "json_list", "json_dict", "list"])
def test_labels_forms(tmp_path, kind):
    names = [f"n{i}" for i in range(10)]
    if kind == "txt":
        labels = tmp_path / "l.txt"
        labels.write_text("\n".join(names) + "\n\n")
    elif kind == "json_list":
        labels = tmp_path / "l.json"
        labels.write_text(json.dumps(names))
    elif kind == "json_dict":
        labels = tmp_path / "l.json"
        labels.write_text(json.dumps({str(i): n for i, n in reversed(list(enumerate(names)))}))
    else:
        labels = names
    b = import_onnx(B.mobilenet_v1(size=32, width=0.25, classes=10).SerializeToString(), labels=labels)
    assert b.labels == names


def test_label_count_mismatch_is_an_error(tmp_path, small_onnx, capsys):
    labels = tmp_path / "l.txt"
    labels.write_text("a\nb\n")
    with pytest.raises(ModelImportError, match="2 labels .* 10 outputs"):
        import_onnx(small_onnx, labels=labels)
    out = tmp_path / "o.wvb"
    assert main(["convert", str(small_onnx), "-o", str(out), "--labels", str(labels)]) == 2
    assert not out.exists()


def test_dynamic_spatial_input_is_a_clear_error():
    model = B.mobilenet_v1(size=32, width=0.25)
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    with pytest.raises(ModelImportError, match="height, width and channels must be fixed"):
        import_onnx(model.SerializeToString())


def test_two_inputs_is_a_clear_error():
    model = B.mobilenet_v1(size=32, width=0.25)
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 3]))
    with pytest.raises(ModelImportError, match="one image input"):
        import_onnx(model.SerializeToString())
