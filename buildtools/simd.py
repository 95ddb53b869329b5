"""The Wasm SIMD kernel library: C sources compiled by Debian clang + wasm-ld into an Emscripten side module
that Pyodide loads with ctypes. No libc, no emcc."""

from __future__ import annotations

import json
import shutil
import subprocess

from .paths import BUILD, ROOT
from .toolchain import ensure_wasm_toolchain
from .util import BuildError, log, run, sha256_bytes, stage, tree_digest, up_to_date, write_if_changed

# The flags measured in docs/perf.md (clang 14); changing them changes the library's bytes and its recorded sha256.
SIMD_DIR = ROOT / "py_pkg" / "wasmvision" / "simd"
SIMD_LIB = SIMD_DIR / "libwvsimd.so"
SIMD_INFO = SIMD_DIR / "libwvsimd.json"  # {"file", "bytes", "sha256", "sources"}: what the loader checks
SIMD_CFLAGS = ["--target=wasm32-unknown-emscripten", "-ffreestanding", "-nostdlib", "-fno-builtin",
               "-fvisibility=hidden", "-fPIC", "-O3", "-msimd128"]
SIMD_LDFLAGS = ["--shared", "--experimental-pic", "--no-entry"]


def build_simd() -> dict | None:
    """Compile py_pkg/wasmvision/simd/*.c into libwvsimd.so (+ libwvsimd.json with its sha256), only when the
    sources, flags or compiler changed. Returns the recorded info, or None when there is no toolchain."""
    sources = sorted(SIMD_DIR.glob("*.c"))
    headers = sorted(SIMD_DIR.glob("*.h"))
    if not sources:
        raise BuildError(f"no C sources in {SIMD_DIR}")
    tools = ensure_wasm_toolchain()
    if tools is None:
        return json.loads(SIMD_INFO.read_text()) if SIMD_INFO.exists() and SIMD_LIB.exists() else None
    clang, wasm_ld = tools
    version = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    key = tree_digest(sources + headers, extra=" ".join([version, *SIMD_CFLAGS, *SIMD_LDFLAGS]))
    stamp = BUILD / "simd.stamp"
    if up_to_date(stamp, key, SIMD_LIB, SIMD_INFO):
        return json.loads(SIMD_INFO.read_text())
    with stage("compiling the Wasm SIMD kernels (clang + wasm-ld)"):
        objdir = BUILD / "simd"
        shutil.rmtree(objdir, ignore_errors=True)
        objdir.mkdir(parents=True)
        objects = []
        for src in sources:
            obj = objdir / (src.stem + ".o")
            # Relative source names: nothing machine-specific can end up in the bytes.
            run([clang, *SIMD_CFLAGS, "-c", src.name, "-o", str(obj)], cwd=SIMD_DIR)
            objects.append(obj.name)
        run([wasm_ld, *SIMD_LDFLAGS, "-o", "libwvsimd.so", *objects], cwd=objdir)
        data = (objdir / "libwvsimd.so").read_bytes()
        write_if_changed(SIMD_LIB, data)
        info = {"file": SIMD_LIB.name, "bytes": len(data), "sha256": sha256_bytes(data), "sources": key,
                "compiler": version}
        write_if_changed(SIMD_INFO, (json.dumps(info, indent=1) + "\n").encode())
    stamp.write_text(key)
    log(f"{SIMD_LIB.relative_to(ROOT)}: {len(data)} bytes, sha256 {info['sha256']}")
    return info


