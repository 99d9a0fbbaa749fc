#!/usr/bin/env python3
"""Merges tandem_cuda_bench's JSON and cuda_baselines.py's JSON into the one table of the CUDA
benchmark (issue 3). Markdown, ready for docs/PERFORMANCE.md.

  python3 cuda_bench_table.py OURS.json BASELINES.json

Columns: ours | PyTorch SDPA flash | PyTorch SDPA cuDNN or transformers | floor | ratio.
Floors: attention and prefill = FLOPs / the measured bf16 GEMM rate (cuda_baselines.py);
decode = bytes a step must read (bf16 weights + bf16 KV cache at the mean position) / the
measured device-to-device copy bandwidth (tandem_cuda_bench). A number whose correctness check
failed is marked "(CHECK FAILED)"; a measurement that did not run is "-".
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"cuda_bench_table: cannot read {path}: {e}", file=sys.stderr)
        return {}


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def main():
    ours, base = load(sys.argv[1]), load(sys.argv[2])
    gemm = base.get("gemm_bf16_tflops")
    bw = ours.get("copy_bandwidth_gbs")
    print(f"Card: {ours.get('device') or base.get('device', '?')}; CUDA runtime "
          f"{ours.get('cuda_runtime', '?')}, driver {ours.get('cuda_driver', '?')}; torch "
          f"{base.get('torch', '?')} (CUDA {base.get('cuda', '?')}, cuDNN {base.get('cudnn', '?')}); "
          f"transformers {base.get('transformers', '?')}")
    print(f"Ceilings measured: device-to-device copy {fmt(bw, 0)} GB/s (ours, cudaMemcpyAsync 2 GiB; "
          f"torch {fmt(base.get('copy_bandwidth_gbs'), 0)} GB/s), bytes read + written; bf16 GEMM "
          f"8192^3 {fmt(gemm, 0)} TFLOP/s (torch)\n")
    print("| measurement | ours | PyTorch SDPA flash | PyTorch SDPA cuDNN / transformers | floor | ratio |")
    print("|---|---:|---:|---:|---:|---|")

    def cell(r, key):
        if not r:
            return "-"
        if "error" in r:
            return "failed"
        text = fmt(r.get(key))
        return text if r.get("checked", True) else text + " (CHECK FAILED)"

    lengths = sorted({int(n) for n in list(ours.get("attention", {})) + list(base.get("attention", {}))})
    gqa_modes = {}
    for n in lengths:
        o = ours.get("attention", {}).get(str(n))
        b = base.get("attention", {}).get(str(n), {})
        fl, cu = b.get("flash"), b.get("cudnn")
        for name, r in (("flash", fl), ("cuDNN", cu)):
            if r and "gqa" in r:
                gqa_modes.setdefault(name, set()).add(r["gqa"])
        t_o = o.get("tflops") if o else None
        t_f = fl.get("tflops") if fl and "error" not in fl else None
        t_c = cu.get("tflops") if cu and "error" not in cu else None
        parts = []
        if ratio(t_o, t_f) is not None:
            parts.append(f"{ratio(t_o, t_f):.3f}x flash")
        if ratio(t_o, t_c) is not None:
            parts.append(f"{ratio(t_o, t_c):.3f}x cuDNN")
        if ratio(t_o, gemm) is not None:
            parts.append(f"{ratio(t_o, gemm):.3f} of floor")
        t_m = o.get("mma_sync_tflops") if o else None
        if ratio(t_o, t_m) is not None:
            parts.append(f"{ratio(t_o, t_m):.2f}x our mma.sync loop ({fmt(t_m)})")
        print(f"| causal attention N={n // 1024}K, TFLOP/s (ours bf16 KV, f32 Q; PyTorch bf16) | "
              f"{cell(o, 'tflops')} | {cell(fl, 'tflops')} | {cell(cu, 'tflops')} | {fmt(gemm, 0)} | "
              f"{', '.join(parts) or '-'} |")

    keys = [k for k in ("1b", "8b") if k in ours.get("models", {}) or k in base.get("models", {})]
    for k in keys:
        o = ours.get("models", {}).get(k) or {}
        h = base.get("models", {}).get(k) or {}
        label = o.get("label") or h.get("label") or k
        hf_ok = "error" not in h
        d_o, d_h, d_f = o.get("decode_tps"), h.get("decode_tps") if hf_ok else None, o.get("floor_tps")
        d_e = o.get("decode_eager_tps")
        parts = [p for p in (f"{ratio(d_o, d_f):.2f} of floor" if ratio(d_o, d_f) is not None else "",
                             f"{ratio(d_o, d_h):.2f}x transformers" if ratio(d_o, d_h) is not None else "",
                             f"{ratio(d_o, d_e):.2f}x our eager steps ({fmt(d_e)} tok/s)"
                             if ratio(d_o, d_e) is not None else "")
                 if p]
        print(f"| {label}: decode tok/s (prompt {o.get('prompt', h.get('prompt', 512))}, "
              f"{o.get('gen', h.get('gen', 256))} new, batch 1) | {fmt(d_o)} | - | "
              f"{'failed' if not hf_ok else fmt(d_h)} | {fmt(d_f, 0)} | {', '.join(parts) or '-'} |")
        fpt = o.get("prefill_flops_per_token")
        p_floor = gemm * 1e12 / fpt if gemm and fpt else None
        p_o, p_h = o.get("prefill_tps"), h.get("prefill_tps") if hf_ok else None
        parts = [p for p in (f"{ratio(p_o, p_floor):.2f} of floor" if ratio(p_o, p_floor) is not None else "",
                             f"{ratio(p_o, p_h):.2f}x transformers" if ratio(p_o, p_h) is not None else "")
                 if p]
        print(f"| {label}: prefill tok/s ({o.get('prefill', h.get('prefill', 4096))}-token prompt) | "
              f"{fmt(p_o, 0)} | - | {'failed' if not hf_ok else fmt(p_h, 0)} | {fmt(p_floor, 0)} | "
              f"{', '.join(parts) or '-'} |")

    print()
    if gqa_modes:
        modes = "; ".join(f"{k} {', '.join(sorted(v))}" for k, v in gqa_modes.items())
        print(f"PyTorch GQA: {modes}. Ours reads each KV head once per group "
              "(no repeat), reads the bf16 KV cache and takes f32 Q/out (Q rounded to bf16 for the tensor "
              "cores at D = 64/128).")
    for k in keys:
        o = ours.get("models", {}).get(k) or {}
        h = base.get("models", {}).get(k) or {}
        if o:
            print(f"{o.get('label', k)}: {o.get('parameters', 0) / 1e9:.2f} B parameters; floor bytes/token "
                  f"{o.get('bytes_per_token_bf16_kv', 0) / 1e9:.3f} GB with bf16 KV (as ours); ours prefill of the "
                  f"{o.get('prompt')}-token prompt {fmt(o.get('prompt_prefill_tps'), 0)} tok/s")
        if h and "error" not in h:
            print(f"transformers {h.get('label', k)}: attn_implementation={h.get('attn_implementation')}, "
                  f"end-to-end generate {fmt(h.get('end_to_end_tps'))} tok/s")
        elif h:
            print(f"transformers {k}: {h['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
