"""ONNX TensorProto: the data types a classifier's initializers use and the decoder of one tensor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..messages import quote
from .errors import MAX_CONST_ELEMENTS
from .proto_wire import (
    WIRE_LEN, OnnxFormatError, iter_fields, read_string, repeated_floats, repeated_ints, string_pair, varints_np)


# TensorProto.DataType -> numpy dtype (those a classifier's initializers use).
DATA_TYPES = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
    9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}
DATA_TYPE_NAMES = {
    0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
    8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
    15: "COMPLEX128", 16: "BFLOAT16",
}


@dataclass
class Tensor:
    """A decoded TensorProto; ``array`` is None only for external data (see ``external``)."""
    name: str
    dims: list[int]
    data_type: int
    array: np.ndarray | None = None
    external: dict[str, str] = field(default_factory=dict)


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def parse_tensor(buf: memoryview, start: int, end: int) -> Tensor:
    dims: list[int] = []
    data_type = 0
    name = ""
    raw: bytes | None = None
    float_data: list[float] = []
    double_chunks: list = []
    int32_chunks: list = []  # each: bytes of packed varints, or an int
    int64_data: list[int] = []
    uint64_data: list[int] = []
    external: dict[str, str] = {}
    location = 0
    for number, wire, value in iter_fields(buf, start, end):
        if number == 1:
            repeated_ints(buf, wire, value, dims)
        elif number == 2:
            data_type = value
        elif number == 8:
            name = read_string(buf, value)
        elif number == 9:
            raw = bytes(buf[value[0]:value[1]])
        elif number == 4:
            repeated_floats(buf, wire, value, float_data)
        elif number == 5:
            int32_chunks.append(bytes(buf[value[0]:value[1]]) if wire == WIRE_LEN else value)
        elif number == 7:
            repeated_ints(buf, wire, value, int64_data)
        elif number == 10:
            double_chunks.append(np.frombuffer(bytes(buf[value[0]:value[1]]), "<f8") if wire == WIRE_LEN
                                 else np.frombuffer(value, "<f8"))
        elif number == 11:
            repeated_ints(buf, wire, value, uint64_data)
        elif number == 13:
            key, val = string_pair(buf, *value)
            external[key] = val
        elif number == 14:
            location = value
    tensor = Tensor(name=name, dims=dims, data_type=data_type, external=external)
    if any(d < 0 for d in dims):
        raise OnnxFormatError(f"tensor {quote(name)}: dims {quote(dims)} has a negative dimension")
    count = 1
    for d in dims:
        count *= d
    if count > MAX_CONST_ELEMENTS:
        raise OnnxFormatError(f"tensor {quote(name)}: dims {quote(dims)} declare {count:,} elements, more than "
                              f"the {MAX_CONST_ELEMENTS:,} wasmvision reads")
    if location == 1 or external:
        return tensor  # the importer reports external data; there is nothing inline to decode
    if data_type not in DATA_TYPES and data_type != 16:  # 16 = BFLOAT16, widened to float32 below
        kind = DATA_TYPE_NAMES.get(data_type, str(data_type))
        raise OnnxFormatError(f"tensor {quote(name)} has data type {quote(kind)}, which wasmvision cannot read")
    if raw is not None:
        if data_type == 16:
            array = _bfloat16_to_float32(np.frombuffer(raw, "<u2"))
        else:
            array = np.frombuffer(raw, dtype=np.dtype(DATA_TYPES[data_type]).newbyteorder("<"))
        if array.size != count:
            raise OnnxFormatError(f"tensor {quote(name)}: raw_data holds {array.size} values, its shape {dims} "
                                  f"needs {count} (truncated file?)")
        array = array.astype(array.dtype.newbyteorder("="))
    elif data_type == 1:
        array = np.asarray(float_data, dtype=np.float32)
    elif data_type == 11:
        array = np.concatenate(double_chunks) if double_chunks else np.zeros(0, np.float64)
    elif data_type == 7:
        array = np.asarray(int64_data, dtype=np.int64)
    elif data_type in (12, 13):
        array = np.asarray([v & ((1 << 64) - 1) for v in uint64_data], dtype=np.uint64).astype(DATA_TYPES[data_type])
    else:
        # int32_data carries INT32/INT16/INT8/UINT16/UINT8/BOOL and the bit patterns of FLOAT16/BFLOAT16.
        pieces = []
        for chunk in int32_chunks:
            if isinstance(chunk, bytes):
                pieces.append(varints_np(chunk))
            else:
                pieces.append(np.asarray([chunk], np.uint64))
        values = np.concatenate(pieces) if pieces else np.zeros(0, np.uint64)
        as_int = values.view(np.int64)  # negative int32 are sign-extended to 64 bits
        if data_type == 10:
            array = as_int.astype(np.uint16).view(np.float16)
        elif data_type == 16:
            array = _bfloat16_to_float32(as_int.astype(np.uint16))
        else:
            array = as_int.astype(DATA_TYPES[data_type])
    if array.size != count:
        raise OnnxFormatError(f"tensor {quote(name)} holds {array.size} values, its shape {dims} needs {count}")
    tensor.array = array.reshape(dims)
    return tensor
