"""The public API end to end on tiny bundles built here (the real model is tested by the parity tests)."""

import numpy as np
import pytest

import wasmvision
from builders import ref_conv, tiny_bundle
from wasmvision import bundle as wvb
from wasmvision.postprocess import softmax, top_k
from wasmvision.preprocess import preprocess


def numpy_forward(b, x):
    """The tiny network written out directly (float64)."""
    t = b.tensors
    t0 = np.clip(ref_conv(x, t["w0"], t["b0"], (2, 2), (0, 0, 1, 1), (1, 1), 1), 0, 6)
    t1 = np.clip(ref_conv(t0, t["w1"], None, (1, 1), (1, 1, 1, 1), (1, 1), 8), 0, 6)
    t2 = ref_conv(t1, t["w2"], t["b2"], (1, 1), (0, 0, 0, 0), (1, 1), 1)
    pooled = (t0 + t2).mean(axis=(1, 2))
    return pooled @ t["fw"] + t["fb"], pooled


@pytest.fixture
def image():
    return np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)


def test_round_trip_through_file_bytes_and_bundle(tmp_path, image):
    b = tiny_bundle()
    path = tmp_path / "tiny.wvb"
    wvb.save(b, path)
    for source in (path, str(path), path.read_bytes(), memoryview(path.read_bytes()), b):
        clf = wasmvision.load(source)
        res = clf.classify(image, top_k=3)
        assert [p.label for p in res.top] == [f"thing {p.index}" for p in res.top]
        assert res.model == {"name": "tiny", "version": "1.2"}
        assert set(res.timings_ms) == {"preprocess", "inference", "postprocess"}
        d = res.to_dict()
        assert set(d) == {"top", "timings_ms", "model", "engine"} and d["engine"] == "numpy" and set(d["top"][0]) == {"index", "label", "probability"}


