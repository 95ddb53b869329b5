"""GEMM candidates side by side, per MobileNetV2 shape, in one Pyodide under Node (V8, as in Chromium).

usage: python3 benchmarks/studies/kernels/gemm_tiles.py [--plain] [--rounds N] [--only pw|dense|stem|M,K,N]
       [--mc MC] CAND[@MC] ...
A candidate is a complete gemm.c or a diff against the shipped one (gemm_candidates/*.patch: the variants measured
in docs/perf.md section 9); one of its first lines may say `// pack: interleave4|int8|alignOFFSET` for another
layout of B at batch 1. The shipped py_pkg/wasmvision/simd/gemm.c always runs first, as "shipped". Every candidate is
compiled alone with the build's flags (relaxed: clang 16 -mrelaxed-simd, the default; --plain: clang 14) and its
wv_gemm renamed, so all load into one process. Per shape: every candidate is checked against numpy once, warmed up,
then called round-robin (order rotated each round); dense is also timed with its weights evicted (a 16 MB write
between calls, untimed), as inside the network. Prints best and median ms and GFLOPS per shape and candidate.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SIMD = ROOT / "py_pkg" / "wasmvision" / "simd"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

# (M, K, N, label): MobileNetV2's GEMMs at 224x224 (pointwise, the stem as im2col, the classifier at batch 1)
SHAPES = [(12544, 32, 16, "pw"), (12544, 16, 96, "pw"), (3136, 96, 24, "pw"), (3136, 24, 144, "pw"),
          (3136, 144, 24, "pw"), (784, 144, 32, "pw"), (784, 32, 192, "pw"), (784, 192, 32, "pw"),
          (196, 192, 64, "pw"), (196, 64, 384, "pw"), (196, 384, 64, "pw"), (196, 384, 96, "pw"),
          (196, 96, 576, "pw"), (196, 576, 96, "pw"), (49, 576, 160, "pw"), (49, 160, 960, "pw"),
          (49, 960, 160, "pw"), (49, 960, 320, "pw"), (49, 320, 1280, "pw"), (12544, 27, 32, "stem"),
          (1, 1280, 1000, "dense"), (1, 1280, 1000, "dense-cold")]
COUNT = {(12544, 16, 96): 1, (3136, 24, 144): 2, (784, 32, 192): 3, (784, 192, 32): 2, (196, 64, 384): 4,
         (196, 384, 64): 3, (196, 96, 576): 3, (196, 576, 96): 2, (49, 160, 960): 3, (49, 960, 160): 2}

CODE = r"""
import ctypes, json, time
import numpy as np
from wasmvision.simd.descriptors import GemmParams
from wasmvision.simd.ops import pack_b, split_activation, NR

cfg = json.load(open("/work/in/cfg.json"))
libs = {}
for name in cfg["cands"]:
    fn = getattr(ctypes.CDLL(f"/work/in/lib{name}.so"), "wv_gemm_" + name)
    fn.restype, fn.argtypes = None, [ctypes.c_size_t]
    libs[name] = fn

def aligned(bp, offset):
    # a copy of bp starting `offset` bytes past a 64-byte boundary
    raw = np.empty(bp.size + 32, np.float32)
    start = ((-raw.ctypes.data) % 64 + offset) // 4
    out = raw[start:start + bp.size].reshape(bp.shape)
    out[...] = bp
    return out

def pack(w, kind):
    bp = pack_b(w)
    if kind.startswith("align"):
        return aligned(bp, int(kind[5:]))
    if kind != "interleave4":
        return bp
    k, groups = w.shape[0], bp.shape[0] // 4
    out = bp.copy()
    flat = out.reshape(-1)
    # groups of 4 full panels as (K, 32) blocks at the same offsets; the rest stay 8-wide panels
    full = groups * 4 if (groups * 4 * NR <= w.shape[1]) else 0
    for g in range(groups):
        if (g + 1) * 4 * NR > w.shape[1]:
            break
        blk = bp[4 * g:4 * g + 4].transpose(1, 0, 2).reshape(k, 4 * NR)
        flat[g * k * 32:(g + 1) * k * 32] = blk.reshape(-1)
    return out

