"""The Wasm SIMD engine: a small C kernel library (libwvsimd.so, an Emscripten side module built by
build.py from the C files beside this one) that runs the hot loops inside Pyodide, on numpy's own buffers.

numpy stays the engine everywhere else: natively (numpy has BLAS there; this library is WebAssembly), for every
node the kernels do not cover, and whenever the library cannot load. Choosing an engine:

* ``resolve_engine("auto")`` -> the library when it loads, else numpy with a one-line notice (None natively,
  where numpy is simply the engine);
* ``"numpy"`` -> numpy; ``"simd"`` -> the library or :class:`EngineError`.

The library is loaded once per process and checked first against the sha256 build.py recorded beside it
(libwvsimd.json): a file that does not match is refused, by name. It comes in two builds of the same sources
(BUILDS): relaxed SIMD (libwvsimd_relaxed.so, fused multiply-adds) where the engine validates it, else plain
SIMD128 (libwvsimd.so). ``WASMVISION_SIMD_BUILD=plain`` (or ``relaxed``) forces one.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .descriptors import layout_problems, read_layout

ENGINES = ("auto", "numpy", "simd")
LIBRARY = Path(__file__).with_name("libwvsimd.so")
LIBRARY_INFO = Path(__file__).with_name("libwvsimd.json")
INTERFACE_VERSION = 2  # wv_version() of the C sources this binding is written for
BUILD_ENV = "WASMVISION_SIMD_BUILD"


@dataclass(frozen=True)
class Build:
    """One build of the library (buildtools/simd.py makes both): its name, wv_build() value and file."""
    name: str
    code: int
    path: Path

    @property
    def info(self) -> Path:
        return self.path.with_suffix(".json")


BUILDS = (Build("relaxed", 1, LIBRARY.with_name("libwvsimd_relaxed.so")), Build("plain", 0, LIBRARY))


class EngineError(RuntimeError):
    """The requested engine cannot run here (e.g. engine="simd" outside Pyodide)."""


class Library:
    """The loaded kernels: one-argument entry points that take the address of their parameter struct
    (descriptors.py). Refuses a library of another interface version or parameter layout."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))  # OSError when the engine has no Wasm SIMD or the file is not a module
        lib.wv_version.restype, lib.wv_version.argtypes = ctypes.c_int, []
        version = lib.wv_version()
        if version != INTERFACE_VERSION:
            raise OSError(f"interface version {version}, this binding needs {INTERFACE_VERSION}")
        lib.wv_layout.restype, lib.wv_layout.argtypes = ctypes.c_size_t, []
        lib.wv_build.restype, lib.wv_build.argtypes = ctypes.c_int, []
        self.build = {b.code: b.name for b in BUILDS}.get(lib.wv_build(), "unknown")
        self.layout = read_layout(lib.wv_layout())  # the C side's sizes, offsets and enum values, by name
        problems = layout_problems(self.layout)
        if problems:
            raise OSError(f"parameter layout differs from the binding's ({len(problems)} fields): {problems[0]}")
        for name in ("wv_gemm", "wv_dwconv", "wv_gap", "wv_pwdw"):
            getattr(lib, name).restype = None
            getattr(lib, name).argtypes = [ctypes.c_size_t]
        self.path = path
        self.gemm = lib.wv_gemm
        self.dwconv = lib.wv_dwconv
        self.gap = lib.wv_gap
        self.pwdw = lib.wv_pwdw
        self._lib = lib  # keeps the module loaded

    def still_linked(self) -> bool:
        """Whether the entry points bound at load still reach this library's functions and data: false in a
        restored memory snapshot whose library got another table or memory base than when it was taken."""
        lib = self._lib
        return (lib.wv_version() == INTERFACE_VERSION and {b.code: b.name for b in BUILDS}.get(lib.wv_build()) ==
                self.build and read_layout(lib.wv_layout()) == self.layout)


def load_library(path: Path = LIBRARY, info: Path = LIBRARY_INFO) -> tuple[Library | None, str | None]:
    """(library, None) or (None, a one-line reason). Never raises for a bad or missing file."""
    if sys.platform != "emscripten":
        return None, "the SIMD kernels are WebAssembly and run only inside Pyodide"
    if not path.exists() or not info.exists():
        return None, f"SIMD kernel library {path} is not built; using numpy"
    try:
        expected = json.loads(info.read_text())["sha256"]
    except (OSError, ValueError, KeyError) as exc:
        return None, f"SIMD kernel library {path}: unreadable {info.name} ({exc}); using numpy"
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        return None, (f"refusing SIMD kernel library {path}: sha256 {actual} does not match the build's "
                      f"{expected}; using numpy")
    try:
        lib = Library(path)
    except (OSError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"SIMD kernel library {path} failed to load ({reason}); using numpy"
    from .ops import self_check

    problem = self_check(lib)
    if problem:
        return None, f"SIMD kernel library {path} gave wrong results ({problem}); using numpy"
    return lib, None


def engine_validates(path: Path) -> bool:
    """Whether this engine compiles the module (feature detection for relaxed SIMD): WebAssembly.validate, so an
    unsupported build is never handed to the dynamic loader (a failed load leaves a half-registered library)."""
    import js  # Pyodide's bridge to the engine
    from pyodide.ffi import to_js

    return bool(js.WebAssembly.validate(to_js(path.read_bytes())))


def chosen_builds() -> tuple[Build, ...]:
    """The builds to try, best first: BUILDS, or the one WASMVISION_SIMD_BUILD names."""
    forced = os.environ.get(BUILD_ENV, "").strip()
    return tuple(b for b in BUILDS if b.name == forced) if forced else BUILDS


@functools.lru_cache(maxsize=1)
def default_library() -> tuple[Library | None, str | None]:
    """The packaged library, loaded once per process (``default_library.cache_clear()`` forgets it): the relaxed
    build where the engine validates it, else the plain one."""
    builds = chosen_builds()
    if not builds:
        names = ", ".join(b.name for b in BUILDS)
        return None, f"{BUILD_ENV}={os.environ[BUILD_ENV]!r} names no build (choose {names})"
    why = None
    for build in builds:
        relaxed = build.code == 1 and sys.platform == "emscripten" and build.path.exists()
        if relaxed and not engine_validates(build.path):
            why = f"this engine has no relaxed SIMD ({build.path.name})"
            continue
        lib, why = load_library(build.path, build.info)
        if lib is not None:
            return lib, None
    return None, why


def resolve_engine(engine: str) -> tuple[Library | None, str, str | None]:
    """engine ("auto" | "numpy" | "simd") -> (library or None, the engine that will run, notice or None)."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r} (choose one of {', '.join(ENGINES)})")
    if engine == "numpy":
        return None, "numpy", None
    lib, why = default_library()
    if lib is not None:
        return lib, "simd", None
    if engine == "simd":
        raise EngineError(f"engine 'simd' is not available: {why}")
    return None, "numpy", why if sys.platform == "emscripten" else None


__all__ = ["BUILDS", "ENGINES", "EngineError", "Library", "default_library", "load_library", "resolve_engine"]
