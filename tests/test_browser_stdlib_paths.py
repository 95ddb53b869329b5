"""Every module a visitor restored from the shipped memory snapshot imports, on every path, is in the small zips the
restore downloads (snapshot/python_stdlib.zip, snapshot/site-packages.zip) or already in the heap.

The site runs with the test hook "traceImports" (web/worker/testhooks.js): a finder last on sys.meta_path records
every module name no other finder found. The page, the module API (every request type the worker serves Python
for, read from web/worker/protocol.js) with its error paths, ONNX import and the album are driven; then each worker
reports sys.modules with each module's origin. A name that was looked up and not found, but that the full stdlib
or the wheels hold, is a module the small zips lack (an ImportError, or an error path turned into another error).
Needs the built site with its shipped snapshot, and Chromium.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

import browser_util as bu
from buildtools.snapshot import PACKAGES_PATH, STDLIB_PATH, STDLIB_IN_HEAP, SITE_IN_HEAP

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 300_000
PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png"]
# Error kinds no Python code raises (the page or the module raises them before any request reaches Python).
NOT_FROM_PYTHON = {
    "SetupError": "the runtime could not start",
    "PrivacyError": "refused by the worker's fetch before Python sees a byte",
    "EngineError": "every engine runs in this Chromium",
    "ResourceError": "provoked by tests/test_browser_hostile.py's hooks, which replace the worker",
    "DisposedError": "raised by the module after dispose()",
    "InternalError": "a bug",
}

pytestmark = pytest.mark.browser


def python_requests() -> set[str]:
    """The request types the worker runs Python for (protocol.js's PYTHON_REQUESTS)."""
    text = (ROOT / "web/worker/protocol.js").read_text()
    body = re.search(r"PYTHON_REQUESTS = new Set\(\[(.*?)\]\)", text, re.S).group(1)
    return set(re.findall(r'"(\w+)"', body))


def members(zips: list[Path]) -> set[str]:
    out: set[str] = set()
    for z in zips:
        with zipfile.ZipFile(z) as f:
            out.update(f.namelist())
    return out


def module_files(name: str, files: set[str]) -> list[str]:
    """The files in `files` that would provide module `name` (source, bytecode, package, extension)."""
    stem = name.replace(".", "/")
    return sorted(f for f in files if f.startswith((stem + "/__init__.", stem + "."))
                  and f.endswith((".py", ".pyc", ".so")) and "/" not in f[len(stem) + 1:].replace("__init__.", ""))


@pytest.fixture(scope="module")
def site(dist_dir, tmp_path_factory) -> Path:
    bu.require_built(dist_dir, "index.html", "album.html", "worker.js", "manifest.json")
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    if "snapshot" not in manifest:
        pytest.fail("dist/ has no shipped memory snapshot: the build could not run Chromium (see its log)",
                    pytrace=False)
    manifest["testHooks"] = {"traceImports": True}
    return bu.site_variant(dist_dir, tmp_path_factory.mktemp("stdlib-paths"),
                           replace={"manifest.json": json.dumps(manifest).encode()})


@pytest.fixture(scope="module")
def full_files(dist_dir) -> set[str]:
    """What a normal boot can import: the site's full stdlib and its wheels."""
    lock = json.loads((dist_dir / "pyodide/pyodide-lock.json").read_text())
    wheels = [dist_dir / "pyodide" / lock["packages"][p]["file_name"] for p in ("numpy", "wasmvision")]
    return members([dist_dir / "pyodide/python_stdlib.zip", *wheels])


@pytest.fixture(scope="module")
def small_files(dist_dir) -> dict[str, set[str]]:
    return {STDLIB_IN_HEAP: members([dist_dir / STDLIB_PATH]), SITE_IN_HEAP: members([dist_dir / PACKAGES_PATH])}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, photos_dir) -> dict[str, Path]:
    pytest.importorskip("onnx")
    import onnx_builders as B

    out = tmp_path_factory.mktemp("stdlib-inputs")
    net = B.concat_net(size=64, classes=10)
    (out / "tiny.onnx").write_bytes(net.SerializeToString())
    (out / "truncated.onnx").write_bytes(net.SerializeToString()[:300])
    net.graph.node[len(net.graph.node) // 2].op_type = "NoSuchOperator"
    (out / "unsupported.onnx").write_bytes(net.SerializeToString())
    (out / "garbage.wvb").write_bytes(b"WVB0" + bytes(range(256)) * 8)
    (out / "notes.txt").write_bytes(b"not an image\n")
    (out / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not the rest of a PNG" * 20)
    (out / "garbage.wvh").write_bytes(b"not a head\n" * 10)
    for name in PHOTOS:
        (out / name).write_bytes((photos_dir / name).read_bytes())
    return {p.name: p for p in out.iterdir()}


# The page's own calls, then the module API on the same worker (the page's classifiers share it), every error path.
# `blobs`: window.__blobs[name] = Blob of each input. Returns {kinds: [error kinds met], failures: [...]}.
PAGE_PATHS = """async () => {
  const wv = window.wasmvision, m = wv.module, b = window.__blobs, kinds = new Set(), failures = [];
  const expectError = async (what, kind, fn) => {
    try { await fn(); failures.push(`${what}: no error`); }
    catch (err) { kinds.add(err.kind); if (err.kind !== kind) failures.push(`${what}: ${err.kind}: ${err.message}`); }
  };
  // The page: classify photos, an ONNX model imported in the page, its bad files.
  for (const p of ["chelsea.png", "coffee.png"]) await wv.classify(b[p], { topK: 5 });
  await expectError("page: not an image", "ImageError", () => wv.classify(b["notes.txt"]));
  await expectError("page: top-k 0", "ArgumentError", () => wv.classify(b["chelsea.png"], { topK: 0 }));
  const base = wv.currentModel;
  const onnx = await wv.loadModel(new File([b["tiny.onnx"]], "tiny.onnx"), { select: false });
  await wv.classify(b["chelsea.png"], { model: onnx.key });
  await expectError("page: truncated onnx", "ModelError", () => wv.loadModel(new File([b["truncated.onnx"]], "t.onnx"), { select: false }));
  await expectError("page: unsupported onnx", "ModelError", () => wv.loadModel(new File([b["unsupported.onnx"]], "u.onnx"), { select: false }));
  await expectError("page: garbage wvb", "ModelError", () => wv.loadModel(new File([b["garbage.wvb"]], "g.wvb"), { select: false }));
  // The module API: load, classify (one, many, with the embedding), embed, engines.
  const clf = await m.load({ model: base });
  const photos = ["chelsea.png", "coffee.png", "astronaut.png"].map((p) => b[p]);
  await clf.classify(photos, { topK: 3, embedding: true });
  const [e1, e2, e3] = await clf.embed(photos);
  for (const engine of m.ENGINES) await (await m.load({ model: base, engine })).classify(b["chelsea.png"]);
  await expectError("module: not an image", "ImageError", () => clf.classify(b["notes.txt"]));
  await expectError("module: embed not an image", "ImageError", () => clf.embed(b["notes.txt"]));
  await expectError("module: a broken PNG", "ImageError", () => clf.classify(b["broken.png"]));
  await expectError("module: bad top-k", "ArgumentError", () => clf.classify(b["chelsea.png"], { topK: 100000 }));
  // Heads: train (images and embeddings), classify, save, open, and every training error.
  const jitter = (e, k) => e.map((v, i) => v * (1 + 0.01 * k * Math.sin(i)));
  const examples = { cat: [b["chelsea.png"], jitter(e1, 1)], other: [e2, jitter(e2, 1), e3] };
  const custom = await clf.train(examples, { name: "paths" });
  await custom.classify(b["chelsea.png"], { topK: 2 });
  await custom.classify([e1, e3], { topK: 2 });
  await custom.embed(b["coffee.png"]);
  const saved = await custom.save();
  const reopened = await m.load({ model: base, head: saved });
  await reopened.classify(b["astronaut.png"], { topK: 2 });
  await expectError("head: empty label", "EmptyLabelError", () => clf.train({ a: [], b: [e1, e2] }));
  await expectError("head: one label", "SingleLabelError", () => clf.train({ a: [e1, e2] }));
  await expectError("head: too few", "TooFewExamplesError", () => clf.train({ a: [e1], b: [e2, e3] }));
  await expectError("head: bad example", "ImageError", () => clf.train({ a: [b["notes.txt"], e1], b: [e2, e3] }));
  await expectError("head: bad embedding", "ImageError", () => clf.train({ a: [new Float32Array(3), e1], b: [e2, e3] }));
  await expectError("head: garbage file", "ModelError", () => m.load({ model: base, head: b["garbage.wvh"] }));
  await expectError("head: wrong model", "WrongModelError", () => m.load({ model: onnx.key, head: saved }));
  await expectError("head: bad top-k", "ArgumentError", () => custom.classify(e1, { topK: 3 }));
  await custom.dispose();
  await reopened.dispose();
  return { kinds: [...kinds], failures, errorKinds: [...m.ERROR_KINDS] };
}"""


def module_names(files: set[str]) -> list[str]:
    """The modules whose code `files` (zip members) hold, as import names."""
    names = set()
    for f in files:
        if f.endswith((".py", ".pyc")) and "-" not in f.split("/")[0]:
            names.add(f.rsplit(".", 1)[0].removesuffix("/__init__").replace("/", "."))
    return sorted(names)


def _traces(page, small_files: dict[str, set[str]]) -> list[dict]:
    """Each worker's trace; every module of the small zips must be readable by its import system (the zip's table
    of contents the restored interpreter holds is the zip's, not the one the build's interpreter read)."""
    readable = module_names(set().union(*small_files.values()))
    out = []
    for worker in page.workers:
        trace = worker.evaluate("(names) => self.wasmvisionImportTrace ? self.wasmvisionImportTrace(names) : null",
                                readable)
        if trace:
            out.append(trace)
    assert out, "no worker ran a Python request with the import trace on"
    assert [t["boot"] for t in out] == ["shipped"] * len(out), [t["boot"] for t in out]
    unreadable = {n: why for t in out for n, why in t["unreadable"].items()}
    assert not unreadable, f"{len(unreadable)} of {len(readable)} modules unreadable, e.g. {list(unreadable.items())[:5]}"
    return out


def _check(traces: list[dict], full_files: set[str], small_files: dict[str, set[str]]) -> dict[str, list[str]]:
    """Asserts every loaded module came from the small zips or the heap and no lookup missed a module a normal boot
    has; returns {"after_restore": [...], "missed": [...]} for the report."""
    after, wrong = set(), []
    for trace in traces:
        for name, (origin, loader) in trace["modules"].items():
            if not origin or not origin.startswith("/"):
                continue  # built in, frozen, or a JavaScript module (js, pyodide_js): no file
            prefix = next((p for p in small_files if origin.startswith(p)), None)
            if prefix is None:
                if origin.startswith("/lib/python3.12/lib-dynload/"):
                    continue  # the runtime's own extension modules, not the zips
                wrong.append(f"{name}: {origin} ({loader})")
            elif origin[len(prefix):] in small_files[prefix] and not origin.endswith(".so"):
                after.add(name)  # its file is in a small zip: the heap did not hold it (side modules are preloaded)
        missing = {n: module_files(n, full_files) for n in trace["missed"]}
        wrong += [f"{n} not found after the restore, but a normal boot has {files}" for n, files in missing.items()
                  if files]
    assert not wrong, "\n".join(wrong)
    return {"after_restore": sorted(after), "missed": sorted({n for t in traces for n in t["missed"]})}


def test_every_path_of_the_page_and_the_module_imports_only_what_the_small_zips_hold(pw, site, inputs, full_files,
                                                                                      small_files):
    with bu.serve(site) as base:
        browser = bu.launch(pw)
        try:
            page, errors = bu.new_page(browser.new_context(), TIMEOUT_MS)
            page.goto(base)
            bu.wait_ready(page, TIMEOUT_MS)
            page.evaluate("() => { window.__blobs = {}; }")
            for name, path in inputs.items():
                page.evaluate(f"() => {{ window.__blobs[{name!r}] = {bu.put_blob(page, path)}; }}")
            boot = page.evaluate("() => window.wasmvision.stats.bootTimings") or {}
            assert boot.get("snapshot") == "shipped", boot
            ran = page.evaluate(PAGE_PATHS)
            traces = _traces(page, small_files)
            assert errors == [], errors
        finally:
            browser.close()
    assert ran["failures"] == [], ran["failures"]
    assert set(ran["kinds"]) >= set(ran["errorKinds"]) - set(NOT_FROM_PYTHON), ran["kinds"]
    served = set().union(*(t["requests"] for t in traces))
    assert served >= python_requests(), f"request types not exercised: {python_requests() - served}"
    found = _check(traces, full_files, small_files)
    print(f"\nimported after the restore ({len(found['after_restore'])}): {found['after_restore']}")
    print(f"looked up and absent everywhere ({len(found['missed'])}): {found['missed']}")


def test_the_album_imports_only_what_the_small_zips_hold(pw, site, inputs, full_files, small_files):
    files = [str(inputs[p]) for p in PHOTOS] + [str(inputs["broken.png"])]  # the album skips files of other types
    with bu.serve(site) as base:
        browser = bu.launch(pw)
        try:
            page, errors = bu.new_page(browser.new_context(), TIMEOUT_MS)
            page.goto(base + "album.html?workers=1")
            page.wait_for_function("() => window.wasmvisionAlbum")
            page.evaluate("() => window.wasmvisionAlbum.ready")
            page.set_input_files("[data-testid=album-files]", files)
            page.wait_for_function(f"() => document.querySelectorAll('[data-testid=album-item]').length === "
                                   f"{len(files)} && !window.wasmvisionAlbum.state().running", polling=250)
            traces = _traces(page, small_files)
            assert errors == [], errors
        finally:
            browser.close()
    found = _check(traces, full_files, small_files)
    print(f"\nalbum: imported after the restore ({len(found['after_restore'])}): {found['after_restore']}")