rng = np.random.default_rng(0)
evict = np.zeros(4 << 20, np.float32)
out = []
for m, k, n, label in cfg["shapes"]:
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) * 0.1).astype(np.float32)
    bias = np.zeros(((n + 7) // 8) * 8, np.float32)
    y = np.empty((m, n), np.float32)
    ref = np.clip(a @ w, 0, 6)
    act = split_activation({"kind": "clip", "min": 0.0, "max": 6.0})[0]
    calls = {}
    for name in cfg["cands"]:
        kind = cfg["pack"][name]
        kind = kind if m < 4 or kind.startswith("align") else "panels"  # the dense layouts are for batch 1 only
        want, bb = ref, bias
        if kind == "int8":  # int8 weights per output column, (K, 32) blocks, N padded to 32; bias = scales | bias
            npad = -(-n // 32) * 32
            wp = np.zeros((k, npad), np.float32)
            wp[:, :n] = w
            sc = np.maximum(np.abs(wp).max(axis=0), 1e-12) / 127
            q = np.rint(wp / sc).astype(np.int8)
            bp = np.ascontiguousarray(q.reshape(k, npad // 32, 32).transpose(1, 0, 2))
            bb = np.concatenate([sc, np.zeros(npad, np.float32)]).astype(np.float32)
            want = np.clip(a @ (q[:, :n] * sc[:n]), 0, 6)
        else:
            bp = pack(w, kind)
        p = GemmParams(a=a.ctypes.data, lda=k, bp=bp.ctypes.data, bias=bb.ctypes.data, c=y.ctypes.data, ldc=n,
                       m=m, k=k, n=n, mc=cfg["mc"][name], act=act)
        calls[name] = (libs[name], ctypes.addressof(p), p, bp, bb)
        y[...] = np.nan
        libs[name](ctypes.addressof(p))
        err = float(np.abs(y - want).max())
        assert err < 1e-3 * max(1, float(np.abs(want).max())), (name, m, k, n, err)
        for _ in range(3):
            libs[name](ctypes.addressof(p))
    flops = 2 * m * k * n
    reps = int(min(40, max(5, 2e8 / flops)))
    t = {c: [] for c in calls}
    names = list(calls)
    clock = time.perf_counter
    for r in range(cfg["rounds"]):
        order = names[r % len(names):] + names[:r % len(names)]
        for _ in range(reps):
            for c in order:
                fn, addr = calls[c][0], calls[c][1]
                if label == "dense-cold":
                    evict += 1.0
                t0 = clock(); fn(addr); t[c].append(clock() - t0)
    row = {"m": m, "k": k, "n": n, "label": label, "res": {}}
    for c, s in t.items():
        s = sorted(s)
        row["res"][c] = {"best": s[0] * 1e3, "med": s[len(s) // 2] * 1e3, "gf_med": flops / s[len(s) // 2] / 1e9,
                         "gf_best": flops / s[0] / 1e9}
    out.append(row)
    print(m, k, n, label, " | ".join(f"{c}: {v['best']:.3f}/{v['med']:.3f}ms {v['gf_best']:.0f}/{v['gf_med']:.0f}GF"
                                 for c, v in row["res"].items()),
          flush=True)
json.dump(out, open("/work/out/res.json", "w"))
"""


def compile_candidate(src: Path, name: str, outdir: Path, relaxed: bool) -> Path:
    """`// cflags: ...` on one of a candidate's first lines adds compiler flags (e.g. -mllvm -disable-lsr)."""
    from buildtools.simd import SIMD_CFLAGS, SIMD_LDFLAGS, RELAXED_LLVM
    clang, ld = ((str(RELAXED_LLVM / "clang"), str(RELAXED_LLVM / "wasm-ld")) if relaxed else ("clang", "wasm-ld"))
    head = src.read_text().splitlines()[:3]
    extra = [w for line in head if "cflags:" in line for w in line.split("cflags:")[1].split()]
    flags = [*SIMD_CFLAGS, *(["-mrelaxed-simd"] if relaxed else []), *extra, f"-I{SIMD}", f"-Dwv_gemm=wv_gemm_{name}"]
    obj, lib = outdir / f"{name}.o", outdir / "in" / f"lib{name}.so"
    subprocess.run([clang, *flags, "-c", str(src), "-o", str(obj)], check=True)
    subprocess.run([ld, *SIMD_LDFLAGS, "-o", str(lib), str(obj)], check=True)
    return lib


def main(argv: list[str]) -> None:
    from pyodide_harness import RELAXED_SIMD, run_in_pyodide

    relaxed = "--plain" not in argv
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 5
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    mc = int(argv[argv.index("--mc") + 1]) if "--mc" in argv else 64
    skip = {argv.index(f) + 1 for f in ("--rounds", "--only", "--mc") if f in argv}
    # CAND.c or CAND.c@MC (the same source with another rows-per-block)
    cands = [a for i, a in enumerate(argv) if (".c" in a or ".patch" in a) and i not in skip]
    srcs = [("shipped", SIMD / "gemm.c", mc)] + [
        (Path(a.split("@")[0]).stem.replace("-", "_") + (f"_mc{a.split('@')[1]}" if "@" in a else ""),
         Path(a.split("@")[0]), int(a.split("@")[1]) if "@" in a else mc) for a in cands]
    shapes = [s for s in SHAPES if only is None or s[3].startswith(only) or "%d,%d,%d" % s[:3] == only]
    if only and only[0].isdigit() and not shapes:  # any M,K,N
        shapes = [(*map(int, only.split(",")), "pw")]
    work = Path(tempfile.mkdtemp(prefix="gemm-tiles-"))
    (work / "in").mkdir()
    for i, (name, src, m) in enumerate(srcs):
        if src.suffix == ".patch":  # a diff against the shipped gemm.c (gemm_candidates/*.patch)
            out = work / f"{name}.c"
            subprocess.run(["patch", "-s", "-o", str(out), str(SIMD / "gemm.c"), str(src)], check=True)
            srcs[i] = (name, out, m)
    pack = {}
    for name, src, _ in srcs:
        compile_candidate(src, name, work, relaxed)
        head = [line for line in src.read_text().splitlines()[:3] if "pack:" in line]
        pack[name] = head[0].split("pack:")[1].strip() if head else "panels"
    cfg = {"cands": [n for n, _, _ in srcs], "pack": pack, "shapes": shapes, "rounds": rounds,
           "mc": {n: m for n, _, m in srcs}}
    files = run_in_pyodide(work, CODE, {"cfg.json": json.dumps(cfg).encode()}, timeout=3000,
                           node_args=RELAXED_SIMD if relaxed else ())
    print(files["stdout"].decode())
    rows = json.loads(files["res.json"])
    print(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
