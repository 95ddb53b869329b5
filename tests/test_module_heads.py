"""Custom heads through the public ES module (clf.train, CustomClassifier, load({head})) in Chromium, against the
same training natively: the crops of real photos tests/test_custom_head.py trains on, written as PNG files (lossless,
so the page decodes the very pixels the native run trains on). Needs the built site and Chromium."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu
from test_custom_head import HELD, LABELS, TRAIN, _crops

TIMEOUT_MS = 300_000
SCORE_TOL = 1e-4


@pytest.fixture(scope="module")
def crops(photos_dir):
    return {label: _crops(photos_dir / name, TRAIN + HELD, seed) for seed, (label, name) in enumerate(LABELS.items())}


@pytest.fixture(scope="module")
def site(dist_dir, crops, tmp_path_factory) -> Path:
    """dist/ (as symlinks) plus the crops as PNG files under examples/crops/<label>_<i>.png."""
    import io

    Image = pytest.importorskip("PIL.Image")
    bu.require_built(dist_dir, "wasmvision.mjs", "worker.js", "examples/index.html", "manifest.json")
    files = {"examples/crops/notes.txt": b"not an image\n"}
    for label, images in crops.items():
        for i, image in enumerate(images):
            png = io.BytesIO()
            Image.fromarray(image).save(png, format="PNG")
            files[f"examples/crops/{label}_{i}.png"] = png.getvalue()
    return bu.site_variant(dist_dir, tmp_path_factory.mktemp("heads-site"), replace=files)


@pytest.fixture(scope="module")
def entry(dist_dir) -> dict:
    return next(m for m in json.loads((dist_dir / "manifest.json").read_text())["models"] if m["default"])


@pytest.fixture(scope="module")
def native(dist_dir, entry, crops):
    import wasmvision

    base = wasmvision.load(dist_dir / entry["file"])
    return base.train({label: images[:TRAIN] for label, images in crops.items()})


def _urls(indices) -> str:
    return "{" + ", ".join(f'{json.dumps(label)}: [{", ".join(json.dumps(f"crops/{label}_{i}.png") for i in indices)}]'
                           for label in LABELS) + "}"


@pytest.fixture(scope="module")
def page(browser, served):
    """The example page with a classifier, and window.custom trained on the TRAIN first crops of each label."""
    with bu.example_page(browser, served, TIMEOUT_MS) as example:
        example["page"].evaluate(f"""async () => {{
            window.progress = [];
            window.custom = await window.example.clf.train({_urls(range(TRAIN))},
                {{ name: "photos", onProgress: (p) => window.progress.push(p) }});
        }}""")
        yield example


def _held_out_in_page(page, clf: str = "window.custom") -> dict:
    return page.evaluate(f"""async () => {{
        const out = {{}};
        for (const label of {json.dumps(list(LABELS))}) {{
            out[label] = [];
            for (let i = {TRAIN}; i < {TRAIN + HELD}; i++) {{
                out[label].push((await {clf}.classify(`crops/${{label}}_${{i}}.png`, {{ topK: 3 }})).top);
            }}
        }}
        return out;
    }}""")


def _agree(got: list[dict], want: list[dict]) -> None:
    assert [p["label"] for p in got] == [p["label"] for p in want], (got, want)
    for a, b in zip(got, want):
        assert abs(a["probability"] - b["probability"]) <= SCORE_TOL, (a, b)


@pytest.mark.browser
def test_page_head_matches_native(page, native, crops):
    p = page["page"]
    info = p.evaluate("() => ({labels: [...window.custom.labels], head: window.custom.head})")
    assert info["labels"] == list(LABELS) == native.labels
    assert info["head"]["examples"] == {label: TRAIN for label in LABELS}
    assert info["head"]["accuracy"] == pytest.approx(native.head.accuracy)
    got = _held_out_in_page(p)
    for label, images in crops.items():
        for top, image in zip(got[label], images[TRAIN:]):
            _agree(top, native.classify(image, top_k=3).to_dict()["top"])
    progress = p.evaluate("window.progress")
    total = TRAIN * len(LABELS)
    assert [x["loaded"] for x in progress if x["stage"] == "embed"] == list(range(1, total + 1))
    assert progress[-1]["stage"] == "ready"
    assert page["errors"] == []


@pytest.mark.browser
def test_save_and_load_round_trip_in_the_page(page, native, crops, entry):
    import wasmvision
    from wasmvision import head_format

    p = page["page"]
    b64 = p.evaluate("""async () => {
        const blob = await window.custom.save();
        window.saved = blob;
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let s = ""; for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
    }""")
    head = head_format.from_bytes(base64.b64decode(b64))  # the page's file, read natively
    assert head.labels == list(LABELS) and head.name == "photos"
    reopened = wasmvision.custom.CustomClassifier(native.base, head)
    want = _held_out_in_page(p)
    again = _held_out_in_page(p, "(window.again ??= await window.example.wasmvision.load({ head: window.saved }))")
    for label, images in crops.items():
        for a, b, image in zip(want[label], again[label], images[TRAIN:]):
            assert a == b  # the same head in the same worker: the same numbers
            _agree(a, reopened.classify(image, top_k=3).to_dict()["top"])
    assert p.evaluate("[...window.again.labels]") == list(LABELS)
    p.evaluate("() => window.again.dispose()")
    # A native head opens in the page too.
    native_b64 = base64.b64encode(native.to_bytes()).decode("ascii")
    top = p.evaluate(f"""async () => {{
        const blob = new Blob([Uint8Array.from(atob({json.dumps(native_b64)}), (c) => c.charCodeAt(0))]);
        const c = await window.example.wasmvision.load({{ model: {json.dumps(entry["key"])}, head: blob }});
        try {{ return (await c.classify("crops/cat_{TRAIN}.png", {{ topK: 3 }})).top; }} finally {{ await c.dispose(); }}
    }}""")
    _agree(top, native.classify(crops["cat"][TRAIN], top_k=3).to_dict()["top"])


@pytest.mark.browser
def test_a_head_for_another_model_is_refused(page, dist_dir, entry):
    other = next(m["key"] for m in json.loads((dist_dir / "manifest.json").read_text())["models"]
                 if m["key"] != entry["key"])
    got = page["page"].evaluate(f"""async () => {{
        try {{ await window.example.wasmvision.load({{ model: {json.dumps(other)}, head: window.saved ?? await window.custom.save() }}); return null; }}
        catch (err) {{ return {{kind: err.kind, name: err.name, message: err.message}}; }}
    }}""")
    assert got and got["kind"] == "WrongModelError" and got["name"] == "WasmvisionError", got
    assert "trained on model" in got["message"] and "\n" not in got["message"]


IMG = '"crops/cat_0.png"'
BAD = {
    "no labels": ("clf.train({})", "SingleLabelError", "none given"),
    "one label": (f"clf.train({{a: [{IMG}, {IMG}]}})", "SingleLabelError", "two labels"),
    "empty label": (f"clf.train({{a: [{IMG}, {IMG}], b: []}})", "EmptyLabelError", "has no examples"),
    "one example": (f"clf.train({{a: [{IMG}, {IMG}], b: [{IMG}]}})", "TooFewExamplesError", "at least 2"),
    "blank label": (f"clf.train({{a: [{IMG}, {IMG}], ' ': [{IMG}, {IMG}]}})", "ArgumentError", "non-empty"),
    "not an array": (f"clf.train({{a: {IMG}, b: [{IMG}]}})", "ArgumentError", "must be an array"),
    "not an object": ("clf.train([1, 2])", "ArgumentError", "object mapping"),
    "not an image": (f'clf.train({{a: [{IMG}, "crops/notes.txt"], b: [{IMG}, {IMG}]}})', "ImageError",
                     'Example 2 of "a"'),
    "a number": (f"clf.train({{a: [{IMG}, 42], b: [{IMG}, {IMG}]}})", "ImageError", "Expected an image"),
    "topK above the labels": (f"window.custom.classify({IMG}, {{topK: 4}})", "ArgumentError", "topK"),
    "not a head": ('window.example.wasmvision.load({head: "crops/notes.txt"})', "ModelError", "not a wasmvision head"),
    "a model as head": ('window.example.wasmvision.load({head: "../models/mobilenet_v2.wvb"})', "ModelError",
                        "pass it as the model"),
    "another site's head": ('window.example.wasmvision.load({head: "https://example.com/h.wvh"})', "PrivacyError",
                            "own site"),
    "head of a number": ("window.example.wasmvision.load({head: 7})", "ArgumentError", "head must be"),
}


@pytest.mark.browser
@pytest.mark.parametrize("what", list(BAD))
def test_every_bad_input_has_its_kind_and_the_page_keeps_working(page, native, crops, what):
    js, kind, words = BAD[what]
    p = page["page"]
    got = p.evaluate(f"""async () => {{
        const clf = window.example.clf;
        try {{ await {js}; return null; }}
        catch (err) {{ return {{kind: err.kind, message: err.message}}; }}
    }}""")
    assert got and got["kind"] == kind and words in got["message"] and "\n" not in got["message"], got
    top = p.evaluate(f"async () => (await window.custom.classify('crops/coffee_{TRAIN}.png', {{topK: 3}})).top")
    _agree(top, native.classify(crops["coffee"][TRAIN], top_k=3).to_dict()["top"])


@pytest.mark.browser
def test_no_foreign_requests_and_no_page_errors(page):
    assert page["log"].foreign(page["base"]) == []
    assert page["errors"] == []


@pytest.mark.browser
def test_embeddings_train_and_classify_as_their_images_do(page, native, crops):
    """An embedding the page kept (embed()) stands for its image: the same head, the same scores, no network run."""
    p = page["page"]
    got = p.evaluate(f"""async () => {{
        const clf = window.example.clf;
        const examples = {_urls(range(TRAIN))};
        for (const label in examples) examples[label] = await clf.embed(examples[label]);
        const fromVectors = await clf.train(examples);
        try {{
            const v = await clf.embed("crops/rocket_{TRAIN}.png");
            return {{byImage: (await fromVectors.classify("crops/rocket_{TRAIN}.png", {{topK: 3}})).top,
                     byVector: (await fromVectors.classify(v, {{topK: 3}})).top,
                     accuracy: fromVectors.head.accuracy}};
        }} finally {{ await fromVectors.dispose(); }}
    }}""")
    want = native.classify(crops["rocket"][TRAIN], top_k=3).to_dict()["top"]
    _agree(got["byImage"], want)
    _agree(got["byVector"], want)
    assert got["accuracy"] == pytest.approx(native.head.accuracy)
    bad = p.evaluate("""async () => {
        const errs = [];
        for (const call of [() => window.example.clf.classify(new Float32Array(1280)),
                            () => window.custom.classify(new Float32Array(3), {topK: 3})]) {
            try { await call(); errs.push(null); } catch (err) { errs.push({kind: err.kind, message: err.message}); }
        }
        return errs;
    }""")
    assert bad[0]["kind"] == "ArgumentError" and "custom head" in bad[0]["message"], bad
    assert bad[1]["kind"] == "ImageError" and "embedding of this model" in bad[1]["message"], bad
