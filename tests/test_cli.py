"""The command line, through subprocess: results, JSON shape, and a one-line error for every bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wasmvision import bundle as wvb

sys.path.insert(0, str(Path(__file__).parent))
from test_classifier import tiny_bundle  # noqa: E402

Image = pytest.importorskip("PIL.Image")


def cli(*args, cwd=None, env=None):
    e = dict(os.environ)
    e.pop("WASMVISION_MODEL", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "wasmvision", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    wvb.save(tiny_bundle(), d / "tiny.wvb")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(d / "photo.png")
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(d / "photo.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (20, 25, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (20, 25), dtype=np.uint16)).save(d / "gray16.png")
    Image.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(d / "one.png")
    Image.fromarray(rng.integers(0, 256, (20, 25), dtype=np.uint8)).convert("P").save(d / "palette.png")
    Image.new("L", (8000, 7000)).save(d / "huge.png")  # 56 MP: over MAX_PIXELS, tiny as a file
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("hello, not an image")
    (d / "truncated.png").write_bytes((d / "photo.png").read_bytes()[:200])
    raw = bytearray((d / "tiny.wvb").read_bytes())
    raw[100] ^= 0xFF
    (d / "corrupt.wvb").write_bytes(bytes(raw))
    (d / "short.wvb").write_bytes(bytes(raw[:50]))
    return d


def test_help_and_version():
    r = cli("--help")
    assert r.returncode == 0 and "classify" in r.stdout
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("wasmvision ")
    assert cli("classify", "--help").returncode == 0


def test_classify_table_and_json(files):
    r = cli("classify", files / "photo.png", files / "photo.jpg", "--model", files / "tiny.wvb", "--top-k", "2")
    assert r.returncode == 0, r.stderr
    assert "photo.png" in r.stdout and "thing" in r.stdout and "%" in r.stdout
    r = cli("classify", files / "photo.png", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["top"]) == 4 and doc["model"] == {"name": "tiny", "version": "1.2"}
    assert {"decode", "preprocess", "inference", "postprocess"} <= set(doc["timings_ms"])
    assert abs(sum(p["probability"] for p in doc["top"]) - 1) < 1e-6
    r = cli("classify", files / "photo.png", files / "one.png", "--model", files / "tiny.wvb", "--json")
    assert [d["file"] for d in json.loads(r.stdout)] == [str(files / "photo.png"), str(files / "one.png")]


def test_model_from_environment(files):
    r = cli("classify", files / "photo.png", env={"WASMVISION_MODEL": str(files / "tiny.wvb")})
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["rgba.png", "gray16.png", "one.png", "palette.png"])
def test_unusual_but_valid_images(files, name):
    r = cli("classify", files / name, "--model", files / "tiny.wvb")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name,message", [
    ("empty.png", "empty"), ("text.png", "not an image"), ("truncated.png", "corrupt or truncated"),
    ("missing.png", "not found"), ("huge.png", "too large"),
])
def test_bad_images(files, name, message):
    r = cli("classify", files / name, "--model", files / "tiny.wvb")
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_image_does_not_stop_the_others(files):
    r = cli("classify", files / "text.png", files / "photo.png", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)[0]["file"] == str(files / "photo.png")


@pytest.mark.parametrize("model,message", [
    ("corrupt.wvb", "checksum"), ("short.wvb", "not a wasmvision bundle"), ("nope.wvb", "not found"),
    ("photo.png", "not a wasmvision bundle"),
])
def test_bad_models(files, model, message):
    r = cli("classify", files / "photo.png", "--model", files / model)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_default_model_missing_says_how_to_build(tmp_path, files):
    r = cli("classify", files / "photo.png", cwd=tmp_path)
    assert r.returncode == 2
    assert "dist/models/mobilenet_v2.wvb" in r.stderr and "build.py" in r.stderr


def test_usage_errors(files):
    assert cli("classify").returncode == 2
    r = cli("classify", files / "photo.png", "--model", files / "tiny.wvb", "--top-k", "0")
    assert r.returncode == 2 and "top-k" in r.stderr
