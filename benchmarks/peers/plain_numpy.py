"""The textbook numpy CNN a developer would write first: NCHW, im2col (np.pad + a copy per tap) and `@`,
fresh arrays everywhere. The peer wasmvision is compared against in the same Pyodide; it walks the ONNX graph
stored by onnx_to_npz.py (Conv, Clip, Relu, Add, GlobalAveragePool, Flatten, Gemm)."""
import io
import json

import numpy as np


def conv2d(x, w, b, strides, pads, group):
    # x (C, H, W), w (Cout, Cin/group, KH, KW) -> (Cout, Ho, Wo)
    C, H, W = x.shape
    cout, cig, kh, kw = w.shape
    sh, sw = strides
    xp = np.pad(x, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    ho = (H + pads[0] + pads[2] - kh) // sh + 1
    wo = (W + pads[1] + pads[3] - kw) // sw + 1
    cols = np.empty((C, kh, kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, i:i + sh * ho:sh, j:j + sw * wo:sw]
    if group == 1:
        y = w.reshape(cout, -1) @ cols.reshape(C * kh * kw, ho * wo)              # (Cout, P)
    else:
        g = group
        colsg = cols.reshape(g, (C // g) * kh * kw, ho * wo)                     # (G, Cin/G*K, P)
        wg = w.reshape(g, cout // g, cig * kh * kw)                               # (G, Cout/G, Cin/G*K)
        y = (wg @ colsg).reshape(cout, ho * wo)
    if b is not None:
        y = y + b[:, None]
    return y.reshape(cout, ho, wo)


class PlainNumpyNet:
    def __init__(self, npz):
        z = np.load(io.BytesIO(npz) if isinstance(npz, (bytes, bytearray)) else npz)
        self.graph = json.loads(bytes(z["__graph__"]).decode())
        self.params = {k: z[k] for k in z.files if k != "__graph__"}

    def run(self, x):
        # x (1, 3, H, W) float32 NCHW -> (1, classes)
        env = dict(self.params)
        env[self.graph["input"]] = x[0]
        for n in self.graph["nodes"]:
            ins = [env[i] if i else None for i in n["inputs"]]
            a = n["attrs"]
            op = n["op"]
            if op == "Conv":
                k = len(ins[1].shape) - 2
                y = conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1] * k),
                           a.get("pads", [0] * 2 * k), a.get("group", 1))
            elif op == "Clip":
                lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", -np.inf)
                hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", np.inf)
                y = np.clip(ins[0], lo, hi)
            elif op == "Relu":
                y = np.maximum(ins[0], 0)
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "GlobalAveragePool":
                y = ins[0].mean(axis=(1, 2), keepdims=True)
            elif op == "Flatten":
                y = ins[0].reshape(1, -1)
            elif op == "Gemm":
                wt = ins[1].T if a.get("transB", 0) else ins[1]
                y = a.get("alpha", 1.0) * (ins[0] @ wt) + a.get("beta", 1.0) * ins[2]
            else:
                raise NotImplementedError(op)
            env[n["outputs"][0]] = y
        out = env[self.graph["output"]]
        return out.reshape(1, -1)
