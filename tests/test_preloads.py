"""index.html's preloads (buildtools/dist.py PRELOADS): a page's preload reaches the worker only through the HTTP
cache, and a private window's cache is memory-only with a cap per entry, so a bigger preloaded file would be
downloaded twice there (once by the preload, once by the worker)."""

from __future__ import annotations

import json

import pytest

from buildtools import dist
from buildtools.paths import DIST

# Chromium's in-memory HTTP cache (incognito): at most 50 MB, one entry at most an eighth of that.
PRIVATE_CACHE_ENTRY_MAX = 50 * 1024 * 1024 // 8


def test_preloads_are_written_into_the_page():
    html = dist.with_preloads(b"<head>" + dist.PRELOAD_MARKER + b"</head>", list(dist.PRELOADS)).decode()
    for p in dist.PRELOADS:
        assert f'<link rel="preload" href="./{p}" as="fetch" crossorigin>' in html


def test_every_preloaded_file_fits_a_private_windows_cache_uncompressed():
    # Uncompressed: a host without gzip sends the file as it is.
    if not (DIST / "index.html").exists():
        pytest.skip("no dist/: run build.py build")
    html = (DIST / "index.html").read_text()
    shipped = json.loads((DIST / "manifest.json").read_text()).get("snapshot")
    for p in dist.page_preloads(shipped["stdlib"] if shipped else None):
        assert f'href="./{p}"' in html
        size = (DIST / p).stat().st_size
        assert size <= PRIVATE_CACHE_ENTRY_MAX, f"{p}: {size} bytes would be downloaded twice in a private window"
    assert 'rel="preload" href="./pyodide/pyodide.asm.wasm"' not in html
