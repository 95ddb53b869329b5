"""Repeat-visit first result of the wasmvision page, A/B: two copies of the site in one persistent Chromium profile.

    python benchmarks/studies/snapshot/repeat_visit.py --dist dist --before-worker OLD_worker.js [--visits 5]

Site B is --dist as built; site A is the same files with worker.js replaced by --before-worker (e.g.
`git show HEAD:web/worker.js > old.js`). Both are served under one /wv/ by its own server (separate origins: separate IndexedDB). Each repeat: a fresh profile directory (empty disk cache), a first visit of each site
(waits until the page's memory snapshot is in IndexedDB, as a visitor's page stays open after its result), then
alternating repeat visits A, B, A, B ... in the same profile. Prints medians; nothing asserts a timing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT), str(HERE.parents[1])]  # buildtools, benchmarks' bench

from bench.browser_page import SNAPSHOT_STORED, WV_FIRST  # noqa: E402
from bench.common import CHROMIUM_FLAGS  # noqa: E402
from bench.inputs import find_image  # noqa: E402
from buildtools.server import Background  # noqa: E402




def variant_site(dist: Path, worker: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for src in dist.iterdir():
        out = dest / src.name
        if out.exists() or out.is_symlink():
            out.unlink()
        if src.name == "worker.js":
            out.write_bytes(worker.read_bytes())
        else:
            out.symlink_to(src.resolve())
    return dest


def visit(ctx, srv, photo_url, wait_snapshot=0.0):
    page = ctx.new_page()
    page.set_default_timeout(240_000)
    warnings = []
    page.on("console", lambda m: warnings.append(m.text[:300]) if m.type in ("warning", "error") else None)
    page.goto(f"{srv.origin}/wv/index.html")
    page.wait_for_function("() => window.wasmvision")
    info = page.evaluate(WV_FIRST, photo_url)
    stored = None
    if wait_snapshot:
        deadline = time.time() + wait_snapshot
        while time.time() < deadline:
            stored = page.evaluate(SNAPSHOT_STORED)
            if stored:
                break
            time.sleep(0.25)
    page.close()
    return {"first_result_ms": info["first_result_ms"], "ready_ms": info["ready_ms"], "boot": info.get("boot_ms"),
            "top1": info["top"][0], "snapshot_stored": stored,
            "warnings": warnings}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"))
    ap.add_argument("--before-worker", help="worker.js of the 'before' site (the rest as --dist)")
    ap.add_argument("--before-dist", help="or a whole 'before' site")
    ap.add_argument("--after-dist", help="the 'after' site (default --dist)")
    ap.add_argument("--work", default=str(ROOT / "bench-results" / "work" / "repeat"))
    ap.add_argument("--repeats", type=int, default=2, help="fresh profiles")
    ap.add_argument("--visits", type=int, default=4, help="repeat visits per site per profile")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "repeat_visit.json"))
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    work = Path(a.work).resolve()
    dist = Path(a.dist).resolve()
    if a.before_dist:
        site_a = Path(a.before_dist).resolve()
    elif a.before_worker:
        site_a = variant_site(dist, Path(a.before_worker), work / "site_before")
    else:
        ap.error("give --before-worker or --before-dist")
    if a.after_dist:
        dist = Path(a.after_dist).resolve()
    photo = find_image("chelsea.png", work)
    if photo.parent != work:
        (work / photo.name).write_bytes(photo.read_bytes())
    res = {"before": {"first": [], "repeat": []}, "after": {"first": [], "repeat": []}}
    cache = "public, max-age=3600"
    with Background(mounts={"/wv/": site_a, "/work/": work}, csp=False, cache_control=cache) as sa, \
            Background(mounts={"/wv/": dist, "/work/": work}, csp=False, cache_control=cache) as sb, sync_playwright() as p:
        sites = [("before", sa), ("after", sb)]
        for rep in range(a.repeats):
            with tempfile.TemporaryDirectory(prefix="wv-repeat-profile-") as prof:
                ctx = p.chromium.launch_persistent_context(prof, executable_path=a.chromium, args=CHROMIUM_FLAGS,
                                                           headless=True)
                try:
                    for name, srv in (sites if rep % 2 == 0 else sites[::-1]):
                        r = visit(ctx, srv, f"/work/{photo.name}", wait_snapshot=10.0)
                        res[name]["first"].append(r)
                        print(name, "first", json.dumps(r), flush=True)
                    time.sleep(1.0)
                    for v in range(a.visits):
                        for name, srv in (sites if (v + rep) % 2 == 0 else sites[::-1]):
                            r = visit(ctx, srv, f"/work/{photo.name}")
                            res[name]["repeat"].append(r)
                            print(name, "repeat", json.dumps(r), flush=True)
                finally:
                    ctx.close()
    for name in ("before", "after"):
        for kind in ("first", "repeat"):
            xs = [r["first_result_ms"] for r in res[name][kind]]
            if xs:
                print(f"{name:6s} {kind:6s} first result median {statistics.median(xs):7.0f} ms "
                      f"(min {min(xs):.0f}, max {max(xs):.0f}, n={len(xs)})")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
