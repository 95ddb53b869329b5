"""The public runtime: load a bundle, classify images, get logits or embeddings."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import bundle as _bundle
from .bundle import Bundle, BundleError
from .plan import PROFILE_KINDS, Executor, profile_kind
from .postprocess import softmax, top_k as _top_k
from .preprocess import ImageError, preprocess, resolve_spec


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass
class Result:
    top: list[Prediction]
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"top": [asdict(p) for p in self.top], "timings_ms": dict(self.timings_ms), "model": dict(self.model)}


class Classifier:
    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        if len(bundle.inputs) != 1 or len(bundle.inputs[0].shape) != 4:
            raise BundleError("a classifier bundle needs one NHWC image input")
        _, h, w, c = bundle.inputs[0].shape
        spec = dict(bundle.preprocess or {})
        crop = spec.get("crop")
        if h in (-1, None) or w in (-1, None):
            if not crop:
                raise BundleError("the model input has no fixed size and the bundle has no preprocess crop")
            h, w = crop
        if c not in (3, -1, None):
            raise BundleError(f"the model expects {c} input channels; images are RGB (3)")
        self.input_size = (int(h), int(w))
        try:
            self.preprocess_spec = resolve_spec(spec, self.input_size)
        except ValueError as exc:
            raise BundleError(f"bad preprocess spec in the bundle: {exc}") from None
        self._executor = Executor(bundle)
        self._executor.plan((1, *self.input_size, 3))  # compile now: a broken graph fails at load
        last = {o: n for n in bundle.nodes for o in n.outputs}
        out = bundle.outputs[0].name
        self._outputs_probabilities = out in last and last[out].op == "softmax"
        if bundle.embedding is not None and bundle.embedding not in last and bundle.embedding not in bundle.tensors:
            raise BundleError(f"embedding tensor {bundle.embedding!r} is not produced by the graph")

    @property
    def model(self) -> dict[str, str]:
        return {"name": self.bundle.name, "version": self.bundle.version}

    def label(self, index: int) -> str:
        labels = self.bundle.labels
        return labels[index] if 0 <= index < len(labels) else f"class {index}"

    # ------------------------------------------------------------------------------------------ API
    def preprocess(self, image: Any) -> np.ndarray:
        """Image -> (H, W, 3) float32 as the network expects."""
        return preprocess(image, self.preprocess_spec, self.input_size)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The raw graph on preprocessed NHWC float32 (N, H, W, C); returns the first output."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise ValueError(f"run() expects (N, H, W, C) input, got shape {x.shape}")
        return self._executor.run(x)[0]

    def infer(self, image: Any, embedding: bool = False) -> np.ndarray:
        """1-D logits for one image (or the embedding vector, flattened)."""
        x = self.preprocess(image)[None]
        if embedding:
            if not self.bundle.embedding:
                raise BundleError("this bundle does not name an embedding tensor")
            return self._executor.run(x, [self.bundle.embedding])[0].reshape(-1)
        return self.run(x).reshape(-1)

    def classify(self, image: Any, top_k: int = 5) -> Result:
        return self._classify(image, top_k, embedding=False)[0]

    def classify_and_embed(self, image: Any, top_k: int = 5) -> tuple[Result, np.ndarray]:
        """``classify(image, top_k)`` and ``infer(image, embedding=True)`` from one pass of the network: the
        embedding is an intermediate tensor of the same run, so an album gets both for the price of one."""
        if not self.bundle.embedding:
            raise BundleError("this bundle does not name an embedding tensor")
        return self._classify(image, top_k, embedding=True)

    def _classify(self, image: Any, top_k: int, embedding: bool) -> tuple[Result, np.ndarray | None]:
        _require_positive_int("top_k", top_k)
        t0 = time.perf_counter()
        x = self.preprocess(image)[None]
        t1 = time.perf_counter()
        if embedding:
            logits, vector = self._executor.run(x, [self.bundle.outputs[0].name, self.bundle.embedding])
            vector = vector.reshape(-1)  # (D,)
        else:
            logits, vector = self.run(x), None
        out = logits[0].reshape(-1)
        t2 = time.perf_counter()
        probs = out.astype(np.float64) if self._outputs_probabilities else softmax(out)
        top = [Prediction(int(i), self.label(int(i)), float(probs[i])) for i in _top_k(probs, top_k)]
        t3 = time.perf_counter()
        result = Result(top=top, model=self.model,
                        timings_ms={"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                                    "postprocess": (t3 - t2) * 1e3})
        return result, vector

    def profile(self, image: Any, runs: int = 10) -> dict[str, float]:
        """Where inference time goes: median milliseconds per layer kind over ``runs`` instrumented runs of
        the graph on this image. Keys (stable): "pointwise", "depthwise", "stem" (other convolutions),
        "classifier" (pooling, dense, reshape, softmax), "activations" (fused bias + activation passes),
        "elementwise" (residual adds), "other", "overhead" (run time not inside any step: the Python loop,
        input copy, output copy), "total" (median of plain runs alternated with the instrumented ones, so
        both see the same machine load). Kinds the model does not use are 0.0."""
        _require_positive_int("runs", runs)
        x = self.preprocess(image)[None]
        plan = self._executor.plan(x.shape)
        plan.run(x)  # warm: first-touch of buffers is not a layer's cost
        per_kind: dict[str, list[float]] = {k: [] for k in PROFILE_KINDS if k != "overhead"}
        totals = []
        for _ in range(int(runs)):
            sums = dict.fromkeys(per_kind, 0.0)
            for label, ms in plan.profile(x).items():
                sums[profile_kind(label)] += ms
            for k, v in sums.items():
                per_kind[k].append(v)
            t0 = time.perf_counter()
            plan.run(x)
            totals.append((time.perf_counter() - t0) * 1e3)
        out = {k: float(np.median(v)) for k, v in per_kind.items()}
        out["total"] = float(np.median(totals))
        out["overhead"] = max(0.0, out["total"] - sum(v for k, v in out.items() if k != "total"))
        return {k: round(out[k], 3) for k in (*PROFILE_KINDS, "total")}


def _require_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def load(source: Any, *, verify: bool = True) -> Classifier:
    """path | bytes | memoryview | Bundle -> Classifier. Raises BundleError for a bad bundle."""
    if isinstance(source, Bundle):
        b = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        b = _bundle.from_bytes(source, verify=verify)
    elif isinstance(source, (str, os.PathLike)):
        b = _bundle.load(Path(source), verify=verify)
    else:
        raise TypeError(f"wasmvision.load() takes a path, bytes or a Bundle, not {type(source).__name__}")
    try:
        return Classifier(b)
    except (KeyError, TypeError) as exc:
        raise BundleError(f"the bundle's graph is malformed: {exc}") from None


__all__ = ["Classifier", "Prediction", "Result", "load", "BundleError", "ImageError"]
