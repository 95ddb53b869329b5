"""Read PyTorch checkpoints (state dicts) into numpy arrays without importing torch.

Two on-disk formats exist:

* the legacy format (``torch.save(..., _use_new_zipfile_serialization=False)`` and everything saved
  before torch 1.6): five pickles and raw storages back to back in one stream —
  magic number, protocol version, sys_info, the object pickle, the list of storage keys — then, for
  each key in that list, a little-endian int64 element count followed by the storage's raw bytes;
* the zip format (torch >= 1.6 default): ``<prefix>/data.pkl`` plus one raw file per storage in
  ``<prefix>/data/<key>``.

In both, tensors are pickled as calls to ``torch._utils._rebuild_tensor_v2`` with a persistent id
naming their storage. Unpickling is arbitrary code execution, so the unpickler below resolves only
the handful of globals a state dict needs, each to a harmless local stand-in, and refuses every
other global with a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Every read is bounded by what the pickle declares, so a small file cannot make us inflate or allocate a lot:
# a storage's bytes by numel x element size (checked against the zip's declared size before inflating a byte),
# the pickle itself and the small metadata members by these caps.
MAX_STORAGE_ELEMENTS = 1 << 28  # 256 M elements: larger than any classifier's biggest weight
MAX_PICKLE_BYTES = 64 << 20  # data.pkl of a state dict is kilobytes (names and storage references)
MAX_SMALL_MEMBER_BYTES = 64  # "byteorder": "little" or "big"

# torch storage class name -> numpy dtype of one element (bfloat16 is widened separately).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(np.uint16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "UntypedStorage": np.dtype(np.uint8),
}


class CheckpointError(ValueError):
    """The file is not a readable state-dict checkpoint, or it asks for something we refuse to do."""


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.FloatStorage`` & co. resolve to: only the element type matters to us."""
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    key: str
    storage_type: _StorageType
    numel: int
    data: np.ndarray | None = None  # 1-D, filled once the raw bytes are read


@dataclass
class _StorageView:
    """Legacy view_metadata: a window of elements into a root storage."""
    root: _Storage
    offset: int
    numel: int

    @property
    def storage_type(self) -> _StorageType:
        return self.root.storage_type


@dataclass
class _LazyTensor:
    """A tensor whose storage bytes may come later in the stream than its pickle."""
    storage: _Storage | _StorageView
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self, name: str) -> np.ndarray:
        if isinstance(self.storage, _StorageView):
            root, base = self.storage.root, self.storage.offset
            limit = self.storage.numel
        else:
            root, base, limit = self.storage, 0, self.storage.numel
        if root.data is None:
            raise CheckpointError(f"tensor {name!r}: storage {root.key!r} has no data in the file")
        size, stride = tuple(int(s) for s in self.size), tuple(int(s) for s in self.stride)
        if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise CheckpointError(f"tensor {name!r}: invalid size {size} / stride {stride}")
        # Bounds-check before as_strided, which would otherwise happily read outside the buffer.
        if all(s > 0 for s in size):
            last = self.offset + sum((n - 1) * st for n, st in zip(size, stride))
            if self.offset < 0 or last >= limit or base + limit > root.data.size:
                raise CheckpointError(
                    f"tensor {name!r}: size {size} / stride {stride} at offset {self.offset} "
                    f"reaches past its storage of {limit} elements")
        flat = root.data[base:base + limit]
        if flat.size == 0 or 0 in size:
            arr = np.zeros(size, dtype=flat.dtype)
        else:
            item = flat.dtype.itemsize
            arr = np.lib.stride_tricks.as_strided(
                flat[self.offset:], shape=size, strides=tuple(st * item for st in stride), writeable=False)
            arr = np.array(arr, copy=True)  # contiguous, owns its memory
        if root.storage_type.name == "BFloat16Storage":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, (_Storage, _StorageView)):
        raise CheckpointError("malformed checkpoint: a tensor refers to something that is not a storage")
    return _LazyTensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    return data


# The only globals a state-dict pickle may name. Everything maps to local, side-effect-free code.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage], load_storage=None):
        super().__init__(file, encoding="utf-8")
        self._storages = storages
        self._load_storage = load_storage  # zip format: fetch the bytes of a key on first use

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to load global {module}.{name} from the checkpoint: only state dicts of "
                "tensors are supported (a pickle can run arbitrary code, so nothing else is allowed)"
            ) from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise CheckpointError(
                f"unsupported persistent object {kind!r} in the checkpoint: only tensor storages are allowed "
                "(was a whole module saved instead of its state_dict()?)")
        if len(pid) == 6:      # legacy: storage, type, key, location, numel, view_metadata
            _, storage_type, key, _location, numel, view_metadata = pid
        elif len(pid) == 5:    # zip: storage, type, key, location, numel
            _, storage_type, key, _location, numel = pid
            view_metadata = None
        else:
            raise CheckpointError(f"malformed storage reference with {len(pid)} fields")
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"malformed storage reference: storage type {storage_type!r}")
        key = str(key)
        storage = self._storages.get(key)
        if storage is None:
            if not isinstance(numel, int) or not 0 <= numel <= MAX_STORAGE_ELEMENTS:
                raise CheckpointError(f"storage {key[:40]!r} declares {numel!r} elements "
                                      f"(at most {MAX_STORAGE_ELEMENTS:,} are read)")
            storage = _Storage(key, storage_type, int(numel))
            self._storages[key] = storage
            if self._load_storage is not None:
                self._load_storage(storage)
        if view_metadata is not None:
            _view_key, offset, view_numel = view_metadata
            return _StorageView(storage, int(offset), int(view_numel))
        return storage


