"""Decoded pixels in, (H, W, C) uint8 out: the size limits, the accepted pixel types and layouts, and the
conversion to RGB (what PIL's ``convert("RGB")`` / a browser canvas would do).

Gray (H, W) or (H, W, 1) is replicated to RGB; (H, W, 2) gray+alpha and (H, W, 4) RGBA drop alpha
(not composited, like ``convert("RGB")``); uint16 keeps the high byte (``v >> 8``), bool maps to 0/255.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_PIXELS = 50_000_000  # refuse larger images: ~50 MP is beyond any camera photo we expect and keeps Wasm memory sane
# Refuse images longer than this many times their width (or wider than their height). Resizing the shorter side to
# 256 multiplies the long side by 256 / short: a 5000x1 strip would become 1,280,000x256 (~1 GB of pixels) before
# the crop. At 20:1 the resized image is at most 5120x256 (1.3 MP, ~16 MB of int32 accumulators, a few hundred ms
# natively); the center crop of such a strip keeps only 1/20 of it anyway. Camera panoramas are at most ~10:1.
MAX_ASPECT_RATIO = 20


class ImageError(ValueError):
    """The image cannot be used: not an image, corrupt, empty, too large, or an unsupported layout."""


def check_size(width: int, height: int) -> None:
    """Refuse empty images, images over MAX_PIXELS and images more elongated than MAX_ASPECT_RATIO, from the
    dimensions alone (before any pixels exist)."""
    if height <= 0 or width <= 0:
        raise ImageError(f"the image is empty ({width}x{height} pixels)")
    if height * width > MAX_PIXELS:
        raise ImageError(f"the image is too large: {width}x{height} = {height * width / 1e6:.1f} megapixels "
                         f"(the limit is {MAX_PIXELS / 1e6:.0f})")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        long, short = max(width, height), min(width, height)
        raise ImageError(f"the image is too elongated: {width}x{height} pixels has an aspect ratio of "
                         f"{long / short:.0f}:1 (the limit is {MAX_ASPECT_RATIO}:1)")


def as_pixels(image: Any) -> np.ndarray:
    """Any supported pixel array -> (H, W, C) uint8 with C in 1..4 (gray, gray+alpha, RGB, RGBA), size-checked;
    no copy for uint8 input."""
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
    check_size(arr.shape[1], arr.shape[0])
    return arr


def to_rgb_uint8(image: Any) -> np.ndarray:
    """Any supported pixel array -> (H, W, 3) uint8 RGB (see the module docstring)."""
    arr = as_pixels(image)
    c = arr.shape[2]
    if c in (1, 2):
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif c == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)
