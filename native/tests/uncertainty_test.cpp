// Per-token uncertainty statistics (uncertainty/token_stats.h), LogTokU (uncertainty/logtoku.h)
// and digamma (uncertainty/digamma.h): the cross-language vectors of tests/vectors/, the values of
// ALGORITHMS.md 5.6, and properties on fresh random inputs at ragged sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "uncertainty/digamma.h"
#include "uncertainty/logtoku.h"
#include "uncertainty/token_stats.h"
#include "vectors.h"

namespace tdm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kEulerGamma = 0.57721566490153286060651209008240243;

// A seed that differs per run (fresh inputs), reported on failure so a run can be replayed.
uint64_t fresh_seed() { return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}(); }

std::vector<float> normal_logits(std::mt19937_64& gen, int64_t vocab, double scale) {
    std::normal_distribution<double> normal(0.0, scale);
    std::vector<float> z(static_cast<size_t>(vocab));
    for (float& v : z) v = static_cast<float>(normal(gen));
    return z;
}

tdm_token_stats stats_of(const std::vector<float>& z, int k) {
    tdm_token_stats s;
    compute_token_stats(z.data(), static_cast<int64_t>(z.size()), k, &s);
    return s;
}

// Calls fn, expects tdm::Error(TDM_ERR_INVALID_ARGUMENT) whose message contains `needle`.
template <typename Fn>
void expect_invalid(Fn&& fn, const std::string& needle) {
    try {
        fn();
        ADD_FAILURE() << "expected TDM_ERR_INVALID_ARGUMENT mentioning '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_INVALID_ARGUMENT) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

// A brute-force reference in long double: full stable sort (ties keep the lower id first),
// softmax, H = -sum p log p. log p = (z - m) - log1p(rest), rest = the mass outside the argmax:
// written as log(sum) it would lose the tiny entropies of peaked rows even in long double.
struct ReferenceStats {
    long double entropy = 0, max_prob = 0, lse = 0;
    std::vector<int32_t> top_ids;
    std::vector<long double> top_probs;
};

ReferenceStats reference_stats(const std::vector<float>& z, int k) {
    std::vector<int32_t> ids(z.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
    const long double m = z[ids[0]];
    long double rest = 0;
    for (size_t i = 0; i < z.size(); ++i)
        if (z[i] != kNegInf && static_cast<int32_t>(i) != ids[0]) rest += std::exp(static_cast<long double>(z[i]) - m);
    const long double log_mass = std::log1p(rest);
    ReferenceStats r;
    r.lse = m + log_mass;
    for (float v : z) {
        if (v == kNegInf) continue;
        const long double log_p = (static_cast<long double>(v) - m) - log_mass;
        r.entropy -= std::exp(log_p) * log_p;
    }
    r.max_prob = std::exp(-log_mass);
    for (int j = 0; j < k; ++j) {
        r.top_ids.push_back(ids[static_cast<size_t>(j)]);
        r.top_probs.push_back(std::exp((static_cast<long double>(z[ids[static_cast<size_t>(j)]]) - m) - log_mass));
    }
    return r;
}

// ------------------------------------------------------------------------------------------------
// Digamma
// ------------------------------------------------------------------------------------------------

TEST(Digamma, KnownValues) {
    struct Known {
        double x, psi;
    };
    const Known known[] = {
        {1.0, -0.5772156649015329},
        {0.5, -1.9635100260214235},
        {10.0, 2.251752589066721},
        {2.0, 1.0 - kEulerGamma},
        {0.25, -kEulerGamma - std::numbers::pi / 2 - 3 * std::numbers::ln2},
        {1.0 / 3.0, -kEulerGamma - std::numbers::pi / (2 * std::numbers::sqrt3) - 1.5 * std::log(3.0)},
        {6.0, 1.0 + 0.5 + 1.0 / 3 + 0.25 + 0.2 - kEulerGamma},
        {-0.5, 0.03648997397857652},
        {1e-8, -1e8 - kEulerGamma + 1.6449340668482264e-8},  // -1/x - gamma + (pi^2/6) x
    };
    for (const Known& k : known)
        EXPECT_NEAR(digamma(k.x), k.psi, 1e-12 * std::max(1.0, std::abs(k.psi))) << "x=" << k.x;
}

TEST(Digamma, HalfIntegersAndIntegersMatchClosedForms) {
    // psi(n) = H_{n-1} - gamma; psi(n + 1/2) = 2 sum_{k<=n} 1/(2k-1) - gamma - 2 ln 2.
    double harmonic = 0.0, odd = 0.0;
    for (int n = 1; n <= 60; ++n) {
        EXPECT_NEAR(digamma(n), harmonic - kEulerGamma, 1e-13) << n;
        odd += 2.0 / (2 * n - 1);
        EXPECT_NEAR(digamma(n + 0.5), odd - kEulerGamma - 2 * std::numbers::ln2, 1e-13) << n;
        harmonic += 1.0 / n;
    }
}

TEST(Digamma, RecurrenceAndReflectionOnFreshInputs) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> wide(1e-4, 40.0), unit(0.01, 0.99);
    for (int i = 0; i < 2000; ++i) {
        const double x = wide(gen);
        // psi(x + 1) - psi(x) = 1/x, across the switch to the asymptotic series at 6.
        EXPECT_NEAR(digamma(x + 1.0) - digamma(x), 1.0 / x, 1e-12 * std::max(1.0, 1.0 / x)) << x;
        // psi(1 - y) - psi(y) = pi cot(pi y).
        const double y = unit(gen);
        EXPECT_NEAR(digamma(1.0 - y) - digamma(y), std::numbers::pi / std::tan(std::numbers::pi * y),
                    1e-11 * std::max(1.0, std::abs(1.0 / y)))
            << y;
    }
}

TEST(Digamma, PolesAndSpecialValues) {
    EXPECT_TRUE(std::isnan(digamma(0.0)));
    EXPECT_TRUE(std::isnan(digamma(-1.0)));
    EXPECT_TRUE(std::isnan(digamma(-7.0)));
    EXPECT_TRUE(std::isnan(digamma(std::numeric_limits<double>::quiet_NaN())));
    EXPECT_TRUE(std::isnan(digamma(-std::numeric_limits<double>::infinity())));
    EXPECT_EQ(digamma(std::numeric_limits<double>::infinity()), std::numeric_limits<double>::infinity());
    EXPECT_NEAR(digamma(1e300), std::log(1e300), 1e-12 * std::log(1e300));
}

TEST(Digamma, MatchesVectors) {
    const auto file = test::load_vectors("logtoku.json");
    const auto& d = file.at("digamma");
    const double rel = d.at("tolerance").at("rel"), abs = d.at("tolerance").at("abs");
    ASSERT_GT(d.at("values").size(), 20u);
    for (const auto& v : d.at("values")) {
        const double x = v.at("x");
        if (v.at("psi").is_null()) {
            EXPECT_TRUE(std::isnan(digamma(x))) << x;
        } else {
            const double want = v.at("psi");
            EXPECT_TRUE(test::within(digamma(x), want, rel, abs))
                << "x=" << x << " got " << digamma(x) << " want " << want;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// LogTokU
// ------------------------------------------------------------------------------------------------

double au(std::vector<float> a) { return logtoku_au(a.data(), static_cast<int>(a.size())); }
double eu(std::vector<float> a) { return logtoku_eu(a.data(), static_cast<int>(a.size())); }

TEST(LogTokU, Section56Values) {
    EXPECT_NEAR(au({1.0f, 1.0f}), 0.5, 1e-15);            // psi(3) - psi(2)
    EXPECT_NEAR(au({1000.0f, 1000.0f}), 0.69290, 5e-6);    // -> ln 2 from below
    EXPECT_EQ(std::round(au({1000.0f, 1000.0f}) * 1e5) / 1e5, 0.69290);
    EXPECT_GE(au({5.0f, 0.0f}), 0.0);
    EXPECT_LT(au({5.0f, 0.0f}), 1e-5);                      // ~ 0
    EXPECT_EQ(eu({0.0f, 0.0f}), 1.0);
    EXPECT_NEAR(eu({20.0f, 18.0f}), 0.05, 1e-16);           // 2 / 40
}

TEST(LogTokU, AleatoricTendsToLnKForEqualEvidence) {
    double previous = 0.0;
    for (float a : {0.5f, 1.0f, 10.0f, 100.0f, 1e4f, 1e6f}) {
        const double value = au({a, a});
        EXPECT_GT(value, previous) << a;
        EXPECT_LT(value, std::numbers::ln2) << a;
        previous = value;
    }
    EXPECT_NEAR(previous, std::numbers::ln2, 1e-6);
    EXPECT_NEAR(au(std::vector<float>(5, 1e6f)), std::log(5.0), 1e-5);
}

TEST(LogTokU, EpistemicDecreasesInEachEvidenceAndIgnoresNegatives) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<float> value(0.0f, 50.0f);
    for (int trial = 0; trial < 200; ++trial) {
        const int k = 1 + static_cast<int>(gen() % 8);
        std::vector<float> a(static_cast<size_t>(k));
        for (float& v : a) v = value(gen);
        const size_t j = gen() % a.size();
        const double before = eu(a);
        std::vector<float> more = a;
        more[j] += 0.5f + value(gen);
        EXPECT_LT(eu(more), before);
        std::vector<float> negative = a;
        negative[j] = -value(gen) - 1.0f;  // ReLU: the same as zero evidence
        std::vector<float> zero = a;
        zero[j] = 0.0f;
        EXPECT_EQ(eu(negative), eu(zero));
        EXPECT_GT(eu(zero), 0.0);
        EXPECT_LE(eu(zero), 1.0);
    }
}

TEST(LogTokU, OrderInvariantBitForBit) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> value(12.0f, 8.0f);
    for (int k : {2, 3, 5, 17, 64}) {
        std::vector<float> a(static_cast<size_t>(k));
        for (float& v : a) v = value(gen);
        const double au0 = au(a), eu0 = eu(a);
        for (int p = 0; p < 20; ++p) {
            std::shuffle(a.begin(), a.end(), gen);
            EXPECT_EQ(au(a), au0) << "k=" << k;
            EXPECT_EQ(eu(a), eu0) << "k=" << k;
        }
    }
}

TEST(LogTokU, AleatoricIsAnEntropyBetweenZeroAndLnK) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<float> value(-5.0f, 60.0f);
    for (int trial = 0; trial < 300; ++trial) {
        const int k = 1 + static_cast<int>(gen() % 64);
        std::vector<float> a(static_cast<size_t>(k));
        for (float& v : a) v = value(gen);
        const double u = au(a);
        EXPECT_GE(u, 0.0);
        EXPECT_LE(u, std::log(static_cast<double>(k)) + 1e-12);
    }
}

TEST(LogTokU, NegativeAndMaskedEvidenceIsClampedInAleatoric) {
    const float eps = static_cast<float>(kLogTokUEpsilon);
    EXPECT_EQ(au({-3.5f, -0.75f}), au({eps, eps}));
    EXPECT_EQ(au({25.5f, kNegInf}), au({25.5f, eps}));
    EXPECT_EQ(eu({25.5f, kNegInf}), eu({25.5f, 0.0f}));
    EXPECT_TRUE(std::isfinite(au({kNegInf, kNegInf})));
    EXPECT_EQ(au({17.0f}), 0.0);  // one outcome: no aleatoric uncertainty
}

TEST(LogTokU, RejectsInvalidEvidence) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    expect_invalid([&] { au({1.0f, nan}); }, "alpha[1] is NaN");
    expect_invalid([&] { eu({inf, 1.0f}); }, "alpha[0] is +inf");
    expect_invalid([&] { logtoku_au(nullptr, 2); }, "NULL");
    const float one = 1.0f;
    expect_invalid([&] { logtoku_eu(&one, 0); }, "got 0");
}

TEST(LogTokU, MatchesVectors) {
    const auto file = test::load_vectors("logtoku.json");
    const auto& tol = file.at("tolerance").at("double");
    const double rel = tol.at("rel"), abs = tol.at("abs");
    ASSERT_GT(file.at("cases").size(), 10u);
    for (const auto& c : file.at("cases")) {
        SCOPED_TRACE(c.at("name").get<std::string>());
        const std::vector<float> alpha = test::json_floats(c.at("alpha"));
        const double want_au = c.at("au"), want_eu = c.at("eu");
        EXPECT_TRUE(test::within(au(alpha), want_au, rel, abs)) << au(alpha) << " vs " << want_au;
        EXPECT_TRUE(test::within(eu(alpha), want_eu, rel, abs)) << eu(alpha) << " vs " << want_eu;
        // The float32 tolerance of the file is what the C ABI (float outputs) is held to.
        const auto& ftol = file.at("tolerance").at("float32");
        EXPECT_TRUE(test::within(static_cast<float>(au(alpha)), want_au, ftol.at("rel"), ftol.at("abs")));
    }
}

// ------------------------------------------------------------------------------------------------
// Token statistics
// ------------------------------------------------------------------------------------------------

TEST(TokenStats, MatchesVectors) {
    const auto file = test::load_vectors("uncertainty.json");
    const auto& tolerance = file.at("tolerance");
    ASSERT_GT(file.at("cases").size(), 10u);
    for (const auto& c : file.at("cases")) {
        SCOPED_TRACE(c.at("name").get<std::string>());
        const std::vector<float> z = test::case_logits(c);
        const int k = c.at("top_k");
        const tdm_token_stats s = stats_of(z, k);
        const auto& e = c.at("expected");
        const auto check = [&](const char* field, double got, double want) {
            const auto& tol = tolerance.at(field);
            EXPECT_TRUE(test::within(got, want, tol.at("rel"), tol.at("abs")))
                << field << ": " << got << " vs " << want;
        };
        check("entropy", s.entropy, e.at("entropy"));
        check("entropy_bits", s.entropy_bits, e.at("entropy_bits"));
        check("entropy_normalized", s.entropy_normalized, e.at("entropy_normalized"));
        check("max_prob", s.max_prob, e.at("max_prob"));
        check("logsumexp", s.logsumexp, e.at("logsumexp"));
        check("au", s.au, e.at("au"));
        check("eu", s.eu, e.at("eu"));
        ASSERT_EQ(s.top_k, static_cast<uint32_t>(k));
        const std::vector<float> top_logits = test::json_floats(e.at("top_logits"));
        for (int j = 0; j < k; ++j) {
            EXPECT_EQ(s.top_ids[j], e.at("top_ids")[static_cast<size_t>(j)].get<int32_t>()) << j;
            EXPECT_EQ(std::memcmp(&s.top_logits[j], &top_logits[static_cast<size_t>(j)], sizeof(float)), 0)
                << j;  // bit for bit: -0.0 stays -0.0
            check("top_probs", s.top_probs[j], e.at("top_probs")[static_cast<size_t>(j)]);
        }
    }
}

TEST(TokenStats, MatchesLongDoubleReferenceOnFreshInputsAtRaggedSizes) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    for (int64_t vocab : {1, 2, 3, 17, 255, 1000, 4099, 65537}) {
        for (double scale : {0.1, 1.0, 5.0, 20.0}) {
            for (bool masked : {false, true}) {
                std::vector<float> z = normal_logits(gen, vocab, scale);
                if (masked)  // a random quarter of the tokens masked, never all of them
                    for (size_t i = 1; i < z.size(); ++i)
                        if (gen() % 4 == 0) z[i] = kNegInf;
                const int k = static_cast<int>(std::min<int64_t>(vocab, 1 + gen() % TDM_MAX_TOP_K));
                SCOPED_TRACE("vocab=" + std::to_string(vocab) + " scale=" + std::to_string(scale) +
                             " masked=" + std::to_string(masked) + " k=" + std::to_string(k));
                const tdm_token_stats s = stats_of(z, k);
                const ReferenceStats r = reference_stats(z, k);
                // One float32 rounding of a double result; below the smallest normal float (tiny
                // entropies of rows with huge logit gaps) float32 only has absolute precision.
                constexpr double rel = 3e-7, abs = std::numeric_limits<float>::min();
                EXPECT_TRUE(test::within(s.entropy, r.entropy, rel, abs)) << s.entropy << " vs " << (double)r.entropy;
                EXPECT_TRUE(test::within(s.entropy_bits, r.entropy / std::numbers::ln2_v<long double>, rel, abs));
                const double norm = vocab > 1 ? r.entropy / std::log(static_cast<long double>(vocab)) : 0.0;
                EXPECT_TRUE(test::within(s.entropy_normalized, norm, rel, abs));
                EXPECT_TRUE(test::within(s.max_prob, r.max_prob, rel, abs));
                EXPECT_TRUE(test::within(s.logsumexp, r.lse, rel, abs));
                for (int j = 0; j < k; ++j) {
                    EXPECT_EQ(s.top_ids[j], r.top_ids[static_cast<size_t>(j)]) << j;
                    EXPECT_EQ(s.top_logits[j], z[static_cast<size_t>(r.top_ids[static_cast<size_t>(j)])]);
                    EXPECT_TRUE(test::within(s.top_probs[j], r.top_probs[static_cast<size_t>(j)], rel, abs));
                }
                for (int j = k; j < TDM_MAX_TOP_K; ++j) {
                    EXPECT_EQ(s.top_ids[j], -1);
                    EXPECT_EQ(s.top_probs[j], 0.0f);
                }
                EXPECT_EQ(s.au, static_cast<float>(logtoku_au(s.top_logits, k)));
                EXPECT_EQ(s.eu, static_cast<float>(logtoku_eu(s.top_logits, k)));
            }
        }
    }
}

