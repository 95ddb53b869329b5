"""Image preprocessing, bit-exact with torchvision's PIL pipeline, in numpy (same code natively and
in Pyodide, where JavaScript only hands over decoded RGBA pixels).

``imagenet``: ``Resize(256)`` (shorter side to 256, PIL bilinear with antialiasing), ``CenterCrop(224)``,
``ToTensor`` (/255), ``Normalize(mean, std)``. The resize reimplements Pillow's ImagingResample
(src/libImaging/Resample.c) for 8-bit images: per axis, a triangle filter stretched by the scale
factor, coefficients rounded to fixed point (PRECISION_BITS = 32 - 8 - 2), one pass per axis, the first pass's
result rounded and clipped to uint8 before the second. The pass order is Pillow 13's: vertical first when
the height shrinks by more than twice as many pixels as the width, ``(H - h) > 0 and (H - h) > 2 (W - w)``
(Pillow PR #9549), otherwise horizontal first. Older Pillow always went horizontal first; the order moves
single pixels by one uint8 step, so we follow the current release and test bit-for-bit against it.

Input conversion (what PIL's ``convert("RGB")`` / a browser canvas would do):
gray (H, W) or (H, W, 1) is replicated to RGB; (H, W, 2) gray+alpha and (H, W, 4) RGBA drop alpha
(not composited, like ``convert("RGB")``); uint16 keeps the high byte (``v >> 8``), bool maps to 0/255.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

MAX_PIXELS = 50_000_000  # refuse larger images: ~50 MP is beyond any camera photo we expect and keeps Wasm memory sane
PRECISION_BITS = 32 - 8 - 2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINDS = ("imagenet", "inception", "none", "raw")
WHOLE_IMAGE_KINDS = ("none", "raw")  # resized to the input size: no crop, no normalisation


class ImageError(ValueError):
    """The image cannot be used: not an image, corrupt, empty, too large, or an unsupported layout."""


# --------------------------------------------------------------------------------------------- conversion

def to_rgb_uint8(image: Any) -> np.ndarray:
    """Any supported pixel array -> (H, W, 3) uint8 RGB (see the module docstring)."""
    try:
        arr = np.asarray(image)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot turn into an array
        raise ImageError(f"not an image array: {exc}") from None
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * np.uint8(255)
    else:
        raise ImageError(f"unsupported pixel type {arr.dtype} (expected uint8 or uint16)")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"unsupported image shape {arr.shape} (expected HxW, HxWx3 or HxWx4)")
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise ImageError(f"the image is empty ({w}x{h} pixels)")
    if h * w > MAX_PIXELS:
        raise ImageError(f"the image is too large: {w}x{h} = {h * w / 1e6:.1f} megapixels "
                         f"(the limit is {MAX_PIXELS / 1e6:.0f})")
    c = arr.shape[2]
    if c in (1, 2):
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif c == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------------- resize

def _coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter, box (0, in_size).

    Returns (first input index per output (out,), int32 weights (out, ksize)); weights past each
    window's end are 0, so indices there are clamped and read harmlessly."""
    scale = in_size / out_size  # (in1 - in0) / outSize, in double
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # bilinear support is 1
    ksize = int(math.ceil(support)) * 2 + 1
    xx = np.arange(out_size, dtype=np.float64)
    center = 0.0 + (xx + 0.5) * scale
    ss = 1.0 / filterscale
    xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)  # C: (int) truncates
    xmax = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - xmin
    k = np.zeros((out_size, ksize), np.float64)
    ww = np.zeros(out_size, np.float64)
    for x in range(ksize):  # sequential sum, in the same order as the C loop
        arg = ((x + xmin) - center + 0.5) * ss
        w = np.abs(arg)
        w = np.where(w < 1.0, 1.0 - w, 0.0)
        w = np.where(x < xmax, w, 0.0)
        k[:, x] = w
        ww = ww + w
    k = np.where(ww[:, None] != 0.0, k / np.where(ww == 0.0, 1.0, ww)[:, None], k)
    fixed = np.where(k < 0, np.trunc(-0.5 + k * (1 << PRECISION_BITS)), np.trunc(0.5 + k * (1 << PRECISION_BITS)))
    return xmin, fixed.astype(np.int32)


