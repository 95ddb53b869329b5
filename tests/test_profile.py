"""Classifier.profile: the per-layer-kind timing API the benchmark and the page use (no timing assertions: the
machine is shared; only the structure and that the time lands in the right kinds)."""

import numpy as np
import pytest

import wasmvision
from wasmvision.plan import PROFILE_KINDS, profile_kind
from builders import tiny_bundle


@pytest.fixture
def image():
    return np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8)


def test_profile_reports_every_stable_kind(image):
    clf = wasmvision.load(tiny_bundle())
    prof = clf.profile(image, runs=3)
    assert list(prof) == [*PROFILE_KINDS, "total"]
    assert all(isinstance(v, float) and v >= 0.0 for v in prof.values())
    # The tiny net has a stem conv, a depthwise, a pointwise, a residual add and a dense head: each took time.
    for kind in ("pointwise", "depthwise", "stem", "classifier", "activations", "elementwise"):
        assert prof[kind] > 0.0, (kind, prof)
    assert prof["other"] == 0.0


def test_profile_does_not_change_results(image):
    clf = wasmvision.load(tiny_bundle())
    before = clf.infer(image)
    clf.profile(image, runs=2)
    np.testing.assert_array_equal(clf.infer(image), before)


@pytest.mark.parametrize("runs", [0, -1, 1.5, True, "3"])
def test_profile_rejects_bad_run_counts(image, runs):
    with pytest.raises(ValueError, match="runs"):
        wasmvision.load(tiny_bundle()).profile(image, runs=runs)


def test_profile_kinds_of_plan_labels():
    assert profile_kind("conv2d/pointwise") == "pointwise"
    assert profile_kind("conv2d/depthwise") == "depthwise"
    assert profile_kind("conv2d/im2col") == "stem"
    assert profile_kind("bias+activation") == "activations"
    assert profile_kind("clip") == "activations"
    assert profile_kind("add") == "elementwise"
    assert profile_kind("dense") == "classifier"
    assert profile_kind("global_avg_pool") == "classifier"
    assert profile_kind("something_new") == "other"
