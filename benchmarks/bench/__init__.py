"""The side-by-side benchmark, one module per concern; benchmarks/run.py is the entry point.

common (stats, ratios, logging) · inputs (peers, photo, model, preprocessed tensor) · zoo (the extra families'
ONNX + .wvb) · ort_web / browser_page / pyodide_peers (one kind of page each) · peak (the Wasm SIMD peak) ·
warm (interleaved rounds) · cold (first visit / repeat visit) · native (CPython vs onnxruntime) ·
targets (the speed targets docs/perf.md states) · layers (per-layer GFLOPS) ·
report (tables, README block) · harness (puts them together).
"""
