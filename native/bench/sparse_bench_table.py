#!/usr/bin/env python3
"""Merges tandem_sparse_bench's JSON, cuda_baselines.py's JSON (attention only) and, when present,
the end-to-end XAttention / FlexPrefill JSON into the one table of the block-sparse benchmark
(issue 4). Markdown, ready for docs/PERFORMANCE.md.

  python3 sparse_bench_table.py OURS.json BASELINES.json [E2E.json]

Dense rows: TFLOP/s with dense causal FLOPs = 4 N^2 Hq D / 2. Block-sparse rows: effective
TFLOP/s on the active blocks = 4 B^2 D (active blocks over all query heads) / time, and the
speedup over the faster SDPA backend. A number whose correctness check failed is marked
"(CHECK FAILED)"; a measurement that did not run is "-".
"""
import json
import sys


def load(path, quiet=False):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        if not quiet:
            print(f"sparse_bench_table: cannot read {path}: {e}", file=sys.stderr)
        return {}


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def mark(r):
    return "" if r.get("checked", True) else " (CHECK FAILED)"


def e2e_rows(gbench, base):
    """Rows from Google Benchmark's JSON of SparseE2E (sparse_e2e_bench.cpp), with the speedup
    over the faster SDPA backend measured in the same run (BASELINES.json)."""
    names = {0: "XAttention S=8 tau 0.9", 1: "XAttention S=16 tau 0.9",
             2: "FlexPrefill gamma 0.95 tau 0.1 min 1024",
             3: "XAttention S=8 tau 0.9, fp8 estimation", 4: "XAttention S=16 tau 0.9, fp8 estimation"}
    rows = []
    for b in gbench.get("benchmarks", []):
        parts = dict(p.split(":", 1) for p in b.get("name", "").split("/") if ":" in p)
        if "n" not in parts or "total_ms" not in b:
            continue
        n, method = int(parts["n"]), int(parts.get("method", -1))
        att = base.get("attention", {}).get(str(n), {})
        sdpa = [r["ms"] for r in (att.get("flash"), att.get("cudnn")) if r and "ms" in r]
        rows.append(dict(n=n, method=names.get(method, str(method)),
                         input="synthetic (sink, band, stripes, noise)", total_ms=b["total_ms"],
                         estimation_share=b.get("estimate_share"), density=b.get("density"),
                         speedup_vs_sdpa=min(sdpa) / b["total_ms"] if sdpa else None,
                         rel_err=b.get("rel_err")))
    return rows


def main():
    ours, base = load(sys.argv[1]), load(sys.argv[2])
    e2e = load(sys.argv[3], quiet=True) if len(sys.argv) > 3 else {}
    print(f"Card: {ours.get('device') or base.get('device', '?')}; torch {base.get('torch', '?')} "
          f"(CUDA {base.get('cuda', '?')}, cuDNN {base.get('cudnn', '?')}); bf16 GEMM 8192^3 "
          f"{fmt(base.get('gemm_bf16_tflops'), 0)} TFLOP/s (torch)")
    print("bf16, B=1, Hq=32, Hkv=8, D=128, causal. Ours: bf16 KV cache, f32 Q and output (as the "
          f"engine keeps them), block size {ours.get('block', '?')}.\n")
    print("| N | kernel | density | time ms | TFLOP/s | vs ours dense | speed vs faster SDPA |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    lengths = sorted({int(n) for n in list(ours.get("lengths", {})) + list(base.get("attention", {}))})
    for n in lengths:
        o = ours.get("lengths", {}).get(str(n), {})
        b = base.get("attention", {}).get(str(n), {})
        sdpa = {}
        for key, name in (("flash", "SDPA flash"), ("cudnn", "SDPA cuDNN")):
            r = b.get(key)
            if not r:
                print(f"| {n // 1024}K | PyTorch {name} | 1 | - | - | | |")
            elif "error" in r:
                print(f"| {n // 1024}K | PyTorch {name} | 1 | failed | failed | | |")
            else:
                sdpa[key] = r["ms"]
                print(f"| {n // 1024}K | PyTorch {name} ({r.get('gqa', '?')}) | 1 | {fmt(r['ms'], 2)} | "
                      f"{fmt(r['tflops'])}{mark(r)} | | |")
        best = min(sdpa.values()) if sdpa else None
        dense = o.get("dense")
        dense_tf = dense.get("tflops") if dense else None
        if dense:
            ratio = f"{best / dense['ms']:.2f}x" if best else "-"
            print(f"| {n // 1024}K | ours dense | 1 | {fmt(dense['ms'], 2)} | {fmt(dense_tf)}{mark(dense)} | "
                  f"1.00x | {ratio} |")
        for key, r in sorted(o.get("sparse", {}).items(), key=lambda kv: float(kv[0])):
            vs_dense = f"{dense_tf and r['effective_tflops'] / dense_tf:.2f}x TFLOP/s" if dense_tf else "-"
            vs_sdpa = f"{best / r['ms']:.2f}x" if best else "-"
            print(f"| {n // 1024}K | ours block-sparse, random mask {float(key):.0%} | {r['density']:.3f} | "
                  f"{fmt(r['ms'], 2)} | {fmt(r['effective_tflops'])} on active blocks{mark(r)} | "
                  f"{vs_dense} | {vs_sdpa} |")

    # >>> end-to-end rows (XAttention / FlexPrefill; written by sparse_e2e_bench) >>>
    rows = e2e.get("rows", []) or e2e_rows(e2e, base)
    if rows:
        print("\n| N | method | input | total ms | estimation share | density | speedup vs SDPA | "
              "rel. error vs dense |")
        print("|---:|---|---|---:|---:|---:|---:|---:|")
        for r in rows:
            share = r.get("estimation_share")
            print(f"| {int(r.get('n', 0)) // 1024}K | {r.get('method', '?')} | {r.get('input', '?')} | "
                  f"{fmt(r.get('total_ms'), 2)}{mark(r)} | {'-' if share is None else f'{share:.1%}'} | "
                  f"{fmt(r.get('density'), 3)} | {fmt(r.get('speedup_vs_sdpa'), 2)} | "
                  f"{'-' if r.get('rel_err') is None else format(r['rel_err'], '.2e')} |")
    # <<< end of the end-to-end rows <<<
    return 0


if __name__ == "__main__":
    sys.exit(main())
