"""npm packages the tests use as tools (TypeScript for the module's types, axe-core for accessibility), fetched with
`npm pack` at a pinned version, checked against a pinned sha256, and unpacked into build/npm-tools/ (ignored by git).
Never imported by the runtime."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "build" / "npm-tools"

# name -> (version, sha256 of the registry tarball)
PINS = {
    "typescript": ("5.9.3", "10e108c9cf7d5f2879053dff18515fb405abf2ccef63eaaf017d9c571687a1d3"),
    "axe-core": ("4.11.0", "39bed7d72308f6d620789c169d699bfd7e8da80f65b545821a6b2215c3e83107"),
}


class ToolError(RuntimeError):
    pass


def npm_package(name: str) -> Path:
    """The unpacked package directory of the pinned ``name`` (fetched once)."""
    version, sha = PINS[name]
    dest = TOOLS / f"{name}-{version}"
    if (dest / "package.json").exists():
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError("npm is not installed (apt-get install npm)")
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TOOLS, prefix=".tmp-") as tmp:
        out = subprocess.run([npm, "pack", f"{name}@{version}", "--pack-destination", tmp, "--silent",
                              "--ignore-scripts"], capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if out.returncode != 0 or len(tarballs) != 1:
            raise ToolError(f"npm pack {name}@{version} failed: {out.stderr.strip()[-500:]}")
        got = hashlib.sha256(tarballs[0].read_bytes()).hexdigest()
        if got != sha:
            raise ToolError(f"{name}@{version}: sha256 {got} does not match the pin {sha}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tf:
            tf.extractall(unpacked, filter="data")
        # npm tarballs hold one top folder, "package/".
        (unpacked / "package").rename(dest)
    return dest
