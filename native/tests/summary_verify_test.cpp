// Sampled speculative verification on logits summaries (decode/summary_verify.h, issue 5) against
// the full-row path it replaces: the summary's warp equals Sampler::probabilities, verify_warped
// emits the token verify_sampled emits on the full rows (same seed, same random-number order),
// rows are fetched whole only where the summary cannot know the warp, and the emitted tokens are
// distributed as the warped target (chi-square), fallbacks included.
//
// The summaries come from the host twin of the device kernel (logit_summary_support.h), whose
// tempered sum is bit-identical to the sampler's, so every comparison here is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "decode/candidate_sampling.h"
#include "decode/sampler.h"
#include "decode/speculative_verify.h"
#include "decode/summary_verify.h"
#include "logit_summary_support.h"

namespace {

using tdm::LogitSummary;
using tdm::Rng;
using tdm::Sampler;
using tdm::sampler_options;
using tdm::SummaryWarp;
using tdm::VerifyResult;
using tdm::WarpedRow;
using tdm::testing::host_summary;

constexpr float kInf = std::numeric_limits<float>::infinity();

std::string describe(const tdm_sampler_options& o, int64_t V, float scale) {
    return "T=" + std::to_string(o.temperature) + " top_k=" + std::to_string(o.top_k) +
           " top_p=" + std::to_string(o.top_p) + " V=" + std::to_string(V) +
           " scale=" + std::to_string(scale);
}

// Normal logits; `masked` of them -inf (never the whole row).
std::vector<float> random_logits(std::mt19937& gen, int64_t V, float scale, double masked = 0.0) {
    std::normal_distribution<float> n(0.0f, scale);
    std::bernoulli_distribution mask(masked);
    std::vector<float> z(static_cast<size_t>(V));
    for (float& v : z) v = mask(gen) ? -kInf : n(gen);
    z[size_t(gen() % uint64_t(V))] = n(gen);  // at least one candidate
    return z;
}

// The option sets of the brief: temperature only; top-k (fitting the summary and not); top-p;
// both.
std::vector<tdm_sampler_options> option_sets() {
    return {sampler_options(1.0f, 0, 1.0f, 1),   sampler_options(0.7f, 0, 1.0f, 2),
            sampler_options(1.0f, 5, 1.0f, 3),   sampler_options(1.3f, 40, 1.0f, 4),
            sampler_options(1.0f, 64, 1.0f, 5),  sampler_options(1.0f, 100, 1.0f, 6),
            sampler_options(1.0f, 0, 0.9f, 7),   sampler_options(0.8f, 0, 0.5f, 8),
            sampler_options(1.0f, 20, 0.8f, 9),  sampler_options(1.0f, 100, 0.6f, 10)};
}

// One row as the decoder holds it (pair_speculative.cpp): its logits, and the warped view built
// from the summary where the summary knows the warp, else from the full probability row. The
// logit/raw-row callbacks read the logits here as a session reads its device row.
struct HeldRow {
    std::vector<float> logits;
    std::vector<float> probs;
    LogitSummary summary{};
    bool from_summary = false;
    bool truncated = false;
    int64_t logit_reads = 0;  // single logits read through the callback
    WarpedRow view;
};

std::unique_ptr<HeldRow> hold(std::vector<float> z, Sampler& sampler, int want) {
    auto r = std::make_unique<HeldRow>();
    r->logits = std::move(z);
    const int64_t V = int64_t(r->logits.size());
    r->summary = host_summary(r->logits.data(), V, want, sampler.options().temperature);
    const std::optional<SummaryWarp> warp = tdm::warp_summary(sampler.options(), r->summary);
    HeldRow* self = r.get();
    if (warp) {
        r->from_summary = true;
        r->truncated = warp->truncated;
        r->view = WarpedRow::from_summary(
            r->summary, *warp, &sampler, V,
            [self](float* dst) { std::copy(self->logits.begin(), self->logits.end(), dst); },
            [self](int32_t id) {
                ++self->logit_reads;
                return self->logits[size_t(id)];
            });
    } else {
        r->probs.resize(size_t(V));
        sampler.probabilities(r->logits.data(), V, r->probs.data());
        r->view = WarpedRow::from_probabilities(r->probs.data(), V);
    }
    return r;
}

// The warp of a summary is the sampler's distribution, bit for bit, and sample_from_summary (now
// written on warp_summary) still draws the sampler's token with the sampler's random numbers.
TEST(SpeculativeSummaryVerify, WarpEqualsSamplerProbabilitiesAndDrawsStayTheSamplers) {
    int64_t truncated = 0, full = 0, unknown = 0, decided = 0;
    std::mt19937 gen(17);
    for (const tdm_sampler_options& o : option_sets()) {
        for (int64_t V : {7, 40, 64, 65, 300, 3000}) {
            for (float scale : {0.3f, 3.0f, 8.0f}) {
                SCOPED_TRACE(describe(o, V, scale));
                Sampler a(o), b(o), probe(o);
                const int want = tdm::summary_candidates_for(a);
                for (int row = 0; row < 40; ++row) {
                    const std::vector<float> z = random_logits(gen, V, scale, row % 4 == 3 ? 0.5 : 0.0);
                    const LogitSummary s = host_summary(z.data(), V, want, o.temperature);
                    std::vector<float> probs(static_cast<size_t>(V));
                    probe.probabilities(z.data(), V, probs.data());
                    if (const auto warp = tdm::warp_summary(o, s)) {
                        ++(warp->truncated ? truncated : full);
                        const WarpedRow view = WarpedRow::from_summary(
                            s, *warp, &probe, V,
                            [&](float* dst) { std::copy(z.begin(), z.end(), dst); },
                            [&](int32_t id) { return z[size_t(id)]; });
                        for (int32_t id = 0; id < V; ++id)
                            ASSERT_EQ(view.prob(id), probs[size_t(id)]) << "id " << id;
                        if (warp->truncated) {
                            // The support holds every token of positive probability.
                            const auto& ids = view.support_ids();
                            ASSERT_TRUE(std::is_sorted(ids.begin(), ids.end()));
                            for (int32_t id = 0; id < V; ++id) {
                                if (probs[size_t(id)] > 0.0f) {
                                    ASSERT_TRUE(std::binary_search(ids.begin(), ids.end(), id));
                                }
                            }
                        }
                        const float* whole = view.probabilities();
                        ASSERT_TRUE(std::equal(probs.begin(), probs.end(), whole));
                        EXPECT_EQ(view.fetched_row(), !warp->truncated);
                    } else {
                        ++unknown;
                    }
                    // The draw: the summary's token is the sampler's, with the same numbers used.
                    const auto token = tdm::sample_from_summary(a, s);
                    if (token) {
                        ++decided;
                        ASSERT_EQ(*token, b.sample(z.data(), V));
                    } else {
                        ASSERT_EQ(a.rng(), b.rng()) << "an undecided draw moved the generator";
                        ASSERT_EQ(a.sample(z.data(), V), b.sample(z.data(), V));
                    }
                    ASSERT_EQ(a.rng(), b.rng());
                }
            }
        }
    }
    // Each shape occurred, so the comparisons above covered every branch.
    EXPECT_GT(truncated, 1000);
    EXPECT_GT(full, 100);
    EXPECT_GT(unknown, 100);
    EXPECT_GT(decided, 1000);
}

// A round as PairDecoder runs it on a GPU: drafts drawn through the summary (the full row where
// it cannot decide), q and p as summary views where the warp is known, verify_warped; against
// the same round on full rows: drafts by Sampler::sample, verify_sampled. Same seed, so the
// tokens, the verdict and the generator afterwards must be identical.
TEST(SpeculativeSummaryVerify, RoundsEqualVerifySampledOnFullRows) {
    int64_t rounds = 0, rejected_on_support = 0, rejected_on_rows = 0, bonus_on_support = 0,
            bonus_on_rows = 0, fallback_rows = 0, accepted_total = 0;
    std::mt19937 gen(23);
    for (const tdm_sampler_options& o : option_sets()) {
        for (int64_t V : {9, 64, 200, 2000}) {
            for (float scale : {0.5f, 4.0f}) {
                SCOPED_TRACE(describe(o, V, scale));
                Sampler full_sampler(o), summary_sampler(o);
                const int want = tdm::summary_candidates_for(summary_sampler);
                for (int round = 0; round < 60; ++round) {
                    const int gamma = int(gen() % 6);
                    // The target agrees with the draft up to noise, so rounds both accept and
                    // reject; the last target row is unrelated.
                    std::vector<std::vector<float>> zq, zp;
                    const double masked = round % 5 == 4 ? 0.3 : 0.0;
                    for (int i = 0; i < gamma; ++i) {
                        zq.push_back(random_logits(gen, V, scale, masked));
                        std::vector<float> p = zq.back();
                        const std::vector<float> noise = random_logits(gen, V, 0.3f * scale);
                        for (size_t j = 0; j < p.size(); ++j) p[j] += noise[j];
                        zp.push_back(std::move(p));
                    }
                    zp.push_back(random_logits(gen, V, scale, masked));

                    // Full rows: the previous PairDecoder.
                    std::vector<int32_t> drafts_full;
                    std::vector<std::vector<float>> q(static_cast<size_t>(gamma)),
                        p(static_cast<size_t>(gamma) + 1);
                    std::vector<const float*> qp, pp;
                    for (int i = 0; i < gamma; ++i) {
                        drafts_full.push_back(full_sampler.sample(zq[i].data(), V));
                        q[size_t(i)].resize(size_t(V));
                        full_sampler.probabilities(zq[i].data(), V, q[size_t(i)].data());
                        qp.push_back(q[size_t(i)].data());
                    }
                    for (int i = 0; i <= gamma; ++i) {
                        p[size_t(i)].resize(size_t(V));
                        full_sampler.probabilities(zp[i].data(), V, p[size_t(i)].data());
                        pp.push_back(p[size_t(i)].data());
                    }
                    const VerifyResult want_r =
                        tdm::verify_sampled(drafts_full, qp, pp, V, full_sampler.rng());

                    // Summaries.
                    std::vector<int32_t> drafts;
                    std::vector<std::unique_ptr<HeldRow>> qh;
                    std::vector<WarpedRow> qv;
                    for (int i = 0; i < gamma; ++i) {
                        qh.push_back(hold(zq[i], summary_sampler, want));
                        const auto t = tdm::sample_from_summary(summary_sampler, qh.back()->summary);
                        drafts.push_back(t ? *t : summary_sampler.sample(zq[i].data(), V));
                        qv.push_back(qh.back()->view);
                        if (!qh.back()->from_summary) ++fallback_rows;
                    }
                    ASSERT_EQ(drafts, drafts_full);
                    std::vector<std::unique_ptr<HeldRow>> ph(static_cast<size_t>(gamma) + 1);
                    size_t furthest = 0;
                    auto target = [&](size_t i) -> const WarpedRow& {
                        furthest = std::max(furthest, i);
                        if (!ph[i]) ph[i] = hold(zp[i], summary_sampler, want);
                        return ph[i]->view;
                    };
                    const VerifyResult got =
                        tdm::verify_warped(drafts, qv, target, V, summary_sampler.rng());

                    ASSERT_EQ(got.accepted, want_r.accepted) << "round " << round;
                    ASSERT_EQ(got.token, want_r.token) << "round " << round;
                    ASSERT_EQ(got.bonus, want_r.bonus) << "round " << round;
                    ASSERT_EQ(summary_sampler.rng(), full_sampler.rng()) << "round " << round;
                    // Rows past the decision are never looked at.
                    ASSERT_EQ(furthest, size_t(got.accepted));

                    // No row is fetched whole where both decisive rows' supports are known.
                    const HeldRow& last = *ph[size_t(got.accepted)];
                    const bool support = last.from_summary && last.truncated;
                    if (support) {
                        for (const auto& h : ph) {
                            if (h) {
                                EXPECT_FALSE(h->view.fetched_row());
                            }
                        }
                        for (const auto& h : qh) EXPECT_FALSE(h->view.fetched_row());
                        EXPECT_EQ(last.logit_reads, 0);
                    }
                    ++rounds;
                    accepted_total += got.accepted;
                    if (got.bonus) ++(support ? bonus_on_support : bonus_on_rows);
                    else ++(support ? rejected_on_support : rejected_on_rows);
                }
            }
        }
    }
    // Every way a round can end was compared.
    EXPECT_GT(rejected_on_support, 50);
    EXPECT_GT(rejected_on_rows, 50);
    EXPECT_GT(bonus_on_support, 50);
    EXPECT_GT(bonus_on_rows, 50);
    EXPECT_GT(fallback_rows, 50);
    EXPECT_GT(accepted_total, rounds / 2);
}

// A full-vocabulary target reads the logit of a draft beyond its list one float at a time, and
// fetches the whole row only for a rejection there or the bonus.
TEST(SpeculativeSummaryVerify, FullVocabularyRowsAreFetchedOnlyForTheDrawThatNeedsThem) {
    constexpr int64_t V = 500;
    const tdm_sampler_options o = sampler_options(1.0f, 0, 1.0f, 31);
    Sampler sampler(o);
    std::mt19937 gen(31);
    int64_t accepted_rounds = 0, logit_reads = 0;
    for (int round = 0; round < 300; ++round) {
        // A flat draft row and a target equal to it: every draft is accepted.
        const std::vector<float> z = random_logits(gen, V, 0.3f);
        auto q = hold(z, sampler, 8);
        ASSERT_TRUE(q->from_summary && !q->truncated);
        auto p0 = hold(z, sampler, 8), p1 = hold(random_logits(gen, V, 0.3f), sampler, 8);
        const int32_t d = int32_t(gen() % uint64_t(V));  // a draft anywhere in the row
        auto target = [&](size_t i) -> const WarpedRow& { return i == 0 ? p0->view : p1->view; };
        Rng rng{static_cast<uint64_t>(round)};
        const VerifyResult r = tdm::verify_warped({d}, {q->view}, target, V, rng);
        ASSERT_EQ(r.accepted, 1);  // p(d) == q(d): u * q < p for every u < 1
        ASSERT_TRUE(r.bonus);
        EXPECT_FALSE(q->view.fetched_row());
        EXPECT_FALSE(p0->view.fetched_row());
        EXPECT_TRUE(p1->view.fetched_row());  // the bonus walks the whole row
        ++accepted_rounds;
        logit_reads += p0->logit_reads;
    }
    EXPECT_EQ(accepted_rounds, 300);
    EXPECT_GT(logit_reads, 250);  // drafts outside the top 8 were read one logit at a time
}

// Where the walk runs past the list, sample_from_summary hands the rest to the whole-row draw
// (a GPU's RowDraw) with the one uniform Sampler::sample would draw, returns that draw's token, and
// leaves the generator one draw on; a draw that cannot run restores it, and a summary that decides
// never calls it.
TEST(SpeculativeSummaryVerify, WholeRowDrawFinishesWhatTheSummaryCannot) {
    constexpr int64_t V = 3000;
    std::mt19937 gen(404);
    int handed = 0, decided = 0;
    for (int row = 0; row < 60; ++row) {
        const std::vector<float> z = random_logits(gen, V, row % 2 == 0 ? 0.5f : 6.0f, 0.05);
        for (uint64_t seed = 0; seed < 8; ++seed) {
            const tdm_sampler_options o = sampler_options(1.0f, 0, 1.0f, seed);
            Sampler host(o), summarised(o), refused(o);
            const LogitSummary s =
                host_summary(z.data(), V, tdm::summary_candidates_for(summarised, true), 1.0f);
            ASSERT_EQ(s.count, o.stats_top_k);  // a short list: the whole-row draw finishes
            Rng expected_u = host.rng();
            const double u = expected_u.uniform();
            const int32_t want = host.sample(z.data(), V);

            bool called = false;
            const auto token = tdm::sample_from_summary(
                summarised, s, [&](const SummaryWarp& w, double got_u) -> std::optional<int32_t> {
                    called = true;
                    EXPECT_EQ(got_u, u);
                    EXPECT_FALSE(w.truncated);
                    EXPECT_EQ(w.max_logit, double(s.logits[0]));
                    return want;  // what the device's draw returns (tested on the GPU)
                });
            ASSERT_TRUE(token.has_value());
            EXPECT_EQ(*token, want);
            EXPECT_TRUE(summarised.rng() == host.rng());  // one draw, as Sampler::sample
            called ? ++handed : ++decided;

            const Rng before = refused.rng();
            const auto none = tdm::sample_from_summary(
                refused, s, [](const SummaryWarp&, double) { return std::optional<int32_t>{}; });
            if (called) {
                EXPECT_FALSE(none.has_value());
                EXPECT_TRUE(refused.rng() == before);  // untouched: the caller samples the row
            } else {
                EXPECT_EQ(none, token);
            }
        }
    }
    EXPECT_GT(handed, 100);  // flat rows
    EXPECT_GT(decided, 50);  // peaked rows: the top two carry the draw
}

// A rejection or the bonus on a full-vocabulary warp emits through on_device with verify_sampled's
// uniform; where on_device declines, the host rows give verify_sampled's token.
TEST(SpeculativeSummaryVerify, FullVocabularyEmissionsGoThroughTheDeviceHook) {
    constexpr int64_t V = 400;
    std::mt19937 gen(77);
    int rejections = 0, bonuses = 0;
    for (int round = 0; round < 200; ++round) {
        const tdm_sampler_options o = sampler_options(1.0f, 0, 1.0f, uint64_t(round));
        Sampler sampler(o);
        auto q = hold(random_logits(gen, V, 0.4f), sampler, 2);
        auto p0 = hold(random_logits(gen, V, 0.4f), sampler, 2);
        auto p1 = hold(random_logits(gen, V, 0.4f), sampler, 2);
        ASSERT_TRUE(q->from_summary && !q->truncated);
        const int32_t d = int32_t(gen() % uint64_t(V));
        auto target = [&](size_t i) -> const WarpedRow& { return i == 0 ? p0->view : p1->view; };

        // The full-row reference and the uniform it emits with.
        std::vector<float> qp(static_cast<size_t>(V)), pp0(static_cast<size_t>(V)),
            pp1(static_cast<size_t>(V));
        sampler.probabilities(q->logits.data(), V, qp.data());
        sampler.probabilities(p0->logits.data(), V, pp0.data());
        sampler.probabilities(p1->logits.data(), V, pp1.data());
        Rng ref_rng{uint64_t(round) + 1000};
        const VerifyResult want = tdm::verify_sampled({d}, {qp.data()}, {pp0.data(), pp1.data()},
                                                      V, ref_rng);
        Rng u_rng{uint64_t(round) + 1000};
        (void)u_rng.uniform();  // the acceptance test's uniform
        const double emit_u = u_rng.uniform();

        Rng hooked{uint64_t(round) + 1000};
        size_t asked_row = 99;
        const VerifyResult got = tdm::verify_warped(
            {d}, {q->view}, target, V, hooked, [&](size_t i, double u) -> std::optional<int32_t> {
                asked_row = i;
                EXPECT_EQ(u, emit_u);
                return int32_t(7);  // a token only the hook would give
            });
        EXPECT_EQ(got.accepted, want.accepted);
        EXPECT_EQ(got.bonus, want.bonus);
        EXPECT_EQ(got.token, 7);
        EXPECT_EQ(asked_row, want.bonus ? size_t(1) : size_t(0));
        EXPECT_FALSE(p0->view.fetched_row());  // no host row was needed
        EXPECT_FALSE(p1->view.fetched_row());
        want.bonus ? ++bonuses : ++rejections;

        Rng declined{uint64_t(round) + 1000};
        const VerifyResult host_path = tdm::verify_warped(
            {d}, {q->view}, target, V, declined,
            [](size_t, double) { return std::optional<int32_t>{}; });
        EXPECT_EQ(host_path.token, want.token);
        EXPECT_EQ(host_path.accepted, want.accepted);
    }
    EXPECT_GT(rejections, 20);
    EXPECT_GT(bonuses, 20);
}

// Chi-square (ALGORITHMS.md 2, test 2) of the summary path on a tiny vocabulary whose summaries
// hold only 4 of 12 candidates: pure temperature mixes full-vocabulary warps with draws that fall
// back to the row, top-k 3 is all support, top-p mixes supports with fallbacks. The tokens
// emitted at each position must follow that position's warped target, and the acceptance rate
// of the first draft must be sum(min(p, q)).
double chi_square_critical(int df, double z) {
    const double a = 2.0 / (9.0 * df);
    return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

TEST(SpeculativeSummaryVerify, EmittedTokensAreDistributedAsTheWarpedTarget) {
    constexpr int64_t V = 12;
    constexpr int kGamma = 2, kWant = 4;
    constexpr int64_t kDraws = 300'000;
    for (const tdm_sampler_options& o :
         {sampler_options(1.0f, 0, 1.0f, 41), sampler_options(1.0f, 3, 1.0f, 42), sampler_options(0.9f, 0, 0.7f, 43)}) {
        SCOPED_TRACE(describe(o, V, 1.5f));
        std::mt19937 gen(uint32_t(o.seed));
        std::vector<std::vector<float>> zq, zp;
        // Targets near the drafts (a top-3 of unrelated rows may share no token at all, and
        // then no round gets past it).
        for (int i = 0; i < kGamma; ++i) {
            zq.push_back(random_logits(gen, V, 1.5f));
            zp.push_back(zq.back());
            const std::vector<float> noise = random_logits(gen, V, 0.6f);
            for (int64_t t = 0; t < V; ++t) zp.back()[size_t(t)] += noise[size_t(t)];
        }
        zp.push_back(random_logits(gen, V, 1.5f));
        Sampler sampler(o);
        std::vector<std::vector<float>> p(kGamma + 1, std::vector<float>(size_t(V)));
        for (int i = 0; i <= kGamma; ++i) sampler.probabilities(zp[i].data(), V, p[i].data());
        std::vector<float> q0(static_cast<size_t>(V));
        sampler.probabilities(zq[0].data(), V, q0.data());

        std::vector<std::vector<int64_t>> counts(kGamma + 1, std::vector<int64_t>(size_t(V), 0));
        std::vector<int64_t> reached(kGamma + 1, 0);
        int64_t first_accepted = 0, fallbacks = 0;
        // The rows' views are built once (they do not depend on the draw); only the drafts vary.
        std::vector<std::unique_ptr<HeldRow>> qh, ph;
        std::vector<WarpedRow> qv;
        for (int i = 0; i < kGamma; ++i) {
            qh.push_back(hold(zq[i], sampler, kWant));
            qv.push_back(qh.back()->view);
        }
        for (int i = 0; i <= kGamma; ++i) ph.push_back(hold(zp[i], sampler, kWant));
        auto target = [&](size_t i) -> const WarpedRow& { return ph[i]->view; };
        std::vector<int32_t> drafts(kGamma);
        for (int64_t draw = 0; draw < kDraws; ++draw) {
            for (int i = 0; i < kGamma; ++i) {
                const auto t = tdm::sample_from_summary(sampler, qh[size_t(i)]->summary);
                if (!t) ++fallbacks;
                drafts[size_t(i)] = t ? *t : sampler.sample(zq[i].data(), V);
            }
            const VerifyResult r = tdm::verify_warped(drafts, qv, target, V, sampler.rng());
            for (int64_t pos = 0; pos <= r.accepted; ++pos) {
                const int32_t t = pos < r.accepted ? drafts[size_t(pos)] : r.token;
                ++counts[size_t(pos)][size_t(t)];
                ++reached[size_t(pos)];
            }
            if (r.accepted > 0) ++first_accepted;
        }
        if (o.top_k == 0 && o.top_p == 1.0f) {
            EXPECT_GT(fallbacks, 0);
        }
        for (int pos = 0; pos <= kGamma; ++pos) {
            ASSERT_GT(reached[pos], 10'000) << "position " << pos;
            double stat = 0.0;
            int df = -1;
            for (int64_t t = 0; t < V; ++t) {
                const float pt = p[size_t(pos)][size_t(t)];
                if (pt <= 0.0f) {
                    EXPECT_EQ(counts[size_t(pos)][size_t(t)], 0) << "token " << t;
                    continue;
                }
                const double e = double(pt) * double(reached[pos]);
                const double c = double(counts[size_t(pos)][size_t(t)]);
                stat += (c - e) * (c - e) / e;
                ++df;
            }
            if (df < 1) continue;
            // 4.9 sigma: a correct verifier essentially never fails; a residual that ignored
            // q (or a support missing a token) gives statistics in the thousands.
            EXPECT_LT(stat, chi_square_critical(std::max(df, 3), 4.9)) << "position " << pos;
        }
        double overlap = 0.0;
        for (int64_t t = 0; t < V; ++t)
            overlap += std::min(double(p[0][size_t(t)]), double(q0[size_t(t)]));
        const double rate = double(first_accepted) / double(kDraws);
        EXPECT_NEAR(rate, overlap,
                    5.0 * std::sqrt(overlap * (1 - overlap) / double(kDraws)) + 1e-6);
    }
}

}  // namespace
