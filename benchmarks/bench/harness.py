"""Puts the run together: inputs, servers, one Chromium for the warm rounds (+ the Wasm SIMD peak), the start-up phase
table when benchmarks/phases.py exists, fresh profiles for cold start, the link profiles, each engine's visits, then
native."""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from . import cold, engines, inputs, links, native, peak, warm, zoo
from .common import BENCH_DIR, CHROMIUM_FLAGS, log


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.dist = Path(args.dist).resolve()
        self.result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "loadavg_start": os.getloadavg()}, "notes": [], "systems": {},
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
        self.t0 = time.perf_counter()

    def note(self, msg):
        log(msg)
        self.result["notes"].append(msg)

    @staticmethod
    def kind_of(label):
        """Plan step label -> the stable layer kinds of Classifier.profile."""
        from wasmvision.plan import profile_kind
        return profile_kind(label)

    def prepare(self):
        a = self.args
        self.ort_dist = inputs.ensure_ort_web()
        self.model, model_src = inputs.find_model(a, self.work)
        self.image = inputs.find_image(a.image, self.work)
        self.bundle = inputs.find_bundle(self.dist)
        self.has_page = (self.dist / "index.html").exists()
        if not self.has_page:
            self.note(f"{self.dist}/index.html missing: wasmvision page runs skipped")
        if self.bundle is None:
            self.note(f"no .wvb in {self.dist}/models: wasmvision profile/native runs skipped")
        self.x, how = inputs.preprocessed_input(self.image, self.bundle)
        np.save(self.work / "input.npy", self.x)
        (self.work / "input.bin").write_bytes(np.ascontiguousarray(self.x.transpose(0, 3, 1, 2)).tobytes())
        import onnx_to_npz
        onnx_to_npz.convert(str(self.model), str(self.work / "peer.npz"))
        link = self.work / "model.onnx"
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(self.model.resolve())
        if self.image.parent != self.work:
            (self.work / "chelsea.png").write_bytes(self.image.read_bytes())
        self.preprocess_photos = inputs.preprocess_photos(self.work)
        self.families = [f for f in zoo.FAMILIES if f not in (a.skip_family or [])]
        for fam in self.families:
            zoo.ensure(fam, self.work)
        self.peak_wasm = None if a.no_peak else peak.compile_peak(self.work)
        self.planer_wheel = None if a.no_planer else inputs.ensure_planer(self.work)
        if self.planer_wheel is not None:
            try:
                inputs.planer_model(self.planer_wheel, self.model, self.work)
                shutil.copyfile(self.planer_wheel, self.work / self.planer_wheel.name)
            except Exception as exc:
                self.note(f"planer conversion failed: {exc}")
                self.planer_wheel = None
        self.result["inputs"] = {"onnx": str(self.model), "onnx_source": model_src, "image": str(self.image),
                                 "bundle": str(self.bundle) if self.bundle else None, "preprocess": how,
                                 "families": {f: "seeded random weights, benchmarks/bench/zoo.py" for f in self.families}}
        pyo = self.dist / "pyodide"
        self.pyodide_dir = pyo if (pyo / "pyodide.mjs").exists() else inputs.PYODIDE_FALLBACK
        lock = self.pyodide_dir / "pyodide-lock.json"
        self.pyodide_has_wv = lock.exists() and "wasmvision" in json.loads(lock.read_text()).get("packages", {})
        self.mounts = {"/wv/": str(self.dist), "/pages/": str(BENCH_DIR / "pages"), "/ort/": str(self.ort_dist),
                       "/work/": str(self.work), "/peers/": str(BENCH_DIR / "peers"), "/pyodide/": str(self.pyodide_dir)}

    def phases(self, playwright):
        """The start-up phase table, when benchmarks/phases.py (written separately) exists: its
        measure_phases(dist, browser, runs) gets the started sync Playwright (it opens fresh profiles itself);
        its markdown(result), when defined, becomes result["phases"]["table"]."""
        try:
            import phases
        except ImportError:
            return
        try:
            out = phases.measure_phases(self.dist, playwright, self.args.phase_runs)
            if isinstance(out, dict) and "table" not in out and hasattr(phases, "markdown"):
                out["table"] = phases.markdown(out)
            self.result["phases"] = out
        except Exception as exc:
            self.note(f"phases.measure_phases failed: {str(exc)[-400:]}")

    def run(self):
        from playwright.sync_api import sync_playwright

        from buildtools.server import Background
        a = self.args
        self.prepare()
        # csp=False: the benchmark's own pages (pages/*.html) run inline module scripts.
        with Background(mounts=self.mounts, csp=False, cache_control=a.cache_control) as plain, \
                Background(mounts=self.mounts, csp=False, isolate=True, cache_control=a.cache_control) as isolated, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, args=CHROMIUM_FLAGS)
            try:
                self.result["browser"] = browser.version
                if not a.skip_warm:
                    self.result["machine"]["loadavg_warm_start"] = os.getloadavg()
                    warm.measure(browser, plain, isolated, self)
                    self.result["machine"]["loadavg_warm_end"] = os.getloadavg()
            finally:
                browser.close()
            if not a.skip_phases:
                self.phases(p)
            if not a.skip_cold:
                cold.measure(p, plain, self)
            if not a.skip_links:
                links.measure(p, self)
        if not a.skip_engines:
            engines.measure(self)
        if not a.skip_native:
            native.measure(self)
        self.result["machine"]["loadavg_end"] = os.getloadavg()
        self.result["wall_s"] = round(time.perf_counter() - self.t0, 1)
        return self.result
