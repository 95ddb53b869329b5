"""Small shared pieces: logging, summary statistics, ratios, Chromium flags, paths."""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from buildtools.chromium import CHROMIUM_ARGS as CHROMIUM_FLAGS  # noqa: F401 -- the tests' flags

BENCH_DIR = Path(__file__).resolve().parent.parent  # benchmarks/
ROOT = BENCH_DIR.parent
BASELINE = "ort-web 1 thread"  # every browser ratio is to this system, measured in the same run


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def stats(xs):
    """median / p90 / min / n of a list of milliseconds (None for an empty list)."""
    xs = sorted(float(x) for x in xs)
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 3), "p90": round(xs[min(len(xs) - 1, int(0.9 * len(xs)))], 3),
            "min": round(xs[0], 3), "n": len(xs)}


def ratio(a, b):
    """a / b for two medians (numbers or stats dicts); None when either is missing or b is 0."""
    a = a.get("median") if isinstance(a, dict) else a
    b = b.get("median") if isinstance(b, dict) else b
    if a is None or not b:
        return None
    return a / b


def fmt_ratio(r, suffix="x"):
    return "-" if r is None else f"{r:.2f}{suffix}"


def dig(d, *keys):
    """d[k0][k1]... with None for anything missing."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d
