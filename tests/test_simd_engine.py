"""The engine switch natively (where numpy is the engine: the kernels are WebAssembly), and the kernel
library as the build ships it: reproducible bytes, the recorded sha256, the wheel and the manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import wasmvision
from wasmvision import browser
from wasmvision import bundle as wvb
from wasmvision.simd import BUILDS, load_library

sys.path.insert(0, str(Path(__file__).parent))
from builders import tiny_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def image():
    return np.random.default_rng(5).integers(0, 256, (40, 50, 3), dtype=np.uint8)


def test_auto_is_numpy_natively_and_results_say_so(image):
    clf = wasmvision.load(tiny_bundle())
    assert clf.engine == "numpy" and clf.engine_notice is None
    d = clf.classify(image).to_dict()
    assert d["engine"] == "numpy"
    explicit = wasmvision.load(tiny_bundle(), engine="numpy")
    assert explicit.engine == "numpy"
    np.testing.assert_array_equal(explicit.infer(image), clf.infer(image))


def test_explicit_simd_natively_is_an_engine_error():
    with pytest.raises(wasmvision.EngineError) as exc:
        wasmvision.load(tiny_bundle(), engine="simd")
    msg = str(exc.value)
    assert "simd" in msg and "Pyodide" in msg and "\n" not in msg


def test_unknown_engine_is_an_engine_error():
    with pytest.raises(wasmvision.EngineError, match="unknown engine 'gpu'"):
        wasmvision.load(tiny_bundle(), engine="gpu")


def test_loader_refuses_outside_pyodide():
    lib, why = load_library()
    assert lib is None and "Pyodide" in why


def cli(*args):
    return subprocess.run([sys.executable, "-m", "wasmvision", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_cli_engine_option(tmp_path, image):
    Image = pytest.importorskip("PIL.Image")
    wvb.save(tiny_bundle(), tmp_path / "tiny.wvb")
    Image.fromarray(image).save(tmp_path / "p.png")
    for engine in ("auto", "numpy"):
        r = cli("classify", tmp_path / "p.png", "--model", tmp_path / "tiny.wvb", "--json", "--engine", engine)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["engine"] == "numpy"
    r = cli("classify", tmp_path / "p.png", "--model", tmp_path / "tiny.wvb", "--engine", "numpy")
    assert r.returncode == 0 and ", numpy, " in r.stdout.splitlines()[0]
    r = cli("classify", tmp_path / "p.png", "--model", tmp_path / "tiny.wvb", "--engine", "simd")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("wasmvision: error: engine 'simd' is not available")
    r = cli("classify", "--help")
    assert "--engine" in r.stdout


def test_browser_entry_points_report_the_engine(image):
    raw = wvb.to_bytes(tiny_bundle())
    info = browser.decode_response(browser.load_model("k-engine", raw, engine="numpy"))
    assert info["ok"] and info["value"]["engine"] == "numpy" and info["value"]["engine_notice"] is None
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    res = browser.decode_response(browser.classify_rgba("k-engine", rgba, image.shape[1], image.shape[0]))
    assert res["ok"] and res["value"]["engine"] == "numpy"
    bad = browser.decode_response(browser.load_model("k-engine-simd", raw, engine="simd"))
    assert not bad["ok"] and bad["error"]["kind"] == "EngineError" and "traceback" not in bad["error"]


# ------------------------------------------------------------------------------------------- the build

@pytest.mark.parametrize("build", BUILDS, ids=lambda b: b.name)
def test_library_is_built_with_its_recorded_sha256(build):
    if not build.path.exists():
        pytest.fail(f"{build.path} missing: run `python3 build.py build`", pytrace=False)
    info = json.loads(build.info.read_text())
    assert info["file"] == build.path.name
    assert hashlib.sha256(build.path.read_bytes()).hexdigest() == info["sha256"]
    assert build.path.read_bytes()[:4] == b"\0asm"


def test_wheel_and_manifest_carry_both_builds(dist_dir):
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    entries = {e["file"]: e for e in manifest["kernels"]}
    assert set(entries) == {b.path.name for b in BUILDS}
    for build in BUILDS:
        info, entry = json.loads(build.info.read_text()), entries[build.path.name]
        assert entry["sha256"] == info["sha256"] and entry["bytes"] == info["bytes"] and entry["name"] == info["name"]
        with zipfile.ZipFile(dist_dir / entry["wheel"]) as z:
            assert hashlib.sha256(z.read(entry["member"])).hexdigest() == info["sha256"]
            assert json.loads(z.read(entry["member"][:-3] + ".json"))["sha256"] == info["sha256"]


@pytest.mark.parametrize("variant", ["PLAIN", "RELAXED"])
def test_same_sources_same_bytes(tmp_path, variant):
    """Compile twice, in two other directories, with the build's own flags: identical to the shipped library."""
    from buildtools import simd as build

    spec = getattr(build, variant)
    tools = ("clang", "wasm-ld") if spec is build.PLAIN else (str(build.RELAXED_LLVM / "clang"),
                                                               str(build.RELAXED_LLVM / "wasm-ld"))
    if not all(shutil.which(t) for t in tools):
        pytest.skip(f"{tools} not installed (`python3 build.py build` installs them)")
    outputs = []
    for run in ("a", "b"):
        src = tmp_path / run / "src"
        shutil.copytree(build.SIMD_DIR, src, ignore=shutil.ignore_patterns("*.so", "*.json", "*.py", "__pycache__"))
        objs = []
        for c in sorted(src.glob("*.c")):
            subprocess.run([tools[0], *build.SIMD_CFLAGS, *spec.extra_cflags, "-c", c.name, "-o", f"../{c.stem}.o"],
                           cwd=src, check=True)
            objs.append(f"{c.stem}.o")
        subprocess.run([tools[1], *build.SIMD_LDFLAGS, "-o", "lib.so", *objs], cwd=tmp_path / run, check=True)
        outputs.append((tmp_path / run / "lib.so").read_bytes())
    assert outputs[0] == outputs[1] == spec.lib.read_bytes()
