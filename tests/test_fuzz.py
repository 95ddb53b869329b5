"""A short, seeded fuzz of the bundle and ONNX readers (tests/fuzz_readers.py; the long run is
`python3 build.py fuzz --seconds N`, figures in docs/robustness.md): only the documented errors come out, each a
one-line message of bounded length, and no input exceeds the harness's time limit (a hang detector, not a speed
claim: the limit is minutes where a typical input takes milliseconds)."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("onnx")
import fuzz_readers  # noqa: E402


@pytest.fixture(scope="module")
def seeds():
    return fuzz_readers.seed_files()


@pytest.mark.parametrize("target", ["bundle", "onnx"])
def test_short_fuzz_gives_only_documented_errors(target, seeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # corrupt weights overflow; the outcome is what counts
        report = fuzz_readers.fuzz(target, seconds=3.0, seed=11, limit=120.0, seeds=seeds)
    assert report["failures"] == [], report["failures"][:5]
    assert report["inputs"] >= 50
    outcomes = report["outcomes"]
    assert "ok" in outcomes  # some mutations still load and classify
    expected_error = "BundleError" if target == "bundle" else "OnnxFormatError"
    assert outcomes.get(expected_error, 0) > 0, outcomes
