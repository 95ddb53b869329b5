"""The importers' errors and limits (every importer module raises these; the package re-exports them)."""

from __future__ import annotations

from ..messages import MAX_MESSAGE, clip, quote, short

# Largest constant the importer will hold or build (ConstantOfShape, an initializer's declared shape): 256 M
# elements. A few bytes of protobuf can declare any shape; checking it first turns "80.5 GiB" MemoryErrors and
# numpy's "Maximum allowed dimension exceeded" into a message naming the tensor.
MAX_CONST_ELEMENTS = 1 << 28


class ModelImportError(ValueError):
    """Base class: the source model cannot be converted (nothing is written). The message is one line of at most
    ``messages.MAX_MESSAGE`` characters (user strings quoted through ``messages.quote``)."""

    def __init__(self, message: str = ""):
        super().__init__(clip(message))


class UnsupportedOperatorError(ModelImportError):
    """A node uses an operator (or an attribute combination) the importer cannot translate."""

    def __init__(self, node_name: str, op_type: str, reason: str, supported: list[str]):
        self.node_name = node_name
        self.op_type = op_type
        self.reason = reason
        self.supported = list(supported)  # op_list.SUPPORTED_OPS, passed in: this module imports no importer
        if reason:
            what = f"node {quote(node_name)} ({short(op_type)}): {clip(reason, 200)}."
        else:
            what = f"node {quote(node_name)} uses operator {quote(op_type)}, which wasmvision cannot import."
        # The problem is capped like any reader error; the supported list (fixed, ours) follows it.
        ValueError.__init__(self, f"{clip(what, MAX_MESSAGE)} Supported operators: {', '.join(self.supported)}")
