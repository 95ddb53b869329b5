"""The Wasm SIMD peak in this browser (the per-layer table divides each kernel's GFLOPS by it): peak/peak.c,
compiled with the build's own clang flags for the kernel library, instantiated in a page of the same Chromium.
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


def compile_peak(work: Path) -> Path | None:
    """work/peak.wasm, or None (with a log line) when clang/wasm-ld are missing."""
    clang, ld = shutil.which("clang"), shutil.which("wasm-ld")
    if not clang or not ld:
        log("clang/wasm-ld missing: no Wasm SIMD peak (run python3 build.py build first)")
        return None
    obj, out = work / "peak.o", work / "peak.wasm"
    subprocess.run([clang, *simd_cflags(), "-c", str(SOURCE), "-o", str(obj)], check=True)
    # Standalone (no imports): the loop touches no memory, so nothing of the side-module machinery is needed.
    subprocess.run([ld, "--no-entry", "--export=wv_peak", "-o", str(out), str(obj)], check=True)
    return out


MEASURE = """async ([url, iterations, repeats, flopsPerIteration]) => {
  const {instance} = await WebAssembly.instantiate(await (await fetch(url)).arrayBuffer(), {});
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


def measure(page, url="/work/peak.wasm", iterations=1_000_000, repeats=60):
    """~2-4 ms calls: short enough that some run between two preemptions of a loaded core."""
    return page.evaluate(MEASURE, [url, iterations, repeats, FLOPS_PER_ITERATION])
