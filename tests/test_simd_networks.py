"""Whole networks on the SIMD engine inside Pyodide (Node) against the numpy engine (same Pyodide) and
onnxruntime (native): every importer family, the real MobileNetV2 on real photos, and the fallbacks
(a library that fails to load, a library whose sha256 does not match: numpy, with a notice naming the file).

Parity: max|Δ| <= 1e-4 of the output scale (max(1, max|ref|)) and the same top-5. Every network test runs with
both builds of the kernel library: plain SIMD128 (plain Node) and relaxed SIMD (Node with V8's flag).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")

import onnx_builders as B  # noqa: E402
from pyodide_harness import RELAXED_SIMD, run_in_pyodide  # noqa: E402
from builders import PHOTOS, torchvision_preprocess  # noqa: E402

FAMILIES = {
    "mobilenet_v1": (B.mobilenet_v1, {"size": 128}),
    "mobilenet_v1_relu6_matmul_head": (B.mobilenet_v1, {"size": 96, "act": "relu6", "head": "matmul"}),
    "mobilenet_v2": (B.mobilenet_v2, {"size": 128}),
    "mobilenet_v2_w1.4_192": (B.mobilenet_v2, {"width": 1.4, "size": 192}),
    "mobilenet_v3_small": (lambda **kw: B.mobilenet_v3("small", **kw), {"size": 128}),
    "mobilenet_v3_large_160": (lambda **kw: B.mobilenet_v3("large", **kw), {"size": 160}),
    "efficientnet_lite": (B.efficientnet_lite, {"size": 128}),
    "efficientnet_lite_opset9_96": (B.efficientnet_lite, {"size": 96, "opset": 9}),
    "resnet_small": (B.resnet_small, {"size": 128}),
    "tf_channels_last": (B.tf_channels_last, {"size": 96}),
}
TOL = 1e-4

NETWORK_CODE = r"""
import json, os
import numpy as np
import wasmvision
from wasmvision import bundle

from wasmvision.simd import default_library

names = json.load(open("/work/in/names.json"))
report = {"simd_build": default_library()[0].build}
for name in names:
    b = bundle.from_bytes(open(f"/work/in/{name}.wvb", "rb").read())
    x = np.load(f"/work/in/{name}.x.npy")
    for engine in ("simd", "numpy"):
        clf = wasmvision.load(b, engine=engine)
        assert clf.engine == engine, (name, engine, clf.engine, clf.engine_notice)
        np.save(f"/work/out/{name}.{engine}.npy", clf.run(x))
        plan = clf._executor.plan(x.shape)
        report[f"{name}.{engine}"] = {e: plan.engines.count(e) for e in ("simd", "numpy")}
# The real MobileNetV2: the graph on torchvision-preprocessed photos, and classify() on the decoded photos.
clfs = {e: wasmvision.load("/work/in/real_mobilenet_v2.wvb", engine=e) for e in ("simd", "numpy")}
for photo in json.load(open("/work/in/photos.json")):
    x = np.load(f"/work/in/{photo}.x.npy")
    rgb = np.load(f"/work/in/{photo}.rgb.npy")
    for e, clf in clfs.items():
        np.save(f"/work/out/{photo}.{e}.npy", clf.run(x))
        report[f"{photo}.{e}.classify"] = clf.classify(rgb, top_k=5).to_dict()
report["profile.simd"] = clfs["simd"].profile(rgb, runs=2)
# Loaded the way the page loads a model a classification is waiting for: no warm-up run, checksum already checked.
import wasmvision.browser as glue
raw = open("/work/in/real_mobilenet_v2.wvb", "rb").read()
report["glue.cold"] = json.loads(glue.load_model("cold", raw, checked=True, warm_up=False))
# The page's calls on the model it loaded: classify, classify + embedding (the album), embedding alone.
rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
h, w = rgba.shape[:2]
report["glue.calls"] = [json.loads(getattr(glue, fn)("cold", rgba.tobytes(), w, h))["value"]
                        for fn in ("classify_rgba", "classify_embed_rgba", "embed_rgba")]
report["glue.plans_built"] = glue._cache.get("cold")._executor.plans_built
for photo in json.load(open("/work/in/photos.json")):
    rgb = np.load(f"/work/in/{photo}.rgb.npy")
    report[f"{photo}.simd_cold.classify"] = wasmvision.load(raw, engine="simd", warm=False).classify(rgb, top_k=5).to_dict()
