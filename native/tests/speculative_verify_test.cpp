// The accept/reject step of speculative decoding on toy distributions (ALGORITHMS.md section 2,
// tests 2 and 3): the emitted tokens are distributed as the (warped) target, and the acceptance
// rate is sum(min(p, q)).
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <random>
#include <vector>

#include "decode/sampler.h"
#include "decode/speculative_verify.h"

namespace {

using tdm::Rng;
using tdm::Sampler;
using tdm::sampler_options;
using tdm::VerifyResult;

// Upper critical value of chi-square with df degrees of freedom at one-sided z (Wilson-Hilferty,
// accurate to a few percent for df >= 3, which is all the margin a 4.9-sigma cut needs).
double chi_square_critical(int df, double z) {
    const double a = 2.0 / (9.0 * df);
    return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Pearson's statistic of counts against probabilities; cells of probability 0 must be empty.
double chi_square(const std::vector<int64_t>& counts, const std::vector<float>& probs,
                  int64_t draws, int* df) {
    double stat = 0.0;
    *df = -1;
    for (size_t i = 0; i < counts.size(); ++i) {
        if (probs[i] <= 0.0f) {
            EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0 but was emitted";
            continue;
        }
        const double expected = double(probs[i]) * double(draws);
        stat += (double(counts[i]) - expected) * (double(counts[i]) - expected) / expected;
        ++*df;
    }
    return stat;
}

std::vector<float> random_logits(std::mt19937& rng, int vocab, float scale) {
    std::normal_distribution<float> n(0.0f, scale);
    std::vector<float> z(static_cast<size_t>(vocab));
    for (float& v : z) v = n(rng);
    return z;
}

TEST(SpeculativeVerify, GreedyAcceptsTheMatchingPrefix) {
    std::mt19937 rng(11);
    for (int gamma : {0, 1, 3, 7}) {
        for (int trial = 0; trial < 50; ++trial) {
            std::uniform_int_distribution<int32_t> tok(0, 4);
            std::vector<int32_t> drafts(static_cast<size_t>(gamma)), best(size_t(gamma) + 1);
            for (auto& d : drafts) d = tok(rng);
            for (auto& b : best) b = tok(rng);
            size_t expect = 0;
            while (expect < drafts.size() && drafts[expect] == best[expect]) ++expect;
            const VerifyResult r = tdm::verify_greedy(drafts, best);
            EXPECT_EQ(r.accepted, int64_t(expect));
            EXPECT_EQ(r.token, best[expect]);
            EXPECT_EQ(r.bonus, expect == drafts.size());
        }
    }
}

// One draft-and-verify round per draw, with q and p computed by the sampler from random logits
// under the same temperature, top-k and top-p; the drafts are drawn by the same sampler, sharing
// its random stream with the accept/reject draws, as PairDecoder does.
struct ToyRound {
    int vocab;
    tdm_sampler_options options;
};

void PrintTo(const ToyRound& r, std::ostream* os) {
    *os << "V=" << r.vocab << " T=" << r.options.temperature << " top_k=" << r.options.top_k
        << " top_p=" << r.options.top_p;
}

class SpeculativeVerifySampled : public ::testing::TestWithParam<ToyRound> {};

TEST_P(SpeculativeVerifySampled, EmittedTokensAreDistributedAsTheTargetAndAcceptanceIsOverlap) {
    const ToyRound param = GetParam();
    const int V = param.vocab;
    constexpr int kGamma = 2;
    constexpr int64_t kDraws = 1'000'000;
    std::mt19937 gen(1000u + unsigned(V));
    std::vector<std::vector<float>> q_logits, p_logits;
    for (int i = 0; i < kGamma; ++i) q_logits.push_back(random_logits(gen, V, 1.5f));
    for (int i = 0; i <= kGamma; ++i) p_logits.push_back(random_logits(gen, V, 1.5f));

    Sampler sampler(param.options);
    std::vector<std::vector<float>> q(kGamma, std::vector<float>(size_t(V)));
    std::vector<std::vector<float>> p(kGamma + 1, std::vector<float>(size_t(V)));
    for (int i = 0; i < kGamma; ++i) sampler.probabilities(q_logits[i].data(), V, q[i].data());
    for (int i = 0; i <= kGamma; ++i) sampler.probabilities(p_logits[i].data(), V, p[i].data());
    std::vector<const float*> qp{q[0].data(), q[1].data()};
    std::vector<const float*> pp{p[0].data(), p[1].data(), p[2].data()};

    // In the toy the distributions do not depend on the prefix, so the token emitted at each
    // position of a round must be distributed as that position's target row.
    std::vector<std::vector<int64_t>> counts(kGamma + 1, std::vector<int64_t>(size_t(V), 0));
    std::vector<int64_t> reached(kGamma + 1, 0);
    int64_t first_accepted = 0;
    std::vector<int32_t> drafts(kGamma);
    for (int64_t draw = 0; draw < kDraws; ++draw) {
        for (int i = 0; i < kGamma; ++i) drafts[size_t(i)] = sampler.sample(q_logits[i].data(), V);
        const VerifyResult r = tdm::verify_sampled(drafts, qp, pp, V, sampler.rng());
        for (int64_t pos = 0; pos <= r.accepted; ++pos) {
            const int32_t t = pos < r.accepted ? drafts[size_t(pos)] : r.token;
            ++counts[size_t(pos)][size_t(t)];
            ++reached[size_t(pos)];
        }
        if (r.accepted > 0) ++first_accepted;
    }

    for (int pos = 0; pos <= kGamma; ++pos) {
        ASSERT_GT(reached[pos], 10'000) << "position " << pos << " is too rarely reached to test";
        int df = 0;
        const double stat = chi_square(counts[pos], p[pos], reached[pos], &df);
        if (df < 1) continue;  // a one-token support: nothing to test beyond the empty cells
        // 4.9 sigma (p ~ 5e-7): a correct sampler essentially never fails; a wrong residual
        // (drawing from p instead of max(0, p - q)) gives statistics in the thousands here.
        EXPECT_LT(stat, chi_square_critical(std::max(df, 3), 4.9))
            << "position " << pos << ", df " << df << ", V " << V;
    }

    double overlap = 0.0;
    for (int i = 0; i < V; ++i) overlap += std::min(double(p[0][i]), double(q[0][i]));
    const double rate = double(first_accepted) / double(kDraws);
    const double sigma = std::sqrt(overlap * (1.0 - overlap) / double(kDraws));
    EXPECT_NEAR(rate, overlap, 5.0 * sigma + 1e-6) << "acceptance vs sum(min(p, q))";
}

INSTANTIATE_TEST_SUITE_P(ToyDistributions, SpeculativeVerifySampled,
                         ::testing::Values(ToyRound{6, sampler_options(1.0f, 0, 1.0f, 1)},
                                           ToyRound{17, sampler_options(0.7f, 0, 1.0f, 2)},
                                           ToyRound{33, sampler_options(1.3f, 9, 1.0f, 3)},
                                           ToyRound{50, sampler_options(1.0f, 0, 0.8f, 4)}));

TEST(SpeculativeVerify, IdenticalDistributionsAcceptEverythingAndDrawTheBonusFromTheLastRow) {
    constexpr int V = 9;
    std::mt19937 gen(5);
    const std::vector<float> z = random_logits(gen, V, 1.0f), z_last = random_logits(gen, V, 1.0f);
    Sampler sampler(sampler_options(1.0f, 0, 1.0f, 77));
    std::vector<float> row(V), last(V);
    sampler.probabilities(z.data(), V, row.data());
    sampler.probabilities(z_last.data(), V, last.data());
    std::vector<int64_t> counts(V, 0);
    constexpr int64_t kDraws = 200'000;
    for (int64_t i = 0; i < kDraws; ++i) {
        std::vector<int32_t> drafts{sampler.sample(z.data(), V), sampler.sample(z.data(), V)};
        const VerifyResult r = tdm::verify_sampled(drafts, {row.data(), row.data()},
                                                   {row.data(), row.data(), last.data()}, V,
                                                   sampler.rng());
        ASSERT_EQ(r.accepted, 2);
        ASSERT_TRUE(r.bonus);
        ++counts[size_t(r.token)];
    }
    int df = 0;
    const double stat = chi_square(counts, last, kDraws, &df);
    EXPECT_LT(stat, chi_square_critical(df, 4.9));
}

TEST(SpeculativeVerify, EmptyResidualFallsBackToTheTarget) {
    // Rounding can leave p <= q everywhere after a rejection (here p lost mass outright): the
    // residual is 0/0, and the emitted token must still come from p's support, never NaN or -1.
    const std::vector<float> q{0.5f, 0.5f, 0.0f}, p{0.0f, 0.5f, 0.0f}, bonus{0.0f, 0.0f, 1.0f};
    Rng rng(3);
    for (int i = 0; i < 100; ++i) {
        const VerifyResult r =
            tdm::verify_sampled({0}, {q.data()}, {p.data(), bonus.data()}, 3, rng);
        EXPECT_EQ(r.accepted, 0);
        EXPECT_FALSE(r.bonus);
        EXPECT_EQ(r.token, 1);
    }
    std::vector<double> w;
    EXPECT_EQ(tdm::residual_weights(p.data(), q.data(), 3, w), 0.0);
}

TEST(SpeculativeVerify, DrawFromWeightsInvertsTheCumulativeSumInIdOrder) {
    const std::vector<double> w{0.0, 1.0, 0.0, 3.0};
    EXPECT_EQ(tdm::draw_from_weights(w.data(), 4, 4.0, 0.0), 1);
    EXPECT_EQ(tdm::draw_from_weights(w.data(), 4, 4.0, 0.2499), 1);
    EXPECT_EQ(tdm::draw_from_weights(w.data(), 4, 4.0, 0.25), 3);
    // u * sum at or past the total (only rounding does that) gives the last positive id.
    EXPECT_EQ(tdm::draw_from_weights(w.data(), 4, 4.0, 1.0), 3);
}

TEST(SpeculativeVerify, ZeroDraftProbabilityWithTargetMassAccepts) {
    // q(d) can underflow to 0 in float while d was drawn: p/q is then +inf, so d is accepted.
    const std::vector<float> q{0.0f, 1.0f}, p{0.5f, 0.5f};
    Rng rng(9);
    const VerifyResult r = tdm::verify_sampled({0}, {q.data()}, {p.data(), p.data()}, 2, rng);
    EXPECT_EQ(r.accepted, 1);
}

}  // namespace
