// CPU kernels at the shapes of the 125M Llama of the llama.cpp head-to-head
// (shared/bench/cpu-llamacpp: dim 768, 12 query / 4 KV heads of 64, FFN 2048, vocabulary 32000).
//
//   GEMV (M = 1, decode): counter bytes_per_second = weight bytes streamed per second. The floor
//     is bytes / read bandwidth (~70 GB/s on the reference Zen 5 VM). Each iteration reads a
//     different copy of the matrix, cycling through >= 256 MiB, so the weights come from DRAM as
//     they do in a real decode step (the whole model does not fit in the caches).
//   GEMM (M = 512, prefill): counter FLOPS = 2 M N K per second. The floor is FLOPs / peak (2
//     cores x 2 FMA pipes x 16 lanes x 2 flops x clock; vdpbf16ps doubles it for bf16).
//   Attention: decode (1 query at position 511) and a 512-token prefill; FLOPS counts 4 D
//     (2 D for q.k, 2 D for p v) per visible (query, key) pair of every query head.
//
// Threads: TANDEM_BENCH_THREADS (default 2). Level: TANDEM_CPU_LEVEL caps it (default: best).
// Shared machines are noisy: repeat and read the median rows:
//   tandem_bench --benchmark_filter='Gemv|Gemm' --benchmark_repetitions=5
//                --benchmark_report_aggregates_only=true --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_pool.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kernels.h"

