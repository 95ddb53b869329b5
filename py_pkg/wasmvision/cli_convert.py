"""`wasmvision convert` (ONNX -> .wvb) and `wasmvision inspect` (describe a .wvb).

``register(subparsers)`` is called by ``cli.build_parser``. Handlers return the exit code:
0 on success, 2 with a one-line message on stderr for any error (and no output file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .preprocess import KINDS as PREPROCESS_KINDS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert an ONNX model to a wasmvision bundle (.wvb)",
        description="Convert an ONNX image classifier (MobileNet family, EfficientNet-Lite, small ResNets) "
                    "to a wasmvision model bundle. Nothing is written if the model cannot be converted.")
    p.add_argument("model", metavar="MODEL.onnx", help="ONNX model file")
    p.add_argument("-o", "--output", metavar="MODEL.wvb", default=None,
                   help="bundle to write (default: the model's name with .wvb)")
    p.add_argument("--labels", metavar="FILE", default=None,
                   help="class names: .txt (one per line) or .json (a list, or {index: name})")
    p.add_argument("--preprocess", choices=list(PREPROCESS_KINDS), default="imagenet",
                   help="input preprocessing the model was trained with: imagenet (default), inception, "
                        "none (whole image resized, pixels in [0, 1]) or raw (whole image resized, pixels 0..255)")
    p.add_argument("--name", default=None, help="model name stored in the bundle (default: file name)")
    p.add_argument("--version", dest="model_version", metavar="VERSION", default=None,
                   help="model version stored in the bundle")
    p.add_argument("--force", action="store_true", help="replace the output file if it already exists")
    add_storage_options(p)
    p.set_defaults(func=_convert)

    p = subparsers.add_parser("inspect", help="describe a wasmvision bundle",
                              description="Print a bundle's inputs, outputs, operators, parameters, "
                                          "size, storage and preprocessing.")
    p.add_argument("bundle", metavar="MODEL.wvb", help="model bundle")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_inspect)


def add_storage_options(parser) -> None:
    """--weights fp32|fp16|int8|int8-all and --keep-float (see docs/quantization.md)."""
    parser.add_argument(
        "--weights", type=_weights_kind, default="fp32", metavar="{fp32,fp16,int8,int8-all}",
        help="weight storage: fp32 (default), fp16 (half the size), int8 (about a third: int8 per output "
             "channel, with the first, depthwise and linear convolutions in float16, as measured in "
             "docs/quantization.md), int8-all (int8 everywhere, smallest, less accurate). "
             "Weights are decoded to float32 once, when the model loads")
    parser.add_argument(
        "--keep-float", type=_selector_list, default=(), metavar="SEL[,SEL]",
        help="weights kept in float32 whatever --weights says: first (the first conv), last (the classifier), "
             "depthwise, linear (convs without activation), or tensor names; e.g. --keep-float first,last")


def _weights_kind(text: str) -> str:
    from .quantize import variant_name

    try:
        return variant_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _selector_list(text: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. first,last")
    return items


def apply_storage_options(bundle, args) -> None:
    """Counterpart of add_storage_options: set ``bundle.storage`` from the parsed arguments (in place)."""
    from .importers import ModelImportError
    from .quantize import make_variant

    try:
        variant = make_variant(bundle, getattr(args, "weights", "fp32"), keep_float32=getattr(args, "keep_float", ()))
    except ValueError as exc:  # an unknown --keep-float selector: report it like any conversion error
        raise ModelImportError(f"--keep-float: {exc}") from None
    bundle.storage, bundle.metadata = variant.storage, variant.metadata


def _fail(message: str) -> int:
    print(f"wasmvision: error: {message}", file=sys.stderr)
    return 2


def _convert(args) -> int:
    from .bundle import BundleError, save, to_bytes
    from .classifier import load
    from .importers import ModelImportError
    from .importers.onnx_import import import_onnx

    src = Path(args.model)
    out = Path(args.output) if args.output else src.with_suffix(".wvb")
    if out.resolve() == src.resolve():
        return _fail(f"output {out} would overwrite the input model")
    if not out.parent.is_dir():
        return _fail(f"output directory {out.parent} does not exist")
    if out.exists() and not args.force:
        return _fail(f"{out} already exists; pass --force to replace it, or -o to write elsewhere")
    t0 = time.perf_counter()
    try:
        bundle = import_onnx(src, labels=args.labels, preprocess=args.preprocess, name=args.name,
                             version=args.model_version)
        apply_storage_options(bundle, args)
        to_bytes(bundle)  # encode fully before touching the output path
        load(bundle)  # and plan it as classify will: never write a bundle that cannot run
    except (ModelImportError, BundleError) as exc:
        return _fail(f"{src}: {exc}")
    size = save(bundle, out)
    seconds = time.perf_counter() - t0
    inp, outp = bundle.inputs[0], bundle.outputs[0]
    print(f"wrote {out} ({_size(size)}) in {seconds:.1f} s")
    print(f"  model     {bundle.name} {bundle.version}  (from {bundle.metadata.get('source_layout')} "
          f"{bundle.metadata.get('producer') or 'ONNX'}, opset {bundle.metadata.get('opset')})")
    print(f"  input     {inp.name} {inp.shape} NHWC    output {outp.name} {outp.shape}")
    print(f"  graph     {len(bundle.nodes)} nodes, {bundle.parameter_count:,} parameters")
    print(f"  labels    {len(bundle.labels) or 'none'}    preprocess {bundle.preprocess.get('kind')}")
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def describe(bundle, file_size: int | None = None, header: dict | None = None) -> dict:
    """``storage`` maps each storage kind to its tensor count, ``storage_bytes`` to the bytes stored (data and
    scales), taken from ``header`` (the file as written) or, without one, from encoding the tensors now."""
    from .quantize import encode, storage_summary

    if header is not None:
        storage = storage_summary(header)
    else:
        storage = {}
        for name, array in bundle.tensors.items():
            kind = bundle.storage.get(name, str(array.dtype))
            row = storage.setdefault(kind, {"tensors": 0, "bytes": 0})
            row["tensors"] += 1
            row["bytes"] += sum(len(raw) for _, raw in encode(array, kind)["parts"])
    return {
        "name": bundle.name,
        "version": bundle.version,
        "file_bytes": file_size,
        "inputs": [v.to_json() for v in bundle.inputs],
        "outputs": [v.to_json() for v in bundle.outputs],
        "operators": dict(sorted(bundle.op_counts().items(), key=lambda kv: (-kv[1], kv[0]))),
        "nodes": len(bundle.nodes),
        "parameters": bundle.parameter_count,
        "storage": {kind: row["tensors"] for kind, row in storage.items()},
        "storage_bytes": {kind: row["bytes"] for kind, row in storage.items()},
        "preprocess": dict(bundle.preprocess),
        "labels": len(bundle.labels),
        "embedding": bundle.embedding,
        "metadata": dict(bundle.metadata),
    }


def _inspect(args) -> int:
    from . import limits
    from .bundle import BundleError, from_bytes, read_header
    from .classifier import load

    path = Path(args.bundle)
    try:
        raw = limits.read_path(path, limits.BUNDLE)
    except limits.ReadLimitError as exc:
        return _fail(f"{path}: {exc}")
    except FileNotFoundError:
        return _fail(f"{path}: model bundle not found")
    except OSError as exc:
        return _fail(f"{path}: cannot read: {exc.strerror or exc}")
    try:
        bundle = from_bytes(raw)
        header, _ = read_header(raw, verify=False)  # already verified by from_bytes
    except BundleError as exc:
        return _fail(f"{path}: {exc}")
    info = describe(bundle, len(raw), header)
    try:
        load(bundle)  # plan it as classify would: a graph classify cannot run is an error here too
        problem = None
    except BundleError as exc:
        problem = str(exc)
    info["runnable"] = problem is None
    if args.json:
        print(json.dumps(info, indent=2))
        return _fail(f"{path}: classify cannot run this model: {problem}") if problem else 0
    _print_info(path, info)
    return _fail(f"{path}: classify cannot run this model: {problem}") if problem else 0


def _print_info(path, info: dict) -> None:
    print(f"{path}  {_size(info['file_bytes'])}")
    print(f"  model       {info['name']} {info['version']}")
    for v in info["inputs"]:
        print(f"  input       {v['name']}  {v['shape']}  {v['dtype']}  {v['layout']}")
    for v in info["outputs"]:
        print(f"  output      {v['name']}  {v['shape']}  {v['dtype']}  {v['layout']}")
    ops = ", ".join(f"{op} {n}" for op, n in info["operators"].items())
    print(f"  operators   {info['nodes']} nodes: {ops}")
    print(f"  parameters  {info['parameters']:,}")
    for i, (kind, nbytes) in enumerate(sorted(info["storage_bytes"].items(), key=lambda kv: -kv[1])):
        print(f"  {'storage' if i == 0 else '':<10}  {kind:<8} {info['storage'][kind]:>4} tensors  {_size(nbytes):>9}")
    if info["metadata"].get("weights"):
        print(f"  weights     {info['metadata']['weights']} variant")
    pp = info["preprocess"]
    if pp:
        extra = f", resize shorter side {pp['resize_shorter']}" if "resize_shorter" in pp else ""
        print(f"  preprocess  {pp.get('kind')}: crop {pp.get('crop')}{extra}, mean {pp.get('mean')}, std {pp.get('std')}")
    else:
        print("  preprocess  none recorded")
    print(f"  labels      {info['labels'] or 'none'}")
    if info["embedding"]:
        print(f"  embedding   {info['embedding']}")
