"""Decode + handover into the heap, before vs after, in one Chromium worker (interleaved, medians): the worker's
web/worker/decode.js at a git ref against the working tree's, on photos given by path. Also checks that both give
the same bytes.

    python benchmarks/studies/decode/decode_ab.py [--before main] [--runs 40] photo.png photo.jpg ...
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from buildtools.chromium import launch  # noqa: E402
from buildtools.server import Background  # noqa: E402

RUN = """async ([url, runs]) => {
  const blob = await (await fetch(url)).blob();
  const worker = new Worker("/study/decode_worker.js", { type: "module" });
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({ blob, runs });
    });
  } finally {
    worker.terminate();
  }
}"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--before", default="main", help="git ref whose web/ is 'before' (default main)")
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "web"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(site)], input=archive, check=True)
        (site / "web").rename(site / "before")
        (site / "after").symlink_to(ROOT / "web")
        (site / "study").symlink_to(Path(__file__).parent)
        (site / "photos").mkdir()
        for p in args.photos:
            (site / "photos" / p.name).symlink_to(p.resolve())
        (site / "index.html").write_text("<!doctype html><title>decode A/B</title>\n")
        with Background(site, csp=False) as srv, sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            page.goto(srv.url + "index.html")
            for p in args.photos:
                print(p.name, json.dumps(page.evaluate(RUN, [f"/photos/{p.name}", args.runs])), flush=True)
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