namespace tdm::cpu {
namespace {

ThreadPool& pool() { return bench::cpu_pool(); }

std::vector<float> random_floats(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// `copies` copies of an N x K weight matrix in one dtype, back to back.
struct WeightCopies {
    DType dtype;
    int64_t N, K, copies;
    std::unique_ptr<uint8_t[]> bytes;

    WeightCopies(DType t, int64_t n, int64_t k, int64_t c) : dtype(t), N(n), K(k), copies(c) {
        const size_t one = matrix_bytes();
        bytes.reset(new uint8_t[one * c]);
        std::vector<float> v = random_floats(static_cast<size_t>(n * k), 7);
        for (int64_t i = 0; i < n * k; ++i) {
            if (t == DType::F32) {
                std::memcpy(bytes.get() + 4 * i, &v[i], 4);
            } else {
                uint16_t h = t == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
                std::memcpy(bytes.get() + 2 * i, &h, 2);
            }
        }
        for (int64_t c2 = 1; c2 < c; ++c2) std::memcpy(bytes.get() + one * c2, bytes.get(), one);
    }
    size_t matrix_bytes() const { return static_cast<size_t>(N * K) * dtype_size(dtype); }
    MatrixView matrix(int64_t i) const {
        return {bytes.get() + matrix_bytes() * static_cast<size_t>(i % copies), dtype, N, K};
    }
};

void label(benchmark::State& state, DType t) {
    state.SetLabel(std::string(dtype_name(t)) + " " + isa_level_name(active_isa_level()) + " " +
                   std::to_string(pool().size()) + "t");
}

// Args: dtype, K, N.
void BM_Gemv(benchmark::State& state) {
    const DType t = static_cast<DType>(state.range(0));
    const int64_t K = state.range(1), N = state.range(2);
    const size_t one = static_cast<size_t>(N * K) * dtype_size(t);
    const int64_t copies = std::max<int64_t>(2, static_cast<int64_t>((256u << 20) / one));
    WeightCopies w(t, N, K, copies);
    std::vector<float> x = random_floats(static_cast<size_t>(K), 1), y(static_cast<size_t>(N));
    matmul(x.data(), 1, K, w.matrix(copies - 1), {}, y.data(), N, pool());  // warm-up
    int64_t i = 0;
    for (auto _ : state) {
        matmul(x.data(), 1, K, w.matrix(i++), {}, y.data(), N, pool());
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["bytes_per_second"] =
        benchmark::Counter(static_cast<double>(one), benchmark::Counter::kIsIterationInvariantRate);
    label(state, t);
}

// Args: dtype, K, N (M = 512).
void BM_Gemm(benchmark::State& state) {
    const DType t = static_cast<DType>(state.range(0));
    const int64_t K = state.range(1), N = state.range(2), M = 512;
    WeightCopies w(t, N, K, 1);
    std::vector<float> x = random_floats(static_cast<size_t>(M * K), 1),
                       y(static_cast<size_t>(M * N));
    matmul(x.data(), M, K, w.matrix(0), {}, y.data(), N, pool());  // warm-up: scratch, page faults
    for (auto _ : state) {
        matmul(x.data(), M, K, w.matrix(0), {}, y.data(), N, pool());
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["FLOPS"] =
        benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate);
    label(state, t);
}

void shapes(benchmark::internal::Benchmark* b) {
    const int64_t KN[][2] = {{768, 768}, {768, 256}, {768, 2048}, {2048, 768}, {768, 32000}};
    for (int t : {TDM_DTYPE_F32, TDM_DTYPE_F16, TDM_DTYPE_BF16})
        for (auto& kn : KN) b->Args({t, kn[0], kn[1]});
    b->ArgNames({"dtype", "K", "N"})->UseRealTime();
}

BENCHMARK(BM_Gemv)->Apply(shapes);
BENCHMARK(BM_Gemm)->Apply(shapes);

// Args: n_new, pos0 (12 query heads, 4 KV heads, head_dim 64).
void BM_Attention(benchmark::State& state) {
    const int64_t n_new = state.range(0), pos0 = state.range(1), capacity = pos0 + n_new;
    const int32_t heads = 12, kv_heads = 4, D = 64;
    std::vector<float> q = random_floats(static_cast<size_t>(n_new * heads * D), 1);
    std::vector<float> k = random_floats(static_cast<size_t>(kv_heads * capacity * D), 2);
    std::vector<float> v = random_floats(static_cast<size_t>(kv_heads * capacity * D), 3);
    std::vector<float> out(q.size());
    const AttentionShape s{n_new, pos0, capacity, heads, kv_heads, D, 0, 0.125f};
    attention(q.data(), k.data(), v.data(), s, out.data(), pool());  // warm-up
    for (auto _ : state) {
        attention(q.data(), k.data(), v.data(), s, out.data(), pool());
        benchmark::DoNotOptimize(out.data());
    }
    double pairs = 0;  // visible (query, key) pairs
    for (int64_t i = 0; i < n_new; ++i) pairs += static_cast<double>(pos0 + i + 1);
    state.counters["FLOPS"] =
        benchmark::Counter(4.0 * D * heads * pairs, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(std::string(isa_level_name(active_isa_level())) + " " +
                   std::to_string(pool().size()) + "t");
}
BENCHMARK(BM_Attention)->Args({1, 511})->Args({512, 0})->ArgNames({"n_new", "pos0"})->UseRealTime();

// One decode step's element-wise work for the 125M model, 512 rows (prefill): RMSNorm of the
// hidden state and SwiGLU of the MLP.
void BM_RmsNorm(benchmark::State& state) {
    const int64_t rows = state.range(0), n = 768;
    std::vector<float> x = random_floats(static_cast<size_t>(rows * n), 1), w = random_floats(n, 2);
    std::vector<float> out(x.size());
    for (auto _ : state) {
        rmsnorm(x.data(), {w.data(), DType::F32, n}, 1e-5f, rows, n, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * rows * n * 8);
}
BENCHMARK(BM_RmsNorm)->Arg(1)->Arg(512);

void BM_Swiglu(benchmark::State& state) {
    const int64_t rows = state.range(0), n = 2048;
    std::vector<float> gu = random_floats(static_cast<size_t>(rows * 2 * n), 1);
    std::vector<float> out(static_cast<size_t>(rows * n));
    for (auto _ : state) {
        swiglu(gu.data(), gu.data() + n, rows, n, 2 * n, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * rows * n * 12);
}
BENCHMARK(BM_Swiglu)->Arg(1)->Arg(512);

}  // namespace
}  // namespace tdm::cpu

BENCHMARK_MAIN();
