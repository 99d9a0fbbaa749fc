// Statistics and sampling on the GPU against their CPU twins: the logits summary kernel
// (uncertainty/cuda_logit_summary.h) finished by token_stats_from_parts vs compute_token_stats,
// sample_from_summary vs Sampler::sample over many seeds and options, the whole-row draws
// (decode/cuda_row_draw.h) vs Sampler::sample and verify_sampled's residual and bonus draws, and
// a CUDA session's Session::sample vs the CPU sampler on the same session's host logits.
//
// Tolerances: the summary sums exp terms in double in another order than the CPU (per-block, then
// rescaled), so the double results agree to ~1e-15 relative and the float outputs to 1 ulp; 4e-7
// relative (+1e-7 absolute for values near 0) covers that. Ids, top logits and tokens are exact:
// a whole-row draw adds fixed-point weights exactly where the host adds doubles, so a token may
// differ only where u falls within ~1e-13 (relative) of a bucket edge, which these few thousand
// draws do not meet.
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaSampling, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): GPU sampling untested";
}

#else

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cuda_test_support.h"
#include "decode/candidate_sampling.h"
#include "decode/cuda_row_draw.h"
#include "decode/sampler.h"
#include "decode/speculative_verify.h"
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

// A row rounded to bf16: many exact ties, which the rank order breaks by id.
std::vector<float> bf16_rounded(std::vector<float> z) {
    for (auto& x : z) {
        if (x == kNegInf) continue;
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        bits = (bits + 0x8000u) & 0xffff0000u;
        std::memcpy(&x, &bits, 4);
    }
    return z;
}

// A row on the device with its summary and pure-temperature warp at T.
struct DeviceRow {
    cuda::DeviceBuffer logits;
    LogitSummary summary;
    SummaryWarp warp;
    DeviceRow(Summarizer& g, const std::vector<float>& z, float T) : logits(upload(z)) {
        TDM_CUDA_CHECK(cudaDeviceSynchronize());
        g.summarizer.run(logits.as<float>(), int64_t(z.size()), TDM_MAX_TOP_K, T, g.stream.get(),
                         &summary);
        // A pure-temperature warp (a row of at most 64 tokens is whole in its summary, which
        // warp_summary calls truncated; its max and Z are the same).
        const auto w = warp_summary(sampler_options(T), summary);
        EXPECT_TRUE(w.has_value());
        if (w) warp = *w;
    }
    WarpedLogits warped() const { return {logits.as<float>(), warp.max_logit, warp.z_total}; }
};

// The rank-order draw over the whole row gives Sampler::sample's token for the same uniform, on
// flat and peaked rows, with ties (bf16-rounded logits), masked tokens and +-0.
TEST(CudaSampling, WholeRowDrawEqualsTheHostSampler) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(4242);
    Summarizer g;
    cuda::RowDrawer drawer;
    int draws = 0;
    for (int64_t V : {1, 7, 1000, 2049, 50257, 128256}) {
        for (float spread : {0.5f, 4.0f}) {
            for (bool ties : {false, true}) {
                auto z = random_row(V, spread, rng);
                if (ties) z = bf16_rounded(std::move(z));
                bool any = false;
                for (float x : z) any |= x != kNegInf;
                if (!any) continue;
                for (float T : {0.6f, 1.0f, 1.7f}) {
                    const DeviceRow row(g, z, T);
                    for (uint64_t seed = 0; seed < 16; ++seed) {
                        Sampler host(sampler_options(T, 0, 1.0f, seed));
                        Rng copy = host.rng();
                        RowDraw d;
                        d.order = RowDraw::Order::kRank;
                        d.vocab = V;
                        d.temperature = T;
                        d.p = row.warped();
                        d.u = copy.uniform();
                        const int32_t want = host.sample(z.data(), V);
                        ASSERT_EQ(drawer.run(d, g.stream.get()), want)
                            << "V=" << V << " spread=" << spread << " ties=" << ties
                            << " T=" << T << " seed=" << seed;
                        ++draws;
                    }
                    // The ends of the walk: u = 0 is the top token; u just below 1 a candidate.
                    RowDraw d;
                    d.vocab = V;
                    d.temperature = T;
                    d.p = row.warped();
                    d.u = 0.0;
                    EXPECT_EQ(drawer.run(d, g.stream.get()), row.summary.ids[0]);
                    d.u = std::nextafter(1.0, 0.0);
                    EXPECT_NE(z[size_t(drawer.run(d, g.stream.get()))], kNegInf);
                }
            }
        }
    }
    EXPECT_GT(draws, 1000);
}

