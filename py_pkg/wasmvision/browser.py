"""The Python side of the web page: what the Web Worker calls inside Pyodide.

Only the public runtime API is used (``wasmvision.load``, ``Classifier.classify``, ``Result.to_dict``), so the
page computes exactly what ``python -m wasmvision classify`` computes natively. Every entry point returns a JSON
string: one conversion at the boundary instead of proxies the worker would have to destroy, and errors travel as
data (``{"ok": false, "error": {...}}``) so the page can show a message and keep working.

The functions also run natively (bytes / memoryview / numpy instead of JS buffers), which is how tests/test_browser.py
checks them without a browser.
"""

from __future__ import annotations

import base64
import json
import time
import traceback
from typing import Any, Callable

import numpy as np

from . import custom, head_format
from . import quantize  # noqa: F401 -- every bundle's load imports it: here, the shipped snapshot holds it
# pixel_buffer and take_embedding are entry points of the worker's too (raw numpy arrays, not JSON).
from .browser_pixels import as_buffer as _as_buffer, pixel_buffer, rgba_image as _rgba_image  # noqa: F401
from .browser_pixels import take_embedding, vector as _vector  # noqa: F401
from .bundle import BundleError
from .classifier import load
from .head_train import TrainingError, check_examples
from .importers import ModelImportError, UnsupportedOperatorError
from .preprocess import MAX_PIXELS, ImageError
from .simd import EngineError

# What the page reports as a user's mistake (a message, no traceback); anything else is a bug.
# A malformed .onnx file a user opens is their file's problem, like a bad bundle: no traceback.
_USER_ERRORS = (BundleError, ImageError, UnsupportedOperatorError, ModelImportError, EngineError, MemoryError,
                TrainingError)

# The public error kinds, as the page's module names them (web/module/errors.js ERROR_KINDS): every error kind
# below reaches the page as one of these (tests/test_module_names.py).
ERROR_KINDS = ("ImageError", "ModelError", "SetupError", "PrivacyError", "ArgumentError", "EngineError",
               "ResourceError", "DisposedError", "InternalError", "EmptyLabelError", "SingleLabelError",
               "TooFewExamplesError", "WrongModelError")

# Training and head errors name their case (TrainingError.kind, HeadError.kind): the public kind of each.
_CASE_KINDS = {"empty-label": "EmptyLabelError", "single-label": "SingleLabelError",
               "too-few-examples": "TooFewExamplesError", "bad-label": "ArgumentError",
               "wrong-model": "WrongModelError", "invalid-head": "ModelError", "no-embedding": "ModelError"}


class ModelNotLoaded(LookupError):
    """The worker asked for a model it has not loaded (or has released): a bug in the worker's registry."""


class _ModelCache:
    """The loaded classifiers by key. The worker's registry (web/worker/models.js) decides which stay loaded and
    releases the others; nothing is dropped here behind its back."""

    def __init__(self):
        self._items: dict[str, Any] = {}

    def get(self, key: str):
        return self._items.get(key)

    def put(self, key: str, clf) -> None:
        self._items[key] = clf

    def drop(self, key: str) -> bool:
        return self._items.pop(key, None) is not None

    def keys(self) -> list[str]:
        return list(self._items)


_cache = _ModelCache()


# ----------------------------------------------------------------------------------------------- helpers

def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, (TrainingError, head_format.HeadError)) and exc.kind in _CASE_KINDS:
        return _CASE_KINDS[exc.kind]
    for cls in _USER_ERRORS:
        if isinstance(exc, cls):
            return cls.__name__
    return type(exc).__name__


