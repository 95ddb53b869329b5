"""The wasmvision wheel: PEP 517 from a clean copy of the sources, then compiled for Pyodide's Python."""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

from .paths import BUILD, ROOT
from .sources import PYODIDE_BUILD_REQUIREMENT
from .toolchain import ensure_pyodide_build
from .util import BuildError, log, outputs_current, run, sha256_bytes, sha256_file, stage, tree_digest, \
    write_outputs_stamp

# Reproducible zip timestamps and hash-based .pyc files: the same sources give byte-identical wheels.
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest date a zip can hold

def wheel_member_sha256(wheel: Path, member: str) -> str | None:
    with zipfile.ZipFile(wheel) as z:
        try:
            return sha256_bytes(z.read(member))
        except KeyError:
            return None



def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def build_wheel() -> Path:
    """PEP 517 wheel (py3-none-any) from a clean copy of the sources, so nothing stale leaks in."""
    out = BUILD / "wheel"
    srcs = [ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "py_pkg" / "wasmvision"]
    key = tree_digest([p for p in srcs if p.exists()])
    stamp = BUILD / "wheel.stamp"
    wheels = sorted(out.glob("wasmvision-*.whl"))
    if len(wheels) == 1 and outputs_current(stamp, key, wheels[0]):
        return wheels[0]
    with stage("building the wasmvision wheel (PEP 517)"):
        src = BUILD / "wheel-src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        src.mkdir(parents=True)
        shutil.copy2(ROOT / "pyproject.toml", src)
        if (ROOT / "README.md").exists():
            shutil.copy2(ROOT / "README.md", src)
        shutil.copytree(ROOT / "py_pkg" / "wasmvision", src / "py_pkg" / "wasmvision",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
             str(src), "-w", str(out)], env=env, cwd=src)
        shutil.rmtree(src, ignore_errors=True)
    wheels = sorted(out.glob("wasmvision-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    write_outputs_stamp(stamp, key, wheels[0])
    return wheels[0]


def normalize_zip(path: Path) -> None:
    """Rewrite a zip with fixed timestamps and sorted-as-given entries, so its sha256 depends only on content."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.external_attr = info.external_attr
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info), compresslevel=9)
    tmp.replace(path)


def pyodide_wheel(wheel: Path) -> Path:
    """`pyodide py-compile` the wheel for Pyodide's Python 3.12 (smaller start-up); fall back to py3 wheel."""
    out = BUILD / "wheel-pyodide"
    stamp = BUILD / "wheel-pyodide.stamp"
    key = sha256_file(wheel) + PYODIDE_BUILD_REQUIREMENT
    compiled = sorted(out.glob("wasmvision-*.whl"))
    if len(compiled) == 1 and outputs_current(stamp, key, compiled[0]):
        return compiled[0]
    cli = ensure_pyodide_build()
    if cli is None:
        log("note: no Python 3.12 found (python3.12 on PATH, ~/.pyenv/versions/3.12*, /usr/bin/python3.12); "
            "shipping the py3-none-any wheel uncompiled (works the same, imports a little slower)")
        return wheel
    with stage("pyodide py-compile (Python 3.12 bytecode for Pyodide)"):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        shutil.copy2(wheel, out / wheel.name)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}  # hash-based .pyc: reproducible
        run([str(cli), "py-compile", "--silent", str(out / wheel.name)], env=env)
        compiled = sorted(out.glob("wasmvision-*.whl"))
        if len(compiled) != 1:
            raise BuildError(f"pyodide py-compile left {[c.name for c in compiled]} in {out}")
        normalize_zip(compiled[0])
    write_outputs_stamp(stamp, key, compiled[0])
    return compiled[0]


def lock_entry(wheel: Path) -> dict:
    return {
        "name": "wasmvision", "version": project_version(), "file_name": wheel.name,
        "install_dir": "site", "sha256": sha256_file(wheel), "package_type": "package",
        "imports": ["wasmvision"], "depends": ["numpy"], "unvendored_tests": False,
    }


