"""Tools the build and the tests install when missing: npm, clang + wasm-ld, Python 3.12 with pyodide-build,
the torch extra; and the virtual environments they go into (Chromium: chromium.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .paths import ROOT, VENV, VENV_PY312
from .sources import PYODIDE_BUILD_REQUIREMENT
from .util import BuildError, log, run, stage, tree_digest, up_to_date

STAMP_TORCH = VENV / ".wasmvision-torch"


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apt_install(packages: list[str], why: str) -> None:
    if not is_root() or not shutil.which("apt-get"):
        raise BuildError(f"{why}. Install it with:\n  sudo apt-get update && sudo apt-get install -y "
                         + " ".join(packages))
    log(f"{why}: installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def create_venv(venv: Path, python: str) -> None:
    log(f"creating {venv.name}/ with {python}")
    result = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        if "ensurepip" in (result.stdout + result.stderr):
            # Debian splits venv support out of python3; it is the one system package the build needs.
            ver = subprocess.run([python, "-c", "import sys;print('%d.%d'%sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout.strip()
            apt_install([f"python{ver}-venv"], "Python's venv module needs Debian's venv package")
            result = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"could not create {venv}:\n{result.stderr.strip()}")


def ensure_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        apt_install(["npm"], "npm is needed to fetch the Pyodide runtime from the npm registry")
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError("npm is still missing after apt-get install npm")
    return npm


def ensure_wasm_toolchain() -> tuple[str, str] | None:
    """(clang, wasm-ld), installed from Debian when missing; None when they cannot be installed (not root)."""
    def found():
        clang, ld = shutil.which("clang"), shutil.which("wasm-ld")
        return (clang, ld) if clang and ld else None
    if found() is None:
        try:
            apt_install(["clang", "lld"], "the Wasm SIMD kernels are compiled with Debian's clang and lld")
        except BuildError as exc:
            if is_root():
                raise
            log(f"warning: {exc}\n  building without the SIMD kernels: the runtime will use numpy everywhere")
            return None
    return found()


def find_python312() -> str | None:
    candidates = [shutil.which("python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted((pyenv_root / "versions").glob("3.12*/bin/python3.12"), reverse=True)]
    candidates += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for c in candidates:
        if c and Path(c).exists():
            probe = subprocess.run([c, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 12))"],
                                   capture_output=True, text=True)
            if probe.stdout.strip() == "True":
                return c
    return None


def ensure_pyodide_build() -> Path | None:
    """A Python 3.12 venv with pyodide-build, for `pyodide py-compile`; None when no 3.12 is around."""
    cli = VENV_PY312 / "bin" / "pyodide"
    stamp = VENV_PY312 / ".wasmvision-bootstrap"
    if up_to_date(stamp, PYODIDE_BUILD_REQUIREMENT, cli):
        return cli
    py312 = find_python312()
    if py312 is None:
        return None
    with stage(f"creating {VENV_PY312.name}/ with {PYODIDE_BUILD_REQUIREMENT} (once)"):
        if not venv_python(VENV_PY312).exists():
            create_venv(VENV_PY312, py312)
        run([str(venv_python(VENV_PY312)), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             PYODIDE_BUILD_REQUIREMENT])
    stamp.write_text(PYODIDE_BUILD_REQUIREMENT)
    return cli


def ensure_torch_extra() -> None:
    """The exporter-parity tests use torch.onnx; they skip without it, so installing is best effort.
    Set WASMVISION_NO_TORCH=1 to skip it (e.g. where torch would be a large download)."""
    if os.environ.get("WASMVISION_NO_TORCH"):
        log("WASMVISION_NO_TORCH is set: the torch exporter tests will skip")
        return
    key = tree_digest([ROOT / "pyproject.toml"], extra=f"extras=torch;{sys.version}")
    if up_to_date(STAMP_TORCH, key):
        return
    with stage("installing wasmvision[torch] for the exporter tests (once per pyproject.toml)"):
        code = subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                                "-e", ".[test,torch]"], cwd=ROOT)
    if code == 0:
        STAMP_TORCH.write_text(key)
    else:
        log("warning: torch could not be installed; the torch exporter tests will skip")
