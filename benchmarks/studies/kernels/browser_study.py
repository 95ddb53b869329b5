"""Run study.py inside Pyodide in headless Chromium (the engine users have), to confirm the Node figures.

    python benchmarks/studies/kernels/browser_study.py [--only pointwise,depthwise,stem] [--quick] [--out FILE]
"""
import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent  # benchmarks/
sys.path.insert(0, str(BENCH.parent))
from buildtools.server import Background  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]

RUN = """
import sys, io, contextlib, runpy
sys.argv = ARGV
_buf = io.StringIO()
with contextlib.redirect_stdout(_buf):
    runpy.run_path("/bench/study.py", run_name="__main__")
_buf.getvalue()
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="pointwise,depthwise,stem")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pyodide", default=str(BENCH.parent / "dist" / "pyodide"), help="Pyodide folder (the built site's)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(BENCH.parent / "bench-results" / "study" / "chromium.json"))
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    mounts = {"/pages/": str(BENCH / "pages"), "/kernels/": str(HERE), "/pyodide/": a.pyodide}
    argv = ["study.py", "--only", a.only] + (["--quick"] if a.quick else [])
    with Background(mounts=mounts, csp=False) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{srv.origin}/pages/pyodide.html?pyodide=/pyodide/")
            page.wait_for_function("() => window.bench")
            page.evaluate("() => window.bench.ready")
            page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", ["/kernels/study.py", "/bench/study.py"])
            out = page.evaluate("(c) => window.bench.runPython(c)", RUN.replace("ARGV", repr(argv)))
            version = browser.version
        finally:
            browser.close()
    lines = out.splitlines()
    for line in lines:
        if not line.startswith("STUDY-JSON:"):
            print(line)
    doc = json.loads([l for l in lines if l.startswith("STUDY-JSON:")][-1][len("STUDY-JSON:"):])
    doc["env"]["browser"] = "chromium " + version
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
