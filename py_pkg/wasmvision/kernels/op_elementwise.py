"""Elementwise ops: binary arithmetic with numpy broadcasting (+ fused activation) and the unary
activations as standalone nodes. All write into the plan's output buffer; unary ones may run in
place on a dead input (``inplace_inputs``)."""

from __future__ import annotations

import numpy as np

from .base import Op, activation_scratch, chain, clip_into, make_activation, register, relu_into


class _Binary(Op):
    ufunc = None
    inplace_inputs = (0, 1)

    def infer(self, shapes):
        try:
            return [tuple(np.broadcast_shapes(tuple(shapes[0]), tuple(shapes[1])))]
        except ValueError:
            raise self.error(f"shapes {shapes[0]} and {shapes[1]} do not broadcast") from None

    def scratch(self, shapes):
        return activation_scratch(self.attrs.get("activation"), self.infer(shapes)[0])

    # broadcast(a, b) -> y
    def prepare(self, inputs, outputs, scratch):
        a, b = inputs
        y = outputs[0]
        f = self.ufunc
        return chain(lambda: f(a, b, out=y), make_activation(self.attrs.get("activation"), y, scratch))


@register("add")
class Add(_Binary):
    ufunc = np.add


@register("sub")
class Sub(_Binary):
    ufunc = np.subtract


@register("mul")
class Mul(_Binary):
    ufunc = np.multiply


@register("div")
class Div(_Binary):
    ufunc = np.divide


class _Unary(Op):
    inplace_inputs = (0,)
    activation: dict = {}

    def infer(self, shapes):
        return [tuple(shapes[0])]

    def _spec(self):
        return self.activation

    def scratch(self, shapes):
        return activation_scratch(self._spec(), shapes[0])

    # x -> y, same shape
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        copy = None if np.shares_memory(x, y) else (lambda: np.copyto(y, x))
        return chain(copy, make_activation(self._spec(), y, scratch))


@register("identity")
class Identity(_Unary):
    activation = {"kind": "none"}


@register("relu")
class Relu(_Unary):
    activation = {"kind": "relu"}

    def prepare(self, inputs, outputs, scratch):
        return relu_into(inputs[0], outputs[0])  # reads x, writes y: no copy


@register("sigmoid")
class Sigmoid(_Unary):
    activation = {"kind": "sigmoid"}


@register("hardswish")
class HardSwish(_Unary):
    activation = {"kind": "hardswish"}


@register("clip")
class Clip(_Unary):
    def _spec(self):
        return {"kind": "clip", "min": self.attrs.get("min"), "max": self.attrs.get("max")}

    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        lo, hi = self.attrs.get("min"), self.attrs.get("max")
        lo = -np.inf if lo is None else np.float32(lo)
        hi = np.inf if hi is None else np.float32(hi)
        return clip_into(x, y, lo, hi)


@register("hardsigmoid")
class HardSigmoid(_Unary):
    def _spec(self):
        return {"kind": "hardsigmoid", "alpha": self.attrs.get("alpha", 0.2), "beta": self.attrs.get("beta", 0.5)}
