"""ONNX -> wasmvision bundle.

    bundle = import_onnx("model.onnx", labels="labels.txt", preprocess="imagenet")

Steps: parse the protobuf (``onnx_proto``, pure Python so it runs in Pyodide), walk the nodes in
order calling one importer function per ONNX op (``op_list`` / ``ops_*``), which translate to the
internal op set of docs/bundle-format.md while tracking each tensor's layout (``context``), then
fold and fuse (``passes``). Errors are raised before anything is returned, so callers that write
files write nothing on failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import bundle, limits, preprocess
from ..messages import quote, short
from .errors import ModelImportError, UnsupportedOperatorError
from . import onnx_proto
from .context import NHWC, ImportContext, Value, identity
from .passes import optimize
from .op_list import SUPPORTED_OPS, get_importer

PREPROCESS_KINDS = preprocess.KINDS


def preprocess_spec(kind: str, height: int, width: int) -> dict[str, Any]:
    """The bundle ``preprocess`` entry for ``kind`` at the model's input size (bundle-format.md)."""
    if kind not in PREPROCESS_KINDS:
        raise ModelImportError(f"unknown preprocessing {quote(kind)}; choose one of {', '.join(PREPROCESS_KINDS)}")
    try:
        spec = preprocess.resolve_spec({"kind": kind}, (int(height), int(width)))
    except ValueError as exc:
        raise ModelImportError(f"preprocessing {kind!r} for a {height}x{width} input: {exc}") from None
    spec = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items() if v is not None}
    return {**spec, "interpolation": "bilinear", "antialias": True}


def load_labels(labels) -> list[str]:
    """A list of names, or a path: .json (list, or {index: name}) or text with one name per line."""
    if labels is None:
        return []
    if isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        try:
            text = limits.read_path(path, limits.LABELS).decode("utf-8")
        except limits.ReadLimitError as exc:
            raise ModelImportError(f"cannot read labels file {path}: {exc}") from None
        except OSError as exc:
            raise ModelImportError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ModelImportError(f"labels file {path} is not valid JSON: {exc}") from None
            names = _labels_from_json(data, path)
        else:
            lines = text.splitlines()
            while lines and not lines[-1].strip():
                lines.pop()
            names = [line.strip() for line in lines]
        if not names:
            raise ModelImportError(f"labels file {path} is empty: it names no classes")
        return names
    if isinstance(labels, dict):
        return _labels_from_json(labels, "labels")
    return [str(x) for x in labels]


def _labels_from_json(data, where) -> list[str]:
    if isinstance(data, list):
        return [str(x) for x in data]
    if isinstance(data, dict):
        try:
            items = {int(k): v for k, v in data.items()}
        except ValueError:
            raise ModelImportError(f"{where}: JSON object keys must be class indices") from None
        if not items or min(items) < 0:
            raise ModelImportError(f"{where}: class indices must start at 0")
        out = [str(i) for i in range(max(items) + 1)]
        for i, v in items.items():
            out[i] = v if isinstance(v, str) else str(v[-1] if isinstance(v, list) and v else v)
        return out
    raise ModelImportError(f"{where}: expected a JSON list of names or an object {{index: name}}")


