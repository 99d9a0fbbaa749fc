// Two-model decoding on the tiny fixture models (tests/fixtures): llama-f32 and mistral-swa-f32
// share tokenizer (a), qwen2-tied-f32 has another one. Random weights make the routing decisions
// meaningless but fully exercise the loops: what is checked is exactness (speculative greedy equals
// large-only greedy, threshold extremes equal single-model runs), the KV-cache bookkeeping and the
// all-or-nothing steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "decode/pair_decoder.h"
#include "fixtures.h"
#include "io_test_support.h"

namespace {

using tdm::LogitSummary;
using tdm::Model;
using tdm::PairDecoder;
using tdm::testing::fixture_dir;

constexpr float kInf = std::numeric_limits<float>::infinity();

std::shared_ptr<const Model> load(const std::string& name) {
    static std::map<std::string, std::shared_ptr<const Model>> cache;
    auto& m = cache[name];
    if (!m) {
        tdm::LoadOptions o;
        o.threads = 1;
        m = Model::load(fixture_dir(name), o);
    }
    return m;
}

std::unique_ptr<PairDecoder> make_pair(const std::string& small, const std::string& large) {
    return std::make_unique<PairDecoder>(load(small), load(large), tdm::SessionConfig{});
}

// The golden prompts of the llama fixture (token ids of tokenizer (a)), raggedly long.
std::vector<std::vector<int32_t>> prompts() {
    const auto golden = tdm::testing::read_json(fixture_dir("llama-f32") + "/golden.json");
    std::vector<std::vector<int32_t>> out;
    for (const auto& p : golden["prompts"]) out.push_back(p["ids"].get<std::vector<int32_t>>());
    return out;
}

tdm_pair_options options_for(int32_t mode, uint32_t max_new = 40) {
    tdm_pair_options o = tdm::default_pair_options();
    o.mode = mode;
    o.max_new_tokens = max_new;
    o.stop_at_eos = 0;  // random models emit EOS at random; the full length tests more
    return o;
}

struct PairRun {
    std::vector<int32_t> generated;  // committed tokens after the prompt
    std::vector<tdm_token_record> records;
    tdm_pair_stats stats{};
};

// Runs to the end; after every step checks the cache bookkeeping (no session holds more than the
// committed sequence, and what it holds is a prefix of it).
PairRun run_to_end(PairDecoder& d, const std::vector<int32_t>& prompt, const tdm_pair_options& o,
               const tdm_route_policy& policy) {
    d.start(prompt.data(), int64_t(prompt.size()), o, policy);
    PairRun run;
    std::vector<tdm_token_record> step;
    for (int guard = 0; guard < 10000; ++guard) {
        const bool finished = d.step(step);
        EXPECT_LE(step.size(), d.max_records());
        run.records.insert(run.records.end(), step.begin(), step.end());
        for (tdm_pair_model m : {TDM_PAIR_SMALL, TDM_PAIR_LARGE})
            EXPECT_LE(d.pair().session(m).length(), d.pair().committed_length());
        if (finished) break;
    }
    const auto& c = d.pair().committed();
    EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), c.begin()));
    run.generated.assign(c.begin() + int64_t(prompt.size()), c.end());
    run.stats = d.stats();
    return run;
}

PairRun run_mode(PairDecoder& d, const std::vector<int32_t>& prompt, const tdm_pair_options& o) {
    return run_to_end(d, prompt, o, tdm::default_route_policy(o.mode));
}

double large_share(const PairRun& r) {
    return double(r.stats.tokens_large) / double(r.stats.tokens_large + r.stats.tokens_small);
}

TEST(ModelPair, TokenizerCheckNamesTheFirstMismatch) {
    EXPECT_NO_THROW(make_pair("mistral-swa-f32", "llama-f32"));
    try {
        make_pair("llama-f32", "qwen2-tied-f32");
        FAIL() << "llama and qwen2 tokenizers were accepted";
    } catch (const tdm::Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_INVALID_MODEL);
        const std::string msg = e.what();
        EXPECT_NE(msg.find("token id 0 is \"<s>\" (special)"), std::string::npos) << msg;
        EXPECT_NE(msg.find("qwen2-tied-f32"), std::string::npos) << msg;
    }
}

