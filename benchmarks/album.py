"""Album mode measurements: photos per second with 1 vs 2 workers, and the tab's memory after N photos.

    python benchmarks/album.py [--dist dist] [--photos 1000] [--rate-photos 120] [--rounds 2] [--out FILE]
                               [--workers 1 2] [--compare OTHER_DIST]

Photos: JPEGs of 1024 x 768 made from build/photos (crops, flips and colour shifts of the real ones, so every file
differs), written once to bench-results/work/album/. Each measurement opens album.html?workers=N in a fresh
browser, waits for the classifier, gives it the files through the page's file input, and waits until the grid
shows all of them. Runs for 1 and 2 workers alternate (1, 2, 1, 2, ...) so both see the same machine load; with
--compare, each of those runs is made on the other build first, then on this one.

Each rate run also reports where the CPU went: milliseconds per photo for each (process type/thread name) of the
browser, from /proc (the page is the renderer's CrRendererMain, the workers its DedicatedWorker threads, image
decoding and encoding its ThreadPool threads), and the workers' own per-photo timings (decode, preprocess,
inference, total) as the page received them.

Memory, after the big run (the default number of workers): the renderer process's RSS and PSS (the page and its
workers live in it: the page's JS heap, each worker's JS heap and Wasm memory, decoded images), from /proc; the
page's JS heap from CDP Performance.getMetrics; and the thumbnails' bytes as the page counts them. The same
figures are taken before the photos are added, so the growth per photo is the difference, and again after the
album's Clear button, which shows how much of the growth the album's grid held.

Nothing here asserts anything: the machine is shared and noisy. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from buildtools.chromium import launch  # noqa: E402 -- after the path tweak
from buildtools.server import Background  # noqa: E402


def make_photos(src: Path, out: Path, n: int) -> list[Path]:
    from PIL import Image, ImageEnhance, ImageOps

    out.mkdir(parents=True, exist_ok=True)
    have = sorted(out.glob("photo-*.jpg"))
    if len(have) >= n:
        return have[:n]
    bases = []
    for p in sorted(src.iterdir()):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif"):
            with Image.open(p) as im:
                bases.append(im.convert("RGB"))
    paths = []
    for i in range(n):
        im = bases[i % len(bases)]
        k = i // len(bases)
        w, h = im.size
        # A different crop, mirror and colour per copy: no two files are the same photo.
        f = 0.7 + 0.3 * ((k * 37) % 11) / 10
        cw, ch = max(8, int(w * f)), max(8, int(h * f))
        x0, y0 = (k * 13) % max(1, w - cw + 1), (k * 7) % max(1, h - ch + 1)
        v = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((1024, 768), Image.BILINEAR)
        if k % 2:
            v = ImageOps.mirror(v)
        v = ImageEnhance.Color(v).enhance(0.6 + 0.1 * (k % 8))
        path = out / f"photo-{i:04d}.jpg"
        v.save(path, quality=88)
        paths.append(path)
    return paths


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, stack = set(), [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.add(c)
            stack.append(c)
    return out


def renderer_memory() -> list:
    """RSS and PSS (MiB) of each renderer process of the browsers this script started (others' Chromiums on a
    shared machine are not counted), largest first."""
    import os

    procs = []
    for pid in _descendants(os.getpid()):
        d = Path("/proc") / str(pid)
        try:
            # Chromium rewrites its children's titles: the command line may be one space-separated string.
            cmd = (d / "cmdline").read_bytes()
            if b"chrom" not in cmd or b"--type=renderer" not in cmd:
                continue
            rss = pss = 0
            for line in (d / "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
            procs.append({"pid": int(d.name), "rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)})
        except (OSError, ValueError):
            continue
    return sorted(procs, key=lambda p: -p["rss_mib"])


def _threads_cpu() -> dict:
    """CPU seconds used so far by every thread of the Chromiums this script started, summed per (process type,
    thread name): e.g. ("renderer", "DedicatedWorker"), ("renderer", "CrRendererMain"), ("gpu-process", ...)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out: dict = {}
    for pid in _descendants(os.getpid()):
        d = Path("/proc") / str(pid)
        try:
            cmd = (d / "cmdline").read_bytes()
            if b"chrom" not in cmd:
                continue
            kind = "browser"
            for arg in cmd.replace(b"\0", b" ").split():
                if arg.startswith(b"--type="):
                    kind = arg[7:].decode()
            for t in (d / "task").iterdir():
                stat = (t / "stat").read_text()
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                f = stat.rsplit(")", 1)[1].split()
                key = f"{kind}/{name}"
                out[key] = out.get(key, 0.0) + (int(f[11]) + int(f[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_budget(before: dict, after: dict, photos: int) -> dict:
    """CPU ms per photo per (process type/thread name) between two _threads_cpu() readings, largest first."""
    per = {k: round(1000 * (after.get(k, 0.0) - before.get(k, 0.0)) / photos, 2) for k in after}
    per = {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    return {"total_ms": round(sum(per.values()), 1), **per}


def page_metrics(page) -> dict:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("HeapProfiler.collectGarbage")
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    cdp.detach()
    return {"js_heap_used_mib": round(m["JSHeapUsedSize"] / 2**20, 1),
            "js_heap_total_mib": round(m["JSHeapTotalSize"] / 2**20, 1),
            "nodes": int(m.get("Nodes", 0))}


def run_album(browser_factory, base: str, files: list[Path], workers: int, memory: bool = False,
              warm: list[Path] = ()) -> dict:
    with browser_factory() as browser:
        page = browser.new_page()
        page.set_default_timeout(3_600_000)
        page.goto(f"{base}album.html?workers={workers}")
        page.wait_for_function("() => window.wasmvisionAlbum")
        t0 = time.perf_counter()
        info = page.evaluate("() => window.wasmvisionAlbum.ready")
        ready_s = time.perf_counter() - t0
        assert info["workers"] == workers, info
        if warm:
            # Steady state: the first photos pay one-time costs (V8 compiling the hot Wasm functions again at its top
            # tier, the offline copy's install); these go through first and are cleared.
            page.set_input_files("[data-testid=album-files]", [str(p) for p in warm])
            page.wait_for_function(
                f"() => document.querySelectorAll('[data-testid=album-item]').length >= {len(warm)}", polling=500)
            page.click("[data-testid=album-clear]")
            page.wait_for_function("() => !document.querySelector('[data-testid=album-item]')")
            page.wait_for_function("() => ['ready', 'unavailable', 'failed'].includes("
                                   "document.documentElement.dataset.offline)", polling=500)
        before = {"renderers": renderer_memory(), **page_metrics(page)} if memory else None
        worker0 = page.evaluate("() => window.wasmvisionAlbum.state().workerMs ?? {}")
        cpu0 = _threads_cpu()
        t0 = time.perf_counter()
        page.set_input_files("[data-testid=album-files]", [str(p) for p in files])
        page.wait_for_function(
            f"() => document.querySelectorAll('[data-testid=album-item]').length >= {len(files)}", polling=100)
        elapsed = time.perf_counter() - t0
        cpu1 = _threads_cpu()
        state = page.evaluate("() => window.wasmvisionAlbum.state()")
        failed = page.eval_on_selector_all("[data-testid=album-item][data-status=error]", "e => e.length")
        out = {"workers": workers, "photos": len(files), "warm_photos": len(warm), "failed": failed,
               "ready_s": round(ready_s, 1),
               "seconds": round(elapsed, 1), "photos_per_s": round(len(files) / elapsed, 3),
               "progress_text": page.inner_text("[data-testid=album-progress]").strip(),
               "cpu_ms_per_photo": cpu_budget(cpu0, cpu1, len(files)),
               "worker_ms_per_photo": {k: round((v - worker0.get(k, 0)) / len(files), 2)
                                       for k, v in state.get("workerMs", {}).items()}}
        if memory:
            time.sleep(2)
            out["memory_before"] = before
            out["memory_after"] = {"renderers": renderer_memory(), **page_metrics(page),
                                   "thumbnail_mib": round(state["thumbnailBytes"] / 2**20, 2)}
            # What the album itself holds: Clear drops the grid, thumbnails and embeddings (the workers stay).
            page.click("[data-testid=album-clear]")
            time.sleep(3)
            out["memory_after_clear"] = {"renderers": renderer_memory(), **page_metrics(page)}
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--photos", type=int, default=1000, help="photos in the memory run")
    ap.add_argument("--rate-photos", type=int, default=120, help="photos per 1-vs-2-worker run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of (1 worker, 2 workers)")
    ap.add_argument("--memory-workers", type=int, nargs="+", default=[1], help="one memory run per value")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts of the rate runs")
    ap.add_argument("--warm-photos", type=int, default=0,
                    help="photos classified and cleared before each rate run is timed (steady state)")
    ap.add_argument("--compare", type=Path, help="another dist/ to alternate with (e.g. main's build)")
    ap.add_argument("--skip-rate", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    from contextlib import ExitStack, contextmanager

    from playwright.sync_api import sync_playwright

    files = make_photos(ROOT / "build" / "photos", ROOT / "bench-results" / "work" / "album",
                        max(args.photos, args.rate_photos + args.warm_photos))
    result: dict = {"photo_size": "1024x768 JPEG", "cpus": len(__import__("os").sched_getaffinity(0))}
    with ExitStack() as stack:
        p = stack.enter_context(sync_playwright())
        base = stack.enter_context(Background(args.dist)).url
        # With --compare: every rate run is made on both sites in turn (the other one first), same load for both.
        sites = [("this", base)]
        if args.compare:
            sites.insert(0, ("compare", stack.enter_context(Background(args.compare)).url))

        @contextmanager
        def fresh_browser():
            b = launch(p)
            try:
                yield b
            finally:
                b.close()

        if not args.skip_rate:
            runs = []
            for r in range(args.rounds):
                for w in args.workers:
                    for label, url in sites:
                        run = {"dist": label, **run_album(fresh_browser, url, files[:args.rate_photos], w,
                                                          warm=files[len(files) - args.warm_photos:][:args.warm_photos])}
                        print(json.dumps(run), file=sys.stderr, flush=True)
                        runs.append(run)
            result["rate_runs"] = runs
            result["photos_per_s_median"] = {
                f"{label} {w}": statistics.median(r["photos_per_s"] for r in runs
                                                  if r["workers"] == w and r["dist"] == label)
                for label, _ in sites for w in args.workers}
        if not args.skip_memory:
            result["memory_runs"] = []
            for w in args.memory_workers:
                run = run_album(fresh_browser, base, files[:args.photos], w, memory=True)
                print(json.dumps(run), file=sys.stderr, flush=True)
                result["memory_runs"].append(run)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
