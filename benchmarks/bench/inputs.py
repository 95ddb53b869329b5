"""The benchmark's inputs: the peers (installed into benchmarks/.peers by the benchmark only), the photo, the ONNX
model, the site's bundle and the preprocessed tensor every system is fed."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from .common import BENCH_DIR as HERE, ROOT, log

ORT_WEB_VERSION = "1.30.0"
PYODIDE_FALLBACK = ROOT / ".cache" / "pyodide-0.27.7"  # the build's unpacked Pyodide, if dist/ lacks it

def ensure_ort_web():
    peers = HERE / ".peers"
    dist = peers / "node_modules" / "onnxruntime-web" / "dist"
    pkg = peers / "node_modules" / "onnxruntime-web" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text())["version"] == ORT_WEB_VERSION:
        return dist
    peers.mkdir(exist_ok=True)
    if not (peers / "package.json").exists():
        (peers / "package.json").write_text('{"name": "wasmvision-bench-peers", "private": true}\n')
    log(f"installing onnxruntime-web@{ORT_WEB_VERSION} into {peers} (benchmark only)")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"onnxruntime-web@{ORT_WEB_VERSION}"],
                   cwd=peers, check=True, stdout=subprocess.DEVNULL)
    return dist


PLANER_VERSION = "0.35"


def ensure_planer(work):
    """PyPI planer (pure numpy CNN inference) as a second peer: the wheel (benchmark only) and the model in its
    own .pla format, converted natively with its onnx2pla (needs `onnx`). Returns the wheel path or None."""
    peers = HERE / ".peers"
    wheels = sorted(peers.glob(f"planer-{PLANER_VERSION}-*.whl"))
    if not wheels:
        r = subprocess.run([sys.executable, "-m", "pip", "download", f"planer=={PLANER_VERSION}", "--no-deps",
                            "-d", str(peers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wheels = sorted(peers.glob(f"planer-{PLANER_VERSION}-*.whl"))
        if not wheels:
            log(f"planer not available: {r.stderr.strip()[-300:]}")
            return None
    return wheels[0]


def planer_model(wheel, onnx_path, work):
    import shutil
    src = work / "planer_model.onnx"
    shutil.copyfile(onnx_path, src)
    sys.path.insert(0, str(wheel))  # a pure-Python wheel imports straight from the zip
    import planer
    planer.onnx2pla(str(src))
    return work / "planer_model.pla"


def find_image(name, work):
    for p in (ROOT / "build" / "photos" / name, work / name):
        if p.exists():
            return p
    # scikit-image wheel downloaded earlier (the build's source of photos)
    for whl in sorted((ROOT / ".cache" / "downloads").glob("scikit_image*.whl")):
        with zipfile.ZipFile(whl) as z:
            member = f"skimage/data/{name}"
            if member in z.namelist():
                (work / name).write_bytes(z.read(member))
                return work / name
    raise SystemExit(f"cannot find {name}: run the build first (build/photos/)")


PREPROCESS_PHOTOS = {"640x427 JPEG": "rocket.jpg", "4032x3024 JPEG": "generated-4032x3024.jpg"}  # issue 18's


def preprocess_photos(work):
    """{label: file name in work} of the photos the preprocess-stage rows classify: the corpus's 640x427 JPEG and a
    generated 12-megapixel one (smooth colour ramps and seeded noise, landscape like a phone's)."""
    from PIL import Image
    big = work / PREPROCESS_PHOTOS["4032x3024 JPEG"]
    if not big.exists():
        y, x = np.mgrid[0:3024, 0:4032].astype(np.float32)
        rgb = np.stack([x / 4032 * 255, y / 3024 * 255, (x + y) % 512 / 2], axis=2)
        rgb += np.random.default_rng(18).normal(0, 12, rgb.shape)
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(big, quality=90)
    small = find_image(PREPROCESS_PHOTOS["640x427 JPEG"], work)
    if small.parent != work:
        (work / small.name).write_bytes(small.read_bytes())
    return dict(PREPROCESS_PHOTOS)


def find_model(args, work):
    if args.model:
        return Path(args.model), "given"
    real = ROOT / "build" / "models" / "mobilenet_v2.onnx"
    if real.exists():
        return real, "build"
    dev = work / "dev_mobilenet_v2.onnx"
    if not dev.exists():
        import devmodel
        devmodel.build(str(dev))
    log("WARNING: build/models/mobilenet_v2.onnx missing; using a random-weight MobileNetV2 (speed only)")
    return dev, "random-weights dev model"


def find_bundle(dist):
    models = dist / "models"
    if (models / "mobilenet_v2.wvb").exists():
        return models / "mobilenet_v2.wvb"
    found = sorted(models.glob("*.wvb")) if models.exists() else []
    return found[0] if found else None


def preprocessed_input(image_path, bundle_path):
    """(1, 224, 224, 3) NHWC float32 from wasmvision's own preprocessing (what the page feeds the network)."""
    from PIL import Image
    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    spec = None
    if bundle_path is not None:
        from wasmvision import bundle as wvb
        spec = wvb.load(bundle_path).preprocess
    try:
        from wasmvision.preprocess import preprocess
        x = preprocess(rgb, spec, (224, 224))
        how = "wasmvision.preprocess"
    except ImportError:
        img = Image.fromarray(rgb)
        w, h = img.size
        s = 256 / min(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
        w, h = img.size
        left, top = (w - 224) // 2, (h - 224) // 2
        x = np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32) / 255
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        how = "PIL fallback"
    return np.ascontiguousarray(x, np.float32)[None], how
