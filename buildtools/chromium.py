"""The one Chromium the tests and benchmarks drive (Debian's, or $WASMVISION_CHROMIUM): its flags, its install, and
the probe both use to see the page's stored memory snapshot."""

from __future__ import annotations

import os
from pathlib import Path

from .toolchain import apt_install, is_root
from .util import BuildError, log

CHROMIUM = "/usr/bin/chromium"
# Headless in a container: no sandbox (no user namespaces), no GPU, nothing the browser would fetch on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

# The page's memory snapshot for the next visit (web/worker/snapshot.js: one file in the origin private file system,
# its magic word "wvs1" written last): an async function for page.evaluate, 1 once a whole file is stored, else 0.
SNAPSHOT_FILE = "wasmvision-snapshot.bin"
SNAPSHOT_STORED = """async () => {
  try {
    const root = await navigator.storage.getDirectory();
    const file = await (await root.getFileHandle("%s")).getFile();
    const head = new DataView(await file.slice(0, 4).arrayBuffer());
    return file.size > 8 && head.getUint32(0, true) === 0x31737677 ? 1 : 0;
  } catch {
    return 0;
  }
}""" % SNAPSHOT_FILE


def chromium_path() -> str:
    return os.environ.get("WASMVISION_CHROMIUM", CHROMIUM)


def launch(playwright, **kwargs):
    """Playwright's Chromium started on this machine's browser with CHROMIUM_ARGS."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, **kwargs)


def ensure_chromium() -> None:
    path = Path(chromium_path())
    if path.exists():
        return
    if os.environ.get("WASMVISION_CHROMIUM"):
        raise BuildError(f"WASMVISION_CHROMIUM points at {path}, which does not exist")
    try:
        apt_install(["chromium"], "the browser tests need Debian's chromium (/usr/bin/chromium)")
    except BuildError as exc:
        if is_root():
            raise
        # Not root: say what to run and go on; the other tests still run, the browser tests will fail.
        log(f"warning: {exc}")
