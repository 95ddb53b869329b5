"""wasmvision side-by-side benchmark (issue 4). A measurement command, not a test: nothing here asserts timings.

    python benchmarks/run.py --dist dist --out bench-results/bench.json

In one headless Chromium session (Debian /usr/bin/chromium, Python playwright), after warm-up, in interleaved rounds:
  * wasmvision in its own page (dist/index.html, Web Worker): window.wasmvision.classify(blob) on chelsea.png;
  * onnxruntime-web (npm, installed into benchmarks/.peers by this script only) wasm, 1 thread, and 2 threads on a
    cross-origin-isolated page, same ONNX model and the same preprocessed input;
  * the plain-numpy peer (benchmarks/peers/plain_numpy.py: NCHW im2col + @) in the same Pyodide as the product,
    plus wasmvision's per-layer-kind profile (Plan.profile) in that Pyodide;
then cold start (empty HTTP cache = fresh browser context; warm HTTP cache = reload in the same context) with the
bytes each page downloaded (counted by our server), and natively wasmvision (CPython) vs onnxruntime CPU 1 thread.
Prints one table (median, p90, ratio to onnxruntime-web 1 thread from the same run) and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peers"))
sys.path.insert(0, str(ROOT / "py_pkg"))

import numpy as np  # noqa: E402

from server import Server  # noqa: E402

ORT_WEB_VERSION = "1.30.0"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
PYODIDE_FALLBACK = ROOT / ".cache" / "pyodide-0.27.7"  # the build's unpacked Pyodide, if dist/ lacks it


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def stats(xs):
    xs = sorted(float(x) for x in xs)
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 3), "p90": round(xs[min(len(xs) - 1, int(0.9 * len(xs)))], 3),
            "min": round(xs[0], 3), "n": len(xs)}


# ------------------------------------------------------------------------------------------------ inputs
def ensure_ort_web():
    peers = HERE / ".peers"
    dist = peers / "node_modules" / "onnxruntime-web" / "dist"
    pkg = peers / "node_modules" / "onnxruntime-web" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text())["version"] == ORT_WEB_VERSION:
        return dist
    peers.mkdir(exist_ok=True)
    if not (peers / "package.json").exists():
        (peers / "package.json").write_text('{"name": "wasmvision-bench-peers", "private": true}\n')
    log(f"installing onnxruntime-web@{ORT_WEB_VERSION} into {peers} (benchmark only)")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"onnxruntime-web@{ORT_WEB_VERSION}"],
                   cwd=peers, check=True, stdout=subprocess.DEVNULL)
    return dist


PLANER_VERSION = "0.35"


def ensure_planer(work):
    """PyPI planer (pure numpy CNN inference) as a second peer: the wheel (benchmark only) and the model in its
    own .pla format, converted natively with its onnx2pla (needs `onnx`). Returns the wheel path or None."""
    peers = HERE / ".peers"
    wheels = sorted(peers.glob(f"planer-{PLANER_VERSION}-*.whl"))
    if not wheels:
        r = subprocess.run([sys.executable, "-m", "pip", "download", f"planer=={PLANER_VERSION}", "--no-deps",
                            "-d", str(peers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wheels = sorted(peers.glob(f"planer-{PLANER_VERSION}-*.whl"))
        if not wheels:
            log(f"planer not available: {r.stderr.strip()[-300:]}")
            return None
    return wheels[0]


def planer_model(wheel, onnx_path, work):
    import shutil
    src = work / "planer_model.onnx"
    shutil.copyfile(onnx_path, src)
    sys.path.insert(0, str(wheel))  # a pure-Python wheel imports straight from the zip
    import planer
    planer.onnx2pla(str(src))
    return work / "planer_model.pla"


def find_image(name, work):
    for p in (ROOT / "build" / "photos" / name, work / name):
        if p.exists():
            return p
    # scikit-image wheel downloaded earlier (the build's source of photos)
    for whl in sorted((ROOT / ".cache" / "downloads").glob("scikit_image*.whl")):
        with zipfile.ZipFile(whl) as z:
            member = f"skimage/data/{name}"
            if member in z.namelist():
                (work / name).write_bytes(z.read(member))
                return work / name
    raise SystemExit(f"cannot find {name}: run the build first (build/photos/)")


def find_model(args, work):
    if args.model:
        return Path(args.model), "given"
    real = ROOT / "build" / "models" / "mobilenet_v2.onnx"
    if real.exists():
        return real, "build"
    dev = work / "dev_mobilenet_v2.onnx"
    if not dev.exists():
        import devmodel
        devmodel.build(str(dev))
    log("WARNING: build/models/mobilenet_v2.onnx missing; using a random-weight MobileNetV2 (speed only)")
    return dev, "random-weights dev model"


def find_bundle(dist):
    models = dist / "models"
    if (models / "mobilenet_v2.wvb").exists():
        return models / "mobilenet_v2.wvb"
    found = sorted(models.glob("*.wvb")) if models.exists() else []
    return found[0] if found else None


def preprocessed_input(image_path, bundle_path):
    """(1, 224, 224, 3) NHWC float32 from wasmvision's own preprocessing (what the page feeds the network)."""
    from PIL import Image
    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    spec = None
    if bundle_path is not None:
        from wasmvision import bundle as wvb
        spec = wvb.load(bundle_path).preprocess
    try:
        from wasmvision.preprocess import preprocess
        x = preprocess(rgb, spec, (224, 224))
        how = "wasmvision.preprocess"
    except ImportError:
        img = Image.fromarray(rgb)
        w, h = img.size
        s = 256 / min(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
        w, h = img.size
        left, top = (w - 224) // 2, (h - 224) // 2
        x = np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32) / 255
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        how = "PIL fallback"
    return np.ascontiguousarray(x, np.float32)[None], how


