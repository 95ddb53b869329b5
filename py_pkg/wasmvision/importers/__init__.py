"""Importers: other model formats -> wasmvision bundles.

``import_onnx`` (in ``onnx_import``) reads an ONNX file with the pure-Python protobuf reader in
``onnx_proto``, so it also works inside Pyodide where the ``onnx`` package is not available.
"""

from __future__ import annotations


class ModelImportError(ValueError):
    """Base class: the source model cannot be converted (nothing is written)."""


class UnsupportedOperatorError(ModelImportError):
    """A node uses an operator (or an attribute combination) the importer cannot translate."""

    def __init__(self, node_name: str, op_type: str, reason: str = "", supported: list[str] | None = None):
        self.node_name = node_name
        self.op_type = op_type
        self.reason = reason
        if supported is None:
            from .registry import supported_ops
            supported = supported_ops()
        self.supported = list(supported)
        if reason:
            message = (f"node {node_name!r} ({op_type}): {reason}. "
                       f"Supported operators: {', '.join(self.supported)}")
        else:
            message = (f"node {node_name!r} uses operator {op_type!r}, which wasmvision cannot import. "
                       f"Supported operators: {', '.join(self.supported)}")
        super().__init__(message)


def import_onnx(source, **kwargs):
    """See :func:`wasmvision.importers.onnx_import.import_onnx`."""
    from .onnx_import import import_onnx as _import_onnx
    return _import_onnx(source, **kwargs)


__all__ = ["ModelImportError", "UnsupportedOperatorError", "import_onnx"]
