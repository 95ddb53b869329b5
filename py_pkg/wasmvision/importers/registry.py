"""ONNX op type -> importer function, one small function per operator (like onnx.reference.ops).

An importer function ``f(ctx, node)`` reads its inputs through the :class:`~.context.ImportContext`
and either records constant outputs (``ctx.set_const``: folded at import time) or emits bundle
nodes (``ctx.emit``) and records the resulting runtime values (``ctx.set_value``).
"""

from __future__ import annotations

from typing import Callable

IMPORTERS: dict[str, Callable] = {}


def onnx_op(*names: str):
    def deco(fn):
        for name in names:
            IMPORTERS[name] = fn
        return fn
    return deco


def _load_all() -> None:
    from . import ops_constant, ops_conv, ops_dense, ops_elementwise, ops_pool, ops_shape  # noqa: F401  (registration)


def get_importer(op_type: str) -> Callable | None:
    _load_all()
    return IMPORTERS.get(op_type)


def supported_ops() -> list[str]:
    _load_all()
    return sorted(IMPORTERS)
