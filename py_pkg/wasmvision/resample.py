"""Pillow's 8-bit bilinear resample (src/libImaging/Resample.c, ImagingResample) in numpy, and torchvision's
Resize / CenterCrop geometry around it.

Per axis, a triangle filter stretched by the scale factor, coefficients rounded to fixed point
(PRECISION_BITS = 32 - 8 - 2), one pass per axis, the first pass's result rounded and clipped to uint8 before the
second. The pass order is Pillow 13's: vertical first when the height shrinks by more than twice as many pixels as
the width, ``(H - h) > 0 and (H - h) > 2 (W - w)`` (Pillow PR #9549), otherwise horizontal first. Older Pillow
always went horizontal first; the order moves single pixels by one uint8 step, so we follow the current release
and test bit-for-bit against it. The Wasm SIMD kernels (simd/resample.c) compute the same sums from the same
coefficients (``coefficients``).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .pixels import ImageError

PRECISION_BITS = 32 - 8 - 2


def coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
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
    x = np.arange(ksize)[None, :]
    arg = ((x + xmin[:, None]) - center[:, None] + 0.5) * ss  # (out, ksize), each element as the C loop has it
    k = np.abs(arg)
    k = np.where((k < 1.0) & (x < xmax[:, None]), 1.0 - k, 0.0)
    ww = np.add.accumulate(k, axis=1)[:, -1]  # a sequential sum, in the C loop's order (not numpy's pairwise sum)
    k = np.where(ww[:, None] != 0.0, k / np.where(ww == 0.0, 1.0, ww)[:, None], k)
    fixed = np.where(k < 0, np.trunc(-0.5 + k * (1 << PRECISION_BITS)), np.trunc(0.5 + k * (1 << PRECISION_BITS)))
    return xmin, fixed.astype(np.int32)


def _resample_axis(img: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One 8-bit pass of ImagingResampleHorizontal/Vertical along ``axis`` of a uint8 array."""
    in_size = img.shape[axis]
    first, coeffs = coefficients(in_size, out_size)
    plan = _two_phase_plan(first, coeffs, in_size)
    if plan is None:  # enlarging: windows overlap more than two deep
        return _resample_axis_taps(img, first, coeffs, axis)
    if axis == 1:
        return _resample_rows_two_phase(img, *plan)
    return _resample_columns_two_phase(img, *plan)


def _resample_axis_taps(img: np.ndarray, first: np.ndarray, coeffs: np.ndarray, axis: int) -> np.ndarray:
    """The general pass: one gather + multiply-add per filter tap over the whole output."""
    in_size = img.shape[axis]
    out_shape = list(img.shape)
    out_shape[axis] = coeffs.shape[0]
    wshape = [1] * img.ndim
    wshape[axis] = coeffs.shape[0]
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


# The downscaling passes below compute exactly the same integer sums as the tap loop, regrouped so that
# every input pixel is touched by one multiply and one add instead of ksize gathers (ksize ~ 2 * scale,
# 25-50 taps for a 12-48 MP photo). When shrinking, output o's window ends where output o+2's begins, so
# cutting the axis at each window start gives segments where every pixel feeds at most two outputs: the
# segment's own (its rising half) and the previous one (its falling half). Both weights of a pixel are
# packed into one uint64, low word and high word; each word's sum stays below 2**31 (pixels <= 255,
# weights summing to ~2**22), so one multiply and one segment sum yield both halves without carries.
# Along rows, segment sums are differences of a running sum; it wraps modulo 2**64 (defined for unsigned
# types) and the differences stay exact. Along columns each segment's rows are summed directly.

_SEGMENT_BLOCK = 1 << 18  # uint64 elements per working block (2 MB): measured fastest in Pyodide
_LOW_WORD = 0 if sys.byteorder == "little" else 1


