// The generator (decode/rng.h) and the sampler (decode/sampler.h): the cross-language vectors of
// tests/vectors/sampler.json, a plain full-sort implementation of the specified procedure on
// fresh random inputs, frequencies against softmax, and the option checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "decode/rng.h"
#include "decode/sampler.h"
#include "uncertainty/token_stats.h"
#include "vectors.h"

namespace tdm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint64_t fresh_seed() { return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}(); }

int32_t draw(Sampler& s, const std::vector<float>& z) {
    return s.sample(z.data(), static_cast<int64_t>(z.size()));
}

template <typename Fn>
void expect_invalid(Fn&& fn, const std::vector<std::string>& needles) {
    try {
        fn();
        ADD_FAILURE() << "expected TDM_ERR_INVALID_ARGUMENT";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_INVALID_ARGUMENT) << e.what();
        for (const std::string& needle : needles)
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
                << "'" << needle << "' not in: " << e.what();
    }
}

// The procedure of decode/sampler.h written the plain way: a full stable sort, no lazy ranking.
int32_t reference_sample(const std::vector<float>& z, const tdm_sampler_options& o, Rng& rng) {
    if (o.temperature == 0.0f) {
        int32_t best = 0;
        for (size_t i = 1; i < z.size(); ++i)
            if (z[i] > z[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
        return best;
    }
    std::vector<int32_t> ranked;
    for (size_t i = 0; i < z.size(); ++i)
        if (z[i] != kNegInf) ranked.push_back(static_cast<int32_t>(i));
    std::stable_sort(ranked.begin(), ranked.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
    if (o.top_k > 0 && static_cast<size_t>(o.top_k) < ranked.size()) ranked.resize(static_cast<size_t>(o.top_k));
    const double m = z[static_cast<size_t>(ranked[0])];
    const auto w = [&](int32_t i) {
        return std::exp((static_cast<double>(z[static_cast<size_t>(i)]) - m) / static_cast<double>(o.temperature));
    };
    const auto sum_by_id = [&](size_t count) {
        std::vector<int32_t> ids(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(count));
        std::sort(ids.begin(), ids.end());
        double s = 0.0;
        for (int32_t i : ids) s += w(i);
        return s;
    };
    size_t n = ranked.size();
    double total = sum_by_id(n);
    if (o.top_p < 1.0f) {
        const double threshold = static_cast<double>(o.top_p) * total;
        double c = 0.0;
        for (size_t j = 0; j < ranked.size(); ++j) {
            c += w(ranked[j]);
            if (c >= threshold) {
                n = j + 1;
                break;
            }
        }
        if (n < ranked.size()) total = sum_by_id(n);
    }
    const double target = rng.uniform() * total;
    double c = 0.0;
    for (size_t j = 0; j < n; ++j) {
        c += w(ranked[j]);
        if (c > target) return ranked[j];
    }
    return ranked[n - 1];
}

// The distribution of the procedure, in long double, independently: softmax(z/T), keep the top
// k, keep the smallest rank-order prefix with mass >= top_p, renormalise.
std::vector<long double> reference_distribution(const std::vector<float>& z, float t, int top_k, float top_p) {
    std::vector<int32_t> ranked(z.size());
    std::iota(ranked.begin(), ranked.end(), 0);
    std::stable_sort(ranked.begin(), ranked.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
    size_t keep = (top_k > 0 && static_cast<size_t>(top_k) < z.size()) ? static_cast<size_t>(top_k) : z.size();
    std::vector<long double> p(z.size(), 0.0L);
    long double total = 0;
    for (size_t j = 0; j < keep; ++j) {
        const auto i = static_cast<size_t>(ranked[j]);
        p[i] = std::exp((static_cast<long double>(z[i]) - z[static_cast<size_t>(ranked[0])]) / t);
        total += p[i];
    }
    long double cumulative = 0;
    size_t nucleus = keep;
    for (size_t j = 0; j < keep; ++j) {
        cumulative += p[static_cast<size_t>(ranked[j])] / total;
        if (cumulative >= top_p) {
            nucleus = j + 1;
            break;
        }
    }
    long double kept = 0;
    for (size_t j = 0; j < z.size(); ++j) {
        if (j >= nucleus) p[static_cast<size_t>(ranked[j])] = 0;
        kept += p[static_cast<size_t>(ranked[j])];
    }
    for (long double& v : p) v /= kept;
    return p;
}

// ------------------------------------------------------------------------------------------------
// Generator
// ------------------------------------------------------------------------------------------------

constexpr uint64_t first_splitmix64(uint64_t seed) {
    SplitMix64 s(seed);
    return s.next();
}
// Vigna's reference splitmix64.c, seeded with 0: a known answer independent of our vectors.
static_assert(first_splitmix64(0) == 0xE220A8397B1DCDAFull);

TEST(Rng, MatchesVectors) {
    const auto file = test::load_vectors("sampler.json");
    ASSERT_GE(file.at("rng").size(), 3u);
    for (const auto& v : file.at("rng")) {
        const uint64_t seed = v.at("seed").get<uint64_t>();
        SCOPED_TRACE("seed=" + std::to_string(seed));
        SplitMix64 sm(seed);
        for (const auto& word : v.at("splitmix64")) EXPECT_EQ(sm.next(), test::parse_hex64(word));
        Rng a(seed), b(seed);
        for (const auto& word : v.at("next")) EXPECT_EQ(a.next(), test::parse_hex64(word));
        for (const auto& u : v.at("uniform")) EXPECT_EQ(b.uniform(), u.get<double>());
    }
}

TEST(Rng, UniformIsA53BitFractionInUnitInterval) {
    Rng rng(fresh_seed());
    double sum = 0.0;
    constexpr int n = 100000;
    for (int i = 0; i < n; ++i) {
        const double u = rng.uniform();
        ASSERT_GE(u, 0.0);
        ASSERT_LT(u, 1.0);
        const double scaled = u * 0x1.0p53;
        ASSERT_EQ(scaled, std::floor(scaled));
        sum += u;
    }
    EXPECT_NEAR(sum / n, 0.5, 0.005);  // 5.5 standard deviations
}

TEST(Rng, SeedsGiveDistinctStreams) {
    Rng a(1), b(2), c(1);
    EXPECT_FALSE(a == b);
    EXPECT_TRUE(a == c);
    EXPECT_NE(a.next(), b.next());
}

// ------------------------------------------------------------------------------------------------
// Sampler
// ------------------------------------------------------------------------------------------------

TEST(Sampler, MatchesVectors) {
    const auto file = test::load_vectors("sampler.json");
    ASSERT_EQ(file.at("draws_per_token").get<int>(), 1);
    ASSERT_GT(file.at("cases").size(), 10u);
    for (const auto& c : file.at("cases")) {
        SCOPED_TRACE(c.at("name").get<std::string>());
        const std::vector<float> z = test::case_logits(c);
        const auto& o = c.at("options");
        Sampler sampler(sampler_options(test::json_float(o.at("temperature")), o.at("top_k").get<int32_t>(),
                                     test::json_float(o.at("top_p")), o.at("seed").get<uint64_t>()));
        std::vector<int32_t> got;
        for (size_t i = 0; i < c.at("tokens").size(); ++i) got.push_back(draw(sampler, z));
        EXPECT_EQ(got, c.at("tokens").get<std::vector<int32_t>>());
    }
}

TEST(Sampler, MatchesFullSortReferenceOnFreshInputsAtRaggedSizes) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    const float temperatures[] = {0.0f, 0.05f, 0.3f, 0.7f, 1.0f, 1.5f, 4.0f};
    const float top_ps[] = {1.0f, 0.999f, 0.9f, 0.5f, 0.1f, 1e-6f};
    for (int64_t vocab : {1, 2, 3, 5, 63, 64, 65, 100, 129, 1000, 5000, 40000}) {
        for (int trial = 0; trial < 6; ++trial) {
            std::normal_distribution<float> normal(0.0f, 0.5f + static_cast<float>(gen() % 8));
            std::vector<float> z(static_cast<size_t>(vocab));
            const bool quantised = gen() % 2 == 0;  // many exact ties
            for (float& v : z) v = quantised ? std::round(normal(gen)) : normal(gen);
            for (size_t i = 1; i < z.size(); ++i)
                if (gen() % 5 == 0) z[i] = kNegInf;
            const int32_t k_choices[] = {0, 1, 2, 10, 64, 100, static_cast<int32_t>(vocab) - 1,
                                         static_cast<int32_t>(vocab), static_cast<int32_t>(vocab) + 3};
            tdm_sampler_options o = sampler_options(temperatures[gen() % std::size(temperatures)],
                                                 std::max(0, k_choices[gen() % std::size(k_choices)]),
                                                 top_ps[gen() % std::size(top_ps)], gen());
            SCOPED_TRACE("vocab=" + std::to_string(vocab) + " T=" + std::to_string(o.temperature) +
                         " top_k=" + std::to_string(o.top_k) + " top_p=" + std::to_string(o.top_p));
            Sampler sampler(o);
            Rng reference_rng(o.seed);
            for (int i = 0; i < 40; ++i) ASSERT_EQ(draw(sampler, z), reference_sample(z, o, reference_rng)) << i;
        }
    }
}

// The procedure once more, with every intermediate kept so that several draws (and the
// probabilities) can be checked against one full sort: steps 1-7 do not depend on the
// generator, step 8 is draw(). Written independently of the sampler's bins, buckets and scans.
class FullSortSpec {
public:
    FullSortSpec(const std::vector<float>& z, const tdm_sampler_options& o) : z_(z) {
        for (size_t i = 0; i < z.size(); ++i)
            if (z[i] != kNegInf) ranked_.push_back(static_cast<int32_t>(i));
        // z[a] > z[b] treats -0.0 and +0.0 as equal; stable_sort keeps ties in id order.
        std::stable_sort(ranked_.begin(), ranked_.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
        if (o.top_k > 0 && static_cast<size_t>(o.top_k) < ranked_.size()) ranked_.resize(static_cast<size_t>(o.top_k));
        const double m = z[static_cast<size_t>(ranked_[0])];
        w_.assign(z.size(), 0.0);
        for (int32_t i : ranked_)
            w_[static_cast<size_t>(i)] = std::exp((static_cast<double>(z[static_cast<size_t>(i)]) - m) /
                                                  static_cast<double>(o.temperature));
        const double s = sum_by_id(ranked_.size());
        n_ = ranked_.size();
        if (o.top_p < 1.0f) {
            double c = 0.0;
            for (size_t j = 0; j < ranked_.size(); ++j) {
                c += w_[static_cast<size_t>(ranked_[j])];
                if (c >= static_cast<double>(o.top_p) * s) {
                    n_ = j + 1;
                    break;
                }
            }
        }
        z_total_ = n_ == ranked_.size() ? s : sum_by_id(n_);
    }

    int32_t draw(Rng& rng) const {
        const double target = rng.uniform() * z_total_;
        double c = 0.0;
        for (size_t j = 0; j < n_; ++j) {
            c += w_[static_cast<size_t>(ranked_[j])];
            if (c > target) return ranked_[j];
        }
        return ranked_[n_ - 1];
    }

    std::vector<float> probabilities() const {
        std::vector<float> p(z_.size(), 0.0f);
        for (size_t j = 0; j < n_; ++j) {
            const auto i = static_cast<size_t>(ranked_[j]);
            p[i] = static_cast<float>(w_[i] / z_total_);
        }
        return p;
    }

    size_t nucleus() const { return n_; }

private:
    double sum_by_id(size_t count) const {
        std::vector<int32_t> ids(ranked_.begin(), ranked_.begin() + static_cast<std::ptrdiff_t>(count));
        std::sort(ids.begin(), ids.end());
        double s = 0.0;
        for (int32_t i : ids) s += w_[static_cast<size_t>(i)];
        return s;
    }

    const std::vector<float>& z_;
    std::vector<int32_t> ranked_;  // K in rank order; N is its first n_
    std::vector<double> w_;
    size_t n_ = 0;
    double z_total_ = 0.0;
};

// A fresh Sampler draws `draws` tokens from z as the full-sort spec does, its generator in step
// with the spec's, and then writes the spec's probabilities bit for bit, drawing nothing.
void expect_matches_full_sort(const std::vector<float>& z, const tdm_sampler_options& o,
                              int draws) {
    const FullSortSpec spec(z, o);
    Sampler sampler(o);
    Rng reference_rng(o.seed);
    for (int i = 0; i < draws; ++i)
        ASSERT_EQ(draw(sampler, z), spec.draw(reference_rng)) << "draw " << i;
    ASSERT_TRUE(sampler.rng() == reference_rng);
    std::vector<float> probs(z.size());
    sampler.probabilities(z.data(), static_cast<int64_t>(z.size()), probs.data());
    const std::vector<float> want = spec.probabilities();
    ASSERT_EQ(std::memcmp(probs.data(), want.data(), z.size() * sizeof(float)), 0);
    ASSERT_TRUE(sampler.rng() == reference_rng);
}

// Logits that stress the sampler's bucketing: long runs of exact ties (one value, a few values,
// values on the quarter-nat bin edges), -0.0 next to +0.0, many -inf, one dominant logit, and
// spreads so wide that most tokens land in the last bin.
std::vector<float> tricky_logits(int shape, size_t vocab, std::mt19937_64& gen) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> z(vocab);
    for (size_t i = 0; i < vocab; ++i) {
        const float g = normal(gen);
        switch (shape) {
            case 0: z[i] = g; break;                                       // continuous
            case 1: z[i] = 4.0f * g; break;                                // wide
            case 2: z[i] = std::round(g * 4.0f) / 4.0f; break;             // ties on bin edges
            case 3: z[i] = static_cast<float>(static_cast<int>(gen() % 3) - 1) * 0.0f; break;  // -0/+0 only
            case 4: z[i] = gen() % 3 == 0 ? static_cast<float>(gen() % 3) * 0.5f : gen() % 2 ? -0.0f : 0.0f; break;
            case 5: z[i] = 1.25f; break;                                   // all equal
            case 6: z[i] = gen() % 10 == 0 ? std::round(g) : kNegInf; break;  // mostly masked
            case 7: z[i] = 40.0f * g; break;                               // most in the last bin
            default: z[i] = std::round(g * 8.0f) / 8.0f; break;
        }
    }
    if (shape == 8 && vocab > 1) z[gen() % vocab] = 25.0f;  // one dominant logit
    if (shape == 6) z[gen() % vocab] = 0.5f;                  // at least one candidate
    return z;
}

// Step for step the same as the full sort: identical tokens, identical generator state (one
// uniform per token) and bit-identical probabilities, over vocabularies from 1 to 200000 and
// option sets that make top-k and top-p cut inside runs of ties and bins.
TEST(Sampler, BucketedRankingMatchesFullSortBitForBit) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    const float temperatures[] = {0.01f, 0.25f, 0.7f, 1.0f, 2.5f, 100.0f};
    const float top_ps[] = {1.0f, 1.0f, 0.999f, 0.9f, 0.5f, 1e-3f};
    for (size_t vocab : {1, 2, 3, 17, 64, 65, 300, 1000, 4099, 33333, 128256, 200000}) {
        const int trials = vocab >= 100000 ? 6 : vocab >= 10000 ? 14 : 40;
        for (int trial = 0; trial < trials; ++trial) {
            const int shape = static_cast<int>(gen() % 9);
            const std::vector<float> z = tricky_logits(shape, vocab, gen);
            const auto v = static_cast<int32_t>(vocab);
            const int32_t k_choices[] = {0, 0, 1, 2, 50, 64, v / 3, v / 2 + 1, v - 1, v, v + 5};
            const tdm_sampler_options o = sampler_options(temperatures[gen() % std::size(temperatures)],
                                                       std::max(0, k_choices[gen() % std::size(k_choices)]),
                                                       top_ps[gen() % std::size(top_ps)], gen());
            SCOPED_TRACE("vocab=" + std::to_string(vocab) + " shape=" + std::to_string(shape) +
                         " T=" + std::to_string(o.temperature) + " top_k=" + std::to_string(o.top_k) +
                         " top_p=" + std::to_string(o.top_p));
            ASSERT_NO_FATAL_FAILURE(expect_matches_full_sort(z, o, 25));
        }
    }
}

// Flat distributions at a real vocabulary, where the drawn token's rank and the nucleus are a
// large part of V: the case the bucketed ranking exists for, checked over many draws (so over
// many different rank-order prefixes) and both ways of summing the nucleus in id order.
TEST(Sampler, FlatLargeVocabularyMatchesFullSort) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    constexpr size_t vocab = 128256;
    for (float spread : {1.0f, 4.0f}) {
        std::normal_distribution<float> normal(0.0f, spread);
        std::vector<float> z(vocab);
        for (float& x : z) x = normal(gen);
        for (const tdm_sampler_options& o :
             {sampler_options(1.0f, 0, 1.0f, gen()), sampler_options(1.0f, 0, 0.9f, gen()),
              sampler_options(1.0f, 50, 1.0f, gen()), sampler_options(1.0f, 50, 0.9f, gen()),
              sampler_options(3.0f, 20000, 0.97f, gen()), sampler_options(1.0f, 0, 0.02f, gen())}) {
            SCOPED_TRACE("spread=" + std::to_string(spread) + " top_k=" + std::to_string(o.top_k) +
                         " top_p=" + std::to_string(o.top_p));
            ASSERT_NO_FATAL_FAILURE(expect_matches_full_sort(z, o, 100));
        }
    }
}

// One Sampler reused across calls whose vocabularies and masks differ: the per-call scratch
// (bins, buckets, marks of K) must not leak from one call into the next.
TEST(Sampler, ScratchDoesNotLeakBetweenCalls) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    for (const tdm_sampler_options& o : {sampler_options(0.8f, 0, 0.95f, gen()),
                                         sampler_options(1.3f, 40, 1.0f, gen()),
                                         sampler_options(1.0f, 300, 0.8f, gen())}) {
        SCOPED_TRACE("top_k=" + std::to_string(o.top_k) + " top_p=" + std::to_string(o.top_p));
        Sampler sampler(o);
        Rng reference_rng(o.seed);
        for (int call = 0; call < 60; ++call) {
            const size_t vocab = 1 + gen() % 5000;
            const std::vector<float> z = tricky_logits(static_cast<int>(gen() % 9), vocab, gen);
            SCOPED_TRACE("call=" + std::to_string(call) + " vocab=" + std::to_string(vocab));
            const FullSortSpec spec(z, o);
            ASSERT_EQ(draw(sampler, z), spec.draw(reference_rng));
            std::vector<float> probs(vocab);
            sampler.probabilities(z.data(), static_cast<int64_t>(vocab), probs.data());
            ASSERT_TRUE(probs == spec.probabilities());
        }
        EXPECT_TRUE(sampler.rng() == reference_rng);
    }
}