TEST(TokenStats, UniformEntropyIsLnV) {
    for (int64_t vocab : {1, 2, 3, 7, 64, 1000, 32000, 150001}) {
        const std::vector<float> z(static_cast<size_t>(vocab), -3.75f);
        const int k = static_cast<int>(std::min<int64_t>(vocab, 5));
        const tdm_token_stats s = stats_of(z, k);
        const double ln_v = std::log(static_cast<double>(vocab));
        EXPECT_NEAR(s.entropy, ln_v, 2.4e-7 * ln_v) << vocab;
        EXPECT_NEAR(s.entropy_normalized, vocab > 1 ? 1.0 : 0.0, 2.4e-7) << vocab;
        EXPECT_LE(s.entropy_normalized, 1.0f);
        EXPECT_NEAR(s.max_prob, 1.0 / static_cast<double>(vocab), 2.4e-7 / static_cast<double>(vocab));
        for (int j = 0; j < k; ++j) EXPECT_EQ(s.top_ids[j], j);  // ties: lower id first
    }
}

TEST(TokenStats, OneHotHasZeroEntropy) {
    for (int64_t vocab : {1, 2, 9, 1001}) {
        std::vector<float> z(static_cast<size_t>(vocab), kNegInf);
        const size_t hot = static_cast<size_t>(vocab / 2);
        z[hot] = 4.5f;
        const tdm_token_stats s = stats_of(z, 1);
        EXPECT_EQ(s.entropy, 0.0f);
        EXPECT_EQ(s.entropy_normalized, 0.0f);
        EXPECT_EQ(s.max_prob, 1.0f);
        EXPECT_EQ(s.logsumexp, 4.5f);
        EXPECT_EQ(s.top_ids[0], static_cast<int32_t>(hot));
    }
}

