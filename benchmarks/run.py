"""wasmvision side-by-side benchmark. A measurement command, not a test: nothing asserts timings.

    python benchmarks/run.py --dist dist --out bench-results/bench.json [--quick]

In one headless Chromium (Debian /usr/bin/chromium, Python playwright), after warm-up, in interleaved rounds:
  * wasmvision's page (dist/index.html, Web Worker) once per engine (?engine=numpy, ?engine=simd): its own
    classify(blob) on chelsea.png, and through its public module the fp32/fp16/int8 MobileNetV2 bundles and three
    more families (MobileNetV3-Large/Small, an EfficientNet-Lite0-shaped net; seeded weights): round trip + stages;
  * onnxruntime-web (npm, installed into benchmarks/.peers by this script only) wasm, 1 thread on every model, and
    2 threads on MobileNetV2 (cross-origin isolated page), same ONNX and the same preprocessed input;
  * in the same Pyodide as the product: the plain-numpy peer, PyPI planer, and wasmvision's Plan.run per engine with
    per-step timings (per-kind profile, per-layer GFLOPS) and the Wasm SIMD peak (benchmarks/bench/peak/peak.c);
then the start-up phases (benchmarks/phases.py, when present), cold start (empty / warm HTTP cache, bytes), the link
profiles (a CDN-like server at 3 link speeds, cold/repeat visits, persistent/private storage, bytes per visit), and
natively wasmvision vs onnxruntime CPU 1 thread. Prints the tables (ratios to onnxruntime-web 1 thread on the same
model, same run) and writes JSON. The code lives in benchmarks/bench/ (one module per concern).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Natively every system runs on one thread, like onnxruntime's (intra-op 1): OpenBLAS's default thread pool spins
# on a loaded 2-core machine (MobileNetV2 clf.run measured 516 ms vs 68 ms with one thread at load 15). Set before
# numpy is imported; the browser is not affected.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (ROOT, HERE, HERE / "peers", ROOT / "py_pkg"):  # ROOT: the site's server and Chromium (buildtools)
    sys.path.insert(0, str(p))

from bench import report  # noqa: E402

QUICK = {"runs": 10, "rounds": 2, "warmup": 2, "peer_runs": 2, "planer_runs": 0, "native_runs": 20,
         "cold_repeats": 1, "phase_runs": 1, "link_repeats": 1, "engine_runs": 1}
# --only PART: what the other parts' options become (only the link profiles: no warm rounds, zoo, peers, ...).
ONLY = {"links": {"skip_warm": True, "skip_cold": True, "skip_native": True, "skip_phases": True, "skip_engines": True,
                  "no_peak": True, "no_planer": True, "skip_family": list(report.FAMILIES)}}


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"))
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "bench.json"))
    ap.add_argument("--work", default=str(ROOT / "bench-results" / "work"), help="scratch folder for inputs")
    ap.add_argument("--model", help="ONNX model (default build/models/mobilenet_v2.onnx)")
    ap.add_argument("--image", default="chelsea.png")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--quick", action="store_true",
                    help="a ~3 min smoke run: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                    + ", no planer (explicit options still win)")
    ap.add_argument("--runs", type=int, default=40, help="warm runs per browser system (split over rounds)")
    ap.add_argument("--peer-runs", type=int, default=12, help="runs of the slow plain-numpy peer")
    ap.add_argument("--planer-runs", type=int, default=6, help="runs of PyPI planer in Pyodide")
    ap.add_argument("--no-planer", action="store_true", help="skip the PyPI planer peer")
    ap.add_argument("--native-runs", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--phase-runs", type=int, default=3, help="runs per phase of the start-up phase table (benchmarks/phases.py)")
    ap.add_argument("--engines", default="numpy,simd", help="wasmvision engines to measure (comma-separated)")
    ap.add_argument("--numpy-variants", action="store_true", help="also time the fp16/int8 bundles on numpy")
    ap.add_argument("--skip-family", action="append", choices=report.FAMILIES, help="leave out a zoo family")
    ap.add_argument("--no-peak", action="store_true", help="skip the Wasm SIMD peak micro-benchmark")
    ap.add_argument("--cache-control", default="public, max-age=3600",
                    help="Cache-Control header of the benchmark server (repeat-visit measurements depend on it)")
    ap.add_argument("--no-threads", action="store_true", help="skip the 2-thread onnxruntime-web page")
    ap.add_argument("--skip-warm", action="store_true")
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--skip-native", action="store_true")
    ap.add_argument("--skip-phases", action="store_true")
    ap.add_argument("--skip-links", action="store_true", help="skip the link profiles")
    ap.add_argument("--only", choices=sorted(ONLY), help="measure only this part (links: the link-profile table)")
    ap.add_argument("--link-repeats", type=int, default=3, help="visits per link-profile cell (the median is shown)")
    ap.add_argument("--link-profiles", default="",
                    help="comma-separated subset of the link profiles by first word (unthrottled,50,20; default all)")
    ap.add_argument("--skip-engines", action="store_true", help="skip the per-engine visits (Chromium, Firefox, WebKit)")
    ap.add_argument("--browser-engines", type=lambda s: [e for e in s.split(",") if e], default=None,
                    help="engines for the per-engine visits (default: chromium,firefox,webkit,webkit-storage)")
    ap.add_argument("--engine-runs", type=int, default=3, help="fresh browsers (first + repeat visit) per engine")
    ap.add_argument("--engine-warm", type=int, default=5, help="warm classify round trips per engine run")
    ap.add_argument("--readme", type=Path, default=None,
                    help="with --write: the README whose bench-table block gets the Markdown table (default README.md)")
    ap.add_argument("--write", action="store_true", help="replace the bench-table block of --readme")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="do not measure: print the tables of an earlier run's JSON (and --write them)")
    args = ap.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:])}
        for k, v in QUICK.items():
            if f"--{k.replace('_', '-')}" not in given:
                setattr(args, k, v)
        args.no_planer = args.no_planer or args.planer_runs == 0
    if args.only:
        for k, v in ONLY[args.only].items():
            setattr(args, k, v)
    args.engines = [e for e in args.engines.split(",") if e]
    args.link_profiles = [x.strip() for x in args.link_profiles.split(",") if x.strip()]
    return args


def emit(res, args):
    print(report.table(res))
    for n in res.get("notes", []):
        print("note:", n)
    print()
    md = report.markdown_table(res)
    links = report.links_block(res)
    print(md + ("\n\n" + links if links else ""))
    if args.write:
        if any(res.get(k) for k in ("systems", "cold_start", "native", "phases")):  # not a links-only run
            report.write_readme(args.readme or ROOT / "README.md", md)
        if links:
            report.write_readme(args.readme or ROOT / "README.md", links, report.LINKS_MARKERS)
    elif args.readme:
        print("note: --readme without --write: README not changed")


def main(argv=None):
    args = parse(argv)
    if args.from_json:
        emit(json.loads(args.from_json.read_text()), args)
        return 0
    from bench.harness import Bench
    res = Bench(args).run()
    res["table"] = report.table(res)
    res["markdown_table"] = report.markdown_table(res)
    res["links_table"] = report.links_block(res)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    emit(res, args)
    print(f"wrote {out} ({res.get('wall_s', 0) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