TEST(Sampler, DeterministicForASeed) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> z(777);
    for (float& v : z) v = normal(gen);
    Sampler a(sampler_options(0.9f, 0, 0.95f, seed)), b(sampler_options(0.9f, 0, 0.95f, seed));
    Sampler c(sampler_options(0.9f, 0, 0.95f, seed + 1));
    int differs = 0;
    for (int i = 0; i < 200; ++i) {
        const int32_t t = draw(a, z);
        EXPECT_EQ(t, draw(b, z));
        differs += t != draw(c, z);
    }
    EXPECT_GT(differs, 0);
}

TEST(Sampler, DrawsExactlyOneUniformPerTokenAndNoneWhenGreedy) {
    std::vector<float> z = {0.3f, -1.0f, 2.0f, 2.0f, kNegInf, 0.0f, 1.5f};
    for (const tdm_sampler_options& o : {sampler_options(1.0f, 0, 1.0f, 9), sampler_options(0.6f, 3, 1.0f, 9),
                                         sampler_options(1.4f, 0, 0.5f, 9), sampler_options(1.0f, 2, 0.3f, 9)}) {
        Sampler sampler(o);
        Rng expected(9);
        for (int i = 0; i < 25; ++i) {
            draw(sampler, z);
            expected.next();
        }
        EXPECT_TRUE(sampler.rng() == expected);
    }
    Sampler greedy(sampler_options(0.0f, 0, 1.0f, 9));
    for (int i = 0; i < 25; ++i) EXPECT_EQ(draw(greedy, z), 2);  // tie 2/3: the lower id
    EXPECT_TRUE(greedy.rng() == Rng(9));
}

