// Block-sparse prefill end to end on the GPU (issue 4, benchmark 3): XAttention (S = 8 and 16,
// tau 0.9) and FlexPrefill (gamma 0.95, tau 0.1, min budget 1024), bf16 cache, B = 1, Hq = 32,
// Hkv = 8, D = 128, causal, at 8K / 32K / 128K, on structured synthetic Q/K (sparse_problem.h):
// an attention sink, a local band, a few vertical stripes, plus noise.
//
// Each row times, with CUDA events, the estimation alone (estimate + select + plan) and the whole
// call (estimation + block-sparse kernel), and our dense prefill on the same inputs; counters:
// total_ms, estimate_ms, estimate_share, density (mean over heads), speedup_vs_ours_dense and
// rel_err (||sparse - dense|| / ||dense|| over every 61st query row). run_sparse_bench.sh divides
// the SDPA times measured in the same run by total_ms for the speedup over SDPA.
//   tandem_bench --benchmark_filter=SparseE2E --benchmark_counters_tabular=true
// Only in a CUDA build (the CPU build compiles this file to nothing).
#if defined(TANDEM_HAVE_CUDA)

#include <benchmark/benchmark.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "attention/cuda_attention.h"
#include "attention/cuda_sparse_estimation.h"
#include "core/dtype.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_buffer.h"
#include "sparse_problem.h"

