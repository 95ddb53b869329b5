"""The names both languages use (engines, error kinds) are defined once per language and agree: the module's
exported lists (web/module/errors.js, read with Node) against Python's, and against the types (wasmvision.d.ts)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"


def _node_json(module: Path, expression: str):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = f"const m = await import({json.dumps(module.as_uri())}); console.log(JSON.stringify({expression}));"
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def js() -> dict:
    return _node_json(WEB / "module" / "errors.js", "{engines: m.ENGINES, kinds: m.ERROR_KINDS}")


def _union(name: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", (WEB / "wasmvision.d.ts").read_text())
    return re.findall(r'"([^"]+)"', re.search(rf"export type {name} =(.*?);", text, re.S).group(1))


def test_engines_agree(js):
    from wasmvision.simd import ENGINES

    assert js["engines"] == list(ENGINES)
    assert _union("Engine") == list(ENGINES)


def test_error_kinds_agree(js):
    from wasmvision import browser

    assert js["kinds"] == list(browser.ERROR_KINDS)
    assert sorted(_union("ErrorKind")) == sorted(browser.ERROR_KINDS)


def test_every_python_error_reaches_the_page_as_a_public_kind():
    # Python names its user errors by class; the worker maps them (web/worker/errors.js publicKind).
    from wasmvision import browser

    names = [cls.__name__ for cls in browser._USER_ERRORS] + [browser.ModelNotLoaded.__name__]
    public = _node_json(WEB / "worker" / "errors.js", f"{json.dumps(names)}.map(m.publicKind)")
    unknown = {n: k for n, k in zip(names, public) if k not in browser.ERROR_KINDS}
    assert not unknown, f"Python errors that reach the page under no public kind: {unknown}"