def test_logits_probabilities_and_embedding_match_numpy(image):
    b = tiny_bundle()
    clf = wasmvision.load(b)
    x = preprocess(image, b.preprocess, (32, 32))
    logits_ref, pooled_ref = numpy_forward(b, x[None].astype(np.float64))
    np.testing.assert_allclose(clf.infer(image), logits_ref[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(clf.infer(image, embedding=True), pooled_ref[0], rtol=1e-5, atol=1e-5)
    res = clf.classify(image, top_k=10)
    assert len(res.top) == 4  # clamped to the number of classes
    p_ref = np.exp(logits_ref[0] - logits_ref[0].max())
    p_ref /= p_ref.sum()
    assert [p.index for p in res.top] == list(np.argsort(-p_ref, kind="stable"))
    np.testing.assert_allclose([p.probability for p in res.top], np.sort(p_ref)[::-1], atol=1e-6)
    assert abs(sum(p.probability for p in res.top) - 1) < 1e-9


def test_run_batches_and_shapes(image):
    clf = wasmvision.load(tiny_bundle())
    x = np.stack([clf.preprocess(image), clf.preprocess(image[::-1])])
    out = clf.run(x)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[0], clf.infer(image), rtol=1e-6)
    np.testing.assert_allclose(clf.run(x[0]), out[:1], rtol=1e-6)  # (H, W, C) is taken as a batch of one


def test_one_plan_serves_classify_embed_and_infer(image):
    """The plan made at load yields the logits and the embedding: no later call on that input size makes another
    (a second plan packs every weight again and holds its own buffers)."""
    clf = wasmvision.load(tiny_bundle())
    assert clf._executor.plans_built == 1
    res = clf.classify(image, top_k=3)
    both, vector = clf.classify_and_embed(image, top_k=3)
    logits, embedding = clf.infer(image), clf.infer(image, embedding=True)
    clf.profile(image, runs=1)
    assert clf._executor.plans_built == 1
    assert both.top == res.top
    np.testing.assert_array_equal(vector, embedding)
    assert logits.shape == (4,) and embedding.shape == (8,)
    clf.run(np.stack([clf.preprocess(image)] * 2))  # a batch of two is another input shape: one more plan
    assert clf._executor.plans_built == 2


def test_model_ending_in_softmax_is_not_softmaxed_twice(image):
    a = wasmvision.load(tiny_bundle()).classify(image, top_k=4)
    b = wasmvision.load(tiny_bundle(final_softmax=True)).classify(image, top_k=4)
    np.testing.assert_allclose([p.probability for p in a.top], [p.probability for p in b.top], atol=1e-6)


def test_gray_rgba_uint16_and_one_pixel_images():
    clf = wasmvision.load(tiny_bundle())
    rng = np.random.default_rng(0)
    for img in (rng.integers(0, 256, (40, 40), dtype=np.uint8), rng.integers(0, 256, (40, 41, 4), dtype=np.uint8),
                rng.integers(0, 65536, (40, 40), dtype=np.uint16), np.zeros((1, 1, 3), np.uint8)):
        assert len(clf.classify(img).top) == 4


def test_errors(tmp_path, image):
    clf = wasmvision.load(tiny_bundle())
    with pytest.raises(wasmvision.ImageError):
        clf.classify(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ValueError, match="top_k"):
        clf.classify(image, top_k=0)
    with pytest.raises(wasmvision.BundleError, match="not found"):
        wasmvision.load(tmp_path / "missing.wvb")
    raw = bytearray(wvb.to_bytes(tiny_bundle()))
    raw[-1] ^= 1
    with pytest.raises(wasmvision.BundleError, match="checksum"):
        wasmvision.load(bytes(raw))
    with pytest.raises(wasmvision.BundleError, match="truncated"):
        wasmvision.load(bytes(raw[:-10]))
    broken = tiny_bundle()
    broken.nodes[2].op = "lstm"
    with pytest.raises(wasmvision.BundleError, match="lstm"):
        wasmvision.load(broken)
    with pytest.raises(TypeError):
        wasmvision.load(42)


def test_softmax_and_top_k():
    p = softmax(np.array([1000.0, 1000.0, -1000.0], np.float32))
    np.testing.assert_allclose(p, [0.5, 0.5, 0.0])
    assert list(top_k(np.array([0.2, 0.4, 0.4, 0.0]), 3)) == [1, 2, 0]  # ties: lower index first
    with pytest.raises(ValueError):
        softmax(np.array([np.nan, 1.0]))


# ------------------------------------------------------------------------------------------- many images

def test_classify_a_path_or_file_bytes(tmp_path, image):
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(image).save(tmp_path / "x.png")
    clf = wasmvision.load(tiny_bundle())
    expected = clf.classify(image).to_dict()["top"]
    for source in (tmp_path / "x.png", str(tmp_path / "x.png"), (tmp_path / "x.png").read_bytes()):
        r = clf.classify(source)
        assert r.to_dict()["top"] == expected and r.timings_ms["decode"] >= 0
    with pytest.raises(wasmvision.ImageError, match="not found"):
        clf.classify(tmp_path / "missing.png")


def test_batch_equals_single_runs():
    rng = np.random.default_rng(5)
    batch = rng.integers(0, 256, (11, 40, 52, 3), dtype=np.uint8)  # more than one BATCH_CHUNK
    clf = wasmvision.load(tiny_bundle(classes=6))
    results = clf.classify(batch, top_k=6)
    assert isinstance(results, list) and len(results) == 11
    for img, r in zip(batch, results):
        single = clf.classify(img, top_k=6)
        assert [p.index for p in r.top] == [p.index for p in single.top]
        np.testing.assert_allclose([p.probability for p in r.top], [p.probability for p in single.top],
                                   rtol=1e-5, atol=1e-7)
        assert r.ok and set(r.timings_ms) == {"preprocess", "inference", "postprocess"}
    assert clf.classify(batch[:0]) == []


def test_classify_many_yields_errors_as_values(tmp_path, image):
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(image).save(tmp_path / "x.png")
    (tmp_path / "bad.png").write_text("not an image")
    clf = wasmvision.load(tiny_bundle())
    inputs = [image, tmp_path / "bad.png", np.zeros((3, 3, 7), np.uint8), tmp_path / "x.png",
              np.zeros((2, 8, 8, 3), np.uint8), "missing.png", object(), np.zeros((0, 5, 3), np.uint8)]
    results = list(clf.classify_many(iter(inputs), top_k=2))
    assert len(results) == len(inputs)
    assert [r.ok for r in results] == [True, False, False, True, False, False, False, False]
    assert results[0].to_dict()["top"] == results[3].to_dict()["top"]
    for r in results:
        if not r.ok:
            assert r.top == [] and r.to_dict() == {"error": r.error} and "\n" not in r.error
    assert "not an image" in results[1].error and "shape" in results[2].error
    assert "one image per item" in results[4].error and "not found" in results[5].error
    assert "empty" in results[7].error


def test_classify_many_catches_any_exception_type(monkeypatch, image):
    clf = wasmvision.load(tiny_bundle())
    calls = iter([None, MemoryError("Unable to allocate 14.6 GiB"), None, KeyError("x")])

    real = clf.preprocess

    def flaky(img):
        exc = next(calls)
        if exc is not None:
            raise exc
        return real(img)

    monkeypatch.setattr(clf, "preprocess", flaky)
    results = list(clf.classify_many([image] * 4))
    # classify itself turns a MemoryError into a one-line ImageError; any other type is named.
    assert [r.error for r in results] == [None, "out of memory while classifying this image; try a smaller image",
                                          None, "KeyError: 'x'"]
    with pytest.raises(ValueError, match="top_k"):
        list(clf.classify_many([image], top_k=0))


def test_decoding_a_path_without_pillow_says_what_to_install(monkeypatch, tmp_path, image):
    import sys

    (tmp_path / "x.png").write_bytes(b"\x89PNG not really")
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails, as without the image extra
    clf = wasmvision.load(tiny_bundle())
    with pytest.raises(wasmvision.ImageError, match=r"pip install 'wasmvision\[image\]'"):
        clf.classify(tmp_path / "x.png")
    assert clf.classify(image).ok  # pixels need no Pillow
