"""The one interface the engine tests and benchmarks use: open a page, wait for it to be ready, classify a photo, read the top 5.

A driver implements two primitives, ``navigate(url)`` and ``call(function_source, *args)`` (an async JavaScript
function run in the page, its JSON-able result returned); everything else is built on them here, in JavaScript that
runs the same in every engine. Photos cross as base64 and become Blobs/Files in the page (nothing leaves it)."""

from __future__ import annotations

import base64
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


class EngineUnavailable(RuntimeError):
    """The browser (or what drives it) is not installed: the test skips with this message."""


class EngineCallError(RuntimeError):
    """The page's function threw (message from the browser)."""


@dataclass(frozen=True)
class Top:
    index: int
    label: str
    probability: float


# A {name, b64} argument as a File in the page.
FILE_FROM_ARG = "(f) => new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name)"


class EngineDriver(ABC):
    name = "engine"

    @abstractmethod
    def navigate(self, url: str) -> None: ...

    @abstractmethod
    def call(self, function_source: str, *args):
        """Run ``async (...args) => ...`` in the page; returns its (JSON-serialisable) result."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_for(self, predicate_source: str, timeout_s: float, what: str, poll_s: float = 0.25) -> None:
        """Poll ``() => boolean`` in the page until true; TimeoutError naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.call(f"async () => Boolean(({predicate_source})())"):
                    return
            except EngineCallError:
                pass  # the page is still loading: its globals may not exist yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {what} not within {timeout_s:.0f} s")
            time.sleep(poll_s)

    def open_page(self, url: str, global_name: str = "wasmvision", timeout_s: float = 300) -> float:
        """Load ``url`` and wait until ``window[global_name].ready`` resolves; returns the seconds that took."""
        t0 = time.monotonic()
        self.navigate(url)
        self.wait_for(f"() => window.{global_name} !== undefined", timeout_s, f"window.{global_name}")
        self.call(f"async () => {{ await window.{global_name}.ready; return true; }}")
        return time.monotonic() - t0

    @staticmethod
    def file_arg(path: Path) -> dict:
        return {"name": Path(path).name, "b64": base64.b64encode(Path(path).read_bytes()).decode("ascii")}

    def classify(self, path: Path, top_k: int = 5) -> list[Top]:
        """The page's window.wasmvision.classify on ``path`` (as a File), its top ``top_k``."""
        result = self.call(f"async (f, k) => window.wasmvision.classify(({FILE_FROM_ARG})(f), {{topK: k}})",
                           self.file_arg(path), top_k)
        return tops(result)

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Give the <input type=file> at ``selector`` these files and fire its change event, as a user's pick would."""
        self.call(f"""async (sel, files) => {{
            const input = document.querySelector(sel);
            const dt = new DataTransfer();
            for (const f of files) dt.items.add(({FILE_FROM_ARG})(f));
            input.files = dt.files;
            input.dispatchEvent(new Event("change", {{bubbles: true}}));
            return true;
        }}""", selector, [self.file_arg(p) for p in paths])


def tops(result: dict) -> list[Top]:
    return [Top(p["index"], p.get("label", ""), p["probability"]) for p in result["top"]]


def js_wrap(function_source: str) -> str:
    """``function_source`` as a function whose result crosses every protocol the same way: as JSON text."""
    return (f"(...args) => Promise.resolve(({function_source})(...args.map((a) => JSON.parse(a))))"
            ".then((v) => JSON.stringify(v === undefined ? null : v))")


def js_args(args) -> list[str]:
    return [json.dumps(a) for a in args]