TEST(ModelPair, TokenizerCheckOnHandWrittenTables) {
    tdm::io_test::ScratchDir dir;
    const std::string a = dir.path() + "/a", b = dir.path() + "/b", none = dir.path() + "/none";
    for (const auto& f : {a, b, none}) std::filesystem::create_directories(f);
    auto write = [](const std::string& folder, const std::string& json) {
        tdm::io_test::write_file(folder + "/tokenizer.json", json);
    };
    auto status = [&](int64_t va, int64_t vb, const std::string& fa, const std::string& fb) {
        try {
            tdm::check_same_tokenizer(fa, va, fb, vb);
        } catch (const tdm::Error& e) {
            return std::pair{e.status(), std::string(e.what())};
        }
        return std::pair{TDM_OK, std::string()};
    };
    write(a, R"({"model":{"vocab":{"x":0,"y":1}},"added_tokens":[{"id":2,"content":"<e>","special":true}]})");
    write(b, R"({"model":{"vocab":[["x",0.0],["y",-1.0]]},"added_tokens":[{"id":2,"content":"<e>","special":true}]})");
    EXPECT_EQ(status(3, 3, a, b).first, TDM_OK);  // a BPE table and a Unigram list may agree
    EXPECT_EQ(status(3, 3, a, none).first, TDM_OK);  // only one tokenizer.json: nothing to compare
    auto [s, msg] = status(3, 4, a, b);
    EXPECT_EQ(s, TDM_ERR_INVALID_MODEL);
    EXPECT_NE(msg.find("3 vocabulary entries"), std::string::npos) << msg;
    write(b, R"({"model":{"vocab":{"x":0,"z":1}},"added_tokens":[{"id":2,"content":"<e>","special":true}]})");
    std::tie(s, msg) = status(3, 3, a, b);
    EXPECT_EQ(s, TDM_ERR_INVALID_MODEL);
    EXPECT_NE(msg.find("token id 1 is \"y\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("but \"z\""), std::string::npos) << msg;
    write(b, R"({"model":{"vocab":{"x":0,"y":1}},"added_tokens":[{"id":2,"content":"<e>","special":false}]})");
    std::tie(s, msg) = status(3, 3, a, b);
    EXPECT_NE(msg.find("token id 2 is \"<e>\" (special)"), std::string::npos) << msg;
    write(b, R"({"model":{"vocab":{"x":0,"y":1}}})");
    std::tie(s, msg) = status(3, 3, a, b);
    EXPECT_NE(msg.find("token id 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(no token)"), std::string::npos) << msg;
}

