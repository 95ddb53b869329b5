"""The hostile cases that depend on the runtime itself, inside Pyodide (Node.js): deep JSON and deeply nested ONNX
graphs (Wasm has its own stack), a model whose plan exceeds the bound (Wasm has its own heap) and a strip image,
through the browser entry points. Each must answer {"ok": false} with its message, and the same interpreter must
then still load and classify a good model (docs/robustness.md). Skipped without node and Pyodide, like
test_import_pyodide.py."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")

import onnx_builders as B  # noqa: E402
from builders import big_input_model, nested_if_model  # noqa: E402
from fuzz_readers import _bundle_parts, _repack  # noqa: E402
from pyodide_harness import run_in_pyodide  # noqa: E402
from wasmvision import bundle as wvb  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402

CODE = """
import json, numpy as np
from wasmvision import browser
def read(f):
    return open("/work/in/" + f, "rb").read()
answers = {
    "deep": json.loads(browser.load_model("deep", read("deep.wvb"))),
    "nested": json.loads(browser.load_model("nested", read("nested.onnx"), kind="onnx", name="n")),
    "big": json.loads(browser.load_model("big", read("big.onnx"), kind="onnx", name="big")),
    "good": json.loads(browser.load_model("good", read("good.wvb"))),
}
answers["strip"] = json.loads(browser.classify_rgba("good", np.zeros(20000 * 4, np.uint8), 20000, 1))
answers["after"] = json.loads(browser.classify_rgba("good", np.zeros(52 * 40 * 4, np.uint8), 52, 40))
with open("/work/out/answers.json", "w") as f:
    json.dump(answers, f)
"""


def test_hostile_inputs_in_pyodide_answer_ok_false_and_the_interpreter_keeps_working(tmp_path):
    good = wvb.to_bytes(import_onnx(B.mobilenet_v1(size=32, width=0.25, classes=10).SerializeToString()))
    header, payload = _bundle_parts(good)
    header["model"]["x"] = "DEEP"
    deep = _repack(json.dumps(header).replace('"DEEP"', "[" * 100000 + "]" * 100000).encode(), payload)
    out = run_in_pyodide(tmp_path, CODE, {"good.wvb": good, "deep.wvb": deep, "nested.onnx": nested_if_model(5000),
                                          "big.onnx": big_input_model()}, timeout=300)
    a = json.loads(out["answers.json"])
    assert not a["deep"]["ok"] and "nested too deeply" in a["deep"]["error"]["message"]
    assert not a["nested"]["ok"] and "nested more than 16 deep" in a["nested"]["error"]["message"]
    assert not a["big"]["ok"] and "too large to run" in a["big"]["error"]["message"]
    assert not a["strip"]["ok"] and "aspect ratio of 20000:1" in a["strip"]["error"]["message"]
    for key in ("deep", "nested", "big", "strip"):
        assert "traceback" not in a[key]["error"], a[key]
    assert a["good"]["ok"] and a["after"]["ok"] and len(a["after"]["value"]["top"]) == 5
