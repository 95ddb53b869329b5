"""The Wasm SIMD kernel library: C sources compiled by Debian clang + wasm-ld into Emscripten side modules that
Pyodide loads with ctypes. No libc, no emcc. Two builds of the same sources (SIMD_BUILDS): plain SIMD128 with the
system clang, and relaxed SIMD (f32x4.relaxed_madd) with clang 16, the first Debian clang that emits the final
relaxed-SIMD opcodes (clang 14's are the prototype's, which V8 rejects). The loader picks the relaxed one where
the engine validates it, else the plain one."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .paths import BUILD, ROOT
from .toolchain import apt_install, ensure_wasm_toolchain, is_root
from .util import BuildError, log, run, sha256_bytes, stage, tree_digest, up_to_date, write_if_changed

# The flags measured in docs/perf.md (clang 14); changing them changes the library's bytes and its recorded sha256.
SIMD_DIR = ROOT / "py_pkg" / "wasmvision" / "simd"
SIMD_CFLAGS = ["--target=wasm32-unknown-emscripten", "-ffreestanding", "-nostdlib", "-fno-builtin",
               "-fvisibility=hidden", "-fPIC", "-O3", "-msimd128"]
SIMD_LDFLAGS = ["--shared", "--experimental-pic", "--no-entry"]
RELAXED_LLVM = Path("/usr/lib/llvm-16/bin")  # Debian's clang-16 + lld-16


@dataclass(frozen=True)
class SimdBuild:
    """One build of the library: its manifest name, file (+ .json record beside it) and extra clang flags."""
    name: str
    file: str
    extra_cflags: tuple[str, ...] = ()

    @property
    def lib(self) -> Path:
        return SIMD_DIR / self.file

    @property
    def info(self) -> Path:  # {"name", "file", "bytes", "sha256", "sources", "compiler"}: what the loader checks
        return self.lib.with_suffix(".json")


PLAIN = SimdBuild("wasm-simd", "libwvsimd.so")
RELAXED = SimdBuild("wasm-relaxed-simd", "libwvsimd_relaxed.so", ("-mrelaxed-simd",))
SIMD_BUILDS = (RELAXED, PLAIN)  # the loaders' order of preference
SIMD_LIB, SIMD_INFO = PLAIN.lib, PLAIN.info


def relaxed_toolchain() -> tuple[str, str] | None:
    """clang-16 and its wasm-ld, installed from Debian when missing; None (with a warning) when they cannot be."""
    tools = (str(RELAXED_LLVM / "clang"), str(RELAXED_LLVM / "wasm-ld"))
    if not all(Path(t).exists() for t in tools):
        try:
            if not is_root():
                raise BuildError("the relaxed-SIMD kernels need clang-16 and lld-16 (sudo apt-get install -y "
                                 "clang-16 lld-16)")
            apt_install(["clang-16", "lld-16"], "the relaxed-SIMD kernels are compiled with Debian's clang 16")
        except BuildError as exc:
            log(f"warning: {exc}\n  building only the plain Wasm SIMD kernels")
            return None
    return tools if all(Path(t).exists() for t in tools) else None


def build_variant(build: SimdBuild, clang: str, wasm_ld: str, sources: list[Path], headers: list[Path]) -> dict:
    """Compile the sources into build.lib (+ build.info), only when the sources, flags or compiler changed."""
    cflags = [*SIMD_CFLAGS, *build.extra_cflags]
    version = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    key = tree_digest(sources + headers, extra=" ".join([version, *cflags, *SIMD_LDFLAGS]))
    stamp = BUILD / f"simd-{build.name}.stamp"
    if up_to_date(stamp, key, build.lib, build.info):
        return json.loads(build.info.read_text())
    with stage(f"compiling the {build.name} kernels (clang + wasm-ld)"):
        objdir = BUILD / f"simd-{build.name}"
        shutil.rmtree(objdir, ignore_errors=True)
        objdir.mkdir(parents=True)
        objects = []
        for src in sources:
            obj = objdir / (src.stem + ".o")
            # Relative source names: nothing machine-specific can end up in the bytes.
            run([clang, *cflags, "-c", src.name, "-o", str(obj)], cwd=SIMD_DIR)
            objects.append(obj.name)
        run([wasm_ld, *SIMD_LDFLAGS, "-o", build.file, *objects], cwd=objdir)
        data = (objdir / build.file).read_bytes()
        write_if_changed(build.lib, data)
        info = {"name": build.name, "file": build.file, "bytes": len(data), "sha256": sha256_bytes(data),
                "sources": key, "compiler": version}
        write_if_changed(build.info, (json.dumps(info, indent=1) + "\n").encode())
    stamp.write_text(key)
    log(f"{build.lib.relative_to(ROOT)}: {len(data)} bytes, sha256 {info['sha256']}")
    return info


def build_simd() -> list[dict]:
    """Compile py_pkg/wasmvision/simd/*.c into each build of SIMD_BUILDS that a toolchain is here for. Returns
    the recorded infos (loader's order of preference); empty when there is no toolchain and nothing built."""
    sources = sorted(SIMD_DIR.glob("*.c"))
    headers = sorted(SIMD_DIR.glob("*.h"))
    if not sources:
        raise BuildError(f"no C sources in {SIMD_DIR}")
    toolchains = {PLAIN: ensure_wasm_toolchain()}
    toolchains[RELAXED] = relaxed_toolchain() if toolchains[PLAIN] is not None else None
    infos = []
    for build in SIMD_BUILDS:
        tools = toolchains[build]
        if tools is not None:
            infos.append(build_variant(build, *tools, sources, headers))
        elif build is PLAIN and build.lib.exists() and build.info.exists():
            infos.append(json.loads(build.info.read_text()))
        else:  # a relaxed copy left from an older build could be of other sources: it must not ship
            build.lib.unlink(missing_ok=True)
            build.info.unlink(missing_ok=True)
    return infos
