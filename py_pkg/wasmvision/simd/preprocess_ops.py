"""The preprocessing kernels of the Wasm SIMD library (resample.c, wvresample.h): Pillow's two-pass bilinear
resample on only the rows and columns the center crop keeps, reading the caller's pixels as they are (gray,
gray+alpha, RGB, RGBA) and writing the network's float32 input through the spec's normalisation table.

Everything but the arithmetic is decided here with the numpy path's own functions (weights, pass order, crop
window, normalisation), so both engines compute the same integer sums and look up the same floats: the same bits.
Each kernel takes one typed parameter struct (the ctypes Structures below mirror wvresample.h).
"""

from __future__ import annotations

import ctypes
import functools
from ctypes import c_uint32, c_void_p
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..pixels import as_pixels
from ..preprocess import (crop_window, geometry, normalisation_table, normalise, resized_size, resolve_spec,
                          vertical_pass_first)
from ..resample import coefficients


class Taps(ctypes.Structure):
    _fields_ = [("first", c_void_p), ("count", c_void_p), ("coeffs", c_void_p), ("ksize", c_uint32),
                ("split", c_void_p), ("pairs", c_uint32)]


class HParams(ctypes.Structure):
    _fields_ = [("src", c_void_p), ("src_row", c_uint32), ("src_pixel", c_uint32), ("dst", c_void_p),
                ("dst_row", c_uint32), ("rows", c_uint32), ("cols", c_uint32), ("channels", c_uint32),
                ("taps", Taps)]


class VParams(ctypes.Structure):
    _fields_ = [("src", c_void_p), ("src_row", c_uint32), ("dst", c_void_p), ("dst_row", c_uint32),
                ("rows", c_uint32), ("bytes", c_uint32), ("taps", Taps)]


class StoreParams(ctypes.Structure):
    _fields_ = [("src", c_void_p), ("src_row", c_uint32), ("src_pixel", c_uint32), ("chan", c_uint32 * 3),
                ("dst", c_void_p), ("dst_row", c_uint32), ("dst_col", c_uint32), ("dst_chan", c_uint32),
                ("rows", c_uint32), ("cols", c_uint32), ("table", c_void_p)]


KERNELS = {  # exported name -> its parameter struct
    "wv_resample_h_u8_c4": HParams,
    "wv_resample_h_u8_c3": HParams,
    "wv_resample_h_u8_cn": HParams,
    "wv_resample_v_u8": VParams,
    "wv_store_f32": StoreParams,
}
SIZES = {"wv_resample_h_params_size": HParams, "wv_resample_v_params_size": VParams,
         "wv_store_f32_params_size": StoreParams}


@dataclass(frozen=True)
class AxisTaps:
    """The nonzero taps of the kept outputs of one axis, left-aligned."""
    first: np.ndarray   # (n,) int32: input index of each output's first nonzero tap
    count: np.ndarray   # (n,) int32: taps from there
    coeffs: np.ndarray  # (n, ksize) int32
    split: np.ndarray   # (n, pairs, 4) int16: per two taps (hi0, hi1, lo0, lo1), w = hi * 2**SPLIT_BITS + lo
    lo: int             # the input range any kept output reads: [lo, hi)
    hi: int

    def struct(self, offset: int) -> tuple[Taps, tuple]:
        """The C view, for an input that starts at input index ``offset``; and the arrays to keep alive."""
        first = (self.first - offset).astype(np.int32)
        return Taps(first.ctypes.data, self.count.ctypes.data, self.coeffs.ctypes.data, self.coeffs.shape[1],
                    self.split.ctypes.data, self.split.shape[1]), (first, self.count, self.coeffs, self.split)


@functools.lru_cache(maxsize=16)
def axis_taps(in_size: int, out_size: int, start: int, n: int) -> AxisTaps:
    """Taps of outputs [start, start + n) of resampling ``in_size`` pixels to ``out_size`` (the numpy path's
    weights: ``resample.coefficients``). Cached (read-only arrays): an album's photos mostly share a size."""
    first, k = coefficients(in_size, out_size)
    first, k = first[start:start + n].astype(np.int64), k[start:start + n]
    ksize = k.shape[1]
    nonzero = k != 0
    used = nonzero.any(axis=1)
    lead = np.argmax(nonzero, axis=1)
    count = np.where(used, ksize - np.argmax(nonzero[:, ::-1], axis=1) - lead, 0)
    idx = np.minimum(lead[:, None] + np.arange(ksize), ksize - 1)
    taps = np.take_along_axis(k, idx, axis=1)
    taps[np.arange(ksize)[None, :] >= count[:, None]] = 0
    start_at = first + lead
    lo = int(start_at[used].min()) if used.any() else 0
    hi = int((start_at + count)[used].max()) if used.any() else 0
    arrays = [np.where(used, start_at, lo).astype(np.int32), count.astype(np.int32),
              np.ascontiguousarray(taps, np.int32), split_pairs(taps)]
    for a in arrays:
        a.flags.writeable = False
    return AxisTaps(*arrays, lo, hi)