// The row-level access speculative decoding uses on a GPU (ModelPair::advance/score_rows,
// Session::copy_row/logit_at/stash_row) gives exactly the rows next_logits/score_after give, on
// the CPU too (where summarize_row declines and the decoder reads host rows).
TEST(ModelPair, ScoredRowsAndRowAccessorsGiveTheHostRows) {
    const auto prompt = prompts()[1];
    const std::vector<int32_t> drafts{5, 9, 13, 2};
    // held: the large model's cache ends at the committed sequence with its row held (the first
    // round after start), so score_rows keeps that row on the host; otherwise it reruns.
    for (bool held : {true, false}) {
        SCOPED_TRACE(held ? "held row" : "rerun");
        tdm::ModelPair a(load("mistral-swa-f32"), load("llama-f32"), tdm::SessionConfig{});
        tdm::ModelPair b(load("mistral-swa-f32"), load("llama-f32"), tdm::SessionConfig{});
        for (tdm::ModelPair* p : {&a, &b}) {
            p->reset(prompt.data(), int64_t(prompt.size()));
            if (held) p->advance(TDM_PAIR_LARGE, {});
        }
        const int64_t V = a.vocab();
        const std::vector<const float*> want = a.score_after(TDM_PAIR_LARGE, drafts);
        const auto where = b.score_rows(TDM_PAIR_LARGE, drafts);
        ASSERT_EQ(where.size(), want.size());
        EXPECT_EQ(where[0].host != nullptr, held);
        tdm::Session& s = b.session(TDM_PAIR_LARGE);
        LogitSummary summary;
        std::vector<float> row(static_cast<size_t>(V));
        for (size_t i = 0; i < where.size(); ++i) {
            if (where[i].host != nullptr) {
                EXPECT_TRUE(std::equal(want[i], want[i] + V, where[i].host)) << "row " << i;
                continue;
            }
            EXPECT_FALSE(s.summarize_row(where[i].row, 4, 1.0f, &summary));  // the CPU has none
            s.copy_row(where[i].row, row.data());
            EXPECT_TRUE(std::equal(want[i], want[i] + V, row.begin())) << "row " << i;
            for (int64_t id : {int64_t{0}, V / 3, V - 1})
                EXPECT_EQ(s.logit_at(where[i].row, id), want[i][id]) << "row " << i;
        }
        // After the rows came to the host (logits()), the accessors read the host copy.
        s.logits(0);
        s.copy_row(where.back().row, row.data());
        EXPECT_TRUE(std::equal(want.back(), want.back() + V, row.begin()));

        // Stashed rows survive later forwards; six slots grow the stash past its first size.
        std::vector<std::vector<float>> kept;
        for (int64_t slot = 0; slot < 6; ++slot) {
            b.advance(TDM_PAIR_SMALL, std::vector<int32_t>(drafts.begin(), drafts.begin() + slot % 4));
            tdm::Session& small = b.session(TDM_PAIR_SMALL);
            const float* z = small.logits(small.logit_rows() - 1);
            kept.emplace_back(z, z + V);
            ASSERT_TRUE(small.stash_row(small.logit_rows() - 1, slot));
        }
        b.advance(TDM_PAIR_SMALL, {7});
        for (int64_t slot = 0; slot < 6; ++slot) {
            b.session(TDM_PAIR_SMALL).copy_stashed_row(slot, row.data());
            EXPECT_EQ(row, kept[size_t(slot)]) << "slot " << slot;
            EXPECT_EQ(b.session(TDM_PAIR_SMALL).stashed_logit(slot, V / 2), kept[size_t(slot)][V / 2]);
        }
    }
}

TEST(PairDecoder, GreedySpeculativeEqualsLargeAloneTokenForToken) {
    const auto ps = prompts();
    for (const auto& [small, large] : {std::pair{"mistral-swa-f32", "llama-f32"},
                                       std::pair{"llama-f32", "llama-f32"}}) {
        auto d = make_pair(small, large);
        for (size_t pi = 0; pi < ps.size(); ++pi) {
            const PairRun reference = run_mode(*d, ps[pi], options_for(TDM_MODE_LARGE));
            ASSERT_EQ(reference.generated.size(), 40u);
            for (uint32_t gamma : {1u, 2u, 3u, 5u, 8u}) {
                for (bool adaptive : {false, true}) {
                    tdm_pair_options o = options_for(TDM_MODE_SPECULATIVE);
                    o.draft_length = gamma;
                    o.adaptive_draft = adaptive;
                    o.draft_confidence = gamma == 5 ? 0.02f : 0.0f;
                    const PairRun spec = run_mode(*d, ps[pi], o);
                    EXPECT_EQ(spec.generated, reference.generated)
                        << small << " drafting for " << large << ", prompt " << pi << ", gamma "
                        << gamma << (adaptive ? " adaptive" : "");
                    EXPECT_EQ(spec.stats.tokens_small + spec.stats.tokens_large, 40u);
                    EXPECT_EQ(spec.stats.tokens_small, spec.stats.accepted);
                    // One large token per round; a round without drafts happens only when the
                    // max_new_tokens cut leaves room for a single token.
                    EXPECT_GE(spec.stats.tokens_large, spec.stats.verifications);
                    EXPECT_LE(spec.stats.tokens_large, spec.stats.verifications + 1);
                    if (std::string(small) == large) {
                        // A model drafting for itself is always right: every round is a full
                        // accept plus the bonus (up to the max_new_tokens cut).
                        EXPECT_EQ(spec.stats.accepted, spec.stats.drafted);
                    }
                }
            }
        }
    }
}