def _read_source(source) -> tuple[bytes | memoryview, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source, ""
    path = Path(source)
    try:
        return limits.read_path(path, limits.ONNX), path.name
    except limits.ReadLimitError as exc:
        raise ModelImportError(f"ONNX model {path}: {exc}") from None
    except FileNotFoundError:
        raise ModelImportError(f"ONNX model not found: {path}") from None
    except IsADirectoryError:
        raise ModelImportError(f"ONNX model path is a directory: {path}") from None


def _static_dims(info: onnx_proto.ValueInfo) -> list:
    if info.shape is None:
        raise ModelImportError(f"model input {info.name!r} has no declared shape; re-export with a fixed input size")
    return info.shape


def _rename(nodes: list[bundle.Node], old: str, new: str) -> None:
    for n in nodes:
        n.inputs = [new if x == old else x for x in n.inputs]
        n.outputs = [new if x == old else x for x in n.outputs]


def _find_embedding(nodes: list[bundle.Node], output: str, tensors: dict) -> str | None:
    """The features the classifier head reads: the input of the first dense in the chain of
    dense / elementwise ops that ends at the output (e.g. the flattened pooled features)."""
    made_by = {o: n for n in nodes for o in n.outputs}
    chain_ops = {"dense", "relu", "clip", "hardswish", "hardsigmoid", "sigmoid", "softmax", "identity",
                 "add", "mul", "sub", "div"}
    t, found = output, None
    while t in made_by and made_by[t].op in chain_ops:
        n = made_by[t]
        runtime_inputs = [x for x in n.inputs if x and x not in tensors]
        if len(runtime_inputs) != 1:
            break
        if n.op == "dense":
            found = runtime_inputs[0]
        t = runtime_inputs[0]
    return found


# Ops that keep every axis of the input where it was, so the layout question passes through them:
# what tf2onnx leaves between a channels-last input and its first Transpose (Keras's Rescaling and
# Normalization layers become Mul/Add/Sub/Div by constants).
_AXIS_KEEPING = {"Identity", "Cast", "Dropout", "Mul", "Add", "Sub", "Div", "Relu", "Clip"}


def _input_is_channels_last(graph: onnx_proto.Graph, input_name: str, consts: dict) -> bool:
    """True when every path from the input reaches a Transpose to NCHW (perm [0, 3, 1, 2]) before
    anything that reads axes: then the input is NHWC, as tf2onnx exports it."""
    readers: dict[str, list] = {}
    for n in graph.nodes:
        for x in set(n.inputs):
            readers.setdefault(x, []).append(n)
    seen, stack, found = {input_name}, [input_name], False
    while stack:
        for n in readers.get(stack.pop(), []):
            if n.op_type == "Transpose" and [int(p) for p in (n.attr("perm") or [])] == [0, 3, 1, 2]:
                found = True
            elif n.op_type in _AXIS_KEEPING and all(x == "" or x in consts or x in seen for x in n.inputs):
                for o in n.outputs[:1]:
                    if o not in seen:
                        seen.add(o)
                        stack.append(o)
            else:
                return False
    return found


# What a hostile graph can make an op importer raise besides ModelImportError (numpy on absurd shapes, a stride
# of 0, a missing attribute); each is reported as a ModelImportError naming the node.
_IMPORT_FAILURES = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError,
                    MemoryError)


def import_onnx(source, *, labels=None, preprocess="imagenet", name: str | None = None,
                version: str | None = None) -> bundle.Bundle:
    """Convert an ONNX model (path or bytes) to a :class:`wasmvision.bundle.Bundle`.

    Raises :class:`UnsupportedOperatorError` for operators outside the supported set and
    :class:`ModelImportError` (a ValueError) for anything else the model or arguments get wrong: every
    failure, including numpy's on absurd shapes, is one of these, with a one-line message."""
    try:
        return _import_onnx(source, labels=labels, preprocess=preprocess, name=name, version=version)
    except ModelImportError:
        raise
    except MemoryError:
        raise ModelImportError("the model is too large to import: out of memory") from None
    except RecursionError:
        raise ModelImportError("the model's graph is nested too deeply to import") from None
    except _IMPORT_FAILURES as exc:
        raise ModelImportError(f"the model cannot be imported: {type(exc).__name__}: {quote(str(exc), 120)}") from None


