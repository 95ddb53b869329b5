"""Byte and time bounds on every file and stream the package reads whole (images, bundles, ONNX models, labels,
stdin), and the one reader that enforces them before the bytes are spent.

A regular file is refused from its size before anything is read; a pipe or FIFO is read in chunks and refused as
soon as it passes the bound; a named FIFO that sends nothing is given up after an idle time instead of blocking
forever (opening one waits for a writer that may never come); a device (/dev/zero) is refused."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Bound:
    what: str  # the kind of input, for messages: "image files"
    max_bytes: int


IMAGE = Bound("image files", 256 << 20)  # a 50 MP photo (preprocess.MAX_PIXELS) is ~150 MB even as raw 8-bit RGB
BUNDLE = Bound("model bundles", 1 << 30)  # far above any model we run (MobileNetV2 fp32: 14 MB); a Wasm heap is 2-4 GB
ONNX = Bound("ONNX models", 1 << 30)  # converts to a bundle of about the same size: BUNDLE's bound
LABELS = Bound("labels files", 64 << 20)
HEAD = Bound("head files", 256 << 20)  # 10,000 labels x 4,096 features of float32 is 164 MB  # ImageNet-21k's 21,843 names are ~0.5 MB
FIFO_IDLE_SECONDS = 30.0  # a pipe named on the command line that sends nothing this long is given up
_CHUNK = 1 << 20


class ReadLimitError(ValueError):
    """The input is larger than its bound, a pipe sent nothing for too long, or it is a device. No path in the message:
    callers lead it with the input's name and raise their own error type."""


def _too_large(bound: Bound, size: int | None = None) -> ReadLimitError:
    got = f"{size:,} bytes; " if size is not None else ""
    limit = f"{bound.max_bytes >> 20:,} MiB" if bound.max_bytes >= 1 << 20 else f"{bound.max_bytes:,} bytes"
    return ReadLimitError(f"too large ({got}the limit for {bound.what} is {limit})")


def read_path(path, bound: Bound, idle_seconds: float | None = None) -> bytes:
    """The bytes of ``path``, at most ``bound.max_bytes`` of them, else ReadLimitError. OSError (not found,
    permission, a directory) propagates."""
    idle = FIFO_IDLE_SECONDS if idle_seconds is None else idle_seconds
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(os.fspath(path), flags)  # non-blocking: opening a FIFO does not wait for a writer
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):  # /dev/zero, /dev/urandom: endless
            raise ReadLimitError("is a device, not a file or a pipe")
        if stat.S_ISREG(st.st_mode):
            if st.st_size > bound.max_bytes:
                raise _too_large(bound, st.st_size)
            _set_blocking(fd)
            return _read_chunks(lambda n: os.read(fd, n), bound)
        return _read_chunks(lambda n: os.read(fd, n), bound, _waiter(fd, idle))
    finally:
        os.close(fd)


def read_stream(stream, bound: Bound) -> bytes:
    """All bytes of a binary stream (stdin), at most ``bound.max_bytes``; a redirected regular file is judged by
    its size first. Blocks like any reader of stdin: the user chose to pipe into it."""
    try:
        st = os.fstat(stream.fileno())
        regular = stat.S_ISREG(st.st_mode)
    except (AttributeError, OSError, ValueError):  # not a file descriptor (e.g. io.BytesIO): read it in chunks
        regular = False
    if regular and st.st_size > bound.max_bytes:
        raise _too_large(bound, st.st_size)
    return _read_chunks(stream.read, bound)


def _read_chunks(read, bound: Bound, wait=None) -> bytes:
    limit = bound.max_bytes
    chunks, total = [], 0
    while True:
        if wait is not None:
            wait()
        try:
            chunk = read(min(_CHUNK, limit + 1 - total))
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_large(bound)


def _waiter(fd: int, idle: float):
    """A function that blocks until ``fd`` is readable (data or end of input), at most ``idle`` seconds."""
    try:
        import select

        poller = select.poll()
    except (ImportError, AttributeError):  # no poll (Windows has no FIFOs; Pyodide reads no pipes)
        _set_blocking(fd)
        return None
    poller.register(fd, select.POLLIN | select.POLLPRI)

    def wait() -> None:
        if not poller.poll(idle * 1000):
            raise ReadLimitError(f"nothing to read for {idle:g} s (a pipe or FIFO with no writer?)")
    return wait


def _set_blocking(fd: int) -> None:
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
