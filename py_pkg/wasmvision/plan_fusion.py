"""Layer fusion for the SIMD engine: pairs of graph nodes that the plan runs as one step.

Only a plan with kernels fuses (the numpy engine plans the graph as it is). A fused node is an ordinary plan
node: its op infers, asks for scratch and prepares like any other, and its ``prepare`` is the numpy route (the
two ops one after the other), which runs wherever the SIMD kernels decline it. The fused node keeps the first
node's name (a profile row per original layer) and the last node's outputs, so the tensor between them is never
allocated, and the allocator sees every input live until the fused step.

Fusions (each a numpy-exact order of operations, so results stay within the kernels' tolerance):
* ``conv2d+add``: a 1x1 stride-1 conv without activation whose only reader is an add of a same-shape tensor
  (MobileNetV2's projection and residual add): the GEMM adds the residual per block while it is in L1.
* ``conv2d+depthwise``: a 1x1 stride-1 expansion conv (or an ungrouped im2col conv: the stem) whose only reader
  is a depthwise conv, when the tensor between them is large (at least PWDW_MIN_BYTES: MobileNetV2's stem output
  and its 112x112x96 and 56x56x144 expansions): the first conv is computed band by band into a buffer in L2 that
  the depthwise kernel reads at once.
"""

from __future__ import annotations

import numpy as np

from .bundle import Node
from .kernels.base import Op, activation_scratch, chain, make_activation


class ConvAdd(Op):
    """y = act(conv(x, w, b) + r), inputs (x, w, b or None, r); the conv has no activation of its own, act is
    the add's."""
    op_name = "conv2d+add"

    def __init__(self, conv: Op, add_activation: dict | None, node: str = ""):
        super().__init__({**conv.attrs, "activation": add_activation or {"kind": "none"}}, node=node)
        self.conv = conv
        self.add_activation = add_activation

    def kind(self, shapes) -> str:
        return self.conv.kind(shapes)

    def infer(self, shapes):
        out = self.conv.infer(shapes[:3])
        if tuple(shapes[3]) != tuple(out[0]):
            raise self.error(f"residual shape {shapes[3]} != conv output {out[0]}")
        return out

    def scratch(self, shapes):
        return self.conv.scratch(shapes[:3]) + activation_scratch(self.add_activation, self.infer(shapes)[0])

    def prepare(self, inputs, outputs, scratch):
        ins = list(inputs) + [None] * (4 - len(inputs))
        conv_scratch = len(self.conv.scratch([None if a is None else a.shape for a in ins[:3]]))
        y, r = outputs[0], ins[3]
        conv = self.conv.prepare([a for a in ins[:3] if a is not None], outputs, scratch[:conv_scratch])
        add = np.add
        return chain(conv, lambda: add(y, r, out=y),
                     make_activation(self.add_activation, y, scratch[conv_scratch:]))


PWDW_MIN_BYTES = 1 << 20  # smaller expanded tensors stay in L2 between the two steps anyway


class PointwiseDepthwise(Op):
    """y = dw(pw(x, w1, b1), w2, b2), inputs (x, w1, b1 or None, w2, b2 or None), each conv with its own
    activation; scratch: the expanded tensor (the numpy route's; the SIMD route uses its first floats as the band
    buffer), then each conv's own."""
    op_name = "conv2d+depthwise"

    def __init__(self, pw: Op, dw: Op, node: str = ""):
        super().__init__(dict(pw.attrs), node=node)
        self.pw, self.dw = pw, dw

    def kind(self, shapes) -> str:
        return self.pw.kind(shapes)

    def mid_shape(self, xs, ws):
        return tuple(self.pw.infer([xs, ws])[0])

    def infer(self, shapes):
        return self.dw.infer([self.mid_shape(shapes[0], shapes[1]), shapes[3], shapes[4]])

    def _scratch(self, shapes):
        mid = self.mid_shape(shapes[0], shapes[1])
        return mid, self.pw.scratch(shapes[:3]), self.dw.scratch([mid, shapes[3], shapes[4]])

    def scratch(self, shapes):
        mid, own_pw, own_dw = self._scratch(shapes)
        return [mid, *own_pw, *own_dw]

    def split_scratch(self, shapes, scratch):
        """The scratch views as (the expanded tensor, the first conv's, the depthwise conv's)."""
        _, own_pw, _ = self._scratch(shapes)
        return scratch[0], scratch[1:1 + len(own_pw)], scratch[1 + len(own_pw):]

    def prepare(self, inputs, outputs, scratch):
        ins = list(inputs) + [None] * (5 - len(inputs))
        t, own_pw, own_dw = self.split_scratch([None if a is None else a.shape for a in ins], scratch)
        pw = self.pw.prepare(ins[:3], [t], own_pw)
        dw = self.dw.prepare([t, ins[3], ins[4]], outputs, own_dw)
        return chain(pw, dw)


