"""Validation of a bundle's JSON header against docs/bundle-format.md, before anything is built from it.

A header is data from a file: every field a reader touches is checked for type, sign and size here, so a
damaged or forged bundle is refused with a ``BundleError`` naming the field, instead of a TypeError, a
KeyError or a negative offset that reads other bytes. Sizes are bounded so nothing absurd is allocated."""

from __future__ import annotations

import math
import numbers
from typing import Any

from .messages import quote

STORAGE_DTYPES = ("float32", "float16", "int8", "int32", "int64")
MAX_DIM = 1 << 24  # one tensor axis (16 M): above any real weight or image axis
MAX_TENSOR_ELEMENTS = 1 << 28  # 256 M elements (1 GiB in float32): more than fits in a browser's Wasm heap
MAX_RANK = 8


class HeaderError(ValueError):
    """One field of the header is wrong; bundle.py turns it into a BundleError."""


def _is_int(v: Any) -> bool:
    # A plain int first: the ABC check is ~10x slower in Pyodide, and a header holds thousands of ints.
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _need(cond: bool, field: str, what: str, value: Any = None) -> None:
    if not cond:
        shown = "" if value is None else f", got {quote(value)}"
        raise HeaderError(f"{field} must be {what}{shown}")


def _dict(v: Any, field: str) -> dict:
    _need(v is not None, field, "present (a JSON object)")
    _need(isinstance(v, dict), field, "a JSON object", type(v).__name__)
    return v


def _list(v: Any, field: str) -> list:
    _need(v is not None, field, "present (a JSON list)")
    _need(isinstance(v, list), field, "a JSON list", type(v).__name__)
    return v


def _str(v: Any, field: str) -> str:
    _need(isinstance(v, str), field, "a string", v)
    return v


def _str_list(v: Any, field: str) -> list:
    for i, s in enumerate(_list(v, field)):
        _str(s, f"{field}[{i}]")
    return v


def _shape(v: Any, field: str, *, dynamic: bool) -> list:
    """A tensor shape: non-negative ints (value infos may also use -1 / null for a dynamic axis)."""
    dims = _list(v, field)
    _need(len(dims) <= MAX_RANK, field, f"at most {MAX_RANK} dimensions", len(dims))
    for i, d in enumerate(dims):
        if dynamic and (d is None or d == -1):
            continue
        _need(_is_int(d) and 0 <= d <= MAX_DIM, f"{field}[{i}]", f"an integer in 0..{MAX_DIM}", d)
    return dims


def _value_info(v: Any, field: str) -> None:
    v = _dict(v, field)
    _str(v.get("name"), f"{field}.name")
    _shape(v.get("shape"), f"{field}.shape", dynamic=True)
    for key in ("dtype", "layout"):
        if key in v:
            _str(v[key], f"{field}.{key}")


def _tensor(name: str, entry: Any, data_len: int) -> None:
    field = f"tensors[{quote(name)}]"
    entry = _dict(entry, field)
    _need(entry.get("dtype") in STORAGE_DTYPES, f"{field}.dtype", f"one of {', '.join(STORAGE_DTYPES)}",
          entry.get("dtype"))
    shape = _shape(entry.get("shape"), f"{field}.shape", dynamic=False)
    count = math.prod(shape)
    _need(count <= MAX_TENSOR_ELEMENTS, f"{field}.shape", f"at most {MAX_TENSOR_ELEMENTS:,} elements", shape)
    if "storage" in entry:
        _str(entry["storage"], f"{field}.storage")
    parts = _list(entry.get("parts"), f"{field}.parts")
    _need(len(parts) >= 1, f"{field}.parts", "a non-empty list")
    for i, p in enumerate(parts):
        pf = f"{field}.parts[{i}]"
        p = _dict(p, pf)
        _str(p.get("name"), f"{pf}.name")
        for key in ("offset", "nbytes"):
            _need(_is_int(p.get(key)) and p[key] >= 0, f"{pf}.{key}", "a non-negative integer", p.get(key))
        _need(p["offset"] + p["nbytes"] <= data_len, pf, f"inside the {data_len}-byte data section",
              [p["offset"], p["nbytes"]])


def _node(n: Any, field: str) -> None:
    n = _dict(n, field)
    _str(n.get("op"), f"{field}.op")
    _str_list(n.get("inputs"), f"{field}.inputs")
    _str_list(n.get("outputs"), f"{field}.outputs")
    if "name" in n:
        _str(n["name"], f"{field}.name")
    if "attrs" in n:
        check_attrs(n["op"], n["attrs"], f"{field}.attrs")


_WINDOW_OPS = ("conv2d", "max_pool", "avg_pool")


def _ints(v: Any, field: str, n: int, low: int) -> None:
    _need(isinstance(v, (list, tuple)) and len(v) == n and all(_is_int(x) and low <= x <= MAX_DIM for x in v),
          field, f"a list of {n} integers in {low}..{MAX_DIM}", v)


def _number(v: Any, field: str) -> None:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    _need(ok, field, "a finite number", v)


def check_attrs(op: str, attrs: Any, field: str = "attrs") -> None:
    """The window and activation attributes a kernel divides by or loops over: a stride, kernel, dilation or group
    count of 0 (ZeroDivisionError, empty windows) or a negative pad is refused here, with the field named."""
    _dict(attrs, field)
    if op in _WINDOW_OPS:
        if op != "conv2d" or "kernel" in attrs:
            _ints(attrs.get("kernel"), f"{field}.kernel", 2, 1)
        for key in ("strides", "dilations"):
            if key in attrs:
                _ints(attrs[key], f"{field}.{key}", 2, 1)
        if "pads" in attrs:
            _ints(attrs["pads"], f"{field}.pads", 4, 0)
    if "groups" in attrs:
        _need(_is_int(attrs["groups"]) and 1 <= attrs["groups"] <= MAX_DIM, f"{field}.groups",
              "a positive integer", attrs["groups"])
    act = attrs.get("activation")
    if act is not None:
        _dict(act, f"{field}.activation")
        _str(act.get("kind", "none"), f"{field}.activation.kind")
        for key in ("min", "max", "alpha", "beta"):
            if act.get(key) is not None:
                _number(act[key], f"{field}.activation.{key}")


def validate_header(header: Any, data_len: int) -> dict:
    """Raise HeaderError naming the first wrong field; return ``header`` when it has the documented shape."""
    header = _dict(header, "header")
    if "format" in header:
        _need(header["format"] == "wasmvision-bundle", "format", '"wasmvision-bundle"', header["format"])
    if "model" in header:
        _dict(header["model"], "model")
    graph = _dict(header.get("graph"), "graph")
    for key in ("inputs", "outputs"):
        for i, v in enumerate(_list(graph.get(key), f"graph.{key}")):
            _value_info(v, f"graph.{key}[{i}]")
    for i, n in enumerate(_list(graph.get("nodes"), "graph.nodes")):
        _node(n, f"graph.nodes[{i}]")
    if graph.get("embedding") is not None:
        _str(graph["embedding"], "graph.embedding")
    for name, entry in _dict(header.get("tensors"), "tensors").items():
        _tensor(name, entry, data_len)
    if "labels" in header:
        _str_list(header["labels"], "labels")
    if "preprocess" in header:
        _dict(header["preprocess"], "preprocess")  # values: preprocess.resolve_spec, at load
    return header
