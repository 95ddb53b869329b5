"""The link-profile part of the benchmark, its pure functions only (benchmarks/bench/links.py, links_report.py,
run.py's --only/--skip-links options) on canned visits: the cells, ratios, MB per visit, the tables and the README
block. No browser, no timing assertion."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import links, links_report, report  # noqa: E402


def visit(ms, nbytes, files=None):
    return {"first_result_ms": ms, "bytes": nbytes, "bytes_to_first_result": nbytes, "requests": 3,
            "per_file": files or {"/wv/pyodide/pyodide.asm.wasm": [1, nbytes]}, "top": [[285, 0.5]]}


def cell(ours, fp32, int8=None):
    out = {links.WV: links.summary(ours), links.ORT: links.summary(fp32)}
    if int8:
        out[links.ORT_INT8] = links.summary(int8)
    return out


@pytest.fixture()
def res():
    twice = {"/wv/pyodide/pyodide.asm.wasm": [2, 20_000_000], "/wv/sw.js": [2, 40_000]}
    cells = {
        "unthrottled": {
            "persistent": {
                "cold": cell([visit(1500, 13.1e6), visit(1300, 13.1e6), visit(1400, 13.1e6)],
                             [visit(1000, 16.6e6), visit(1000, 16.6e6), visit(1000, 16.6e6)],
                             [visit(700, 7.1e6)]),
                "repeat": cell([visit(900, 0)], [visit(600, 0)], [visit(450, 0)])},
            "private": {"cold": cell([visit(1600, 23.2e6, twice)], [visit(1000, 16.6e6)])}},
        "20 Mbit/s + 40 ms": {"persistent": {"cold": cell([visit(6000, 13.1e6)], [visit(8000, 16.6e6)])}},
    }
    return {"links": {"profiles": [{"name": p.name, "mbit_s": p.mbit_s, "delay_ms": p.delay_ms}
                                   for p in links.LINK_PROFILES],
                      "systems": [links.WV, links.ORT, links.ORT_INT8], "cells": cells, "method": "m"},
            "systems": {}, "args": {}, "notes": []}


def test_summary_takes_medians_and_names_files_sent_twice():
    s = links.summary([visit(1500, 10), visit(1300, 30), visit(1400, 20), {"first_result_ms": None}])
    assert s["first_result_ms"]["median"] == 1400 and s["first_result_ms"]["n"] == 3
    assert s["bytes"] == 20 and "per_file" not in s["runs"][0]
    assert links.summary([]) == {}
    files = {"/a.wasm": [2, 20_000_000], "/sw.js": [2, 40_000], "/b.whl": [1, 2_000_000]}
    assert links.downloaded_twice(files) == ["/a.wasm", "/sw.js"]
    assert links.downloaded_twice(files, min_bytes=100_000) == ["/a.wasm"]


def test_per_file_counts_bodies_and_bytes_per_path():
    snap = {"requests": [("/a.wasm", 200, 10), ("/a.wasm?x=1", 200, 5), ("/b.js", 200, 3)]}
    assert links.per_file(snap) == {"/a.wasm": [2, 15], "/b.js": [1, 3]}


def test_the_profiles_are_the_issues():
    got = [(p.mbit_s, p.delay_ms) for p in links.LINK_PROFILES]
    assert got == [(None, 0.0), (50.0, 20.0), (20.0, 40.0)]


def test_link_rows_ratios_and_megabytes(res):
    rows = {r[:3]: r for r in links_report.link_rows(res)}
    assert list(rows) == [("unthrottled", "persistent", "cold"), ("unthrottled", "persistent", "repeat"),
                          ("unthrottled", "private", "cold"), ("20 Mbit/s + 40 ms", "persistent", "cold")]
    cold = dict(zip(links_report.HEADER, rows[("unthrottled", "persistent", "cold")]))
    assert cold["wasmvision ms"] == "1400" and cold["ort-web fp32 ms"] == "1000"
    assert cold["ours/fp32"] == "1.40x" and cold["ours/int8"] == "2.00x"
    assert (cold["MB sent: ours"], cold["fp32"], cold["int8"]) == ("13.1", "16.6", "7.1")
    slow = dict(zip(links_report.HEADER, rows[("20 Mbit/s + 40 ms", "persistent", "cold")]))
    assert slow["ours/fp32"] == "0.75x" and slow["ort-web int8 ms"] == "-" and slow["ours/int8"] == "-"
    priv = dict(zip(links_report.HEADER, rows[("unthrottled", "private", "cold")]))
    assert priv["MB sent: ours"] == "23.2"


def test_link_tables_in_the_console_and_the_readme_block(res):
    text = report.table(res)
    assert "Link profiles" in text and "median of 1-3 visits" in text
    assert "20 Mbit/s + 40 ms  persistent  cold" in text
    block = report.links_block(res)
    assert "| unthrottled | persistent | cold | 1400 | 1000 | 1.40x | 700 | 2.00x | 13.1 | 16.6 | 7.1 |" in block
    assert block.count("|---|---|---|") == 1 and block.startswith("Link profiles")
    assert "Link profiles" not in report.markdown_table(res)  # its own README block
    assert "`python3 build.py bench`" in block
    assert "`python benchmarks/run.py --only links`" in report.links_block({**res, "args": {"only": "links"}})
    assert links_report.links_text({}) == [] and report.links_block({"systems": {}}) == ""


def test_links_block_goes_between_its_own_markers(res, tmp_path):
    start, end = report.LINKS_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold bench\n{report.README_END}\n{start}\nold links\n{end}\ntail\n")
    assert report.write_readme(readme, report.links_block(res), report.LINKS_MARKERS)
    text = readme.read_text()
    assert "old links" not in text and "old bench" in text and text.endswith(f"{end}\ntail\n")
    assert text.index(start) < text.index("| unthrottled | persistent | cold |") < text.index(end)
    readme.write_text("no markers\n")
    assert not report.write_readme(readme, "x", report.LINKS_MARKERS) and readme.read_text() == "no markers\n"


def test_run_options_only_links_and_skip_links():
    import run
    a = run.parse(["--only", "links", "--link-repeats", "2", "--link-profiles", "unthrottled, 20"])
    assert a.skip_warm and a.skip_cold and a.skip_native and a.skip_phases and a.no_peak and a.no_planer
    assert not a.skip_links and a.link_repeats == 2 and a.link_profiles == ["unthrottled", "20"]
    assert sorted(a.skip_family) == sorted(report.FAMILIES)
    b = run.parse(["--skip-links", "--quick"])
    assert b.skip_links and b.link_repeats == 1 and not b.skip_warm