json.dump(report, open("/work/out/report.json", "w"))
"""


def _top5(v: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-v.reshape(-1), kind="stable")[:5]]


def assert_same_top5(got: np.ndarray, ref: np.ndarray, tol: float) -> None:
    """Same top-5 in the same order, except where the reference itself has two scores closer than the
    tolerance (then their order is not a property of the network)."""
    g, r = _top5(got), _top5(ref)
    flat = ref.reshape(-1)
    for a, b in zip(g, r):
        assert a == b or abs(float(flat[a]) - float(flat[b])) <= 2 * tol, (g, r)


def _rel(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    scale = max(1.0, float(np.abs(ref).max()))
    return float(np.abs(got.astype(np.float64) - ref).max()) / scale, scale


BUILDS = {"plain": (), "relaxed": RELAXED_SIMD}  # the kernel build each run loads: V8 flags for its Node


@pytest.fixture(scope="module", params=list(BUILDS))
def networks(request, tmp_path_factory, mobilenet_bundle, mobilenet_onnx, photos_dir):
    from wasmvision import bundle as _bundle
    from wasmvision.importers.onnx_import import import_onnx
    import onnxruntime as ort

    inputs, refs = {}, {}
    for name, (builder, kw) in FAMILIES.items():
        raw = builder(**kw).SerializeToString()
        b = import_onnx(raw)
        _, h, w, c = b.inputs[0].shape
        x = np.random.default_rng(len(name)).standard_normal((1, h, w, c)).astype(np.float32)
        ref = B.run_onnxruntime(raw, x, b.metadata["source_layout"])
        inputs[f"{name}.wvb"] = _bundle.to_bytes(b)
        inputs[f"{name}.x.npy"] = _npy(x)
        refs[name] = ref
    sess = ort.InferenceSession(str(mobilenet_onnx), providers=["CPUExecutionProvider"])
    for photo in PHOTOS:
        x = torchvision_preprocess(photos_dir / photo)  # (1, 3, 224, 224)
        refs[photo] = sess.run(["logits"], {"input": x})[0]
        inputs[f"{photo}.x.npy"] = _npy(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        inputs[f"{photo}.rgb.npy"] = _npy(np.asarray(Image.open(photos_dir / photo).convert("RGB")))
    inputs["real_mobilenet_v2.wvb"] = mobilenet_bundle.read_bytes()
    inputs["names.json"] = json.dumps(list(FAMILIES)).encode()
    inputs["photos.json"] = json.dumps(list(PHOTOS)).encode()
    out = run_in_pyodide(tmp_path_factory.mktemp(f"simd-networks-{request.param}"), NETWORK_CODE, inputs,
                         node_args=BUILDS[request.param])
    got = {k[:-4]: np.load(io.BytesIO(v)) for k, v in out.items() if k.endswith(".npy")}
    return refs, got, json.loads(out["report.json"])


def test_each_run_loaded_its_build(networks, request):
    """Feature detection: the relaxed build where the engine validates it, else the plain one."""
    build = request.node.callspec.params["networks"]
    assert networks[2]["simd_build"] == build


def test_the_pages_calls_share_the_plan_made_at_load(networks):
    """classify, classify + embedding and the embedding alone run the plan load_model made: none makes another
    (each would pack every weight again), and they agree with each other."""
    report = networks[2]
    classify, both, embed = report["glue.calls"]
    assert report["glue.plans_built"] == 1
    assert classify["engine"] == both["engine"] == embed["engine"] == "simd"
    assert both["top"] == classify["top"]
    assert both["embedding"] == embed["embedding"] and len(embed["embedding"]) == 1280


def test_a_model_loaded_without_warm_up_gives_the_same_answers(networks):
    _, _, report = networks
    assert report["glue.cold"]["ok"] and report["glue.cold"]["value"]["engine"] == "simd", report["glue.cold"]
    for photo in PHOTOS:
        warm, cold = report[f"{photo}.simd.classify"], report[f"{photo}.simd_cold.classify"]
        assert cold["engine"] == "simd" and cold["top"] == warm["top"], (photo, cold["top"], warm["top"])


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_parity_simd_numpy_onnxruntime(networks, name):
    refs, got, report = networks
    ref = refs[name]
    if ref.ndim == 4 and ref.shape[1] != got[f"{name}.simd"].shape[1]:
        ref = ref.transpose(0, 2, 3, 1)
    simd, npy = got[f"{name}.simd"], got[f"{name}.numpy"]
    assert simd.shape == ref.shape == npy.shape
    assert report[f"{name}.simd"]["simd"] > 0, report[f"{name}.simd"]  # the kernels really ran
    assert report[f"{name}.numpy"]["simd"] == 0
    for a, b in ((simd, ref), (simd, npy), (npy, ref)):
        rel, scale = _rel(a, b)
        assert rel <= TOL, (name, rel)
        assert_same_top5(a, b, TOL * scale)


@pytest.mark.parametrize("photo", PHOTOS)
def test_real_mobilenet_v2_simd_vs_onnxruntime(networks, photo):
    refs, got, report = networks
    ref = refs[photo]
    for engine in ("simd", "numpy"):
        rel, scale = _rel(got[f"{photo}.{engine}"], ref)
        assert rel <= TOL, (photo, engine, rel)
        assert_same_top5(got[f"{photo}.{engine}"], ref, TOL * scale)
    simd, npy = report[f"{photo}.simd.classify"], report[f"{photo}.numpy.classify"]
    assert simd["engine"] == "simd" and npy["engine"] == "numpy"
    assert [p["index"] for p in simd["top"]] == [p["index"] for p in npy["top"]]
    for a, b in zip(simd["top"], npy["top"]):
        assert abs(a["probability"] - b["probability"]) <= 1e-4


FALLBACK_CODE = r"""
import json, shutil
import numpy as np
import wasmvision
from wasmvision import simd

