"""Build-time exporters: PyTorch state dicts → standard ONNX models written with ``onnx.helper``.

Needs the ``onnx`` extra (``pip install wasmvision[onnx]``), or nothing but numpy with ``use_onnx=False``
(``onnx_lite``: how the default model is built on a user's machine); nothing here is used in Pyodide.
The ONNX files are the reference the bundle is checked against (onnxruntime parity tests) and the
input of the ordinary ONNX → bundle importer, so the built-in model takes the same path a user's does.
"""

from .fold import fold_batchnorm
from .mobilenet_v2 import MOBILENET_V2_SETTINGS, export_mobilenet_v2

__all__ = ["fold_batchnorm", "export_mobilenet_v2", "MOBILENET_V2_SETTINGS"]
