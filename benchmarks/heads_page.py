"""Custom heads in the page: training time for N examples through the public module (clf.train), embedding
included (images) and the head alone (the same examples as kept embeddings), and the live camera's frames per
second on the single-photo page with Chromium's fake camera.

    python benchmarks/heads_page.py [--dist dist] [--sizes 50,500] [--camera-seconds 10] [--out FILE]

Examples: 10 labels of random 40-80 % crops (240 x 180 PNGs) of the build's photos, written once to
bench-results/work/heads/. Nothing here asserts anything: the machine is shared and noisy. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import browser_util as bu  # noqa: E402
from test_page_camera import SIZE, write_y4m  # noqa: E402

PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "brick.png", "camera.png", "coins.png",
          "clock_motion.png", "cell.png", "chessboard_RGB.png")


def make_examples(photos: Path, out: Path, n: int) -> dict[str, list[str]]:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    per = n // len(PHOTOS)
    examples = {}
    for seed, name in enumerate(PHOTOS):
        label = name.split(".")[0]
        im = Image.open(photos / name).convert("RGB")
        rng = np.random.default_rng(seed)
        files = []
        for i in range(per):
            path = out / f"{label}_{i:03d}.png"
            if not path.exists():
                s = rng.uniform(0.4, 0.8)
                w, h = int(im.width * s), int(im.height * s)
                x, y = int(rng.integers(0, im.width - w + 1)), int(rng.integers(0, im.height - h + 1))
                im.crop((x, y, x + w, y + h)).resize((240, 180), Image.BILINEAR).save(path)
            files.append(path.name)
        examples[label] = files
    return examples


TRAIN_JS = """async ({examples, dir}) => {
    const clf = window.example.clf;
    const urls = Object.fromEntries(Object.entries(examples).map(([k, v]) => [k, v.map((f) => dir + f)]));
    let t0 = performance.now();
    const a = await clf.train(urls);
    const withEmbedding = performance.now() - t0;
    const vectors = {};
    for (const [k, v] of Object.entries(urls)) vectors[k] = await clf.embed(v);
    t0 = performance.now();
    const b = await clf.train(vectors);
    const headAlone = performance.now() - t0;
    const out = {with_embedding_ms: withEmbedding, head_alone_ms: headAlone, fit_ms: b.head.train_ms,
                 accuracy: a.head.accuracy, examples: Object.values(urls).flat().length};
    await a.dispose(); await b.dispose();
    return out;
}"""


def measure_training(pw, dist: Path, work: Path, sizes: list[int]) -> list[dict]:
    import shutil

    site = work / "site"
    if site.exists():
        shutil.rmtree(site)
    bu.site_variant(dist, site)
    out = []
    browser = bu.launch(pw)
    try:
        for n in sizes:
            folder = work / f"examples-{n}"
            examples = make_examples(ROOT / "build" / "photos", folder, n)
            link = site / f"examples-{n}"
            if not link.exists():
                link.symlink_to(folder.resolve())
            with bu.serve(site) as base:
                context = browser.new_context()
                try:
                    page, _ = bu.new_page(context, 1_800_000)
                    page.goto(base + "examples/")
                    page.wait_for_function("() => window.example && window.example.clf", timeout=300_000)
                    out.append(page.evaluate(TRAIN_JS, {"examples": examples, "dir": f"../examples-{n}/"}))
                finally:
                    context.close()
    finally:
        browser.close()
    return out


def measure_camera(pw, dist: Path, work: Path, seconds: float) -> dict:
    from PIL import Image

    frame = np.asarray(Image.open(ROOT / "build" / "photos" / "chelsea.png").convert("RGB").resize(SIZE))
    video = work / "camera.y4m"
    write_y4m(video, [frame] * 30, fps=30)
    browser = pw.chromium.launch(executable_path=bu.chromium_path(), args=[
        *bu.CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    try:
        with bu.serve(dist) as base:
            page, _ = bu.new_page(browser.new_context(), 300_000)
            page.goto(base)
            bu.wait_ready(page, 300_000)
            page.click("#camera-start")
            page.wait_for_function("() => Number(document.querySelector('#camera-fps').dataset.fps) > 0")
            time.sleep(seconds)
            fps = float(page.get_attribute("#camera-fps", "data-fps"))
            text = page.text_content("#camera-fps")
            page.click("#camera-stop")
            return {"fps": fps, "shown": text, "camera_fps": 30, "frame": list(SIZE)}
    finally:
        browser.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--sizes", default="50,500")
    ap.add_argument("--camera-seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = ROOT / "bench-results" / "work" / "heads"
    work.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        result = {"training": measure_training(pw, args.dist, work, [int(x) for x in args.sizes.split(",")]),
                  "camera": measure_camera(pw, args.dist, work, args.camera_seconds)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
