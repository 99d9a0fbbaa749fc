#!/usr/bin/env bash
# The block-sparse attention benchmark of issue 4, on the GPU machine: builds tandem_sparse_bench,
# runs it and PyTorch's SDPA (cuda_baselines.py, attention only) on the same card one after the
# other, and prints ONE table (sparse_bench_table.py): bf16, B=1, Hq=32, Hkv=8, D=128, causal, at
# 8K/32K/128K: SDPA flash, SDPA cuDNN, our dense kernel, our block-sparse kernel on fixed random
# causal masks (time and effective TFLOP/s on the active blocks), and the end-to-end XAttention /
# FlexPrefill rows where they were measured.
#
#   native/bench/run_sparse_bench.sh [RESULTS_DIR]      (default: build-cuda/sparse-bench)
#
# Environment: TANDEM_SPARSE_LENGTHS (default "8192,32768,131072"), TANDEM_SPARSE_DENSITIES
# (default "0.1,0.3"), TANDEM_SPARSE_BLOCK (default 128), PYTHON (default python3, with torch),
# TANDEM_BENCH_STAGE_TIMEOUT (seconds each measuring stage may run; 0 = no limit), BUILD_DIR
# (default build-cuda). Each stage's output is kept in RESULTS_DIR (*.log, *.json, table.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RESULTS="${1:-$ROOT/build-cuda/sparse-bench}"
LENGTHS="${TANDEM_SPARSE_LENGTHS:-8192,32768,131072}"
DENSITIES="${TANDEM_SPARSE_DENSITIES:-0.1,0.3}"
BLOCK="${TANDEM_SPARSE_BLOCK:-128}"
PYTHON="${PYTHON:-python3}"
STAGE_TIMEOUT="${TANDEM_BENCH_STAGE_TIMEOUT:-0}"
BUILD_DIR="${BUILD_DIR:-build-cuda}"
mkdir -p "$RESULTS"

say() { printf '==> %s\n' "$*"; }
stage() { if [ "$STAGE_TIMEOUT" -gt 0 ]; then timeout "$STAGE_TIMEOUT" "$@"; else "$@"; fi; }

cd "$ROOT"
say "building tandem_sparse_bench ($BUILD_DIR, Release, CUDA on)"
cmake -S . -B "$BUILD_DIR" -DTANDEM_CUDA=ON -DCMAKE_BUILD_TYPE=Release > "$RESULTS/build.log" 2>&1 \
  || { tail -n 40 "$RESULTS/build.log"; exit 1; }
cmake --build "$BUILD_DIR" -j16 --target tandem_sparse_bench tandem_bench >> "$RESULTS/build.log" 2>&1 \
  || { grep -E "error|Error" "$RESULTS/build.log" | head -n 40; tail -n 20 "$RESULTS/build.log"; exit 1; }

# Every stage always runs and keeps what it measured, so one failure still leaves a table.
status=0
say "Tandem: dense and block-sparse kernels at $LENGTHS, densities $DENSITIES"
stage "$BUILD_DIR/native/bench/tandem_sparse_bench" --json "$RESULTS/ours.json" \
  --lengths "$LENGTHS" --densities "$DENSITIES" --block "$BLOCK" 2>&1 | tee "$RESULTS/ours.log" \
  || status=1

say "PyTorch: SDPA flash / cuDNN at $LENGTHS"
stage "$PYTHON" native/bench/cuda_baselines.py --json "$RESULTS/baselines.json" --models "" \
  --attention "$LENGTHS" 2>&1 | tee "$RESULTS/baselines.log" || status=1

# >>> XAttention / FlexPrefill end to end (helper "estim": native/bench/sparse_e2e_bench.*) >>>
# Google Benchmark's JSON of SparseE2E ("$RESULTS/e2e.json"), measured in this run after the
# SDPA baselines; sparse_bench_table.py turns it into rows with the speedup over the faster SDPA
# backend of baselines.json (same card, same run).
E2E_JSON="$RESULTS/e2e.json"
say "Tandem: XAttention / FlexPrefill end to end at $LENGTHS"
E2E_FILTER="SparseE2E/n:($(echo "$LENGTHS" | sed 's/,/|/g'))/"
stage "$BUILD_DIR/native/bench/tandem_bench" --benchmark_filter="$E2E_FILTER" \
  --benchmark_counters_tabular=true --benchmark_out="$E2E_JSON" --benchmark_out_format=json \
  2>&1 | tee "$RESULTS/e2e.log" || status=1
# <<< end of the end-to-end stage <<<

say "table"
"$PYTHON" native/bench/sparse_bench_table.py "$RESULTS/ours.json" "$RESULTS/baselines.json" \
  "$E2E_JSON" | tee "$RESULTS/table.md"
exit "$status"
