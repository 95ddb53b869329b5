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


def weight_tensors(bundle) -> list[str]:
    """Names of the tensors worth compressing: conv2d/dense weights (second input). Biases stay float32:
    they are tiny and a bias error shifts every output of its channel."""
    names = []
    for node in bundle.nodes:
        if node.op in ("conv2d", "dense") and len(node.inputs) > 1 and node.inputs[1] in bundle.tensors:
            names.append(node.inputs[1])
    return names


def set_weight_storage(bundle, kind: str, *, keep_float32: tuple[str, ...] = ()) -> dict[str, str]:
    """Mark every conv/dense weight of ``bundle`` to be written as ``kind`` (in place).

    ``keep_float32`` names node ops or positions that stay float32: "first" (the first conv, which sees raw
    pixels), "last" (the classifier), or tensor names. Returns the resulting storage map.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown weight storage {kind!r}; choose one of {', '.join(KINDS)}")
    names = weight_tensors(bundle)
    keep = set(n for n in keep_float32 if n not in ("first", "last"))
    if names and "first" in keep_float32:
        keep.add(names[0])
    if names and "last" in keep_float32:
        keep.add(names[-1])
    storage = dict(bundle.storage)
    for name in names:
        storage[name] = "float32" if name in keep else kind
    bundle.storage = storage
    return storage


def dequantized(bundle):
    """A float32 copy of ``bundle`` whose weights hold exactly the values its storage decodes to.

    The quantized bundle and this copy compute the same function, which is what parity tests compare.
    """
    import copy

    clone = copy.copy(bundle)
    clone.tensors = dict(bundle.tensors)
    for name, kind in bundle.storage.items():
        if kind in ("float16", "int8") and name in bundle.tensors:
            encoded = encode(bundle.tensors[name], kind)
            parts = dict(encoded["parts"])
            clone.tensors[name] = decode({"dtype": encoded["dtype"], "shape": list(bundle.tensors[name].shape)}, parts)
    clone.storage = {}
    return clone