// Pearson's chi-square of `draws` tokens against the distribution p (cells with p = 0 must stay
// empty). The seed is fixed so the test is deterministic; the bound is the 0.999 quantile.
void expect_frequencies_match(Sampler& sampler, const std::vector<float>& z,
                              const std::vector<long double>& p, double chi2_bound) {
    constexpr int draws = 100000;
    std::vector<int> count(z.size(), 0);
    for (int i = 0; i < draws; ++i) ++count[static_cast<size_t>(draw(sampler, z))];
    double chi2 = 0.0;
    for (size_t i = 0; i < z.size(); ++i) {
        if (p[i] == 0) {
            EXPECT_EQ(count[i], 0) << "token " << i << " is outside the kept set";
            continue;
        }
        const double expected = static_cast<double>(p[i]) * draws;
        chi2 += (count[i] - expected) * (count[i] - expected) / expected;
    }
    EXPECT_LT(chi2, chi2_bound);
    // And the sampler's own description of the distribution agrees with the independent one.
    std::vector<float> probs(z.size());
    sampler.probabilities(z.data(), static_cast<int64_t>(z.size()), probs.data());
    for (size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(probs[i], static_cast<double>(p[i]), 1e-6) << i;
}

TEST(Sampler, FrequenciesMatchSoftmax) {
    const std::vector<float> z = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.5f};
    Sampler plain(sampler_options(0.8f, 0, 1.0f, 12345));
    expect_frequencies_match(plain, z, reference_distribution(z, 0.8f, 0, 1.0f), 20.52);  // 5 dof
    Sampler top_k(sampler_options(1.3f, 3, 1.0f, 777));
    expect_frequencies_match(top_k, z, reference_distribution(z, 1.3f, 3, 1.0f), 13.82);  // 2 dof
    Sampler top_p(sampler_options(1.0f, 0, 0.8f, 4242));
    const auto nucleus = reference_distribution(z, 1.0f, 0, 0.8f);
    ASSERT_EQ(std::count_if(nucleus.begin(), nucleus.end(), [](long double v) { return v > 0; }), 3);
    expect_frequencies_match(top_p, z, nucleus, 13.82);  // 2 dof
}

