"""The kernels' parameter structs: the ctypes mirrors (simd/descriptors.py) against the C header, natively.

layout.c is built with the host C compiler into a tiny shared library; its table gives every struct's size,
every field's offset and the activation enum by name. The same table from the Wasm module is checked in
Pyodide by test_simd_kernels.py (and by ``Library`` on every load).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

from wasmvision.simd.descriptors import ENUMS, STRUCTS, expected_layout, layout_problems, read_layout

SIMD = Path(__file__).resolve().parents[1] / "py_pkg" / "wasmvision" / "simd"


@pytest.fixture(scope="module")
def c_table(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no host C compiler")
    lib = tmp_path_factory.mktemp("layout") / "liblayout.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O0", "-std=c11", "-Wall", "-Werror", str(SIMD / "layout.c"),
                    "-o", str(lib)], check=True)
    dll = ctypes.CDLL(str(lib))
    dll.wv_layout.restype, dll.wv_layout.argtypes = ctypes.c_size_t, []
    return read_layout(dll.wv_layout())


def test_every_struct_field_and_enum_matches_the_header(c_table):
    assert layout_problems(c_table) == []
    assert set(c_table) == set(expected_layout())


def test_the_table_covers_every_mirrored_field(c_table):
    for struct in STRUCTS:
        assert c_table[struct.__name__] == ctypes.sizeof(struct)
        for name, _ in struct._fields_:
            assert f"{struct.__name__}.{name}" in c_table
    for name, value in ENUMS.items():
        assert c_table[name] == value


def test_a_moved_field_or_changed_enum_is_reported(c_table):
    moved = dict(c_table, **{"GemmParams.mc": c_table["GemmParams.mc"] + 4})
    assert layout_problems(moved) == ["GemmParams.mc: C says 40, the binding 36"]
    extra = dict(c_table, **{"GemmParams.extra": 64, "ACT_CLIP": 7})
    assert len(layout_problems(extra)) == 2
