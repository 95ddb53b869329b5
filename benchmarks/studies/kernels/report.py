"""Markdown tables from study.json (benchmarks/studies/kernels/study.py output): python report.py study.json [chromium.json]"""
import json
import sys

PW_COLS = [("einsum pc,cd->pd out", "pc,cd"), ("einsum pc,dc->pd out (W^T stored)", "pc,dc (Wᵀ)"),
           ("einsum cd,pc->pd out", "cd,pc"), ("einsum pc,cd->pd", "pc,cd no out"), ("matmul out", "matmul"),
           ("np.dot out", "dot"), ("tensordot", "tensordot"), ("NCHW einsum dc,cp->dp out", "NCHW dc,cp"),
           ("NCHW einsum cd,cp->dp out", "NCHW cd,cp"), ("NCHW matmul out", "NCHW matmul")]


def best(c):
    k = min(c, key=lambda k: c[k]["ms"])
    return k, c[k]


def pointwise(doc):
    rows = ["| P×Cin→Cout | × | MFLOP | " + " | ".join(s for _, s in PW_COLS) + " | best chunked | best (ms) |",
            "|---" * (len(PW_COLS) + 5) + "|"]
    tot_best, tot = 0.0, {k: 0.0 for k, _ in PW_COLS}
    for r in doc["pointwise"]:
        c = r["candidates"]
        ch = {k: v for k, v in c.items() if "chunks" in k}
        chk, chv = best(ch) if ch else ("-", None)
        bk, bv = best(c)
        tot_best += bv["ms"] * r["count"]
        for k, _ in PW_COLS:
            tot[k] += c[k]["ms"] * r["count"]
        P, ci, co = r["shape"]
        rows.append(f"| {P}×{ci}→{co} | {r['count']} | {r['mflop']:.1f} | "
                    + " | ".join(f"{c[k]['gflops']:.2f}" for k, _ in PW_COLS)
                    + (f" | {chv['gflops']:.2f} ({chk.split(', ')[-1]})" if chv else " | -")
                    + f" | **{bk}** {bv['gflops']:.2f} GFLOPS, {bv['ms']:.3f} ms |")
    rows.append("")
    rows.append("Whole network, all 34 pointwise convs (ms, one formulation everywhere vs best per shape): "
                + ", ".join(f"{s} {tot[k]:.1f}" for k, s in PW_COLS) + f"; **best per shape {tot_best:.1f}**")
    return "\n".join(rows)


def epilogue(doc):
    rows = ["| P×Cout | bias np.add out | clip(0,6) out | clip(0.0,6.0) | clip(f32) | maximum+minimum | umath.clip |",
            "|---|---|---|---|---|---|---|"]
    for r in doc["pointwise"]:
        e = r["epilogue"]
        P, ci, co = r["shape"]
        g = lambda k: f"{e[k]['ms']:.3f}" if k in e else "-"  # noqa: E731
        rows.append(f"| {P}×{co} | {g('bias np.add out')} | {g('clip(0,6) out')} | {g('clip(0.0,6.0) out')} | "
                    f"{g('clip(f32 0,6) out')} | {g('maximum+minimum out')} | {g('umath.clip out (no python wrapper)')} |")
    return "\n".join(rows)


def generic(items, label):
    names = []
    for r in items:
        for k in r["candidates"]:
            if k not in names:
                names.append(k)
    rows = [f"| {label} | × | " + " | ".join(names) + " | best |", "|---" * (len(names) + 3) + "|"]
    tot = 0.0
    for r in items:
        c = r["candidates"]
        bk, bv = best(c)
        tot += bv["ms"] * r.get("count", 1)
        shape = "×".join(map(str, r["shape"])) + (f" s{r['stride']}" if "stride" in r else "")
        rows.append(f"| {shape} | {r.get('count', 1)} | " + " | ".join(
            f"{c[k]['ms']:.3f}" if k in c else "-" for k in names) + f" | **{bk}** ({bv['gflops']} GFLOPS) |")
    rows.append("")
    rows.append(f"(ms per call; sum over the network at the best formulation per shape: {tot:.1f} ms)")
    return "\n".join(rows)


def simple(c, unit="ms"):
    return "\n".join(f"- {k}: {v['ms']:.3f} ms" + (f" ({v['gflops']} GFLOPS)" if v.get("gflops") else "")
                     for k, v in sorted(c.items(), key=lambda kv: kv[1]["ms"]))


def main():
    doc = json.load(open(sys.argv[1]))
    out = [f"env: {doc['env']}", "", "### Pointwise (GFLOPS)", pointwise(doc), "",
           "### Bias and ReLU6 epilogues (ms per call)", epilogue(doc), "",
           "### Depthwise 3x3 (ms per call)", generic(doc["depthwise"], "H×W×C stride"), "",
           "### Stem 3x3 s2 3→32", simple(doc["stem"]["candidates"]), "",
           "### einsum layout sensitivity (3136×24→144)", simple(doc["layout"]["candidates"]), "",
           "### Bias folded as a ones column", generic(doc["bias_fold"], "P×Cin×Cout"), "",
           "### Head", "GAP:", simple(doc["head"]["gap"]), "dense 1280→1000:", simple(doc["head"]["dense"]),
           "residual add 56×56×24:", simple(doc["head"]["residual_add_56x56x24"]),
           "call overhead (µs = ms×1000):", simple(doc["head"]["call_overhead"]), "",
           "### float32 vs float64"]
    for k, v in doc["dtype"].items():
        out.append(f"- {k}: " + ", ".join(f"{d} {s['gflops']} GFLOPS ({s['ms']:.3f} ms)" for d, s in v.items()))
    print("\n".join(out))


if __name__ == "__main__":
    main()
