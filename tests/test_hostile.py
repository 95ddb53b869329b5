"""Hostile files, natively (docs/robustness.md): every case ends as a short one-line BundleError / ModelImportError /
ImageError, nothing absurd is allocated, nothing is overwritten, and the next call still works.

Cases: a model whose plan would exhaust memory, malformed bundles and ONNX files, lies in a bundle header, `inspect`
on graphs classify cannot run, convert never overwrites silently, empty labels, build stamps hash their outputs.
Extreme aspect ratios are in test_preprocess.py, checkpoint zip bombs in test_build.py, the fuzzing in test_fuzz.py."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from builders import big_input_model, nested_if_model  # noqa: E402

import onnx_builders as B  # noqa: E402
import wasmvision  # noqa: E402
from fuzz_readers import _bundle_parts, _repack  # noqa: E402
from wasmvision import browser  # noqa: E402
from wasmvision import bundle as wvb  # noqa: E402
from wasmvision.cli import main  # noqa: E402
from wasmvision.importers import ModelImportError, UnsupportedOperatorError  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402
from wasmvision.messages import MAX_MESSAGE  # noqa: E402
from wasmvision.plan import MAX_PLAN_BYTES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGE = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)


def one_line(exc: BaseException, limit: int = MAX_MESSAGE) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) <= limit, f"{len(text)} characters: {text[:400]}"
    return text


@pytest.fixture(scope="module")
def tiny_onnx() -> bytes:
    return B.mobilenet_v1(size=32, width=0.25, classes=10).SerializeToString()


@pytest.fixture(scope="module")
def tiny_bundle(tiny_onnx) -> bytes:
    return wvb.to_bytes(import_onnx(tiny_onnx, labels=[f"c{i}" for i in range(10)]))


def rewrite(raw: bytes, change) -> bytes:
    """The bundle with its JSON header edited by ``change(header)`` and a valid checksum (a forged file)."""
    header, payload = _bundle_parts(raw)
    change(header)
    return _repack(json.dumps(header).encode(), payload)


def first(header, op):
    return next(n for n in header["graph"]["nodes"] if n["op"] == op)


def a_weight(header):
    return header["tensors"][first(header, "conv2d")["inputs"][1]]


# ----------------------------------------------------------------------------------------- plan bound

def test_a_model_whose_plan_exceeds_the_bound_is_refused_at_load_before_allocating():
    raw = big_input_model()
    assert len(raw) < 2000
    bundle = import_onnx(raw, preprocess="none")
    tracemalloc.start()
    try:
        with pytest.raises(wasmvision.BundleError, match=r"too large to run: input shape \(1, 4000, 4000, 3\) needs "
                                                         rf"[\d,]+ MiB .* the limit is {MAX_PLAN_BYTES // 2**20} MiB"
                           ) as exc:
            wasmvision.load(bundle)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line(exc.value)
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_a_model_within_the_bound_still_loads():
    clf = wasmvision.load(import_onnx(big_input_model(side=512), preprocess="none"))
    assert len(clf.classify(IMAGE, top_k=3).top) == 3


def test_browser_load_of_the_oversized_model_answers_ok_false_and_the_next_load_works(tiny_bundle):
    answer = browser.decode_response(browser.load_model("big", big_input_model(), kind="onnx", name="big"))
    assert answer["ok"] is False
    assert "too large to run" in answer["error"]["message"] and "traceback" not in answer["error"]
    one_line(Exception(answer["error"]["message"]))
    again = browser.decode_response(browser.load_model("tiny", tiny_bundle))
    assert again["ok"] is True


def test_memory_errors_in_load_and_classify_become_one_line_errors(tiny_bundle, monkeypatch):
    from wasmvision import plan

    clf = wasmvision.load(tiny_bundle)

    def oom(*_a, **_k):
        raise MemoryError()

    monkeypatch.setattr(clf, "preprocess", oom)
    with pytest.raises(wasmvision.ImageError, match="out of memory while classifying") as exc:
        clf.classify(IMAGE)
    one_line(exc.value)
    monkeypatch.setattr(plan.Plan, "_allocate", oom)
    with pytest.raises(wasmvision.BundleError, match="out of memory while preparing the model") as exc:
        wasmvision.load(tiny_bundle)
    one_line(exc.value)


# ----------------------------------------------------------------------------------------- bundles

def _deep(h):
    h["model"]["x"] = "DEEP"


def _set(path_fn, value):
    def change(h):
        obj, key = path_fn(h)
        obj[key] = value
    return change


BUNDLE_CASES = {
    # name: (change, expected words in the message)
    "no tensors (KeyError 'tensors')": (lambda h: h.pop("tensors"), r"tensors must be present \(a JSON object\)"),
    "graph is a string (TypeError)": (lambda h: h.update(graph="conv"), r"graph must be a JSON object"),
    "nodes is a number": (lambda h: h["graph"].update(nodes=5), r"graph\.nodes must be a JSON list"),
    "shape is a string (TypeError)": (_set(lambda h: (a_weight(h), "shape"), "3x3"), r"\.shape must be a JSON list"),
    "offset 2**70 (OverflowError)": (_set(lambda h: (a_weight(h)["parts"][0], "offset"), 2**70),
                                     r"parts\[0\] must be inside the \d+-byte data section"),
    "negative offset (reads other bytes)": (_set(lambda h: (a_weight(h)["parts"][0], "offset"), -64),
                                            r"parts\[0\]\.offset must be a non-negative integer, got -64"),
    "negative dimension": (_set(lambda h: (a_weight(h)["shape"], 0), -3), r"shape\[0\] must be an integer in 0\.\."),
    "dimension 2**40 (Maximum allowed dimension)": (_set(lambda h: (a_weight(h)["shape"], 0), 2**40),
                                                     r"shape\[0\] must be an integer in 0\.\.16777216"),
    "80 GiB tensor (MemoryError)": (_set(lambda h: (a_weight(h), "shape"), [100000, 100000, 2]),
                                    r"shape must be at most 268,435,456 elements"),
    "unknown dtype": (_set(lambda h: (a_weight(h), "dtype"), "complex256"), r"\.dtype must be one of"),
    "stride 0 (ZeroDivisionError)": (_set(lambda h: (first(h, "conv2d")["attrs"], "strides"), [0, 0]),
                                     r"attrs\.strides must be a list of 2 integers in 1\.\."),
    "groups 0": (_set(lambda h: (h["graph"]["nodes"][0]["attrs"], "groups"), 0), r"groups must be a positive"),
    "dilation 0": (_set(lambda h: (first(h, "conv2d")["attrs"], "dilations"), [1, 0]), r"dilations must be a list"),
    "activation max is a string": (_set(lambda h: (first(h, "conv2d")["attrs"], "activation"),
                                        {"kind": "clip", "min": 0, "max": "six"}), r"activation\.max must be a finite"),
    "deep JSON (RecursionError)": (_deep, r"nested too deeply"),
    "5 MB op name": (_set(lambda h: (h["graph"]["nodes"][0], "op"), "A" * 5_000_000), r"node .*'AAAA"),
    "20 MB op name (header over its size cap)": (_set(lambda h: (h["graph"]["nodes"][0], "op"), "A" * 20_000_000),
                                                 r"bundle header is too large: [\d,]+ bytes"),
    "labels not strings": (_set(lambda h: (h, "labels"), [1, 2]), r"labels\[0\] must be a string"),
    "std = 0": (_set(lambda h: (h["preprocess"], "std"), [0.229, 0, 0.225]), r"std must not contain 0"),
    "std NaN": (_set(lambda h: (h["preprocess"], "std"), [float("nan")] * 3), r"std\[0\] must be finite"),
    "mean infinite": (_set(lambda h: (h["preprocess"], "mean"), [float("inf")] * 3), r"mean\[0\] must be finite"),
    "scale 0": (_set(lambda h: (h["preprocess"], "scale"), 0), r"scale must not be 0"),
    "crop of 0": (_set(lambda h: (h["preprocess"], "crop"), [0, 0]), r"crop must be \[height, width\]"),
    "resize_shorter huge": (_set(lambda h: (h["preprocess"], "resize_shorter"), 10**9), r"resize_shorter must be"),
}


@pytest.mark.parametrize("case", list(BUNDLE_CASES))
def test_malformed_or_lying_bundle_headers_give_one_short_bundle_error(case, tiny_bundle):
    change, expected = BUNDLE_CASES[case]
    raw = rewrite(tiny_bundle, change)
    if case.startswith("deep JSON"):
        header, payload = _bundle_parts(raw)
        raw = _repack(json.dumps(header).replace('"DEEP"', "[" * 100000 + "]" * 100000).encode(), payload)
    with pytest.raises(wasmvision.BundleError, match=expected) as exc:
        wasmvision.load(raw)
    one_line(exc.value)
    assert len(wasmvision.load(tiny_bundle).classify(IMAGE).top) == 5  # the next load still works


def test_nan_weights_are_refused_at_load(tiny_bundle):
    header, payload = _bundle_parts(tiny_bundle)
    part = a_weight(header)["parts"][0]
    data = bytearray(payload)
    data[part["offset"]:part["offset"] + 4] = np.float32(np.nan).tobytes()
    with pytest.raises(wasmvision.BundleError, match="contains NaN or infinity"):
        wasmvision.load(_repack(json.dumps(header).encode(), bytes(data)))


def test_prefix_data_offset_inside_the_header_is_refused(tiny_bundle):
    raw = bytearray(tiny_bundle)
    raw[16:24] = (0).to_bytes(8, "little")  # data offset 0: the "data" would be the prefix and header
    raw[24:32] = len(raw).to_bytes(8, "little")
    with pytest.raises(wasmvision.BundleError, match="data offset 0 lies inside"):
        wasmvision.load(bytes(raw), verify=False)


@pytest.fixture
def unplannable(tmp_path, tiny_bundle) -> Path:
    """A valid header whose graph classify cannot run: the dense layer's weight has the wrong shape."""
    def change(h):
        dense = first(h, "dense")
        w = h["tensors"][dense["inputs"][1]]
        w["shape"] = [w["shape"][1], w["shape"][0]]
    path = tmp_path / "unplannable.wvb"
    path.write_bytes(rewrite(tiny_bundle, change))
    return path