lib_path, info_path = simd.LIBRARY, simd.LIBRARY_INFO
good, good_info = lib_path.read_bytes(), info_path.read_text()
data = open("/work/in/m.wvb", "rb").read()
x = np.random.default_rng(0).standard_normal((1, 96, 96, 3)).astype(np.float32)
report = {}

def attempt(tag):
    simd.default_library.cache_clear()
    clf = wasmvision.load(data)  # auto
    report[tag] = {"engine": clf.engine, "notice": clf.engine_notice}
    np.save(f"/work/out/{tag}.npy", clf.run(x))
    try:
        wasmvision.load(data, engine="simd")
        report[tag]["explicit"] = "loaded"
    except wasmvision.EngineError as exc:
        report[tag]["explicit"] = "EngineError: " + str(exc)

import hashlib

def wrong_hash():  # bytes that do not match the recorded sha256: refused before anything is loaded
    lib_path.write_bytes(good + b"\0")

def fails_to_load():  # the recorded hash, but not a loadable module (as in an engine without Wasm SIMD)
    garbage = b"\0asm\x01\0\0\0 this is not a side module"
    lib_path.write_bytes(garbage)
    info = json.loads(good_info)
    info["sha256"] = hashlib.sha256(garbage).hexdigest()
    info_path.write_text(json.dumps(info))

def missing():
    lib_path.unlink()

def restored():
    lib_path.write_bytes(good)
    info_path.write_text(good_info)

# Emscripten remembers a library by path once dlopen has seen it (even a failed one): each process tries one
# loadable-or-not file at the library's path, in this order.
for tag in json.load(open("/work/in/scenarios.json")):
    globals()[tag]()
    attempt(tag)
    restored()
clf = wasmvision.load(data, engine="numpy")
report["numpy"] = {"engine": clf.engine, "notice": clf.engine_notice}
np.save("/work/out/numpy.npy", clf.run(x))
json.dump(report, open("/work/out/report.json", "w"))
"""


def test_fallbacks_in_pyodide(tmp_path):
    from wasmvision import bundle as _bundle
    from wasmvision.importers.onnx_import import import_onnx

    b = _bundle.to_bytes(import_onnx(B.mobilenet_v2(size=96).SerializeToString()))
    out, report = {}, {}
    for i, scenarios in enumerate((["wrong_hash", "missing", "restored"], ["fails_to_load"])):
        got = run_in_pyodide(tmp_path / str(i), FALLBACK_CODE,
                             {"m.wvb": b, "scenarios.json": json.dumps(scenarios).encode()})
        out.update(got)
        report.update(json.loads(got["report.json"]))
    ref = np.load(io.BytesIO(out["numpy.npy"]))
    assert report["numpy"] == {"engine": "numpy", "notice": None}
    assert report["restored"]["engine"] == "simd" and report["restored"]["notice"] is None, report["restored"]
    assert report["restored"]["explicit"] == "loaded"
    lib = "wasmvision/simd/libwvsimd.so"
    for tag, words in (("wrong_hash", "does not match"), ("fails_to_load", "failed to load"),
                       ("missing", "not built")):
        r = report[tag]
        assert r["engine"] == "numpy", (tag, r)
        assert r["notice"] and lib in r["notice"] and words in r["notice"] and "\n" not in r["notice"], (tag, r)
        assert r["explicit"].startswith("EngineError: ") and lib in r["explicit"], (tag, r)
    for tag in ("wrong_hash", "fails_to_load", "missing", "restored"):
        y = np.load(io.BytesIO(out[f"{tag}.npy"]))
        assert _rel(y, ref)[0] <= TOL, tag


def test_profile_runs_on_the_simd_engine(networks):
    prof = networks[2]["profile.simd"]
    assert prof["total"] > 0 and prof["pointwise"] > 0 and prof["depthwise"] > 0
    assert prof["activations"] == 0.0  # fused into the kernels: no separate bias/activation passes
