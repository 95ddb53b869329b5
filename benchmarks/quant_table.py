"""The fp32 / fp16 / int8 table: bundle and gzip bytes, load time (native and in the browser), and
agreement with float32 on every real photo in build/photos plus 16 fixed synthetic images.

    python benchmarks/quant_table.py --dist dist --build build --readme README.md [--write] [--emit dist/models]

Prints a Markdown table and writes JSON (``--json``; default <out>/quant-table.json or
bench-results/quant-table.json). ``--write`` replaces the
block between ``<!-- quant-table:start -->`` and ``<!-- quant-table:end -->`` in the README (the markers must
exist). ``--emit DIR`` also writes mobilenet_v2-fp16.wvb and mobilenet_v2-int8.wvb there. The browser column
serves dist/ on 127.0.0.1 (variants under /quant-variants/) and times ``window.wasmvision.loadModel`` in headless
Chromium; ``--no-browser`` skips it. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "py_pkg"), str(ROOT)]

import wasmvision  # noqa: E402
from wasmvision import bundle as B  # noqa: E402
from wasmvision import quantize as Q  # noqa: E402
from buildtools.chromium import CHROMIUM_ARGS, CHROMIUM  # noqa: E402
from buildtools.server import Background  # noqa: E402

MODEL = "mobilenet_v2"
VARIANTS = ("fp32", "fp16", "int8", "int8-all")  # int8-all is shown, not shipped: it is what the policy avoids
SHIPPED = ("fp16", "int8")
START, END = "<!-- quant-table:start -->", "<!-- quant-table:end -->"


# ------------------------------------------------------------------------------------------------ inputs

def synthetic_images() -> list[tuple[str, np.ndarray]]:
    """16 fixed 256x256 RGB images: seeded noise, gradients, solid colours, checkerboards."""
    rng = np.random.default_rng(20261121)
    yy, xx = np.mgrid[0:256, 0:256]
    out = [(f"noise-{i}", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for i in range(4)]
    grads = [np.stack([xx, yy, 255 - xx], -1), np.stack([yy, yy, yy], -1),
             np.stack([(xx + yy) // 2, 255 - yy, xx], -1), np.stack([255 - xx, xx, (2 * yy) % 256], -1)]
    out += [(f"gradient-{i}", g.astype(np.uint8)) for i, g in enumerate(grads)]
    for rgb in ((0, 0, 0), (255, 255, 255), (200, 30, 30), (30, 120, 220)):
        out.append(("solid-%02x%02x%02x" % rgb, np.broadcast_to(np.array(rgb, np.uint8), (256, 256, 3)).copy()))
    for s in (8, 16, 32, 64):
        board = (((xx // s) + (yy // s)) % 2 * 255).astype(np.uint8)
        out.append((f"checker-{s}", np.stack([board] * 3, -1)))
    return out


def real_photos(photos: Path) -> tuple[list[tuple[str, np.ndarray]], dict[str, str]]:
    """Every file in build/photos that Pillow decodes; the others with the reason."""
    from wasmvision.image_io import read_image

    ok, skipped = [], {}
    for path in sorted(p for p in photos.iterdir() if p.is_file()):
        try:
            ok.append((path.name, read_image(path)))
        except wasmvision.ImageError as exc:
            skipped[path.name] = str(exc)
    return ok, skipped


# ------------------------------------------------------------------------------------------------ metrics

def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def probabilities(raw: bytes, x: np.ndarray) -> np.ndarray:
    clf = wasmvision.load(raw)
    out = np.concatenate([clf.run(x[i:i + 8]).reshape(len(x[i:i + 8]), -1) for i in range(0, len(x), 8)])
    return _softmax(out)  # (N, classes)


def agreement(p: np.ndarray, p0: np.ndarray) -> dict:
    """Agreement of ``p`` with the float32 probabilities ``p0`` (rows = inputs)."""
    n = np.arange(len(p))
    top1_ref, top1 = p0.argmax(1), p.argmax(1)
    top5_ref, top5 = np.argsort(-p0, 1)[:, :5], np.argsort(-p, 1)[:, :5]
    return {
        "top1_agree": int(np.sum(top1 == top1_ref)),
        "top5_agree": int(sum(set(a) == set(b) for a, b in zip(top5, top5_ref))),  # same 5 classes, any order
        "count": int(len(p)),
        "max_top1_prob_change": float(np.abs(p[n, top1_ref] - p0[n, top1_ref]).max()),
        "max_abs_prob_change": float(np.abs(p - p0).max()),
    }


def load_time_native(raw: bytes, runs: int) -> float:
    wasmvision.load(raw)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        wasmvision.load(raw)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def storage_text(bundle) -> str:
    kinds: dict[str, int] = {}
    for name in Q.weight_tensors(bundle):
        kind = bundle.storage.get(name, "float32")
        kinds[kind] = kinds.get(kind, 0) + int(bundle.tensors[name].size)
    total = sum(kinds.values())
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))


# ------------------------------------------------------------------------------------------------ browser

def browser_measurements(dist: Path, variants: dict[str, Path], runs: int, chromium: str) -> dict:
    """Per variant: median fetch+load and Python load time of loadModel(url), and the bytes of a first visit
    (fresh browser context, empty cache) with that variant as the page's default model."""
    from playwright.sync_api import sync_playwright

    folder = next(iter(variants.values())).parent
    # Serve a snapshot: a build writing dist/ meanwhile must not break the page half-way.
    snapshot = Path(tempfile.mkdtemp(prefix="quant-dist-"))
    shutil.copytree(dist, snapshot / "site", ignore=shutil.ignore_patterns("*.tmp"))
    dist = snapshot / "site"
    # The site's own server; the variants under /quant-variants/; the same files gzip -9 encoded from a second one.
    mounts = {"/": dist, "/quant-variants/": folder}
    running = contextlib.ExitStack()
    servers = {gz: running.enter_context(Background(mounts=mounts, gzip=gz)) for gz in (False, True)}
    base = servers[False].url
    site_manifest = json.loads((dist / "manifest.json").read_text())
    results: dict = {k: {"load_ms": [], "fetch_load_ms": []} for k in variants}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                # Load time: one page, every variant loaded `runs` times, interleaved.
                page = browser.new_context().new_page()
                page.goto(base + "index.html")
                page.evaluate("() => window.wasmvision.ready")
                for round_ in range(runs + 1):  # round 0 warms up (module imports, first allocations)
                    for key, path in variants.items():
                        info = page.evaluate(
                            """async ([url, name]) => {
                                 const t0 = performance.now();
                                 const m = await window.wasmvision.loadModel(url, {select: false, name});
                                 return {wall: performance.now() - t0, load_ms: m.load_ms, bytes: m.bytes};
                               }""", [f"/quant-variants/{path.name}", f"quant-{key}"])
                        if round_:
                            results[key]["fetch_load_ms"].append(info["wall"])
                            results[key]["load_ms"].append(info["load_ms"])
                page.context.close()
                # First visit: a fresh context per variant, the manifest naming that variant as the default;
                # once served as stored, once gzip-encoded (bytes on the wire).
                for (key, path), gz in [(kv, gz) for gz in (False, True) for kv in variants.items()]:
                    suffix = "_gzip" if gz else ""
                    body = json.loads(json.dumps(site_manifest))
                    entry = {"name": MODEL, "key": f"{MODEL}-{key}", "file": f"quant-variants/{path.name}",
                             "bytes": path.stat().st_size, "storage": key, "default": True}
                    body["models"] = [entry]
                    body["files"] = list(body.get("files", [])) + [{"path": entry["file"], "bytes": entry["bytes"]}]
                    (dist / "manifest.json").write_text(json.dumps(body))  # this copy's default: the variant
                    context = browser.new_context()
                    received: list[int] = []
                    context.on("requestfinished", lambda r: received.append(r.sizes()["responseBodySize"]))
                    page = context.new_page()
                    t0 = time.perf_counter()
                    page.goto(servers[gz].url + "index.html")
                    page.evaluate("() => window.wasmvision.ready")
                    ready_s = time.perf_counter() - t0
                    page.wait_for_timeout(300)  # let the last requestfinished events arrive
                    current = page.evaluate("() => window.wasmvision.currentModel")
                    results[key]["first_visit_bytes" + suffix] = int(sum(received))
                    results[key]["first_visit_requests" + suffix] = len(received)
                    results[key]["first_visit_ready_s" + suffix] = ready_s
                    results[key]["first_visit_model" + suffix] = current
                    context.close()
            finally:
                browser.close()
    finally:
        running.close()
        shutil.rmtree(snapshot, ignore_errors=True)
    for r in results.values():
        r["load_ms_median"] = statistics.median(r["load_ms"])
        r["fetch_load_ms_median"] = statistics.median(r["fetch_load_ms"])
    return results