TEST(Sampler, TopK1AndTinyTopPAreGreedy) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    for (int64_t vocab : {1, 2, 7, 100, 4097}) {
        std::normal_distribution<float> normal(0.0f, 3.0f);
        std::vector<float> z(static_cast<size_t>(vocab));
        for (float& v : z) v = normal(gen);
        const int32_t best = argmax_token(z.data(), vocab);
        Sampler top_k(sampler_options(1.7f, 1, 1.0f, gen()));
        Sampler top_p(sampler_options(2.5f, 0, 1e-7f, gen()));
        for (int i = 0; i < 50; ++i) {
            EXPECT_EQ(draw(top_k, z), best);
            EXPECT_EQ(draw(top_p, z), best);
        }
    }
}

TEST(Sampler, TopKBoundaryTiesKeepTheLowerIds) {
    const std::vector<float> z = {0.0f, 3.0f, 3.0f, 3.0f, 1.0f};
    Sampler sampler(sampler_options(1.0f, 2, 1.0f, 31));
    int seen[5] = {};
    for (int i = 0; i < 2000; ++i) ++seen[draw(sampler, z)];
    EXPECT_EQ(seen[0] + seen[3] + seen[4], 0);
    EXPECT_GT(seen[1], 800);
    EXPECT_GT(seen[2], 800);
    // -0.0 and +0.0 tie as well.
    const std::vector<float> zeros = {-0.0f, 0.0f, -1.0f};
    Sampler first(sampler_options(1.0f, 1, 1.0f, 3));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(draw(first, zeros), 0);
}

