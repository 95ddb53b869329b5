"""The kernels' parameter structs as ctypes mirrors of wvsimd_params.h, and the check that they agree.

A kernel takes one argument, the address of its struct, filled once per plan. Addresses are wasm32 offsets in
uint32 fields (the library only runs in Pyodide). ``layout_problems`` compares these mirrors with the table the
library exports (layout.c): ``Library`` refuses a library whose layout differs, and a test builds layout.c with
the host compiler to check the same table natively.
"""

from __future__ import annotations

import ctypes

ACT_NONE, ACT_CLIP, ACT_HARDSWISH, ACT_HARDSIGMOID = 0, 1, 2, 3
ENUMS = {"ACT_NONE": ACT_NONE, "ACT_CLIP": ACT_CLIP, "ACT_HARDSWISH": ACT_HARDSWISH,
         "ACT_HARDSIGMOID": ACT_HARDSIGMOID}

_u32, _f32 = ctypes.c_uint32, ctypes.c_float


def _words(names: str) -> list[tuple[str, type]]:
    return [(name, _u32) for name in names.split()]


class ActParams(ctypes.Structure):
    """The fused activation: clip bounds (lo, hi); hard* slope and offset (alpha, beta)."""
    _fields_ = [("kind", _u32), ("lo", _f32), ("hi", _f32), ("alpha", _f32), ("beta", _f32)]


class GemmParams(ctypes.Structure):
    _fields_ = _words("a lda bp bias c ldc m k n mc gather") + [("act", ActParams)] + _words("res ldr row0")


class DwconvParams(ctypes.Structure):
    _fields_ = _words("x wt bias y n h w c kh kw sh sw pt pl oh ow") + [("act", ActParams)]


class Im2colParams(ctypes.Structure):
    _fields_ = _words("x cols n h w c kh kw sh sw dh dw pt pl oh ow c0 cg")


class PwDwParams(ctypes.Structure):
    _fields_ = _words("pw dw band band_oh")


class GapParams(ctypes.Structure):
    _fields_ = _words("x y n p c") + [("inv", _f32)]


STRUCTS = (ActParams, GemmParams, DwconvParams, Im2colParams, GapParams, PwDwParams)


class LayoutEntry(ctypes.Structure):
    """One row of layout.c's table: a struct's size, a field's offset or an enum constant, by name."""
    _fields_ = [("name", ctypes.c_char_p), ("value", _u32)]


def expected_layout() -> dict[str, int]:
    """What layout.c's table must say, from the ctypes mirrors."""
    table = dict(ENUMS)
    for struct in STRUCTS:
        table[struct.__name__] = ctypes.sizeof(struct)
        for name, _ in struct._fields_:
            table[f"{struct.__name__}.{name}"] = getattr(struct, name).offset
    return table


def read_layout(address: int) -> dict[str, int]:
    """layout.c's table at ``address`` (what ``wv_layout()`` returns) as a dict."""
    entries = ctypes.cast(address, ctypes.POINTER(LayoutEntry))
    table, i = {}, 0
    while entries[i].name is not None:
        table[entries[i].name.decode()] = entries[i].value
        i += 1
    return table


def layout_problems(c_table: dict[str, int]) -> list[str]:
    """Each disagreement between the C table and the mirrors, one line each (empty when they agree)."""
    want = expected_layout()
    return [f"{name}: C says {c_table.get(name)}, the binding {want.get(name)}"
            for name in sorted(set(want) | set(c_table)) if c_table.get(name) != want.get(name)]