TEST(TokenStats, PeakedDistributionKeepsRelativeAccuracy) {
    // H ~ 1e-8 here; lse - sum p z would lose every digit of it in float, and half in double.
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::vector<float> z = normal_logits(gen, 5000, 1.0);
    z[1234] = 30.0f;
    const tdm_token_stats s = stats_of(z, 2);
    const ReferenceStats r = reference_stats(z, 2);
    EXPECT_GT(s.entropy, 0.0f);
    EXPECT_LT(s.entropy, 1e-6f);
    EXPECT_TRUE(test::within(s.entropy, r.entropy, 1e-6, 0.0)) << s.entropy << " vs " << (double)r.entropy;
}

TEST(TokenStats, ShiftAndPermutationInvariant) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937_64 gen(seed);
    std::vector<float> z(3001);
    for (float& v : z) v = static_cast<float>(static_cast<int>(gen() % 41) - 20);  // integers: shifts are exact
    const tdm_token_stats base = stats_of(z, 8);

    std::vector<float> shifted = z;
    for (float& v : shifted) v += 7.0f;
    const tdm_token_stats s = stats_of(shifted, 8);
    EXPECT_EQ(s.entropy, base.entropy);
    EXPECT_EQ(s.max_prob, base.max_prob);
    EXPECT_NEAR(s.logsumexp, base.logsumexp + 7.0f, 1e-5);
    for (int j = 0; j < 8; ++j) EXPECT_EQ(s.top_ids[j], base.top_ids[j]);

    std::vector<int32_t> perm(z.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), gen);
    std::vector<float> permuted(z.size());
    for (size_t i = 0; i < z.size(); ++i) permuted[static_cast<size_t>(perm[i])] = z[i];
    const tdm_token_stats p = stats_of(permuted, 8);
    EXPECT_NEAR(p.entropy, base.entropy, 2.4e-7 * base.entropy);
    EXPECT_NEAR(p.logsumexp, base.logsumexp, 2.4e-7 * std::abs(base.logsumexp));
    for (int j = 0; j < 8; ++j) EXPECT_EQ(p.top_logits[j], base.top_logits[j]);
}

