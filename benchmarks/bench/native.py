"""Natively (CPython): wasmvision (numpy, BLAS) vs onnxruntime CPU 1 thread vs the plain-numpy peer, interleaved.
One thread each: run.py sets OPENBLAS_NUM_THREADS=1 (unless given) before numpy is imported."""
from __future__ import annotations

import os
import time

import numpy as np

from .common import stats


def measure(bench):
    a = bench.args
    import onnxruntime as ort
    import plain_numpy
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(bench.model), so, providers=["CPUExecutionProvider"])
    xin = np.ascontiguousarray(bench.x.transpose(0, 3, 1, 2))
    feed = {sess.get_inputs()[0].name: xin}
    runners = {"onnxruntime native CPU 1 thread": lambda: sess.run(None, feed)}
    peer = plain_numpy.PlainNumpyNet(str(bench.work / "peer.npz"))
    runners["plain numpy native"] = lambda: peer.run(xin)
    if bench.bundle is not None:
        try:
            import wasmvision
            clf = wasmvision.load(str(bench.bundle))
            runners["wasmvision native (clf.run)"] = lambda: clf.run(bench.x)
        except Exception as exc:
            bench.note(f"native wasmvision failed: {exc}")
    samples = {k: [] for k in runners}
    for fn in runners.values():
        for _ in range(3):
            fn()
    per = max(1, a.native_runs // a.rounds)
    for _ in range(a.rounds):
        for k, fn in runners.items():
            for _ in range(per if "plain" not in k else max(1, per // 4)):
                t0 = time.perf_counter()
                fn()
                samples[k].append((time.perf_counter() - t0) * 1e3)
    bench.result["native"] = {k: stats(v) for k, v in samples.items()}
    bench.result["native_numpy"] = np.__version__
    bench.result["native_threads"] = {"onnxruntime": 1, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}
