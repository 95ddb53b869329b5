"""Firefox ESR and WebKitGTK (the engine of Safari) for the end-to-end tests in tests/engines: Debian's packages,
one list, installed by `build.py test` (Chromium has its own module: the benchmarks drive it too)."""

from __future__ import annotations

from pathlib import Path

from .toolchain import apt_install, is_root
from .util import BuildError, log

# Debian package -> a file it installs (present means installed).
PACKAGES = {
    "firefox-esr": "/usr/bin/firefox-esr",
    "webkit2gtk-driver": "/usr/bin/WebKitWebDriver",
    "xvfb": "/usr/bin/Xvfb",
    "xauth": "/usr/bin/xauth",
}


def missing() -> list[str]:
    return [name for name, path in PACKAGES.items() if not Path(path).exists()]


def ensure_engines() -> None:
    """Install what is missing; not root: say what to run and go on (those tests then skip, naming the browser)."""
    todo = missing()
    if not todo:
        return
    try:
        apt_install(todo, "the Firefox and WebKit tests (tests/engines) need Debian's browsers and Xvfb")
    except BuildError as exc:
        if is_root():
            raise
        log(f"warning: {exc}")