TEST(TokenStats, TiesRankTheLowerIdFirstIncludingSignedZeros) {
    const std::vector<float> z = {1.0f, -0.0f, 3.0f, 0.0f, 3.0f, -0.0f, kNegInf, 1.0f};
    const tdm_token_stats s = stats_of(z, 8);
    const int32_t want[] = {2, 4, 0, 7, 1, 3, 5, 6};
    for (int j = 0; j < 8; ++j) EXPECT_EQ(s.top_ids[j], want[j]) << j;
    EXPECT_EQ(s.top_probs[7], 0.0f);
    EXPECT_EQ(s.top_probs[0], s.max_prob);
}

TEST(TokenStats, RejectsInvalidInput) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> z = {1.0f, 2.0f, 3.0f, nan, 0.0f};
    expect_invalid([&] { stats_of(z, 2); }, "logit[3] is NaN");
    z[3] = inf;
    expect_invalid([&] { stats_of(z, 2); }, "logit[3] is +inf");
    const std::vector<float> masked(4, kNegInf);
    expect_invalid([&] { stats_of(masked, 1); }, "all 4 logits are -inf");
    const std::vector<float> ok = {1.0f, 2.0f, 3.0f};
    expect_invalid([&] { stats_of(ok, 0); }, "got 0");
    expect_invalid([&] { stats_of(ok, 4); }, "got 4");
    const std::vector<float> big(100, 0.0f);
    expect_invalid([&] { stats_of(big, TDM_MAX_TOP_K + 1); }, "got 65");
    tdm_token_stats s;
    expect_invalid([&] { compute_token_stats(ok.data(), 0, 1, &s); }, "got 0");
    expect_invalid([&] { compute_token_stats(nullptr, 3, 1, &s); }, "NULL");
    expect_invalid([&] { compute_token_stats(ok.data(), 3, 1, nullptr); }, "NULL");
}

}  // namespace
}  // namespace tdm
