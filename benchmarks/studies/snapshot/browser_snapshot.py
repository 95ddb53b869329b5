"""Does Pyodide 0.27.7's memory snapshot work in Chromium, how big is it and what does it save on a repeat visit?

    python benchmarks/studies/snapshot/browser_snapshot.py [--pyodide DIR] [--repeats 3]

One browser profile (disk HTTP cache warm after the first visit): a snapshot is made once and kept in IndexedDB,
then fresh pages alternate between a normal boot and a boot from the snapshot, each followed by loadPackage("numpy").
Times are performance.now() from navigation start.
"""
import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent  # benchmarks/
sys.path.insert(0, str(BENCH.parent))
from buildtools.server import Background  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyodide", default=str(BENCH.parent / "dist" / "pyodide"), help="Pyodide folder (the built site's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(BENCH.parent / "bench-results" / "snapshot" / "chromium.json"))
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    mounts = {"/pages/": str(BENCH / "pages"), "/pyodide/": a.pyodide}
    res = {"plain": [], "restore": []}
    with Background(mounts=mounts, csp=False, cache_control="public, max-age=3600") as srv, sync_playwright() as p, \
            tempfile.TemporaryDirectory(prefix="wv-snap-") as prof:
        ctx = p.chromium.launch_persistent_context(prof, executable_path=a.chromium, args=FLAGS, headless=True)
        try:
            def visit(mode):
                page = ctx.new_page()
                try:
                    page.goto(f"{srv.origin}/pages/snapshot.html?mode={mode}&pyodide=/pyodide/")
                    page.wait_for_function("() => window.probe")
                    return page.evaluate("() => window.probe")
                except Exception as exc:
                    return {"mode": mode, "error": str(exc)[:500]}
                finally:
                    page.close()
            res["first_visit_plain"] = visit("plain")  # fills the HTTP cache
            res["make"] = visit("make")
            for _ in range(a.repeats):
                res["plain"].append(visit("plain"))
                res["restore"].append(visit("restore"))
            res["browser"] = ctx.browser.version if ctx.browser else None
        finally:
            ctx.close()
    summary = {}
    for mode in ("plain", "restore"):
        ok = [r for r in res[mode] if "error" not in r]
        if ok:
            summary[mode] = {k: round(statistics.median(r[k] for r in ok), 1) for k in ("t_boot", "t_numpy")}
    res["summary_ms_from_navigation"] = summary
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({"make": res["make"], "summary": summary,
                      "errors": [r for m in ("plain", "restore") for r in res[m] if "error" in r]}, indent=1))


if __name__ == "__main__":
    main()
