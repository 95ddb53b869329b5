"""WebKitGTK (the engine of Safari), Debian's webkit2gtk-driver: WebKitWebDriver starting MiniBrowser, driven by
selenium (pinned in the test extras), on an Xvfb display this driver starts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .driver import EngineCallError, EngineDriver, EngineUnavailable, js_args, js_wrap

WEBDRIVER = os.environ.get("WASMVISION_WEBKITWEBDRIVER", "/usr/bin/WebKitWebDriver")
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"


class Xvfb:
    """A private X display (the first free number, chosen by Xvfb itself)."""

    def __init__(self):
        if not Path("/usr/bin/Xvfb").exists():
            raise EngineUnavailable("Xvfb is not installed (apt-get install xvfb)")
        r, w = os.pipe()
        self.proc = subprocess.Popen(["/usr/bin/Xvfb", "-displayfd", str(w), "-screen", "0", "1280x1024x24",
                                      "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            self.close()
            raise EngineUnavailable("Xvfb did not start")
        self.display = f":{number}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class WebKit(EngineDriver):
    name = "webkit"

    def __init__(self, timeout_s: float = 300, features: tuple[str, ...] = ()):
        for path, package in ((WEBDRIVER, "webkit2gtk-driver"), (MINIBROWSER, "webkit2gtk-driver")):
            if not Path(path).exists():
                raise EngineUnavailable(f"{path} is not installed (apt-get install {package})")
        try:
            from selenium import webdriver
            from selenium.webdriver.webkitgtk.service import Service
        except ImportError:
            raise EngineUnavailable("selenium is not installed (pip install -e .[test])") from None
        self.xvfb = Xvfb()
        # SE_OFFLINE: selenium-manager must never try to download a driver or a browser.
        env = {"DISPLAY": self.xvfb.display, "SE_OFFLINE": "true"}
        if not _user_namespaces():
            env["WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS"] = "1"
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the driver's service inherits the display (and the sandbox setting)
        try:
            options = webdriver.WebKitGTKOptions()
            options.binary_location = MINIBROWSER
            options.add_argument("--automation")
            if features:  # e.g. Safari's storage features, which WebKitGTK leaves off
                options.add_argument("--features=" + ",".join("+" + f for f in features))
            self.driver = webdriver.WebKitGTK(options=options, service=Service(executable_path=WEBDRIVER))
        except Exception as exc:
            self.xvfb.close()
            raise RuntimeError(f"WebKitWebDriver did not start a session: {exc}") from exc
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.driver.set_script_timeout(timeout_s)
        self.driver.set_page_load_timeout(timeout_s)

    def navigate(self, url: str) -> None:
        self.driver.get(url)

    def call(self, function_source: str, *args):
        from selenium.common.exceptions import JavascriptException

        try:
            out = self.driver.execute_script(f"return ({js_wrap(function_source)}).apply(null, arguments);",
                                             *js_args(args))
        except JavascriptException as exc:
            raise EngineCallError(f"webkit: {exc.msg}") from None
        return json.loads(out)

    def close(self) -> None:
        driver = getattr(self, "driver", None)
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001 -- closing a browser that is already gone
                pass
        self.xvfb.close()


def _user_namespaces() -> bool:
    """Whether WebKit's bubblewrap sandbox can run here (it needs unprivileged user namespaces)."""
    try:
        return subprocess.run(["unshare", "--user", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
