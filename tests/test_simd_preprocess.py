"""The SIMD library's preprocessing kernels against the numpy path, bit for bit, inside Pyodide (Node): one Node
process runs every case.

Cases: the photo corpus (gray, RGB, RGBA as decoded, each RGB photo also as RGBA the way the browser hands it
over, and portrait, which takes Pillow's vertical-first pass order), a generated 12-megapixel photo (RGB, RGBA),
and generated images over every edge:
1-pixel and odd sizes, enlarging, 20:1 strips both ways, gray (2-D and one channel), gray+alpha, RGB, RGBA,
uint16 and bool pixels, views that are not contiguous, each preprocessing kind, crops larger than the resized
image (zero padding), rectangular crops, and an NCHW output layout. The numpy path itself is checked against
Pillow in test_preprocess.py. Every case runs once per build of the library (plain and relaxed SIMD).
"""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
import pytest

from pyodide_harness import RELAXED_SIMD, run_in_pyodide

BUILDS = {"plain": (), "relaxed": RELAXED_SIMD}  # the kernel build each run loads: V8 flags for its Node

SIZES = [(1, 1), (1, 2), (2, 1), (3, 5), (5, 3), (7, 11), (17, 23), (20, 400), (400, 20), (13, 260), (260, 13),
         (2, 40), (40, 2), (255, 256), (256, 255), (300, 301), (224, 224), (256, 341), (341, 256)]
LAYOUTS = ["gray", "gray1", "gray_alpha", "rgb", "rgba"]
SPECS = {
    "imagenet": ({"kind": "imagenet"}, (224, 224)),
    "inception": ({"kind": "inception"}, (299, 299)),
    "none": ({"kind": "none"}, (224, 224)),
    "raw": ({"kind": "raw"}, (96, 128)),
    "padded": ({"kind": "imagenet", "crop": [224, 224], "resize_shorter": 160}, (224, 224)),
    "rect": ({"kind": "imagenet", "crop": [200, 240], "resize_shorter": 230}, (200, 240)),
    "scaled": ({"kind": "inception", "scale": 0.0125, "mean": [0.1, 0.2, 0.3], "std": [1.5, 0.5, 2.0]}, (64, 48)),
}
PHOTO_SPECS = ["imagenet", "inception", "none", "raw"]


def _cases(photos: list[str]) -> list[dict]:
    cases = []
    for (h, w), layout, spec in itertools.product(SIZES, LAYOUTS, ["imagenet", "none", "raw"]):
        cases.append({"source": "random", "h": h, "w": w, "layout": layout, "spec": spec})
    for (h, w), spec in itertools.product([(1, 1), (3, 5), (17, 23), (20, 400), (400, 20), (300, 301)],
                                          ["inception", "padded", "rect", "scaled"]):
        cases.append({"source": "random", "h": h, "w": w, "layout": "rgba", "spec": spec})
    for layout, how in itertools.product(["rgb", "rgba", "gray"], ["uint16", "bool", "flipped", "strided", "nchw"]):
        cases.append({"source": "random", "h": 301, "w": 257, "layout": layout, "spec": "imagenet", "how": how})
    for layout in ("rgb", "rgba"):  # a 12-megapixel photo: 11.8:1, 25 taps per output, both tails of the tap pairs
        cases.append({"source": "random", "h": 3024, "w": 4032, "layout": layout, "spec": "imagenet"})
    for name, spec in itertools.product(photos, PHOTO_SPECS):
        cases.append({"source": name, "spec": spec})
    for c in cases:
        c["name"] = "-".join(str(v) for k, v in c.items() if k not in ("name",))
    return cases