def _message(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "Out of memory in the browser's Python runtime. Try a smaller image or model."
    text = str(exc).strip()
    return text or type(exc).__name__


def _respond(fn: Callable[..., dict]) -> Callable[..., str]:
    """Wrap an entry point: its dict becomes ``{"ok": true, ...}``, an exception ``{"ok": false, "error": ...}``."""

    def wrapper(*args, **kwargs) -> str:
        try:
            value = fn(*args, **kwargs)
            return json.dumps({"ok": True, "value": value})
        except Exception as exc:  # noqa: BLE001 -- the page must survive anything and say what happened
            error = {"kind": _error_kind(exc), "message": _message(exc)}
            if not isinstance(exc, _USER_ERRORS):
                # An unexpected failure is a bug; keep the traceback for the console, not for the user.
                error["traceback"] = traceback.format_exc()
            return json.dumps({"ok": False, "error": error})

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


def _model_info(key: str, clf, nbytes: int, load_ms: float) -> dict:
    b = clf.bundle
    # Bundles written by `convert --weights` name their variant ("int8" keeps a few layers in float16).
    # One word per storage kind, the manifest's: fp32, fp16, int8 (a mix joined by "+").
    words = {"float32": "fp32", "float16": "fp16", "int8": "int8"}
    storage_kinds = sorted(set(b.storage.values())) if b.storage else ["float32"]
    mixed = "+".join(words[k] for k in storage_kinds if k in words) or "fp32"
    inp = b.inputs[0].shape if b.inputs else []
    out = b.outputs[0].shape if b.outputs else []
    # How many scores a result can rank: the labels, else the output's last axis when it is fixed.
    classes = len(b.labels) or (int(out[-1]) if out and isinstance(out[-1], int) and out[-1] > 0 else 0)
    return {
        "key": key,
        "name": b.name,
        "version": b.version,
        "labels": len(b.labels),
        "classes": classes,
        "embedding": bool(b.embedding),
        "input_shape": list(inp),
        "parameters": int(b.parameter_count),
        "storage": b.metadata.get("weights", mixed),
        "bytes": int(nbytes),
        "load_ms": round(load_ms, 2),
        "preprocess": b.preprocess.get("kind", ""),
        "engine": clf.engine,
        "engine_notice": clf.engine_notice,
    }


# ----------------------------------------------------------------------------------------------- entry points

def max_pixels() -> int:
    """The largest image (width x height) the runtime accepts; the page refuses bigger files before decoding."""
    return MAX_PIXELS


@_respond
def load_model(key: str, data, kind: str = "wvb", name: str | None = None, engine: str = "auto",
               checked: bool = False, warm_up: bool = True) -> dict:
    """Load a model from bytes (``kind`` "wvb" bundle or "onnx") and keep it in the cache under ``key``.
    ``engine``: "auto" | "numpy" | "simd" (see wasmvision.load); the info says which runs and why.
    ``checked``: the browser already matched these bytes against the site's manifest (fetched with its sha256 as
    Subresource Integrity), and the build wrote that sha256 only for a bundle whose own checksum it verified
    (build.py ``checked_bundle``): the bundle's sha256 is then the same check again, and is skipped (~10-15 ms for
    the default model). Everything else (header schema, tensor bounds, finiteness) is checked as always.
    ``warm_up``: False when a classification waits for this model: its own run warms the SIMD kernels up (one
    inference less before the first result; the results are the same)."""
    t0 = time.perf_counter()
    buf = _as_buffer(data)
    if len(buf) == 0:
        raise BundleError("the model file is empty (0 bytes)")
    if kind == "onnx":
        from .importers.onnx_import import import_onnx  # only when a user opens an .onnx file

        source = import_onnx(bytes(buf), name=name) if name else import_onnx(bytes(buf))
    else:
        source = buf
    clf = load(source, engine=engine, verify=not (checked and kind != "onnx"), warm=warm_up)
    load_ms = (time.perf_counter() - t0) * 1000.0
    _cache.put(key, clf)
    return _model_info(key, clf, len(buf), load_ms)


@_respond
def set_labels(key: str, labels_json: str) -> dict:
    """Give the loaded model ``key`` class names (a user's model opened with a labels file): a JSON list of str,
    one per class."""
    clf = _cache.get(key)
    if clf is None:
        raise ModelNotLoaded(f"model {key!r} is not loaded")
    labels = json.loads(labels_json)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise BundleError("labels must be a list of strings")
    classes = _model_info(key, clf, 0, 0.0)["classes"]
    if classes and len(labels) != classes:
        raise BundleError(f"the labels file has {len(labels)} labels, but the model has {classes} classes")
    clf.bundle.labels = list(labels)
    return {"key": key, "labels": len(labels)}


@_respond
def release_model(key: str) -> dict:
    """Forget the model ``key`` (a classifier on the page was disposed); its memory goes back to the heap."""
    return {"key": key, "released": _cache.drop(key)}


@_respond
def model_status(key: str) -> dict:
    """Whether ``key`` is loaded (it may have been evicted from the LRU cache)."""
    return {"key": key, "loaded": key in _cache.keys(), "cached": _cache.keys()}


@_respond
def classify_rgba(key: str, rgba, width: int, height: int, top_k: int = 5) -> dict:
    """Classify an RGBA uint8 image (as decoded by the browser) with the cached model ``key``.

    The alpha channel is left for the runtime to drop, as PIL's ``convert("RGB")`` does natively, so both paths
    go through the same code.
    """
    clf = _cache.get(key)
    if clf is None:
        raise ModelNotLoaded(f"model {key!r} is not loaded")
    image, handover_ms = _rgba_image(rgba, width, height)
    result = clf.classify(image, top_k=top_k).to_dict()
    timings = result.setdefault("timings_ms", {})
    timings["handover"] = round(handover_ms, 3)
    return result


@_respond
def embed_rgba(key: str, rgba, width: int, height: int, binary: bool = False) -> dict:
    """The embedding (the bundle's pooled features, flattened) of an RGBA uint8 image, as ``infer(image,
    embedding=True)`` computes it natively; ``binary``: kept for take_embedding (browser_pixels.vector)."""
    clf = _cache.get(key)
    if clf is None:
        raise ModelNotLoaded(f"model {key!r} is not loaded")
    image, handover_ms = _rgba_image(rgba, width, height)
    t0 = time.perf_counter()
    vector = clf.infer(image, embedding=True)  # (D,)
    return {"embedding": _vector(vector, binary), "model": clf.model, "engine": clf.engine,
            "timings_ms": {"handover": round(handover_ms, 3), "inference": (time.perf_counter() - t0) * 1000.0}}


@_respond
def classify_embed_rgba(key: str, rgba, width: int, height: int, top_k: int = 5, binary: bool = False) -> dict:
    """``classify_rgba`` plus the embedding, from one pass of the network (``Classifier.classify_and_embed``):
    what the album needs per photo (labels for the grid, a vector for "similar photos")."""
    clf = _cache.get(key)
    if clf is None:
        raise ModelNotLoaded(f"model {key!r} is not loaded")
    image, handover_ms = _rgba_image(rgba, width, height)
    result, vector = clf.classify_and_embed(image, top_k=top_k)
    out = result.to_dict()
    out["timings_ms"]["handover"] = round(handover_ms, 3)
    out["embedding"] = _vector(vector, binary)
    return out


# ----------------------------------------------------------------------------------------------- custom heads
# The worker owns heads like models (web/worker/heads.js): it names them, and releases them with their classifier.
# Training embeds one image per call (the worker decodes each in turn), so only the embeddings are kept.

_heads: dict[str, head_format.Head] = {}
_sessions: dict[str, dict] = {}  # session key -> {"model", "labels", "vectors", "targets"}


def _base(key: str):
    clf = _cache.get(key)
    if clf is None:
        raise ModelNotLoaded(f"model {key!r} is not loaded")
    return clf


def _custom(head_key: str, model_key: str) -> custom.CustomClassifier:
    """The head on the loaded model (checked again: the model may have been released and loaded since)."""
    head = _heads.get(head_key)
    if head is None:
        raise ModelNotLoaded(f"head {head_key!r} is not loaded")
    return custom.CustomClassifier(_base(model_key), head)


def _head_info(key: str, head: head_format.Head) -> dict:
    return {"key": key, "name": head.name, "labels": list(head.labels), "method": head.method,
            "examples": dict(head.examples), "accuracy": head.accuracy,
            "base": {"name": head.base.name, "version": head.base.version, "sha256": head.base.sha256}}


@_respond
def train_begin(session: str, model_key: str, labels_json: str, counts_json: str) -> dict:
    """Start training on ``model_key``: the labels and how many images each will get, checked before any image."""
    labels, counts = json.loads(labels_json), json.loads(counts_json)
    check_examples(dict(zip(labels, counts)))
    if len(set(labels)) != len(labels):
        raise TrainingError("labels repeat", "bad-label")
    _base(model_key)
    _sessions[session] = {"model": model_key, "labels": labels, "vectors": [], "targets": []}
    return {"session": session, "total": sum(counts)}


@_respond
def train_add_rgba(session: str, label_index: int, rgba, width: int, height: int) -> dict:
    """One example: its embedding, as ``infer(image, embedding=True)`` computes it natively."""
    state = _sessions[session]
    image, _ = _rgba_image(rgba, width, height)
    state["vectors"].append(np.asarray(_base(state["model"]).infer(image, embedding=True), dtype=np.float32))
    state["targets"].append(int(label_index))
    return {"done": len(state["vectors"])}


@_respond
def train_add_embedding(session: str, label_index: int, vector) -> dict:
    """One example given by its embedding (from ``embed_rgba`` or ``classify_embed_rgba`` on the same model)."""
    state = _sessions[session]
    state["vectors"].append(_embedding(state["model"], vector))
    state["targets"].append(int(label_index))
    return {"done": len(state["vectors"])}


def _embedding(model_key: str, vector) -> np.ndarray:
    x = np.frombuffer(_as_buffer(vector), dtype=np.float32)
    dim = custom.base_model(_base(model_key)).dim
    if x.shape != (dim,) or not np.isfinite(x).all():
        raise ImageError(f"an embedding of this model has {dim} finite numbers; got {x.size}")
    return x.copy()


@_respond
def train_finish(session: str, head_key: str, name: str = "custom") -> dict:
    """Fit the head on the session's embeddings (custom.fit, as ``Classifier.train``) and keep it as ``head_key``."""
    state = _sessions.pop(session)
    t0 = time.perf_counter()
    clf = custom.fit(_base(state["model"]), np.stack(state["vectors"]), state["targets"], state["labels"], name=name)
    _heads[head_key] = clf.head
    return {**_head_info(head_key, clf.head), "train_ms": (time.perf_counter() - t0) * 1e3}


@_respond
def train_cancel(session: str) -> dict:
    return {"session": session, "cancelled": _sessions.pop(session, None) is not None}


@_respond
def head_open(head_key: str, model_key: str, data) -> dict:
    """A .wvh file's bytes, checked as a head and against the loaded model (HeadError "wrong-model" otherwise)."""
    head = head_format.from_bytes(_as_buffer(data))
    custom.CustomClassifier(_base(model_key), head)
    _heads[head_key] = head
    return _head_info(head_key, head)


@_respond
def head_classify_rgba(head_key: str, model_key: str, rgba, width: int, height: int, top_k: int = 5) -> dict:
    clf = _custom(head_key, model_key)
    image, handover_ms = _rgba_image(rgba, width, height)
    result = clf.classify(image, top_k=top_k).to_dict()
    result.setdefault("timings_ms", {})["handover"] = round(handover_ms, 3)
    return result


@_respond
def head_classify_embedding(head_key: str, model_key: str, vector, top_k: int = 5) -> dict:
    """The head alone on an embedding the page kept (the album re-labels its photos without running the network)."""
    return _custom(head_key, model_key).classify_embedding(_embedding(model_key, vector), top_k).to_dict()


@_respond
def head_save(head_key: str) -> dict:
    """The .wvh file's bytes (base64: the replies are JSON)."""
    head = _heads.get(head_key)
    if head is None:
        raise ModelNotLoaded(f"head {head_key!r} is not loaded")
    return {"base64": base64.b64encode(head_format.to_bytes(head)).decode("ascii")}


@_respond
def release_head(head_key: str) -> dict:
    return {"key": head_key, "released": _heads.pop(head_key, None) is not None}


@_respond
def cached_models() -> dict:
    return {"cached": _cache.keys()}


def decode_response(text: str) -> dict:
    """Native helper for tests: turn an entry point's JSON back into a dict."""
    return json.loads(text)
