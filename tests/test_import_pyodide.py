"""The importer inside Pyodide (Node.js), where the `onnx` package does not exist: it must parse an
ONNX file with its own protobuf reader and give the same numbers as natively.

Skipped unless `node` and a Pyodide distribution with numpy are available: $WASMVISION_PYODIDE_DIR,
else dist/pyodide (the built site), else /tmp/pyodide-0.27.7.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnx_builders as B  # noqa: E402
from pyodide_harness import run_in_pyodide  # noqa: E402

CODE = """
import importlib.util, numpy as np
assert importlib.util.find_spec("onnx") is None
from wasmvision.importers.onnx_import import import_onnx
import wasmvision
b = import_onnx("/work/in/m.onnx")
np.save("/work/out/y.npy", wasmvision.load(b).run(np.load("/work/in/x.npy")))
"""


def test_import_onnx_in_pyodide(tmp_path):
    model = B.mobilenet_v3("small", size=64, opset=13)
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    npy = io.BytesIO()
    np.save(npy, x)
    out = run_in_pyodide(tmp_path, CODE, {"m.onnx": model.SerializeToString(), "x.npy": npy.getvalue()},
                         timeout=300)
    y = np.load(io.BytesIO(out["y.npy"]))
    ref = B.run_onnxruntime(model, x, "NCHW")
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() / max(1.0, np.abs(ref).max()) <= 1e-4
    assert np.array_equal(y.argmax(-1), ref.argmax(-1))