CODE = r"""
import json
import time
import numpy as np
from wasmvision import simd
from wasmvision.preprocess import preprocess, resolve_spec, resized_size, vertical_pass_first
from wasmvision.simd.preprocess_ops import preprocess_kernels

lib, why = simd.default_library()
assert lib is not None, why
kernels = preprocess_kernels(lib)
assert kernels is not None, "the preprocessing kernels did not load or failed their self-check"
cases = json.load(open("/work/in/cases.json"))
specs = json.load(open("/work/in/specs.json"))
photos = np.load("/work/in/photos.npz")
CHANNELS = {"gray": None, "gray1": 1, "gray_alpha": 2, "rgb": 3, "rgba": 4}
results = {}
for i, c in enumerate(cases):
    spec, size = specs[c["spec"]]
    size = tuple(size)
    if c["source"] == "random":
        rng = np.random.default_rng(i)
        ch = CHANNELS[c["layout"]]
        shape = (c["h"], c["w"]) if ch is None else (c["h"], c["w"], ch)
        how = c.get("how")
        if how == "uint16":
            image = rng.integers(0, 65536, shape, dtype=np.uint16)
        elif how == "bool":
            image = rng.integers(0, 2, shape).astype(bool)
        else:
            image = rng.integers(0, 256, shape, dtype=np.uint8)
        if how == "flipped":
            image = image[::-1, ::-1]
        elif how == "strided":
            image = image[:, 1:]
    else:
        image = photos[c["source"]]
    s = resolve_spec(spec, size)
    ref = preprocess(image, spec, size)
    if c.get("how") == "nchw":
        buf = np.full((3, *s["crop"]), np.nan, np.float32)
        kernels.preprocess_into(image, s, buf.transpose(1, 2, 0))
        got = buf.transpose(1, 2, 0)
    else:
        got = preprocess(image, spec, size, kernels=kernels)
    h, w = np.shape(image)[:2]
    ow, oh = resized_size(h, w, s)
    results[c["name"]] = {
        "shape": list(got.shape), "ref_shape": list(ref.shape), "dtype": str(got.dtype),
        "differ": int((got.view(np.uint32) != ref.view(np.uint32)).sum()) if got.shape == ref.shape else -1,
        "order": "none" if (ow, oh) == (w, h) else "vertical-first" if vertical_pass_first(w, h, ow, oh)
        else "horizontal-first",
        "pixel": 1 if np.ndim(image) == 2 else int(np.shape(image)[2])}
json.dump(results, open("/work/out/results.json", "w"))
open("/work/out/build.txt", "w").write(lib.build)
"""


def _photo_arrays(photos_dir) -> dict[str, np.ndarray]:
    """The corpus as decoded (gray stays 2-D, RGBA keeps alpha), RGB photos also as RGBA and in portrait."""
    from PIL import Image

    out = {}
    for path in sorted(photos_dir.iterdir()):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        with Image.open(path) as im:
            mode = im.mode if im.mode in ("L", "LA", "RGB", "RGBA") else "RGB"
            arr = np.asarray(im.convert(mode))
        out[path.name] = arr
        if arr.ndim == 3 and arr.shape[2] == 3:
            out[path.name + "-rgba"] = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=2)
            out[path.name + "-portrait"] = np.ascontiguousarray(arr.transpose(1, 0, 2))
    return out


@pytest.fixture(scope="module", params=list(BUILDS))
def run(request, tmp_path_factory, photos_dir):
    photos = _photo_arrays(photos_dir)
    cases = _cases(sorted(photos))
    buf = io.BytesIO()
    np.savez(buf, **photos)
    work = tmp_path_factory.mktemp(f"simd-preprocess-{request.param}")
    out = run_in_pyodide(work, CODE, {"cases.json": json.dumps(cases).encode(), "specs.json": json.dumps(SPECS).encode(),
                                      "photos.npz": buf.getvalue()}, node_args=BUILDS[request.param])
    assert out["build.txt"].decode() == request.param, "the run loaded another build of the library"
    return cases, json.loads(out["results.json"])


RANDOM_CASES = _cases([])


@pytest.mark.parametrize("case", RANDOM_CASES, ids=[c["name"] for c in RANDOM_CASES])
def test_kernel_preprocess_is_bit_exact_on_generated_images(run, case):
    r = run[1][case["name"]]
    assert r["shape"] == r["ref_shape"] and r["dtype"] == "float32", r
    assert r["differ"] == 0, f"{r['differ']} values differ from the numpy path ({r['order']}, {r['pixel']} bytes/pixel)"


def test_kernel_preprocess_is_bit_exact_on_the_photo_corpus(run):
    cases, results = run
    photo_cases = [c for c in cases if c["source"] != "random"]
    assert len(photo_cases) >= 4 * 20, "the photo corpus is missing photos"
    bad = {c["name"]: results[c["name"]] for c in photo_cases
           if results[c["name"]]["differ"] != 0 or results[c["name"]]["shape"] != results[c["name"]]["ref_shape"]}
    assert not bad, bad


def test_every_pass_order_and_pixel_layout_is_exercised(run):
    cases, results = run
    seen = {(r["order"], r["pixel"]) for r in results.values()}
    for order in ("horizontal-first", "vertical-first", "none"):
        for pixel in (1, 2, 3, 4):
            assert (order, pixel) in seen, (order, pixel)
