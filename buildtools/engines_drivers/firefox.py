"""Firefox ESR (Debian's firefox-esr) driven over its built-in WebDriver BiDi: no geckodriver, which Debian does not
ship. The client is websocket-client (pinned with selenium in the test extras) plus the few BiDi commands below."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from .driver import EngineCallError, EngineDriver, EngineUnavailable, js_args, js_wrap

FIREFOX = os.environ.get("WASMVISION_FIREFOX", "/usr/bin/firefox-esr")
# Quiet first run, no updates or telemetry, nothing fetched from outside the test's own server.
PREFS = {
    "browser.shell.checkDefaultBrowser": False, "browser.startup.homepage_override.mstone": "ignore",
    "app.update.disabledForTesting": True, "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False, "network.captive-portal-service.enabled": False,
    "browser.safebrowsing.update.enabled": False, "extensions.update.enabled": False,
}


class Firefox(EngineDriver):
    name = "firefox"

    def __init__(self, timeout_s: float = 300):
        if not Path(FIREFOX).exists():
            raise EngineUnavailable(f"{FIREFOX} is not installed (apt-get install firefox-esr)")
        try:
            import websocket  # websocket-client
        except ImportError:
            raise EngineUnavailable("websocket-client is not installed (pip install -e .[test])") from None
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="wasmvision-firefox-")
        Path(self.profile, "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items()))
        self.proc = subprocess.Popen(
            [FIREFOX, "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", self.profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"})
        self.log: list[str] = []
        url = self._listening_url(60)
        self.ws = websocket.create_connection(url + "/session", timeout=timeout_s, suppress_origin=True)
        self.ids = itertools.count(1)
        self.send("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        self.context = self.send("browsingContext.getTree", {})["contexts"][0]["context"]

    def _listening_url(self, timeout_s: float) -> str:
        found: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.log.append(line.rstrip())
                m = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
                if m and not found:
                    found.append(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True, name="firefox-stderr").start()
        if not ready.wait(timeout_s) or not found:
            self.close()
            raise RuntimeError("firefox-esr did not start its WebDriver BiDi server: "
                                    + " | ".join(self.log[-5:]))
        return found[0]

    def send(self, method: str, params: dict) -> dict:
        cid = next(self.ids)
        self.ws.send(json.dumps({"id": cid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") != cid:
                continue  # an event: none are subscribed to, but BiDi may still send some
            if msg.get("type") == "error":
                raise EngineCallError(f"{method}: {msg.get('error')}: {msg.get('message')}")
            return msg["result"]

    def navigate(self, url: str) -> None:
        self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def call(self, function_source: str, *args):
        out = self.send("script.callFunction", {
            "functionDeclaration": js_wrap(function_source), "awaitPromise": True,
            "arguments": [{"type": "string", "value": a} for a in js_args(args)],
            "target": {"context": self.context}})
        if out["type"] == "exception":
            raise EngineCallError(f"firefox: {out['exceptionDetails'].get('text')}")
        return json.loads(out["result"]["value"])

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                self.send("browser.close", {})
            except Exception:  # noqa: BLE001 -- closing a browser that is already gone
                pass
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