def _import_onnx(source, *, labels, preprocess, name, version) -> bundle.Bundle:
    raw, file_name = _read_source(source)
    model = onnx_proto.parse_model(raw)
    graph = model.graph
    label_list = load_labels(labels)

    consts: dict[str, np.ndarray] = {}
    for t in graph.initializers.values():
        if t.array is None:
            where = t.external.get("location", "?")
            raise ModelImportError(
                f"initializer {t.name!r} is stored outside the .onnx file ({where}); wasmvision needs one "
                "self-contained file: re-save with onnx.save_model(model, path, save_as_external_data=False)")
        consts[t.name] = t.array
    if graph.has_sparse_initializers:
        raise ModelImportError("sparse initializers are not supported")

    inputs = [i for i in graph.inputs if i.name not in consts]
    if len(inputs) != 1:
        raise ModelImportError(f"expected one image input, the model has {len(inputs)}: "
                               f"{[i.name for i in inputs]}")
    inp = inputs[0]
    dims = _static_dims(inp)
    if len(dims) != 4:
        raise ModelImportError(f"model input {inp.name!r} has shape {dims}; expected a 4-D image batch")
    if inp.elem_type not in (0, 1):
        kind = onnx_proto.DATA_TYPE_NAMES.get(inp.elem_type, str(inp.elem_type))
        raise ModelImportError(f"model input {inp.name!r} is {kind}; wasmvision feeds float32")
    channels_last = _input_is_channels_last(graph, inp.name, consts)
    if channels_last:
        _, height, width, channels = dims
    else:
        _, channels, height, width = dims
    if not all(isinstance(d, int) and d > 0 for d in (height, width, channels)):
        raise ModelImportError(f"model input {inp.name!r} has shape {dims}: height, width and channels must be "
                               "fixed numbers (only the batch may be dynamic); re-export with a fixed input size")

    ctx = ImportContext(model.opset, SUPPORTED_OPS)
    ctx.consts.update(consts)
    ctx.reserve(inp.name)
    if channels_last:
        ctx.set_value(inp.name, Value(inp.name, (-1, height, width, channels), identity(4)))
    else:
        ctx.set_value(inp.name, Value(inp.name, (-1, channels, height, width), NHWC))

    for node in graph.nodes:
        ctx.current = node
        fn = get_importer(node.op_type) if node.domain in ("", "ai.onnx") else None
        if fn is None:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise UnsupportedOperatorError(ctx.node_name(), op, "", SUPPORTED_OPS)
        try:
            fn(ctx, node)
        except ModelImportError:
            raise
        except MemoryError:
            raise ModelImportError(f"node {quote(ctx.node_name())} ({short(node.op_type)}): out of memory "
                                   "(it declares an absurdly large tensor)") from None
        except _IMPORT_FAILURES as exc:
            raise ModelImportError(f"node {quote(ctx.node_name())} ({short(node.op_type)}) is malformed: "
                                   f"{type(exc).__name__}: {quote(str(exc), 120)}") from None
    ctx.current = None

    out_infos = []
    for out in graph.outputs:
        if out.name in ctx.consts:
            raise ModelImportError(f"model output {out.name!r} is a constant, not computed from the image")
        if out.name not in ctx.values:
            raise ModelImportError(f"model output {out.name!r} is never produced")
        v = ctx.values[out.name]
        want = (NHWC if not channels_last else identity(4)) if v.rank == 4 else identity(v.rank)
        v = ctx.to_layout(v, want)
        if v.name == inp.name:
            raise ModelImportError(f"model output {out.name!r} is the input itself")
        if v.name != out.name:
            if any(out.name in n.outputs for n in ctx.nodes):
                _rename(ctx.nodes, out.name, ctx.unique(out.name + "/pre"))
            _rename(ctx.nodes, v.name, out.name)
        layout = "NHWC" if v.rank == 4 else "NC" if v.rank == 2 else "ND"
        out_infos.append(bundle.ValueInfo(out.name, [-1] + list(v.stored_shape[1:]), "float32", layout))
    output_names = [o.name for o in out_infos]

    nodes = optimize(ctx.nodes, ctx.tensors, output_names, protected=set())
    embedding = _find_embedding(nodes, output_names[0], ctx.tensors)

    classes = out_infos[0].shape[-1] if len(out_infos[0].shape) == 2 else None
    if label_list and classes is not None and len(label_list) != classes:
        raise ModelImportError(f"{len(label_list)} labels given for a model with {classes} outputs")

    kind = preprocess if isinstance(preprocess, str) else None
    spec = preprocess_spec(kind, height, width) if kind is not None else dict(preprocess)
    stem = Path(file_name).stem if file_name else ""
    metadata = {"source": file_name or "bytes", "source_layout": "NHWC" if channels_last else "NCHW",
                "producer": f"{model.producer_name} {model.producer_version}".strip(), "opset": model.opset}
    return bundle.Bundle(
        nodes=nodes,
        inputs=[bundle.ValueInfo(inp.name, [-1, height, width, channels], "float32", "NHWC")],
        outputs=out_infos,
        tensors=ctx.tensors,
        name=name or stem or graph.name or "model",
        version=str(version) if version is not None else (str(model.model_version) if model.model_version else "1"),
        labels=label_list,
        preprocess=spec,
        metadata=metadata,
        embedding=embedding,
    )


__all__ = ["import_onnx", "load_labels", "preprocess_spec", "PREPROCESS_KINDS", "UnsupportedOperatorError",
           "ModelImportError"]
