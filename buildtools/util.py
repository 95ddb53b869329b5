"""What every build step shares: the error type, progress lines, sha256 checks, commands, up-to-date stamps."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from .paths import ROOT


class BuildError(Exception):
    """A build step failed in a way the user can act on; printed without a traceback."""


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


class stage:
    """`with stage("name"):` prints the stage and its wall time."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.t0 = time.perf_counter()
        log(f"{self.name} ...")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            log(f"{self.name}: done in {time.perf_counter() - self.t0:.2f} s")
        return False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(path: Path, expected: str, *, label: str | None = None) -> None:
    """Stop the build unless ``path`` has the pinned sha256; the message names the file and both hashes."""
    actual = sha256_file(path)
    if actual != expected:
        raise BuildError(f"sha256 mismatch for {label or path.name} ({path}):\n"
                         f"  expected {expected}\n  actual   {actual}")


def verify_bytes(data: bytes, expected: str, label: str) -> None:
    actual = sha256_bytes(data)
    if actual != expected:
        raise BuildError(f"sha256 mismatch for {label}:\n  expected {expected}\n  actual   {actual}")


def run(cmd: list[str], **kw) -> None:
    try:
        subprocess.run(cmd, check=True, **kw)
    except FileNotFoundError:
        raise BuildError(f"command not found: {cmd[0]}") from None
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"command failed with exit code {exc.returncode}: {' '.join(map(str, cmd))}") from None


def tree_digest(paths: list[Path], extra: str = "") -> str:
    """A hash of file names and contents: the key that decides whether a build step is up to date."""
    h = hashlib.sha256(extra.encode())
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc" or ".egg-info" in str(p):
                continue
            h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def up_to_date(stamp: Path, key: str, *outputs: Path) -> bool:
    """Existence-only check, for stamps in the shared cache (their contents come from sha256-pinned archives)."""
    return stamp.exists() and stamp.read_text() == key and all(o.exists() for o in outputs)


def _stamp_text(key: str, outputs) -> str | None:
    lines = [key]
    for o in outputs:
        if not o.is_file():
            return None
        lines.append(f"{sha256_file(o)}  {o.name}")
    return "\n".join(lines) + "\n"


def outputs_current(stamp: Path, key: str, *outputs: Path) -> bool:
    """True when ``stamp`` records ``key`` and the sha256 of every output as it is now: an output replaced or
    edited since it was built (e.g. by `wasmvision convert` without -o) is rebuilt, not shipped."""
    if not stamp.exists():
        return False
    text = _stamp_text(key, outputs)
    return text is not None and stamp.read_text() == text


def write_outputs_stamp(stamp: Path, key: str, *outputs: Path) -> None:
    stamp.write_text(_stamp_text(key, outputs) or key)


def write_if_changed(dest: Path, data: bytes) -> None:
    """Keep the file (and its mtime, which HTTP caching uses) when the content is unchanged."""
    if dest.exists() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)


def copy_if_changed(src: Path, dest: Path) -> None:
    if dest.exists() and dest.stat().st_size == src.stat().st_size and sha256_file(dest) == sha256_file(src):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)

