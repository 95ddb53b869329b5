"""The browser engines behind one interface (driver.EngineDriver): Chromium (Playwright), Firefox ESR (WebDriver
BiDi) and WebKitGTK (WebKitWebDriver + selenium). The end-to-end tests (tests/engines) and the per-engine benchmark
(benchmarks/bench/engines.py) both start them here. Imported lazily: each driver needs its own client."""

from __future__ import annotations

from .driver import EngineCallError, EngineDriver, EngineUnavailable, Top, tops  # noqa: F401

ENGINES = ("chromium", "firefox", "webkit")
# WebKitGTK with the storage features Safari ships (navigator.storage, OPFS): MiniBrowser's --features.
WEBKIT_STORAGE_FEATURES = ("StorageAPI", "FileSystem", "AccessHandle")


def start(name: str, **options) -> EngineDriver:
    """A started browser of engine ``name``; EngineUnavailable when it is not installed. ``options``: the driver's
    (webkit: ``features``, a list of MiniBrowser feature flags to turn on)."""
    if name == "chromium":
        from .chromium import Chromium as Driver
    elif name == "firefox":
        from .firefox import Firefox as Driver
    elif name == "webkit":
        from .webkit import WebKit as Driver
    else:
        raise ValueError(f"unknown engine {name!r}: one of {', '.join(ENGINES)}")
    return Driver(**options)