TEST(PairDecoder, SpeculativeRecordsDescribeEachRound) {
    auto d = make_pair("mistral-swa-f32", "llama-f32");
    const auto prompt = prompts()[1];
    tdm_pair_options o = options_for(TDM_MODE_SPECULATIVE, 30);
    o.draft_length = 4;
    d->start(prompt.data(), int64_t(prompt.size()), o, tdm::default_route_policy(o.mode));
    std::vector<tdm_token_record> step;
    uint64_t next_position = prompt.size();
    while (true) {
        const bool finished = d->step(step);
        ASSERT_FALSE(step.empty());
        // ACCEPTED*, then REJECTED* (all drafts after the first rejection), then the large token.
        size_t i = 0;
        while (i < step.size() && step[i].outcome == TDM_OUTCOME_ACCEPTED) {
            EXPECT_EQ(step[i].model, TDM_PAIR_SMALL);
            EXPECT_EQ(step[i].position, next_position++);
            ++i;
        }
        const size_t rejected_from = i;
        while (i < step.size() && step[i].outcome == TDM_OUTCOME_REJECTED) {
            EXPECT_EQ(step[i].model, TDM_PAIR_SMALL);
            EXPECT_EQ(step[i].position, next_position + (i - rejected_from));
            ++i;
        }
        ASSERT_EQ(i + 1, step.size());
        EXPECT_EQ(step[i].model, TDM_PAIR_LARGE);
        EXPECT_EQ(step[i].position, next_position++);
        const bool rejected = rejected_from < i;
        // A round with no drafts (only when one token is left before max_new_tokens) is the large
        // model writing alone.
        EXPECT_EQ(step[i].outcome, step.size() == 1 ? TDM_OUTCOME_WRITTEN
                                   : rejected       ? TDM_OUTCOME_CORRECTED
                                                    : TDM_OUTCOME_BONUS);
        if (step.size() == 1) {
            EXPECT_TRUE(finished);
        }
        EXPECT_GT(step[i].max_prob, 0.0f);
        EXPECT_GE(step[i].entropy, 0.0f);
        if (finished) break;
    }
    EXPECT_EQ(next_position, prompt.size() + 30);
    const tdm_pair_stats s = d->stats();
    EXPECT_NEAR(s.mean_accepted, double(s.accepted) / double(s.verifications), 1e-12);
    EXPECT_GT(s.seconds_large, 0.0);
    EXPECT_GT(s.seconds_small, 0.0);
    EXPECT_GE(s.seconds_total, s.seconds_large + s.seconds_small);
}

TEST(PairDecoder, RoutingThresholdExtremesEqualSingleModelRuns) {
    auto d = make_pair("mistral-swa-f32", "llama-f32");
    for (const auto& prompt : prompts()) {
        const PairRun small = run_mode(*d, prompt, options_for(TDM_MODE_SMALL));
        const PairRun large = run_mode(*d, prompt, options_for(TDM_MODE_LARGE));
        ASSERT_NE(small.generated, large.generated) << "the fixtures should disagree somewhere";
        for (int32_t mode : {TDM_MODE_RSTITCH, TDM_MODE_EAD}) {
            tdm_route_policy p = tdm::default_route_policy(mode);
            p.threshold = kInf;
            const PairRun never = run_to_end(*d, prompt, options_for(mode), p);
            EXPECT_EQ(never.generated, small.generated) << "mode " << mode;
            EXPECT_EQ(never.stats.tokens_large, 0u);
            p.threshold = -kInf;
            p.regenerate_on_switch = 1;  // EAD: the large model rewrites the triggering token
            const PairRun always = run_to_end(*d, prompt, options_for(mode), p);
            EXPECT_EQ(always.generated, large.generated) << "mode " << mode;
            EXPECT_EQ(always.stats.tokens_small, 0u);
            EXPECT_EQ(always.stats.switches, 1u);
            EXPECT_EQ(always.stats.discarded, 1u);
        }
    }
}

// The median normalised entropy of the small model's distributions over a small-only run: a
// routing threshold there makes both models write (random weights put it near 0.998).
float median_small_entropy(PairDecoder& d, const std::vector<int32_t>& prompt) {
    const PairRun small = run_mode(d, prompt, options_for(TDM_MODE_SMALL, 30));
    std::vector<float> h;
    for (const auto& r : small.records) h.push_back(r.entropy_normalized);
    std::nth_element(h.begin(), h.begin() + int64_t(h.size() / 2), h.end());
    return h[h.size() / 2];
}

