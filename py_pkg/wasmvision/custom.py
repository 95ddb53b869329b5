"""A person's own labels on a base model: ``Classifier.train(examples)`` and ``load(head=...)``.

The base network computes the embedding exactly as ``infer(image, embedding=True)``; the head
(``head_format.Head``) turns it into the person's labels. Results are the same ``Result`` objects as the base
classifier's, so every output form (table, JSON, CSV) works unchanged.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from . import bundle as _bundle
from . import head_format, head_train
from .head_format import BaseModel, Head, HeadError
from .postprocess import softmax, top_k as _top_k

ProgressFn = Callable[[int, int], None]  # (done, total) images embedded


def base_model(clf) -> BaseModel:
    """What a head records of the classifier it was trained on."""
    b = clf.bundle
    if not b.embedding:
        raise HeadError("this model does not name an embedding tensor, so it cannot carry a custom head",
                        "no-embedding")
    sha = b.sha256 or hashlib.sha256(_bundle.to_bytes(b)[64:]).hexdigest()
    plan = clf._executor.plan((1, *clf.input_size, 3))  # cached: the classifier compiled it at load
    dim = int(np.prod(plan.shapes[b.embedding][1:])) if b.embedding in plan.shapes else 0
    return BaseModel(sha256=sha, name=b.name, version=b.version, embedding=b.embedding, dim=dim)


class CustomClassifier:
    """A base ``Classifier`` plus a head: ``classify``/``classify_many`` give the person's labels."""

    def __init__(self, base, head: Head):
        mine = base_model(base)
        if head.base.sha256 != mine.sha256:
            raise HeadError(f"this head was trained on model {head.base.name!r} {head.base.version} "
                            f"(sha256 {head.base.sha256[:12]}…), not on {mine.name!r} {mine.version} "
                            f"(sha256 {mine.sha256[:12]}…)", "wrong-model")
        if head.base.dim != mine.dim:
            raise HeadError(f"this head expects {head.base.dim} features; the model gives {mine.dim}", "wrong-model")
        self.base = base
        self.head = head
        self.engine = base.engine
        self.engine_notice = base.engine_notice

    @property
    def labels(self) -> list[str]:
        return list(self.head.labels)

    @property
    def model(self) -> dict[str, str]:
        return {**self.base.model, "head": self.head.name}

    def embed(self, image: Any) -> np.ndarray:
        return self.base.infer(image, embedding=True)

    def probabilities(self, image: Any) -> np.ndarray:
        """(L,) probabilities over the person's labels."""
        return self._probabilities(self.embed(image))

    def _probabilities(self, vector: np.ndarray) -> np.ndarray:
        return softmax(self.head.logits(vector)[0])

    def classify(self, image: Any, top_k: int = 5):
        from .classifier import _is_batch, _require_positive_int

        _require_positive_int("top_k", top_k)
        if _is_batch(image):
            return [self.classify(img, top_k) for img in np.asarray(image)]
        t0 = time.perf_counter()
        vector = self.embed(image)
        return self.classify_embedding(vector, top_k, {"inference": (time.perf_counter() - t0) * 1e3})

    def classify_embedding(self, vector: np.ndarray, top_k: int = 5, timings: dict | None = None):
        """The head alone on an embedding of the base model (what ``embed`` returns): the page keeps its photos'
        embeddings and re-labels them without running the network again."""
        from .classifier import Prediction, Result, _require_positive_int

        _require_positive_int("top_k", top_k)
        t0 = time.perf_counter()
        probs = self._probabilities(vector)
        top = [Prediction(int(i), self.head.labels[int(i)], float(probs[i])) for i in _top_k(probs, top_k)]
        timings = {**(timings or {}), "postprocess": (time.perf_counter() - t0) * 1e3}
        return Result(top=top, timings_ms=timings, model=self.model, engine=self.engine)

    def classify_many(self, images: Iterable[Any], top_k: int = 5) -> Iterator:
        from .classifier import _require_positive_int, classify_each

        _require_positive_int("top_k", top_k)
        yield from classify_each(self.classify, images, top_k, self.model)

    def save(self, path: str | Path) -> int:
        return head_format.save(self.head, path)

    def to_bytes(self) -> bytes:
        return head_format.to_bytes(self.head)


def train(base, examples: Mapping[str, Sequence[Any]], *, method: str = head_train.DEFAULT_METHOD,
          name: str = "custom", progress: ProgressFn | None = None) -> CustomClassifier:
    """label -> images (paths, bytes or pixel arrays) -> a CustomClassifier; ``head.accuracy`` is the estimate."""
    if not isinstance(examples, Mapping):
        raise head_train.TrainingError("examples must map each label to a list of images", "bad-label")
    counts = {label: len(images) for label, images in examples.items()}
    head_train.check_examples(counts)
    labels = list(examples)
    total = sum(counts.values())
    vectors, targets = [], []
    for i, label in enumerate(labels):
        for image in examples[label]:
            vectors.append(base.infer(image, embedding=True))
            targets.append(i)
            if progress is not None:
                progress(len(vectors), total)
    return fit(base, np.stack(vectors), targets, labels, method=method, name=name)


def fit(base, embeddings: np.ndarray, targets: Sequence[int], labels: list[str], *,
        method: str = head_train.DEFAULT_METHOD, name: str = "custom") -> CustomClassifier:
    """(N, D) embeddings from ``base.infer(image, embedding=True)`` and their label indices -> a CustomClassifier
    (the browser embeds its images one message at a time, then fits here: wasmvision.browser_heads)."""
    info = base_model(base)
    trained = head_train.train(embeddings, targets, labels,
                               BaseModel(**{**info.__dict__, "dim": int(embeddings.shape[1])}), method=method, name=name)
    return CustomClassifier(base, trained.head)


def read_head(source: Any) -> Head:
    """path | bytes | Head -> Head."""
    if isinstance(source, Head):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return head_format.from_bytes(source)
    return head_format.load(source)
