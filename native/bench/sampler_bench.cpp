// The host sampler (decode/sampler.h) at a Llama-3 vocabulary (V = 128256) on random logits.
//
// Flat distributions are the expensive ones: the drawn token's rank (and the nucleus) is then a
// sizeable fraction of V, and that whole rank-order prefix must be ranked and summed in order.
// Arguments: std of the normal logits x10 (10 = std 1, 40 = std 4; 0 = "peaked": std 1 plus one
// logit 30 nats above the rest), top_k, top_p x100. Temperature 1 throughout.
//   tandem_bench --benchmark_filter=Sampler --benchmark_repetitions=5
//                --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "decode/sampler.h"

namespace tdm {
namespace {

constexpr int64_t kVocab = 128256;

std::vector<float> bench_logits(int64_t std_x10) {
    std::mt19937_64 gen(1234);
    std::normal_distribution<float> normal(0.0f, std_x10 == 0 ? 1.0f : static_cast<float>(std_x10) / 10.0f);
    std::vector<float> z(static_cast<size_t>(kVocab));
    for (float& v : z) v = normal(gen);
    if (std_x10 == 0) z[4321] = 30.0f;
    return z;
}

tdm_sampler_options bench_options(const benchmark::State& state) {
    return sampler_options(1.0f, static_cast<int32_t>(state.range(1)),
                           static_cast<float>(state.range(2)) / 100.0f, 99);
}

void BM_SamplerSample(benchmark::State& state) {
    const std::vector<float> z = bench_logits(state.range(0));
    Sampler sampler(bench_options(state));
    int64_t sum = 0;
    for (auto _ : state) {
        sum += sampler.sample(z.data(), kVocab);
        benchmark::DoNotOptimize(sum);
    }
}

void BM_SamplerProbabilities(benchmark::State& state) {
    const std::vector<float> z = bench_logits(state.range(0));
    Sampler sampler(bench_options(state));
    std::vector<float> p(static_cast<size_t>(kVocab));
    for (auto _ : state) {
        sampler.probabilities(z.data(), kVocab, p.data());
        benchmark::DoNotOptimize(p.data());
    }
}

void sampler_args(benchmark::internal::Benchmark* b) {
    for (int64_t std_x10 : {10, 40, 0})
        for (int64_t top_k : {0, 50})
            for (int64_t top_p : {100, 90}) b->Args({std_x10, top_k, top_p});
    b->ArgNames({"std_x10", "top_k", "top_p_x100"})->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_SamplerSample)->Apply(sampler_args);
BENCHMARK(BM_SamplerProbabilities)->Apply(sampler_args);

}  // namespace
}  // namespace tdm
