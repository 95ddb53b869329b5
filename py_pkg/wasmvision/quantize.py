"""Weight storage kinds for bundles: float32, float16, and int8 (symmetric, per output channel).

Storage only: every kind decodes to the float32 array the kernels compute with, once, at load.
For HWIO convolution and (K, M) dense weights the output channel is the last axis.
"""

from __future__ import annotations

import copy

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
        # One pass, the int8 -> float32 cast inside the multiply: the same values as astype then multiply,
        # without the full-size float32 temporary.
        return np.multiply(q.reshape(-1, channels), scale, dtype=np.float32).reshape(shape)
    if dtype not in ("float32", "float16", "int32", "int64"):
        raise ValueError(f"unknown tensor dtype {dtype!r}")
    array = np.frombuffer(parts["data"], dtype=np.dtype(dtype).newbyteorder("<"), count=count).reshape(shape)
    return array.astype(np.float32) if dtype == "float16" else array



def all_finite(entry: dict, parts: dict, array: np.ndarray) -> bool:
    """Whether ``array`` (``decode(entry, parts)``) holds no NaN or infinity. An int8 tensor is codes (|q| <= 127)
    times a per-channel scale: when every scale times 128 is finite, so is every value, and only the scales are
    read (C values instead of the whole tensor); otherwise the tensor itself is checked."""
    if entry["dtype"] == "int8":
        with np.errstate(over="ignore"):
            if np.isfinite(np.frombuffer(parts["scale"], dtype="<f4") * np.float32(128)).all():
                return True
    return bool(np.isfinite(array).all())

def weight_tensors(bundle) -> list[str]:
    """Names of the tensors worth compressing: conv2d/dense weights (second input). Biases stay float32:
    they are tiny and a bias error shifts every output of its channel."""
    names = []
    for node in bundle.nodes:
        if node.op in ("conv2d", "dense") and len(node.inputs) > 1 and node.inputs[1] in bundle.tensors:
            names.append(node.inputs[1])
    return names


# Short names users type (CLI, build) -> storage kinds. "int8" is the measured mixed policy (make_variant);
# "int8-all" is int8 for every conv/dense weight, kept to show what the policy buys (docs/quantization.md).
VARIANTS = ("fp32", "fp16", "int8", "int8-all")
_ALIASES = {"fp32": "fp32", "float32": "fp32", "f32": "fp32", "fp16": "fp16", "float16": "fp16", "f16": "fp16",
            "half": "fp16", "int8": "int8", "i8": "int8", "int8-all": "int8-all"}

# Weights the int8 variant keeps in float16, chosen by measurement on MobileNetV2 (docs/quantization.md):
# int8 there flipped the top-1 class of real photos. "first" sees raw pixels; "depthwise" kernels have only
# 9 weights per channel and the widest per-channel ranges after BatchNorm folding; "linear" convolutions
# (no activation: MobileNetV2's projections) write straight into the residual stream, with no ReLU to clip
# the error. Together they are 29% of the weights, so the variant stays ~3x smaller than float32.
INT8_KEEP_FLOAT16 = ("first", "depthwise", "linear")

SELECTORS = ("first", "last", "depthwise", "linear")


