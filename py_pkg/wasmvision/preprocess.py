"""Image preprocessing, bit-exact with torchvision's PIL pipeline: the bundle's preprocess spec, and the
pipeline pixels -> resize -> crop -> scale and normalise -> the network's (H, W, 3) float32 input.

``imagenet``: ``Resize(256)`` (shorter side to 256, PIL bilinear with antialiasing, see ``resample``),
``CenterCrop(224)``, ``ToTensor`` (/255), ``Normalize(mean, std)``. Pixels come in as ``pixels`` accepts them.

Two engines compute the same bits: numpy (here and in ``resample``: natively, and in Pyodide when the Wasm SIMD
library is absent), and the library's preprocessing kernels (``simd.preprocess_ops``), which a caller passes as
``kernels``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .pixels import MAX_ASPECT_RATIO, MAX_PIXELS, ImageError, as_pixels, check_size, to_rgb_uint8
from .resample import (PRECISION_BITS, center_crop, crop_window, resize_bilinear, resize_shorter,
                       shorter_side_size, vertical_pass_first)

MAX_RESIZE_SHORTER = 8192  # a bundle's resize_shorter / crop side: far above any classifier's input (224..600)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINDS = ("imagenet", "inception", "none", "raw")
WHOLE_IMAGE_KINDS = ("none", "raw")  # resized to the input size: no crop, no normalisation


# --------------------------------------------------------------------------------------------- spec

def resolve_spec(spec: Mapping[str, Any] | None, size: Sequence[int]) -> dict:
    """Fill a bundle's preprocess spec with its kind's defaults; ``size`` is the model's (H, W).

    ``imagenet`` / ``inception``: resize the shorter side, center-crop, scale, normalise.
    ``none``: resize the whole image to the input size, scale to [0, 1]. ``raw``: the same, pixels kept
    as 0..255 (models that carry their own rescaling, such as Keras applications)."""
    spec = dict(spec or {})
    kind = spec.get("kind", "imagenet")
    if kind not in KINDS:
        raise ValueError(f"unknown preprocess kind {kind!r} (supported: {', '.join(KINDS)})")
    if kind in WHOLE_IMAGE_KINDS:
        return {"kind": kind, "crop": _side_pair(tuple(size), "input size"), "resize_shorter": None,
                "scale": _scale(spec.get("scale", 1.0 if kind == "raw" else 1.0 / 255.0)),
                "mean": (0.0,) * 3, "std": (1.0,) * 3}
    crop = _side_pair(spec.get("crop", size), "crop")
    if kind == "imagenet":
        defaults = {"resize_shorter": 256 if crop == (224, 224) else int(round(crop[0] / 0.875)),
                    "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    else:
        defaults = {"resize_shorter": int(round(crop[0] / 0.875)), "mean": (0.5,) * 3, "std": (0.5,) * 3}
    resize = spec.get("resize_shorter", defaults["resize_shorter"])
    if isinstance(resize, bool) or not isinstance(resize, int) or not 1 <= resize <= MAX_RESIZE_SHORTER:
        raise ValueError(f"resize_shorter must be an integer in 1..{MAX_RESIZE_SHORTER}, got {_short(resize)}")
    return {"kind": kind, "crop": crop, "resize_shorter": resize, "scale": _scale(spec.get("scale", 1.0 / 255.0)),
            "mean": _triple(spec.get("mean", defaults["mean"]), "mean", nonzero=False),
            "std": _triple(spec.get("std", defaults["std"]), "std", nonzero=True)}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {_short(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def _scale(value: Any) -> float:
    v = _finite(value, "scale")
    if v == 0.0:
        raise ValueError("scale must not be 0 (every pixel would become 0)")
    return v


def _triple(values: Any, name: str, *, nonzero: bool) -> tuple[float, float, float]:
    """mean / std: three finite numbers (one per RGB channel); std must not be 0 (it divides)."""
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        raise ValueError(f"{name} must be a list of 3 numbers (R, G, B), got {_short(values)}")
    out = tuple(_finite(v, f"{name}[{i}]") for i, v in enumerate(values))
    if nonzero and 0.0 in out:
        raise ValueError(f"{name} must not contain 0 (it divides the pixels), got {list(out)}")
    return out


def _side_pair(values: Any, name: str) -> tuple[int, int]:
    if not isinstance(values, (list, tuple)) or len(values) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 1 <= v <= MAX_RESIZE_SHORTER
            for v in values):
        raise ValueError(f"{name} must be [height, width], integers in 1..{MAX_RESIZE_SHORTER}, got {_short(values)}")
    return int(values[0]), int(values[1])


# --------------------------------------------------------------------------------------------- pipeline

def resized_size(height: int, width: int, s: Mapping[str, Any]) -> tuple[int, int]:
    """(width, height) of the resized image, before the center crop, for a resolved spec ``s``."""
    if s["kind"] in WHOLE_IMAGE_KINDS:
        return s["crop"][1], s["crop"][0]
    return shorter_side_size(height, width, int(s["resize_shorter"]))


def geometry(image: Any, spec: Mapping[str, Any] | None, size: Sequence[int]) -> np.ndarray:
    """The uint8 (H, W, 3) crop the network sees (resize + crop, no normalisation)."""
    s = resolve_spec(spec, size)
    rgb = to_rgb_uint8(image)
    if s["kind"] in WHOLE_IMAGE_KINDS:
        return resize_bilinear(rgb, s["crop"][1], s["crop"][0])
    return center_crop(resize_shorter(rgb, int(s["resize_shorter"])), *s["crop"])


def normalise(pixels: np.ndarray, s: Mapping[str, Any]) -> np.ndarray:
    """(..., 3) uint8 -> float32, scaled and normalised as the resolved spec ``s`` says."""
    x = pixels.astype(np.float32)
    inverse = 1.0 / s["scale"]
    if s["scale"] == 1.0:
        pass
    elif abs(inverse - round(inverse)) < 1e-9:
        np.divide(x, np.float32(round(inverse)), out=x)  # ToTensor divides by 255 in float32
    else:
        np.multiply(x, np.float32(s["scale"]), out=x)
    if s["kind"] not in WHOLE_IMAGE_KINDS:
        np.subtract(x, np.asarray(s["mean"], np.float32), out=x)
        np.divide(x, np.asarray(s["std"], np.float32), out=x)
    return x


def normalisation_table(s: Mapping[str, Any]) -> np.ndarray:
    """(3, 256) float32: ``normalise`` of every uint8 value per channel, which the kernels look up (the
    same float operations on the same values, so the same bits)."""
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)  # (256, 3)
    return np.ascontiguousarray(normalise(values, s).T)


def preprocess(image: Any, spec: Mapping[str, Any] | None = None, size: Sequence[int] = (224, 224),
               kernels: Any = None) -> np.ndarray:
    """Image -> (H, W, 3) float32, normalised as the bundle's spec says. ``kernels``: the SIMD library's
    preprocessing (``simd.preprocess_ops.PreprocessKernels``), or None for numpy; both give the same bits."""
    s = resolve_spec(spec, size)
    if kernels is not None:
        return kernels.preprocess(image, s)
    return normalise(geometry(image, s, size), s)


__all__ = ["ImageError", "KINDS", "MAX_ASPECT_RATIO", "MAX_PIXELS", "MAX_RESIZE_SHORTER", "PRECISION_BITS",
           "WHOLE_IMAGE_KINDS", "as_pixels", "center_crop", "check_size", "crop_window", "geometry", "normalise",
           "normalisation_table", "preprocess", "resize_bilinear", "resize_shorter", "resized_size", "resolve_spec",
           "to_rgb_uint8", "vertical_pass_first"]
