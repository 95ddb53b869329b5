"""Decoding image files natively, with Pillow (the optional ``image`` extra). The browser decodes in
JavaScript instead and hands RGBA pixels to ``preprocess``."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import limits
from .preprocess import MAX_PIXELS, ImageError


def _pil():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImageError("decoding image files needs Pillow: pip install 'wasmvision[image]'") from None
    return Image, ImageOps


def is_encoded(source: Any) -> bool:
    """True for what ``read_image`` decodes (a path, or an image file's bytes); False for pixel arrays."""
    return isinstance(source, (str, os.PathLike, bytes, bytearray))


def read_image(source: Any) -> np.ndarray:
    """A path or the bytes of an image file -> (H, W, 3) uint8, or (H, W) uint16 for 16-bit gray
    (``preprocess`` converts that). EXIF orientation is applied. Messages start with the path
    (for bytes, with "image")."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "image"
    else:
        path = Path(source)
        name = str(path)
        try:
            data = limits.read_path(path, limits.IMAGE)
        except limits.ReadLimitError as exc:
            raise ImageError(f"{name}: {exc}") from None
        except FileNotFoundError:
            raise ImageError(f"{name}: file not found") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a directory, not an image file") from None
        except OSError as exc:
            raise ImageError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes)")
    Image, ImageOps = _pil()
    try:
        with warnings.catch_warnings():  # our own MAX_PIXELS check below gives the message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: the image is too large (more than {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except Exception:  # noqa: BLE001 - Pillow raises several types for unknown formats
        raise ImageError(f"{name}: not an image (or a format Pillow cannot read)") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: the image is too large: {w}x{h} = {w * h / 1e6:.1f} megapixels "
                         f"(the limit is {MAX_PIXELS / 1e6:.0f})")
    if w == 0 or h == 0:
        raise ImageError(f"{name}: the image is empty ({w}x{h} pixels)")
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            # 16-bit grayscale: keep the full range, preprocess takes the high byte.
            arr = np.asarray(img)
            return np.clip(arr, 0, 65535).astype(np.uint16)
        if img.mode == "F":
            return np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: the image is too large") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name}: the image is corrupt or truncated ({exc})") from None
