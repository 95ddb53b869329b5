"""A numpy-only stand-in for the few ``onnx.helper`` / ``onnx.numpy_helper`` calls the exporters make.

Why: the default model is built on a user's machine from the pinned checkpoint (``wasmvision.default_model``),
where only numpy is installed. The exporters write through either ``onnx`` (build.py: it can run the
checker and save a file for the onnxruntime parity tests) or this module; both serialize to the same
ONNX bytes (tests/test_default_model.py compares them byte for byte), which the ordinary importer reads.

Only what the exporters use is here: nodes with int / float / ints / floats attributes, float32 and int64
initializers stored as raw_data, tensor value infos, one graph, one model. Fields are written in field
number order with proto2 presence, as the protobuf runtime writes them.
"""

from __future__ import annotations

import struct
from typing import Any, Sequence

import numpy as np

IR_VERSION = 8  # the exporters cap ir_version at 8; a fixed value keeps the output independent of onnx


class TensorProto:
    """Element type numbers (onnx.TensorProto.DataType) the exporters refer to."""
    FLOAT = 1
    INT64 = 7


_DTYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}


# ------------------------------------------------------------------------------------------- wire format

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 are written as 10-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(int(value))


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _str(number: int, text: str) -> bytes:
    return _bytes(number, text.encode("utf-8"))


def _float(number: int, value: float) -> bytes:
    return _key(number, 5) + struct.pack("<f", value)


class _Message:
    """A serialized message; ``SerializeToString`` as on protobuf objects."""

    def __init__(self, data: bytes):
        self._data = data

    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name, so callers need not care which kind
        return self._data


# ------------------------------------------------------------------------------------------- helpers

def _attribute(name: str, value: Any) -> bytes:
    # AttributeProto: name 1, f 2, i 3, floats 7, ints 8, type 20 (FLOAT 1, INT 2, FLOATS 6, INTS 7)
    if isinstance(value, (bool, int, np.integer)):
        return _str(1, name) + _int(3, value) + _int(20, 2)
    if isinstance(value, (float, np.floating)):
        return _str(1, name) + _float(2, value) + _int(20, 1)
    items = list(value)
    if items and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        return _str(1, name) + b"".join(_int(8, v) for v in items) + _int(20, 7)
    if items and all(isinstance(v, (float, np.floating)) for v in items):
        return _str(1, name) + b"".join(_float(7, v) for v in items) + _int(20, 6)
    raise TypeError(f"attribute {name!r}: onnx_lite writes ints, floats and non-empty lists of them, "
                    f"not {value!r}")


def make_node(op_type: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None,
              **attrs: Any) -> _Message:
    # NodeProto: input 1, output 2, name 3, op_type 4, attribute 5 (sorted by name, as onnx.helper does)
    data = b"".join(_str(1, x) for x in inputs) + b"".join(_str(2, x) for x in outputs)
    if name:
        data += _str(3, name)
    data += _str(4, op_type)
    data += b"".join(_bytes(5, _attribute(k, v)) for k, v in sorted(attrs.items()) if v is not None)
    return _Message(data)


def from_array(array: np.ndarray, name: str) -> _Message:
    # TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian)
    array = np.asarray(array)
    try:
        data_type = _DTYPES[array.dtype]
    except KeyError:
        raise TypeError(f"initializer {name!r}: onnx_lite writes float32 and int64, not {array.dtype}") from None
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    data = b"".join(_int(1, d) for d in array.shape) + _int(2, data_type) + _str(8, name) + _bytes(9, raw)
    return _Message(data)


def make_tensor_value_info(name: str, elem_type: int, shape: Sequence[int | str]) -> _Message:
    # ValueInfoProto: name 1, type 2 -> TypeProto.tensor_type 1 -> elem_type 1, shape 2 -> dim 1 ->
    # dim_value 1 | dim_param 2
    dims = b"".join(_bytes(1, _str(2, d) if isinstance(d, str) else _int(1, d)) for d in shape)
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _Message(_str(1, name) + _bytes(2, _bytes(1, tensor_type)))


def make_graph(nodes: Sequence[_Message], name: str, inputs: Sequence[_Message], outputs: Sequence[_Message],
               initializer: Sequence[_Message] = ()) -> _Message:
    # GraphProto: node 1, name 2, initializer 5, input 11, output 12
    data = (b"".join(_bytes(1, n.SerializeToString()) for n in nodes) + _str(2, name)
            + b"".join(_bytes(5, t.SerializeToString()) for t in initializer)
            + b"".join(_bytes(11, v.SerializeToString()) for v in inputs)
            + b"".join(_bytes(12, v.SerializeToString()) for v in outputs))
    return _Message(data)


def make_opsetid(domain: str, version: int) -> _Message:
    # OperatorSetIdProto: domain 1, version 2
    return _Message(_str(1, domain) + _int(2, version))


def make_model(graph: _Message, *, opset_imports: Sequence[_Message], producer_name: str | None = None,
               producer_version: str | None = None, doc_string: str | None = None,
               ir_version: int = IR_VERSION) -> _Message:
    # ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7, opset_import 8.
    # A field passed (even empty) is written, as protobuf does for a proto2 field that was set.
    data = _int(1, ir_version)
    for number, text in ((2, producer_name), (3, producer_version), (6, doc_string)):
        if text is not None:
            data += _str(number, text)
    data += _bytes(7, graph.SerializeToString()) + b"".join(_bytes(8, o.SerializeToString()) for o in opset_imports)
    return _Message(data)
