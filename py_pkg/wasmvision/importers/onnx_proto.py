"""A small pure-Python reader for the parts of the ONNX protobuf the importer uses.

The `onnx` package is not available inside Pyodide, so reading a user's ``.onnx`` file in the
browser needs its own decoder of the protobuf wire format. It reads ModelProto -> GraphProto ->
NodeProto / AttributeProto / TensorProto / ValueInfoProto and skips every other field, so newer
ONNX versions with extra fields still load. Field numbers are those of onnx/onnx.proto. The wire format is in
proto_wire.py, TensorProto in proto_tensor.py; the messages that hold them are here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ..messages import quote
from .errors import ModelImportError  # noqa: F401  (re-exported)
from .proto_tensor import DATA_TYPE_NAMES, DATA_TYPES, Tensor, parse_tensor  # noqa: F401  (DATA_TYPE*: re-exported)
from .proto_wire import (
    OnnxFormatError, iter_fields, read_string, repeated_floats, repeated_ints, signed64, string_pair)


# Graphs nest through attributes (If/Loop bodies); no classifier needs more than a couple of levels, and a file
# nesting thousands deep would otherwise end in a RecursionError.
MAX_GRAPH_DEPTH = 16

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
    for number, wire, value in iter_fields(buf, start, end):
        if number == 1:
            name = read_string(buf, value)
        elif number == 20:
            atype = value
        elif number == 2:
            single[ATTR_FLOAT] = struct.unpack("<f", value)[0]
        elif number == 3:
            single[ATTR_INT] = signed64(value)
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
            repeated_floats(buf, wire, value, floats)
        elif number == 8:
            repeated_ints(buf, wire, value, ints)
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
    for number, _wire, value in iter_fields(buf, start, end):
        if number == 1:
            node.inputs.append(read_string(buf, value))
        elif number == 2:
            node.outputs.append(read_string(buf, value))
        elif number == 3:
            node.name = read_string(buf, value)
        elif number == 4:
            node.op_type = read_string(buf, value)
        elif number == 7:
            node.domain = read_string(buf, value)
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
    for number, _w, value in iter_fields(buf, start, end):
        if number == 1:
            dim: int | str | None = None
            for n2, _w2, v2 in iter_fields(buf, *value):
                if n2 == 1:
                    dim = signed64(v2)
                elif n2 == 2:
                    dim = read_string(buf, v2)
            dims.append(dim)
    return dims


def parse_value_info(buf: memoryview, start: int, end: int) -> ValueInfo:
    info = ValueInfo(name="")
    for number, _w, value in iter_fields(buf, start, end):
        if number == 1:
            info.name = read_string(buf, value)
        elif number == 2:  # TypeProto
            for n2, _w2, v2 in iter_fields(buf, *value):
                if n2 == 1:  # TypeProto.Tensor
                    for n3, _w3, v3 in iter_fields(buf, *v2):
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
    for number, _w, value in iter_fields(buf, start, end):
        if number == 1:
            graph.nodes.append(parse_node(buf, *value, depth))
        elif number == 2:
            graph.name = read_string(buf, value)
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
    for number, _w, value in iter_fields(buf, start, end):
        if number == 1:
            return read_string(buf, value)
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
    for number, _w, value in iter_fields(buf, 0, len(buf)):
        if number == 1:
            model.ir_version = value
        elif number == 2:
            model.producer_name = read_string(buf, value)
        elif number == 3:
            model.producer_version = read_string(buf, value)
        elif number == 5:
            model.model_version = signed64(value)
        elif number == 7:
            model.graph = parse_graph(buf, *value)
        elif number == 8:
            domain, version = "", 0
            for n2, _w2, v2 in iter_fields(buf, *value):
                if n2 == 1:
                    domain = read_string(buf, v2)
                elif n2 == 2:
                    version = signed64(v2)
            model.opset_import[domain] = version
        elif number == 14:
            key, val = string_pair(buf, *value)
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
