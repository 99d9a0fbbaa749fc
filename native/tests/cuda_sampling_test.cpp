// Statistics and sampling on the GPU against their CPU twins: the logits summary kernel
// (uncertainty/cuda_logit_summary.h) finished by token_stats_from_parts vs compute_token_stats,
// sample_from_summary vs Sampler::sample over many seeds and options, and a CUDA session's
// Session::sample vs the CPU sampler on the same session's host logits.
//
// Tolerances: the summary sums exp terms in double in another order than the CPU (per-block, then
// rescaled), so the double results agree to ~1e-15 relative and the float outputs to 1 ulp; 4e-7
// relative (+1e-7 absolute for values near 0) covers that. Ids, top logits and tokens are exact.
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaSampling, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): GPU sampling untested";
}

#else

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cuda_test_support.h"
#include "decode/candidate_sampling.h"
#include "decode/sampler.h"
#include "fixtures.h"
#include "model/model.h"
#include "model/session.h"
#include "uncertainty/cuda_logit_summary.h"
#include "uncertainty/token_stats.h"

namespace tdm {
namespace {

using cuda::testing::upload;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A logits row: Gaussian with the given spread, some exact ties and some masked (-inf) tokens.
std::vector<float> random_row(int64_t V, float spread, std::mt19937& rng) {
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> z(static_cast<size_t>(V));
    for (auto& x : z) x = d(rng);
    std::uniform_int_distribution<int64_t> pick(0, V - 1);
    for (int i = 0; i < int(V / 50); ++i) z[size_t(pick(rng))] = z[size_t(pick(rng))];  // ties
    for (int i = 0; i < int(V / 20); ++i) z[size_t(pick(rng))] = kNegInf;                // masked
    if (V > 3) z[size_t(pick(rng))] = -0.0f, z[size_t(pick(rng))] = 0.0f;
    return z;
}

struct Summarizer {
    cuda::Stream stream;
    cuda::LogitSummarizer summarizer;
    LogitSummary run(const std::vector<float>& z, int want, float T) {
        cuda::DeviceBuffer d = upload(z);
        // A pageable cudaMemcpy may return before its DMA lands; the summary runs on another
        // stream, so wait for the upload first.
        TDM_CUDA_CHECK(cudaDeviceSynchronize());
        LogitSummary s;
        summarizer.run(d.as<float>(), int64_t(z.size()), want, T, stream.get(), &s);
        return s;
    }
};

void expect_close(float got, float want, const char* what) {
    EXPECT_NEAR(got, want, 4e-7f * std::fabs(want) + 1e-7f) << what;
}

TEST(CudaSampling, SummaryStatsMatchTheCpuTwin) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(20251);
    Summarizer g;
    for (int64_t V : {1, 2, 7, 1000, 2049, 50257, 128256}) {
        for (int k : {1, 2, 5, 64}) {
            for (float spread : {0.5f, 4.0f}) {
                const auto z = random_row(V, spread, rng);
                bool any = false;
                for (float x : z) any |= x != kNegInf;
                if (!any) continue;
                const int kk = int(std::min<int64_t>(k, V));
                tdm_token_stats cpu{}, gpu{};
                compute_token_stats(z.data(), V, kk, &cpu);
                const LogitSummary s = g.run(z, kk, 0.7f);
                ASSERT_EQ(s.count, kk);
                EXPECT_EQ(s.invalid_index, -1);
                int64_t candidates = 0;
                double tempered = 0;
                for (float x : z)
                    if (x != kNegInf) {
                        ++candidates;
                        tempered += std::exp((double(x) - double(cpu.top_logits[0])) / double(0.7f));
                    }
                EXPECT_EQ(s.candidates, candidates);
                EXPECT_NEAR(s.tempered, tempered, 1e-12 * tempered);
                token_stats_from_parts(s.ids, s.logits, kk, s.rest, s.tilt, V, &gpu);
                const std::string at = "V=" + std::to_string(V) + " k=" + std::to_string(k);
                for (int j = 0; j < TDM_MAX_TOP_K; ++j) {
                    ASSERT_EQ(gpu.top_ids[j], cpu.top_ids[j]) << at << " rank " << j;
                    ASSERT_EQ(gpu.top_logits[j], cpu.top_logits[j]) << at << " rank " << j;
                    expect_close(gpu.top_probs[j], cpu.top_probs[j], at.c_str());
                }
                EXPECT_EQ(gpu.top_k, cpu.top_k);
                expect_close(gpu.entropy, cpu.entropy, at.c_str());
                expect_close(gpu.entropy_bits, cpu.entropy_bits, at.c_str());
                expect_close(gpu.entropy_normalized, cpu.entropy_normalized, at.c_str());
                expect_close(gpu.max_prob, cpu.max_prob, at.c_str());
                expect_close(gpu.logsumexp, cpu.logsumexp, at.c_str());
                EXPECT_EQ(gpu.au, cpu.au) << at;  // the same top logits into the same function
                EXPECT_EQ(gpu.eu, cpu.eu) << at;
            }
        }
    }
}

TEST(CudaSampling, SummaryReportsTheFirstInvalidLogit) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(7);
    Summarizer g;
    for (int64_t V : {5, 3001, 128256}) {
        auto z = random_row(V, 1.0f, rng);
        const int64_t first = V / 3, second = V - 1;
        z[size_t(second)] = std::numeric_limits<float>::quiet_NaN();
        z[size_t(first)] = std::numeric_limits<float>::infinity();
        EXPECT_EQ(g.run(z, 2, 1.0f).invalid_index, first) << "V=" << V;
        std::vector<float> masked(size_t(V), kNegInf);
        const LogitSummary s = g.run(masked, 2, 1.0f);
        EXPECT_EQ(s.candidates, 0);
        EXPECT_EQ(s.invalid_index, -1);
    }
    EXPECT_THROW(g.run(std::vector<float>(10, 1.0f), 0, 1.0f), Error);
    EXPECT_THROW(g.run(std::vector<float>(10, 1.0f), TDM_MAX_TOP_K + 1, 1.0f), Error);
}

