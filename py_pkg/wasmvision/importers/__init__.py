"""Importers: other model formats -> wasmvision bundles.

``import_onnx`` (in ``onnx_import``) reads an ONNX file with the pure-Python protobuf reader in
``onnx_proto``, so it also works inside Pyodide where the ``onnx`` package is not available.
"""

from __future__ import annotations

from .errors import MAX_CONST_ELEMENTS, ModelImportError, UnsupportedOperatorError


def import_onnx(source, **kwargs):
    """See :func:`wasmvision.importers.onnx_import.import_onnx`."""
    from .onnx_import import import_onnx as _import_onnx
    return _import_onnx(source, **kwargs)


__all__ = ["MAX_CONST_ELEMENTS", "ModelImportError", "UnsupportedOperatorError", "import_onnx"]
