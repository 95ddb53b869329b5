"""The A/B runtime timing of ab.py inside Pyodide in headless Chromium (the product's engine and numpy).

    python benchmarks/studies/ab/ab_browser.py VARIANT_DIR... [-- args for ab.py]

Each VARIANT_DIR is a copy of py_pkg/wasmvision ("current" = py_pkg/wasmvision). Pyodide from dist/pyodide; the
model defaults to dist/models/mobilenet_v2.wvb. Prints ab.py's tables. Nothing asserts a timing.
"""
from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent  # benchmarks/
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]
from bench.common import CHROMIUM_FLAGS  # noqa: E402
from buildtools.server import Background  # noqa: E402


def zipped(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(folder.rglob("*.py")):
            z.write(f, f.relative_to(folder).as_posix())
    return buf.getvalue()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    sep = argv.index("--") if "--" in argv else len(argv)
    variants, rest = argv[:sep], argv[sep + 1:]
    work = ROOT / "bench-results" / "work" / "ab_browser"
    work.mkdir(parents=True, exist_ok=True)
    names = []
    for i, v in enumerate(variants):
        folder = ROOT / "py_pkg" / "wasmvision" if v == "current" else Path(v).resolve()
        (work / f"wv_{i}.zip").write_bytes(zipped(folder))
        names.append([f"wv_{i}", v])
    model = ROOT / "dist" / "models" / "mobilenet_v2.wvb"
    mounts = {"/work/": str(work), "/ab/": str(HERE), "/model/": str(model.parent)}
    extra = []
    if "--input" in rest:
        k = rest.index("--input")
        src = Path(rest[k + 1])
        (work / "input.npy").write_bytes(src.read_bytes())
        rest[k + 1] = "/bench/input.npy"
        extra.append(("/work/input.npy", "/bench/input.npy"))
    files = [(f"/work/{n}.zip", f"/bench/{n}.zip") for n, _ in names] + extra + [
        ("/ab/ab.py", "/bench/ab.py"), (f"/model/{model.name}", "/bench/model.wvb")]
    code = f"""
import sys, io, zipfile, contextlib
for name, _ in {names!r}:
    zipfile.ZipFile(f"/bench/{{name}}.zip").extractall(f"/ab/{{name}}")
sys.path[:0] = ["/ab", "/bench"]
import ab
_out = io.StringIO()
with contextlib.redirect_stdout(_out):
    ab.main({names!r}, {["--model", "/bench/model.wvb", *rest]!r})
_out.getvalue()
"""
    print(run_python_in_chromium(mounts, files, code))
    return 0


def run_python_in_chromium(mounts: dict[str, str], files: list[tuple[str, str]], code: str):
    """Serve mounts, open the bench's Pyodide page in headless Chromium, copy each (url, path) into its file
    system, run code; returns the value of its last expression."""
    from playwright.sync_api import sync_playwright
    mounts = {"/pages/": str(BENCH / "pages"), "/pyodide/": str(ROOT / "dist" / "pyodide"), **mounts}
    with Background(mounts=mounts, csp=False) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                    args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(1_800_000)
            page.goto(f"{srv.origin}/pages/pyodide.html?pyodide=/pyodide/")
            page.wait_for_function("() => window.bench")
            page.evaluate("() => window.bench.ready")
            for url, path in files:
                page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", [url, path])
            return page.evaluate("(c) => window.bench.runPython(c)", code)
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(main())
