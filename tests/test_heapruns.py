"""A visitor's stored snapshot keeps its heap as runs (web/worker/heapruns.js, read with Node): written over a freshly
created heap, whatever module creation wrote there (below its break, and past the break a later creation may reach),
the runs give the snapshot's heap back byte for byte, from memory or read from a file; zero pages past the break are
left out, and runs that do not fit the heap or the data are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parent.parent / "web" / "worker" / "heapruns.js"

SCRIPT = """
const m = await import(%s);
const PAGE = 4096;
const heap = new Uint8Array(64 * PAGE + 100);
const fresh = 5 * PAGE + 10; // not page-aligned: the page it falls in is kept whole
let seed = 1;
const junk = (a, from, to) => {
  for (let i = from; i < to; i++) { seed = (seed * 1103515245 + 12345) >>> 0; a[i] = seed >>> 24 | 1; }
};
junk(heap, 0, 3 * PAGE); // below the break: kept whatever it holds (zero pages too)
for (const p of [12, 14, 20, 30, 31]) junk(heap, p * PAGE + 7, p * PAGE + 9); // 14: one zero page after 12
heap[40 * PAGE + PAGE - 1] = 5; // the last byte of a page counts
junk(heap, 64 * PAGE, 64 * PAGE + 100); // a tail shorter than a page
const runs = m.nonZeroRuns(heap, fresh);
const views = m.runViews(heap, runs);
const data = new Uint8Array(views.reduce((n, v) => n + v.byteLength, 0));
let at = 0;
for (const v of views) { data.set(v, at); at += v.byteLength; }
m.checkRuns(runs, heap.byteLength, data.byteLength, "test");
const restoreOver = (source) => {
  const target = new Uint8Array(heap.byteLength);
  junk(target, 0, 6 * PAGE); // what this creation wrote: below the break, and past it up to its own break
  m.applyRuns(target, { runs, data: source, fresh }, 6 * PAGE);
  return target.every((b, i) => b === heap[i]);
};
const file = { byteLength: data.byteLength, readInto: (t, off) => t.set(data.subarray(off, off + t.byteLength)) };
const refused = [];
const outside = Uint32Array.from([0, heap.byteLength + 1]);
for (const [r, len] of [[outside, heap.byteLength + 1], [runs, data.byteLength - 1]]) {
  try { m.checkRuns(r, heap.byteLength, len, "test"); refused.push(false); } catch (e) { refused.push(e.message); }
}
console.log(JSON.stringify({ runs: Array.from(runs), stored: data.byteLength, heap: heap.byteLength,
  fromMemory: restoreOver(data), fromFile: restoreOver(file), refused }));
"""


@pytest.fixture(scope="module")
def result() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    out = subprocess.run([node, "--input-type=module", "-e", SCRIPT % json.dumps(MODULE.as_uri())],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_runs_give_the_heap_back_over_a_fresh_heap(result):
    assert result["fromMemory"] and result["fromFile"]


def test_zero_pages_past_the_break_are_left_out(result):
    page = 4096
    runs = list(zip(result["runs"][::2], result["runs"][1::2]))
    assert runs[0] == (0, 6 * page)  # everything below the break, to the end of its page
    assert (12 * page, 3 * page) in runs  # pages 12 and 14 with the zero page between them
    assert (20 * page, page) in runs and (30 * page, 2 * page) in runs and (40 * page, page) in runs
    assert runs[-1] == (64 * page, 100)
    assert result["stored"] == sum(n for _, n in runs) < result["heap"] // 2


def test_runs_outside_the_heap_or_the_data_are_refused(result):
    assert result["refused"] == ["test writes outside the heap", "test's runs do not match its data"]
