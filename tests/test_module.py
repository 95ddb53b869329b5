"""The public ES module (dist/wasmvision.mjs) used from a page that is not the demo, in another folder of the site
(dist/examples/), importing it by a relative URL: every input kind, batches, embeddings, errors, each checked
against the native run of the same bundle. Needs the built site (python3 build.py build) and Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000
PROB_TOL = 1e-3
EMBED_TOL = 1e-4


@pytest.fixture(scope="module")
def site(dist_dir, photos_dir, tmp_path_factory) -> Path:
    """dist/ (as symlinks) plus photos the page can load by URL, under examples/photos/."""
    bu.require_built(dist_dir, "wasmvision.mjs", "worker.js", "examples/index.html", "manifest.json")
    root = tmp_path_factory.mktemp("module-site")
    for src in sorted(dist_dir.rglob("*")):
        if src.is_file():
            out = root / src.relative_to(dist_dir)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.symlink_to(src.resolve())
    photos = root / "examples" / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        if (photos_dir / name).exists():
            (photos / name).symlink_to((photos_dir / name).resolve())
    (photos / "notes.txt").write_text("not an image\n")
    (photos / "blank.html").write_text("<!doctype html><html lang=en><title>blank</title></html>\n")
    return root


@pytest.fixture(scope="module")
def entry(dist_dir) -> dict:
    return next(m for m in json.loads((dist_dir / "manifest.json").read_text())["models"] if m["default"])


@pytest.fixture(scope="module")
def native(dist_dir, photos_dir, entry):
    """What the module must reproduce: the same bundle natively on PIL-decoded RGB."""
    Image = pytest.importorskip("PIL.Image")
    import wasmvision

    clf = wasmvision.load(dist_dir / entry["file"])
    out = {}
    for name in ("chelsea.png", "coffee.png"):
        if (photos_dir / name).exists():
            rgb = np.asarray(Image.open(photos_dir / name).convert("RGB"))
            out[name] = {"top": clf.classify(rgb, top_k=5).to_dict()["top"],
                         "embedding": clf.infer(rgb, embedding=True)}
    return out


@pytest.fixture(scope="module")
def example(browser, served):
    """The example page, its module loaded and a classifier ready (window.example = {wasmvision, clf})."""
    with bu.example_page(browser, served, TIMEOUT_MS) as example:
        example["page"].evaluate("""async () => {
            const img = new Image();
            img.src = "photos/chelsea.png";
            await img.decode();
            window.chelsea = img;
        }""")
        yield example


def _close(got: list[dict], want: list[dict], tol: float = PROB_TOL) -> None:
    assert [p["index"] for p in got] == [p["index"] for p in want], (got, want)
    for a, b in zip(got, want):
        assert abs(a["probability"] - b["probability"]) <= tol, (a, b)


# Each makes one input kind from window.chelsea (a loaded <img> of photos/chelsea.png) in the page.
INPUTS = {
    "img": "window.chelsea",
    "canvas": """(() => { const c = document.createElement("canvas");
        c.width = chelsea.naturalWidth; c.height = chelsea.naturalHeight;
        c.getContext("2d").drawImage(chelsea, 0, 0); return c; })()""",
    "offscreen-canvas": """(() => { const c = new OffscreenCanvas(chelsea.naturalWidth, chelsea.naturalHeight);
        c.getContext("2d").drawImage(chelsea, 0, 0); return c; })()""",
    "imagebitmap": "await createImageBitmap(chelsea)",
    "imagedata": """(() => { const c = new OffscreenCanvas(chelsea.naturalWidth, chelsea.naturalHeight);
        const ctx = c.getContext("2d"); ctx.drawImage(chelsea, 0, 0);
        return ctx.getImageData(0, 0, c.width, c.height); })()""",
    "url": '"photos/chelsea.png"',
    "data-url": """(() => { const c = document.createElement("canvas");
        c.width = chelsea.naturalWidth; c.height = chelsea.naturalHeight;
        c.getContext("2d").drawImage(chelsea, 0, 0); return c.toDataURL("image/png"); })()""",
    "blob-url": 'URL.createObjectURL(await (await fetch("photos/chelsea.png")).blob())',
    "blob": 'await (await fetch("photos/chelsea.png")).blob()',
}


@pytest.mark.browser
@pytest.mark.parametrize("kind", list(INPUTS))
def test_every_input_kind_matches_native(example, native, kind):
    page = example["page"]
    result = page.evaluate(f"async () => {{ const input = {INPUTS[kind]}; "
                           "return await window.example.clf.classify(input, {topK: 5}); }")
    _close(result["top"], native["chelsea.png"]["top"])
    assert result["image"]["width"] == 451 and result["image"]["height"] == 300
    assert set(result["timings_ms"]) >= {"decode", "preprocess", "inference", "postprocess", "total"}
    assert example["errors"] == []


@pytest.mark.browser
def test_video_current_frame(example, native):
    """A <video> showing a frame: the frame is what gets classified (here a canvas stream of chelsea)."""
    page = example["page"]
    result = page.evaluate("""async () => {
        const c = document.createElement("canvas");
        c.width = chelsea.naturalWidth; c.height = chelsea.naturalHeight;
        const ctx = c.getContext("2d");
        ctx.drawImage(chelsea, 0, 0);
        const video = document.createElement("video");
        video.muted = true;
        video.srcObject = c.captureStream();
        await video.play();
        ctx.drawImage(chelsea, 0, 0);  // a new frame for the stream
        while (video.readyState < 2 || !video.videoWidth) await new Promise((r) => setTimeout(r, 20));
        const r = await window.example.clf.classify(video, {topK: 5});
        video.srcObject.getTracks().forEach((t) => t.stop());
        return r;
    }""")
    # A video frame goes through the browser's video pipeline (YUV), so only the ranking is exact.
    assert result["top"][0]["index"] == native["chelsea.png"]["top"][0]["index"]
    assert result["image"]["width"] == 451


@pytest.mark.browser
def test_batch_in_array_out(example, native):
    page = example["page"]
    names = [n for n in ("chelsea.png", "coffee.png") if n in native]
    results = page.evaluate("""async (names) => {
        const inputs = [window.chelsea, ...names.map((n) => "photos/" + n)];
        return await window.example.clf.classify(inputs, {topK: 5});
    }""", names)
    assert len(results) == 1 + len(names)
    _close(results[0]["top"], native["chelsea.png"]["top"])
    for name, r in zip(names, results[1:]):
        _close(r["top"], native[name]["top"])


@pytest.mark.browser
def test_embed_matches_native_infer_embedding(example, native):
    page = example["page"]
    got = page.evaluate("""async () => {
        const v = await window.example.clf.embed(window.chelsea);
        const [a, b] = await window.example.clf.embed([window.chelsea, "photos/chelsea.png"]);
        return {type: v.constructor.name, v: Array.from(v), a: Array.from(a), b: Array.from(b),
                dims: window.example.clf.model.embedding};
    }""")
    want = native["chelsea.png"]["embedding"]
    assert got["type"] == "Float32Array" and got["dims"] is True
    assert len(got["v"]) == want.size == 1280
    assert float(np.max(np.abs(np.asarray(got["v"]) - want))) <= EMBED_TOL
    assert got["a"] == got["v"] and float(np.max(np.abs(np.asarray(got["b"]) - want))) <= EMBED_TOL


# (what, JS that must reject, expected kind, a word of the message)
BAD = [
    ("number", "clf.classify(42)", "ImageError", "expected an image"),
    ("plain object", "clf.classify({width: 2, height: 2})", "ImageError", "expected an image"),
    ("empty blob", "clf.classify(new Blob([]))", "ImageError", "empty"),
    ("text blob", 'clf.classify(new Blob(["hello, not an image"]))', "ImageError", "not an image"),
    ("broken img", """(async () => { const img = new Image(); img.src = "photos/notes.txt";
        await img.decode().catch(() => {}); return clf.classify(img); })()""", "ImageError", "<img>"),
    ("img without src", "clf.classify(new Image())", "ImageError", "<img>"),
    ("empty canvas", 'clf.classify(Object.assign(document.createElement("canvas"), {width: 0}))', "ImageError",
     "canvas"),
    ("closed bitmap", "(async () => { const b = await createImageBitmap(chelsea); b.close(); return clf.classify(b); })()",
     "ImageError", "imagebitmap"),
    ("video without frame", 'clf.classify(document.createElement("video"))', "ImageError", "video"),
    ("missing url", 'clf.classify("photos/missing.png")', "ImageError", "404"),
    ("not-an-image url", 'clf.classify("photos/notes.txt")', "ImageError", "not an image"),
    ("other origin", 'clf.classify("https://example.com/cat.jpg")', "PrivacyError", "example.com"),
    ("topK 0", "clf.classify(chelsea, {topK: 0})", "ArgumentError", "topk"),
    ("topK 2.5", "clf.classify(chelsea, {topK: 2.5})", "ArgumentError", "topk"),
    ("topK string", 'clf.classify(chelsea, {topK: "5"})', "ArgumentError", "topk"),
    ("topK too big", "clf.classify(chelsea, {topK: 1001})", "ArgumentError", "1000"),
    ("bad options", "clf.classify(chelsea, 5)", "ArgumentError", "options"),
    ("batch with a bad one", 'clf.classify([chelsea, "photos/notes.txt"])', "ImageError", "image 2 of 2"),
    ("embed of a bad one", "clf.embed(new Blob([]))", "ImageError", "empty"),
    ("unknown model", 'wv.load({model: "no-such-model"})', "ModelError", "no-such-model"),
    ("missing model file", 'wv.load({model: "../models/missing.wvb"})', "ModelError", "404"),
    ("empty model file", "wv.load({model: new File([], 'x.wvb')})", "ModelError", "empty"),
    ("damaged model file", "wv.load({model: new File([new Uint8Array(4096).fill(7)], 'junk.wvb')})", "ModelError",
     "junk"),
    ("bad engine", 'wv.load({engine: "gpu"})', "ArgumentError", "engine"),
    ("labels of the wrong length", 'wv.load({model: "../models/mobilenet_v2-int8.wvb", labels: ["a", "b"]})',
     "ModelError", "labels"),
    # Hardening: on the previous build each of these resolved, loaded the wrong file, or misworded its message.
    ("model on another site", 'wv.load({model: "https://cdn.example.com/models/mobilenet_v2-int8.wvb"})',
     "PrivacyError", "cdn.example.com"),
    ("model as a URL object on another site", 'wv.load({model: new URL("https://cdn.example.com/m.wvb")})',
     "PrivacyError", "cdn.example.com"),
    ("topK NaN", "clf.classify(chelsea, {topK: NaN})", "ArgumentError", "got nan."),
    ("topK Infinity", "clf.classify(chelsea, {topK: Infinity})", "ArgumentError", "got infinity."),
    ("undefined input", "clf.classify(undefined)", "ImageError", "got undefined."),
    ("empty object", "clf.classify({})", "ImageError", "got an object."),
    ("engine an object", 'wv.load({engine: {}})', "ArgumentError", "got an object."),
    ("sparse array", "clf.classify([chelsea, , chelsea])", "ImageError", "image 2 of 3"),
    ("long data: URL, not an image", 'clf.classify("data:text/plain;base64," + btoa("x".repeat(240000)))',
     "ImageError", "data: url (320,023 characters)"),
    ("revoked blob: URL", """(() => { const u = URL.createObjectURL(new Blob(["x"])); URL.revokeObjectURL(u);
        return clf.classify(u); })()""", "ImageError", "revoked"),
]


@pytest.mark.browser
@pytest.mark.parametrize("what, js, kind, word", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_wasmvision_error_and_the_page_keeps_working(example, native, what, js, kind, word):
    page = example["page"]
    err = page.evaluate(f"""async () => {{
        const {{ wasmvision: wv, clf }} = window.example;
        try {{
            await {js};
            return null;
        }} catch (e) {{
            return {{isError: e instanceof wv.WasmvisionError, name: e.name, kind: e.kind, message: e.message}};
        }}
    }}""")
    assert err is not None, f"{what}: resolved instead of failing"
    assert err["isError"] and err["name"] == "WasmvisionError", err
    assert err["kind"] == kind, err
    assert word in err["message"].lower(), err
    assert "\n" not in err["message"].strip(), err  # one line
    assert len(err["message"]) <= 400, err  # nothing the caller passed is echoed whole
    assert not re.search(r"(?<!blob:)http://\S*/[0-9a-f]{8}-[0-9a-f]{4}-", err["message"]), err  # no made-up URL
    result = page.evaluate("window.example.clf.classify(window.chelsea, {topK: 5})")
    _close(result["top"], native["chelsea.png"]["top"])


@pytest.mark.browser
def test_no_foreign_requests_and_no_page_errors(example):
    # After every test above (other-origin URL included): the worker refused it, nothing left the origin.
    assert example["log"].foreign(example["base"]) == []
    assert example["errors"] == []


@pytest.mark.browser
def test_user_model_with_labels_file(example, native, dist_dir, entry):
    """A model given as a File with a labels file: results carry the given names."""
    page = example["page"]
    raw = (dist_dir / entry["file"]).read_bytes()
    names = [f"name {i}" for i in range(1000)]
    import base64

    got = page.evaluate("""async ([b64, labels]) => {
        const { wasmvision: wv } = window.example;
        const file = new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], "mine.wvb");
        const mine = await wv.load({model: file, labels: new File([labels], "labels.txt")});
        const r = await mine.classify(window.chelsea, {topK: 3});
        await mine.dispose();
        let after = null;
        try { await mine.classify(window.chelsea); } catch (e) { after = e.kind; }
        return {r, model: mine.model, after};
    }""", [base64.b64encode(raw).decode(), "\n".join(names) + "\n"])
    assert got["model"]["builtin"] is False and got["model"]["labels"] == 1000
    want = native["chelsea.png"]["top"][:3]
    _close(got["r"]["top"], want)
    assert [p["label"] for p in got["r"]["top"]] == [f"name {p['index']}" for p in want]
    assert got["after"] == "DisposedError"
    # The shared worker still serves the example's own classifier.
    result = page.evaluate("window.example.clf.classify(window.chelsea, {topK: 5})")
    _close(result["top"], native["chelsea.png"]["top"])


@pytest.mark.browser
def test_progress_reports_bytes_and_ends_ready(browser, served, dist_dir):
    """load()'s onProgress: bytes that only grow, a total equal to what the first load needs, then "ready"; and
    the time from load() to ready, printed for the notes."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(served + "examples/photos/blank.html")  # a page with no classifier of its own
        got = page.evaluate("""async () => {
            const wv = await import("../../wasmvision.mjs");
            const events = [];
            const t0 = performance.now();
            const clf = await wv.load({onProgress: (p) => events.push(p)});
            const ms = performance.now() - t0;
            const s = await clf.stats();
            await clf.dispose();
            return {events, ms, stats: s};
        }""")
    finally:
        context.close()
    events = got["events"]
    assert events[-1]["stage"] == "ready"
    # "start" comes before the worker knows what it will download: nothing loaded, no total yet (indeterminate).
    assert all(e["loaded"] == 0 == e["total"] for e in events if e["stage"] == "start")
    boot = [e for e in events if e["stage"] not in ("start", "ready")]
    assert len({e["loaded"] for e in boot}) >= 3, "progress did not move while the files arrived"
    assert all(a["loaded"] <= b["loaded"] for a, b in zip(boot, boot[1:]))
    total = boot[-1]["total"]
    assert all(e["total"] == total and 0 <= e["loaded"] <= total for e in boot)
    assert boot[-1]["loaded"] == total
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    sizes = {f["path"]: f["bytes"] for f in manifest["files"]}
    model = next(m for m in manifest["models"] if m["default"])
    expected = sum(v for k, v in sizes.items() if k.startswith("pyodide/") and k.endswith(
        (".wasm", "lock.json", ".mjs", ".asm.js")))
    # Only the files this boot downloads: a build's shipped snapshot and its small zips, or (a normal boot) the full
    # stdlib and the wheels; never a file counted as in without arriving.
    shipped = manifest.get("snapshot")
    if shipped:
        assert got["stats"]["timings"]["snapshot"] == "shipped", got["stats"]["timings"]
        expected += sum(sizes[shipped[k]] for k in ("file", "stdlib", "packages"))
    else:
        expected += sum(v for k, v in sizes.items() if k == "pyodide/python_stdlib.zip" or
                        k.startswith(("pyodide/numpy-", "pyodide/wasmvision-")))
    assert total == expected + model["bytes"], (total, expected, model["bytes"])
    print(f"\nload() to ready: {got['ms']:.0f} ms; timings {got['stats']['timings']}")


