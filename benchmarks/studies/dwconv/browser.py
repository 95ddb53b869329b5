"""dw_study.py inside Pyodide in headless Chromium (the product's engine), relaxed SIMD on:

    python benchmarks/studies/dwconv/browser.py LIBDIR [args for dw_study.py]

LIBDIR holds build_variants.sh's libdw_<build>_<variant>.so files. Prints dw_study.py's table."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
sys.path[:0] = [str(HERE.parent / "ab")]
from ab_browser import run_python_in_chromium, zipped  # noqa: E402


def main(argv):
    libs, rest = Path(argv[0]).resolve(), argv[1:]
    work = ROOT / "bench-results" / "work" / "dw_browser"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pkg.zip").write_bytes(zipped(ROOT / "py_pkg" / "wasmvision"))  # the parameter structs' package
    files = [("/work/pkg.zip", "/bench/pkg.zip"), ("/study/dw_study.py", "/bench/dw_study.py"),
             *((f"/libs/{f.name}", f"/libs/{f.name}") for f in sorted(libs.glob("libdw_*.so")))]
    code = f"""
import sys, io, zipfile, contextlib, runpy
zipfile.ZipFile("/bench/pkg.zip").extractall("/pkg/wasmvision")
sys.path[:0] = ["/pkg"]
sys.argv = ["dw_study.py", *{rest!r}]
_out = io.StringIO()
with contextlib.redirect_stdout(_out):
    runpy.run_path("/bench/dw_study.py", run_name="__main__")
_out.getvalue()
"""
    print(run_python_in_chromium({"/work/": str(work), "/study/": str(HERE), "/libs/": str(libs)}, files, code))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
