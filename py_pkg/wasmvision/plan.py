"""Compile a bundle's graph, for one input shape, into a flat list of prepared kernel calls.

Done once per (input shape, requested outputs), then cached:
* shape inference for every tensor;
* liveness: each intermediate buffer is allocated once and handed to a later tensor as soon as
  the tensor it held is dead (best fit by size; elementwise ops may take over a dying input);
* one scratch arena shared by all nodes (scratch only lives during its own node);
* every kernel bound to its concrete input/output/scratch arrays, so running the plan is a loop
  of zero-argument calls that write into preallocated buffers.

With ``kernels`` (a loaded SIMD library, see wasmvision.simd) each node the library covers is bound
to a SIMD kernel instead (same buffers, same scratch); every other node runs in numpy.

A plan owns its buffers, so one plan must not run concurrently with itself (the browser worker
and the CLI are single-threaded).
"""

from __future__ import annotations

import math
import time
from typing import Iterable, Sequence

import numpy as np

from .bundle import Bundle, BundleError
from .bundle_schema import HeaderError, check_attrs
from .kernels import KernelError, get_op
from .messages import quote
from .plan_fusion import fuse

_ALIGN = 16  # float32 elements (64 bytes) between scratch views
# The most one plan may allocate (activation buffers + scratch arena), checked before anything is allocated.
# MobileNetV2 at 224x224 needs 12.8 MiB per image (8 MiB of buffers, 4.8 MiB of scratch; 410 MiB for a batch of
# 32); a browser's Wasm heap tops out at 2 GB (4 GB at best) and holds up to three models, so a 1.4 KB model
# declaring a 1x3x4000x4000 input (~2.6 GB of plan) must be refused, not allowed to exhaust the heap and break
# every later call.
MAX_PLAN_BYTES = 512 * 1024 * 1024


class PlanError(BundleError):
    """The graph cannot be planned: unknown op, undefined tensor, shape mismatch."""