TEST(Sampler, MaskedTokensAreNeverDrawn) {
    const std::vector<float> z = {kNegInf, 0.5f, kNegInf, 0.0f, -0.5f, kNegInf};
    Sampler sampler(sampler_options(5.0f, 0, 1.0f, 8));
    for (int i = 0; i < 3000; ++i) {
        const int32_t t = draw(sampler, z);
        EXPECT_TRUE(t == 1 || t == 3 || t == 4) << t;
    }
}

TEST(Sampler, StatsAreTheTemperatureOneStatsWhateverTheOptions) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> normal(0.0f, 4.0f);
    std::vector<float> z(3000);
    for (float& v : z) v = normal(gen);
    tdm_token_stats want;
    compute_token_stats(z.data(), static_cast<int64_t>(z.size()), 3, &want);
    for (const tdm_sampler_options& base :
         {sampler_options(0.0f), sampler_options(0.3f, 5), sampler_options(3.0f, 0, 0.5f)}) {
        tdm_sampler_options o = base;
        o.stats_top_k = 3;
        Sampler sampler(o);
        tdm_token_stats got;
        std::memset(&got, 0xAB, sizeof got);
        sampler.sample(z.data(), static_cast<int64_t>(z.size()), &got);
        EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << "T=" << o.temperature;
    }
    // K is clamped to the vocabulary.
    tdm_sampler_options o = sampler_options(1.0f);
    o.stats_top_k = 2;
    Sampler sampler(o);
    const float single = 0.25f;
    tdm_token_stats s;
    EXPECT_EQ(sampler.sample(&single, 1, &s), 0);
    EXPECT_EQ(s.top_k, 1u);
    EXPECT_EQ(s.max_prob, 1.0f);
}

