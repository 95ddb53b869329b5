"""The Wasm SIMD peak in this browser (the per-layer table divides each kernel's GFLOPS by it): peak/peak.c,
compiled with the build's own clang flags for each build of the kernel library (plain mul+add, and relaxed SIMD's
fused multiply-add), instantiated in a page of the same Chromium, both measured in the same run.
The best of many short calls counts (the peak is what the core can do when nothing else is running)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .common import log

SOURCE = Path(__file__).with_name("peak") / "peak.c"
FLOPS_PER_ITERATION = 12 * 4 * 2  # accumulators x lanes x (mul + add)


def simd_cflags() -> list[str]:
    """The kernel library's own clang flags (buildtools.simd)."""
    from buildtools.simd import SIMD_CFLAGS

    return list(SIMD_CFLAGS)


def _link(clang: str, ld: str, flags: list[str], out: Path) -> Path:
    obj = out.with_suffix(".o")
    subprocess.run([clang, *flags, "-c", str(SOURCE), "-o", str(obj)], check=True)
    # Standalone (no imports): the loop touches no memory, so nothing of the side-module machinery is needed.
    subprocess.run([ld, "--no-entry", "--export=wv_peak", "-o", str(out), str(obj)], check=True)
    return out


def compile_peak(work: Path) -> Path | None:
    """work/peak.wasm (plain) and, where clang 16 is installed, work/peak_fma.wasm (relaxed SIMD, FMA_URL); None
    (with a log line) when clang/wasm-ld are missing."""
    from buildtools.simd import RELAXED, RELAXED_LLVM

    clang, ld = shutil.which("clang"), shutil.which("wasm-ld")
    if not clang or not ld:
        log("clang/wasm-ld missing: no Wasm SIMD peak (run python3 build.py build first)")
        return None
    out = _link(clang, ld, simd_cflags(), work / "peak.wasm")
    fma = (RELAXED_LLVM / "clang", RELAXED_LLVM / "wasm-ld")
    if all(t.exists() for t in fma):
        _link(str(fma[0]), str(fma[1]), [*simd_cflags(), *RELAXED.extra_cflags], work / "peak_fma.wasm")
    else:
        log("clang 16 missing: no FMA (relaxed SIMD) peak")
    return out


MEASURE = """async ([url, iterations, repeats, flopsPerIteration]) => {
  const response = await fetch(url);
  if (!response.ok) return null;
  const bytes = await response.arrayBuffer();
  if (!WebAssembly.validate(bytes)) return {unsupported: true};
  const {instance} = await WebAssembly.instantiate(bytes, {});
  const f = instance.exports.wv_peak;
  f(1000, 0.999999, 1e-3);  // tier-up before timing
  const ms = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    f(iterations, 0.999999, 1e-3);
    ms.push(performance.now() - t0);
  }
  const gflops = ms.map((t) => iterations * flopsPerIteration / t / 1e6);
  return {ms, gflops, best_gflops: Math.max(...gflops), iterations};
}"""


def measure(page, url="/work/peak.wasm", iterations=1_000_000, repeats=60, fma_url="/work/peak_fma.wasm"):
    """~2-4 ms calls: short enough that some run between two preemptions of a loaded core. The plain peak's
    fields, and under "fma" the relaxed-SIMD one's (None when not built; {"unsupported": true} when the engine
    has no relaxed SIMD)."""
    plain = page.evaluate(MEASURE, [url, iterations, repeats, FLOPS_PER_ITERATION])
    return {**plain, "fma": page.evaluate(MEASURE, [fma_url, iterations, repeats, FLOPS_PER_ITERATION])}