// A policy at that threshold, for either mode (EAD compares bits: ln 512 / ln 2 = 9 bits).
tdm_route_policy median_policy(int32_t mode, float median) {
    tdm_route_policy p = tdm::default_route_policy(mode);
    p.signal = TDM_SIGNAL_ENTROPY_NORMALIZED;
    p.threshold = mode == TDM_MODE_EAD ? median * 9.0f : median;
    return p;
}

// The committed sequence's logits, recomputed by a fresh session from scratch.
std::vector<float> fresh_logits(const std::shared_ptr<const Model>& m,
                                const std::vector<int32_t>& tokens) {
    tdm::Session s(m, tdm::SessionConfig{});
    s.prefill(tokens.data(), int64_t(tokens.size()), false);
    return std::vector<float>(s.logits(0), s.logits(0) + s.vocab());
}

TEST(PairDecoder, CatchUpLogitsEqualAFreshPrefillAfterEveryStep) {
    auto d = make_pair("mistral-swa-f32", "llama-f32");
    const auto prompt = prompts()[2];
    const float median = median_small_entropy(*d, prompt);
    for (int32_t mode : {TDM_MODE_RSTITCH, TDM_MODE_EAD, TDM_MODE_SPECULATIVE}) {
        const tdm_route_policy p = median_policy(mode, median);
        tdm_pair_options o = options_for(mode, 30);
        d->start(prompt.data(), int64_t(prompt.size()), o, p);
        std::vector<tdm_token_record> step;
        bool finished = false;
        for (int step_index = 0; !finished; ++step_index) {
            finished = d->step(step);
            for (tdm_pair_model m : {TDM_PAIR_SMALL, TDM_PAIR_LARGE})
                ASSERT_LE(d->pair().session(m).length(), d->pair().committed_length());
            // Every few steps only, so that catch-ups in between span several tokens.
            if (step_index % 5 != 4 && !finished) continue;
            for (tdm_pair_model m : {TDM_PAIR_SMALL, TDM_PAIR_LARGE}) {
                // Catching up here (between steps) is what a step would do before running m.
                const float* z = d->pair().next_logits(m, {});
                const auto want = fresh_logits(
                    m == TDM_PAIR_SMALL ? load("mistral-swa-f32") : load("llama-f32"),
                    d->pair().committed());
                float scale = 0.0f, diff = 0.0f;
                for (size_t i = 0; i < want.size(); ++i) {
                    scale = std::max(scale, std::fabs(want[i]));
                    diff = std::max(diff, std::fabs(z[i] - want[i]));
                }
                // f32 end to end: only the summation order of batched vs one-token passes differs.
                EXPECT_LE(diff, 1e-4f * scale) << "model " << m << " at length "
                                               << d->pair().committed_length();
            }
        }
        const tdm_pair_stats s = d->stats();
        if (mode != TDM_MODE_SPECULATIVE) {
            EXPECT_GT(s.tokens_small, 0u) << "mode " << mode;
            EXPECT_GT(s.tokens_large, 0u) << "mode " << mode;
            EXPECT_GT(s.switches, 0u) << "mode " << mode;
        }
    }
}

TEST(PairDecoder, LargeShareIsMonotoneOverAThresholdSweep) {
    auto d = make_pair("mistral-swa-f32", "llama-f32");
    const auto ps = prompts();
    // Thresholds at quantiles of the small model's own normalised entropies, so that the sweep
    // crosses the range where decisions change.
    std::vector<float> h;
    for (const auto& prompt : ps)
        for (const auto& r : run_mode(*d, prompt, options_for(TDM_MODE_SMALL)).records)
            h.push_back(r.entropy_normalized);
    std::sort(h.begin(), h.end());
    std::vector<float> thresholds{-kInf};
    for (double q : {0.05, 0.25, 0.5, 0.75, 0.95}) thresholds.push_back(h[size_t(q * (h.size() - 1))]);
    thresholds.push_back(kInf);
    for (int32_t mode : {TDM_MODE_RSTITCH, TDM_MODE_EAD}) {
        std::vector<double> shares;
        for (float t : thresholds) {
            tdm_route_policy p = tdm::default_route_policy(mode);
            p.signal = TDM_SIGNAL_ENTROPY_NORMALIZED;
            p.threshold = mode == TDM_MODE_EAD && std::isfinite(t) ? t * 9.0f : t;  // bits, V=512
            double share = 0.0;
            for (const auto& prompt : ps) share += large_share(run_to_end(*d, prompt, options_for(mode), p));
            shares.push_back(share / double(ps.size()));
        }
        for (size_t i = 1; i < shares.size(); ++i)
            EXPECT_LE(shares[i], shares[i - 1] + 1e-12)
                << "mode " << mode << ": large share rose from threshold " << thresholds[i - 1]
                << " to " << thresholds[i];
        EXPECT_EQ(shares.back(), 0.0);
        EXPECT_GT(shares.front(), 0.9);
    }
}

