"""Weight storage kinds for bundles: float32, float16, and int8 (symmetric, per output channel).

Storage only: every kind decodes to the float32 array the kernels compute with, once, at load.
For HWIO convolution and (K, M) dense weights the output channel is the last axis.
"""

from __future__ import annotations

import numpy as np

KINDS = ("float32", "float16", "int8")


def encode(array: np.ndarray, kind: str) -> dict:
    """Return {"dtype", "parts": [(part name, raw bytes)], "meta": {...}} for one tensor."""
    if kind == "float16" and array.dtype == np.float32:
        return {"dtype": "float16", "parts": [("data", np.ascontiguousarray(array, "<f2").tobytes())]}
    if kind == "int8" and array.dtype == np.float32:
        channels = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array.reshape(-1, 1)
        max_abs = np.abs(channels).max(axis=0)
        scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype("<f4")  # (C_out,)
        q = np.clip(np.rint(channels / scale), -127, 127).astype(np.int8)
        return {"dtype": "int8", "parts": [("data", q.tobytes()), ("scale", scale.tobytes())],
                "meta": {"axis": -1}}
    dtype = np.dtype(array.dtype).newbyteorder("<")
    return {"dtype": dtype.name, "parts": [("data", np.ascontiguousarray(array, dtype).tobytes())]}


def decode(entry: dict, parts: dict) -> np.ndarray:
    """Inverse of ``encode``: a float32 (or integer) array of ``entry["shape"]``."""
    shape = tuple(entry["shape"])
    dtype = entry["dtype"]
    count = int(np.prod(shape, dtype=np.int64))
    if dtype == "int8":
        q = np.frombuffer(parts["data"], dtype=np.int8, count=count)
        scale = np.frombuffer(parts["scale"], dtype="<f4")
        channels = shape[-1] if len(shape) > 1 else 1
        if scale.size != channels:
            raise ValueError(f"int8 scale has {scale.size} values for {channels} output channels")
        return (q.reshape(-1, channels).astype(np.float32) * scale).reshape(shape)
    if dtype not in ("float32", "float16", "int32", "int64"):
        raise ValueError(f"unknown tensor dtype {dtype!r}")
    array = np.frombuffer(parts["data"], dtype=np.dtype(dtype).newbyteorder("<"), count=count).reshape(shape)
    return array.astype(np.float32) if dtype == "float16" else array
