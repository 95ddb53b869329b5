"""The wasmvision model bundle (``.wvb``): one file holding a graph, its weights, labels and preprocessing.

Layout (all integers little-endian; see docs/bundle-format.md for the full description):

    0   8  magic  b"\\x89WVB\\r\\n\\x1a\\n"  (PNG-style: catches text-mode transfers and truncation early)
    8   4  u32    format version (FORMAT_VERSION)
    12  4  u32    header length in bytes (UTF-8 JSON)
    16  8  u64    data offset (multiple of ALIGN)
    24  8  u64    data length
    32 32  sha256 of every byte from offset 64 to the end of the file
    64  .  header JSON, zero padding up to the data offset
    .   .  data: each tensor starts on an ALIGN boundary, so np.frombuffer views need no copy

Weights are stored in the layout the runtime computes in (NHWC activations, HWIO convolution
weights, (K, M) dense weights), so loading is a view, not a transform.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import limits
from .bundle_schema import HeaderError, validate_header
from .messages import clip, quote

MAGIC = b"\x89WVB\r\n\x1a\n"
FORMAT_VERSION = 1
ALIGN = 64
_PREFIX = struct.Struct("<8sIIQQ32s")  # 64 bytes
assert _PREFIX.size == 64

# Storage types a tensor may have in the file. Quantized storage is dequantized to float32 at load.
STORAGE_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "int8": np.int8,
    "int32": np.int32,
    "int64": np.int64,
}


# The header nests about 6 levels deep. json.loads recurses once per level, and in Pyodide the Wasm stack runs
# out long before Python's recursion limit (a 100,000-deep header was a fatal "Maximum call stack size exceeded",
# killing the interpreter), so the depth is measured without recursing before parsing.
MAX_JSON_DEPTH = 32
# MobileNetV2's header is 57 KB with ~4,300 entries (1,000 of them labels); parsing and checking costs time and
# memory per entry (1,000,000 empty tensors: 44 s and 3.6 GB), so size and entry count are bounded before parsing.
MAX_HEADER_BYTES = 8 << 20
MAX_HEADER_ENTRIES = 50_000  # JSON objects, lists and strings (keys included): room for ImageNet-21k's labels


@dataclass(frozen=True)
class JsonShape:
    depth: int  # how deeply arrays and objects nest
    entries: int  # how many arrays, objects and strings (keys included) there are


def json_shape(text: bytes) -> JsonShape:
    """Nesting depth and entry count of a JSON text without parsing it, in a few bytes of memory per byte of text
    (no Python object per string: a hostile header's millions of strings cost nothing extra)."""
    plain = text.replace(b"\\\\", b"__").replace(b'\\"', b"__")  # escapes gone: every quote left delimits a string
    b = np.frombuffer(plain, np.uint8)
    quotes = b == ord('"')
    outside = ~np.bitwise_xor.accumulate(quotes.view(np.uint8)).view(bool)  # False from an opening quote on
    opening = ((b == ord("[")) | (b == ord("{"))) & outside
    brackets = opening[opening | (((b == ord("]")) | (b == ord("}"))) & outside)]  # in order; True opens
    steps = np.where(brackets, np.int8(1), np.int8(-1))
    depth = int(np.cumsum(steps, dtype=np.int32).max(initial=0))
    return JsonShape(depth, int(np.count_nonzero(quotes)) // 2 + int(np.count_nonzero(brackets)))


class BundleError(ValueError):
    """A model bundle is missing, truncated, corrupt or not a bundle at all. The message is one line of at
    most ``messages.MAX_MESSAGE`` characters, whatever the file contains."""

    def __init__(self, message: str = ""):
        super().__init__(clip(message))


# What a hostile header can make the readers raise besides BundleError; all are reported as a BundleError.
READER_FAILURES = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, ZeroDivisionError,
                   RecursionError, MemoryError)


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    name: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"op": self.op, "name": self.name, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "attrs": dict(self.attrs)}

    @classmethod
    def from_json(cls, d: Mapping) -> "Node":
        return cls(op=d["op"], inputs=list(d["inputs"]), outputs=list(d["outputs"]),
                   name=d.get("name", ""), attrs=dict(d.get("attrs", {})))


@dataclass
class ValueInfo:
    """A graph input or output. ``shape`` uses -1 for a dynamic (batch) dimension."""
    name: str
    shape: list[int]
    dtype: str = "float32"
    layout: str = "NHWC"  # "NHWC" for images, "NC" for vectors

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}

    @classmethod
    def from_json(cls, d: Mapping) -> "ValueInfo":
        return cls(name=d["name"], shape=list(d["shape"]), dtype=d.get("dtype", "float32"),
                   layout=d.get("layout", "NHWC"))


