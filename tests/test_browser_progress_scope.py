"""The load progress counts the bytes the boot really downloads: a build's shipped snapshot and its small zips, or,
when the browser cannot use it, the full stdlib and the wheels (web/worker/progress.js rescope, boot.js). A file the
boot does not read is never counted as received. (The shipped path: tests/test_module.py's progress test.)
Needs the built site with its shipped snapshot, and Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import browser_util as bu
from buildtools.snapshot import SITE_PATH

TIMEOUT_MS = 240_000

LOAD = """async () => {
  const wv = await import("./wasmvision.mjs");
  const events = [];
  const clf = await wv.load({ onProgress: (p) => events.push(p) });
  const s = await clf.stats();
  await clf.dispose();
  return { events, timings: s.timings };
}"""


@pytest.mark.browser
def test_a_boot_that_cannot_use_the_shipped_snapshot_counts_the_files_it_reads(pw, dist_dir, tmp_path):
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    if "snapshot" not in manifest:
        pytest.skip("this build has no shipped memory snapshot")
    data = (dist_dir / SITE_PATH).read_bytes()  # not the file the manifest hashes: the boot falls back
    site = bu.site_variant(dist_dir, tmp_path / "site", replace={SITE_PATH: data[:-1] + bytes([data[-1] ^ 1])})
    with bu.serve(site) as base:
        browser = bu.launch(pw)
        try:
            page, errors = bu.new_page(browser.new_context(), TIMEOUT_MS)
            page.goto(base + "manifest.json")  # a page of the site with no classifier of its own
            got = page.evaluate(LOAD)
            assert errors == [], errors
        finally:
            browser.close()
    assert got["timings"]["snapshot"] == "made" and got["timings"]["shipped_failed"], got["timings"]
    assert got["timings"]["stdlib"] == "pyodide/python_stdlib.zip", got["timings"]
    boot = [e for e in got["events"] if e["stage"] not in ("start", "ready")]
    assert all(0 <= e["loaded"] <= e["total"] for e in boot)
    assert all(a["loaded"] <= b["loaded"] for a, b in zip(boot, boot[1:]))
    assert boot[-1]["loaded"] == boot[-1]["total"]
    sizes = {f["path"]: f["bytes"] for f in manifest["files"]}
    model = next(m for m in manifest["models"] if m["default"])
    read = sum(v for k, v in sizes.items() if k.startswith("pyodide/") and (
        k.endswith((".wasm", "lock.json", ".mjs", ".asm.js", "python_stdlib.zip")) or
        k.startswith(("pyodide/numpy-", "pyodide/wasmvision-")))) + model["bytes"]
    tried = sum(sizes[manifest["snapshot"][k]] for k in ("file", "stdlib", "packages"))
    # The full set and the model, plus whatever of the shipped files had begun to arrive before the boot knew.
    assert read <= boot[-1]["total"] <= read + tried, (boot[-1]["total"], read, tried)
