"""numpy kernels for the bundle op set, one module per op family, registered by name in ``OPS``."""

from . import op_conv, op_dense, op_elementwise, op_pool, op_shape, op_softmax  # noqa: F401  (registration)
from .base import OPS, KernelError, Op, get_op, register

__all__ = ["OPS", "KernelError", "Op", "get_op", "register"]