def _collect(obj: Any) -> dict[str, np.ndarray]:
    """Flatten the unpickled object into {parameter name: array}."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"the checkpoint holds a {type(obj).__name__}, not a state dict (a mapping of names to tensors)")
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if isinstance(value, _LazyTensor):
            out[str(name)] = value.materialize(str(name))
    if not out:
        raise CheckpointError("the checkpoint contains no tensors")
    return out


def _storage_array(raw: bytes | memoryview, storage: _Storage, byteorder: str) -> np.ndarray:
    dtype = storage.storage_type.dtype.newbyteorder("<" if byteorder == "little" else ">")
    need = storage.numel * dtype.itemsize
    if len(raw) < need:
        raise CheckpointError(f"storage {storage.key!r} is truncated: {len(raw)} of {need} bytes")
    return np.frombuffer(raw, dtype=dtype, count=storage.numel).astype(dtype.newbyteorder("="))


def _load_legacy(f: BinaryIO) -> dict[str, np.ndarray]:
    def plain(what: str):
        try:
            return _RestrictedUnpickler(f, {}).load()
        except Exception as exc:  # includes CheckpointError: these pickles hold plain values only
            raise CheckpointError(f"not a PyTorch checkpoint: cannot read the {what} ({exc})") from None

    magic = plain("magic number")
    if magic != LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint: wrong magic number")
    protocol = plain("protocol version")
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"unsupported legacy checkpoint protocol version {protocol!r}")
    sys_info = plain("sys_info")
    byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) else "big"

    storages: dict[str, _Storage] = {}
    try:
        result = _RestrictedUnpickler(f, storages).load()
        keys = _RestrictedUnpickler(f, {}).load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}") from None
    if not isinstance(keys, list):
        raise CheckpointError("corrupt checkpoint: the storage key list is missing")

    fmt = "<q" if byteorder == "little" else ">q"
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointError(f"corrupt checkpoint: storage {key!r} is listed but never used")
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"checkpoint is truncated before storage {key!r}")
        (numel,) = struct.unpack(fmt, head)
        if numel != storage.numel:
            raise CheckpointError(
                f"corrupt checkpoint: storage {key!r} has {numel} elements in the file, {storage.numel} declared")
        nbytes = numel * storage.storage_type.dtype.itemsize
        if nbytes > remaining(f):  # before f.read(nbytes), which would allocate nbytes up front
            raise CheckpointError(f"checkpoint is truncated inside storage {key!r}: {nbytes} bytes declared, "
                                  f"{remaining(f)} left in the file")
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointError(f"checkpoint is truncated inside storage {key!r}: {len(raw)} of {nbytes} bytes")
        storage.data = _storage_array(raw, storage, byteorder)
    return _collect(result)


def _load_zip(zf: zipfile.ZipFile) -> dict[str, np.ndarray]:
    names = zf.namelist()
    pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pkl) != 1:
        raise CheckpointError("not a PyTorch checkpoint: the zip archive has no single data.pkl")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = _read_member(zf, prefix + "byteorder", MAX_SMALL_MEMBER_BYTES).decode("ascii", "replace")
        byteorder = byteorder.strip() or "little"

    def load_storage(storage: _Storage) -> None:
        member = f"{prefix}data/{storage.key}"
        need = storage.numel * storage.storage_type.dtype.itemsize
        try:
            raw = _read_member(zf, member, need)
        except KeyError:
            raise CheckpointError(f"checkpoint is missing storage file {member}") from None
        storage.data = _storage_array(raw, storage, byteorder)

    pickle_bytes = _read_member(zf, pkl[0], MAX_PICKLE_BYTES)
    try:
        result = _RestrictedUnpickler(io.BytesIO(pickle_bytes), {}, load_storage).load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}") from None
    return _collect(result)


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """At most ``limit`` bytes of a zip member, refused from its declared size before anything is inflated; the
    read itself is capped too, in case the declared size lies."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise CheckpointError(f"zip member {name[:80]!r} declares {info.file_size:,} bytes, at most {limit:,} "
                              "expected (a zip bomb, or not a state dict)")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"zip member {name[:80]!r} inflates past the {limit:,} bytes expected")
    return data


def remaining(f: BinaryIO) -> int:
    """Bytes left in a seekable stream (checkpoints are files or BytesIO)."""
    here = f.tell()
    end = f.seek(0, io.SEEK_END)
    f.seek(here)
    return end - here


def load_state_dict(source: str | Path | bytes | memoryview | BinaryIO) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict (legacy or zip format) as ``{name: np.ndarray}``, in file order.

    Never imports torch and never runs code from the file; anything but tensors, nested in at most
    a ``{"state_dict": ...}`` wrapper, is refused with :class:`CheckpointError`.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load_stream(io.BytesIO(bytes(source)))
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as f:
                return _load_stream(f)
        except (FileNotFoundError, IsADirectoryError):
            raise CheckpointError(f"checkpoint not found: {source}") from None
    return _load_stream(source)  # a caller's open file: read it, leave it open


def _load_stream(f: BinaryIO) -> dict[str, np.ndarray]:
    start = f.tell()
    if zipfile.is_zipfile(f):
        f.seek(start)
        with zipfile.ZipFile(f) as zf:
            return _load_zip(zf)
    f.seek(start)
    return _load_legacy(f)