// The id-order draws give verify_sampled's emitted tokens: the residual max(0, p - q) after a
// rejection, the bonus draw from p, and p itself where the residual has no mass (p == q).
TEST(CudaSampling, ResidualDrawEqualsVerifySampled) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(77);
    Summarizer g;
    cuda::RowDrawer drawer;
    std::vector<double> scratch;
    for (int64_t V : {2, 513, 50257, 128256}) {
        for (float T : {0.8f, 1.0f}) {
            const auto zp = random_row(V, 2.0f, rng);
            const auto zq = random_row(V, 2.0f, rng);
            const DeviceRow p(g, zp, T), q(g, zq, T);
            Sampler sampler(sampler_options(T));
            std::vector<float> pp(static_cast<size_t>(V)), qq(static_cast<size_t>(V));
            sampler.probabilities(zp.data(), V, pp.data());
            sampler.probabilities(zq.data(), V, qq.data());
            std::vector<double> residual;
            const double residual_sum = residual_weights(pp.data(), qq.data(), V, residual);
            ASSERT_GT(residual_sum, 0.0);
            std::mt19937_64 us(V);
            for (int k = 0; k < 40; ++k) {
                const double u = double(us() >> 11) * 0x1.0p-53;
                RowDraw d;
                d.order = RowDraw::Order::kId;
                d.vocab = V;
                d.temperature = T;
                d.p = p.warped();
                d.u = u;
                const std::string at = "V=" + std::to_string(V) + " T=" + std::to_string(T) +
                                       " u=" + std::to_string(u);
                // Bonus: p alone.
                EXPECT_EQ(drawer.run(d, g.stream.get()),
                          draw_from_probabilities(pp.data(), V, u, scratch))
                    << at;
                // Rejection: the residual.
                d.q = q.warped();
                EXPECT_EQ(drawer.run(d, g.stream.get()),
                          draw_from_weights(residual.data(), V, residual_sum, u))
                    << at;
                // No residual mass: p itself, as verify_sampled's 0/0 guard.
                d.q = p.warped();
                EXPECT_EQ(drawer.run(d, g.stream.get()),
                          draw_from_probabilities(pp.data(), V, u, scratch))
                    << at;
            }
        }
    }
    RowDraw bad;
    bad.vocab = 10;
    EXPECT_THROW(drawer.run(bad, g.stream.get()), Error);  // no row
}

// A CUDA session samples on the device: the same tokens and stats as the CPU sampler over the
// same session's host logits, through a greedy and a sampled continuation.
TEST(CudaSampling, SessionSamplesOnTheDevice) {
    TDM_SKIP_WITHOUT_GPU();
    LoadOptions options;
    options.device = TDM_DEVICE_CUDA;
    auto model = Model::load(tdm::testing::fixture_dir("llama-bf16"), options);
    const int64_t V = model->config().vocab_size;
    // Greedy, a nucleus, and pure temperature (whose flat rows are drawn over the whole row on
    // the device).
    const std::pair<float, float> cases[] = {
        {0.0f, 0.95f}, {0.8f, 0.95f}, {1.0f, 1.0f}, {1.5f, 1.0f}};
    for (const auto& [T, top_p] : cases) {
        tdm_sampler_options o = default_sampler_options();
        o.temperature = T, o.top_p = top_p, o.seed = 5, o.stats_top_k = 5;
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
