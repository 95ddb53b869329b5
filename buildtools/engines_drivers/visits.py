"""One visit of the public module in any engine, as its page sees it: when load() resolved (ready), the first result,
warm round trips, how the worker started (booted and made a memory snapshot, or restored one) and its start-up
phases. The engine tests assert on it (tests/engines) and the per-engine benchmark reports it
(benchmarks/bench/engines.py); the same JavaScript runs in every engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .driver import FILE_FROM_ARG, EngineDriver, Top, tops

# Times are performance.now() in the page (ms from its navigation start), so every engine is measured the same way
# and no driver's round trip is counted. `storeWaitMs`: how long to wait for the worker to report its snapshot
# stored (the write runs ~2 s after boot, off the first result's path); 0 waits not at all.
_VISIT = """async (moduleUrl, f, warm, storeWaitMs) => {
  const wv = await import(moduleUrl);
  const clf = await wv.load();
  const ready = performance.now();
  const file = (%s)(f);
  const first = await clf.classify(file, {topK: 5});
  const firstAt = performance.now();
  const warmMs = [];
  let stages = first.timings_ms ?? null;
  for (let i = 0; i < warm; i++) {
    const t0 = performance.now();
    stages = (await clf.classify(file, {topK: 5})).timings_ms ?? null;
    warmMs.push(performance.now() - t0);
  }
  let s = await clf.stats();
  const until = performance.now() + storeWaitMs;
  while (!s.timings.snapshot_store && s.timings.snapshot !== "restored" && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    s = await clf.stats();
  }
  await clf.dispose();
  return {ready, firstAt, first, warmMs, stages, timings: s.timings, phases: s.phases ?? null, origin: performance.timeOrigin};
}""" % FILE_FROM_ARG


@dataclass(frozen=True)
class Visit:
    ready_ms: float  # load() resolved, from the page's navigation start
    first_result_ms: float  # the first classify answered, same clock
    warm_ms: tuple[float, ...]  # classify round trips after the first (same photo)
    stages_ms: dict | None  # the worker's stage timings of the last classify (decode, preprocess, run, ...)
    top: list[Top]
    snapshot: str | None  # how the worker started: "restored", "made" (booted, snapshot made), "failed", None
    snapshot_store: str | None  # where the snapshot was read from or stored ("opfs", "indexeddb"), None: nowhere
    timings: dict  # the worker's boot timings
    phases: dict | None  # the worker's start-up phases (web/worker/phases.js), on the worker's clock
    page_origin: float  # the page's performance.timeOrigin (epoch ms): phases["origin"] minus it moves them here

    def span_ms(self, name: str) -> float | None:
        """How long the worker's start-up span ``name`` took (e.g. "python": the interpreter up with numpy and
        wasmvision imported, the part a restored snapshot replaces); None when it did not run."""
        for s in (self.phases or {}).get("spans", []):
            if s["name"] == name and s["end"] is not None:
                return s["end"] - s["start"]
        return None

    @property
    def warm_median_ms(self) -> float | None:
        ordered = sorted(self.warm_ms)
        return ordered[len(ordered) // 2] if ordered else None


def module_visit(driver: EngineDriver, page_url: str, module_url: str, photo: Path, warm: int = 3,
                 store_wait_s: float = 60) -> Visit:
    """Open ``page_url`` (a same-origin page without a classifier of its own), load the module from ``module_url``,
    classify ``photo`` 1 + ``warm`` times, wait up to ``store_wait_s`` for the snapshot to be stored, dispose."""
    driver.navigate(page_url)
    out = driver.call(_VISIT, module_url, driver.file_arg(photo), warm, store_wait_s * 1000)
    timings = out["timings"] or {}
    return Visit(ready_ms=out["ready"], first_result_ms=out["firstAt"], warm_ms=tuple(out["warmMs"]),
                 stages_ms=out["stages"],
                 top=tops(out["first"]), snapshot=timings.get("snapshot"),
                 snapshot_store=timings.get("snapshot_store"), timings=timings, phases=out["phases"], page_origin=out["origin"])
