"""The memory snapshot shipped to first visitors (web/worker/shipped.js): taken in headless Chromium through the
worker's own boot (web/worker/shipmaker.js), then written as a delta against the heap a freshly created module has.

Optional-safe: when Chromium or Playwright cannot run here, the site is built without it and the build says so.
WASMVISION_SHIPPED_SNAPSHOT=0 turns it off.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from .paths import BUILD
from .util import log, sha256_file, stage

SITE_PATH = "snapshot/wasmvision-snapshot.bin"  # not under pyodide/: a failure there is no runtime failure (fetch.js)
STDLIB_PATH = "snapshot/python_stdlib.zip"  # the stdlib members the snapshot has not imported (stdLibURL)
PACKAGES_PATH = "snapshot/site-packages.zip"  # what a restore writes to site-packages (web/worker/dylibs.js)
STDLIB_IN_HEAP = "/lib/python312.zip/"  # where the imported stdlib modules' __file__ point
SITE_IN_HEAP = "/lib/python3.12/site-packages/"
# Not in what a restore downloads either: what neither wasmvision (grep its imports), nor numpy's core, nor Pyodide's
# start imports in a browser: network, mail, XML, debugging and test tooling, numpy's masked arrays, polynomials and
# test helpers. Everything else the heap does not hold stays, so any other later import still works.
NEVER_IMPORTED = re.compile(
    r"^(email|multiprocessing|xml|xmlrpc|unittest|http|urllib|wsgiref|html|pydoc_data|imaplib|poplib|smtplib|"
    r"nntplib|ftplib|mailbox|pydoc|doctest|pdb|tarfile|pickletools|turtle|turtledemo|idlelib|lib2to3|"
    r"numpy/(ma|polynomial|testing))(/|\.py|\.pyc|$)")
MAGIC = 0x31647677  # "wvd1", little-endian; shipped.js reads the same layout
BLOCK_SIZES = (64, 32, 16, 8, 4)  # candidate delta granularities; the smallest gzip wins
TIMEOUT_MS = 240_000

# The files whose change changes the snapshot: the runtime, the lock, the stdlib, the wheels, the worker's code.
INPUTS = ("pyodide/pyodide.asm.wasm", "pyodide/pyodide.asm.js", "pyodide/pyodide-lock.json",
          "pyodide/python_stdlib.zip", "worker.js")

# Runs in the page: a worker of the site booted without a model, asked for the snapshot; its bytes leave by a
# download (an 80 MB evaluate() result would cross the DevTools protocol as base64).
MAKE = """async () => {
  const worker = new Worker("./worker.js");
  const reply = (msg) => new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === "fatal") reject(new Error(data.error.message));
      else if (data.type === "ready" && msg.type === "init") resolve(data);
      else if (data.id === msg.id) data.ok ? resolve(data.value) : reject(new Error(data.error.message));
    };
    worker.postMessage(msg);
  });
  await reply({ type: "init", prefetch: null });
  const v = await reply({ id: 1, type: "makeShippedSnapshot" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([v.snapshot, v.fresh]));
  a.download = "snapshot.bin";
  document.body.append(a);
  a.click();
  worker.terminate();
  const { snapshot, fresh, ...meta } = v;
  return meta;
}"""


@dataclass(frozen=True)
class Shipped:
    """The files a first visit restoring the shipped snapshot downloads instead of the stdlib and the wheels."""
    snapshot: Path
    stdlib: Path
    packages: Path

    def site_files(self) -> dict[str, Path]:
        return {SITE_PATH: self.snapshot, STDLIB_PATH: self.stdlib, PACKAGES_PATH: self.packages}


@dataclass(frozen=True)
class Delta:
    block: int
    runs: list[tuple[int, int]]  # (offset, length) in the heap
    data: bytes
    gzip_bytes: int


def wanted() -> bool:
    return os.environ.get("WASMVISION_SHIPPED_SNAPSHOT", "1") != "0"


def inputs_key(dist: Path) -> str:
    return "".join(sha256_file(dist / p) for p in INPUTS) + Path(__file__).read_text()


def shipped_snapshot(dist: Path, wheels: list[Path]) -> Shipped | None:
    """The delta file for the site in `dist` and the small zips a restore reads (made again only when their inputs
    changed), or None (said why). `wheels`: numpy's and ours as the site ships them."""
    if not wanted():
        log("no shipped memory snapshot (WASMVISION_SHIPPED_SNAPSHOT=0)")
        return None
    folder = BUILD / "snapshot"
    shipped = Shipped(folder / "wasmvision-snapshot.bin", folder / "python_stdlib.zip", folder / "site-packages.zip")
    stamp = BUILD / "snapshot.stamp"
    key = inputs_key(dist) + "".join(sha256_file(w) for w in wheels)
    if stamp.exists() and stamp.read_text() == key and all(p.exists() for p in shipped.site_files().values()):
        return shipped
    try:
        with stage("memory snapshot for first visitors (headless Chromium)"):
            meta, raw = take_in_chromium(dist)
            if meta["differ"]:
                raise RuntimeError(f"two fresh heaps differ in {meta['differ']} bytes: no delta can be made")
            snap = raw[:meta["total"]]
            fresh = raw[meta["total"]:]
            delta = best_delta(snap[meta["header"]:], fresh)
            folder.mkdir(parents=True, exist_ok=True)
            shipped.snapshot.write_bytes(encode(meta, snap[:meta["header"]], delta))
            imported = set(meta["imported"])
            write_without(dist / "pyodide/python_stdlib.zip", shipped.stdlib, imported, STDLIB_IN_HEAP)
            write_without(wheels, shipped.packages, imported, SITE_IN_HEAP, set(meta["libs"]))
            log(f"  heap {meta['heap'] / 1e6:.1f} MB, {meta['zeroed'] / 1e6:.1f} MB of free memory zeroed; delta in "
                f"{delta.block}-byte blocks: {len(delta.data) / 1e6:.2f} MB, {delta.gzip_bytes / 1e6:.2f} MB gzip")
    except Exception as exc:  # any failure here only costs first visitors the shipped snapshot
        log(f"warning: no shipped memory snapshot ({type(exc).__name__}: {str(exc)[:300]}); the site boots "
            "first visitors normally")
        return None
    stamp.write_text(key)
    return shipped


