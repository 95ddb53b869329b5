"""The album's "Teach labels" end to end in Chromium: photos selected with the keyboard, labels named, a head trained
in the worker on the photos' kept embeddings, the whole album re-labelled (scores as the native training gives
them), the head kept in the browser across a reload, exported and imported as .wvh, and the model's own labels
back. The photos are crops of real photos (tests/test_custom_head.py's), written as PNG files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu
from test_custom_head import HELD, LABELS, TRAIN, _crops

TIMEOUT_MS = 300_000
SCORE_TOL = 1e-4

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(dist_dir) -> Path:
    return bu.require_built(dist_dir, "album.html", "album.js", "wasmvision.mjs", "manifest.json")


@pytest.fixture(scope="module")
def crops(photos_dir):
    return {label: _crops(photos_dir / name, TRAIN + HELD, seed) for seed, (label, name) in enumerate(LABELS.items())}


@pytest.fixture(scope="module")
def files(crops, tmp_path_factory) -> list[Path]:
    from PIL import Image

    out = tmp_path_factory.mktemp("teach")
    paths = []
    for label, images in crops.items():
        for i, image in enumerate(images):
            Image.fromarray(image).save(out / f"{label}_{i}.png")
            paths.append(out / f"{label}_{i}.png")
    return paths


@pytest.fixture(scope="module")
def native(site, crops):
    import wasmvision

    entry = next(m for m in json.loads((site / "manifest.json").read_text())["models"] if m["default"])
    base = wasmvision.load(site / entry["file"])
    return base.train({label: images[:TRAIN] for label, images in crops.items()})


def _open(context, base: str, files: list[Path], errors: list[str]):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "album.html?workers=1")
    page.wait_for_function("() => window.wasmvisionAlbum")
    page.evaluate("() => window.wasmvisionAlbum.ready")
    page.set_input_files("[data-testid=album-files]", [str(p) for p in files])
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=album-item]').length === {len(files)} && "
                           "!window.wasmvisionAlbum.state().running", polling=250)
    return page


def _labels(page) -> dict[str, tuple[str, float]]:
    return page.eval_on_selector_all("[data-testid=album-item]", """items => Object.fromEntries(items.map(li =>
        [li.dataset.file, [li.dataset.label, Number(li.dataset.probability)]]))""")


def _check_relabelled(page, native, crops) -> None:
    shown = _labels(page)
    for label, images in crops.items():
        for i, image in enumerate(images):
            want = native.classify(image, top_k=1).top[0]
            got_label, got_p = shown[f"{label}_{i}.png"]
            assert got_label == want.label and abs(got_p - want.probability) <= SCORE_TOL, (label, i, shown)
        assert all(shown[f"{label}_{i}.png"][0] == label for i in range(TRAIN, TRAIN + HELD)), shown


def test_teach_labels_train_relabel_keep_export_import(browser, site, files, native, crops, tmp_path):
    from wasmvision import head_format

    with bu.serve(site) as base:
        context = browser.new_context(accept_downloads=True)
        try:
            log = bu.RequestLog(context)
            errors: list[str] = []
            page = _open(context, base, files, errors)
            model_labels = _labels(page)
            # One label only: the worker's Python says why, the page keeps working.
            page.focus("[data-testid=teach-select]")
            page.keyboard.press("Enter")
            assert page.get_attribute("[data-testid=teach-select]", "aria-pressed") == "true"
            for label in LABELS:
                for i in range(TRAIN):
                    page.focus(f"[data-testid=album-item][data-file='{label}_{i}.png'] button")
                    page.keyboard.press("Enter")  # selects, does not open the photo while selecting
                assert page.inner_text("[data-testid=teach-selected]") == f"{TRAIN} selected"
                assert page.get_attribute(f"[data-testid=album-item][data-file='{label}_0.png'] button",
                                          "aria-pressed") == "true"
                page.fill("[data-testid=teach-name]", label)
                page.keyboard.press("Enter")
                if label == next(iter(LABELS)):
                    page.click("[data-testid=teach-train]")
                    page.wait_for_selector("[data-testid=album-error]:not([hidden])")
                    assert "two labels" in page.inner_text("[data-testid=album-error]")
                    page.click("#album-error-close")
            counts = page.eval_on_selector_all("[data-testid=teach-label]",
                                               "lis => lis.map(li => [li.dataset.label, Number(li.dataset.count)])")
            assert counts == [[label, TRAIN] for label in LABELS]
            assert page.query_selector("[data-testid=album-detail][open]") is None  # selecting opened no photo
            page.click("[data-testid=teach-select]")  # done selecting
            page.click("[data-testid=teach-train]")
            page.wait_for_function("() => document.querySelector('[data-testid=teach-status]').textContent"
                                   ".startsWith('Trained on')")
            _check_relabelled(page, native, crops)
            # Kept in the browser: listed, and exported as a .wvh that reads natively.
            options = page.eval_on_selector_all("[data-testid=teach-heads] option", "os => os.map(o => o.value)")
            assert len(options) == 2 and options[1]
            with page.expect_download() as info:
                page.click("[data-testid=teach-export]")
            wvh = tmp_path / info.value.suggested_filename
            info.value.save_as(wvh)
            assert wvh.suffix == ".wvh"
            assert head_format.load(wvh).labels == list(LABELS)
            # The model's own labels come back.
            page.select_option("[data-testid=teach-heads]", "")
            page.wait_for_function("() => document.querySelector('[data-testid=teach-status]').textContent"
                                   ".includes(\"model's own\")")
            assert _labels(page) == model_labels
            page.close()

            # A reload: the head is still there, and applies to a new album; an imported file too.
            page = _open(context, base, files, errors)
            options = page.eval_on_selector_all("[data-testid=teach-heads] option", "os => os.map(o => o.value)")
            assert len(options) == 2
            page.select_option("[data-testid=teach-heads]", options[1])
            page.wait_for_function("() => document.querySelector('[data-testid=teach-status]').textContent"
                                   ".startsWith('The album shows the labels')")
            _check_relabelled(page, native, crops)
            page.set_input_files("[data-testid=teach-import-input]", str(wvh))
            page.wait_for_function("() => document.querySelector('[data-testid=teach-status]').textContent"
                                   ".startsWith('Imported')")
            _check_relabelled(page, native, crops)
            assert len(page.eval_on_selector_all("[data-testid=teach-heads] option", "os => os")) == 3
            page.click("[data-testid=teach-delete]")
            page.wait_for_function("() => document.querySelector('[data-testid=teach-status]').textContent"
                                   ".startsWith('Deleted')")
            assert len(page.eval_on_selector_all("[data-testid=teach-heads] option", "os => os")) == 2
            assert _labels(page) == model_labels
            assert log.foreign(base) == [] and all(r.method == "GET" for r in log.requests)
            assert errors == []
        finally:
            context.close()