def _two_phase_plan(first: np.ndarray, coeffs: np.ndarray, in_size: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Segment bounds (out + 2,), packed per-pixel weights (in_size,) uint64 and whether clip8 can
    ever bite (rounded weights summing past 2**22 by thousands: never for photos), or None when some
    output's nonzero weights do not fit in its own and the next segment (most enlargements) or some
    weight is negative."""
    out_size, ksize = coeffs.shape
    if (coeffs < 0).any():
        return None
    pos = first[:, None] + np.arange(ksize)  # (out, ksize) input index of each weight
    nonzero = coeffs != 0
    lo = np.where(nonzero, pos, in_size).min(axis=1)
    hi = np.where(nonzero, pos + 1, 0).max(axis=1)
    # segment j is [bounds[j], bounds[j + 1]); output o reads segments o (low word) and o + 1 (high word)
    bounds = np.empty(out_size + 2, np.int64)
    bounds[0] = 0
    bounds[1:out_size] = first[1:]
    bounds[out_size] = max(bounds[out_size - 1], hi[out_size - 2]) if out_size >= 2 else 0
    bounds[out_size + 1] = in_size
    o = np.arange(out_size)
    if not np.all(((lo >= bounds[o]) & (hi <= bounds[o + 2])) | ~nonzero.any(axis=1)):
        return None
    segment = np.searchsorted(bounds, pos, side="right") - 1  # (out, ksize)
    low = np.zeros(in_size, np.uint64)
    high = np.zeros(in_size, np.uint64)
    own = nonzero & (segment == o[:, None])
    low[pos[own]] = coeffs[own]
    nxt = nonzero & (segment == o[:, None] + 1)
    high[pos[nxt]] = coeffs[nxt]
    largest = 255 * int(coeffs.sum(axis=1, dtype=np.int64).max()) + (1 << (PRECISION_BITS - 1))
    clip = largest >= 256 << PRECISION_BITS
    return bounds, low | (high << np.uint64(32)), clip


def _unpack_segment_sums(sums: np.ndarray, axis: int, clip: bool) -> np.ndarray:
    """(.., out + 1, ..) packed segment sums -> (.., out, ..) uint8: output o is segment o's low word
    plus segment o + 1's high word, then Pillow's rounding and clip8."""
    n = sums.shape[axis]
    words = sums.view(np.uint32).reshape(sums.shape + (2,))  # (.., out + 1, .., 2), views, no copies
    own = [slice(None)] * sums.ndim
    nxt = [slice(None)] * sums.ndim
    own[axis] = slice(0, n - 1)
    nxt[axis] = slice(1, n)
    acc = np.add(words[..., _LOW_WORD][tuple(own)], words[..., 1 - _LOW_WORD][tuple(nxt)])  # < 2**32
    acc += np.uint32(1 << (PRECISION_BITS - 1))
    if clip:
        acc >>= np.uint32(PRECISION_BITS)
        np.minimum(acc, 255, out=acc)
        return acc.astype(np.uint8)
    return np.right_shift(acc, PRECISION_BITS, out=np.empty(acc.shape, np.uint8), casting="unsafe")


def _resample_rows_two_phase(img: np.ndarray, bounds: np.ndarray, packed: np.ndarray, clip: bool) -> np.ndarray:
    """Horizontal pass (H, W, C) -> (H, out, C): per block of rows, weight, running-sum along W, and
    read the running sum at each segment's last pixel."""
    h, w, c = img.shape
    out_size = len(bounds) - 2
    weights = np.repeat(packed, c).reshape(w, c)  # (W, C)
    rows = max(1, _SEGMENT_BLOCK // (w * c))
    block = np.empty((min(rows, h), w, c), np.uint64)  # (rows, W, C)
    last = bounds[1:] - 1  # segment j's last pixel; -1 only for an empty leading segment
    empty = last < 0
    any_empty = bool(empty.any())
    last = np.maximum(last, 0).astype(np.intp)
    at_ends = np.empty((min(rows, h), out_size + 1, c), np.uint64)  # (rows, out + 1, C)
    sums = np.empty_like(at_ends)
    res = np.empty((h, out_size, c), np.uint8)
    for r0 in range(0, h, rows):
        n = min(rows, h - r0)
        v = block[:n]
        np.copyto(v, img[r0:r0 + n])  # widening first, then an all-uint64 multiply: faster in Wasm
        np.multiply(v, weights, out=v)
        np.cumsum(v, axis=1, out=v)
        e = at_ends[:n]
        np.take(v, last, axis=1, out=e, mode="clip")  # "clip": no buffered out
        if any_empty:
            e[:, empty] = 0
        d = sums[:n]
        d[:, 0] = e[:, 0]
        np.subtract(e[:, 1:], e[:, :-1], out=d[:, 1:])
        res[r0:r0 + n] = _unpack_segment_sums(d, 1, clip)
    return res


def _resample_columns_two_phase(img: np.ndarray, bounds: np.ndarray, packed: np.ndarray, clip: bool) -> np.ndarray:
    """Vertical pass (H, W, C) -> (out, W, C): weight a block of whole segments' rows, then sum each
    segment's rows (a reduction over contiguous rows, no running sum needed)."""
    h = img.shape[0]
    flat = img.reshape(h, -1)  # (H, W * C)
    m = flat.shape[1]
    out_size = len(bounds) - 2
    sums = np.zeros((out_size + 1, m), np.uint64)  # (out + 1, W * C)
    rows = max(_SEGMENT_BLOCK // m, int(np.diff(bounds).max()), 1)
    block = np.empty((min(rows, h), m), np.uint64)
    j = 0
    while j <= out_size:
        a = int(bounds[j])
        k = j + 1  # segments j..k-1 fit in one block
        while k <= out_size and bounds[k + 1] - a <= rows:
            k += 1
        b = int(bounds[k])
        v = block[:b - a]
        np.copyto(v, flat[a:b])
        np.multiply(v, packed[a:b, None], out=v)
        for s in range(j, k):
            if bounds[s + 1] > bounds[s]:
                np.add.reduce(v[bounds[s] - a:bounds[s + 1] - a], axis=0, out=sums[s])
        j = k
    return _unpack_segment_sums(sums, 0, clip).reshape((out_size,) + img.shape[1:])


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
    return resize_bilinear(img, *shorter_side_size(img.shape[0], img.shape[1], size))


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)``'s (width, height): shorter side to ``size``, longer = int(size * long / short)."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def crop_window(size: int, crop: int) -> tuple[int, int, int]:
    """torchvision ``CenterCrop`` along one axis of ``size`` pixels: (first kept pixel, pixels kept, zero pixels
    padded before them). Smaller images are zero-padded (half before, the odd one after), larger ones cut with
    ``round((size - crop) / 2)``."""
    if crop > size:
        return 0, size, (crop - size) // 2
    return int(round((size - crop) / 2.0)), crop, 0


def center_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision ``CenterCrop``: zero-pad first when the image is smaller, then crop the middle."""
    h, w = img.shape[:2]
    top, rows, pad_top = crop_window(h, height)
    left, cols, pad_left = crop_window(w, width)
    if (rows, cols) == (height, width):
        return img[top:top + height, left:left + width]
    out = np.zeros((height, width) + img.shape[2:], img.dtype)
    out[pad_top:pad_top + rows, pad_left:pad_left + cols] = img[top:top + rows, left:left + cols]
    return out
