"""Debian's Chromium through Playwright (as the rest of the suite drives it), behind the engines' interface, so the
colour and orientation checks run the same code in all three engines."""

from __future__ import annotations

import json
from pathlib import Path

from ..chromium import CHROMIUM_ARGS, chromium_path
from .driver import EngineCallError, EngineDriver, EngineUnavailable, js_args, js_wrap


class Chromium(EngineDriver):
    name = "chromium"

    def __init__(self, timeout_s: float = 300):
        from playwright.sync_api import sync_playwright

        path = chromium_path()
        if not Path(path).exists():
            raise EngineUnavailable(f"{path} is not installed (apt-get install chromium)")
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        self.page = self.browser.new_page()
        self.page.set_default_timeout(timeout_s * 1000)

    def navigate(self, url: str) -> None:
        self.page.goto(url)

    def call(self, function_source: str, *args):
        from playwright.sync_api import Error

        try:
            out = self.page.evaluate(f"(args) => ({js_wrap(function_source)})(...args)", js_args(args))
        except Error as exc:
            raise EngineCallError(f"chromium: {exc.message.splitlines()[0]}") from None
        return json.loads(out)

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()