# ------------------------------------------------------------------------------------------------ browser
WV_RUN = """async ([n, url]) => {
  if (!window.__blob) window.__blob = await (await fetch(url)).blob();
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await window.wasmvision.classify(window.__blob, {topK: 5});
    out.push({wall: performance.now() - t0, t: r.timings_ms, top: r.top.map(p => [p.index, p.probability])});
  }
  return out;
}"""

WV_FIRST = """async (url) => {
  await window.wasmvision.ready;
  const tReady = performance.now();
  const blob = await (await fetch(url)).blob();
  const r = await window.wasmvision.classify(blob, {topK: 5});
  const st = window.wasmvision.stats;  // not part of the contract: the page's boot split when it exposes one
  const boot = st && typeof st === "object" && st.bootTimings ? st.bootTimings : null;
  return {ready_ms: tReady, first_result_ms: performance.now(), top: r.top.map(p => [p.index, p.probability]),
          model: r.model, timings_ms: r.timings_ms, boot_ms: boot};
}"""

# How many memory snapshots the page keeps in IndexedDB (web/worker.js): 0 until the first visit stored one.
SNAPSHOT_STORED = """async () => {
  if (typeof indexedDB === "undefined") return 0;
  const names = (await indexedDB.databases()).map((d) => d.name);
  if (!names.includes("wasmvision-snapshot")) return 0;
  return await new Promise((res) => {
    const r = indexedDB.open("wasmvision-snapshot");
    r.onsuccess = () => { const db = r.result;
      if (!db.objectStoreNames.contains("snapshots")) { db.close(); return res(0); }
      const c = db.transaction("snapshots").objectStore("snapshots").count();
      c.onsuccess = () => { db.close(); res(c.result); }; c.onerror = () => { db.close(); res(0); }; };
    r.onerror = () => res(0);
  });
}"""

PEER_SETUP = """
import sys, json, time, io
import numpy as np
sys.path.insert(0, "/bench")
from plain_numpy import PlainNumpyNet
_peer = PlainNumpyNet("/bench/peer.npz")
_x_nhwc = np.load("/bench/input.npy")                       # (1, 224, 224, 3)
_x_nchw = np.ascontiguousarray(_x_nhwc.transpose(0, 3, 1, 2))
_peer_logits = _peer.run(_x_nchw)
def _peer_run(n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); _peer.run(_x_nchw); out.append((time.perf_counter() - t0) * 1e3)
    return json.dumps(out)
json.dumps({"top5": [int(i) for i in np.argsort(-_peer_logits[0])[:5]]})
"""

PLANER_SETUP = """
import micropip, json, time, io, contextlib
await micropip.install("WHEEL_URL", deps=False)
with contextlib.redirect_stdout(io.StringIO()):
    import planer
    import planer.util


class _SyncPool:
    # planer 0.35 fills its im2col buffer from a ThreadPoolExecutor; Pyodide cannot start threads
    # ("RuntimeError: can't start new thread"), so the same calls run inline.
    def __init__(self, *a, **k):
        pass

    def submit(self, fn, *a, **k):
        fn(*a, **k)

    def shutdown(self, wait=True):
        pass


planer.util.ThreadPoolExecutor = _SyncPool
_planer = planer.read_net("/bench/planer_model")
_planer_logits = np.asarray(_planer(_x_nchw))
def _planer_run(n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); _planer(_x_nchw); out.append((time.perf_counter() - t0) * 1e3)
    return json.dumps(out)
json.dumps({"top5": [int(i) for i in np.argsort(-_planer_logits.reshape(-1))[:5]],
            "max_abs_diff_vs_plain_peer": float(np.abs(_planer_logits.reshape(-1) - _peer_logits.reshape(-1)).max())})
"""

