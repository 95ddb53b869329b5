"""Every ONNX operator the importer translates: op type -> importer function, written out (like onnx's
reference ``_op_list.py``). One small function per operator lives in an ops_* module.

An importer function ``f(ctx, node)`` reads its inputs through the :class:`~.context.ImportContext`
and either records constant outputs (``ctx.set_const``: folded at import time) or emits bundle
nodes (``ctx.emit``) and records the resulting runtime values (``ctx.set_value``).
"""

from __future__ import annotations

from typing import Callable

from . import ops_constant as constant
from . import ops_conv as conv
from . import ops_dense as dense
from . import ops_elementwise as elementwise
from . import ops_pool as pool
from . import ops_shape as shape

IMPORTERS: dict[str, Callable] = {
    "Shape": constant.shape,
    "Gather": constant.gather,
    "ConstantOfShape": constant.constant_of_shape,
    "Slice": constant.slice_op,
    "Conv": conv.conv,
    "BatchNormalization": conv.batch_normalization,
    "Gemm": dense.gemm,
    "MatMul": dense.matmul,
    "Add": elementwise.add,
    "Sub": elementwise.sub,
    "Mul": elementwise.mul,
    "Div": elementwise.div,
    "Relu": elementwise.relu,
    "Sigmoid": elementwise.sigmoid,
    "HardSwish": elementwise.hard_swish,
    "HardSigmoid": elementwise.hard_sigmoid,
    "Clip": elementwise.clip,
    "Min": elementwise.min_op,
    "Max": elementwise.max_op,
    "Softmax": elementwise.softmax,
    "MaxPool": pool.max_pool,
    "AveragePool": pool.average_pool,
    "GlobalAveragePool": pool.global_average_pool,
    "GlobalMaxPool": pool.global_max_pool,
    "ReduceMax": pool.reduce_max,
    "ReduceMean": pool.reduce_mean,
    "Identity": shape.identity_op,
    "Dropout": shape.dropout,
    "Constant": shape.constant,
    "Cast": shape.cast,
    "Reshape": shape.reshape,
    "Flatten": shape.flatten,
    "Squeeze": shape.squeeze,
    "Unsqueeze": shape.unsqueeze,
    "Transpose": shape.transpose,
    "Concat": shape.concat,
    "Pad": shape.pad,
}

SUPPORTED_OPS: list[str] = sorted(IMPORTERS)


def get_importer(op_type: str) -> Callable | None:
    return IMPORTERS.get(op_type)