namespace tdm::cuda {
namespace {

constexpr int kHq = 32, kHkv = 8, kD = 128;

struct Problem {
    int64_t n = 0;
    DeviceBuffer q, k, v, out, dense;
};

// The structured synthetic inputs of sparse_problem.h, f32 queries and a bf16 cache.
std::unique_ptr<Problem> make_problem(int64_t n) {
    auto p = std::make_unique<Problem>();
    p->n = n;
    const bench::SparseProblemHost host = bench::make_sparse_problem(n, kHq, kHkv, kD);
    std::vector<uint16_t> k(host.k.size()), v(host.v.size());
    for (size_t i = 0; i < k.size(); ++i) {
        k[i] = f32_to_bf16(host.k[i]);
        v[i] = f32_to_bf16(host.v[i]);
    }
    p->q = DeviceBuffer(host.q.size() * 4);
    p->k = DeviceBuffer(k.size() * 2);
    p->v = DeviceBuffer(v.size() * 2);
    p->out = DeviceBuffer(host.q.size() * 4);
    p->dense = DeviceBuffer(host.q.size() * 4);
    TDM_CUDA_CHECK(cudaMemcpy(p->q.data(), host.q.data(), host.q.size() * 4, cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(p->k.data(), k.data(), k.size() * 2, cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(p->v.data(), v.data(), v.size() * 2, cudaMemcpyHostToDevice));
    return p;
}

Problem& problem(int64_t n) {
    static std::map<int64_t, std::unique_ptr<Problem>> cache;
    if (cache.size() > 0 && cache.begin()->first != n) cache.clear();  // one size in memory at a time
    auto& p = cache[n];
    if (!p) p = make_problem(n);
    return *p;
}

AttentionArgs args_of(Problem& p, float* out) {
    return AttentionArgs{.q = p.q.as<float>(), .k_cache = p.k.as<uint16_t>(), .v_cache = p.v.as<uint16_t>(),
                         .out = out, .lse = nullptr, .n_new = p.n, .pos0 = 0, .capacity = p.n,
                         .heads = kHq, .kv_heads = kHkv, .head_dim = kD, .window = 0,
                         .scale = 1.0f / std::sqrt(float(kD))};
}

// Median milliseconds of `reps` runs of fn on stream 0, timed with events.
template <class F>
double median_ms(F&& fn, int reps) {
    cudaEvent_t a, b;
    TDM_CUDA_CHECK(cudaEventCreate(&a));
    TDM_CUDA_CHECK(cudaEventCreate(&b));
    fn();  // warm-up (allocations, module load)
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        TDM_CUDA_CHECK(cudaEventRecord(a, nullptr));
        fn();
        TDM_CUDA_CHECK(cudaEventRecord(b, nullptr));
        TDM_CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        TDM_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    (void)cudaEventDestroy(a);
    (void)cudaEventDestroy(b);
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// method: 0 = XAttention S=8, 1 = XAttention S=16, 2 = FlexPrefill; 3 and 4 = XAttention S=8 and
// S=16 with the fp8 estimation (XAttentionParams::fp8).
void SparseE2E(benchmark::State& state) {
    const int64_t n = state.range(0);
    const int method = int(state.range(1));
    Problem& p = problem(n);
    const int reps = n >= 65536 ? 3 : 7;
    SparsePlanner planner;
    const AttentionArgs sparse_args = args_of(p, p.out.as<float>());
    const AttentionArgs dense_args = args_of(p, p.dense.as<float>());
    const EstimateInputs in{.q = sparse_args.q, .k_cache = sparse_args.k_cache, .k_bf16 = true,
                            .n_new = n, .pos0 = 0, .capacity = n, .heads = kHq, .kv_heads = kHkv,
                            .head_dim = kD, .scale = sparse_args.scale};
    auto estimate = [&](bool wgmma = true) -> BlockPlanView {
        if (method == 2) {
            const FlexPrefillParams fp{.block_size = 128, .gamma = 0.95f, .tau = 0.1f, .min_budget = 1024,
                                       .max_budget = 0, .compat = 0};
            return planner.flexprefill(in, fp, nullptr);
        }
        const XAttentionParams xp{.block_size = 128, .stride = method % 3 == 0 ? 8 : 16,
                                  .thresholds = nullptr, .threshold = 0.9f, .wgmma = wgmma,
                                  .fp8 = method >= 3};
        return planner.xattention(in, xp, nullptr);
    };
    double total = 0, est = 0, dense = 0, est_mma = 0;
    for (auto _ : state) {
        // XAttention's estimation on the previous (mma.sync) score engine, same inputs, same run.
        if (method != 2) est_mma = median_ms([&] { (void)estimate(false); }, reps);
        est = median_ms([&] { (void)estimate(); }, reps);
        total = median_ms([&] { attention_prefill_block_sparse(sparse_args, estimate(), nullptr); }, reps);
        dense = median_ms([&] { attention_prefill(dense_args, nullptr); }, reps);
        state.SetIterationTime(total * 1e-3);
    }
    // Density and error of the last run.
    std::vector<float> density(kHq);
    TDM_CUDA_CHECK(cudaMemcpy(density.data(), planner.density(), kHq * 4, cudaMemcpyDeviceToHost));
    double mean_density = 0;
    for (float d : density) mean_density += d / kHq;
    const int64_t row = int64_t(kHq) * kD, step = 61, rows = (n + step - 1) / step;
    std::vector<float> a(size_t(rows * row)), b(size_t(rows * row));
    TDM_CUDA_CHECK(cudaMemcpy2D(a.data(), row * 4, p.out.data(), step * row * 4, row * 4, size_t(rows), cudaMemcpyDeviceToHost));
    TDM_CUDA_CHECK(cudaMemcpy2D(b.data(), row * 4, p.dense.data(), step * row * 4, row * 4, size_t(rows), cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += double(a[i] - b[i]) * (a[i] - b[i]);
        den += double(b[i]) * b[i];
    }
    state.counters["total_ms"] = total;
    state.counters["estimate_ms"] = est;
    state.counters["estimate_share"] = est / total;
    if (method != 2) state.counters["estimate_mma_sync_ms"] = est_mma;
    state.counters["density"] = mean_density;
    state.counters["dense_ms"] = dense;
    state.counters["speedup_vs_ours_dense"] = dense / total;
    state.counters["rel_err"] = std::sqrt(num / std::max(den, 1e-30));
    const char* labels[] = {"xattention S8 t0.9", "xattention S16 t0.9",
                            "flexprefill g0.95 t0.1 min1024", "xattention S8 t0.9 fp8",
                            "xattention S16 t0.9 fp8"};
    state.SetLabel(labels[method]);
}

BENCHMARK(SparseE2E)
    ->ArgsProduct({{8192, 32768, 131072}, {0, 1, 2, 3, 4}})
    ->ArgNames({"n", "method"})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tdm::cuda

#endif  // TANDEM_HAVE_CUDA
