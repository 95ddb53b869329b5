"""softmax along one axis, max-subtracted so large logits cannot overflow."""

from __future__ import annotations

import numpy as np

from .base import Op, register


@register("softmax")
class Softmax(Op):
    inplace_inputs = (0,)

    def infer(self, shapes):
        axis = int(self.attrs.get("axis", -1))
        if not -len(shapes[0]) <= axis < len(shapes[0]):
            raise self.error(f"axis {axis} out of range for shape {shapes[0]}")
        return [tuple(shapes[0])]

    # x -> y, same shape; rows along `axis` sum to 1
    def prepare(self, inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        axis = int(self.attrs.get("axis", -1))

        def softmax():
            m = x.max(axis=axis, keepdims=True)
            np.subtract(x, m, out=y)
            np.exp(y, out=y)
            np.divide(y, y.sum(axis=axis, keepdims=True), out=y)
        return softmax