// A route callback that follows R-Stitch on entropy, and fails (returns -1) on one chosen call.
struct FlakyPolicy {
    int fail_at = -1;
    int calls = 0;
    float threshold = 0.0f;
};

int32_t flaky_route(const tdm_route_info* info, void* user) {
    auto* p = static_cast<FlakyPolicy*>(user);
    if (p->calls++ == p->fail_at) return -1;
    const bool uncertain = info->stats.entropy_normalized > p->threshold;
    if (info->active == TDM_PAIR_SMALL) return uncertain ? TDM_ROUTE_DISCARD_AND_SWITCH : TDM_ROUTE_KEEP;
    return uncertain ? TDM_ROUTE_KEEP : TDM_ROUTE_KEEP_AND_SWITCH;
}

struct AbortAt {
    int at = -1;
    int calls = 0;
};

int32_t abort_at(void* user) {
    auto* a = static_cast<AbortAt*>(user);
    return a->calls++ == a->at ? 1 : 0;
}

struct PairState {
    std::vector<int32_t> committed;
    uint64_t tokens_small, tokens_large, drafted, accepted, discarded, switches, forwards_small,
        forwards_large;
    bool operator==(const PairState&) const = default;
};

PairState state_of(const PairDecoder& d) {
    const tdm_pair_stats s = d.stats();
    return {d.pair().committed(), s.tokens_small, s.tokens_large, s.drafted, s.accepted,
            s.discarded, s.switches, s.forwards_small, s.forwards_large};
}

// Runs with a failure injected at `fail_step`; the failed step must change nothing, and going on
// afterwards must give exactly the tokens of an undisturbed run.
void check_failed_step_changes_nothing(int32_t mode, float temperature, bool use_callback,
                                       tdm_status expected) {
    auto d = make_pair("mistral-swa-f32", "llama-f32");
    const auto prompt = prompts()[0];
    const float median = median_small_entropy(*d, prompt);
    FlakyPolicy policy;
    policy.threshold = median;
    AbortAt abort;
    tdm_pair_options o = options_for(mode, 30);
    o.temperature = temperature;
    o.seed = 42;
    if (use_callback) {
        o.route = flaky_route;
        o.route_user_data = &policy;
    }
    o.abort = abort_at;
    o.abort_user_data = &abort;
    const tdm_route_policy p = median_policy(mode, median);
    const PairRun undisturbed = run_to_end(*d, prompt, o, p);
    // The failure must hit runs where both models write (and, speculative, drafts get accepted).
    if (mode == TDM_MODE_RSTITCH || mode == TDM_MODE_EAD) {
        EXPECT_GT(undisturbed.stats.switches, 1u) << "mode " << mode;
    }
    if (mode == TDM_MODE_SPECULATIVE) {
        EXPECT_GT(undisturbed.stats.accepted, 0u);
        EXPECT_LT(undisturbed.stats.accepted, undisturbed.stats.drafted);
    }

    for (int fail_step : {0, 3, 7}) {
        policy = FlakyPolicy{-1, 0, median};
        abort = AbortAt{};
        d->start(prompt.data(), int64_t(prompt.size()), o, p);
        std::vector<tdm_token_record> step, records;
        bool finished = false;
        for (int i = 0; !finished; ++i) {
            if (i == fail_step) {
                const PairState before = state_of(*d);
                const int64_t len_small = d->pair().session(TDM_PAIR_SMALL).length();
                const int64_t len_large = d->pair().session(TDM_PAIR_LARGE).length();
                // Fail on the next callback, or the second abort check of this step (inside a
                // forward pass, between layers, or between two drafts)
                // (at step 0 the first check: a step may start from held logits and run no
                // forward before its second check.)
                if (use_callback) policy.fail_at = policy.calls;
                else abort.at = abort.calls + (i == 0 ? 0 : 1);
                try {
                    d->step(step);
                    ADD_FAILURE() << "the injected failure did not stop step " << i;
                } catch (const tdm::Error& e) {
                    EXPECT_EQ(e.status(), expected) << e.what();
                }
                EXPECT_TRUE(state_of(*d) == before) << "step " << i << " left traces";
                EXPECT_LE(d->pair().session(TDM_PAIR_SMALL).length(), len_small);
                EXPECT_LE(d->pair().session(TDM_PAIR_LARGE).length(), len_large);
            }
            finished = d->step(step);
            records.insert(records.end(), step.begin(), step.end());
        }
        const auto& c = d->pair().committed();
        EXPECT_EQ(std::vector<int32_t>(c.begin() + int64_t(prompt.size()), c.end()),
                  undisturbed.generated)
            << "mode " << mode << ", failure at step " << fail_step;
        EXPECT_EQ(records.size(), undisturbed.records.size());
    }
}

