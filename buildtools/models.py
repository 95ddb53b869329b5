"""Model recipes to files: checkpoint -> ONNX -> bundle (.wvb) and its fp16/int8 variants, under build/models/."""

from __future__ import annotations

from pathlib import Path

from .paths import BUILD, ROOT
from .sources import load_recipes
from .util import BuildError, outputs_current, stage, tree_digest, write_outputs_stamp


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


