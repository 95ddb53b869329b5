"""Data-movement ops: pad, concat, transpose, reshape, flatten. Each copies into its own output
buffer (no aliasing between plan tensors, so buffer liveness stays simple)."""

from __future__ import annotations

import math

import numpy as np

from .base import Op, register


@register("pad")
class Pad(Op):
    def _pads(self, ndim):
        pads = [tuple(int(v) for v in p) for p in self.attrs["pads"]]
        if len(pads) != ndim:
            raise self.error(f"{len(pads)} pad pairs for a {ndim}-D input")
        return pads

    def infer(self, shapes):
        shape = tuple(shapes[0])
        out = tuple(d + b + a for d, (b, a) in zip(shape, self._pads(len(shape))))
        if any(d <= 0 for d in out):
            raise self.error(f"pads {self.attrs['pads']} leave nothing of {shape}")
        return [out]

    # x -> x padded by pads[axis] = (before, after) (negative pads crop)
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        pads = self._pads(x.ndim)
        mode = self.attrs.get("mode", "constant")
        value = np.float32(self.attrs.get("value", 0.0))
        crop = tuple(slice(max(0, -b), d - max(0, -a)) for d, (b, a) in zip(x.shape, pads))
        grow = [(max(0, b), max(0, a)) for b, a in pads]
        xc = x[crop]
        if mode == "constant":
            inner = y[tuple(slice(b, b + d) for (b, _), d in zip(grow, xc.shape))]

            def pad_constant():
                y.fill(value)
                np.copyto(inner, xc)
            return pad_constant
        if mode not in ("reflect", "edge"):
            raise self.error(f"unknown pad mode {mode!r} (constant, reflect, edge)")
        if mode == "reflect" and any(b >= d or a >= d for (b, a), d in zip(grow, xc.shape)):
            raise self.error(f"reflect padding {grow} needs each pad smaller than the axis {xc.shape}")
        return lambda: np.copyto(y, np.pad(xc, grow, mode=mode))


@register("concat")
class Concat(Op):
    def infer(self, shapes):
        axis = int(self.attrs.get("axis", -1)) % len(shapes[0])
        first = tuple(shapes[0])
        for s in shapes[1:]:
            if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != axis):
                raise self.error(f"cannot concatenate shapes {list(shapes)} on axis {axis}")
        return [first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]]

    # (.., Ci, ..) * k -> (.., sum Ci, ..)
    def prepare(self, inputs, outputs, scratch):
        xs, y = list(inputs), outputs[0]
        axis = int(self.attrs.get("axis", -1)) % y.ndim
        return lambda: np.concatenate(xs, axis=axis, out=y)


@register("transpose")
class Transpose(Op):
    def _perm(self, ndim):
        perm = self.attrs.get("perm")
        perm = list(range(ndim))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(ndim)):
            raise self.error(f"perm {perm} is not a permutation of {ndim} axes")
        return perm

    def infer(self, shapes):
        return [tuple(shapes[0][p] for p in self._perm(len(shapes[0])))]

    # x -> x.transpose(perm)
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        xt = x.transpose(self._perm(x.ndim))
        return lambda: np.copyto(y, xt)


@register("reshape")
class Reshape(Op):
    def infer(self, shapes):
        shape = tuple(shapes[0])
        dims = [int(d) for d in self.attrs["shape"]]
        total = math.prod(shape)
        # The first dimension is the batch: it follows the input, so one plan per batch size works.
        # The first dimension is the batch (bundle-format.md): it always follows the input, so a
        # plan per batch size works whatever the exporter wrote there. 0 copies the input dim (ONNX).
        dims = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(dims)]
        if dims and shape:
            dims[0] = shape[0]
        if dims.count(-1) > 1:
            raise self.error(f"shape {self.attrs['shape']} has more than one -1")
        if -1 in dims:
            known = math.prod(d for d in dims if d != -1)
            if known == 0 or total % known:
                raise self.error(f"cannot reshape {shape} to {self.attrs['shape']}")
            dims[dims.index(-1)] = total // known
        if math.prod(dims) != total:
            raise self.error(f"cannot reshape {shape} ({total} values) to {dims}")
        return [tuple(dims)]

    # x -> same values, row-major, new shape
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        xr = x.reshape(y.shape)
        return lambda: np.copyto(y, xr)


@register("flatten")
class Flatten(Op):
    def infer(self, shapes):
        shape = tuple(shapes[0])
        axis = int(self.attrs.get("axis", 1))
        if axis < 0:
            axis += len(shape)
        return [(math.prod(shape[:axis]), math.prod(shape[axis:]))]

    # (d0..dk-1, dk..) -> (prod(d0..dk-1), prod(dk..))
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        xr = x.reshape(y.shape)
        return lambda: np.copyto(y, xr)
