"""Native batch throughput: photos per second for `python -m wasmvision classify FOLDER --json` over N photos
(build/photos repeated), with OpenBLAS on one thread and on its default thread count, runs alternated so both
see the same machine load; plus the Python API on decoded images (classify_many vs (N, H, W, 3) batches).

    .venv/bin/python benchmarks/native_batch.py [--photos 200] [--repeats 3] [--model dist/models/mobilenet_v2.wvb]

Prints a JSON summary (medians over the repeats). Timings only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_album(photos: Path, n: int, dest: Path) -> list[Path]:
    """``n`` links to the readable photos of ``photos``, cycling through them."""
    from wasmvision.image_io import read_image

    usable = []
    for p in sorted(photos.iterdir()):
        try:
            read_image(p)
            usable.append(p)
        except Exception:  # noqa: BLE001 - the benchmark measures photos that classify, not the error path
            pass
    out = []
    for i in range(n):
        src = usable[i % len(usable)]
        link = dest / f"{i:04d}_{src.name}"
        os.link(src, link)
        out.append(link)
    return out


def cli_run(folder: Path, model: Path, threads: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if threads:
        env["OPENBLAS_NUM_THREADS"] = threads
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "wasmvision", "classify", str(folder), "--json", "--model", str(model)],
                       capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"classify failed ({r.returncode}): {r.stderr[-500:]}")
    return seconds


def api_run(model: Path, files: list[Path], threads: str | None) -> dict:
    """In a child process (the thread count is fixed when OpenBLAS loads): decoded images, then the API."""
    code = f"""
import json, time, numpy as np, wasmvision
from wasmvision.image_io import read_image
clf = wasmvision.load({str(model)!r})
images = [read_image(p) for p in {[str(f) for f in files]!r}]
clf.classify(images[0])
t0 = time.perf_counter(); out = list(clf.classify_many(images)); many = time.perf_counter() - t0
assert all(r.ok for r in out)
# one size for an (N, H, W, 3) batch: each photo's top-left 256x256 of its RGB (content does not change the cost)
rgb = [np.asarray(wasmvision.preprocess.to_rgb_uint8(img)) for img in images]
same = np.stack([np.pad(x[:256, :256], ((0, max(0, 256 - x.shape[0])), (0, max(0, 256 - x.shape[1])), (0, 0))) for x in rgb])
t0 = time.perf_counter(); single = [clf.classify(x) for x in same]; one_by_one = time.perf_counter() - t0
t0 = time.perf_counter(); batch = clf.classify(same); batched = time.perf_counter() - t0
print(json.dumps({{"classify_many_s": many, "arrays_one_by_one_s": one_by_one, "arrays_batched_s": batched}}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if threads:
        env["OPENBLAS_NUM_THREADS"] = threads
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-1000:])
    return json.loads(r.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--api-photos", type=int, default=64, help="photos for the Python API comparison")
    ap.add_argument("--model", type=Path, default=ROOT / "dist" / "models" / "mobilenet_v2.wvb")
    ap.add_argument("--source", type=Path, default=ROOT / "build" / "photos")
    args = ap.parse_args()
    configs = {"openblas_1_thread": "1", "openblas_default": None}
    with tempfile.TemporaryDirectory() as tmp:
        files = make_album(args.source, args.photos, Path(tmp))
        cli = {name: [] for name in configs}
        api = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name, threads in configs.items():  # alternated: both see the same load
                cli[name].append(cli_run(Path(tmp), args.model, threads))
                api[name].append(api_run(args.model, files[:args.api_photos], threads))
    n = args.photos
    summary = {"photos": n, "api_photos": args.api_photos, "repeats": args.repeats, "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
    for name in configs:
        summary[name] = {
            "cli_photos_per_s": round(n / statistics.median(cli[name]), 1),
            "cli_runs_s": [round(s, 2) for s in cli[name]],
            **{k.replace("_s", "_photos_per_s"): round(args.api_photos / statistics.median(r[k] for r in api[name]), 1)
               for k in api[name][0]},
        }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