# ------------------------------------------------------------------------------------------------ table

def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def markdown(report: dict) -> str:
    rows = report["variants"]
    nreal, nsyn = report["inputs"]["real"], report["inputs"]["synthetic"]
    browser = all("browser" in rows[k] for k in rows)
    head = ["weights", "stored as (share of weights)", "bundle", "gzip -9", "load, native"]
    if browser:
        head += ["load, browser", "first visit, browser (gzip)"]
    head += [f"top-1 = fp32, {nreal} photos", f"top-1 = fp32, {nsyn} synthetic", "top-5 set = fp32",
             "max Δ top-1 prob", "max \\|Δprob\\|"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, r in rows.items():
        a_real, a_syn, a_all = r["agreement"]["real"], r["agreement"]["synthetic"], r["agreement"]["all"]
        name = key + ("" if key in ("fp32",) + SHIPPED else " (not shipped)")
        cells = [name, r["storage"], _mb(r["bytes"]), _mb(r["gzip_bytes"]), f"{r['load_native_ms']:.0f} ms"]
        if browser:
            b = r["browser"]
            cells += [f"{b['load_ms_median']:.0f} ms",
                      f"{_mb(b['first_visit_bytes'])} ({_mb(b['first_visit_bytes_gzip'])})"]
        cells += [f"{a_real['top1_agree']}/{a_real['count']}", f"{a_syn['top1_agree']}/{a_syn['count']}",
                  f"{a_all['top5_agree']}/{a_all['count']}", f"{a_all['max_top1_prob_change']:.4f}",
                  f"{a_all['max_abs_prob_change']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Generated by `python benchmarks/quant_table.py` on {report['date']} from `{report['source']}`. "
        f"Inputs: {nreal} real photos (every image in `build/photos` Pillow can decode"
        + (f"; skipped: {', '.join(report['inputs']['skipped'])}" if report["inputs"]["skipped"] else "")
        + f") and {nsyn} synthetic ones (seeded noise, gradients, solid colours, checkerboards). "
        "Agreement and probability changes are against the float32 bundle; top-5 counts inputs whose five best "
        "classes are the same set. int8 is symmetric per output channel with one float32 scale per channel; "
        "the shipped int8 keeps the first convolution, the depthwise convolutions and the linear (projection) "
        "convolutions in float16 (int8 there flips real photos: see int8-all, and docs/quantization.md for which "
        "layers). Biases stay float32. "
        "Every variant is decoded to float32 once at load, so the arithmetic is float32 for all of them.",
    ]
    if browser:
        notes.append("")
        notes.append(f"Load = `wasmvision.load(bytes)` (checksum, decode, plan), median of {report['runs']} after a "
                     "warm-up; in the browser the Python-side time of `window.wasmvision.loadModel(url)` in Pyodide 0.27.7, headless Chromium. First visit = "
                     "every byte the page downloads until `wasmvision.ready` (runtime, numpy, wasmvision, the default "
                     "model) in a fresh browser profile, as stored and (in brackets) with every file gzip -9 encoded "
                     "by the server, counted by Chromium as received on the wire. Times are from a shared 2-core machine: "
                     "compare within a column, expect ±30%.")
    return "\n".join(lines + notes)


ABLATION = (("int8 everywhere", ()), ("first in fp16", ("first",)), ("classifier in fp16", ("last",)),
            ("first + classifier in fp16", ("first", "last")), ("depthwise in fp16", ("depthwise",)),
            ("linear in fp16", ("linear",)), ("first + depthwise in fp16", ("first", "depthwise")),
            ("first + linear in fp16", ("first", "linear")), ("depthwise + linear in fp16", ("depthwise", "linear")),
            ("first + depthwise + linear in fp16 (shipped int8)", Q.INT8_KEEP_FLOAT16))


def ablation(base, x: np.ndarray, p0: np.ndarray, nreal: int) -> list[dict]:
    """Which layers int8 hurts: int8 with different sets of layers kept in float16."""
    rows = []
    for label, keep in ABLATION:
        variant = Q.make_variant(base, "int8-all")
        Q.set_weight_storage(variant, "int8", keep_float16=keep)
        raw = B.to_bytes(variant)
        p = probabilities(raw, x)
        rows.append({"label": label, "keep_float16": list(keep), "bytes": len(raw),
                     "real": agreement(p[:nreal], p0[:nreal]), "all": agreement(p, p0)})
    return rows


def per_layer(base, x: np.ndarray, p0: np.ndarray, nreal: int) -> list[dict]:
    """Sensitivity: only one weight tensor in int8, the rest float32."""
    roles = Q.weight_roles(base)
    rows = []
    for name in Q.weight_tensors(base):
        variant = Q.make_variant(base, "fp32")
        variant.storage[name] = "int8"
        p = probabilities(B.to_bytes(variant), x)
        rows.append({"tensor": name, "roles": sorted(roles[name]), "parameters": int(base.tensors[name].size),
                     "real": agreement(p[:nreal], p0[:nreal]), "all": agreement(p, p0)})
    return rows


def per_layer_markdown(rows: list[dict]) -> str:
    lines = ["| only this weight in int8 | role | parameters | top-1 = fp32, photos | top-1 = fp32, all | "
             "max Δ top-1 prob |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['tensor']} | {', '.join(r['roles']) or 'with activation'} | {r['parameters']:,} | "
                     f"{r['real']['top1_agree']}/{r['real']['count']} | {r['all']['top1_agree']}/{r['all']['count']} | "
                     f"{r['all']['max_top1_prob_change']:.4f} |")
    return "\n".join(lines)


def ablation_markdown(rows: list[dict]) -> str:
    lines = ["| int8 with ... | bundle | top-1 = fp32, photos | top-1 = fp32, all | top-5 set = fp32 | "
             "max Δ top-1 prob |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {_mb(r['bytes'])} | {r['real']['top1_agree']}/{r['real']['count']} | "
                     f"{r['all']['top1_agree']}/{r['all']['count']} | {r['all']['top5_agree']}/{r['all']['count']} | "
                     f"{r['all']['max_top1_prob_change']:.4f} |")
    return "\n".join(lines)


def replace_block(readme: Path, block: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise SystemExit(f"{readme}: markers {START} ... {END} not found; add them where the table belongs")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{block}\n{END}{tail}")


# ------------------------------------------------------------------------------------------------ main

def build_variants(base) -> dict[str, tuple[object, bytes]]:
    out = {}
    for key in VARIANTS:
        variant = Q.make_variant(base, key)
        out[key] = (variant, B.to_bytes(variant))
    return out


def emit(variants: dict, folder: Path) -> list[Path]:
    """Write the shipped variants as <folder>/mobilenet_v2-<kind>.wvb."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key in SHIPPED:
        path = folder / f"{MODEL}-{key}.wvb"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(variants[key][1])
        tmp.replace(path)
        written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--build", type=Path, default=ROOT / "build")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--write", action="store_true", help="replace the table block in the README")
    ap.add_argument("--out", type=Path, default=None, help="folder for the variant bundles and JSON (default: temp)")
    ap.add_argument("--json", type=Path, default=None, help="where to write the JSON (default <out>/quant-table.json, or bench-results/quant-table.json)")
    ap.add_argument("--emit", type=Path, default=None, metavar="DIR",
                    help="also write mobilenet_v2-fp16.wvb and mobilenet_v2-int8.wvb into DIR (e.g. dist/models)")
    ap.add_argument("--emit-only", action="store_true", help="write the --emit bundles and stop (no measurements)")
    ap.add_argument("--no-browser", action="store_true", help="skip the browser measurements")
    ap.add_argument("--runs", type=int, default=5, help="load-time repetitions, native and in the browser (after one warm-up)")
    ap.add_argument("--chromium", default=CHROMIUM)
    ap.add_argument("--ablation", action="store_true",
                    help="also measure int8 with different layer groups kept in float16 (second table)")
    ap.add_argument("--per-layer", action="store_true",
                    help="also measure each weight alone in int8 (third table; ~2 minutes)")
    args = ap.parse_args(argv)

    # The reference must be the float32 model: dist's bundle if it is stored so, else the exported ONNX.
    source = args.dist / "models" / f"{MODEL}.wvb"
    base = B.load(source) if source.exists() else None
    if base is None or any(k != "float32" for k in base.storage.values()):
        from wasmvision.importers.onnx_import import import_onnx

        source = args.build / "models" / f"{MODEL}.onnx"
        if not source.exists():
            raise SystemExit(f"no float32 {args.dist}/models/{MODEL}.wvb and no {source}: run `python3 build.py build`")
        base = import_onnx(source, name=MODEL, labels=base.labels if base is not None else None)
    variants = build_variants(base)
    if args.emit:
        for path in emit(variants, args.emit):
            print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
        if args.emit_only:
            return 0

    with tempfile.TemporaryDirectory(prefix="quant-table-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for key, (_, raw) in variants.items():
            paths[key] = out / f"{MODEL}-{key}.wvb"
            paths[key].write_bytes(raw)

        photos, skipped = real_photos(args.build / "photos")
        synthetic = synthetic_images()
        clf = wasmvision.load(variants["fp32"][1])
        x = np.stack([clf.preprocess(img) for _, img in photos + synthetic])  # (N, 224, 224, 3)
        nreal = len(photos)
        p0 = probabilities(variants["fp32"][1], x)
        report = {"date": time.strftime("%Y-%m-%d"), "runs": args.runs, "source": str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source),
                  "inputs": {"real": nreal, "synthetic": len(synthetic), "skipped": skipped,
                             "names": [n for n, _ in photos + synthetic]},
                  "policy": {"int8_keep_float16": list(Q.INT8_KEEP_FLOAT16)}, "variants": {}}
        for key, (variant, raw) in variants.items():
            p = p0 if key == "fp32" else probabilities(raw, x)
            report["variants"][key] = {
                "storage": storage_text(variant),
                "bytes": len(raw),
                "gzip_bytes": len(gzip.compress(raw, compresslevel=9, mtime=0)),
                "load_native_ms": load_time_native(raw, args.runs),
                "agreement": {"real": agreement(p[:nreal], p0[:nreal]), "synthetic": agreement(p[nreal:], p0[nreal:]),
                              "all": agreement(p, p0)},
                "top1": {"fp32": p0.argmax(1).tolist(), "variant": p.argmax(1).tolist()},
            }
            print(f"{key}: measured", file=sys.stderr)
        if args.ablation:
            report["ablation"] = ablation(base, x, p0, nreal)
            print("ablation: measured", file=sys.stderr)
        if args.per_layer:
            report["per_layer"] = per_layer(base, x, p0, nreal)
            print("per-layer: measured", file=sys.stderr)
        if not args.no_browser:
            measured = browser_measurements(args.dist, paths, args.runs, args.chromium)
            for key, r in measured.items():
                report["variants"][key]["browser"] = r
        table = markdown(report)
        json_path = args.json or (args.out or ROOT / "bench-results") / "quant-table.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1))
        print(table)
        if args.ablation:
            print("\n" + ablation_markdown(report["ablation"]))
        if args.per_layer:
            print("\n" + per_layer_markdown(report["per_layer"]))
        print(f"\nJSON: {json_path}", file=sys.stderr)
    if args.write:
        replace_block(args.readme, table)
        print(f"updated {args.readme}", file=sys.stderr)
    int8_real = report["variants"]["int8"]["agreement"]["real"]
    if int8_real["top1_agree"] != int8_real["count"]:
        print(f"WARNING: int8 changes the top-1 class of {int8_real['count'] - int8_real['top1_agree']} real photos",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
