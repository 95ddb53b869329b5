"""Command line: ``python -m wasmvision classify photo.jpg [...] [--model m.wvb] [--top-k 5] [--json]``.

Exit status: 0 all good; 1 at least one image failed (the others are still classified and printed);
2 usage errors and model problems. Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import cli_convert

DEFAULT_MODEL = Path("dist") / "models" / "mobilenet_v2.wvb"
MODEL_ENV = "WASMVISION_MODEL"


def _default_model() -> str:
    return os.environ.get(MODEL_ENV) or str(DEFAULT_MODEL)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="wasmvision",
                                     description="Private image classification with numpy (natively and in the browser).")
    parser.add_argument("--version", action="version", version=f"wasmvision {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("classify", help="classify image files with a model bundle",
                       description="Classify image files. With --json: one JSON object for one image, "
                                   "a list for several.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--model", default=None,
                   help=f"model bundle (.wvb); default: ${MODEL_ENV} or {DEFAULT_MODEL}")
    p.add_argument("--top-k", type=int, default=5, help="number of classes to show (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--engine", choices=("auto", "numpy", "simd"), default="auto",
                   help="what runs the network: auto (default; the Wasm SIMD kernels inside Pyodide, numpy "
                        "elsewhere), numpy, or simd (an error where the kernels cannot load)")
    p.set_defaults(func=_classify)
    cli_convert.register(sub)
    return parser


def _fail(message: str, code: int = 2) -> int:
    print(f"wasmvision: error: {message}", file=sys.stderr)
    return code


def _classify(args) -> int:
    from .bundle import BundleError
    from .classifier import load
    from .image_io import read_image
    from .preprocess import ImageError
    from .simd import EngineError

    if args.top_k < 1:
        return _fail(f"--top-k must be at least 1, got {args.top_k}")
    model = args.model or _default_model()
    if not Path(model).exists():
        hint = ("" if args.model else
                f" (build it with `python build.py`, or pass --model PATH / set {MODEL_ENV})")
        return _fail(f"model bundle not found: {model}{hint}")
    try:
        clf = load(model, engine=args.engine)
    except BundleError as exc:
        return _fail(f"{model}: {exc}")
    except EngineError as exc:
        return _fail(str(exc))
    if clf.engine_notice:
        print(f"wasmvision: note: {clf.engine_notice}", file=sys.stderr)
    results, status = [], 0
    for path in args.images:
        try:
            t0 = time.perf_counter()
            pixels = read_image(path)
            decode_ms = (time.perf_counter() - t0) * 1e3
            res = clf.classify(pixels, top_k=args.top_k)
        except ImageError as exc:
            status = 1
            msg = str(exc)
            _fail(msg if msg.startswith(str(path)) else f"{path}: {msg}", 1)
            continue
        res.timings_ms = {"decode": decode_ms, **res.timings_ms}
        results.append((path, res))
        if not args.json:
            _print_table(path, res)
    if args.json and results:
        docs = [{"file": str(p), **r.to_dict()} for p, r in results]
        print(json.dumps(docs[0] if len(args.images) == 1 else docs, indent=2))
    return status


def _print_table(path, res) -> None:
    total = sum(res.timings_ms.values())
    print(f"{path}  ({res.model['name']} {res.model['version']}, {res.engine}, {total:.1f} ms)")
    width = max([len(p.label) for p in res.top] + [5])
    for rank, p in enumerate(res.top, 1):
        print(f"  {rank:>2}. {p.label:<{width}}  {p.probability * 100:6.2f}%  (class {p.index})")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        return _fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
