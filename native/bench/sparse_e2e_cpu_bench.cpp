// Block-sparse prefill end to end on the CPU (issue 4: a long prompt prefilled sparsely on a
// laptop): the CPU backend's attention_sparse - XAttention (S = 8 and 16, tau 0.9) or FlexPrefill
// (gamma 0.95, tau 0.1, min budget 1024): estimate, select, block-sparse attention - against the
// CPU backend's dense causal attention on the same inputs, in the same process. f32 queries and an
// f32 cache holding bf16-rounded keys and values (the GPU benchmark's inputs, sparse_problem.h),
// B = 1, Hq = 32, Hkv = 8, D = 128, block 128, causal, at 4K and 8K (dense attention at 16K takes
// ~20 s a run on two cores).
//
// Counters: total_ms (the whole call), estimate_ms (the estimator and the selection alone),
// estimate_share, density (mean over heads), dense_ms, speedup_vs_dense and rel_err
// (||sparse - dense|| / ||dense|| over every output element). Wall-clock medians of 3 runs.
//   TANDEM_BENCH_THREADS=2 tandem_bench --benchmark_filter=SparseE2ECpu
//       --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attention/cpu_sparse_attention.h"
#include "attention/flexprefill.h"
#include "attention/host_block_plan.h"
#include "attention/xattention.h"
#include "bench_pool.h"
#include "core/dtype.h"
#include "kernels/cpu/kernels.h"
#include "sparse_problem.h"

namespace tdm::cpu {
namespace {

constexpr int kHq = 32, kHkv = 8, kD = 128, kReps = 3;

// One length's inputs, the dense output and how long it took (measured once per length).
struct Problem {
    int64_t n = 0;
    std::vector<float> q, k, v, dense;
    double dense_ms = 0;
};

AttentionCall call_of(int64_t n) {
    return AttentionCall{n, 0, n, kHq, kHkv, kD, 0, 1.0f / std::sqrt(float(kD))};
}

// Median wall-clock milliseconds of kReps runs of fn.
template <class F>
double median_ms(F&& fn) {
    std::vector<double> t;
    for (int r = 0; r < kReps; ++r) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        t.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

Problem& problem(int64_t n) {
    static std::map<int64_t, std::unique_ptr<Problem>> cache;
    if (!cache.empty() && cache.begin()->first != n) cache.clear();  // one length at a time
    auto& p = cache[n];
    if (p) return *p;
    p = std::make_unique<Problem>();
    bench::SparseProblemHost host = bench::make_sparse_problem(n, kHq, kHkv, kD);
    for (auto* cache_values : {&host.k, &host.v})
        for (float& x : *cache_values) x = bf16_to_f32(f32_to_bf16(x));
    p->n = n;
    p->q = std::move(host.q);
    p->k = std::move(host.k);
    p->v = std::move(host.v);
    p->dense.resize(p->q.size());
    const AttentionShape shape{n, 0, n, kHq, kHkv, kD, 0, 1.0f / std::sqrt(float(kD))};
    p->dense_ms = median_ms([&] {
        attention(p->q.data(), p->k.data(), p->v.data(), shape, p->dense.data(), bench::cpu_pool());
    });
    return *p;
}

// method: 0 = XAttention S=8, 1 = XAttention S=16, 2 = FlexPrefill.
void SparseE2ECpu(benchmark::State& state) {
    const int64_t n = state.range(0);
    const int method = int(state.range(1));
    Problem& p = problem(n);
    const AttentionCall call = call_of(n);
    const std::vector<float> thresholds(kHq, 0.9f);
    SparseAttention sparse;
    sparse.method = method == 2 ? TDM_ATTENTION_FLEXPREFILL : TDM_ATTENTION_XATTENTION;
    sparse.block_size = 128;
    sparse.xattn_stride = method == 0 ? 8 : 16;
    sparse.xattn_threshold = thresholds.data();
    sparse.flex_gamma = 0.95f;
    sparse.flex_tau = 0.1f;
    sparse.flex_min_budget = 1024;
    std::vector<float> out(p.q.size()), density(kHq);
    double total = 0, estimate = 0;
    for (auto _ : state) {
        estimate = median_ms([&] {
            HostBlockPlan plan;
            ThreadPool* pool = &bench::cpu_pool();
            const bool planned = method == 2
                                     ? flex::plan(p.q.data(), p.k.data(), call, sparse, plan, pool)
                                     : xattn::plan(p.q.data(), p.k.data(), call, sparse, plan, pool);
            benchmark::DoNotOptimize(planned);
        });
        total = median_ms([&] {
            attention_sparse(p.q.data(), p.k.data(), p.v.data(), call, sparse, out.data(),
                             density.data(), bench::cpu_pool());
        });
        state.SetIterationTime(total * 1e-3);
    }
    double mean_density = 0, num = 0, den = 0;
    for (float d : density) mean_density += d / kHq;
    for (size_t i = 0; i < out.size(); ++i) {
        num += double(out[i] - p.dense[i]) * (out[i] - p.dense[i]);
        den += double(p.dense[i]) * p.dense[i];
    }
    state.counters["total_ms"] = total;
    state.counters["estimate_ms"] = estimate;
    state.counters["estimate_share"] = estimate / total;
    state.counters["density"] = mean_density;
    state.counters["dense_ms"] = p.dense_ms;
    state.counters["speedup_vs_dense"] = p.dense_ms / total;
    state.counters["rel_err"] = std::sqrt(num / std::max(den, 1e-30));
    state.SetLabel(std::string(method == 2   ? "flexprefill g0.95 t0.1 min1024"
                               : method == 0 ? "xattention S8 t0.9"
                                             : "xattention S16 t0.9") +
                   ", " + std::to_string(bench::cpu_pool().size()) + "t");
}

// Every method of one length before the next (the inputs and the dense run are made once per
// length).
BENCHMARK(SparseE2ECpu)
    ->Args({4096, 0})
    ->Args({4096, 1})
    ->Args({4096, 2})
    ->Args({8192, 0})
    ->Args({8192, 1})
    ->Args({8192, 2})
    ->ArgNames({"n", "method"})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tdm::cpu