def variant_name(name: str) -> str:
    """"fp16", "float16", "half", ... -> one of VARIANTS; ValueError naming the choices otherwise."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown weight storage {name!r}; choose one of {', '.join(VARIANTS)}")
    return _ALIASES[key]


def weight_roles(bundle) -> dict[str, set[str]]:
    """For each conv/dense weight: the selectors it matches ("first", "last", "depthwise", "linear")."""
    names = weight_tensors(bundle)
    roles: dict[str, set[str]] = {name: set() for name in names}
    for node in bundle.nodes:
        if node.op not in ("conv2d", "dense") or len(node.inputs) < 2 or node.inputs[1] not in roles:
            continue
        role = roles[node.inputs[1]]
        w = bundle.tensors[node.inputs[1]]
        if node.op == "conv2d" and int(node.attrs.get("groups", 1)) > 1 and w.ndim == 4 and w.shape[2] == 1:
            role.add("depthwise")  # HWIO with one input channel per group
        activation = node.attrs.get("activation") or {}
        if node.op == "conv2d" and activation.get("kind", "none") in ("none", "identity"):
            role.add("linear")
    if names:
        roles[names[0]].add("first")
        roles[names[-1]].add("last")
    return roles


def select_weights(bundle, selectors) -> set[str]:
    """Weight tensor names matching any of ``selectors`` (role names from SELECTORS, or tensor names)."""
    roles = weight_roles(bundle)
    chosen: set[str] = set()
    for sel in selectors:
        if sel in SELECTORS:
            chosen.update(name for name, r in roles.items() if sel in r)
        elif sel in roles:
            chosen.add(sel)
        else:
            raise ValueError(f"{sel!r} is neither a weight tensor of this model nor one of {', '.join(SELECTORS)}")
    return chosen


def set_weight_storage(bundle, kind: str, *, keep_float32=(), keep_float16=()) -> dict[str, str]:
    """Mark every conv/dense weight of ``bundle`` to be written as ``kind`` (in place).

    ``keep_float32`` / ``keep_float16`` name weights that stay in that precision instead: "first" (the first
    conv, which sees raw pixels), "last" (the classifier), "depthwise", "linear" (convs without activation),
    or tensor names; float32 wins where both match. Returns the resulting storage map.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown weight storage {kind!r}; choose one of {', '.join(KINDS)}")
    names = weight_tensors(bundle)
    keep32 = select_weights(bundle, keep_float32)
    keep16 = select_weights(bundle, keep_float16)
    storage = dict(bundle.storage)
    for name in names:
        storage[name] = "float32" if name in keep32 else "float16" if name in keep16 and kind != "float32" else kind
    bundle.storage = storage
    return storage


def make_variant(bundle, variant: str, *, keep_float32=()):
    """A copy of ``bundle`` whose weights are stored as ``variant`` ("fp32", "fp16", "int8", "int8-all").

    "int8" is the policy the measurements justify: int8 except INT8_KEEP_FLOAT16, which stays float16.
    ``keep_float32`` names further weights kept in float32 (see ``set_weight_storage``). The input bundle is
    not changed; the copy shares its (read-only) arrays.
    """
    variant = variant_name(variant)
    clone = copy.copy(bundle)
    clone.tensors = dict(bundle.tensors)
    clone.storage = dict(bundle.storage)
    clone.metadata = dict(bundle.metadata)
    kind = {"fp32": "float32", "fp16": "float16", "int8": "int8", "int8-all": "int8"}[variant]
    keep16 = INT8_KEEP_FLOAT16 if variant == "int8" else ()
    set_weight_storage(clone, kind, keep_float32=tuple(keep_float32), keep_float16=keep16)
    clone.metadata["weights"] = variant
    return clone


def storage_summary(header: dict) -> dict[str, dict[str, int]]:
    """From a bundle header: {storage kind: {"tensors": count, "bytes": stored bytes (data + scales)}}."""
    out: dict[str, dict[str, int]] = {}
    for entry in header["tensors"].values():
        kind = entry.get("storage", entry["dtype"])
        row = out.setdefault(kind, {"tensors": 0, "bytes": 0})
        row["tensors"] += 1
        row["bytes"] += sum(int(p["nbytes"]) for p in entry["parts"])
    return out


def dequantized(bundle):
    """A float32 copy of ``bundle`` whose weights hold exactly the values its storage decodes to.

    The quantized bundle and this copy compute the same function, which is what parity tests compare.
    """
    clone = copy.copy(bundle)
    clone.tensors = dict(bundle.tensors)
    for name, kind in bundle.storage.items():
        if kind in ("float16", "int8") and name in bundle.tensors:
            encoded = encode(bundle.tensors[name], kind)
            parts = dict(encoded["parts"])
            clone.tensors[name] = decode({"dtype": encoded["dtype"], "shape": list(bundle.tensors[name].shape)}, parts)
    clone.storage = {}
    return clone
