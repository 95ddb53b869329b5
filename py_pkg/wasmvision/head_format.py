"""The custom head file (``.wvh``): a person's labels and a linear head on one base model's embeddings.

Layout (all integers little-endian; docs/head-format.md has the full description):

    0   8  magic  b"\\x89WVH\\r\\n\\x1a\\n"  (PNG-style, like the bundle: catches text-mode transfers)
    8   4  u32    format version (FORMAT_VERSION)
    12  4  u32    header length in bytes (UTF-8 JSON)
    16 32  sha256 of every byte from offset 48 to the end of the file
    48  .  header JSON, then float32 data: center (D), weight (L x D), bias (L)

The data's order and size follow from the header (``dim`` and the number of labels), so the file holds no
offsets a hostile writer could point elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import limits
from .bundle import BundleError, json_shape, write_atomic
from .messages import clip, quote

MAGIC = b"\x89WVH\r\n\x1a\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII32s")  # 48 bytes
MAX_HEADER_BYTES = 1 << 20  # a header is labels and a few numbers: 1 MiB holds 10,000 long labels
MAX_LABELS = 10_000
MAX_LABEL_CHARS = 200
MAX_DIM = 1 << 16
METHODS = ("ncm", "softmax")


class HeadError(BundleError):
    """A head file that cannot be used: malformed, or made for another base model (``kind`` says which)."""

    def __init__(self, message: str = "", kind: str = "invalid-head"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class BaseModel:
    """The bundle a head was trained on: its sha256 (the bundle's own checksum) is what must match."""
    sha256: str
    name: str
    version: str
    embedding: str
    dim: int


@dataclass
class Head:
    """logits = scale * normalize(x - center) @ weight.T + bias, for a base model's embedding x."""
    base: BaseModel
    labels: list[str]
    method: str
    center: np.ndarray  # (D,) float32
    weight: np.ndarray  # (L, D) float32
    bias: np.ndarray  # (L,) float32
    scale: float = 1.0
    name: str = "custom"
    examples: dict[str, int] = field(default_factory=dict)  # label -> how many examples trained it
    accuracy: float | None = None  # the cross-validated estimate at training time

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) or (D,) embeddings -> (N, L) float64 logits."""
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float64)) - self.center
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return self.scale * (x @ self.weight.T.astype(np.float64)) + self.bias


def to_bytes(head: Head) -> bytes:
    header = {
        "base": {"sha256": head.base.sha256, "name": head.base.name, "version": head.base.version,
                 "embedding": head.base.embedding, "dim": head.base.dim},
        "name": head.name, "labels": list(head.labels), "method": head.method, "scale": float(head.scale),
        "examples": {k: int(v) for k, v in head.examples.items()},
        "accuracy": None if head.accuracy is None else float(head.accuracy),
    }
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    data = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in (head.center, head.weight, head.bias))
    body = text + data
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text), hashlib.sha256(body).digest()) + body


def save(head: Head, path: str | Path) -> int:
    """Write atomically; returns the byte count."""
    return write_atomic(path, to_bytes(head))


def from_bytes(raw: bytes | memoryview) -> Head:
    """Parse and check a head; every failure is a HeadError with a one-line message."""
    view = memoryview(raw)
    if len(view) < _PREFIX.size:
        raise HeadError(f"not a wasmvision head: {len(view)} bytes, shorter than the {_PREFIX.size}-byte prefix")
    if len(view) > limits.HEAD.max_bytes:
        raise HeadError(f"head file is too large: {len(view):,} bytes (at most {limits.HEAD.max_bytes:,})")
    magic, version, header_len, digest = _PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        hint = " (it is a model bundle: pass it as the model, not the head)" if bytes(view[:8]) == b"\x89WVB\r\n\x1a\n" else ""
        raise HeadError(f"not a wasmvision head: wrong magic bytes{hint}")
    if version != FORMAT_VERSION:
        raise HeadError(f"unsupported head format version {version} (this wasmvision reads {FORMAT_VERSION})")
    if hashlib.sha256(view[_PREFIX.size:]).digest() != digest:
        raise HeadError("head checksum mismatch: the file is corrupt or truncated")
    if header_len > min(MAX_HEADER_BYTES, len(view) - _PREFIX.size):
        raise HeadError(f"head header length {header_len:,} is out of range")
    text = bytes(view[_PREFIX.size:_PREFIX.size + header_len])
    shape = json_shape(text)
    if shape.depth > 4 or shape.entries > 2 * MAX_LABELS + 64:
        raise HeadError("head header is not valid: its JSON is nested too deeply or has too many entries")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeadError(clip(f"head header is not valid JSON: {exc}")) from None
    base, labels, method, scale = _checked_header(header)
    data = view[_PREFIX.size + header_len:]
    n, d = len(labels), base.dim
    expected = 4 * (d + n * d + n)
    if len(data) != expected:
        raise HeadError(f"head data is {len(data):,} bytes; {n} labels of {d} features need {expected:,}")
    floats = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.isfinite(floats).all():
        raise HeadError("head data contains NaN or infinity: the file is corrupt")
    examples = header.get("examples") or {}
    accuracy = header.get("accuracy")
    return Head(base=base, labels=labels, method=method, center=floats[:d], weight=floats[d:d + n * d].reshape(n, d),
                bias=floats[d + n * d:], scale=scale, name=_string(header.get("name", "custom"), "name"),
                examples={str(k): int(v) for k, v in examples.items() if isinstance(v, int)} if isinstance(examples, dict) else {},
                accuracy=float(accuracy) if isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1 else None)


def load(path: str | Path) -> Head:
    path = Path(path)
    try:
        raw = limits.read_path(path, limits.HEAD)
    except limits.ReadLimitError as exc:
        raise HeadError(f"head file {path}: {exc}") from None
    except FileNotFoundError:
        raise HeadError(f"head file not found: {path}") from None
    except OSError as exc:
        raise HeadError(clip(f"cannot read head file {path}: {exc.strerror or exc}")) from None
    return from_bytes(raw)


def _checked_header(header: Any) -> tuple[BaseModel, list[str], str, float]:
    if not isinstance(header, dict):
        raise HeadError("head header is not valid: not a JSON object")
    base = header.get("base")
    if not isinstance(base, dict):
        raise HeadError("head header is not valid: no base model")
    sha = base.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise HeadError("head header is not valid: base.sha256 must be 64 lowercase hex digits")
    dim = base.get("dim")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise HeadError(f"head header is not valid: base.dim must be an integer from 1 to {MAX_DIM}")
    labels = header.get("labels")
    if not isinstance(labels, list) or not 2 <= len(labels) <= MAX_LABELS:
        raise HeadError(f"head header is not valid: labels must be a list of 2 to {MAX_LABELS:,} names")
    labels = [_string(x, "label") for x in labels]
    if any(not x.strip() for x in labels):
        raise HeadError("head header is not valid: a label is empty")
    if len(set(labels)) != len(labels):
        raise HeadError("head header is not valid: labels repeat")
    method = header.get("method")
    if method not in METHODS:
        raise HeadError(f"head header is not valid: method {quote(method)} is not one of {', '.join(METHODS)}")
    scale = header.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e6:
        raise HeadError("head header is not valid: scale must be a positive number")
    model = BaseModel(sha256=sha, name=_string(base.get("name", ""), "base.name"),
                      version=_string(base.get("version", ""), "base.version"),
                      embedding=_string(base.get("embedding", ""), "base.embedding"), dim=dim)
    return model, labels, method, float(scale)


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise HeadError(f"head header is not valid: {what} must be a string of at most {MAX_LABEL_CHARS} characters")
    return value
