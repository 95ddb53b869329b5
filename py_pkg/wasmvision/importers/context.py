"""State shared by the per-operator importer functions: values, constants, layouts, emitted nodes.

Layouts. ONNX image tensors are NCHW; the bundle computes in NHWC. Every runtime value carries its
ONNX ("semantic") shape and a permutation ``perm`` such that the array the runtime stores is
``semantic.transpose(perm)``. Conv outputs are stored NHWC (perm ``NHWC``); everything else keeps
the layout of its input, and an ONNX Transpose only changes ``perm`` (no data moves). A node that
needs a particular layout asks :meth:`ImportContext.to_layout`, which inserts a ``transpose`` (or
a free ``reshape`` when only size-1 axes move) once and caches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import bundle
from .errors import UnsupportedOperatorError
from .onnx_proto import Node as OnnxNode

NHWC = (0, 2, 3, 1)  # stored = NCHW-semantic.transpose(NHWC)


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def compose(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """x.transpose(a).transpose(b) == x.transpose(compose(a, b))."""
    return tuple(a[i] for i in b)


def same_order(shape: Sequence[int], perm_a: Sequence[int], perm_b: Sequence[int]) -> bool:
    """True when both layouts list the elements in the same row-major order (only size-1 axes move)."""
    def big(perm):
        return [p for p in perm if shape[p] != 1]
    return big(perm_a) == big(perm_b)


@dataclass(frozen=True)
class Value:
    """A runtime tensor: bundle tensor ``name`` holds ``semantic.transpose(perm)``."""
    name: str
    shape: tuple[int, ...]  # ONNX shape; -1 marks the (dynamic) batch dimension
    perm: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[p] for p in self.perm)

    def stored_axis(self, axis: int) -> int:
        """Position in the stored array of ONNX axis ``axis``."""
        return self.perm.index(axis % self.rank)

    @property
    def is_plain(self) -> bool:
        return self.perm == identity(self.rank)


def reshape_attr(stored_shape: Sequence[int]) -> list[int]:
    """The bundle `reshape` shape: the first dimension is the batch, written -1."""
    return [-1] + [int(d) for d in stored_shape[1:]]


class ImportContext:
    def __init__(self, opset: int, supported: list[str]):
        self.opset = opset
        self.supported = supported  # the op types the importer translates, named in every refusal
        self.nodes: list[bundle.Node] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.values: dict[str, Value] = {}
        self.current: OnnxNode | None = None
        self._names: set[str] = set()
        self._layouts: dict[tuple, str] = {}

    # ----------------------------------------------------------------------------- errors
    def fail(self, reason: str) -> UnsupportedOperatorError:
        node = self.current
        return UnsupportedOperatorError(self.node_name(), node.op_type if node else "?", reason, self.supported)

    def node_name(self) -> str:
        node = self.current
        if node is None:
            return ""
        return node.name or (node.outputs[0] if node.outputs else node.op_type)

    # ----------------------------------------------------------------------------- names
    def unique(self, hint: str) -> str:
        base = re.sub(r"\s+", "_", hint) or "t"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._names.add(name)

    # ----------------------------------------------------------------------------- reading inputs
    def present(self, node: OnnxNode, index: int) -> bool:
        return index < len(node.inputs) and node.inputs[index] != ""

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, name: str, what: str = "this input") -> np.ndarray:
        if name not in self.consts:
            raise self.fail(f"{what} ({name!r}) must be a constant (an initializer or Constant node)")
        return self.consts[name]

    def optional_const(self, node: OnnxNode, index: int, what: str) -> np.ndarray | None:
        return self.const(node.inputs[index], what) if self.present(node, index) else None

    def value(self, name: str) -> Value:
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            raise self.fail(f"input {name!r} is a constant where wasmvision needs a computed tensor")
        raise self.fail(f"input {name!r} is not produced by any earlier node")

    def all_const(self, node: OnnxNode) -> bool:
        return all(x == "" or x in self.consts for x in node.inputs)

    # ----------------------------------------------------------------------------- recording outputs
    def set_const(self, onnx_name: str, array: np.ndarray) -> None:
        self.consts[onnx_name] = np.asarray(array)

    def set_value(self, onnx_name: str, value: Value) -> None:
        self.values[onnx_name] = value

    def add_weight(self, array: np.ndarray, hint: str) -> str:
        name = self.unique(hint)
        self.tensors[name] = np.ascontiguousarray(array, dtype=np.float32)
        return name

    def emit(self, op: str, inputs: Sequence[str], attrs: dict[str, Any] | None = None, *,
             out: str, shape: Sequence[int], perm: Sequence[int]) -> Value:
        """Append a bundle node producing one tensor; ``out`` is the ONNX name (or a hint)."""
        name = self.unique(out)
        self.nodes.append(bundle.Node(op=op, inputs=list(inputs), outputs=[name], name=self.node_name(),
                                      attrs=dict(attrs or {})))
        return Value(name, tuple(int(d) for d in shape), tuple(perm))

    # ----------------------------------------------------------------------------- layouts
    def to_layout(self, value: Value, perm: Sequence[int]) -> Value:
        perm = tuple(perm)
        if value.perm == perm:
            return value
        target = Value("", value.shape, perm)
        hint = f"{value.name}/{'nhwc' if perm == NHWC else 'nchw' if perm == identity(4) else 'perm'}"
        # Cached by the data movement itself: Transpose aliases share a stored tensor but not a
        # semantic shape, so (name, target perm) alone would be ambiguous.
        if same_order(value.shape, value.perm, perm) and value.perm[0] == 0 and perm[0] == 0:
            op, attrs = "reshape", {"shape": reshape_attr(target.stored_shape)}
        else:
            op, attrs = "transpose", {"perm": list(compose(inverse(value.perm), perm))}
        key = (value.name, op, tuple(attrs["shape" if op == "reshape" else "perm"]))
        if key not in self._layouts:
            self._layouts[key] = self.emit(op, [value.name], attrs, out=hint, shape=value.shape, perm=perm).name
        return Value(self._layouts[key], value.shape, perm)

    def plain(self, value: Value) -> Value:
        return self.to_layout(value, identity(value.rank))

    def nhwc(self, value: Value) -> Value:
        if value.rank != 4:
            raise self.fail(f"expects a 4-D (N, C, H, W) input, got shape {list(value.shape)}")
        return self.to_layout(value, NHWC)

    def const_for(self, array: np.ndarray, like: Value) -> np.ndarray:
        """An ONNX-broadcasting constant re-laid for a runtime operand stored with ``like.perm``.

        Leading size-1 axes are dropped afterwards (numpy broadcasting adds them back), so a
        per-channel constant (C, 1, 1) against an NHWC tensor becomes (C,)."""
        a = np.asarray(array)
        if a.ndim > like.rank:
            raise self.fail(f"constant of shape {list(a.shape)} broadcasts beyond the {like.rank}-D input")
        a = a.reshape((1,) * (like.rank - a.ndim) + a.shape).transpose(like.perm)
        while a.ndim > 1 and a.shape[0] == 1:
            a = a.reshape(a.shape[1:])
        return a