@dataclass
class Bundle:
    """An in-memory model bundle: graph + float32 weights + metadata.

    ``tensors`` always holds float32 (or integer) arrays as the runtime uses them; ``storage``
    says how each is written to disk ("float32", "float16" or "int8"), see ``quantize.py``.
    """
    nodes: list[Node]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    tensors: dict[str, np.ndarray]
    name: str = "model"
    version: str = "0"
    labels: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, str] = field(default_factory=dict)  # tensor name -> storage kind (default float32)
    embedding: str | None = None  # name of the tensor users get from infer(..., embedding=True)
    sha256: str | None = None  # the file's checksum (hex) when read from one: what a custom head names

    @property
    def parameter_count(self) -> int:
        return int(sum(t.size for t in self.tensors.values()))

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts


# --------------------------------------------------------------------------------------------- writing

def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def to_bytes(bundle: Bundle) -> bytes:
    """Serialise a bundle. Tensors are encoded according to ``bundle.storage``."""
    from . import quantize  # local: quantize imports this module

    table: dict[str, dict] = {}
    data = bytearray()
    for name, array in bundle.tensors.items():
        kind = bundle.storage.get(name, str(array.dtype))
        encoded = quantize.encode(array, kind)
        parts = []
        for part_name, raw in encoded["parts"]:
            data.extend(b"\0" * (_align(len(data)) - len(data)))
            parts.append({"name": part_name, "offset": len(data), "nbytes": len(raw)})
            data.extend(raw)
        table[name] = {"dtype": encoded["dtype"], "shape": list(array.shape), "storage": kind,
                       "parts": parts, **encoded.get("meta", {})}
    data = bytes(data)

    header = {
        "format": "wasmvision-bundle",
        "format_version": FORMAT_VERSION,
        "model": {"name": bundle.name, "version": bundle.version, **bundle.metadata},
        "graph": {
            "inputs": [v.to_json() for v in bundle.inputs],
            "outputs": [v.to_json() for v in bundle.outputs],
            "nodes": [n.to_json() for n in bundle.nodes],
            "embedding": bundle.embedding,
        },
        "tensors": table,
        "labels": list(bundle.labels),
        "preprocess": dict(bundle.preprocess),
    }
    header_bytes = json.dumps(header, separators=(",", ":"), sort_keys=False).encode("utf-8")
    data_offset = _align(_PREFIX.size + len(header_bytes))
    body = header_bytes + b"\0" * (data_offset - _PREFIX.size - len(header_bytes)) + data
    digest = hashlib.sha256(body).digest()
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), data_offset, len(data), digest)
    return prefix + body


def save(bundle: Bundle, path: str | Path) -> int:
    """Write ``bundle`` to ``path`` atomically; returns the number of bytes written."""
    return write_atomic(path, to_bytes(bundle))


