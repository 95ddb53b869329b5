"""The protobuf wire format, as much as the ONNX reader needs: varints, fields, packed repeated numbers.
Every malformed byte ends as an :class:`OnnxFormatError` naming what was wrong."""

from __future__ import annotations

import struct

import numpy as np

from .errors import ModelImportError


class OnnxFormatError(ModelImportError):
    """The bytes are not a (complete) ONNX model."""


# ----------------------------------------------------------------------------------- wire format

WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_SGROUP, WIRE_EGROUP, WIRE_I32 = 0, 1, 2, 3, 4, 5


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
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


def iter_fields(buf: memoryview, start: int, end: int):
    """Yield (field number, wire type, value) for one message; LEN values are (start, end) spans."""
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxFormatError("not an ONNX file: field number 0")
        if wire == WIRE_VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire == WIRE_LEN:
            length, pos = read_varint(buf, pos, end)
            if pos + length > end:
                raise OnnxFormatError("truncated ONNX file: a field runs past the end of its message")
            value = (pos, pos + length)
            pos += length
        elif wire == WIRE_I32:
            if pos + 4 > end:
                raise OnnxFormatError("truncated ONNX file")
            value = bytes(buf[pos:pos + 4])
            pos += 4
        elif wire == WIRE_I64:
            if pos + 8 > end:
                raise OnnxFormatError("truncated ONNX file")
            value = bytes(buf[pos:pos + 8])
            pos += 8
        else:
            # Groups (3, 4) are never used by onnx.proto; anything else is not protobuf.
            raise OnnxFormatError(f"not an ONNX file: unexpected protobuf wire type {wire}")
        yield number, wire, value


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def read_string(buf: memoryview, span: tuple[int, int]) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxFormatError("not an ONNX file: a string field is not UTF-8") from None


def string_pair(buf, start: int, end: int) -> tuple[str, str]:
    """A StringStringEntryProto (key = 1, value = 2): external-data locations and metadata_props."""
    key = val = ""
    for number, _wire, value in iter_fields(buf, start, end):
        if number == 1:
            key = read_string(buf, value)
        elif number == 2:
            val = read_string(buf, value)
    return key, val


def varints_np(data: bytes) -> np.ndarray:
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


def repeated_ints(buf, wire, value, out: list) -> None:
    """Append one occurrence of a repeated integer field, packed or not."""
    if wire == WIRE_VARINT:
        out.append(signed64(value))
    elif wire == WIRE_LEN:
        pos, end = value
        while pos < end:
            v, pos = read_varint(buf, pos, end)
            out.append(signed64(v))
    else:
        raise OnnxFormatError("not an ONNX file: integer field with a non-integer encoding")


def repeated_floats(buf, wire, value, out: list) -> None:
    if wire == WIRE_I32:
        out.append(struct.unpack("<f", value)[0])
    elif wire == WIRE_LEN:
        out.extend(np.frombuffer(bytes(buf[value[0]:value[1]]), dtype="<f4").tolist())
    else:
        raise OnnxFormatError("not an ONNX file: float field with a non-float encoding")
