"""Where the build reads and writes, relative to the repository root."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
DOWNLOADS = CACHE / "downloads"
BUILD = ROOT / "build"
DIST = ROOT / "dist"
VENV = ROOT / ".venv"
VENV_PY312 = ROOT / ".venv-py312"
