"""The first photo after ready (web/worker/inference.js warmUp, models.js, protocol.js): a model loaded with nothing
waiting for it is warmed up, once the worker is idle, by one classify of a synthetic photo through the worker's own
path, which leaves no trace in results; a photo sent right after ready does not wait for it; with the numpy engine
there is no warm-up. Needs the built site and Chromium."""

from __future__ import annotations

import base64

import pytest

import browser_util as bu

TIMEOUT_MS = 240_000

RUN = """async (b64) => {
  const wv = await import("./wasmvision.mjs");
  const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: "image/png" });
  const clf = await wv.load();
  const first = await clf.classify(blob, { topK: 5 });
  const spansAtFirst = (await clf.stats()).phases.spans;
  await new Promise((r) => setTimeout(r, 3000));
  const spansIdle = (await clf.stats()).phases.spans;
  const second = await clf.classify(blob, { topK: 5 });
  const numpy = await wv.load({ engine: "numpy" });
  const spans = (await numpy.stats()).phases.spans;
  const third = await numpy.classify(blob, { topK: 5 });
  await numpy.dispose();
  await clf.dispose();
  return { spansAtFirst, spansIdle, spans, engines: [clf.engine, numpy.engine],
           results: [first, second, third].map((r) => r.top.map((p) => [p.index, p.probability])) };
}"""


@pytest.mark.browser
def test_a_model_load_warms_up_through_the_photo_path_and_results_are_unchanged(pw, dist_dir, chelsea):
    with bu.serve(dist_dir) as base:
        browser = bu.launch(pw)
        try:
            page, errors = bu.new_page(browser.new_context(), TIMEOUT_MS)
            page.goto(base + "manifest.json")  # a page of the site with no classifier of its own
            got = page.evaluate(RUN, base64.b64encode(chelsea.read_bytes()).decode())
            assert errors == [], errors
        finally:
            browser.close()
    assert got["engines"] == ["simd", "numpy"], got["engines"]
    at_first = {s["name"]: s for s in got["spansAtFirst"]}
    assert "warm_up" not in at_first, sorted(at_first)  # the photo sent right after ready did not wait for it
    idle = {s["name"]: s for s in got["spansIdle"]}
    warm = idle.get("warm_up")
    assert warm is not None and warm["end"] is not None, sorted(idle)
    assert warm["start"] >= idle["first_classify"]["end"]  # once the worker was idle
    # One warm-up: the numpy engine's load has none (its run would cost ~0.1 s and Python's own does not warm it).
    assert [s["name"] for s in got["spans"]].count("warm_up") == 1
    first, second, third = got["results"]
    assert first == second  # the warm-up left nothing behind in the plan's buffers
    assert [i for i, _ in first] == [i for i, _ in third]
    assert all(abs(p - q) <= 1e-4 for (_, p), (_, q) in zip(first, third))