def write_atomic(path: str | Path, raw: bytes) -> int:
    """A temporary file renamed over ``path``: a reader never sees half a file. Returns the byte count."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(raw)
    tmp.replace(path)
    return len(raw)


# --------------------------------------------------------------------------------------------- reading

def read_header(raw: bytes | memoryview, *, verify: bool = True) -> tuple[dict, memoryview]:
    """Validate the prefix (and checksum) and return (header dict, data section view)."""
    view = memoryview(raw)
    if len(view) < _PREFIX.size:
        raise BundleError(f"not a wasmvision bundle: file is {len(view)} bytes, shorter than the 64-byte prefix")
    magic, version, header_len, data_offset, data_len, digest = _PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        # An ONNX ModelProto starts with field 1 (ir_version) as a varint: tag byte 0x08.
        looks_like_onnx = bytes(view[:1]) == b"\x08"
        hint = " (it looks like an ONNX file: convert it with `python -m wasmvision convert`)" if looks_like_onnx else ""
        raise BundleError(f"not a wasmvision bundle: wrong magic bytes{hint}")
    if version != FORMAT_VERSION:
        raise BundleError(f"unsupported bundle format version {version} (this wasmvision reads {FORMAT_VERSION})")
    if header_len > MAX_HEADER_BYTES:
        raise BundleError(f"bundle header is too large: {header_len:,} bytes, at most {MAX_HEADER_BYTES:,} "
                          "(a real model's header is tens of kilobytes)")
    expected_len = data_offset + data_len
    if len(view) != expected_len:
        raise BundleError(
            f"bundle is truncated or has trailing bytes: {len(view)} bytes, the header says {expected_len}")
    if verify:
        actual = hashlib.sha256(view[_PREFIX.size:]).digest()
        if actual != digest:
            raise BundleError("bundle checksum mismatch: the file is corrupt "
                              f"(sha256 {actual.hex()[:16]}…, expected {digest.hex()[:16]}…)")
    if data_offset < _PREFIX.size + header_len:
        raise BundleError(f"bundle prefix is inconsistent: data offset {data_offset} lies inside the "
                          f"{header_len}-byte header")
    text = bytes(view[_PREFIX.size:_PREFIX.size + header_len])
    shape = json_shape(text)
    if shape.depth > MAX_JSON_DEPTH:
        raise BundleError(f"bundle header is not valid: its JSON is nested too deeply ({shape.depth} levels, "
                          f"at most {MAX_JSON_DEPTH})")
    if shape.entries > MAX_HEADER_ENTRIES:
        raise BundleError(f"bundle header has too many entries: {shape.entries:,} JSON objects, lists and strings, "
                          f"at most {MAX_HEADER_ENTRIES:,} (MobileNetV2's has about 4,300)")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"bundle header is not valid JSON: {exc}") from None
    except RecursionError:
        raise BundleError("bundle header is not valid: its JSON is nested too deeply") from None
    return header, view[data_offset:data_offset + data_len]


def from_bytes(raw: bytes | memoryview, *, verify: bool = True) -> Bundle:
    """Parse a bundle. float32 tensors are zero-copy views into ``raw``; others are decoded once.

    Every failure is a BundleError: the header is checked against the documented schema first
    (bundle_schema.py), and anything the checks did not foresee is still reported as one."""
    header, data = read_header(raw, verify=verify)
    try:
        validate_header(header, len(data))
        b = _from_header(header, data)
        b.sha256 = _PREFIX.unpack_from(raw, 0)[-1].hex()  # the prefix's checksum field
        return b
    except BundleError:
        raise
    except HeaderError as exc:
        raise BundleError(f"bundle header is not valid: {exc}") from None
    except MemoryError:
        raise BundleError("bundle is too large to load: out of memory while decoding its tensors") from None
    except RecursionError:
        raise BundleError("bundle header is not valid: it is nested too deeply") from None
    except READER_FAILURES as exc:
        raise BundleError(f"bundle header is not valid: {type(exc).__name__}: {quote(str(exc), 120)}") from None


def _from_header(header: dict, data: memoryview) -> Bundle:
    from . import quantize

    tensors: dict[str, np.ndarray] = {}
    storage: dict[str, str] = {}
    for name, entry in header["tensors"].items():
        parts = {}
        for p in entry["parts"]:
            parts[p["name"]] = data[p["offset"]:p["offset"] + p["nbytes"]]  # bounds: validate_header
        try:
            tensors[name] = quantize.decode(entry, parts)
        except (ValueError, KeyError) as exc:
            raise BundleError(f"tensor {quote(name)} cannot be decoded: {exc}") from None
        if tensors[name].dtype.kind == "f" and not quantize.all_finite(entry, parts, tensors[name]):
            raise BundleError(f"tensor {quote(name)} contains NaN or infinity: the bundle is corrupt")
        storage[name] = entry.get("storage", entry["dtype"])
    g = header["graph"]
    model = dict(header.get("model", {}))
    return Bundle(
        nodes=[Node.from_json(n) for n in g["nodes"]],
        inputs=[ValueInfo.from_json(v) for v in g["inputs"]],
        outputs=[ValueInfo.from_json(v) for v in g["outputs"]],
        tensors=tensors,
        name=str(model.pop("name", "model")),
        version=str(model.pop("version", "0")),
        labels=list(header.get("labels", [])),
        preprocess=dict(header.get("preprocess", {})),
        metadata=model,
        storage=storage,
        embedding=g.get("embedding"),
    )


def load(path: str | Path, *, verify: bool = True) -> Bundle:
    path = Path(path)
    try:
        raw = limits.read_path(path, limits.BUNDLE)
    except limits.ReadLimitError as exc:
        raise BundleError(f"model bundle {path}: {exc}") from None
    except FileNotFoundError:
        raise BundleError(f"model bundle not found: {path}") from None
    except IsADirectoryError:
        raise BundleError(f"model bundle path is a directory: {path}") from None
    except OSError as exc:
        raise BundleError(f"cannot read model bundle {path}: {exc.strerror or exc}") from None
    return from_bytes(raw, verify=verify)
