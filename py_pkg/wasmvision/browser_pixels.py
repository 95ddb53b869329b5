"""Pixels into and embeddings out of the browser's entry points (wasmvision.browser), with one copy each way.

In: the worker either passes a JS typed array (``as_buffer`` copies it into the Wasm heap once) or first asks for
``pixel_buffer`` and has the browser decode straight into it (a numpy array on the Wasm heap, passed back as is).
Out: with ``binary=True`` an entry point keeps its embedding here and its JSON says only its length; the worker
takes the float32 array with ``take_embedding`` and copies it once into a ``Float32Array``. Natively the same
functions take bytes / memoryview / numpy, which is how tests/test_browser.py checks them.
"""

from __future__ import annotations

import time

import numpy as np

from .preprocess import ImageError, check_size

_outgoing: list[np.ndarray] = []  # the embedding an entry point made for take_embedding (at most one)


def as_buffer(data) -> memoryview:
    """A memoryview over model or pixel bytes, whatever side of the JS boundary they come from."""
    # A Pyodide JsProxy of an ArrayBuffer / TypedArray: one copy from the JS heap into the Wasm heap,
    # the minimum possible since JS memory is not addressable from Python.
    to_memoryview = getattr(data, "to_memoryview", None)
    if to_memoryview is not None:
        return to_memoryview()
    if isinstance(data, np.ndarray):
        return memoryview(np.ascontiguousarray(data)).cast("B")
    return memoryview(data).cast("B")


def pixel_buffer(width: int, height: int) -> np.ndarray:
    """An empty (H * W * 4) uint8 array for the worker to decode an image into (its PyProxy's getBuffer() is a view
    of the Wasm heap). The worker has refused sizes over MAX_PIXELS; rgba_image checks the rest with a message."""
    return np.empty(max(0, int(height) * int(width)) * 4, dtype=np.uint8)


def rgba_image(rgba, width: int, height: int) -> tuple[np.ndarray, float]:
    """The (H, W, 4) uint8 view of a browser's RGBA pixels (no copy) and the milliseconds the handover took."""
    width, height = int(width), int(height)
    check_size(width, height)  # before touching a buffer that size would need
    t0 = time.perf_counter()
    buf = as_buffer(rgba)
    if len(buf) != width * height * 4:
        raise ImageError(f"pixel buffer has {len(buf)} bytes, expected {width}x{height}x4 = {width * height * 4}")
    image = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 4)  # (H, W, 4)
    return image, (time.perf_counter() - t0) * 1000.0


def vector(values, binary: bool):
    """An embedding for an entry point's JSON: its float32 values as numbers, or (binary) kept for take_embedding
    and described by its length."""
    x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if not binary:
        return x.tolist()
    _outgoing[:] = [x]
    return {"float32": int(x.size)}


def take_embedding() -> np.ndarray:
    """The embedding the last binary entry point kept (once); its PyProxy's getBuffer("f32") is read by the worker."""
    if not _outgoing:
        raise LookupError("no embedding is waiting")
    return _outgoing.pop()
