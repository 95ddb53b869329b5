"""``python -m wasmvision train EXAMPLES_DIR -o my.wvh``: a head with a person's own labels.

EXAMPLES_DIR holds one folder per label (the ImageFolder convention); each folder's image files (not its
subfolders) are that label's examples. Prints per-label counts and the cross-validated accuracy estimate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import cli_batch, head_train
from .head_format import METHODS


def register(sub) -> None:
    p = sub.add_parser("train", help="train a head with your own labels from a folder of labeled photos",
                       description="Train a custom head: EXAMPLES_DIR has one subfolder per label, holding that "
                                   "label's photos. Everything runs on this machine. Writes a .wvh file that "
                                   "`classify --head` uses. Exit status: 0 trained, 2 usage, model or example "
                                   "errors.")
    p.add_argument("examples", metavar="EXAMPLES_DIR", help="folder with one subfolder of photos per label")
    p.add_argument("-o", "--output", required=True, help="the head file to write (.wvh)")
    p.add_argument("--model", default=None, help="base model bundle (.wvb); default: as for classify")
    p.add_argument("--method", choices=METHODS, default=head_train.DEFAULT_METHOD,
                   help=f"how to train (default {head_train.DEFAULT_METHOD}: logistic regression; ncm: nearest "
                        "class mean, faster, less accurate with more than a few photos per label)")
    p.add_argument("--name", default=None, help="the head's name in results (default: the output file's stem)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=_train)


def _train(args) -> int:
    from .bundle import BundleError
    from .classifier import load
    from .cli import _fail, _default_model
    from .simd import EngineError

    out = Path(args.output)
    if out.exists() and not args.force:
        return _fail(f"{out} exists; use --force to replace it")
    root = Path(args.examples)
    if not root.is_dir():
        return _fail(f"{root}: not a folder (EXAMPLES_DIR holds one subfolder of photos per label)")
    examples = _examples(root)
    try:
        head_train.check_examples({label: len(paths) for label, paths in examples.items()})
    except head_train.TrainingError as exc:
        return _fail(f"{root}: {exc}")
    try:
        clf = load(args.model or _default_model())
    except (BundleError, EngineError) as exc:
        return _fail(str(exc))
    progress = cli_batch.Progress(sum(len(v) for v in examples.values()))
    progress.draw()
    try:
        custom = clf.train(examples, method=args.method, name=args.name or out.stem,
                           progress=lambda done, total: progress.advance())
    except (BundleError, head_train.TrainingError, ValueError) as exc:
        progress.clear()
        return _fail(str(exc))
    finally:
        progress.clear()
    size = custom.save(out)
    head = custom.head
    summary = {"output": str(out), "bytes": size, "method": head.method, "labels": head.examples,
               "accuracy": head.accuracy, "base": {"name": head.base.name, "sha256": head.base.sha256}}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        width = max(len(label) for label in head.labels)
        for label, n in head.examples.items():
            print(f"{label:<{width}}  {n:>5} photos")
        estimate = "leave-one-out" if head.method == "ncm" else "k-fold"
        print(f"accuracy estimate ({estimate}): {head.accuracy:.1%}  ·  {head.method}  ·  wrote {out} ({size:,} bytes)")
    return 0


def _examples(root: Path) -> dict[str, list[str]]:
    """label folder -> its image files, sorted; hidden folders skipped. Empty folders stay (an error to report)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {f.name: [str(p) for p in sorted(f.iterdir())
                     if p.is_file() and p.suffix.lower() in cli_batch.IMAGE_SUFFIXES and not p.name.startswith(".")]
            for f in folders}
