#!/usr/bin/env bash
# The CUDA benchmark of issue 3, on the GPU machine: builds tandem_cuda_bench, runs it and the
# PyTorch baselines (cuda_baselines.py) on the same card one after the other, and prints ONE
# table (cuda_bench_table.py): our attention kernel against SDPA flash and cuDNN, our decode and
# prefill against Hugging Face transformers, each next to its measured floor.
#
#   native/bench/run_cuda_bench.sh [RESULTS_DIR]      (default: build-cuda/cuda-bench)
#
# Environment: TANDEM_BENCH_MODELS (default "1b,8b"), TANDEM_BENCH_ATTENTION (default
# "4096,16384,65536"), TANDEM_BENCH_MODEL_DIR (random weights; default /tmp/tandem-bench-models,
# about 19 GB for both shapes), PYTHON (default python3, the one with torch and transformers),
# TANDEM_BENCH_STAGE_TIMEOUT (seconds each of the two measuring stages may run; 0 = no limit: a
# stage cut short still leaves what it measured in its JSON).
# Each stage's full output is kept in RESULTS_DIR (ours.log, baselines.log, *.json, table.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RESULTS="${1:-$ROOT/build-cuda/cuda-bench}"
MODELS="${TANDEM_BENCH_MODELS:-1b,8b}"
ATTENTION="${TANDEM_BENCH_ATTENTION:-4096,16384,65536}"
MODEL_DIR="${TANDEM_BENCH_MODEL_DIR:-/tmp/tandem-bench-models}"
PYTHON="${PYTHON:-python3}"
STAGE_TIMEOUT="${TANDEM_BENCH_STAGE_TIMEOUT:-0}"
mkdir -p "$RESULTS"

say() { printf '==> %s\n' "$*"; }
stage() { if [ "$STAGE_TIMEOUT" -gt 0 ]; then timeout "$STAGE_TIMEOUT" "$@"; else "$@"; fi; }

cd "$ROOT"
say "building tandem_cuda_bench (build-cuda, Release, CUDA on)"
cmake -S . -B build-cuda -DTANDEM_CUDA=ON -DTANDEM_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$RESULTS/build.log" 2>&1 || { tail -n 40 "$RESULTS/build.log"; exit 1; }
cmake --build build-cuda -j16 --target tandem_cuda_bench >> "$RESULTS/build.log" 2>&1 \
  || { grep -E "error|Error" "$RESULTS/build.log" | head -n 40; tail -n 20 "$RESULTS/build.log"; exit 1; }

# Both stages always run and each keeps what it measured, so one failure still leaves a table.
status=0
say "Tandem: copy bandwidth, attention kernel, models $MODELS"
stage build-cuda/native/bench/tandem_cuda_bench --json "$RESULTS/ours.json" --dir "$MODEL_DIR" \
  --models "$MODELS" --attention "$ATTENTION" 2>&1 | tee "$RESULTS/ours.log" || status=1

say "PyTorch: SDPA flash / cuDNN, transformers $MODELS"
stage "$PYTHON" native/bench/cuda_baselines.py --json "$RESULTS/baselines.json" --models "$MODELS" \
  --attention "$ATTENTION" 2>&1 | tee "$RESULTS/baselines.log" || status=1

say "table"
"$PYTHON" native/bench/cuda_bench_table.py "$RESULTS/ours.json" "$RESULTS/baselines.json" \
  | tee "$RESULTS/table.md"
exit "$status"
