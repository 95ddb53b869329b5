"""A small pure-Python reader for the parts of the ONNX protobuf the importer uses.

The `onnx` package is not available inside Pyodide, so reading a user's ``.onnx`` file in the
browser needs its own decoder of the protobuf wire format. It reads ModelProto -> GraphProto ->
NodeProto / AttributeProto / TensorProto / ValueInfoProto and skips every other field, so newer
ONNX versions with extra fields still load. Field numbers are those of onnx/onnx.proto.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np


from ..messages import quote
from .errors import MAX_CONST_ELEMENTS, ModelImportError


class OnnxFormatError(ModelImportError):
    """The bytes are not a (complete) ONNX model."""


# Graphs nest through attributes (If/Loop bodies); no classifier needs more than a couple of levels, and a file
# nesting thousands deep would otherwise end in a RecursionError.
MAX_GRAPH_DEPTH = 16


# ----------------------------------------------------------------------------------- wire format

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


def _read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise OnnxFormatError("truncated ONNX file: a number runs past the end of its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise OnnxFormatError("not an ONNX file: malformed varint")


def _fields(buf: memoryview, start: int, end: int):
    """Yield (field number, wire type, value) for one message; LEN values are (start, end) spans."""
    pos = start
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxFormatError("not an ONNX file: field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos, end)
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos, end)
            if pos + length > end:
                raise OnnxFormatError("truncated ONNX file: a field runs past the end of its message")
            value = (pos, pos + length)
            pos += length
        elif wire == _I32:
            if pos + 4 > end:
                raise OnnxFormatError("truncated ONNX file")
            value = bytes(buf[pos:pos + 4])
            pos += 4
        elif wire == _I64:
            if pos + 8 > end:
                raise OnnxFormatError("truncated ONNX file")
            value = bytes(buf[pos:pos + 8])
            pos += 8
        else:
            # Groups (3, 4) are never used by onnx.proto; anything else is not protobuf.
            raise OnnxFormatError(f"not an ONNX file: unexpected protobuf wire type {wire}")
        yield number, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def _string(buf: memoryview, span: tuple[int, int]) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxFormatError("not an ONNX file: a string field is not UTF-8") from None


def _string_pair(buf, start: int, end: int) -> tuple[str, str]:
    """A StringStringEntryProto (key = 1, value = 2): external-data locations and metadata_props."""
    key = val = ""
    for number, _wire, value in _fields(buf, start, end):
        if number == 1:
            key = _string(buf, value)
        elif number == 2:
            val = _string(buf, value)
    return key, val


def _varints_np(data: bytes) -> np.ndarray:
    """Decode a packed run of varints at once (uint64); float16 tensors can hold millions of them."""
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, np.uint64)
    if b[-1] >= 0x80:
        raise OnnxFormatError("truncated ONNX file: packed numbers end mid-value")
    ends = np.flatnonzero(b < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise OnnxFormatError("not an ONNX file: malformed varint")
    group = np.repeat(np.arange(ends.size), lengths)
    position = np.arange(b.size) - np.repeat(starts, lengths)
    parts = (b & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    out = np.zeros(ends.size, np.uint64)
    np.add.at(out, group, parts)  # disjoint bit ranges, so add == or
    return out


def _repeated_ints(buf, wire, value, out: list) -> None:
    """Append one occurrence of a repeated integer field, packed or not."""
    if wire == _VARINT:
        out.append(_signed64(value))
    elif wire == _LEN:
        pos, end = value
        while pos < end:
            v, pos = _read_varint(buf, pos, end)
            out.append(_signed64(v))
    else:
        raise OnnxFormatError("not an ONNX file: integer field with a non-integer encoding")


def _repeated_floats(buf, wire, value, out: list) -> None:
    if wire == _I32:
        out.append(struct.unpack("<f", value)[0])
    elif wire == _LEN:
        out.extend(np.frombuffer(bytes(buf[value[0]:value[1]]), dtype="<f4").tolist())
    else:
        raise OnnxFormatError("not an ONNX file: float field with a non-float encoding")


# ----------------------------------------------------------------------------------- messages

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
    for number, wire, value in _fields(buf, start, end):
        if number == 1:
            _repeated_ints(buf, wire, value, dims)
        elif number == 2:
            data_type = value
        elif number == 8:
            name = _string(buf, value)
        elif number == 9:
            raw = bytes(buf[value[0]:value[1]])
        elif number == 4:
            _repeated_floats(buf, wire, value, float_data)
        elif number == 5:
            int32_chunks.append(bytes(buf[value[0]:value[1]]) if wire == _LEN else value)
        elif number == 7:
            _repeated_ints(buf, wire, value, int64_data)
        elif number == 10:
            double_chunks.append(np.frombuffer(bytes(buf[value[0]:value[1]]), "<f8") if wire == _LEN
                                 else np.frombuffer(value, "<f8"))
        elif number == 11:
            _repeated_ints(buf, wire, value, uint64_data)
        elif number == 13:
            key, val = _string_pair(buf, *value)
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
                pieces.append(_varints_np(chunk))
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


# AttributeProto.AttributeType
ATTR_FLOAT, ATTR_INT, ATTR_STRING, ATTR_TENSOR, ATTR_GRAPH = 1, 2, 3, 4, 5
ATTR_FLOATS, ATTR_INTS, ATTR_STRINGS, ATTR_TENSORS, ATTR_GRAPHS = 6, 7, 8, 9, 10
ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS, ATTR_TYPE_PROTO, ATTR_TYPE_PROTOS = 11, 12, 13, 14


@dataclass
class Attribute:
    """One node attribute. ``value`` is float, int, bytes, Tensor, Graph, or a list of those;
    sparse tensors and type protos are kept as raw bytes (the importer supports no op using them)."""
    name: str
    type: int
    value: Any


def parse_attribute(buf: memoryview, start: int, end: int, depth: int = 0) -> Attribute:
    name = ""
    atype = 0
    single: dict[int, Any] = {}
    floats: list[float] = []
    ints: list[int] = []
    strings: list[bytes] = []
    tensors: list[Tensor] = []
    graphs: list[Graph] = []
    opaque: list[bytes] = []
    for number, wire, value in _fields(buf, start, end):
        if number == 1:
            name = _string(buf, value)
        elif number == 20:
            atype = value
        elif number == 2:
            single[ATTR_FLOAT] = struct.unpack("<f", value)[0]
        elif number == 3:
            single[ATTR_INT] = _signed64(value)
        elif number == 4:
            single[ATTR_STRING] = bytes(buf[value[0]:value[1]])
        elif number == 5:
            single[ATTR_TENSOR] = parse_tensor(buf, *value)
        elif number == 6:
            single[ATTR_GRAPH] = parse_graph(buf, *value, depth + 1)
        elif number == 22:
            single[ATTR_SPARSE_TENSOR] = bytes(buf[value[0]:value[1]])
        elif number == 14:
            single[ATTR_TYPE_PROTO] = bytes(buf[value[0]:value[1]])
        elif number == 7:
            _repeated_floats(buf, wire, value, floats)
        elif number == 8:
            _repeated_ints(buf, wire, value, ints)
        elif number == 9:
            strings.append(bytes(buf[value[0]:value[1]]))
        elif number == 10:
            tensors.append(parse_tensor(buf, *value))
        elif number == 11:
            graphs.append(parse_graph(buf, *value, depth + 1))
        elif number in (15, 23):
            opaque.append(bytes(buf[value[0]:value[1]]))
    if atype == 0:
        # IR version < 2 omitted the type; infer it from the field that is set.
        if single:
            atype = next(iter(single))
        else:
            atype = (ATTR_FLOATS if floats else ATTR_INTS if ints else ATTR_STRINGS if strings
                     else ATTR_TENSORS if tensors else ATTR_GRAPHS if graphs else ATTR_INTS)
    repeated = {ATTR_FLOATS: floats, ATTR_INTS: ints, ATTR_STRINGS: strings, ATTR_TENSORS: tensors,
                ATTR_GRAPHS: graphs, ATTR_SPARSE_TENSORS: opaque, ATTR_TYPE_PROTOS: opaque}
    if atype in repeated:
        value = repeated[atype]
    elif atype in single:
        value = single[atype]
    else:
        defaults = {ATTR_FLOAT: 0.0, ATTR_INT: 0, ATTR_STRING: b""}
        value = defaults.get(atype)
    return Attribute(name=name, type=atype, value=value)


@dataclass
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str = ""
    domain: str = ""
    attributes: dict[str, Attribute] = field(default_factory=dict)

    def attr(self, name: str, default: Any = None) -> Any:
        a = self.attributes.get(name)
        return default if a is None else a.value


def parse_node(buf: memoryview, start: int, end: int, depth: int = 0) -> Node:
    node = Node(op_type="", inputs=[], outputs=[])
    for number, _wire, value in _fields(buf, start, end):
        if number == 1:
            node.inputs.append(_string(buf, value))
        elif number == 2:
            node.outputs.append(_string(buf, value))
        elif number == 3:
            node.name = _string(buf, value)
        elif number == 4:
            node.op_type = _string(buf, value)
        elif number == 7:
            node.domain = _string(buf, value)
        elif number == 5:
            a = parse_attribute(buf, *value, depth)
            node.attributes[a.name] = a
    return node


@dataclass
class ValueInfo:
    """A graph input/output: element type and shape; a dimension is an int, a str (dim_param) or None."""
    name: str
    elem_type: int = 0
    shape: list[int | str | None] | None = None


def _parse_shape(buf, start, end) -> list:
    dims: list = []
    for number, _w, value in _fields(buf, start, end):
        if number == 1:
            dim: int | str | None = None
            for n2, _w2, v2 in _fields(buf, *value):
                if n2 == 1:
                    dim = _signed64(v2)
                elif n2 == 2:
                    dim = _string(buf, v2)
            dims.append(dim)
    return dims


def parse_value_info(buf: memoryview, start: int, end: int) -> ValueInfo:
    info = ValueInfo(name="")
    for number, _w, value in _fields(buf, start, end):
        if number == 1:
            info.name = _string(buf, value)
        elif number == 2:  # TypeProto
            for n2, _w2, v2 in _fields(buf, *value):
                if n2 == 1:  # TypeProto.Tensor
                    for n3, _w3, v3 in _fields(buf, *v2):
                        if n3 == 1:
                            info.elem_type = v3
                        elif n3 == 2:
                            info.shape = _parse_shape(buf, *v3)
    return info


@dataclass
class Graph:
    name: str = ""
    nodes: list[Node] = field(default_factory=list)
    initializers: dict[str, Tensor] = field(default_factory=dict)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    value_info: list[ValueInfo] = field(default_factory=list)
    has_sparse_initializers: bool = False


def parse_graph(buf: memoryview, start: int, end: int, depth: int = 0) -> Graph:
    if depth > MAX_GRAPH_DEPTH:
        raise OnnxFormatError(f"graphs nested more than {MAX_GRAPH_DEPTH} deep (in node attributes)")
    graph = Graph()
    for number, _w, value in _fields(buf, start, end):
        if number == 1:
            graph.nodes.append(parse_node(buf, *value, depth))
        elif number == 2:
            graph.name = _string(buf, value)
        elif number == 5:
            t = parse_tensor(buf, *value)
            graph.initializers[t.name] = t
        elif number == 11:
            graph.inputs.append(parse_value_info(buf, *value))
        elif number == 12:
            graph.outputs.append(parse_value_info(buf, *value))
        elif number == 13:
            graph.value_info.append(parse_value_info(buf, *value))
        elif number == 15:
            graph.has_sparse_initializers = True
    return graph


@dataclass
class Model:
    ir_version: int = 0
    opset_import: dict[str, int] = field(default_factory=dict)  # domain ("" = ai.onnx) -> version
    producer_name: str = ""
    producer_version: str = ""
    model_version: int = 0
    graph: Graph | None = None
    metadata_props: dict[str, str] = field(default_factory=dict)
    function_names: list[str] = field(default_factory=list)

    @property
    def opset(self) -> int:
        return self.opset_import.get("", self.opset_import.get("ai.onnx", 1))


def _parse_function_name(buf, start, end) -> str:
    for number, _w, value in _fields(buf, start, end):
        if number == 1:
            return _string(buf, value)
    return ""


def parse_model(raw: bytes | bytearray | memoryview) -> Model:
    """Decode a serialized ONNX ModelProto. Every failure is an OnnxFormatError (a ModelImportError)."""
    try:
        return _parse_model(raw)
    except ModelImportError:
        raise
    except MemoryError:
        raise OnnxFormatError("not a usable ONNX file: decoding it ran out of memory") from None
    except RecursionError:
        raise OnnxFormatError("not a usable ONNX file: it is nested too deeply") from None
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, ZeroDivisionError, struct.error) as exc:
        raise OnnxFormatError(f"not a usable ONNX file: {type(exc).__name__}: {quote(str(exc), 120)}") from None


def _parse_model(raw: bytes | bytearray | memoryview) -> Model:
    buf = memoryview(raw)
    if buf.ndim != 1 or buf.itemsize != 1:
        buf = buf.cast("B")
    if len(buf) == 0:
        raise OnnxFormatError("not an ONNX file: it is empty")
    # A ModelProto starts with ir_version (field 1, varint) in every writer we know; checking it
    # rejects images, bundles and text files before the parser produces confusing messages.
    if buf[0] != 0x08:
        if bytes(buf[:8]) == b"\x89WVB\r\n\x1a\n":
            raise OnnxFormatError("not an ONNX file: this is already a wasmvision bundle (.wvb); load it directly")
        raise OnnxFormatError("not an ONNX file: it does not start like an ONNX ModelProto")
    model = Model()
    for number, _w, value in _fields(buf, 0, len(buf)):
        if number == 1:
            model.ir_version = value
        elif number == 2:
            model.producer_name = _string(buf, value)
        elif number == 3:
            model.producer_version = _string(buf, value)
        elif number == 5:
            model.model_version = _signed64(value)
        elif number == 7:
            model.graph = parse_graph(buf, *value)
        elif number == 8:
            domain, version = "", 0
            for n2, _w2, v2 in _fields(buf, *value):
                if n2 == 1:
                    domain = _string(buf, v2)
                elif n2 == 2:
                    version = _signed64(v2)
            model.opset_import[domain] = version
        elif number == 14:
            key, val = _string_pair(buf, *value)
            model.metadata_props[key] = val
        elif number == 25:
            model.function_names.append(_parse_function_name(buf, *value))
    if model.graph is None:
        raise OnnxFormatError("not an ONNX model: it has no graph (truncated file?)")
    if not model.opset_import:
        raise OnnxFormatError("not an ONNX model: it declares no opset (truncated file?)")
    if not model.graph.outputs:
        raise OnnxFormatError("not an ONNX model: its graph has no outputs (truncated file?)")
    return model