def write_without(sources, dest: Path, imported: set[str], prefix: str, libs: set[str] | None = None) -> None:
    """The members of `sources` (a zip or a list of them) as one deflated zip, without the modules the snapshot has
    imported (their code is in the heap), without NEVER_IMPORTED and, with `libs`, without extension modules other
    than those preloaded (nothing in the product imports numpy.random, numpy.fft or numpy's test modules)."""
    import zipfile

    kept = dropped = 0
    # Deflated: hosts do not gzip zip files, and inflating ~5 MB costs far less than sending it as stored on a link.
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for source in sources if isinstance(sources, list) else [sources]:
            with zipfile.ZipFile(source) as z:
                for info in z.infolist():
                    path = prefix + info.filename
                    is_lib = info.filename.endswith(".so")
                    if info.is_dir() or (path in imported and not is_lib) or NEVER_IMPORTED.match(info.filename) or \
                            (libs is not None and is_lib and path not in libs):
                        dropped += info.file_size
                        continue
                    kept += info.file_size
                    out.writestr(info.filename, z.read(info), zipfile.ZIP_DEFLATED)
    log(f"  {dest.name}: {kept / 1e6:.2f} MB kept, {dropped / 1e6:.2f} MB left out (in the heap or never loaded)")


def take_in_chromium(dist: Path) -> tuple[dict, bytes]:
    from playwright.sync_api import sync_playwright

    from .chromium import launch
    from .server import Background

    with Background(dist) as srv, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(srv.url + "manifest.json")
            with page.expect_download(timeout=TIMEOUT_MS) as info:
                meta = page.evaluate(MAKE)
            raw = Path(info.value.path()).read_bytes()
        finally:
            browser.close()
    if len(raw) != meta["total"] + meta["heap"]:
        raise RuntimeError(f"the snapshot download has {len(raw)} bytes, not {meta['total'] + meta['heap']}")
    return meta, raw


def runs_of(changed, block: int) -> list[tuple[int, int]]:
    """Maximal runs of changed `block`-byte blocks, as (offset, length) in bytes."""
    import numpy as np

    n = len(changed)
    padded = np.zeros(-(-n // block) * block, dtype=bool)
    padded[:n] = changed
    blocks = padded.reshape(-1, block).any(axis=1).astype(np.int8)
    edges = np.diff(np.concatenate(([0], blocks, [0])))
    starts = np.flatnonzero(edges == 1) * block
    ends = np.minimum(np.flatnonzero(edges == -1) * block, n)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


def best_delta(heap: bytes, fresh: bytes) -> Delta:
    """The delta of `heap` against `fresh` whose file gzips smallest, over BLOCK_SIZES."""
    import numpy as np

    h = np.frombuffer(heap, dtype=np.uint8)
    changed = h != np.frombuffer(fresh, dtype=np.uint8)[:len(h)]
    best = None
    for block in BLOCK_SIZES:
        runs = runs_of(changed, block)
        data = b"".join(heap[o:o + n] for o, n in runs)
        table = struct.pack(f"<{2 * len(runs)}I", *[x for r in runs for x in r])
        size = len(gzip.compress(table + data, compresslevel=9, mtime=0))
        log(f"  {block:2d}-byte blocks: {len(runs)} runs, {len(data) / 1e6:.2f} MB, {size / 1e6:.2f} MB gzip")
        if best is None or size < best.gzip_bytes:
            best = Delta(block, runs, data, size)
    return best


def encode(meta: dict, header: bytes, delta: Delta) -> bytes:
    """The file shipped.js parses: magic, meta length, meta JSON, the snapshot's header, the runs, their bytes."""
    head = {"key": meta["key"], "libs": meta["libs"], "handles": meta["handles"], "total": meta["total"],
            "heap": meta["heap"], "header": len(header), "runs": len(delta.runs), "data": len(delta.data),
            "block": delta.block}
    text = json.dumps(head, separators=(",", ":")).encode()
    pad = lambda b: b + bytes(-len(b) % 4)  # noqa: E731
    table = struct.pack(f"<{2 * len(delta.runs)}I", *[x for r in delta.runs for x in r])
    return pad(struct.pack("<II", MAGIC, len(text)) + text) + pad(header) + table + delta.data