class Plan:
    def __init__(self, bundle: Bundle, input_shape: Sequence[int], targets: Sequence[str] | None = None,
                 kernels=None):
        self.kernels = kernels
        if len(bundle.inputs) != 1:
            raise PlanError(f"the runtime supports graphs with one input, this one has {len(bundle.inputs)}")
        self.input_name = bundle.inputs[0].name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.targets = list(targets or [o.name for o in bundle.outputs])
        nodes = self._needed_nodes(bundle, self.targets)
        ops = []
        for n in nodes:
            try:
                check_attrs(n.op, n.attrs, f"node {quote(n.name)} ({n.op}) attrs")  # bundles built in memory too
                ops.append(get_op(n.op, n.attrs, node=n.name))
            except (KernelError, HeaderError) as exc:
                raise PlanError(str(exc)) from None
        shapes = self._infer_shapes(bundle, nodes, ops)
        self.shapes = shapes
        if kernels is not None:  # the SIMD engine runs some pairs of nodes as one step (plan_fusion.py)
            nodes, ops = fuse(nodes, ops, shapes, set(self.targets))
        self.nodes = nodes  # per step, the node it runs (a node of plan_fusion.FUSED_OPS for a fused pair)
        scratch_shapes = self._scratch_shapes(nodes, ops, shapes)
        buffers = self._allocate(bundle, nodes, ops, shapes, _arena_elements(scratch_shapes))
        self.input_buffer = buffers[self.input_name]
        self.outputs = [buffers[t] if t in buffers else bundle.tensors[t] for t in self.targets]
        self.steps, self.labels = self._prepare(bundle, nodes, ops, shapes, buffers, scratch_shapes)

    # ------------------------------------------------------------------------------------------ compile
    def _needed_nodes(self, bundle, targets):
        producer = {}
        for i, n in enumerate(bundle.nodes):
            for o in n.outputs:
                producer[o] = i
        known = set(bundle.tensors) | {self.input_name}
        needed, stack = set(), list(targets)
        while stack:
            t = stack.pop()
            if t in producer:
                if producer[t] not in needed:
                    needed.add(producer[t])
                    stack.extend(x for x in bundle.nodes[producer[t]].inputs if x)
            elif t not in known:
                raise PlanError(f"tensor {quote(t)} is used but never produced")
        order = sorted(needed)
        defined = set(known)
        for i in order:  # the format stores nodes in execution order; check it
            n = bundle.nodes[i]
            missing = [x for x in n.inputs if x and x not in defined]
            if missing:
                raise PlanError(f"node {quote(n.name)} ({n.op}) reads {missing} before they are produced")
            defined.update(n.outputs)
        return [bundle.nodes[i] for i in order]

    def _infer_shapes(self, bundle, nodes, ops):
        declared = bundle.inputs[0].shape
        if len(declared) != len(self.input_shape) or any(
                d not in (-1, None) and d != s for d, s in zip(declared, self.input_shape)):
            raise PlanError(f"input shape {self.input_shape} does not match the model's {tuple(declared)}")
        shapes = {name: tuple(t.shape) for name, t in bundle.tensors.items()}
        shapes[self.input_name] = self.input_shape
        for n, op in zip(nodes, ops):
            try:
                outs = op.infer([shapes[x] if x else None for x in n.inputs])
            except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
                raise PlanError(f"node {quote(n.name)} ({n.op}): {exc}") from None
            if len(outs) != len(n.outputs):
                raise PlanError(f"node {quote(n.name)} ({n.op}) has {len(n.outputs)} outputs, expected {len(outs)}")
            for name, s in zip(n.outputs, outs):
                shapes[name] = tuple(int(d) for d in s)
                if any(d < 0 for d in shapes[name]):
                    raise PlanError(f"node {quote(n.name)} ({n.op}) gives {quote(name)} a negative dimension: {shapes[name]}")
        return shapes

    def _allocate(self, bundle, nodes, ops, shapes, scratch_elements: int):
        """Assign every non-constant tensor a slot; slots are reused once their tensor is dead."""
        consts = set(bundle.tensors)
        keep = set(self.targets)
        last_use = {}
        for i, n in enumerate(nodes):
            for x in n.inputs:
                if x and x not in consts:
                    last_use[x] = i
        slot_of: dict[str, int] = {}
        capacity: list[int] = []  # elements per slot
        free: list[int] = []

        def take(size: int) -> int:
            fits = [s for s in free if capacity[s] >= size]
            if fits:
                s = min(fits, key=lambda k: capacity[k])
            elif free:
                s = max(free, key=lambda k: capacity[k])
                capacity[s] = size
            else:
                capacity.append(size)
                return len(capacity) - 1
            free.remove(s)
            return s

        slot_of[self.input_name] = take(math.prod(self.input_shape))
        if self.input_name not in last_use and self.input_name not in keep:
            free.append(slot_of[self.input_name])
        for i, (n, op) in enumerate(zip(nodes, ops)):
            dying = [x for x in dict.fromkeys(n.inputs) if x and x not in consts and x not in keep
                     and last_use.get(x) == i]
            for k, out in enumerate(n.outputs):
                slot = None
                if k == 0:
                    for j in op.inplace_inputs:
                        x = n.inputs[j] if j < len(n.inputs) else None
                        if x in dying and shapes[x] == shapes[out] and n.inputs.count(x) == 1:
                            slot = slot_of[x]
                            dying.remove(x)
                            break
                slot_of[out] = slot if slot is not None else take(math.prod(shapes[out]))
            for x in dying:
                free.append(slot_of[x])
            for out in n.outputs:
                if out not in last_use and out not in keep:
                    free.append(slot_of[out])
        self._check_budget(4 * sum(capacity), 4 * scratch_elements)
        try:
            storage = [np.empty(c, np.float32) for c in capacity]
        except MemoryError:
            raise PlanError(f"out of memory allocating {4 * sum(capacity) / 2**20:.0f} MiB of buffers for "
                            f"input shape {self.input_shape}") from None
        self.buffer_bytes = sum(b.nbytes for b in storage)
        self._storage = storage
        return {name: storage[s][:math.prod(shapes[name])].reshape(shapes[name]) for name, s in slot_of.items()}

    @staticmethod
    def _scratch_shapes(nodes, ops, shapes) -> list[list[tuple[int, ...]]]:
        """Per node, the shapes of the scratch views it wants (all nodes share one arena)."""
        try:
            return [op.scratch([shapes[x] if x else None for x in n.inputs]) for n, op in zip(nodes, ops)]
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            raise PlanError(f"cannot size the scratch space: {exc}") from None

    def _check_budget(self, buffer_bytes: int, scratch_bytes: int) -> None:
        if buffer_bytes + scratch_bytes > MAX_PLAN_BYTES:
            raise PlanError(
                f"the model is too large to run: input shape {self.input_shape} needs "
                f"{buffer_bytes / 2**20:,.0f} MiB of buffers and {scratch_bytes / 2**20:,.0f} MiB of scratch, "
                f"the limit is {MAX_PLAN_BYTES / 2**20:,.0f} MiB")

    def _prepare(self, bundle, nodes, ops, shapes, buffers, scratch_shapes):
        def view(name):
            return buffers[name] if name in buffers else bundle.tensors[name]

        arena = self._arena = np.empty(_arena_elements(scratch_shapes), np.float32)
        self.scratch_bytes = arena.nbytes
        steps, labels = [], []
        self._variants = []  # per step: (what decides the code it runs, its output's size) for warm_up
        self.engines = []  # per step: "simd" or "numpy"
        if self.kernels is not None:
            from .simd.ops import prepare_simd
        for n, op, ss in zip(nodes, ops, scratch_shapes):
            views, at = [], 0
            for s in ss:
                views.append(arena[at:at + math.prod(s)].reshape(s))
                at += _round(math.prod(s))
            ins = [view(x) if x else None for x in n.inputs]
            while ins and ins[-1] is None:
                ins.pop()
            outs = [buffers[o] for o in n.outputs]
            try:
                step = None if self.kernels is None else prepare_simd(self.kernels, op, ins, outs, views)
                self.engines.append("numpy" if step is None else "simd")
                steps.append(op.prepare(ins, outs, views) if step is None else step)
            except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
                raise PlanError(f"node {quote(n.name)} ({n.op}): {exc}") from None
            label = n.op
            conv = n.op.startswith("conv2d")  # a conv, or a fused step led by one (named after the conv)
            if conv:  # profile per strategy: pointwise / depthwise / im2col (the stem)
                label = "conv2d/" + op.kind([shapes[x] for x in n.inputs[:2]])
            labels.append((label, n.name))
            window = shapes[n.inputs[1]][:-2] if conv and len(n.inputs) > 1 else ()
            activation = (n.attrs.get("activation") or {}).get("kind")
            variant = (label, n.op, self.engines[-1], window, repr(n.attrs.get("strides")), activation)
            self._variants.append((variant, math.prod(shapes[n.outputs[0]])))
        return steps, labels

    def warm_up(self) -> None:
        """Zero the buffers and run one step of each variant (op kind, engine, window, strides, activation), its smallest:
        V8 compiles a Wasm function at its first call and re-compiles it in its optimizing tier once it ran long
        enough, so the first real run finds the kernels compiled and hot, for a fraction of a whole run. Results
        are unaffected: every step writes its outputs whole."""
        smallest: dict[tuple, int] = {}
        for i, (variant, size) in enumerate(self._variants):
            if variant not in smallest or size < self._variants[smallest[variant]][1]:
                smallest[variant] = i
        for buffer in (*self._storage, self._arena):
            buffer.fill(0.0)
        with np.errstate(all="ignore"):
            for i in sorted(smallest.values()):
                self.steps[i]()

    # ------------------------------------------------------------------------------------------ run
    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Execute on ``x`` (the input shape of this plan); returns fresh copies of the targets."""
        if tuple(x.shape) != self.input_shape:
            raise ValueError(f"plan was built for input shape {self.input_shape}, got {tuple(x.shape)}")
        np.copyto(self.input_buffer, x, casting="same_kind")
        return self.execute()

    def execute(self) -> list[np.ndarray]:
        """Execute on what ``input_buffer`` holds (a caller that writes its input there saves run()'s copy);
        returns fresh copies of the targets."""
        for step in self.steps:
            step()
        return [np.array(o, dtype=np.float32, copy=True) for o in self.outputs]

    def profile(self, x: np.ndarray, repeat: int = 1, clock=time.perf_counter) -> dict[str, float]:
        """Milliseconds per kind of step (e.g. "conv2d/pointwise"; fused bias and activations are
        "bias+activation"), summed over the nodes, per run. ``clock`` returns seconds."""
        np.copyto(self.input_buffer, x, casting="same_kind")
        totals: dict[str, float] = {}
        for _ in range(repeat):
            for step, (label, _name) in zip(self.steps, self.labels):
                parts = getattr(step, "parts", None) or [step]
                for k, part in enumerate(parts):
                    key = label if k == 0 else "bias+activation"
                    t0 = clock()
                    part()
                    totals[key] = totals.get(key, 0.0) + (clock() - t0) * 1e3
        return {k: v / repeat for k, v in totals.items()}


# Stable names for Classifier.profile: what a user compares across models and versions.
PROFILE_KINDS = ("pointwise", "depthwise", "stem", "classifier", "activations", "elementwise", "other", "overhead")
_CLASSIFIER_OPS = {"dense", "matmul", "global_avg_pool", "reduce_mean", "max_pool", "avg_pool", "reshape", "flatten",
                   "softmax", "transpose", "concat"}
_ACTIVATION_OPS = {"bias+activation", "relu", "clip", "sigmoid", "hardswish", "hardsigmoid", "identity"}
_ELEMENTWISE_OPS = {"add", "sub", "mul", "div"}


def profile_kind(label: str) -> str:
    """A Plan.profile label -> one of PROFILE_KINDS. "stem" is every conv that is neither 1x1 nor depthwise
    (im2col; the stem in MobileNets); "activations" are the fused bias + activation epilogues and standalone
    activation nodes; "elementwise" the residual adds and other binary ops."""
    if label.startswith("conv2d/"):
        return {"pointwise": "pointwise", "depthwise": "depthwise"}.get(label[7:], "stem")
    if label in _ACTIVATION_OPS:
        return "activations"
    if label in _ELEMENTWISE_OPS:
        return "elementwise"
    if label in _CLASSIFIER_OPS or label.endswith("pool"):
        return "classifier"
    return "other"


def _arena_elements(scratch_shapes) -> int:
    """float32 elements of the shared scratch arena: the largest node's views, each 64-byte aligned."""
    return max([sum(_round(math.prod(s)) for s in ss) for ss in scratch_shapes] + [0])


def _round(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class Executor:
    """Runs a bundle, caching one plan per (input shape, targets): a new batch size compiles once.
    The cache keeps the ``max_plans`` most recently used plans (each owns its buffers). ``targets``: the outputs
    of a plan asked for without any (default: the graph's outputs); ``plans_built`` counts the plans made."""

    def __init__(self, bundle: Bundle, max_plans: int = 4, kernels=None, targets: Sequence[str] | None = None):
        self.bundle = bundle
        self.kernels = kernels
        self.max_plans = max_plans
        self.targets = tuple(targets or [o.name for o in bundle.outputs])
        self.plans_built = 0
        self._plans: dict[tuple, Plan] = {}

    def plan(self, input_shape: Iterable[int], targets: Sequence[str] | None = None) -> Plan:
        key = (tuple(int(d) for d in input_shape), tuple(targets) if targets else self.targets)
        plan = self._plans.pop(key, None)
        if plan is None:
            plan = Plan(self.bundle, key[0], key[1], kernels=self.kernels)
            self.plans_built += 1
        self._plans[key] = plan  # most recently used last
        while len(self._plans) > self.max_plans:
            self._plans.pop(next(iter(self._plans)))
        return plan

    def run(self, x: np.ndarray, targets: Sequence[str] | None = None) -> list[np.ndarray]:
        return self.plan(x.shape, targets).run(x)
