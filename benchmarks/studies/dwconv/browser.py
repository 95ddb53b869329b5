"""dw_study.py inside Pyodide in headless Chromium (the product's engine), relaxed SIMD on:

    python benchmarks/studies/dwconv/browser.py LIBDIR [args for dw_study.py]

LIBDIR holds build_variants.sh's libdw_plain.so / libdw_relaxed.so. Prints dw_study.py's table."""
from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]
from bench.common import CHROMIUM_FLAGS  # noqa: E402
from buildtools.server import Background  # noqa: E402


def main(argv):
    libs, rest = Path(argv[0]).resolve(), argv[1:]
    work = ROOT / "bench-results" / "work" / "dw_browser"
    work.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the parameter structs' module (and its package), no library
        pkg = ROOT / "py_pkg"
        for f in sorted((pkg / "wasmvision").rglob("*.py")):
            z.write(f, f.relative_to(pkg).as_posix())
    (work / "pkg.zip").write_bytes(buf.getvalue())
    mounts = {"/pages/": str(BENCH / "pages"), "/pyodide/": str(ROOT / "dist" / "pyodide"), "/work/": str(work),
              "/study/": str(HERE), "/libs/": str(libs)}
    from playwright.sync_api import sync_playwright
    with Background(mounts=mounts, csp=False) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                    args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(1_800_000)
            page.goto(f"{srv.origin}/pages/pyodide.html?pyodide=/pyodide/")
            page.wait_for_function("() => window.bench")
            page.evaluate("() => window.bench.ready")
            for url, path in [("/work/pkg.zip", "/bench/pkg.zip"), ("/study/dw_study.py", "/bench/dw_study.py"),
                              ("/libs/libdw_plain.so", "/libs/libdw_plain.so"),
                              ("/libs/libdw_relaxed.so", "/libs/libdw_relaxed.so")]:
                page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", [url, path])
            code = f"""
import sys, io, zipfile, contextlib, runpy
zipfile.ZipFile("/bench/pkg.zip").extractall("/pkg")
sys.path[:0] = ["/pkg"]
sys.argv = ["dw_study.py", *{rest!r}]
_out = io.StringIO()
with contextlib.redirect_stdout(_out):
    runpy.run_path("/bench/dw_study.py", run_name="__main__")
_out.getvalue()
"""
            print(page.evaluate("(c) => window.bench.runPython(c)", code))
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
