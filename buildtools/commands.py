"""What each `build.py` command does, once build.py has parsed its arguments and bootstrapped .venv/."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time

from .bundling import esbuild_binary
from .chromium import ensure_chromium
from .dist import assemble_dist, print_sizes
from .engines import ensure_engines
from .fetch import fetch_all
from .models import build_models
from .paths import BUILD, CACHE, DIST, ROOT, VENV_PY312
from .pyodide import extract_photos, unpack_pyodide
from .server import serve
from .simd import build_simd
from .snapshot import shipped_snapshot
from .toolchain import ensure_npm, ensure_torch_extra
from .util import BuildError, log, stage
from .wheel import build_wheel, pyodide_wheel


def cmd_fetch(_args) -> int:
    paths = fetch_all()
    unpack_pyodide(paths)
    return 0


def cmd_build(_args) -> int:
    t0 = time.perf_counter()
    paths = fetch_all()
    pyodide, lock = unpack_pyodide(paths)
    extract_photos(paths)
    models = build_models(paths)
    simd = build_simd()  # before the wheel: the library is package data
    wheel = pyodide_wheel(build_wheel())
    esbuild = esbuild_binary(paths["esbuild"]) if "esbuild" in paths else None
    if esbuild is None:
        log(f"no esbuild for {platform.machine()}: the worker's modules ship as separate files")
    with stage("assembling dist/"):
        manifest = assemble_dist(pyodide, lock, wheel, models, simd, esbuild)
    shipped = shipped_snapshot(DIST, [DIST / e["path"] for e in manifest["files"] if e["path"].endswith(".whl")
                                      and e["path"].split("/")[-1].startswith(("numpy-", "wasmvision-"))])
    if shipped is not None:
        manifest = assemble_dist(pyodide, lock, wheel, models, simd, esbuild, shipped)
    print_sizes(manifest)
    log(f"build finished in {time.perf_counter() - t0:.1f} s → {DIST}")
    return 0


def cmd_serve(args) -> int:
    cmd_build(args)
    return serve(DIST, host=args.host, port=args.port, isolate=args.isolate)


def cmd_test(args) -> int:
    ensure_chromium()
    ensure_engines()
    ensure_torch_extra()
    cmd_build(args)
    log(f"running pytest {' '.join(args.pytest_args)}")
    return subprocess.call([sys.executable, "-m", "pytest", *args.pytest_args], cwd=ROOT)


def cmd_bench(args) -> int:
    """Build, then hand over to the benchmark harness (benchmarks/run.py) with the remaining arguments."""
    runner = ROOT / "benchmarks" / "run.py"
    if not runner.exists():
        raise BuildError("benchmarks/run.py is missing")
    ensure_chromium()
    cmd_build(args)
    return subprocess.call([sys.executable, str(runner), *args.pytest_args], cwd=ROOT)


def cmd_fuzz(args) -> int:
    """Fuzz the bundle and ONNX readers (tests/fuzz_readers.py; e.g. `build.py fuzz --seconds 600 --seed 1`).
    Needs no build: the seed files are small models made on the fly. Exit 1 if any input misbehaved."""
    return subprocess.call([sys.executable, str(ROOT / "tests" / "fuzz_readers.py"), *args.pytest_args], cwd=ROOT)


def cmd_quant_table(args) -> int:
    """Build, then measure fp32/fp16/int8 bundles (benchmarks/quant_table.py) and rewrite README's table."""
    ensure_chromium()
    cmd_build(args)
    extra = args.pytest_args or ["--readme", "README.md", "--write"]
    return subprocess.call([sys.executable, str(ROOT / "benchmarks" / "quant_table.py"), "--dist", str(DIST),
                            "--build", str(BUILD), *extra], cwd=ROOT)


def cmd_pack(args) -> int:
    """Build, then `npm pack` dist/ into build/ (dist/package.json names the module, its types and its files)."""
    cmd_build(args)
    out = subprocess.run([ensure_npm(), "pack", str(DIST), "--pack-destination", str(BUILD), "--ignore-scripts",
                          "--json"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise BuildError(f"npm pack failed: {out.stderr.strip()[-2000:]}")
    info = json.loads(out.stdout)[0]
    tarball = BUILD / info["filename"]
    log(f"npm package: {tarball.relative_to(ROOT)} ({tarball.stat().st_size / 1e6:.1f} MB, "
        f"{info['entryCount']} files; unpacked {info['unpackedSize'] / 1e6:.1f} MB)")
    return 0


def cmd_clean(args) -> int:
    targets = [BUILD, DIST] + ([CACHE, VENV_PY312] if args.all else [])
    for t in targets:
        if t.exists():
            log(f"removing {t.relative_to(ROOT)}/")
            shutil.rmtree(t)
    if args.all:
        log("(.venv/ is kept because this process runs in it; remove it by hand if you want)")
    return 0


COMMANDS = {"build": cmd_build, "serve": cmd_serve, "test": cmd_test, "fetch": cmd_fetch, "clean": cmd_clean,
            "bench": cmd_bench, "pack": cmd_pack, "quant-table": cmd_quant_table, "fuzz": cmd_fuzz}
