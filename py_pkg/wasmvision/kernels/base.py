"""The kernel protocol and the op registry.

Every op of docs/bundle-format.md is one small class registered by name (like onnx's reference
evaluator). A kernel is used in two steps so the hot path does no Python-level bookkeeping:

* ``infer(shapes)`` gives the output shapes for the input shapes (once per plan), and
  ``scratch(shapes)`` the temporary buffers it wants (shared by all nodes of a plan);
* ``prepare(inputs, outputs, scratch)`` binds the concrete arrays (plan buffers, constants,
  scratch views) and returns a zero-argument callable that writes the outputs in place.

``Op.compute(*arrays)`` wraps both steps for use on its own (tests, one-off calls).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import os
import sys

import numpy as np

# Pyodide's numpy has no BLAS: there np.einsum's own loops are ~10x faster than ``@``. Natively
# ``@`` is OpenBLAS and far faster. WASMVISION_CONTRACTION=einsum|matmul overrides (tests use it).
CONTRACTION = os.environ.get("WASMVISION_CONTRACTION") or ("einsum" if sys.platform == "emscripten" else "matmul")


def contract(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b for 2-D float32 arrays, with the faster primitive of this platform."""
    if CONTRACTION == "einsum":
        np.einsum("pk,kd->pd", a, b, out=out)
    else:
        np.matmul(a, b, out=out)


Shape = tuple[int, ...]
Step = Callable[[], None]

OPS: dict[str, type["Op"]] = {}


class KernelError(ValueError):
    """A node cannot be executed: unknown op, bad attributes or incompatible shapes."""


def register(name: str):
    def deco(cls):
        cls.op_name = name
        OPS[name] = cls
        return cls
    return deco


def get_op(name: str, attrs: Mapping[str, Any] | None = None, *, node: str = "") -> "Op":
    try:
        cls = OPS[name]
    except KeyError:
        raise KernelError(f"node {node!r}: unknown op {name!r} (supported: {', '.join(sorted(OPS))})") from None
    return cls(dict(attrs or {}), node=node)


class Op:
    op_name = "?"
    # Inputs whose buffer the output may take over when the input dies at this node (same shape).
    inplace_inputs: tuple[int, ...] = ()

    def __init__(self, attrs: dict[str, Any], node: str = ""):
        self.attrs = attrs
        self.node = node

    def error(self, message: str) -> KernelError:
        return KernelError(f"{self.op_name} node {self.node!r}: {message}")

    def infer(self, shapes: Sequence[Shape]) -> list[Shape]:
        raise NotImplementedError

    def scratch(self, shapes: Sequence[Shape]) -> list[Shape]:
        return []

    def prepare(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                scratch: Sequence[np.ndarray]) -> Step:
        raise NotImplementedError

    def compute(self, *arrays: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Allocate, prepare and run once; returns the output (or the list of outputs)."""
        arrays = [np.ascontiguousarray(a, dtype=np.float32) if a is not None else None for a in arrays]
        shapes = [a.shape if a is not None else None for a in arrays]
        outs = [np.empty(s, np.float32) for s in self.infer(shapes)]
        scratch = [np.empty(s, np.float32) for s in self.scratch(shapes)]
        self.prepare(arrays, outs, scratch)()
        return outs[0] if len(outs) == 1 else outs


# --------------------------------------------------------------------------------------------- activations

ACTIVATIONS = ("none", "relu", "clip", "hardswish", "hardsigmoid", "sigmoid")


def activation_scratch(spec: Mapping | None, shape: Shape) -> list[Shape]:
    """hardswish needs one temporary the size of the output; the others run in place."""
    kind = (spec or {}).get("kind", "none")
    return [tuple(shape)] if kind == "hardswish" else []


def make_activation(spec: Mapping | None, y: np.ndarray, scratch: Sequence[np.ndarray] = ()) -> Step | None:
    """A callable applying the fused activation to ``y`` in place, or None for "none"."""
    spec = spec or {}
    kind = spec.get("kind", "none")
    if kind == "none":
        return None
    if kind == "relu":
        return lambda: np.maximum(y, 0.0, out=y)
    if kind == "clip":
        lo = spec.get("min")
        hi = spec.get("max")
        lo = -np.inf if lo is None else np.float32(lo)
        hi = np.inf if hi is None else np.float32(hi)
        return clip_into(y, y, lo, hi)
    if kind == "sigmoid":
        # 0.5 * tanh(x / 2) + 0.5 is the logistic function without exp overflow for large |x|.
        def sigmoid():
            np.multiply(y, 0.5, out=y)
            np.tanh(y, out=y)
            np.multiply(y, 0.5, out=y)
            np.add(y, 0.5, out=y)
        return sigmoid
    if kind == "hardsigmoid":
        alpha = np.float32(spec.get("alpha", 0.2))
        beta = np.float32(spec.get("beta", 0.5))

        def hardsigmoid():
            np.multiply(y, alpha, out=y)
            np.add(y, beta, out=y)
            np.maximum(y, 0.0, out=y)
            np.minimum(y, 1.0, out=y)
        return hardsigmoid
    if kind == "hardswish":
        t = scratch[0]
        sixth = np.float32(1.0 / 6.0)

        def hardswish():
            # ONNX HardSwish: x * max(0, min(1, x/6 + 1/2))
            np.multiply(y, sixth, out=t)
            np.add(t, 0.5, out=t)
            np.maximum(t, 0.0, out=t)
            np.minimum(t, 1.0, out=t)
            np.multiply(y, t, out=y)
        return hardswish
    raise KernelError(f"unknown activation {kind!r} (supported: {', '.join(ACTIVATIONS)})")


def clip_into(x: np.ndarray, y: np.ndarray, lo, hi) -> Step:
    """y = clip(x, lo, hi). np.clip is ~6x slower than maximum + minimum in Pyodide's numpy 2.0
    (measured: 6.1 vs 0.9 ms on 112x112x96 float32), so ReLU6 uses the two ufuncs."""
    maximum, minimum = np.maximum, np.minimum
    if lo == -np.inf:
        return lambda: minimum(x, hi, out=y)
    if hi == np.inf:
        return lambda: maximum(x, lo, out=y)

    def clip():
        maximum(x, lo, out=y)
        minimum(y, hi, out=y)
    return clip


def chain(*steps: Step | None) -> Step:
    steps = [s for s in steps if s is not None]
    if len(steps) == 1:
        return steps[0]

    def run():
        for s in steps:
            s()
    run.parts = steps  # Plan.profile times the main op and its bias/activation separately
    return run
