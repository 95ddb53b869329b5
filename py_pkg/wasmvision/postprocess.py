"""Logits -> probabilities -> top-k."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax of a 1-D vector, max-subtracted and accumulated in float64 (no overflow for huge logits)."""
    z = np.asarray(logits, dtype=np.float64).ravel()
    if z.size == 0:
        raise ValueError("softmax of an empty vector")
    if not np.all(np.isfinite(z)):
        raise ValueError("the model produced non-finite logits")
    e = np.exp(z - z.max())
    return e / e.sum()


def top_k(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, best first; ties keep the lower index first."""
    p = np.asarray(probabilities).ravel()
    k = max(0, min(int(k), p.size))
    return np.argsort(-p, kind="stable")[:k]
