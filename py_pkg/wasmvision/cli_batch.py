"""What `wasmvision classify` reads and writes: inputs (files, folders, ``-`` for stdin), output rows
(text, JSON Lines, CSV) and the progress bar. ``cli._classify`` drives them; one row per input, printed
(and flushed) as soon as that input is done, so a failure later on loses nothing printed before."""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import stat
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
    classifying it reports "file not found" as that input's error; so does a folder that cannot be read."""
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
        out.extend(found)
    return out


def _images_in(folder: Path, recursive: bool) -> list[Input]:
    """The folder's visible image files (and, with ``recursive``, its visible subfolders'), sorted by path; a
    folder that cannot be listed is an Input with its error, in the place its files would have had."""
    found: list[tuple[Path, str | None]] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError as exc:
            found.append((current, f"{current}: cannot read this folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _entry_is(entry.is_dir, follow_symlinks=False):  # symlinked folders are not followed (loops)
                if recursive:
                    pending.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and _entry_is(entry.is_file):
                found.append((Path(entry.path), None))
    return [Input(str(path), error) for path, error in sorted(found, key=lambda item: item[0])]


def _entry_is(test, **kwargs) -> bool:
    try:
        return test(**kwargs)
    except OSError:
        return False


def shown(text: str) -> str:
    """``text`` safe on one line of a terminal or a spreadsheet: bytes of a file name that were not UTF-8
    (``os.fsdecode``'s surrogates) as ``\\xNN``, control and other unprintable characters (newline, escape,
    bidi overrides) as Python escapes. Printable text is unchanged."""
    if text.isprintable():
        return text
    return "".join(_shown_char(ch) for ch in text)


def _shown_char(ch: str) -> str:
    if ch.isprintable():
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def error_line(name: str, message: str) -> str:
    """The stderr line for a failed input: the message, led by the input's name exactly once, shown safely."""
    if name == STDIN and message.startswith("image: "):
        message = message[len("image: "):]
    one_line = " ".join(name.split())  # errors are one line: a name's newlines became spaces; show it exactly
    if not message.startswith(name) and message.startswith(one_line):
        message = name + message[len(one_line):]
    return shown(message if message.startswith(name) else f"{name}: {message}")


# ------------------------------------------------------------------------------------------- writers

class TextWriter:
    """A readable block per image: the file, model and time, then the ranked labels (all shown safely)."""

    def __init__(self, stream, top_k: int, columns_extra: tuple[str, ...] = ()):
        self.stream = stream

    def row(self, name: str, result) -> None:
        if result.error is not None:
            return  # the error goes to stderr only
        total = sum(result.timings_ms.values())
        model = shown(f"{result.model.get('name')} {result.model.get('version')}")
        lines = [f"{shown(name)}  ({model}, {result.engine}, {total:.1f} ms)"]
        labels = [shown(p.label) for p in result.top]
        width = max([len(label) for label in labels] + [5])
        for rank, (p, label) in enumerate(zip(result.top, labels), 1):
            lines.append(f"  {rank:>2}. {label:<{width}}  {p.probability * 100:6.2f}%  (class {p.index})")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonLinesWriter:
    """One JSON object per line: ``file`` plus ``Result.to_dict()`` (or ``error``). Names are exact: JSON escapes
    control characters, and a name's non-UTF-8 bytes are written as the escapes ``\\udcNN`` that Python's
    ``json.loads`` reads back to the same surrogates (``os.fsencode`` gives the original bytes). A stream that is
    not UTF-8 (ASCII, Latin-1) gets ``\\uXXXX`` escapes for all non-ASCII text, still valid JSON."""

    def __init__(self, stream, top_k: int, columns_extra: tuple[str, ...] = ()):
        self.stream = stream
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            self.ascii = codecs.lookup(encoding).name != "utf-8"
        except LookupError:
            self.ascii = True

    def row(self, name: str, result) -> None:
        text = json.dumps({"file": name, **result.to_dict()}, ensure_ascii=self.ascii)
        self.stream.write(_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")
        self.stream.flush()


BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection


def csv_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text, never runs: shown safely, and a leading ``= + - @`` tab or CR
    gets a ``'`` before it (OWASP's CSV injection guidance); a lone ``-`` (stdin's name) is no formula."""
    text = shown(text)
    return "'" + text if text.startswith(FORMULA_STARTS) and text != STDIN else text


class CsvWriter:
    """The same rows as a table: file, error, then label/probability/class for each rank, model, extras
    (e.g. engine), total milliseconds. A failed input has its error and empty result columns. Text cells go
    through ``csv_cell``; ``bom`` starts the output with a UTF-8 byte order mark (for spreadsheets)."""

    def __init__(self, stream, top_k: int, columns_extra: tuple[str, ...] = (), bom: bool = False):
        self.stream, self.top_k, self.extra = stream, top_k, columns_extra
        self.writer = csv.writer(stream, lineterminator="\n")
        if bom:
            stream.write(BOM)
        ranks = [f"{col}_{i}" for i in range(1, top_k + 1) for col in ("label", "probability", "class")]
        self.writer.writerow(["file", "error", *ranks, "model", *columns_extra, "total_ms"])
        self.stream.flush()

    def row(self, name: str, result) -> None:
        if result.error is not None:
            cells = [csv_cell(name), csv_cell(result.error)] + [""] * (3 * self.top_k + 2 + len(self.extra))
        else:
            d = result.to_dict()
            ranks = []
            for i in range(self.top_k):
                p = d["top"][i] if i < len(d["top"]) else None
                ranks += [csv_cell(p["label"]), f"{p['probability']:.6f}", p["index"]] if p else ["", "", ""]
            model = f"{d['model'].get('name', '')} {d['model'].get('version', '')}".strip()
            total = sum(d["timings_ms"].values())
            cells = [csv_cell(name), "", *ranks, csv_cell(model), *(csv_cell(str(d.get(k, ""))) for k in self.extra),
                     f"{total:.1f}"]
        self.writer.writerow(cells)
        self.stream.flush()


WRITERS = {"text": TextWriter, "json": JsonLinesWriter, "csv": CsvWriter}


def make_writer(fmt: str, stream, top_k: int, columns_extra: tuple[str, ...], bom: bool | None = None):
    """The writer for ``--json`` / ``--csv`` / the table. CSV gets a BOM when asked (``--bom``) or, by default,
    when ``stream`` is a regular file (``> results.csv``, what a spreadsheet opens), never into a pipe or terminal."""
    if fmt != "csv":
        return WRITERS[fmt](stream, top_k, columns_extra)
    return CsvWriter(stream, top_k, columns_extra, bom=_is_regular_file(stream) if bom is None else bom)


def _is_regular_file(stream) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


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