def _js_literal(text: str):
    """The JSON value at the start of a README comment written as a JS literal ({index: 285, ...})."""
    quoted = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', text.strip())
    return json.JSONDecoder().raw_decode(quoted)[0]


def _close_value(got, want) -> bool:
    if isinstance(want, float):
        return abs(got - want) <= 1e-4
    if isinstance(want, dict):
        return set(want) <= set(got) and all(_close_value(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        return len(got) == len(want) and all(_close_value(g, w) for g, w in zip(got, want))
    return got == want


@pytest.mark.browser
def test_readme_example_runs_as_shown(example):
    """README's module example, run in the example page: each `// → value` comment is what that line gives."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- readme-example:begin -->\s*```js\n(.*?)```", text, re.S).group(1)
    lines, expected = [], []
    for line in block.splitlines():
        m = re.match(r"^(\s*)(.+?);\s*// → (.+)$", line)
        if line.startswith("import * as wasmvision from "):
            lines.append(f"const wasmvision = await import({line.split(' from ')[1].rstrip(';')});")
        elif m:
            lines.append(f"{m.group(1)}__out.push({m.group(2)});")
            expected.append(_js_literal(m.group(3)))
        else:
            lines.append(line)
    page = example["page"]
    page.evaluate("""async () => {
        const img = document.querySelector("img");
        img.src = "photos/chelsea.png";
        await img.decode();
    }""")
    got = page.evaluate("async () => { const __out = [];\n" + "\n".join(lines) + "\nreturn __out; }")
    assert len(got) == len(expected) == 4
    for g, w in zip(got, expected):
        assert _close_value(g, w), (g, w)


def _blank_page(context, served, photos_dir):
    """A page of the site without the site's CSP (a user's own page may have none), and a picture from another
    site that sends no CORS headers (http://other.test/chelsea.png): both answered here, nothing leaves the machine."""
    context.route("http://other.test/chelsea.png", lambda route: route.fulfill(
        status=200, content_type="image/png", body=(photos_dir / "chelsea.png").read_bytes()))
    context.route(served + "examples/photos/no-csp.html", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<!doctype html><html lang=en><title>t</title></html>"))
    page, _ = bu.new_page(context, TIMEOUT_MS)
    page.goto(served + "examples/photos/no-csp.html")
    return page


@pytest.mark.browser
def test_a_picture_from_another_site_is_an_image_error(browser, served, native, photos_dir):
    """A cross-origin <img> and a canvas it tainted: an ImageError (not a raw DataCloneError), nothing left
    pending, and the classifier keeps working."""
    context = browser.new_context()
    try:
        page = _blank_page(context, served, photos_dir)
        got = page.evaluate("""async () => {
            const wv = await import("../../wasmvision.mjs");
            const clf = await wv.load();
            const img = new Image();
            img.src = "http://other.test/chelsea.png";
            await img.decode();
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            canvas.getContext("2d").drawImage(img, 0, 0);
            const foreign = [];
            for (const input of [img, canvas, [img]]) {
                try {
                    await clf.classify(input);
                    foreign.push(null);
                } catch (e) {
                    foreign.push({isError: e instanceof wv.WasmvisionError, kind: e.kind, message: e.message});
                }
            }
            const after = await clf.classify(await createImageBitmap(await (await fetch("chelsea.png")).blob()));
            await clf.dispose();
            return {foreign, after};
        }""")
    finally:
        context.close()
    for err in got["foreign"]:
        assert err is not None and err["isError"] and err["kind"] == "ImageError", got["foreign"]
        assert "another site" in err["message"] and "\n" not in err["message"], err
    _close(got["after"]["top"], native["chelsea.png"]["top"])


@pytest.mark.browser
def test_dispose_during_classify_settles_when_the_worker_has_no_other_user(browser, served, photos_dir):
    """dispose() while classify() converts its input: the call rejects with DisposedError (it used to be posted to
    the terminated worker and wait forever)."""
    context = browser.new_context()
    try:
        page = _blank_page(context, served, photos_dir)
        settled = page.evaluate("""async () => {
            const wv = await import("../../wasmvision.mjs");
            const clf = await wv.load();
            const bitmap = await createImageBitmap(await (await fetch("chelsea.png")).blob());
            const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
            canvas.getContext("2d").drawImage(bitmap, 0, 0);
            const running = clf.classify(canvas).then(() => "resolved", (e) => e.kind);
            const disposed = clf.dispose();
            const settled = await Promise.race([running,
                new Promise((r) => setTimeout(() => r("still pending after 20 s"), 20000))]);
            await disposed;
            return settled;
        }""")
    finally:
        context.close()
    assert settled == "DisposedError"


@pytest.mark.browser
def test_more_models_than_stay_loaded_all_keep_working(example, native):
    """The worker's registry keeps three models in Python and releases the least recently used; a released model
    is loaded again when next used (Python never drops one behind the worker's back), with the same results."""
    page = example["page"]
    got = page.evaluate("""async () => {
        const { wasmvision: wv } = window.example;
        const keys = ["mobilenet_v2", "mobilenet_v2-fp16", "mobilenet_v2-int8"];
        const own = new File([await (await fetch("../models/mobilenet_v2-int8.wvb")).blob()], "fourth.wvb");
        const clfs = [...await Promise.all(keys.map((model) => wv.load({model}))), await wv.load({model: own})];
        const rounds = [];
        for (let round = 0; round < 2; round++) {
            rounds.push(await Promise.all(clfs.map(async (c) => (await c.classify(window.chelsea, {topK: 1})).top[0])));
        }
        await Promise.all(clfs.map((c) => c.dispose()));
        return rounds;
    }""")
    want = native["chelsea.png"]["top"][0]["index"]
    for round_ in got:
        assert [p["index"] for p in round_] == [want] * 4, got
    assert [p["probability"] for p in got[0]] == [p["probability"] for p in got[1]], got