TEST(PairDecoder, FailingCallbackLeavesThePairUnchanged) {
    check_failed_step_changes_nothing(TDM_MODE_RSTITCH, 0.0f, true, TDM_ERR_CALLBACK);
    check_failed_step_changes_nothing(TDM_MODE_EAD, 1.0f, true, TDM_ERR_CALLBACK);
}

TEST(PairDecoder, AbortLeavesThePairUnchangedIncludingTheRandomState) {
    for (int32_t mode : {TDM_MODE_LARGE, TDM_MODE_SPECULATIVE, TDM_MODE_RSTITCH, TDM_MODE_EAD})
        check_failed_step_changes_nothing(mode, 1.0f, false, TDM_ERR_CANCELLED);
}

TEST(PairDecoder, StopsAtEosMaxNewTokensAndTheContext) {
    auto d = make_pair("mistral-swa-f32", "llama-f32");
    const auto prompt = prompts()[0];
    // EOS: make the large model's 5th greedy token count as an end of sequence by starting from
    // a run without EOS and checking that stop_at_eos cuts exactly at the first EOS it writes.
    tdm_pair_options o = options_for(TDM_MODE_SPECULATIVE, 200);
    o.stop_at_eos = 1;
    const PairRun with_eos = run_mode(*d, prompt, o);
    o.stop_at_eos = 0;
    const PairRun without = run_mode(*d, prompt, o);
    const auto eos = std::find(without.generated.begin(), without.generated.end(), 1);
    const size_t cut = eos == without.generated.end() ? without.generated.size()
                                                      : size_t(eos - without.generated.begin()) + 1;
    EXPECT_EQ(with_eos.generated,
              std::vector<int32_t>(without.generated.begin(), without.generated.begin() + int64_t(cut)));

    // The context: a pair whose sessions hold 24 tokens stops there, in every mode.
    tdm::SessionConfig small_ctx;
    small_ctx.kv_capacity = 24;
    PairDecoder tight(load("mistral-swa-f32"), load("llama-f32"), small_ctx);
    for (int32_t mode : {TDM_MODE_LARGE, TDM_MODE_SPECULATIVE, TDM_MODE_RSTITCH}) {
        tdm_pair_options t = options_for(mode, 0);
        t.draft_length = 6;
        const PairRun r = run_mode(tight, prompt, t);
        EXPECT_EQ(tight.pair().committed_length(), 24) << "mode " << mode;
    }
    std::vector<int32_t> too_long(25, 5);
    try {
        tight.start(too_long.data(), 25, options_for(TDM_MODE_LARGE), tdm::default_route_policy(0));
        ADD_FAILURE() << "a prompt over the context was accepted";
    } catch (const tdm::Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_CONTEXT_FULL);
    }
    EXPECT_FALSE(tight.started());
}

}  // namespace
