"""Graph rewrites on the emitted bundle graph (each exact up to float rounding):

* ``fold_affine``: conv2d/dense followed by mul/add/sub/div with a per-output-channel constant
  (BatchNormalization, a MatMul's bias Add, a scale) -> new weights and bias;
* ``fold_pad``: a zero constant pad of H/W feeding only a conv2d -> the conv's own pads;
* ``fuse_relu6_hardsigmoid``: relu6(x + 3) / 6 -> hardsigmoid(x, 1/6, 1/2) (how Keras writes it; tf2onnx
  keeps the pieces: Add, Clip, Mul by 1/6);
* ``fuse_relu6_hardswish``: (x * relu6(x + 3)) / 6 -> hardswish(x) (the other association of Keras's form);
* ``fuse_hardswish``: x * hardsigmoid(x, 1/6, 1/2) -> hardswish(x) (HardSwish before opset 14, and
  Keras's x * (relu6(x + 3) / 6) once the hard sigmoid is fused);
* ``merge_clips``: clip(clip(x)) or relu then clip -> one clip (tf.clip_by_value exports as Min then
  Max, e.g. Keras 2's hard_sigmoid);
* ``fuse_activation``: relu/clip/hardswish/hardsigmoid/sigmoid right after conv2d/dense/add whose
  result nothing else reads -> the producer's ``activation``;
* ``prune``: nodes and tensors the outputs do not need.
"""

from __future__ import annotations

import numpy as np

from ..bundle import Node


def _consumers(nodes: list[Node]) -> dict[str, list[int]]:
    uses: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for x in n.inputs:
            uses.setdefault(x, []).append(i)
    return uses


def _producers(nodes: list[Node]) -> dict[str, int]:
    return {o: i for i, n in enumerate(nodes) for o in n.outputs}


def _readers(nodes: list[Node]) -> dict[str, int]:
    readers: dict[str, int] = {}
    for n in nodes:
        for x in n.inputs:
            readers[x] = readers.get(x, 0) + 1
    return readers


def _made_by(nodes: list[Node]) -> dict[str, Node]:
    return {o: n for n in nodes for o in n.outputs}


def _activation_kind(node: Node) -> str:
    return (node.attrs.get("activation") or {}).get("kind", "none")


def _own_tensor(tensors: dict, use_count: dict, name: str, user: Node) -> str:
    """A tensor name only ``user`` reads, copying the tensor if other nodes share it."""
    if use_count.get(name, 0) <= user.inputs.count(name):
        return name
    k = 2
    while f"{name}_{k}" in tensors:
        k += 1
    copy = f"{name}_{k}"
    tensors[copy] = tensors[name].copy()
    use_count[name] -= user.inputs.count(name)
    use_count[copy] = user.inputs.count(name)
    user.inputs = [copy if x == name else x for x in user.inputs]
    return copy


