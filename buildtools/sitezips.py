"""numpy's wheel and Pyodide's stdlib as the site ships them: unused parts dropped, bytecode where it is loaded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from .paths import BUILD, VENV_PY312
from .toolchain import ensure_npm, ensure_pyodide_build, venv_python
from .util import BuildError, log, run, sha256_file, stage, up_to_date

PROGRAMS = Path(__file__).resolve().parent / "programs"
COMPILE_ZIP = PROGRAMS / "compile_zip.py"  # run by Python 3.12: .py members -> bytecode, docstrings blanked
TRACE_STDLIB = PROGRAMS / "trace_stdlib.mjs"  # run by Node: the stdlib members a first result imports

# Parts of numpy's wheel nothing imports at run time in a browser: C headers and static libraries for building
# extensions, type stubs, f2py (a Fortran build tool numpy imports only on demand), PyInstaller hooks, examples of
# extending numpy.random. Not the *_tests extension modules: `import numpy` loads _multiarray_tests.
NUMPY_UNUSED = re.compile(r"\.(pyi|h|pxd|c|a)$|^numpy/(f2py|_pyinstaller|doc|random/_examples|_core/lib)/")

# The codecs the runtime can meet: Python's start (UTF-8, Latin-1, ASCII), zip member names (cp437), JSON and
# text I/O (UTF-8/16/32), IDNA, and the escape and binary codecs. The ~100 others (cp1252, Shift-JIS, ...) are
# looked up only when asked for by name; a page that only classifies never does.
STDLIB_CODECS = {"__init__", "aliases", "ascii", "latin_1", "utf_8", "utf_8_sig", "utf_16", "utf_16_le", "utf_16_be",
                 "utf_32", "utf_32_le", "utf_32_be", "cp437", "idna", "punycode", "charmap", "raw_unicode_escape",
                 "unicode_escape", "base64_codec", "hex_codec", "zlib_codec", "undefined"}


def stdlib_for_site(stdlib: Path, numpy: Path, wheel: Path, model: Path) -> Path:
    """Pyodide's python_stdlib.zip as the site ships it: without the encodings no code path uses (STDLIB_CODECS),
    and the modules a first result imports as bytecode. Pyodide ships sources, which Python compiles on every cold
    start (Node: interpreter start 1.3 s with sources, 0.5 s with bytecode); the modules nothing on that path
    imports stay sources (as bytecode they would add 1.3 MB to every first visit)."""
    dest = BUILD / "stdlib-pyodide" / stdlib.name
    stamp = BUILD / "stdlib-pyodide.stamp"
    key = "".join(sha256_file(p) for p in (stdlib, numpy, wheel, model)) + json.dumps(sorted(STDLIB_CODECS)) \
        + COMPILE_ZIP.read_text() + TRACE_STDLIB.read_text()
    if up_to_date(stamp, key, dest):
        return dest
    py312 = venv_python(VENV_PY312) if ensure_pyodide_build() else None
    with stage("stdlib for the site (unused codecs dropped, the first result's modules as bytecode)"):
        dest.parent.mkdir(parents=True, exist_ok=True)
        trimmed = dest.with_name("trimmed.zip")
        with zipfile.ZipFile(stdlib) as src, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                parts = info.filename.split("/")
                if parts[0] == "encodings" and len(parts) == 2 and parts[1] and \
                        parts[1].rsplit(".", 1)[0] not in STDLIB_CODECS:
                    continue
                dst.writestr(info, src.read(info))
        if py312 is None:
            log("note: no Python 3.12 to compile the stdlib with; it ships as sources (a slower first start)")
            trimmed.replace(dest)
        else:
            ensure_npm()  # brings node
            traced = subprocess.run(["node", str(TRACE_STDLIB), f"{stdlib.parent}/", str(trimmed), str(model), str(numpy),
                                     str(wheel)], capture_output=True, text=True)
            if traced.returncode != 0:
                why = traced.stderr[traced.stderr.find("Traceback"):] if "Traceback" in traced.stderr else traced.stderr
                raise BuildError(f"tracing the stdlib a first result imports failed:\n{why[-2000:]}")
            members = dest.with_name("first-result-modules.json")
            members.write_text(traced.stdout)
            run([str(py312), str(COMPILE_ZIP), str(trimmed), str(dest), str(members)])
            log(f"  {len(json.loads(traced.stdout))} stdlib modules as bytecode")
            trimmed.unlink()
    stamp.write_text(key)
    return dest


def numpy_for_site(wheel: Path) -> Path:
    """numpy's official Pyodide wheel as the page loads it: bytecode instead of sources (`import numpy` compiled
    ~170 modules from source on every visit), without NUMPY_UNUSED."""
    out = BUILD / "numpy-pyodide"
    stamp = BUILD / "numpy-pyodide.stamp"
    key = sha256_file(wheel) + COMPILE_ZIP.read_text() + NUMPY_UNUSED.pattern
    if up_to_date(stamp, key, out / wheel.name):
        return out / wheel.name
    py312 = venv_python(VENV_PY312) if ensure_pyodide_build() else None
    if py312 is None:
        return wheel  # ensure_pyodide_build's caller already said why
    with stage("numpy for the site (bytecode, unused parts removed)"):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        kept = out / "kept.zip"
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(kept, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                if not NUMPY_UNUSED.search(info.filename):
                    dst.writestr(info, src.read(info))
        run([str(py312), str(COMPILE_ZIP), str(kept), str(out / wheel.name)])
        kept.unlink()
    stamp.write_text(key)
    return out / wheel.name