TEST(Sampler, ProbabilitiesSumToOneOverTheKeptSet) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> z(2049);
    for (float& v : z) v = normal(gen);
    for (const tdm_sampler_options& o : {sampler_options(0.7f), sampler_options(1.2f, 40),
                                         sampler_options(1.0f, 0, 0.9f),
                                         sampler_options(0.9f, 100, 0.8f), sampler_options(0.0f)}) {
        Sampler sampler(o);
        std::vector<float> p(z.size());
        sampler.probabilities(z.data(), static_cast<int64_t>(z.size()), p.data());
        const auto want = reference_distribution(z, o.temperature == 0.0f ? 1e-30f : o.temperature,
                                                 o.temperature == 0.0f ? 1 : o.top_k, o.top_p);
        double sum = 0.0;
        for (size_t i = 0; i < z.size(); ++i) {
            sum += p[i];
            EXPECT_NEAR(p[i], static_cast<double>(want[i]), 1e-6) << i;
            EXPECT_EQ(p[i] == 0.0f, want[i] == 0) << i;
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
        EXPECT_TRUE(sampler.rng() == Rng(o.seed));  // probabilities() draws nothing
    }
}

TEST(Sampler, RejectsInvalidOptions) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    expect_invalid([&] { Sampler s(sampler_options(nan)); }, {"temperature", "nan"});
    expect_invalid([&] { Sampler s(sampler_options(-0.5f)); }, {"temperature", "-0.5"});
    expect_invalid([&] { Sampler s(sampler_options(inf)); }, {"temperature", "inf"});
    expect_invalid([&] { Sampler s(sampler_options(1.0f, -1)); }, {"top_k", "-1"});
    expect_invalid([&] { Sampler s(sampler_options(1.0f, 0, 0.0f)); }, {"top_p", "got 0"});
    expect_invalid([&] { Sampler s(sampler_options(1.0f, 0, 1.5f)); }, {"top_p", "1.5"});
    expect_invalid([&] { Sampler s(sampler_options(1.0f, 0, -0.25f)); }, {"top_p", "-0.25"});
    expect_invalid([&] { Sampler s(sampler_options(1.0f, 0, nan)); }, {"top_p", "nan"});
    tdm_sampler_options o = sampler_options(1.0f);
    o.stats_top_k = 0;
    expect_invalid([&] { Sampler s(o); }, {"stats_top_k", "got 0"});
    o.stats_top_k = TDM_MAX_TOP_K + 1;
    expect_invalid([&] { Sampler s(o); }, {"stats_top_k", "65"});
    // The edges of the valid ranges are accepted.
    o = sampler_options(0.0f, 0, 1.0f);
    o.stats_top_k = TDM_MAX_TOP_K;
    EXPECT_NO_THROW(Sampler{o});
    o.stats_top_k = 1;
    o.top_p = 1e-30f;
    EXPECT_NO_THROW(Sampler{o});
}

TEST(Sampler, RejectsInvalidLogits) {
    Sampler sampler(sampler_options(1.0f));
    Sampler greedy(sampler_options(0.0f));
    std::vector<float> z = {0.0f, 1.0f, std::numeric_limits<float>::quiet_NaN()};
    expect_invalid([&] { draw(sampler, z); }, {"logit[2] is NaN"});
    expect_invalid([&] { draw(greedy, z); }, {"logit[2] is NaN"});
    z[2] = std::numeric_limits<float>::infinity();
    expect_invalid([&] { draw(sampler, z); }, {"logit[2] is +inf"});
    const std::vector<float> masked(3, kNegInf);
    expect_invalid([&] { draw(sampler, masked); }, {"all 3 logits are -inf"});
    expect_invalid([&] { draw(greedy, masked); }, {"all 3 logits are -inf"});
    expect_invalid([&] { sampler.sample(nullptr, 3); }, {"NULL"});
    expect_invalid([&] { sampler.sample(z.data(), 0); }, {"vocab", "got 0"});
}

}  // namespace
}  // namespace tdm
