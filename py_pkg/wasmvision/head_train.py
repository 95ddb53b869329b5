"""Training a head on embeddings with numpy alone: deterministic (no random numbers, fixed iteration counts).

Two methods, one runtime formula (``Head.logits``): both centre the embeddings on the training mean and
L2-normalise them.
* ``softmax`` (the default): multinomial logistic regression with an L2 penalty, by accelerated gradient
  descent in the dual (the weight stays in the span of the examples, so each step costs N x N x L, not N x D x L).
* ``ncm``: nearest class mean by cosine; the weight rows are the normalised class means, the scale is fitted on
  leave-one-out predictions. Trains in milliseconds; less accurate once labels have more than a few examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .head_format import METHODS, BaseModel, Head

DEFAULT_METHOD = "softmax"  # measured better or equal at every shot count (docs/custom-heads.md)
MIN_EXAMPLES_PER_LABEL = 2  # one example cannot be held out to estimate accuracy
SCALES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # candidate cosine temperatures for ncm
SOFTMAX_STEPS = 100
SOFTMAX_L2 = 1e-3
FOLDS = 5


class TrainingError(ValueError):
    """Examples a head cannot be trained on; ``kind`` is one of "empty-label", "single-label",
    "too-few-examples", "bad-label"."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Trained:
    head: Head
    accuracy: float  # cross-validated (ncm: leave-one-out; softmax: stratified k-fold)


def check_examples(counts: dict[str, int]) -> None:
    """The one check of a label -> example-count mapping, before any image is read."""
    if len(counts) < 2:
        raise TrainingError("training needs at least two labels" if counts else "training needs examples: none given",
                            "single-label")
    for label, n in counts.items():
        if not isinstance(label, str) or not label.strip():
            raise TrainingError(f"a label must be a non-empty string, got {label!r}", "bad-label")
        if n == 0:
            raise TrainingError(f"label {label!r} has no examples", "empty-label")
        if n < MIN_EXAMPLES_PER_LABEL:
            raise TrainingError(f"label {label!r} has {n} example; each label needs at least "
                                f"{MIN_EXAMPLES_PER_LABEL}", "too-few-examples")


def train(embeddings: np.ndarray, targets: Sequence[int], labels: list[str], base: BaseModel, *,
          method: str = DEFAULT_METHOD, name: str = "custom") -> Trained:
    """(N, D) embeddings with targets[i] in range(len(labels)) -> a Head and its estimated accuracy."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(targets, dtype=np.intp)  # np.bincount takes the platform index type (32 bits in Wasm)
    check_examples({lab: int((y == i).sum()) for i, lab in enumerate(labels)})
    center = x.mean(axis=0)
    z = _normalise(x - center)
    if method == "ncm":
        weight, bias, scale, accuracy = _ncm(z, y, len(labels))
    else:
        gram = z @ z.T  # (N, N), shared with the k-fold estimate's fits (each a sub-matrix of it)
        weight, bias = _softmax(z, y, len(labels), gram)
        scale, accuracy = 1.0, _kfold_accuracy(z, y, len(labels), gram)
    counts = {lab: int((y == i).sum()) for i, lab in enumerate(labels)}
    head = Head(base=base, labels=list(labels), method=method, center=center.astype(np.float32),
                weight=weight.astype(np.float32), bias=bias.astype(np.float32), scale=scale, name=name,
                examples=counts, accuracy=accuracy)
    return Trained(head=head, accuracy=accuracy)


def _normalise(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _ncm(z: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    onehot = np.eye(classes)[y]  # (N, L)
    counts = onehot.sum(axis=0)  # (L,)
    sums = onehot.T @ z  # (L, D)
    # Leave-one-out: each example scored against class means that exclude it (only its own class's changes).
    cos = z @ _normalise(sums / counts[:, None]).T  # (N, L)
    own = sums[y] - z  # (N, D): the sum of the other examples of each example's own label
    rows = np.arange(len(y))
    cos[rows, y] = np.einsum("nd,nd->n", _normalise(own), z)
    accuracy = float((cos.argmax(axis=1) == y).mean())
    best = min(SCALES, key=lambda s: _nll(s * cos, y))  # the temperature whose held-out probabilities fit best
    weight = _normalise(sums / counts[:, None])
    return weight, np.zeros(classes), float(best), accuracy


def _nll(logits: np.ndarray, y: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def _softmax(z: np.ndarray, y: np.ndarray, classes: int, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``gram`` = z @ z.T (N, N)."""
    n = len(z)
    onehot = np.eye(classes)[y]
    alpha = np.zeros((classes, n))  # weight = alpha @ z
    bias = np.zeros(classes)
    lr = 1.0 / (0.5 * np.linalg.eigvalsh(gram).max() / n + 2 * SOFTMAX_L2 + 1e-9)
    prev_alpha, prev_bias = alpha, bias
    for step in range(1, SOFTMAX_STEPS + 1):  # Nesterov's accelerated gradient: a third of plain descent's steps
        momentum = (step - 1) / (step + 2)
        a = alpha + momentum * (alpha - prev_alpha)
        b = bias + momentum * (bias - prev_bias)
        logits = gram @ a.T + b  # (N, L)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        err = (p - onehot) / n  # (N, L)
        prev_alpha, prev_bias = alpha, bias
        alpha = a - lr * (err.T + 2 * SOFTMAX_L2 * a)
        bias = b - lr * err.sum(axis=0)
    return alpha @ z, bias


def _kfold_accuracy(z: np.ndarray, y: np.ndarray, classes: int, gram: np.ndarray) -> float:
    """Stratified k-fold: the i-th example of each label goes to fold i mod k (no shuffling)."""
    k = int(min(FOLDS, np.bincount(y, minlength=classes).min()))
    fold = np.zeros(len(y), dtype=np.int64)
    for c in range(classes):
        idx = np.flatnonzero(y == c)
        fold[idx] = np.arange(len(idx)) % k
    correct = 0
    for f in range(k):
        train_mask = fold != f
        weight, bias = _softmax(z[train_mask], y[train_mask], classes, gram[np.ix_(train_mask, train_mask)])
        pred = (z[~train_mask] @ weight.T + bias).argmax(axis=1)
        correct += int((pred == y[~train_mask]).sum())
    return correct / len(y)