def _activation_kind(node) -> str:
    return ((node.attrs or {}).get("activation") or {}).get("kind", "none")


def _is_1x1_s1(node, op, shapes) -> bool:
    strides = tuple(int(v) for v in node.attrs.get("strides", (1, 1)))
    return op.kind([shapes[x] if x else None for x in node.inputs[:2]]) == "pointwise" and strides == (1, 1)


def _conv_add(n, op, nxt, nxt_op, shapes):
    """A 1x1 stride-1 conv without activation and the same-shape add reading it -> conv2d+add."""
    t = n.outputs[0]
    if n.op != "conv2d" or _activation_kind(n) != "none" or not _is_1x1_s1(n, op, shapes):
        return None
    if nxt.op != "add" or len(nxt.inputs) != 2 or nxt.inputs.count(t) != 1:
        return None
    r = nxt.inputs[1] if nxt.inputs[0] == t else nxt.inputs[0]
    if shapes.get(r) != shapes[t] or shapes[nxt.outputs[0]] != shapes[t]:
        return None
    b = n.inputs[2] if len(n.inputs) > 2 else ""
    fused = Node("conv2d+add", [n.inputs[0], n.inputs[1], b, r], list(nxt.outputs), n.name,
                      {**n.attrs, "activation": nxt.attrs.get("activation") or {"kind": "none"}})
    return fused, ConvAdd(op, nxt.attrs.get("activation"), node=n.name)


def _conv_depthwise(n, op, nxt, nxt_op, shapes):
    """A 1x1 stride-1 or ungrouped im2col conv whose large output only a depthwise conv reads -> conv2d+depthwise."""
    t = n.outputs[0]
    if n.op != "conv2d" or nxt.op != "conv2d" or 4 * np.prod(shapes[t]) < PWDW_MIN_BYTES:
        return None
    if nxt.inputs[0] != t or t in nxt.inputs[1:]:
        return None
    kind = op.kind([shapes[x] if x else None for x in n.inputs[:2]])
    gemm = (kind == "pointwise" and _is_1x1_s1(n, op, shapes)) or (
        kind == "im2col" and int(n.attrs.get("groups", 1)) == 1)
    dil = tuple(int(v) for v in nxt.attrs.get("dilations", (1, 1)))
    if not gemm or dil != (1, 1) or nxt_op.kind([shapes[x] if x else None for x in nxt.inputs[:2]]) != "depthwise":
        return None
    b1 = n.inputs[2] if len(n.inputs) > 2 else ""
    b2 = nxt.inputs[2] if len(nxt.inputs) > 2 else ""
    fused = Node("conv2d+depthwise", [n.inputs[0], n.inputs[1], b1, nxt.inputs[1], b2], list(nxt.outputs),
                      n.name, dict(n.attrs))
    return fused, PointwiseDepthwise(op, nxt_op, node=n.name)


def _fuse_pairs(nodes: list, ops: list[Op], shapes: dict, protected: set[str], match) -> tuple[list, list[Op]]:
    """Each node whose one output only one later node reads, with that node, through ``match`` (None, or the
    fused (node, op) that takes the later node's place)."""
    readers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for x in dict.fromkeys(n.inputs):
            if x:
                readers.setdefault(x, []).append(i)
    replace: dict[int, tuple[Node, Op]] = {}
    drop: set[int] = set()
    for i, (n, op) in enumerate(zip(nodes, ops)):
        if i in drop or i in replace or len(n.outputs) != 1:
            continue
        t = n.outputs[0]
        if t in protected or len(readers.get(t, [])) != 1:
            continue
        j = readers[t][0]
        made = None if j in drop or j in replace else match(n, op, nodes[j], ops[j], shapes)
        if made is not None:
            replace[j] = made
            drop.add(i)
    kept = [replace.get(i, (n, op)) for i, (n, op) in enumerate(zip(nodes, ops)) if i not in drop]
    return [n for n, _ in kept], [op for _, op in kept]


FUSIONS = (_conv_add, _conv_depthwise)
FUSED_OPS = ("conv2d+add", "conv2d+depthwise")  # the op names of the nodes they make (no bundle has these)


def fuse(nodes: list, ops: list[Op], shapes: dict, protected: set[str]) -> tuple[list, list[Op]]:
    """(nodes, ops) with every fusable pair replaced by one fused node (placed where the later node was), pass
    by pass (FUSIONS). ``protected``: tensors that must stay materialised (the plan's targets)."""
    for match in FUSIONS:
        nodes, ops = _fuse_pairs(nodes, ops, shapes, protected, match)
    return nodes, ops