def _resample_axis(img: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One 8-bit pass of ImagingResampleHorizontal/Vertical along ``axis`` of a uint8 array."""
    in_size = img.shape[axis]
    first, coeffs = _coefficients(in_size, out_size)
    out_shape = list(img.shape)
    out_shape[axis] = out_size
    wshape = [1] * img.ndim
    wshape[axis] = out_size
    acc = np.full(out_shape, 1 << (PRECISION_BITS - 1), np.int32)  # the rounding term
    term = np.empty(out_shape, np.int32)
    for t in range(coeffs.shape[1]):
        kt = coeffs[:, t]
        if not kt.any():
            continue
        idx = np.minimum(first + t, in_size - 1).astype(np.intp)  # wasm32: intp is int32
        np.multiply(np.take(img, idx, axis=axis), kt.reshape(wshape), out=term)
        np.add(acc, term, out=acc)
    # clip8: values are >> PRECISION_BITS and clamped to 0..255
    np.right_shift(acc, PRECISION_BITS, out=acc)
    return np.clip(acc, 0, 255).astype(np.uint8)


def resize_bilinear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, C) uint8 -> (height, width, C) uint8, equal to PIL ``resize((width, height), BILINEAR)``
    (see the module docstring for the pass order)."""
    if img.ndim != 3 or img.dtype != np.uint8:
        raise ImageError("resize_bilinear expects an (H, W, C) uint8 array")
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img.copy()
    out = img
    if vertical_pass_first(w, h, width, height):
        if height != h:
            out = _resample_axis(out, height, axis=0)
        if width != w:
            out = _resample_axis(out, width, axis=1)
        return out
    if width != w:
        out = _resample_axis(out, width, axis=1)
    if height != h:
        out = _resample_axis(out, height, axis=0)
    return out


def vertical_pass_first(in_w: int, in_h: int, out_w: int, out_h: int) -> bool:
    """Pillow 13's pass order (Resample.c): shrinking the height first makes the horizontal pass cheaper."""
    return (in_h - out_h) > 0 and (in_h - out_h) > (in_w - out_w) * 2


def resize_shorter(img: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``Resize(size)``: shorter side to ``size``, longer = int(size * long / short)."""
    h, w = img.shape[:2]
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    return resize_bilinear(img, new_w, new_h)


def center_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision ``CenterCrop``: zero-pad first when the image is smaller, then crop the middle."""
    h, w = img.shape[:2]
    if height > h or width > w:
        pt, pl = (height - h) // 2 if height > h else 0, (width - w) // 2 if width > w else 0
        pb, pr = (height - h + 1) // 2 if height > h else 0, (width - w + 1) // 2 if width > w else 0
        img = np.pad(img, ((pt, pb), (pl, pr), (0, 0)))
        h, w = img.shape[:2]
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return img[top:top + height, left:left + width]


# --------------------------------------------------------------------------------------------- pipeline

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
        return {"kind": kind, "crop": tuple(int(v) for v in size), "resize_shorter": None,
                "scale": float(spec.get("scale", 1.0 if kind == "raw" else 1.0 / 255.0)),
                "mean": (0.0,) * 3, "std": (1.0,) * 3}
    crop = tuple(int(v) for v in spec.get("crop", size))
    if kind == "imagenet":
        defaults = {"resize_shorter": 256 if crop == (224, 224) else int(round(crop[0] / 0.875)),
                    "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    else:
        defaults = {"resize_shorter": int(round(crop[0] / 0.875)), "mean": (0.5,) * 3, "std": (0.5,) * 3}
    return {"kind": kind, "crop": crop,
            "resize_shorter": spec.get("resize_shorter", defaults["resize_shorter"]),
            "scale": float(spec.get("scale", 1.0 / 255.0)),
            "mean": tuple(float(v) for v in spec.get("mean", defaults["mean"])),
            "std": tuple(float(v) for v in spec.get("std", defaults["std"]))}


def geometry(image: Any, spec: Mapping[str, Any] | None, size: Sequence[int]) -> np.ndarray:
    """The uint8 (H, W, 3) crop the network sees (resize + crop, no normalisation)."""
    s = resolve_spec(spec, size)
    rgb = to_rgb_uint8(image)
    if s["kind"] in WHOLE_IMAGE_KINDS:
        return resize_bilinear(rgb, s["crop"][1], s["crop"][0])
    return center_crop(resize_shorter(rgb, int(s["resize_shorter"])), *s["crop"])


def preprocess(image: Any, spec: Mapping[str, Any] | None = None, size: Sequence[int] = (224, 224)) -> np.ndarray:
    """Image -> (H, W, 3) float32, normalised as the bundle's spec says."""
    s = resolve_spec(spec, size)
    pixels = geometry(image, s, size)
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