def test_inspect_exits_non_zero_on_a_graph_classify_cannot_run(unplannable, tmp_path, tiny_bundle, capsys):
    assert main(["classify", str(ROOT / "README.md"), "--model", str(unplannable)]) == 2
    capsys.readouterr()
    assert main(["inspect", str(unplannable)]) == 2
    out, err = capsys.readouterr()
    assert "operators" in out  # still described
    assert err.startswith("wasmvision: error: ") and "classify cannot run this model" in err
    assert err.count("\n") == 1
    assert main(["inspect", str(unplannable), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["runnable"] is False
    good = tmp_path / "good.wvb"
    good.write_bytes(tiny_bundle)
    assert main(["inspect", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runnable"] is True


def test_std_zero_bundle_makes_classify_exit_2_not_a_garbage_answer(tmp_path, tiny_bundle, capsys):
    path = tmp_path / "std0.wvb"
    path.write_bytes(rewrite(tiny_bundle, lambda h: h["preprocess"].update(std=[0, 0, 0])))
    img = tmp_path / "x.png"
    from PIL import Image
    Image.fromarray(IMAGE).save(img)
    assert main(["classify", str(img), "--model", str(path), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "std must not contain 0" in err


# ----------------------------------------------------------------------------------------- ONNX files

def _model(nodes, inits=(), in_shape=("N", 3, 32, 32), out="y"):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _conv(strides):
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", strides=strides)], [w])


def _huge_initializer(dims):
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(dims)
    return _model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [t])


def _constant_of_shape(dims):
    shape = numpy_helper.from_array(np.array(dims, np.int64), "shape")
    return _model([helper.make_node("ConstantOfShape", ["shape"], ["c"], name="cos"),
                   helper.make_node("Add", ["x", "c"], ["y"], name="add")], [shape])


ONNX_CASES = {
    "stride 0 (ZeroDivisionError)": (lambda: _conv([0, 0]), ModelImportError,
                                     r"node 'conv' \(Conv\): strides \[0, 0\] must be integers >= 1"),
    "nested graphs 5000 deep (RecursionError)": (lambda: nested_if_model(5000), ModelImportError,
                                                 r"graphs nested more than 16 deep"),
    "initializer dims 2**40 x 2**40 (Maximum allowed dimension)": (
        lambda: _huge_initializer([2**40, 2**40]), ModelImportError, r"tensor 'w': dims .* declare [\d,]+ elements"),
    "initializer of 80 GiB (MemoryError)": (lambda: _huge_initializer([100000, 100000, 2]), ModelImportError,
                                            r"more than the 268,435,456"),
    "negative initializer dim": (lambda: _huge_initializer([-5, 3]), ModelImportError, r"negative dimension"),
    "ConstantOfShape of 80 GiB (MemoryError)": (lambda: _constant_of_shape([100000, 100000, 2]), ModelImportError,
                                                r"negative or larger than"),
    "ConstantOfShape negative": (lambda: _constant_of_shape([-1, 2]), ModelImportError, r"negative or larger"),
    "truncated file": (lambda: B.mobilenet_v1(size=32, width=0.25, classes=10).SerializeToString()[:5000],
                       ModelImportError, r"truncated|not an ONNX"),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_malformed_onnx_files_give_one_short_model_import_error(case):
    make, error, expected = ONNX_CASES[case]
    with pytest.raises(error, match=expected) as exc:
        import_onnx(make())
    extra = len(" Supported operators: " + ", ".join(exc.value.supported)) if isinstance(
        exc.value, UnsupportedOperatorError) else 0
    one_line(exc.value, MAX_MESSAGE + extra)


def test_a_20_mb_op_name_gives_a_short_message():
    model = _model([helper.make_node("X" * 20_000_000, ["x"], ["y"], name="n" * 1_000_000)])
    with pytest.raises(UnsupportedOperatorError) as exc:
        import_onnx(model)
    problem = str(exc.value).split(" Supported operators: ")[0]
    assert len(problem) <= MAX_MESSAGE and "20,000,002 characters" in problem
    one_line(exc.value, MAX_MESSAGE + 1000)


def test_browser_reports_malformed_onnx_as_ok_false():
    answer = browser.decode_response(browser.load_model("n", nested_if_model(5000), kind="onnx", name="n"))
    assert answer["ok"] is False and "nested" in answer["error"]["message"]
    assert answer["error"]["kind"] == "ModelImportError" and "traceback" not in answer["error"]


# ----------------------------------------------------------------------------------------- convert, labels, stamps

@pytest.fixture
def onnx_file(tmp_path, tiny_onnx) -> Path:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_onnx)
    return path


def test_convert_never_overwrites_without_force(onnx_file, capsys):
    out = onnx_file.with_suffix(".wvb")
    out.write_bytes(b"a build output")
    assert main(["convert", str(onnx_file)]) == 2  # no -o: the default output exists
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"a build output"
    other = onnx_file.with_name("other.wvb")
    other.write_bytes(b"keep")
    assert main(["convert", str(onnx_file), "-o", str(other)]) == 2
    assert other.read_bytes() == b"keep"
    assert main(["convert", str(onnx_file), "--force"]) == 0
    assert wasmvision.load(out).classify(IMAGE).top


def test_convert_refuses_a_model_classify_could_not_run(tmp_path, capsys):
    src = tmp_path / "big.onnx"
    src.write_bytes(big_input_model())
    assert main(["convert", str(src), "--preprocess", "none"]) == 2
    assert "too large to run" in capsys.readouterr().err
    assert not src.with_suffix(".wvb").exists()


@pytest.mark.parametrize("name,text", [("labels.txt", ""), ("labels.txt", "\n\n  \n"), ("labels.json", "[]"),
                                       ("labels.json", "{}")])
def test_an_empty_labels_file_is_an_error(onnx_file, name, text, capsys):
    labels = onnx_file.with_name(name)
    labels.write_text(text)
    assert main(["convert", str(onnx_file), "--labels", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "labels" in err and ("empty" in err or "start at 0" in err)
    assert not onnx_file.with_suffix(".wvb").exists()


def test_build_stamps_hash_their_outputs(tmp_path):
    from buildtools.util import outputs_current, write_outputs_stamp

    out = tmp_path / "model.wvb"
    out.write_bytes(b"built")
    stamp = tmp_path / "model.wvb.stamp"
    write_outputs_stamp(stamp, "key", out)
    assert outputs_current(stamp, "key", out)
    assert not outputs_current(stamp, "other key", out)
    out.write_bytes(b"replaced by `convert` without -o")  # same name, other content: must be rebuilt
    assert not outputs_current(stamp, "key", out)
    out.unlink()
    assert not outputs_current(stamp, "key", out)


# ----------------------------------------------------------------------------------------- extreme aspect ratios at the boundaries

def test_browser_refuses_a_strip_image_from_its_dimensions(tiny_bundle):
    assert browser.decode_response(browser.load_model("tiny4", tiny_bundle))["ok"]
    strip = np.zeros(20000 * 1 * 4, np.uint8)
    answer = browser.decode_response(browser.classify_rgba("tiny4", strip, 20000, 1))
    assert answer["ok"] is False and answer["error"]["kind"] == "ImageError"
    assert "aspect ratio of 20000:1 (the limit is 20:1)" in answer["error"]["message"]
    ok = browser.decode_response(browser.classify_rgba("tiny4", np.zeros(40 * 30 * 4, np.uint8), 40, 30))
    assert ok["ok"] is True  # the next image still works


def test_cli_reports_a_strip_png_in_one_line(tmp_path, tiny_bundle, capsys):
    from PIL import Image

    model = tmp_path / "tiny.wvb"
    model.write_bytes(tiny_bundle)
    strip = tmp_path / "strip_20000x1.png"
    Image.fromarray(np.zeros((1, 20000, 3), np.uint8)).save(strip)
    assert main(["classify", str(strip), "--model", str(model)]) != 0
    err = capsys.readouterr().err
    assert "strip_20000x1.png" in err and "aspect ratio of 20000:1" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ header caps, FIFOs

def _flooded(raw: bytes, tensors: int) -> bytes:
    """The bundle with ``tensors`` extra empty tensors in its header (each a few JSON entries, zero data bytes)."""
    header, payload = _bundle_parts(raw)
    empty = {"dtype": "float32", "shape": [0], "parts": [{"name": "data", "offset": 0, "nbytes": 0}]}
    header["tensors"].update({f"t{i}": empty for i in range(tensors)})
    return _repack(json.dumps(header).encode(), payload)


def test_bundle_header_size_and_entry_count_are_capped_before_parsing(tiny_bundle, monkeypatch):
    """1,000,000 empty tensors in a 114 MB header took 44 s and 3.6 GB natively (and a replaced worker in the
    browser, which runs this reader in Pyodide). The header's length (from the prefix, before hashing) and its
    entry count (objects, lists and strings, counted without parsing) are bounded: refused at once, json.loads
    never called; real headers (MobileNetV2: 57 KB, ~4,300 entries) load."""

    too_long = _flooded(tiny_bundle, 100_000)  # a 10 MB header
    too_many = _flooded(tiny_bundle, 5_000)  # 0.6 MB, 65,000 entries
    monkeypatch.setattr(wvb.json, "loads", lambda *a, **k: pytest.fail("parsed a header its caps refuse"))
    answers = []
    for raw, expected in ((too_long, rf"bundle header is too large: [\d,]+ bytes, at most {wvb.MAX_HEADER_BYTES:,}"),
                          (too_many, rf"bundle header has too many entries: [\d,]+ JSON objects, lists and strings, "
                                     rf"at most {wvb.MAX_HEADER_ENTRIES:,}")):
        tracemalloc.start()
        try:
            with pytest.raises(wasmvision.BundleError, match=expected) as exc:
                wasmvision.load(raw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        one_line(exc.value)
        assert peak < 8 * len(raw) + (1 << 20), peak  # refused before the header's objects exist
        answers.append(browser.load_model("flood", raw))  # the same reader, as the worker runs it in Pyodide
    monkeypatch.undo()
    for answer in map(browser.decode_response, answers):
        assert answer["ok"] is False and answer["error"]["kind"] == "BundleError"
        assert "bundle header is too large" in answer["error"]["message"] or "too many entries" in answer["error"]["message"]
    assert len(wasmvision.load(_flooded(tiny_bundle, 3_000)).classify(IMAGE).top) == 5  # under the caps: loads
    assert wvb.json_shape(b'{"a": ["x", {"b": [1, 2]}], "c": "y"}') == wvb.JsonShape(depth=4, entries=9)
    assert wvb.json_shape(rb'["]]\"]", "[[\\", {"a\\\"[": [1]}]') == wvb.JsonShape(depth=3, entries=6)


@pytest.fixture
def silent_fifo(tmp_path, monkeypatch):
    """A FIFO nobody writes to, a 0.5 s idle bound, and a safety net: if the code under test blocks in open()
    (as it did), a writer connects after 20 s so the test fails instead of hanging."""
    import os
    import threading

    from wasmvision import limits

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(limits, "FIFO_IDLE_SECONDS", 0.5)

    def unblock():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    timer = threading.Timer(20, unblock)
    timer.start()
    yield fifo
    timer.cancel()


@pytest.mark.parametrize("command", ["convert model", "convert labels", "inspect"])
def test_convert_and_inspect_give_up_on_a_fifo_nobody_writes(command, tmp_path, onnx_file, silent_fifo, capsys):
    import time

    fifo = silent_fifo
    argv = {"convert model": ["convert", str(fifo), "-o", str(tmp_path / "out.wvb")],
            "convert labels": ["convert", str(onnx_file), "--labels", str(fifo), "-o", str(tmp_path / "out.wvb")],
            "inspect": ["inspect", str(fifo)]}[command]
    t0 = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - t0 < 15
    err = capsys.readouterr().err
    assert "nothing to read for 0.5 s" in err and err.count("\n") == 1 and str(fifo) in err
    assert not (tmp_path / "out.wvb").exists()


def test_convert_refuses_an_onnx_file_over_its_bound_from_its_size(tmp_path, monkeypatch, capsys):
    from wasmvision import limits

    big = tmp_path / "big.onnx"
    with big.open("wb") as f:
        f.truncate(limits.ONNX.max_bytes + 1)  # sparse
    assert main(["convert", str(big)]) == 2
    assert "too large (1,073,741,825 bytes; the limit for ONNX models is 1,024 MiB)" in capsys.readouterr().err
