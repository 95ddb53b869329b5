"""What the Firefox and WebKit tests need from Debian, in one list, and the step `build.py test` runs to install it
(with build.py's own apt_install, so root/non-root handling stays in one place)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

# Debian package -> a file it installs (present means installed).
PACKAGES = {
    "firefox-esr": "/usr/bin/firefox-esr",
    "webkit2gtk-driver": "/usr/bin/WebKitWebDriver",
    "xvfb": "/usr/bin/Xvfb",
    "xauth": "/usr/bin/xauth",
}


def missing() -> list[str]:
    return [name for name, path in PACKAGES.items() if not Path(path).exists()]


def ensure_engines(apt_install: Callable[[list[str], str], None], log: Callable[[str], None] = print) -> None:
    """Install the missing packages; where that is not possible (not root, no apt-get) say what to run and go on:
    the engine tests then skip, naming the missing browser."""
    todo = missing()
    if not todo:
        return
    try:
        apt_install(todo, "the Firefox and WebKit tests (tests/engines) need Debian's browsers and Xvfb")
    except Exception as exc:  # noqa: BLE001 -- build.py's BuildError; the rest of the suite still runs
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            log(f"warning: {exc}")
            return
        raise
