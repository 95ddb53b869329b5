"""Seeded, time-bounded fuzzing of the two readers of untrusted files: the bundle reader (``wasmvision.load``) and
the ONNX reader (``import_onnx``), on random mutations of real files.

Every input must end as a loaded model or as one of the documented errors (``BundleError`` for bundles,
``ModelImportError`` for ONNX), with a one-line message of at most ``messages.MAX_MESSAGE`` characters
(``UnsupportedOperatorError`` may append the fixed list of supported operators), within ``--limit`` seconds.
A model that loads is also asked to classify a small image, so graphs the reader lets through are run too.

    python3 tests/fuzz_readers.py --seconds 600 --seed 1       # or: python3 build.py fuzz --seconds 600

Mutations: bit flips, byte overwrites with boundary values, truncations, inserted/deleted runs, length fields
changed (the bundle prefix's header/data lengths; any protobuf length varint in an ONNX file), protobuf varint
values changed (dims, attribute ints), and, for bundles, structure-aware edits of the JSON header (a value
replaced by a negative/zero/huge number, NaN, a wrong type, a deep nesting, 60,000 empty tensors or a 1 MB string)
with the checksum recomputed, so the schema checks are reached instead of the checksum.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import struct
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "py_pkg"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import wasmvision  # noqa: E402
from wasmvision import bundle as wvb  # noqa: E402
from wasmvision.export.onnx_lite import _varint  # noqa: E402 -- the protobuf writer's own encoding
from wasmvision.importers import ModelImportError, UnsupportedOperatorError  # noqa: E402
from wasmvision.importers.onnx_import import import_onnx  # noqa: E402
from wasmvision.importers.proto_wire import read_varint  # noqa: E402 -- raises a ValueError subclass
from wasmvision.messages import MAX_MESSAGE  # noqa: E402
from wasmvision.preprocess import ImageError  # noqa: E402

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF)
INTERESTING_INTS = (0, 1, -1, 2, -2**31, 2**31 - 1, 2**32, 2**63 - 1, -2**63, 10**12, 4096, 65536)


class Timeout(Exception):
    pass


# --------------------------------------------------------------------------------------------- seeds

def real_files() -> dict[str, list[bytes]]:
    """The built MobileNetV2 (build/models/mobilenet_v2.onnx, dist/models/mobilenet_v2-int8.wvb), for --real."""
    onnx_path, wvb_path = ROOT / "build" / "models" / "mobilenet_v2.onnx", ROOT / "dist" / "models" / "mobilenet_v2-int8.wvb"
    for path in (onnx_path, wvb_path):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `python3 build.py build` first")
    return {"bundle": [wvb_path.read_bytes()], "onnx": [onnx_path.read_bytes()]}


def seed_files() -> dict[str, list[bytes]]:
    """Small real models: two ONNX families and their bundles (fp32, fp16 and int8 storage)."""
    import onnx_builders as B
    from wasmvision import quantize

    onnx_models = [B.mobilenet_v1(size=32, width=0.25, classes=10).SerializeToString(),
                   B.mobilenet_v2(size=32, width=0.35, classes=10).SerializeToString(),
                   B.tf_channels_last(size=32, classes=11).SerializeToString()]
    bundles = []
    b = import_onnx(onnx_models[0], labels=[f"c{i}" for i in range(10)])
    for variant in ("fp32", "fp16", "int8"):
        bundles.append(wvb.to_bytes(quantize.make_variant(b, variant)))
    bundles.append(wvb.to_bytes(import_onnx(onnx_models[1])))
    return {"bundle": bundles, "onnx": onnx_models}


# --------------------------------------------------------------------------------------------- mutations

def protobuf_fields(buf: bytes, start: int = 0, end: int | None = None, depth: int = 0, out=None):
    """(kind, position, byte length, value) of every varint and length prefix in a protobuf message, recursing
    into length-delimited fields that parse as messages."""
    out = [] if out is None else out
    end = len(buf) if end is None else end
    pos = start
    found = []
    try:
        while pos < end:
            key, pos = read_varint(buf, pos, end)
            wire = key & 7
            if key >> 3 == 0:
                raise ValueError
            if wire == 0:
                p0 = pos
                value, pos = read_varint(buf, pos, end)
                found.append(("varint", p0, pos - p0, value))
            elif wire == 2:
                p0 = pos
                length, pos = read_varint(buf, pos, end)
                if pos + length > end:
                    raise ValueError
                found.append(("length", p0, pos - p0, length, pos, pos + length))
                pos += length
            elif wire == 5:
                pos += 4
            elif wire == 1:
                pos += 8
            else:
                raise ValueError
        if pos != end:
            raise ValueError
    except ValueError:
        return out
    for f in found:
        out.append(f[:4])
        if f[0] == "length" and depth < 12 and f[3] > 1:
            protobuf_fields(buf, f[4], f[5], depth + 1, out)
    return out


def _replace(data: bytes, pos: int, n: int, new: bytes) -> bytes:
    return data[:pos] + new + data[pos + n:]


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    kind = rng.choice(("flip", "flip", "set", "truncate", "insert", "delete"))
    n = len(data)
    if kind == "flip":
        out = bytearray(data)
        k = rng.choice((1, 1, 2, 4, 8))
        for _ in range(k):
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out), f"flip {k} bit(s)"
    if kind == "set":
        out = bytearray(data)
        i = rng.randrange(n)
        out[i] = rng.choice(INTERESTING_BYTES)
        return bytes(out), f"set byte {i}"
    if kind == "truncate":
        i = rng.randrange(n)
        return data[:i], f"truncate at {i}"
    if kind == "insert":
        i = rng.randrange(n + 1)
        run = bytes(rng.randrange(256) for _ in range(rng.choice((1, 4, 16, 100))))
        return data[:i] + run + data[i:], f"insert {len(run)} bytes at {i}"
    i = rng.randrange(n)
    k = rng.choice((1, 4, 16, 100))
    return data[:i] + data[i + k:], f"delete {k} bytes at {i}"


def _interesting_int(rng: random.Random, old: int) -> int:
    return rng.choice(INTERESTING_INTS + (old + 1, old - 1, old * 2, old * 1000, -old))


def mutate_onnx(rng: random.Random, data: bytes, fields) -> tuple[bytes, str]:
    r = rng.random()
    if r < 0.45 and fields:
        kind, pos, nbytes, value = rng.choice(fields)
        new = _interesting_int(rng, value)
        return _replace(data, pos, nbytes, _varint(new)), f"{kind} field at {pos}: {value} -> {new}"
    return mutate_bytes(rng, data)


def _bundle_parts(data: bytes):
    magic, version, header_len, data_offset, data_len, digest = wvb._PREFIX.unpack_from(data, 0)
    header = json.loads(data[64:64 + header_len])
    return header, data[data_offset:]


def _repack(header_bytes: bytes, payload: bytes) -> bytes:
    data_offset = (64 + len(header_bytes) + wvb.ALIGN - 1) // wvb.ALIGN * wvb.ALIGN
    body = header_bytes + b"\0" * (data_offset - 64 - len(header_bytes)) + payload
    prefix = wvb._PREFIX.pack(wvb.MAGIC, wvb.FORMAT_VERSION, len(header_bytes), data_offset, len(payload),
                              hashlib.sha256(body).digest())
    return prefix + body


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:50]):
            yield from _paths(v, path + (i,))


def _hostile_value(rng: random.Random, old):
    choices = [-1, 0, 2**63, -2**40, 10**9, 1e308, float("nan"), float("inf"), "x", "", None, True, [], {},
               [0, 0], "A" * (1 << 20)]
    if isinstance(old, int) and not isinstance(old, bool):
        choices += [-old, old + 1, old * 4096]
    if rng.random() < 0.03:
        return _DEEP  # replaced by 100,000 nested lists in the JSON text (json.dumps cannot write them)
    if rng.random() < 0.03:
        return _FLOOD  # more entries than a header may have (1,000,000 empty tensors took 44 s and 3.6 GB)
    return rng.choice(choices)


_DEEP = "\u0000deep-nesting\u0000"
_FLOOD_TENSOR = {"dtype": "float32", "shape": [0], "parts": [{"name": "data", "offset": 0, "nbytes": 0}]}
_FLOOD = {f"t{i}": _FLOOD_TENSOR for i in range(60_000)}


def mutate_bundle(rng: random.Random, data: bytes, paths) -> tuple[bytes, str, bool]:
    """Returns (bytes, description, whether the checksum still holds)."""
    r = rng.random()
    if r < 0.5:  # structure-aware: one header value changed, checksum recomputed
        header, payload = _bundle_parts(data)
        path = rng.choice(paths)
        new = _hostile_value(rng, None)
        if not path:
            header = new
        else:
            node = header
            for k in path[:-1]:
                node = node[k]
            if rng.random() < 0.2 and isinstance(node, dict):
                node.pop(path[-1], None)
                new = "<deleted>"
            else:
                new = _hostile_value(rng, node[path[-1]])
                node[path[-1]] = new
        text = json.dumps(header, separators=(",", ":"))
        text = text.replace(json.dumps(_DEEP), "[" * 100000 + "]" * 100000)
        header_bytes = text.encode()
        shown = "<60,000 empty tensors>" if new is _FLOOD else repr(new)[:40]
        return _repack(header_bytes, payload), f"header {'/'.join(map(str, path))} = {shown}", True
    if r < 0.65:  # a length field of the prefix
        field = rng.choice((("header length", 12, "<I"), ("data offset", 16, "<Q"), ("data length", 24, "<Q")))
        name, at, fmt = field
        (old,) = struct.unpack_from(fmt, data, at)
        new = _interesting_int(rng, old) & ((1 << (8 * struct.calcsize(fmt))) - 1)
        return data[:at] + struct.pack(fmt, new) + data[at + struct.calcsize(fmt):], f"{name} {old} -> {new}", False
    out, desc = mutate_bytes(rng, data)
    return out, desc, False


# --------------------------------------------------------------------------------------------- targets

_IMAGE = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)


def _check_message(exc: BaseException) -> str | None:
    text = str(exc)
    if "\n" in text:
        return "multi-line message"
    limit = MAX_MESSAGE
    if isinstance(exc, UnsupportedOperatorError):
        limit += len(" Supported operators: " + ", ".join(exc.supported))
    if len(text) > limit:
        return f"message of {len(text)} characters"
    return None


def run_bundle(data: bytes, verify: bool) -> str:
    clf = wasmvision.load(data, verify=verify)
    clf.classify(_IMAGE, top_k=3)
    return "ok"


def run_onnx(data: bytes) -> str:
    b = import_onnx(data)
    clf = wasmvision.load(b)
    clf.classify(_IMAGE, top_k=3)
    return "ok"


ALLOWED = {"bundle": (wvb.BundleError, ImageError), "onnx": (ModelImportError, wvb.BundleError, ImageError)}


def _alarm(_signum, _frame):
    raise Timeout()


def fuzz(target: str, seconds: float, seed: int = 0, limit: float = 60.0, seeds=None, max_inputs=None,
         save_dir: Path | None = None) -> dict:
    """Mutate the seed files of ``target`` ("bundle" or "onnx") for ``seconds``; returns the figures."""
    rng = random.Random(seed)
    files = (seeds or seed_files())[target]
    if target == "onnx":
        meta = [protobuf_fields(f) for f in files]
    else:
        meta = [list(_paths(_bundle_parts(f)[0])) for f in files]
    outcomes: Counter = Counter()
    failures: list[dict] = []
    slowest = (0.0, "")
    tried = 0
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        old_handler = signal.signal(signal.SIGALRM, _alarm)
    t_end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < t_end and (max_inputs is None or tried < max_inputs):
            k = rng.randrange(len(files))
            if target == "onnx":
                data, desc = mutate_onnx(rng, files[k], meta[k])
                verify = None
            else:
                data, desc, intact = mutate_bundle(rng, files[k], meta[k])
                verify = intact or rng.random() < 0.1
            tried += 1
            t0 = time.perf_counter()
            problem = None
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                outcome = run_onnx(data) if target == "onnx" else run_bundle(data, verify)
            except Timeout:
                outcome, problem = "timeout", f"took more than {limit} s"
            except ALLOWED[target] as exc:
                outcome = type(exc).__name__
                problem = _check_message(exc)
            except Exception as exc:  # noqa: BLE001 - the finding we are looking for
                outcome = f"UNEXPECTED {type(exc).__name__}"
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            dt = time.perf_counter() - t0
            outcomes[outcome] += 1
            if dt > slowest[0]:
                slowest = (dt, f"seed file {k}, {desc}")
            if problem:
                failures.append({"input": tried, "seed_file": k, "mutation": desc, "outcome": outcome,
                                 "problem": problem})
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    (save_dir / f"{target}-{seed}-{tried}.bin").write_bytes(data)
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old_handler)
    return {"target": target, "seed": seed, "seconds": seconds, "inputs": tried,
            "outcomes": dict(outcomes.most_common()), "slowest_s": round(slowest[0], 3),
            "slowest_case": slowest[1], "failures": failures}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=float, default=60.0, help="seconds one input may take (default 60)")
    ap.add_argument("--target", choices=("bundle", "onnx", "both"), default="both")
    ap.add_argument("--save", type=Path, default=None, help="directory for inputs that fail")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    ap.add_argument("--real", action="store_true",
                    help="mutate the built MobileNetV2 (14 MB ONNX, int8 bundle) instead of the small models")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)  # corrupt weights overflow; the outcome is what counts
    seeds = real_files() if args.real else seed_files()
    reports = []
    for target in (("bundle", "onnx") if args.target == "both" else (args.target,)):
        rep = fuzz(target, args.seconds, args.seed, args.limit, seeds, save_dir=args.save)
        reports.append(rep)
        print(json.dumps({k: v for k, v in rep.items() if k != "failures"}, indent=None))
        for f in rep["failures"][:20]:
            print("  FAIL", json.dumps(f))
        if len(rep["failures"]) > 20:
            print(f"  ... {len(rep['failures']) - 20} more failures")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 1 if any(r["failures"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
