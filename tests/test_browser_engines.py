"""The page with each engine: ?engine=simd and ?engine=numpy give the native top-5 and say which engine
ran; a site whose kernel library cannot load (or does not match its recorded hash) falls back to numpy with a
one-line notice and the same answers; one whose relaxed-SIMD build cannot compile runs the plain build. Needs the
built site (python3 build.py build) and Chromium."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu
from builders import BROKEN, RELAXED_LIBRARY, site_with_library

pytestmark = pytest.mark.browser
TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def site(dist_dir):
    return dist_dir


@pytest.fixture(scope="module")
def native_top(dist_dir, chelsea):
    """The native result of the page's default bundle on chelsea.png: [(index, probability)] of the top 5."""
    from PIL import Image

    import wasmvision

    manifest = json.loads((dist_dir / "manifest.json").read_text())
    default = next(m for m in manifest["models"] if m["default"])
    rgb = np.asarray(Image.open(chelsea).convert("RGB"))
    result = wasmvision.load(dist_dir / default["file"], engine="numpy").classify(rgb, top_k=5)
    return [(p.index, p.probability) for p in result.top]


def _classify_on_page(browser, base: str, query: str, chelsea: Path) -> tuple[dict, str, str]:
    """(result, the page's engine label, the page's notice text) for chelsea.png on a fresh page."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + query)
        bu.wait_ready(page, TIMEOUT_MS)
        notice = page.inner_text("[data-testid=error]") if page.is_visible("[data-testid=error]") else ""
        page.set_input_files("[data-testid=file-input]", str(chelsea))
        page.wait_for_selector("[data-testid=result-item]")
        result = bu.classify_in_page(page, chelsea)
        return result, page.inner_text("[data-testid=engine]"), notice
    finally:
        context.close()


def _same_top(result: dict, native: list[tuple[int, float]]) -> None:
    assert [p["index"] for p in result["top"]] == [i for i, _ in native]
    for p, (_, prob) in zip(result["top"], native):
        assert abs(p["probability"] - prob) <= 1e-3


@pytest.mark.parametrize("engine", ["simd", "numpy"])
def test_each_engine_gives_the_native_answer_and_says_so(browser, served, chelsea, native_top, engine):
    result, label, notice = _classify_on_page(browser, served, f"?engine={engine}", chelsea)
    assert result["engine"] == engine
    assert f"{engine} engine" in label
    assert notice == ""
    _same_top(result, native_top)


@pytest.mark.parametrize("case", ["fails to load", "does not match its recorded hash"])
def test_a_kernel_library_that_cannot_be_used_falls_back_to_numpy(browser, dist_dir, chelsea, native_top, tmp_path,
                                                                  case):
    recorded = hashlib.sha256(BROKEN).hexdigest() if case == "fails to load" else "0" * 64
    site = site_with_library(dist_dir, tmp_path, BROKEN, recorded)
    with bu.serve(site) as base:
        result, label, notice = _classify_on_page(browser, base, "", chelsea)
    assert result["engine"] == "numpy" and "numpy engine" in label
    assert "libwvsimd.so" in notice and "numpy" in notice.lower(), notice
    _same_top(result, native_top)


def test_the_plain_build_runs_where_the_relaxed_one_cannot(browser, dist_dir, chelsea, native_top, tmp_path):
    """The page end to end on the plain SIMD128 build: the wheel's relaxed build cannot compile here (as in an
    engine without relaxed SIMD), so the worker and Python both take the plain one: SIMD engine, no notice."""
    site = site_with_library(dist_dir, tmp_path, BROKEN, hashlib.sha256(BROKEN).hexdigest(),
                             members=(RELAXED_LIBRARY,))
    with bu.serve(site) as base:
        result, label, notice = _classify_on_page(browser, base, "?engine=simd", chelsea)
    assert result["engine"] == "simd" and "simd engine" in label, (result["engine"], label)
    assert notice == ""
    _same_top(result, native_top)


def test_the_first_photos_stage_timings_say_so(browser, served, chelsea):
    """The first photo after ready: its stage timings are labelled as the first photo's, beside every stage."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(served)
        bu.wait_ready(page, TIMEOUT_MS)
        page.set_input_files("[data-testid=file-input]", str(chelsea))
        page.wait_for_selector("[data-testid=result-item]")
        stages = page.eval_on_selector_all("[data-testid=timings] [data-stage]", "els => els.map(e => e.dataset.stage)")
        assert stages == ["first", "decode", "preprocess", "inference", "postprocess", "total"], stages
        assert "first since ready" in page.inner_text("[data-testid=timings] [data-stage=first]")
    finally:
        context.close()