def fold_affine(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    # One forward pass: after mul folds into a conv, the conv produces the mul's output, so the
    # BatchNormalization's add that follows finds the conv as its producer and folds too.
    readers, made_by = _readers(nodes), _made_by(nodes)
    removed: set[int] = set()
    for n in nodes:
        if n.op not in ("mul", "add", "sub", "div") or _activation_kind(n) != "none" or len(n.inputs) != 2:
            continue
        x, c = n.inputs
        if n.op in ("add", "mul") and x in tensors:
            x, c = c, x  # commutative: c + x, c * x
        if x not in made_by or c not in tensors:
            continue  # sub/div by a runtime value, or constant first (c - x, c / x): not affine in w
        p = made_by[x]
        if p.op not in ("conv2d", "dense") or _activation_kind(p) != "none" or x in protected or readers[x] != 1:
            continue
        m = tensors[p.inputs[1]].shape[-1]
        k = tensors[c]
        if k.size not in (1, m) or any(d != 1 for d in k.shape[:-1]) or k.ndim > (4 if p.op == "conv2d" else 2):
            continue
        v = np.broadcast_to(k.astype(np.float64).reshape(-1), (m,))
        w_name = _own_tensor(tensors, readers, p.inputs[1], p)
        if len(p.inputs) < 3 or not p.inputs[2]:
            b_name = w_name + ".bias"
            while b_name in tensors:
                b_name += "_"
            tensors[b_name] = np.zeros(m, np.float32)
            readers[b_name] = 1
            p.inputs = [p.inputs[0], w_name, b_name]
        b_name = _own_tensor(tensors, readers, p.inputs[2], p)
        w = tensors[w_name].astype(np.float64)
        b = tensors[b_name].astype(np.float64)
        if n.op == "mul":
            w, b = w * v, b * v
        elif n.op == "div":
            w, b = w / v, b / v
        elif n.op == "add":
            b = b + v
        else:
            b = b - v
        tensors[w_name] = w.astype(np.float32)
        tensors[b_name] = b.astype(np.float32)
        readers[c] -= 1
        p.outputs = list(n.outputs)
        for o in n.outputs:
            made_by[o] = p
        removed.add(id(n))
    return [n for n in nodes if id(n) not in removed]


def fold_pad(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    uses = _consumers(nodes)
    drop = []
    for i, n in enumerate(nodes):
        if n.op != "pad" or n.attrs.get("mode", "constant") != "constant" or float(n.attrs.get("value", 0.0)) != 0.0:
            continue
        pads = [list(p) for p in n.attrs["pads"]]
        out = n.outputs[0]
        if (len(pads) != 4 or pads[0] != [0, 0] or pads[3] != [0, 0] or min(pads[1] + pads[2]) < 0
                or out in protected or len(uses.get(out, [])) != 1):
            continue
        conv = nodes[uses[out][0]]
        if conv.op != "conv2d" or conv.inputs[0] != out or conv.inputs.count(out) != 1:
            continue
        t, l, b, r = conv.attrs.get("pads", [0, 0, 0, 0])
        conv.attrs["pads"] = [t + pads[1][0], l + pads[2][0], b + pads[1][1], r + pads[2][1]]
        conv.inputs[0] = n.inputs[0]
        drop.append(i)
    return [n for i, n in enumerate(nodes) if i not in set(drop)]


def _scalar(tensors: dict, name: str) -> float | None:
    """The value of a one-element constant, else None."""
    t = tensors.get(name)
    return float(t.reshape(-1)[0]) if t is not None and t.size == 1 else None


def _close(value: float | None, want: float) -> bool:
    # float32 constants: 1/6 arrives as 0.16666667, not the float64 1/6
    return value is not None and abs(value - want) <= 1e-6 * max(1.0, abs(want))


def _single_use(readers: dict, protected: set[str], name: str) -> bool:
    return readers.get(name) == 1 and name not in protected


def _relu6_of_x_plus_3(node: Node | None, made_by: dict, tensors: dict, readers: dict,
                       protected: set[str]) -> str | None:
    """``node`` is clip(add(x, 3), 0, 6) whose add nothing else reads: returns x's name."""
    if (node is None or node.op != "clip" or not _close(node.attrs.get("min"), 0.0)
            or not _close(node.attrs.get("max"), 6.0) or not _single_use(readers, protected, node.inputs[0])):
        return None
    a = made_by.get(node.inputs[0])
    if a is None or a.op != "add" or _activation_kind(a) != "none" or len(a.inputs) != 2:
        return None
    for x, c in (a.inputs, a.inputs[::-1]):
        if x not in tensors and _close(_scalar(tensors, c), 3.0):
            return x
    return None


def _times_sixth(node: Node, tensors: dict) -> str | None:
    """``node`` is y * (1/6), (1/6) * y or y / 6 with no activation: returns y's name."""
    if _activation_kind(node) != "none" or len(node.inputs) != 2:
        return None
    if node.op == "div" and _close(_scalar(tensors, node.inputs[1]), 6.0):
        return node.inputs[0]
    if node.op == "mul":
        for y, c in (node.inputs, node.inputs[::-1]):
            if y not in tensors and _close(_scalar(tensors, c), 1.0 / 6.0):
                return y
    return None


def fuse_relu6_hardsigmoid(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    """relu6(x + 3) * (1/6) -> hardsigmoid(x, 1/6, 1/2): Keras's hard sigmoid (MobileNetV3's SE gate
    and half of its hard swish). Runs before fold_affine, which would otherwise fold the + 3 into
    a conv bias and leave clip and mul behind."""
    readers, made_by = _readers(nodes), _made_by(nodes)
    removed: set[int] = set()
    for n in nodes:
        if n.op not in ("mul", "div"):
            continue
        y = _times_sixth(n, tensors)
        if y is None or not _single_use(readers, protected, y):
            continue
        clip = made_by.get(y)
        x = _relu6_of_x_plus_3(clip, made_by, tensors, readers, protected)
        if x is None:
            continue
        n.op, n.inputs, n.attrs = "hardsigmoid", [x], {"alpha": 1.0 / 6.0, "beta": 0.5}
        removed.update((id(clip), id(made_by[clip.inputs[0]])))
    return [n for n in nodes if id(n) not in removed]


def fuse_relu6_hardswish(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    """(x * relu6(x + 3)) * (1/6) -> hardswish(x): Keras's hard swish when the product comes first."""
    readers, made_by = _readers(nodes), _made_by(nodes)
    removed: set[int] = set()
    for n in nodes:
        if n.op not in ("mul", "div"):
            continue
        m_name = _times_sixth(n, tensors)
        m = made_by.get(m_name) if m_name is not None else None
        if (m is None or m.op != "mul" or _activation_kind(m) != "none" or len(m.inputs) != 2
                or not _single_use(readers, protected, m_name)):
            continue
        for x, r in (m.inputs, m.inputs[::-1]):
            clip = made_by.get(r)
            if _single_use(readers, protected, r) and \
                    _relu6_of_x_plus_3(clip, made_by, tensors, readers, protected) == x:
                n.op, n.inputs, n.attrs = "hardswish", [x], {}
                removed.update((id(m), id(clip), id(made_by[clip.inputs[0]])))
                break
    return [n for n in nodes if id(n) not in removed]


def fuse_hardswish(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    """x * hardsigmoid(x, 1/6, 0.5) -> hardswish(x): how HardSwish is exported before opset 14."""
    readers, made_by = _readers(nodes), _made_by(nodes)
    removed: set[int] = set()
    for n in nodes:
        if n.op != "mul" or _activation_kind(n) != "none" or len(n.inputs) != 2:
            continue
        for x, h in (n.inputs, n.inputs[::-1]):
            hs = made_by.get(h)
            if (hs is not None and hs.op == "hardsigmoid" and hs.inputs[0] == x and readers.get(h) == 1
                    and h not in protected and abs(float(hs.attrs.get("alpha", 0.2)) - 1 / 6) < 1e-6
                    and float(hs.attrs.get("beta", 0.5)) == 0.5):
                n.op, n.inputs, n.attrs = "hardswish", [x], {}
                removed.add(id(hs))
                break
    return [n for n in nodes if id(n) not in removed]


def _clip_bounds(node: Node) -> tuple[float, float] | None:
    if node.op == "relu":
        return 0.0, float("inf")
    if node.op == "clip":
        lo, hi = node.attrs.get("min"), node.attrs.get("max")
        return (float("-inf") if lo is None else float(lo)), (float("inf") if hi is None else float(hi))
    return None


def merge_clips(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    """clip(clip(x, a1, b1), a2, b2) == clip(x, max(a1, a2), min(b1, b2)) while that range is not
    empty; relu is clip(0, inf). The inner clip must have no other reader."""
    readers, made_by = _readers(nodes), _made_by(nodes)
    removed: set[int] = set()
    for n in nodes:
        outer = _clip_bounds(n)
        inner_node = made_by.get(n.inputs[0]) if outer is not None else None
        inner = _clip_bounds(inner_node) if inner_node is not None else None
        if inner is None or id(inner_node) in removed or not _single_use(readers, protected, n.inputs[0]):
            continue
        lo, hi = max(inner[0], outer[0]), min(inner[1], outer[1])
        if lo > hi:
            continue
        n.inputs = list(inner_node.inputs)
        if lo == 0.0 and hi == float("inf"):
            n.op, n.attrs = "relu", {}
        else:
            n.op = "clip"
            n.attrs = {"min": None if lo == float("-inf") else lo, "max": None if hi == float("inf") else hi}
        removed.add(id(inner_node))
    return [n for n in nodes if id(n) not in removed]


_FUSABLE = {"relu", "clip", "hardswish", "hardsigmoid", "sigmoid"}


def _activation_spec(node: Node) -> dict:
    if node.op == "clip":
        return {"kind": "clip", "min": node.attrs.get("min"), "max": node.attrs.get("max")}
    if node.op == "hardsigmoid":
        return {"kind": "hardsigmoid", "alpha": node.attrs.get("alpha", 0.2), "beta": node.attrs.get("beta", 0.5)}
    return {"kind": node.op}


def fuse_activation(nodes: list[Node], tensors: dict, protected: set[str]) -> list[Node]:
    uses, made_by = _consumers(nodes), _producers(nodes)
    drop = set()
    for i, n in enumerate(nodes):
        if n.op not in _FUSABLE:
            continue
        x = n.inputs[0]
        if x not in made_by or x in protected or uses.get(x) != [i]:
            continue
        p = nodes[made_by[x]]
        if p.op not in ("conv2d", "dense", "add") or _activation_kind(p) != "none":
            continue
        p.attrs["activation"] = _activation_spec(n)
        p.outputs = list(n.outputs)
        drop.add(i)
    return [n for i, n in enumerate(nodes) if i not in drop]


def prune(nodes: list[Node], tensors: dict, outputs: list[str]) -> list[Node]:
    made_by = _producers(nodes)
    needed, stack = set(), list(outputs)
    while stack:
        t = stack.pop()
        if t in made_by and made_by[t] not in needed:
            needed.add(made_by[t])
            stack.extend(x for x in nodes[made_by[t]].inputs if x)
    kept = [n for i, n in enumerate(nodes) if i in needed]
    used = {x for n in kept for x in n.inputs}
    for name in [t for t in tensors if t not in used]:
        del tensors[name]
    return kept


def optimize(nodes: list[Node], tensors: dict, outputs: list[str], protected: set[str]) -> list[Node]:
    protected = set(protected) | set(outputs)
    nodes = prune(nodes, tensors, outputs)
    nodes = fuse_relu6_hardsigmoid(nodes, tensors, protected)
    nodes = fuse_relu6_hardswish(nodes, tensors, protected)
    nodes = fold_affine(nodes, tensors, protected)
    nodes = fold_pad(nodes, tensors, protected)
    nodes = fuse_hardswish(nodes, tensors, protected)
    nodes = merge_clips(nodes, tensors, protected)
    nodes = fuse_activation(nodes, tensors, protected)
    return prune(nodes, tensors, outputs)
