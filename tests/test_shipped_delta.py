"""The shipped snapshot's delta (buildtools/snapshot.py): the runs cover every changed byte and nothing else outside
their blocks, applying them to the fresh heap gives the snapshot back, and the file has the layout shipped.js reads."""

from __future__ import annotations

import json
import struct

import numpy as np

from buildtools.snapshot import MAGIC, best_delta, encode, runs_of


def _apply(fresh: bytes, runs, data: bytes) -> bytes:
    out = bytearray(fresh)
    at = 0
    for offset, length in runs:
        out[offset:offset + length] = data[at:at + length]
        at += length
    return bytes(out)


def test_runs_cover_the_changes_in_whole_blocks():
    changed = np.zeros(200, dtype=bool)
    changed[[3, 64, 65, 130, 199]] = True
    assert runs_of(changed, 32) == [(0, 32), (64, 32), (128, 32), (192, 8)]
    assert runs_of(changed, 1) == [(3, 1), (64, 2), (130, 1), (199, 1)]
    assert runs_of(np.zeros(10, dtype=bool), 4) == []


def test_the_delta_applied_to_the_fresh_heap_is_the_snapshot():
    rng = np.random.default_rng(0)
    fresh = rng.integers(0, 256, 1 << 16, dtype=np.uint8).tobytes()
    heap = bytearray(fresh)
    for at in rng.integers(0, len(heap) - 100, 50):
        n = int(rng.integers(1, 100))
        heap[at:at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    heap = bytes(heap)
    delta = best_delta(heap, fresh + bytes(4096))  # the fresh heap may be longer than the snapshot's
    assert _apply(fresh, delta.runs, delta.data) == heap


def test_the_file_layout():
    header = bytes(range(32))
    fresh = bytes(1024)
    heap = bytearray(fresh)
    heap[100:110] = b"x" * 10
    delta = best_delta(bytes(heap), fresh)
    meta = {"key": "k", "libs": ["a.so"], "handles": {"a.so": [1]}, "total": 32 + 1024, "heap": 1024, "header": 32}
    out = encode(meta, header, delta)
    magic, length = struct.unpack_from("<II", out)
    assert magic == MAGIC
    head = json.loads(out[8:8 + length])
    at = -(-(8 + length) // 4) * 4
    assert out[at:at + 32] == header
    runs_at = at + 32
    table = struct.unpack_from(f"<{2 * head['runs']}I", out, runs_at)
    runs = list(zip(table[::2], table[1::2]))
    data = out[runs_at + 8 * head["runs"]:]
    assert len(data) == head["data"] and _apply(fresh, runs, data) == bytes(heap)
