"""Folding an inference-mode BatchNorm into the convolution (or linear layer) before it."""

from __future__ import annotations

import numpy as np


def fold_batchnorm(weight: np.ndarray, bias: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray,
                   mean: np.ndarray, var: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Return (weight, bias) of one layer computing ``bn(layer(x))``.

    ``weight`` has the output channel first (OIHW for Conv, (out, in) for Linear).
    BN(y) = gamma * (y - mean) / sqrt(var + eps) + beta, so the per-channel scale moves into the
    weights and the shift becomes a bias. Computed in float64 so the fold itself adds no rounding
    beyond the final cast to float32.
    """
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)  # (O,)
    w = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    b0 = np.zeros_like(scale) if bias is None else bias.astype(np.float64)
    b = (b0 - mean.astype(np.float64)) * scale + beta.astype(np.float64)
    return w.astype(np.float32), b.astype(np.float32)
