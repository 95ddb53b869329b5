"""What `wasmvision classify` reads and writes: inputs (files, folders, ``-`` for stdin), output rows
(text, JSON Lines, CSV) and the progress bar. ``cli._classify`` drives them; one row per input, printed
(and flushed) as soon as that input is done, so a failure later on loses nothing printed before."""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Files picked up from folders (an explicit file argument is always tried, whatever its name).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm",
                  ".pnm", ".ico", ".tga", ".jfif")
STDIN = "-"
PROGRESS_MIN_INPUTS = 5  # fewer inputs finish before a bar would tell anyone anything


@dataclass
class Input:
    name: str  # what the output rows call it: the path as given or found, or "-" for stdin
    error: str | None = None  # the input could not even be listed (e.g. a folder without images)


def expand(args: list[str], recursive: bool) -> list[Input]:
    """Command-line inputs -> one Input per image, in order: files as given, folders' image files sorted
    by path (subfolders only with ``recursive``), ``-`` once for stdin. A missing file stays an Input:
    classifying it reports "file not found" as that input's error."""
    out: list[Input] = []
    for arg in args:
        path = Path(arg)
        if arg == STDIN or not path.is_dir():
            out.append(Input(arg))
            continue
        found = _images_in(path, recursive)
        if not found:
            hint = "" if recursive else " (use -r to look in subfolders)"
            out.append(Input(arg, error=f"{arg}: no image files in this folder{hint}"))
        out.extend(Input(str(p)) for p in found)
    return out


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates
                  if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p.relative_to(folder)) and p.is_file())


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def error_line(name: str, message: str) -> str:
    """The stderr line for a failed input: the message, led by the input's name exactly once."""
    if name == STDIN and message.startswith("image: "):
        message = message[len("image: "):]
    return message if message.startswith(name) else f"{name}: {message}"


# ------------------------------------------------------------------------------------------- writers

class TextWriter:
    """A readable block per image: the file, model and time, then the ranked labels."""

    def __init__(self, stream, top_k: int, columns_extra: tuple[str, ...] = ()):
        self.stream = stream

    def row(self, name: str, result) -> None:
        if result.error is not None:
            return  # the error goes to stderr only
        total = sum(result.timings_ms.values())
        lines = [f"{name}  ({result.model.get('name')} {result.model.get('version')}, {result.engine}, "
                 f"{total:.1f} ms)"]
        width = max([len(p.label) for p in result.top] + [5])
        for rank, p in enumerate(result.top, 1):
            lines.append(f"  {rank:>2}. {p.label:<{width}}  {p.probability * 100:6.2f}%  (class {p.index})")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


class JsonLinesWriter:
    """One JSON object per line: ``file`` plus ``Result.to_dict()`` (or ``error``)."""

    def __init__(self, stream, top_k: int, columns_extra: tuple[str, ...] = ()):
        self.stream = stream

    def row(self, name: str, result) -> None:
        self.stream.write(json.dumps({"file": name, **result.to_dict()}, ensure_ascii=False) + "\n")
        self.stream.flush()


class CsvWriter:
    """The same rows as a table: file, error, then label/probability/class for each rank, model, extras
    (e.g. engine), total milliseconds. A failed input has its error and empty result columns."""

    def __init__(self, stream, top_k: int, columns_extra: tuple[str, ...] = ()):
        self.stream, self.top_k, self.extra = stream, top_k, columns_extra
        self.writer = csv.writer(stream, lineterminator="\n")
        ranks = [f"{col}_{i}" for i in range(1, top_k + 1) for col in ("label", "probability", "class")]
        self.writer.writerow(["file", "error", *ranks, "model", *columns_extra, "total_ms"])
        self.stream.flush()

    def row(self, name: str, result) -> None:
        if result.error is not None:
            cells = [name, result.error] + [""] * (3 * self.top_k + 2 + len(self.extra))
        else:
            d = result.to_dict()
            ranks = []
            for i in range(self.top_k):
                p = d["top"][i] if i < len(d["top"]) else None
                ranks += [p["label"], f"{p['probability']:.6f}", p["index"]] if p else ["", "", ""]
            model = f"{d['model'].get('name', '')} {d['model'].get('version', '')}".strip()
            total = sum(d["timings_ms"].values())
            cells = [name, "", *ranks, model, *(d.get(k, "") for k in self.extra), f"{total:.1f}"]
        self.writer.writerow(cells)
        self.stream.flush()


WRITERS = {"text": TextWriter, "json": JsonLinesWriter, "csv": CsvWriter}


# ------------------------------------------------------------------------------------------- progress

class Progress:
    """``  37/200 [=====>        ]  18%  4.1 photos/s  40 s left`` on one terminal line of stderr, redrawn
    in place; ``clear()`` before anything else is printed so rows and errors never mix with the bar."""

    WIDTH = 28

    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = total >= PROGRESS_MIN_INPUTS and _isatty(self.stream)
        self.total, self.enabled, self.done = total, enabled, 0
        self.start = time.perf_counter()

    def advance(self) -> None:
        self.done += 1
        self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "=" * filled + (">" if filled < self.WIDTH else "") + " " * (self.WIDTH - filled - 1)
        left = f"{(self.total - self.done) / rate:.0f} s left" if rate > 0 and self.done < self.total else ""
        self.stream.write(f"\r\x1b[K{self.done:>{len(str(self.total))}}/{self.total} [{bar}] "
                          f"{100 * self.done // max(self.total, 1):>3}%  {rate:.1f} photos/s  {left}")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