PROFILE_SETUP = """
import json, time
import numpy as np
import wasmvision
from wasmvision import bundle as _wvb
from wasmvision.plan import Executor
_b = _wvb.load("/bench/model.wvb")
_ex = Executor(_b)
_plan = _ex.plan(_x_nhwc.shape)
_wv_logits = _plan.run(_x_nhwc)[0]
def _wv_profile(n):
    # alternate one instrumented run (per-step times) with one plain run, so both see the same load
    labels, t = {}, []
    for _ in range(n):
        for k, v in _plan.profile(_x_nhwc, repeat=1).items():
            labels.setdefault(k, []).append(v)
        t0 = time.perf_counter(); _plan.run(_x_nhwc); t.append((time.perf_counter() - t0) * 1e3)
    return json.dumps({"labels": labels, "run_ms": t})
json.dumps({"top5": [int(i) for i in np.argsort(-_wv_logits.reshape(-1))[:5]],
            "version": getattr(wasmvision, "__version__", None)})
"""


def kind_of(label):
    """Plan step label -> the stable layer kinds of Classifier.profile (wasmvision.plan.profile_kind)."""
    from wasmvision.plan import profile_kind
    return profile_kind(label)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.dist = Path(args.dist).resolve()
        self.result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "loadavg_start": os.getloadavg()}, "notes": [], "systems": {}}

    def note(self, msg):
        log(msg)
        self.result["notes"].append(msg)

    # -------------------------------------------------------------------------------------- setup
    def prepare(self):
        a = self.args
        self.ort_dist = ensure_ort_web()
        self.model, model_src = find_model(a, self.work)
        self.image = find_image(a.image, self.work)
        self.bundle = find_bundle(self.dist)
        self.has_page = (self.dist / "index.html").exists()
        if not self.has_page:
            self.note(f"{self.dist}/index.html missing: wasmvision page runs skipped")
        if self.bundle is None:
            self.note(f"no .wvb in {self.dist}/models: wasmvision profile/native runs skipped")
        x, how = preprocessed_input(self.image, self.bundle)
        self.x = x
        np.save(self.work / "input.npy", x)
        (self.work / "input.bin").write_bytes(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).tobytes())
        import onnx_to_npz
        onnx_to_npz.convert(str(self.model), str(self.work / "peer.npz"))
        link = self.work / "model.onnx"
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(self.model.resolve())
        (self.work / "chelsea.png").write_bytes(self.image.read_bytes()) if self.image.parent != self.work else None
        self.planer_wheel = None if self.args.no_planer else ensure_planer(self.work)
        if self.planer_wheel is not None:
            try:
                planer_model(self.planer_wheel, self.model, self.work)
                import shutil
                shutil.copyfile(self.planer_wheel, self.work / self.planer_wheel.name)
            except Exception as exc:
                self.note(f"planer conversion failed: {exc}")
                self.planer_wheel = None
        self.result["inputs"] = {"onnx": str(self.model), "onnx_source": model_src, "image": str(self.image),
                                 "bundle": str(self.bundle) if self.bundle else None, "preprocess": how}
        pyo = self.dist / "pyodide"
        self.pyodide_dir = pyo if (pyo / "pyodide.mjs").exists() else PYODIDE_FALLBACK
        self.pyodide_has_wv = False
        lock = self.pyodide_dir / "pyodide-lock.json"
        if lock.exists():
            self.pyodide_has_wv = "wasmvision" in json.loads(lock.read_text()).get("packages", {})
        self.mounts = {"/wv/": str(self.dist), "/pages/": str(HERE / "pages"), "/ort/": str(self.ort_dist),
                       "/work/": str(self.work), "/peers/": str(HERE / "peers"), "/pyodide/": str(self.pyodide_dir)}

    # -------------------------------------------------------------------------------------- pages
    def ort_url(self, srv, threads):
        return f"{srv.url}/pages/ort.html?threads={threads}&model=/work/model.onnx&input=/work/input.bin"

    def open_ort(self, ctx, srv, threads):
        page = ctx.new_page()
        page.goto(self.ort_url(srv, threads))
        page.wait_for_function("() => window.bench")
        info = page.evaluate("() => window.bench.ready")
        return page, info

    def open_wv(self, ctx, srv):
        page = ctx.new_page()
        page.goto(f"{srv.url}/wv/index.html")
        page.wait_for_function("() => window.wasmvision")
        info = page.evaluate(WV_FIRST, "/work/chelsea.png")
        return page, info

    def open_pyodide(self, ctx, srv):
        page = ctx.new_page()
        page.goto(f"{srv.url}/pages/pyodide.html?pyodide=/pyodide/")
        page.wait_for_function("() => window.bench")
        page.evaluate("() => window.bench.ready")
        for url, path in [("/work/peer.npz", "/bench/peer.npz"), ("/work/input.npy", "/bench/input.npy"),
                          ("/peers/plain_numpy.py", "/bench/plain_numpy.py")]:
            page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", [url, path])
        info = {"peer": json.loads(page.evaluate("(c) => window.bench.runPython(c)", PEER_SETUP))}
        if self.planer_wheel is not None:
            try:
                page.evaluate("([u, p]) => window.bench.fetchTo(u, p)", ["/work/planer_model.pla", "/bench/planer_model.pla"])
                page.evaluate("() => window.py.loadPackage('micropip', {messageCallback: () => {}})")
                url = f"{srv.url}/work/{self.planer_wheel.name}"
                info["planer"] = json.loads(page.evaluate("(c) => window.bench.runPython(c)",
                                                          PLANER_SETUP.replace("WHEEL_URL", url)))
            except Exception as exc:
                self.note(f"planer in Pyodide failed: {str(exc)[-600:]}")
        if self.bundle is not None and self.pyodide_has_wv:
            page.evaluate("([u, p]) => window.bench.fetchTo(u, p)",
                          ["/wv/models/" + self.bundle.name, "/bench/model.wvb"])
            page.evaluate("() => window.py.loadPackage('wasmvision', {messageCallback: () => {}})")
            info["wasmvision"] = json.loads(page.evaluate("(c) => window.bench.runPython(c)", PROFILE_SETUP))
        elif self.bundle is not None:
            self.note("dist/pyodide lock does not list wasmvision: in-Pyodide profile skipped")
        return page, info

    # -------------------------------------------------------------------------------------- warm
    def warm(self, browser, plain, isolated):
        a = self.args
        ctx = browser.new_context()
        pages, info = {}, {}
        if self.has_page:
            try:
                pages["wasmvision"], info["wasmvision"] = self.open_wv(ctx, plain)
            except Exception as exc:  # the page is written concurrently; report, keep measuring the peers
                self.note(f"wasmvision page failed: {exc}")
        pages["ort-web 1 thread"], info["ort-web 1 thread"] = self.open_ort(ctx, plain, 1)
        if not a.no_threads:
            pages["ort-web 2 threads"], info["ort-web 2 threads"] = self.open_ort(ctx, isolated, 2)
            if not info["ort-web 2 threads"].get("crossOriginIsolated"):
                self.note("2-thread page is not cross-origin isolated")
        pages["pyodide"], info["pyodide"] = self.open_pyodide(ctx, plain)
        self.result["page_info"] = info
        runners = {}
        if "wasmvision" in pages:
            runners["wasmvision (page)"] = lambda n: pages["wasmvision"].evaluate(WV_RUN, [n, "/work/chelsea.png"])
        runners["ort-web 1 thread"] = lambda n: pages["ort-web 1 thread"].evaluate("(n) => window.bench.run(n)", n)
        if "ort-web 2 threads" in pages:
            runners["ort-web 2 threads"] = lambda n: pages["ort-web 2 threads"].evaluate("(n) => window.bench.run(n)", n)
        runners["plain numpy (Pyodide)"] = lambda n: json.loads(pages["pyodide"].evaluate(
            "(c) => window.bench.runPython(c)", f"_peer_run({n})"))
        if "planer" in info["pyodide"]:
            runners["planer (Pyodide)"] = lambda n: json.loads(pages["pyodide"].evaluate(
                "(c) => window.bench.runPython(c)", f"_planer_run({n})"))
        if "wasmvision" in info["pyodide"]:
            runners["wasmvision profile (Pyodide)"] = lambda n: json.loads(pages["pyodide"].evaluate(
                "(c) => window.bench.runPython(c)", f"_wv_profile({n})"))
        page_of = {"wasmvision (page)": "wasmvision", "ort-web 1 thread": "ort-web 1 thread",
                   "ort-web 2 threads": "ort-web 2 threads", "plain numpy (Pyodide)": "pyodide",
                   "wasmvision profile (Pyodide)": "pyodide", "planer (Pyodide)": "pyodide"}
        slow = {"plain numpy (Pyodide)": a.peer_runs, "planer (Pyodide)": a.planer_runs}
        per = {k: max(1, slow.get(k, a.runs) // a.rounds) for k in runners}
        for k, fn in runners.items():  # warm-up
            pages[page_of[k]].bring_to_front()
            fn(1 if k in slow else a.warmup)
        samples = {k: [] for k in runners}
        names = list(runners)
        for r in range(a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate so no system always goes first
            for k in order:
                pages[page_of[k]].bring_to_front()
                samples[k].append(runners[k](per[k]))
            log(f"round {r + 1}/{a.rounds} done")
        sysres = self.result["systems"]
        if "wasmvision (page)" in samples:
            runs = [x for chunk in samples["wasmvision (page)"] for x in chunk]
            stages = {}
            for x in runs:
                for s, v in (x["t"] or {}).items():
                    stages.setdefault(s, []).append(v)
            tot = stages.get("total") or [x["wall"] for x in runs]
            sysres["wasmvision (page)"] = {"latency_ms": stats([x["wall"] for x in runs]),
                                           "classify_total_ms": stats(tot),
                                           "inference_ms": stats(stages.get("inference", [])),
                                           "stages_ms": {s: stats(v) for s, v in stages.items()},
                                           "top5": runs[-1]["top"]}
        for k in ("ort-web 1 thread", "ort-web 2 threads", "plain numpy (Pyodide)", "planer (Pyodide)"):
            if k in samples:
                sysres[k] = {"latency_ms": stats([x for chunk in samples[k] for x in chunk])}
        if "wasmvision profile (Pyodide)" in samples:
            chunks = samples["wasmvision profile (Pyodide)"]
            run_ms = [x for c in chunks for x in c["run_ms"]]
            labels = {}
            for c in chunks:
                for lab, ms in c["labels"].items():
                    labels.setdefault(lab, []).extend(ms)
            lab_med = {lab: statistics.median(v) for lab, v in labels.items()}
            kinds = {}
            for lab, ms in lab_med.items():
                kinds[kind_of(lab)] = kinds.get(kind_of(lab), 0.0) + ms
            run_med = statistics.median(run_ms)
            # plan.run minus the per-step medians: the Python loop, the input copy and the output copy
            kinds["overhead (run - sum of steps)"] = run_med - sum(lab_med.values())
            sysres["wasmvision graph run (Pyodide, main thread)"] = {"latency_ms": stats(run_ms)}
            self.result["profile_ms"] = {"by_kind": {k: round(v, 3) for k, v in kinds.items()},
                                         "by_label": {k: round(v, 3) for k, v in lab_med.items()},
                                         "graph_run_median_ms": round(run_med, 3)}
        ctx.close()

    # -------------------------------------------------------------------------------------- cold
    def cold(self, pw, plain):
        a = self.args
        out = {}
        targets = [("ort-web 1 thread", lambda ctx: self.open_ort(ctx, plain, 1))]
        if self.has_page:
            targets.insert(0, ("wasmvision", lambda ctx: self.open_wv(ctx, plain)))
        for name, opener in targets:
            empty, warm = [], []
            for _ in range(a.cold_repeats):
                # A new profile directory = a browser with an empty (disk) HTTP cache, like a first visit; a second
                # page in the same profile is the repeat visit (disk cache and V8's compiled-Wasm cache warm).
                # Incognito contexts are not used: their memory-only cache drops 14 MB files.
                with tempfile.TemporaryDirectory(prefix="wv-bench-profile-") as prof:
                    ctx = pw.chromium.launch_persistent_context(prof, executable_path=a.chromium,
                                                                args=CHROMIUM_FLAGS, headless=True)
                    try:
                        plain.counter.reset()
                        t0 = time.perf_counter()
                        page, info = opener(ctx)
                        empty.append(self._cold_record(info, (time.perf_counter() - t0) * 1e3, plain))
                        if name == "wasmvision":
                            # A visitor stays on the page after the first result: the worker stores its memory
                            # snapshot for the next visit ~2 s after boot. Wait for it (at most 15 s).
                            deadline = time.time() + 15
                            while not page.evaluate(SNAPSHOT_STORED) and time.time() < deadline:
                                time.sleep(0.25)
                            empty[-1]["snapshot_stored"] = bool(page.evaluate(SNAPSHOT_STORED))
                        page.close()
                        time.sleep(1.0)  # let the cache writes and code-cache bookkeeping settle
                        plain.counter.reset()
                        t0 = time.perf_counter()
                        page, info = opener(ctx)
                        warm.append(self._cold_record(info, (time.perf_counter() - t0) * 1e3, plain))
                    except Exception as exc:
                        self.note(f"cold start {name} failed: {exc}")
                    finally:
                        ctx.close()
            out[name] = {"empty_cache": self._cold_summary(empty), "warm_cache": self._cold_summary(warm)}
            log(f"cold {name}: {(out[name]['empty_cache'].get('first_result_ms') or {}).get('median')} / "
                f"{(out[name]['warm_cache'].get('first_result_ms') or {}).get('median')} ms")
        self.result["cold_start"] = out
        self.result["cold_start_method"] = (
            "first_result_ms = performance.now() in the page when the first result arrives (from navigation start); "
            "wasmvision: ready + fetch chelsea.png + classify; ort-web: fetch model+input, create session, first run. "
            "empty cache: a fresh browser profile; warm cache: a second page in the same profile, opened after the "
            "first page stored its Pyodide memory snapshot (waits at most 15 s; a visitor reads the result meanwhile). "
            "Server Cache-Control: "
            f"{a.cache_control!r}. Bytes: response bodies our server sent (cache hits never reach it); "
            "the benchmark's own inputs (the photo for wasmvision, the preprocessed tensor for ort-web) are counted "
            "separately; the ONNX model ort-web loads counts as its page's bytes.")

    @staticmethod
    def _cold_record(info, wall, srv):
        snap = srv.counter.snapshot()
        own = sum(n for p, _, n in snap["requests"] if p.startswith(("/work/chelsea", "/work/input")))
        return {"first_result_ms": info.get("first_result_ms"), "harness_wall_ms": wall,
                "bytes_total": snap["bytes"], "bytes_page": snap["bytes"] - own, "bytes_bench_inputs": own,
                "requests": len(snap["requests"]), "info": {k: v for k, v in info.items() if k != "top"}}

    @staticmethod
    def _cold_summary(recs):
        if not recs:
            return {}
        return {"first_result_ms": stats([r["first_result_ms"] for r in recs]),
                "bytes_total": recs[-1]["bytes_total"], "bytes_page": recs[-1]["bytes_page"],
                "bytes_bench_inputs": recs[-1]["bytes_bench_inputs"],
                "requests": recs[-1]["requests"], "runs": recs}

    # -------------------------------------------------------------------------------------- native
    def native(self):
        a = self.args
        import onnxruntime as ort
        import plain_numpy
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(self.model), so, providers=["CPUExecutionProvider"])
        xin = np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        feed = {sess.get_inputs()[0].name: xin}
        runners = {"onnxruntime native CPU 1 thread": lambda: sess.run(None, feed)}
        peer = plain_numpy.PlainNumpyNet(str(self.work / "peer.npz"))
        runners["plain numpy native"] = lambda: peer.run(xin)
        if self.bundle is not None:
            try:
                import wasmvision
                clf = wasmvision.load(str(self.bundle))
                runners["wasmvision native (clf.run)"] = lambda: clf.run(self.x)
            except Exception as exc:
                self.note(f"native wasmvision failed: {exc}")
        samples = {k: [] for k in runners}
        for fn in runners.values():
            for _ in range(3):
                fn()
        per = max(1, a.native_runs // a.rounds)
        for r in range(a.rounds):
            for k, fn in runners.items():
                for _ in range(per if "plain" not in k else max(1, per // 4)):
                    t0 = time.perf_counter()
                    fn()
                    samples[k].append((time.perf_counter() - t0) * 1e3)
        self.result["native"] = {k: stats(v) for k, v in samples.items()}
        self.result["native_numpy"] = np.__version__

    # -------------------------------------------------------------------------------------- main
    def run(self):
        from playwright.sync_api import sync_playwright
        a = self.args
        self.prepare()
        with Server(self.mounts, cache_control=a.cache_control) as plain, \
                Server(self.mounts, isolated=True, cache_control=a.cache_control) as isolated, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, args=CHROMIUM_FLAGS)
            try:
                self.result["browser"] = browser.version
                if not a.skip_warm:
                    self.result["machine"]["loadavg_warm_start"] = os.getloadavg()
                    self.warm(browser, plain, isolated)
                    self.result["machine"]["loadavg_warm_end"] = os.getloadavg()
            finally:
                browser.close()
            if not a.skip_cold:
                self.cold(p, plain)
        if not a.skip_native:
            self.native()
        self.result["machine"]["loadavg_end"] = os.getloadavg()
        return self.result


# ------------------------------------------------------------------------------------------------ report
def table(res):
    rows = []
    base = (res["systems"].get("ort-web 1 thread") or {}).get("latency_ms")
    b = base["median"] if base else None

    def add(name, s, extra=""):
        if not s:
            return
        ratio = f"{s['median'] / b:.2f}x" if b else "-"
        rows.append((name, f"{s['median']:.1f}", f"{s['p90']:.1f}", ratio, extra))

    for k, v in res["systems"].items():
        add(f"{k} warm", v["latency_ms"], f"n={v['latency_ms']['n']}")
        if "inference_ms" in v and v["inference_ms"]:
            add(f"{k} inference stage", v["inference_ms"])
            st = v.get("stages_ms", {})
            rows.append(("  stages (median ms)", "", "", "", ", ".join(f"{s}={x['median']:.1f}" for s, x in st.items() if x)))
    for k, v in (res.get("cold_start") or {}).items():
        for mode in ("empty_cache", "warm_cache"):
            c = v.get(mode) or {}
            if c.get("first_result_ms"):
                s = c["first_result_ms"]
                base_c = (((res["cold_start"].get("ort-web 1 thread") or {}).get(mode) or {}).get("first_result_ms") or {})
                ratio = f"{s['median'] / base_c['median']:.2f}x" if base_c else "-"
                rows.append((f"{k} first result ({mode.replace('_', ' ')})", f"{s['median']:.0f}", f"{s['p90']:.0f}",
                             ratio, f"{c['bytes_page'] / 1e6:.2f} MB page + {c['bytes_bench_inputs'] / 1e6:.2f} MB inputs, "
                                    f"{c['requests']} requests"))
    nat = res.get("native") or {}
    nb = (nat.get("onnxruntime native CPU 1 thread") or {}).get("median")
    for k, s in nat.items():
        rows.append((k, f"{s['median']:.1f}", f"{s['p90']:.1f}", f"{s['median'] / nb:.2f}x ort-native" if nb else "-", ""))
    prof = res.get("profile_ms")
    w = [max(len(r[i]) for r in rows + [("system", "median ms", "p90 ms", "vs ort-web 1t", "notes")]) for i in range(5)]
    lines = []
    for r in [("system", "median ms", "p90 ms", "vs ort-web 1t", "notes")] + rows:
        lines.append("  ".join(c.ljust(w[i]) if i in (0, 4) else c.rjust(w[i]) for i, c in enumerate(r)))
    if prof:
        lines.append("wasmvision per-layer-kind profile in Pyodide (ms per run): " +
                     ", ".join(f"{k}={v:.1f}" for k, v in sorted(prof["by_kind"].items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


README_START, README_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def markdown_table(res):
    """The run as a Markdown table for the README: median, p90, ratio to onnxruntime-web 1 thread (same run)."""
    systems = res.get("systems") or {}
    base = ((systems.get("ort-web 1 thread") or {}).get("latency_ms") or {}).get("median")
    rows = []

    def ratio(m, b):
        return f"{m / b:.2f}x" if b else "-"

    names = {"wasmvision (page)": "wasmvision, page (worker round trip, `classify(blob)`)",
             "ort-web 1 thread": "onnxruntime-web, wasm, 1 thread",
             "ort-web 2 threads": "onnxruntime-web, wasm, 2 threads (cross-origin isolated)",
             "plain numpy (Pyodide)": "plain-numpy peer (NCHW im2col + `@`), same Pyodide",
             "planer (Pyodide)": "PyPI planer, same Pyodide",
             "wasmvision graph run (Pyodide, main thread)": "wasmvision graph only (`Plan.run`), same Pyodide"}
    for k, v in systems.items():
        s = v.get("latency_ms")
        if s:
            rows.append((f"warm: {names.get(k, k)}", s["median"], s["p90"], ratio(s["median"], base)))
        if v.get("inference_ms"):
            s = v["inference_ms"]
            rows.append(("warm: wasmvision, its inference stage", s["median"], s["p90"], ratio(s["median"], base)))
    cold = res.get("cold_start") or {}
    for mode, what in (("empty_cache", "first result, empty cache"), ("warm_cache", "first result, repeat visit")):
        b = (((cold.get("ort-web 1 thread") or {}).get(mode) or {}).get("first_result_ms") or {}).get("median")
        for k, v in cold.items():
            c = (v.get(mode) or {})
            s = c.get("first_result_ms")
            if s:
                mbytes = f", {c['bytes_page'] / 1e6:.1f} MB downloaded" if c.get("bytes_page") is not None else ""
                rows.append((f"{what}: {k}{mbytes}", s["median"], s["p90"], ratio(s["median"], b)))
    nat = res.get("native") or {}
    nb = (nat.get("onnxruntime native CPU 1 thread") or {}).get("median")
    for k, s in nat.items():
        rows.append((f"native: {k}", s["median"], s["p90"], f"{ratio(s['median'], nb)} of onnxruntime native"))
    lines = ["| system | median ms | p90 ms | vs onnxruntime-web 1 thread |", "|---|---:|---:|---:|"]
    for name, med, p90, r in rows:
        lines.append(f"| {name} | {med:.1f} | {p90:.1f} | {r} |")
    lines += [""] + target_lines(res)
    prof = (res.get("profile_ms") or {}).get("by_kind")
    if prof:
        lines.append("")
        lines.append("wasmvision per-layer-kind profile (ms per run, Pyodide): " +
                     ", ".join(f"{k} {v:.1f}" for k, v in sorted(prof.items(), key=lambda kv: -kv[1])) + ".")
    m = res.get("machine") or {}
    load = m.get("loadavg_start")
    lines.append("")
    lines.append(f"One run of `python3 build.py bench`, {res.get('started', '?')}, {res.get('browser', 'Chromium')} "
                 f"headless, {m.get('cpus', '?')} shared cores"
                 + (f", load average {load[0]:.1f} at the start" if load else "") + ".")
    return "\n".join(lines)


def target_lines(res):
    """Issue 4's targets, computed from this run only."""
    systems, cold = res.get("systems") or {}, res.get("cold_start") or {}

    def med(d, *keys):
        for k in keys:
            d = (d or {}).get(k)
        return d

    ort = med(systems, "ort-web 1 thread", "latency_ms", "median")
    inf = med(systems, "wasmvision (page)", "inference_ms", "median")
    graph = med(systems, "wasmvision graph run (Pyodide, main thread)", "latency_ms", "median")
    peer = med(systems, "plain numpy (Pyodide)", "latency_ms", "median")
    cold_wv = med(cold, "wasmvision", "empty_cache", "first_result_ms", "median")
    cold_ort = med(cold, "ort-web 1 thread", "empty_cache", "first_result_ms", "median")
    rep = med(cold, "wasmvision", "warm_cache", "first_result_ms", "median")
    rows = ["| target (issue 4) | this run | met |", "|---|---|---|"]
    if ort and inf:
        rows.append(f"| warm latency <= 3.0x onnxruntime-web 1 thread | {inf / ort:.2f}x (inference stage)"
                    f"{f', graph only {graph / ort:.2f}x' if graph else ''} | {'yes' if inf / ort <= 3.0 else 'no'} |")
    if peer and graph:
        rows.append(f"| >= 10x faster than the plain-numpy peer, same Pyodide | {peer / graph:.2f}x (graph vs peer) | "
                    f"{'yes' if peer / graph >= 10 else 'no'} |")
    if cold_wv and cold_ort:
        rows.append(f"| first result, empty cache <= 2.0x onnxruntime-web | {cold_wv / cold_ort:.2f}x "
                    f"({cold_wv:.0f} vs {cold_ort:.0f} ms) | {'yes' if cold_wv / cold_ort <= 2.0 else 'no'} |")
    if rep:
        rows.append(f"| first result, repeat visit <= 1 s | {rep:.0f} ms | {'yes' if rep <= 1000 else 'no'} |")
    model = med(res, "page_info", "wasmvision", "model") or {}
    if model.get("key"):
        rows.append("")
        rows.append(f"The page ran its default model `{model['key']}` (weights stored as in that bundle, computed in "
                    "float32); onnxruntime-web ran the float32 ONNX model.")
    return rows


def write_readme(readme: Path, block: str) -> bool:
    """Replace the text between the bench-table markers; False (and a note) when the markers are missing."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        print(f"note: {readme} has no {README_START} ... {README_END} block; table not written")
        return False
    new = text[:start + len(README_START)] + "\n" + block.strip() + "\n" + text[end:]
    readme.write_text(new, encoding="utf-8")
    print(f"updated the benchmark table in {readme}")
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"))
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "bench.json"))
    ap.add_argument("--work", default=str(ROOT / "bench-results" / "work"), help="scratch folder for inputs")
    ap.add_argument("--model", help="ONNX model (default build/models/mobilenet_v2.onnx)")
    ap.add_argument("--image", default="chelsea.png")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--runs", type=int, default=60, help="warm runs per browser system (split over rounds)")
    ap.add_argument("--peer-runs", type=int, default=12, help="runs of the slow plain-numpy peer")
    ap.add_argument("--planer-runs", type=int, default=6, help="runs of PyPI planer in Pyodide")
    ap.add_argument("--no-planer", action="store_true", help="skip the PyPI planer peer")
    ap.add_argument("--native-runs", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--cache-control", default="public, max-age=3600",
                    help="Cache-Control header of the benchmark server (repeat-visit measurements depend on it)")
    ap.add_argument("--no-threads", action="store_true", help="skip the 2-thread onnxruntime-web page")
    ap.add_argument("--skip-warm", action="store_true")
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--skip-native", action="store_true")
    ap.add_argument("--readme", type=Path, default=None,
                    help="with --write: the README whose bench-table block gets the Markdown table (default README.md)")
    ap.add_argument("--write", action="store_true", help="replace the bench-table block of --readme")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="do not measure: print the tables of an earlier run's JSON (and --write them)")
    args = ap.parse_args(argv)
    if args.from_json:
        res = json.loads(args.from_json.read_text())
        print(table(res))
        print()
        print(markdown_table(res))
        if args.write:
            write_readme(args.readme or ROOT / "README.md", markdown_table(res))
        return 0
    res = Bench(args).run()
    text = table(res)
    res["table"] = text
    res["markdown_table"] = markdown_table(res)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    print(text)
    for n in res["notes"]:
        print("note:", n)
    print()
    print(markdown_table(res))
    print(f"wrote {out}")
    if args.write:
        write_readme(args.readme or ROOT / "README.md", markdown_table(res))
    elif args.readme:
        print("note: --readme without --write: README not changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