// Tokens drawn from the summary (falling back to the row like Session::sample) equal the CPU
// sampler's, draw for draw, with the generators in step afterwards.
TEST(CudaSampling, SampledTokensMatchTheCpuSampler) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(99);
    Summarizer g;
    struct Case {
        float T;
        int32_t top_k;
        float top_p;
    };
    const Case cases[] = {{0.0f, 0, 1.0f},  {1.0f, 0, 1.0f},   {0.7f, 40, 1.0f}, {1.0f, 0, 0.9f},
                          {1.3f, 8, 0.8f},  {0.5f, 100, 1.0f}, {2.0f, 0, 0.5f},  {1.0f, 1, 1.0f}};
    int decided = 0, total = 0;
    for (int64_t V : {3, 777, 32000, 128256}) {
        for (float spread : {1.0f, 6.0f}) {
            const auto z = random_row(V, spread, rng);
            for (const Case& c : cases) {
                for (uint64_t seed = 0; seed < 12; ++seed) {
                    tdm_sampler_options o = default_sampler_options();
                    o.temperature = c.T, o.top_k = c.top_k, o.top_p = c.top_p, o.seed = seed;
                    Sampler cpu(o), gpu(o);
                    for (int step = 0; step < 4; ++step) {
                        const int32_t want_token = cpu.sample(z.data(), V);
                        const int want = c.T == 0.0f ? 1 : summary_candidates_for(gpu);
                        const LogitSummary s = g.run(z, want, c.T);
                        auto token = sample_from_summary(gpu, s);
                        ++total;
                        if (token) ++decided;
                        else token = gpu.sample(z.data(), V);
                        ASSERT_EQ(*token, want_token)
                            << "V=" << V << " T=" << c.T << " k=" << c.top_k << " p=" << c.top_p
                            << " seed=" << seed << " step=" << step;
                        ASSERT_TRUE(gpu.rng() == cpu.rng());
                    }
                }
            }
        }
    }
    // Peaked rows and cuts decide most draws on the GPU; flat ones fall back (both are tested).
    EXPECT_GT(decided, total / 3);
    EXPECT_LT(decided, total);
}

// A CUDA session samples on the device: the same tokens and stats as the CPU sampler over the
// same session's host logits, through a greedy and a sampled continuation.
TEST(CudaSampling, SessionSamplesOnTheDevice) {
    TDM_SKIP_WITHOUT_GPU();
    LoadOptions options;
    options.device = TDM_DEVICE_CUDA;
    auto model = Model::load(tdm::testing::fixture_dir("llama-bf16"), options);
    const int64_t V = model->config().vocab_size;
    for (float T : {0.0f, 0.8f}) {
        tdm_sampler_options o = default_sampler_options();
        o.temperature = T, o.top_p = 0.95f, o.seed = 5, o.stats_top_k = 5;
        Sampler device_sampler(o), host_sampler(o);
        Session s(model, SessionConfig{});
        const std::vector<int32_t> prompt = {1, 17, 42, 7, 99};
        s.prefill(prompt.data(), int64_t(prompt.size()), false);
        for (int step = 0; step < 24; ++step) {
            tdm_token_stats gs{}, hs{};
            const int32_t token = s.sample(device_sampler, &gs);
            const int32_t expected = host_sampler.sample(s.logits(0), V, &hs);
            ASSERT_EQ(token, expected) << "T=" << T << " step " << step;
            for (int j = 0; j < TDM_MAX_TOP_K; ++j) ASSERT_EQ(gs.top_ids[j], hs.top_ids[j]);
            expect_close(gs.entropy, hs.entropy, "entropy");
            expect_close(gs.logsumexp, hs.logsumexp, "logsumexp");
            EXPECT_EQ(gs.au, hs.au);
            s.decode(token);
        }
    }
}

}  // namespace
}  // namespace tdm

#endif