SPLIT_BITS = 11  # wvresample.h's WV_SPLIT_BITS (a library splitting otherwise fails self_check): int16 halves


def split_pairs(taps: np.ndarray) -> np.ndarray:
    """(n, ksize) int32 weights -> (n, ceil(ksize / 2), 4) int16: per two consecutive taps (hi0, hi1, lo0, lo1)
    with w = hi * 2**SPLIT_BITS + lo exactly (both halves fit in int16 for any |w| <= 2**22)."""
    n, ksize = taps.shape
    padded = np.zeros((n, ksize + ksize % 2), np.int32)
    padded[:, :ksize] = taps
    hi, lo = padded >> SPLIT_BITS, padded & ((1 << SPLIT_BITS) - 1)
    out = np.stack([hi[:, 0::2], hi[:, 1::2], lo[:, 0::2], lo[:, 1::2]], axis=2)
    return np.ascontiguousarray(out, np.int16)


def _pixel_rows(px: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 whose pixels are contiguous within each row (any positive row stride): what the kernels
    read; a copy only for other layouts."""
    if px.strides[2] == 1 and px.strides[1] == px.shape[2] and px.strides[0] >= px.shape[1] * px.shape[2]:
        return px
    return np.ascontiguousarray(px)


class PreprocessKernels:
    """The library's preprocessing entry points, bound once; ``preprocess`` is what ``preprocess.preprocess``
    calls with ``kernels=``."""

    def __init__(self, lib):
        cdll = lib._lib  # the ctypes.CDLL the engine loaded (simd.Library keeps it)
        for name, struct in SIZES.items():
            fn = getattr(cdll, name)
            fn.restype, fn.argtypes = ctypes.c_int, []
            if fn() != ctypes.sizeof(struct):
                raise OSError(f"{name}() is {fn()}, this binding's {struct.__name__} is {ctypes.sizeof(struct)}")
        self._fn = {}
        for name, struct in KERNELS.items():
            fn = getattr(cdll, name)
            fn.restype, fn.argtypes = None, [ctypes.POINTER(struct)]
            self._fn[name] = fn
        self._lib = lib

    # ---------------------------------------------------------------------------------------- passes
    def horizontal(self, x: np.ndarray, taps: AxisTaps, offset: int) -> np.ndarray:
        """(R, W', P) uint8 -> (R, n, 4 if P >= 3 else 1) uint8 (RGB gains an unused fourth byte: the SIMD tile
        writes whole 4-byte pixels)."""
        rows, _, pixel = x.shape
        channels = 4 if pixel >= 3 else 1
        out = np.empty((rows, len(taps.count), channels), np.uint8)
        t, keep = taps.struct(offset)
        p = HParams(x.ctypes.data, x.strides[0], pixel, out.ctypes.data, out.strides[0], rows, out.shape[1],
                    channels, t)
        self._fn[{4: "wv_resample_h_u8_c4", 3: "wv_resample_h_u8_c3"}.get(pixel, "wv_resample_h_u8_cn")](
            ctypes.byref(p))
        del keep
        return out

    def vertical(self, x: np.ndarray, taps: AxisTaps, offset: int) -> np.ndarray:
        """(H', W', P) uint8 -> (n, W', P) uint8."""
        _, cols, pixel = x.shape
        out = np.empty((len(taps.count), cols, pixel), np.uint8)
        t, keep = taps.struct(offset)
        p = VParams(x.ctypes.data, x.strides[0], out.ctypes.data, out.strides[0], out.shape[0], cols * pixel, t)
        self._fn["wv_resample_v_u8"](ctypes.byref(p))
        del keep
        return out

    def store(self, x: np.ndarray, out: np.ndarray, table: np.ndarray) -> None:
        """(R, C, P) uint8 -> out (R, C, 3) float32 (any strides in whole floats) through the (3, 256) table."""
        chan = (0, 1, 2) if x.shape[2] >= 3 else (0, 0, 0)  # gray: the one channel, three times
        p = StoreParams(x.ctypes.data, x.strides[0], x.strides[1], (c_uint32 * 3)(*chan), out.ctypes.data,
                        out.strides[0] // 4, out.strides[1] // 4, out.strides[2] // 4, out.shape[0], out.shape[1],
                        table.ctypes.data)
        self._fn["wv_store_f32"](ctypes.byref(p))

    # ---------------------------------------------------------------------------------------- pipeline
    def kept_pixels(self, px: np.ndarray, out_w: int, out_h: int, top: int, rows: int, left: int,
                    cols: int) -> np.ndarray:
        """Rows [top, top + rows) and columns [left, left + cols) of ``resize_bilinear(px, out_w, out_h)``,
        computing nothing else, as (rows, cols, P) uint8 (P bytes per pixel, channels first)."""
        h, w, _ = px.shape
        need_h, need_v = out_w != w, out_h != h  # an axis of unchanged size is not resampled (as in numpy)
        ht = axis_taps(w, out_w, left, cols) if need_h else None
        vt = axis_taps(h, out_h, top, rows) if need_v else None
        if vertical_pass_first(w, h, out_w, out_h):
            lo, hi = (ht.lo, ht.hi) if ht is not None else (left, left + cols)
            x = self.vertical(px[:, lo:hi], vt, 0)
            return self.horizontal(x, ht, lo) if ht is not None else x
        lo, hi = (vt.lo, vt.hi) if vt is not None else (top, top + rows)
        x = self.horizontal(px[lo:hi], ht, 0) if ht is not None else px[lo:hi, left:left + cols]
        return self.vertical(x, vt, lo) if vt is not None else x

    def preprocess_into(self, image: Any, s: Mapping[str, Any], out: np.ndarray) -> np.ndarray:
        """``preprocess`` written into ``out``: (H, W, 3) float32, any layout (e.g. a view of an NCHW buffer)."""
        if out.dtype != np.float32 or out.shape != (*s["crop"], 3) or any(v % 4 or v < 0 for v in out.strides):
            raise ValueError(f"out must be a float32 {(*s['crop'], 3)} array with positive strides")
        px = _pixel_rows(as_pixels(image))
        h, w, _ = px.shape
        out_w, out_h = resized_size(h, w, s)
        top, rows, pad_top = crop_window(out_h, s["crop"][0])
        left, cols, pad_left = crop_window(out_w, s["crop"][1])
        table = normalisation_table(s)  # (3, 256)
        if (rows, cols) != tuple(s["crop"]):
            out[...] = table[:, 0]  # the zero padding, normalised
        kept = self.kept_pixels(px, out_w, out_h, top, rows, left, cols)
        self.store(kept, out[pad_top:pad_top + rows, pad_left:pad_left + cols], table)
        return out

    def preprocess(self, image: Any, s: Mapping[str, Any]) -> np.ndarray:
        return self.preprocess_into(image, s, np.empty((*s["crop"], 3), np.float32))


def self_check(kernels: PreprocessKernels) -> str | None:
    """Small cases of each tile and pass order against numpy: a library that computes other bits is not used."""
    base = (np.arange(23 * 31 * 4) * 37 % 251).astype(np.uint8).reshape(23, 31, 4)
    cases = [(base, {"kind": "imagenet", "crop": [7, 9], "resize_shorter": 10}, (7, 9)),
             (base[:, :, :3].transpose(1, 0, 2), {"kind": "none"}, (5, 20)),
             (base[:, :, :2], {"kind": "raw"}, (40, 6))]
    for image, spec, size in cases:
        s = resolve_spec(spec, size)
        if not np.array_equal(kernels.preprocess(image, s), normalise(geometry(image, s, size), s), equal_nan=True):
            return f"preprocess {image.shape} {spec['kind']}"
    return None


@functools.lru_cache(maxsize=2)
def preprocess_kernels(lib) -> PreprocessKernels | None:
    """The preprocessing kernels of a loaded library, checked once; None when the library lacks them or they
    disagree with numpy (preprocessing then stays in numpy)."""
    try:
        kernels = PreprocessKernels(lib)
    except (OSError, AttributeError):
        return None
    return None if self_check(kernels) else kernels


__all__ = ["AxisTaps", "PreprocessKernels", "axis_taps", "preprocess_kernels", "self_check"]
