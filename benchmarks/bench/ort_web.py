"""onnxruntime-web pages (benchmarks/pages/ort.html): one page per (model, threads), fed the same preprocessed
NCHW tensor as wasmvision; a run is one timed session.run."""
from __future__ import annotations


def ort_url(srv, threads, model="/work/model.onnx", inp="/work/input.bin"):
    return f"{srv.origin}/pages/ort.html?threads={threads}&model={model}&input={inp}"


def open_ort(ctx, srv, threads, model="/work/model.onnx"):
    """(page, info) once the session exists and ran once; info has first_result_ms, top, crossOriginIsolated."""
    page = ctx.new_page()
    page.goto(ort_url(srv, threads, model))
    page.wait_for_function("() => window.bench")
    info = page.evaluate("() => window.bench.ready")
    return page, info


def runner(page):
    """n -> list of session.run milliseconds."""
    return lambda n: page.evaluate("(n) => window.bench.run(n)", n)
