#!/usr/bin/env python3
"""wasmvision's single entry point: fetch, verify, build, serve and test.

    python3 build.py [build]        fetch + verify every artifact, build the static site into dist/
    python3 build.py serve [--port 8000] [--host 127.0.0.1] [--isolate]
    python3 build.py test [pytest args...]
    python3 build.py bench [benchmarks/run.py args...]
    python3 build.py fetch          only download and verify the pinned artifacts
    python3 build.py clean [--all]  remove build/ and dist/ (--all: also .cache/ and the venvs)

Runs under any system Python >= 3.11 with no packages: it creates .venv/ next to this file, re-executes
itself inside it and installs the project (`pip install -e .[test]`) once per pyproject.toml version.
Every external artifact is pinned by sha256 in buildtools/sources.py and in models/*/recipe.json; the build stops
at the first mismatch, naming the file and both hashes. The steps live in the buildtools/ package, one per module;
this file only parses the command line, bootstraps .venv/ and dispatches (buildtools/commands.py).
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):
    sys.exit(f"wasmvision's build needs Python 3.11 or newer (this is {sys.version.split()[0]})")

import argparse
import os
from pathlib import Path

from buildtools.paths import ROOT, VENV
from buildtools.toolchain import create_venv, venv_python
from buildtools.util import BuildError, run, stage, tree_digest, up_to_date

BOOTSTRAP_EXTRAS = "test"  # pytest, pillow, onnx, onnxruntime, playwright: everything build and tests import
STAMP_BOOTSTRAP = VENV / ".wasmvision-bootstrap"


def in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def bootstrap() -> None:
    """Make sure we run inside .venv with the project installed; re-exec there if needed."""
    if not in_project_venv():
        py = venv_python(VENV)
        if not py.exists():
            create_venv(VENV, sys.executable)
        os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])
    key = tree_digest([ROOT / "pyproject.toml"], extra=f"extras={BOOTSTRAP_EXTRAS};{sys.version}")
    if up_to_date(STAMP_BOOTSTRAP, key):
        return
    with stage(f"installing wasmvision[{BOOTSTRAP_EXTRAS}] into .venv (once per pyproject.toml)"):
        run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e",
             f".[{BOOTSTRAP_EXTRAS}]"], cwd=ROOT)
    STAMP_BOOTSTRAP.write_text(key)
    # Site-packages .pth files (the editable install) are read at start-up only: start afresh to see them.
    os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("build", help="fetch, verify and build dist/ (default)")
    s = sub.add_parser("serve", help="build, then serve dist/ over HTTP")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--isolate", action="store_true",
                   help="send COOP/COEP headers (cross-origin isolation, needed for Wasm threads)")
    t = sub.add_parser("test", help="build, then run pytest (extra arguments go to pytest)")
    t.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("fetch", help="download and verify the pinned artifacts only")
    sub.add_parser("pack", help="build, then make the npm package of dist/ (build/wasmvision-VERSION.tgz)")
    c = sub.add_parser("clean", help="remove build/ and dist/")
    c.add_argument("--all", action="store_true", help="also remove .cache/ and .venv-py312/")
    sub.add_parser("bench", help="build, then run benchmarks/run.py (extra arguments go to it)")
    sub.add_parser("fuzz", help="fuzz the bundle and ONNX readers (extra arguments go to tests/fuzz_readers.py, "
                                "e.g. --seconds 600 --seed 1)")
    sub.add_parser("quant-table", help="build, then measure the fp32/fp16/int8 bundles and rewrite README's table "
                                       "(extra arguments go to benchmarks/quant_table.py)")
    if argv[:1] in (["test"], ["bench"], ["quant-table"], ["fuzz"]):  # the rest goes to pytest / the tool as is
        args = parser.parse_args(argv[:1])
        args.pytest_args = argv[1:]
        return args
    args = parser.parse_args(argv)
    args.command = args.command or "build"
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if args.command != "clean":
            bootstrap()
        from buildtools.commands import COMMANDS  # after the bootstrap: the steps may import the installed project

        return COMMANDS[args.command](args)
    except BuildError as exc:
        print(f"\nbuild.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbuild.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
