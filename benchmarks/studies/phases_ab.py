"""Before/after of start-up levers in one session: the phase table for several versions of the site, interleaved.

    python benchmarks/studies/phases_ab.py --rounds 4 NAME=SITE_DIR NAME=SITE_DIR ... [--out bench-results/phases-ab.json]
    python benchmarks/studies/phases_ab.py --rounds 4 --web-rev before=61cc23d:-sw.js sw=61cc23d current=dist

A SITE_DIR is a built site; `--web-rev NAME=REV[:-file,...]` makes one from dist/ with web/ as of git REV (files
prefixed `-` removed, e.g. `-sw.js` for "no service worker"), the manifest's entries updated to match. Each round
runs every version once (a fresh profile: cold, then the repeat visit), in an order rotated per round, so load
changes on this shared machine hit all versions alike. Prints medians per version; writes all runs as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent  # benchmarks/
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

from phases import _median_table, markdown, measure_phases  # noqa: E402


def site_from_rev(dist: Path, rev: str, removed: list[str], out: Path) -> Path:
    """A copy of dist (hard links) whose page files are web/ at git `rev`, minus `removed`."""
    shutil.copytree(dist, out, copy_function=lambda s, d: __import__("os").link(s, d))
    manifest = json.loads((out / "manifest.json").read_text())
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "web/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    by_path = {f["path"]: f for f in manifest["files"]}
    for name in names:
        rel = name[len("web/"):]
        data = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True).stdout
        dest = out / rel
        if dest.exists():
            dest.unlink()  # a hard link: never write through it into dist/
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        by_path[rel] = {"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for rel in removed:
        (out / rel).unlink(missing_ok=True)
        by_path.pop(rel, None)
    manifest["files"] = [by_path[k] for k in sorted(by_path)]
    (out / "manifest.json").unlink()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sites", nargs="*", help="NAME=SITE_DIR")
    ap.add_argument("--web-rev", nargs="*", default=[], help="NAME=REV[:-file,...] (a site from dist/ + web/@REV)")
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1, help="repeat visits per profile")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="wv-phases-ab-"))
    sites: dict[str, Path] = {}
    try:
        for spec in args.web_rev:
            name, _, rest = spec.partition("=")
            rev, _, rm = rest.partition(":")
            removed = [r[1:] for r in rm.split(",") if r.startswith("-")]
            sites[name] = site_from_rev(args.dist, rev, removed, work / name)
        for spec in args.sites:
            name, _, path = spec.partition("=")
            sites[name] = Path(path).resolve()
        runs: dict[str, list] = {n: [] for n in sites}
        names = list(sites)
        with sync_playwright() as pw:
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for n in order:
                    res = measure_phases(sites[n], pw, runs=1, repeats=args.repeats, log=lambda m, n=n: print(f"[{n}] {m}", file=sys.stderr))
                    runs[n].extend(res["raw"])
        out = {n: {"cold": _median_table([x["cold"] for x in rs]), "repeat": _median_table([x["repeat"] for x in rs]),
                   **({"repeat_last": _median_table([x["repeat_last"] for x in rs])} if args.repeats > 1 else {}),
                   "raw": rs} for n, rs in runs.items()}
        for n, t in out.items():
            print(f"\n## {n} ({args.rounds} runs)\n")
            print(markdown(t))
            if "repeat_last" in t:
                print(f"repeat visit {args.repeats}: first result {t['repeat_last']['first_result_ms']} ms, "
                      f"ready {t['repeat_last']['ready_ms']} ms")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
