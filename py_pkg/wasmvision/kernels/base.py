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

import os
import sys
from typing import Any, Callable, Mapping, Sequence

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
    return [tuple(shape)] if (spec or {}).get("kind") == "hardswish" else []


def make_activation(spec: Mapping | None, y: np.ndarray, scratch: Sequence[np.ndarray] = ()) -> Step | None:
    """A callable applying the fused activation to ``y`` in place, or None for "none"."""
    spec = spec or {}
    kind = spec.get("kind", "none")
    if kind == "none":
        return None
    if kind == "relu":
        return relu_into(y, y)
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

        unit = relu_into(y, y, 1.0)

        def hardsigmoid():
            np.multiply(y, alpha, out=y)
            np.add(y, beta, out=y)
            unit()
        return hardsigmoid
    if kind == "hardswish":
        t = scratch[0]
        sixth = np.float32(1.0 / 6.0)

        unit = relu_into(t, t, 1.0)

        def hardswish():
            # ONNX HardSwish: x * max(0, min(1, x/6 + 1/2))
            np.multiply(y, sixth, out=t)
            np.add(t, 0.5, out=t)
            unit()
            np.multiply(y, t, out=y)
        return hardswish
    raise KernelError(f"unknown activation {kind!r} (supported: {', '.join(ACTIVATIONS)})")


def relu_into(x: np.ndarray, y: np.ndarray, hi: float = np.inf) -> Step:
    """y = clip(x, 0, hi) for hi >= 0, branch-free, as int32 max/min on the float32 bit patterns.

    Why: numpy's float maximum branches on every element (NaN checks); on conv outputs, whose
    signs are ~random, it mispredicts half the time. Non-negative floats order like their bit
    patterns read as int32, and every negative float (sign bit set) is a negative int32, so
    ``max(bits, 0)`` is relu and ``min(bits, bits(hi))`` the upper clip; integer max/min compile
    to selects. Measured in Pyodide on 112x112x96 float32 of random sign: float maximum + minimum
    12.9 ms, np.clip 7.7 ms, int32 max + min 2.1 ms. Same results as np.clip for every non-NaN
    input (-0.0 becomes +0.0); a NaN becomes 0 or ``hi``. With both bounds it is one integer
    ``np.clip`` pass: 3x faster than maximum + minimum (Pyodide, 12544x96: 0.65 vs 1.96 ms)."""
    xi, yi = x.view(np.int32), y.view(np.int32)
    zero = np.int32(0)
    if hi == np.inf:
        maximum = np.maximum
        return lambda: maximum(xi, zero, out=yi)
    top = np.float32(hi).view(np.int32)
    clip = np.clip
    return lambda: clip(xi, zero, top, out=yi)


def clip_into(x: np.ndarray, y: np.ndarray, lo, hi) -> Step:
    """y = clip(x, lo, hi); from 0 to a non-negative bound (relu, ReLU6) via relu_into."""
    if lo == 0 and hi >= 0:
        return relu_into(x, y, hi)
    if lo == -np.inf:
        return lambda: np.minimum(x, hi, out=y)
    if hi == np.inf:
        return lambda: np.maximum(x, lo, out=y)
    return lambda: np.clip(x, lo, hi, out=y)


def chain(*steps: Step | None) -> Step:
    steps = [s for s in steps if s is not None]
    if len(steps) == 1:
        return steps[0]

    def run():
        for s in steps:
            s()
    run.parts = steps  # Plan.profile times the main op and its bias/activation separately
    return run
