// Two-model decoding through the public C ABI only (tandem.h and libtandem.so): option structs and
// their struct_size, NULL arguments, record capacity, statuses, borrowed sessions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "fixtures.h"
#include "tandem.h"

namespace {

using tdm::testing::fixture_dir;

tdm_model* load(const std::string& name) {
    tdm_model_options o;
    tdm_model_options_init(&o);
    o.threads = 1;
    tdm_model* m = nullptr;
    EXPECT_EQ(tdm_model_load(fixture_dir(name).c_str(), &o, &m), TDM_OK) << tdm_last_error();
    return m;
}

std::string last_error() { return tdm_last_error(); }

class CApiPair : public ::testing::Test {
protected:
    void SetUp() override {
        small_ = load("mistral-swa-f32");
        large_ = load("llama-f32");
        ASSERT_EQ(tdm_pair_create(small_, large_, nullptr, &pair_), TDM_OK) << last_error();
        // The pair keeps its models alive.
        tdm_model_free(small_);
        tdm_model_free(large_);
        small_ = large_ = nullptr;
    }
    void TearDown() override { tdm_pair_free(pair_); }

    // Steps to the end; returns the generated tokens.
    std::vector<int32_t> generate(const tdm_pair_options* o) {
        EXPECT_EQ(tdm_pair_start(pair_, prompt_.data(), prompt_.size(), o), TDM_OK) << last_error();
        uint64_t cap = 0;
        EXPECT_EQ(tdm_pair_max_records(pair_, &cap), TDM_OK);
        std::vector<tdm_token_record> records(cap);
        uint8_t finished = 0;
        for (int guard = 0; guard < 1000 && !finished; ++guard) {
            uint64_t n = 0;
            EXPECT_EQ(tdm_pair_step(pair_, records.data(), cap, &n, &finished), TDM_OK)
                << last_error();
            EXPECT_GE(n, 1u);
        }
        uint64_t length = 0;
        EXPECT_EQ(tdm_pair_tokens(pair_, nullptr, 0, &length), TDM_OK);
        std::vector<int32_t> all(length);
        EXPECT_EQ(tdm_pair_tokens(pair_, all.data(), all.size(), &length), TDM_OK);
        return std::vector<int32_t>(all.begin() + int64_t(prompt_.size()), all.end());
    }

    tdm_model* small_ = nullptr;
    tdm_model* large_ = nullptr;
    tdm_pair* pair_ = nullptr;
    std::vector<int32_t> prompt_{0, 272, 333, 342, 76, 383, 315, 79};
};

TEST(CApiPairOptions, InitGivesTheDocumentedDefaults) {
    tdm_pair_options o;
    tdm_pair_options_init(&o);
    EXPECT_EQ(o.struct_size, sizeof(tdm_pair_options));
    EXPECT_EQ(o.mode, TDM_MODE_RSTITCH);
    EXPECT_EQ(o.temperature, 0.0f);
    EXPECT_EQ(o.top_p, 1.0f);
    EXPECT_EQ(o.stats_top_k, 2u);
    EXPECT_EQ(o.stop_at_eos, 1);
    EXPECT_EQ(o.draft_length, 4u);
    EXPECT_EQ(o.policy, nullptr);
    EXPECT_EQ(o.route, nullptr);
    tdm_route_policy p;
    tdm_route_policy_init(&p, TDM_MODE_EAD);
    EXPECT_EQ(p.struct_size, sizeof(tdm_route_policy));
    EXPECT_EQ(p.signal, TDM_SIGNAL_ENTROPY_BITS);
    EXPECT_EQ(p.window, 5u);
    tdm_route_policy_init(&p, TDM_MODE_RSTITCH);
    EXPECT_EQ(p.signal, TDM_SIGNAL_ENTROPY_NORMALIZED);
    tdm_pair_options_init(nullptr);  // no crash
    tdm_route_policy_init(nullptr, 0);
    tdm_pair_free(nullptr);
}

TEST(CApiPairCreate, NullArgumentsAndTokenizerMismatch) {
    tdm_model* a = load("llama-f32");
    tdm_model* q = load("qwen2-tied-f32");
    tdm_pair* p = reinterpret_cast<tdm_pair*>(0x1);
    EXPECT_EQ(tdm_pair_create(nullptr, a, nullptr, &p), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(tdm_pair_create(a, nullptr, nullptr, &p), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_create(a, a, nullptr, nullptr), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_create(a, q, nullptr, &p), TDM_ERR_INVALID_MODEL);
    EXPECT_NE(last_error().find("token id"), std::string::npos) << last_error();
    tdm_session_options so;
    tdm_session_options_init(&so);
    so.threads = -1;
    EXPECT_EQ(tdm_pair_create(a, a, &so, &p), TDM_ERR_INVALID_ARGUMENT);
    so.struct_size = 0;
    EXPECT_EQ(tdm_pair_create(a, a, &so, &p), TDM_ERR_INVALID_ARGUMENT);
    tdm_model_free(a);
    tdm_model_free(q);
}

TEST_F(CApiPair, StepBeforeStartAndBadCapacity) {
    uint64_t n = 7;
    uint8_t finished = 0;
    tdm_token_record r[16];
    EXPECT_EQ(tdm_pair_step(pair_, r, 16, &n, &finished), TDM_ERR_INVALID_STATE);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(tdm_pair_max_records(pair_, &n), TDM_ERR_INVALID_STATE);

    tdm_pair_options o;
    tdm_pair_options_init(&o);
    o.mode = TDM_MODE_SPECULATIVE;
    o.draft_length = 6;
    ASSERT_EQ(tdm_pair_start(pair_, prompt_.data(), prompt_.size(), &o), TDM_OK) << last_error();
    ASSERT_EQ(tdm_pair_max_records(pair_, &n), TDM_OK);
    EXPECT_EQ(n, 7u);
    EXPECT_EQ(tdm_pair_step(pair_, r, 6, &n, &finished), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("capacity 6"), std::string::npos) << last_error();
    EXPECT_EQ(tdm_pair_step(pair_, nullptr, 16, &n, &finished), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_step(pair_, r, 16, nullptr, &finished), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_step(pair_, r, 16, &n, nullptr), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_step(nullptr, r, 16, &n, &finished), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_step(pair_, r, 16, &n, &finished), TDM_OK) << last_error();
    EXPECT_GE(n, 1u);

    o.adaptive_draft = 1;  // the bound then covers the longest draft adaptation can reach
    ASSERT_EQ(tdm_pair_start(pair_, prompt_.data(), prompt_.size(), &o), TDM_OK);
    ASSERT_EQ(tdm_pair_max_records(pair_, &n), TDM_OK);
    EXPECT_EQ(n, 25u);
}

TEST_F(CApiPair, StartValidatesArgumentsAndOptions) {
    tdm_pair_options o;
    tdm_pair_options_init(&o);
    EXPECT_EQ(tdm_pair_start(nullptr, prompt_.data(), prompt_.size(), &o), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_start(pair_, nullptr, 3, &o), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_start(pair_, prompt_.data(), 0, &o), TDM_ERR_INVALID_ARGUMENT);
    const int32_t bad[] = {0, 512};
    EXPECT_EQ(tdm_pair_start(pair_, bad, 2, &o), TDM_ERR_TOKEN_OUT_OF_RANGE);
    std::vector<int32_t> too_long(513, 3);
    EXPECT_EQ(tdm_pair_start(pair_, too_long.data(), too_long.size(), &o), TDM_ERR_CONTEXT_FULL);

    auto rejected = [&](auto edit, const char* fragment) {
        tdm_pair_options e;
        tdm_pair_options_init(&e);
        edit(e);
        EXPECT_EQ(tdm_pair_start(pair_, prompt_.data(), prompt_.size(), &e),
                  TDM_ERR_INVALID_ARGUMENT) << fragment;
        EXPECT_NE(last_error().find(fragment), std::string::npos) << last_error();
    };
    rejected([](tdm_pair_options& e) { e.struct_size = 0; }, "struct_size");
    rejected([](tdm_pair_options& e) { e.mode = 9; }, "mode");
    rejected([](tdm_pair_options& e) { e.temperature = -1.0f; }, "temperature");
    rejected([](tdm_pair_options& e) { e.top_p = 0.0f; }, "top_p");
    rejected([](tdm_pair_options& e) { e.draft_length = 0; }, "draft_length");
    rejected([](tdm_pair_options& e) { e.draft_confidence = NAN; }, "draft_confidence");
    tdm_route_policy policy;
    tdm_route_policy_init(&policy, TDM_MODE_EAD);
    policy.window = 0;
    rejected([&](tdm_pair_options& e) { e.mode = TDM_MODE_EAD; e.policy = &policy; }, "window");
    policy.struct_size = 0;
    rejected([&](tdm_pair_options& e) { e.mode = TDM_MODE_EAD; e.policy = &policy; },
             "tdm_route_policy_init");

    // After a failed start the pair is unstarted.
    uint64_t n = 0;
    EXPECT_EQ(tdm_pair_max_records(pair_, &n), TDM_ERR_INVALID_STATE);
}

TEST_F(CApiPair, ShortStructSizeKeepsTheDefaultsOfLaterFields) {
    // An older caller's options end after max_new_tokens: stop_at_eos, the draft settings and the
    // policy must keep their defaults (here: R-Stitch from the init default is replaced by LARGE).
    tdm_pair_options full;
    tdm_pair_options_init(&full);
    full.mode = TDM_MODE_LARGE;
    full.max_new_tokens = 12;
    full.stop_at_eos = 0;
    const std::vector<int32_t> reference = generate(&full);
    ASSERT_EQ(reference.size(), 12u);

    tdm_pair_options older;
    tdm_pair_options_init(&older);
    older.mode = TDM_MODE_LARGE;
    older.max_new_tokens = 12;
    older.stop_at_eos = 0;                // beyond struct_size: ignored, default 1 applies
    older.draft_length = 0;               // beyond struct_size: would be invalid if read
    older.struct_size = offsetof(tdm_pair_options, stop_at_eos);
    const std::vector<int32_t> got = generate(&older);
    // With stop_at_eos back at 1 the output is the reference cut after its first EOS (id 1).
    size_t cut = 0;
    while (cut < reference.size() && reference[cut] != 1) ++cut;
    EXPECT_EQ(got, std::vector<int32_t>(reference.begin(),
                                        reference.begin() + int64_t(std::min(cut + 1, reference.size()))));
}

int32_t failing_route(const tdm_route_info*, void* user) {
    ++*static_cast<int*>(user);
    return -1;
}

TEST_F(CApiPair, FailingCallbackIsAnErrorAndChangesNothing) {
    tdm_pair_options o;
    tdm_pair_options_init(&o);
    o.mode = TDM_MODE_RSTITCH;
    int calls = 0;
    o.route = failing_route;
    o.route_user_data = &calls;
    ASSERT_EQ(tdm_pair_start(pair_, prompt_.data(), prompt_.size(), &o), TDM_OK);
    tdm_token_record r[2];
    uint64_t n = 5;
    uint8_t finished = 7;
    EXPECT_EQ(tdm_pair_step(pair_, r, 2, &n, &finished), TDM_ERR_CALLBACK);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(n, 0u);
    EXPECT_NE(last_error().find("routing callback returned -1"), std::string::npos) << last_error();
    uint64_t length = 0;
    ASSERT_EQ(tdm_pair_tokens(pair_, nullptr, 0, &length), TDM_OK);
    EXPECT_EQ(length, prompt_.size());
    tdm_pair_stats s{};
    s.struct_size = sizeof(s);
    ASSERT_EQ(tdm_pair_get_stats(pair_, &s), TDM_OK);
    EXPECT_EQ(s.tokens_small + s.tokens_large, 0u);
}

TEST_F(CApiPair, BorrowedSessionsAndStats) {
    tdm_pair_options o;
    tdm_pair_options_init(&o);
    o.mode = TDM_MODE_SPECULATIVE;
    o.max_new_tokens = 20;
    o.stop_at_eos = 0;
    const std::vector<int32_t> out = generate(&o);
    EXPECT_EQ(out.size(), 20u);

    tdm_session* s = nullptr;
    EXPECT_EQ(tdm_pair_session(pair_, 2, &s), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_session(pair_, TDM_PAIR_SMALL, nullptr), TDM_ERR_INVALID_ARGUMENT);
    for (int32_t which : {TDM_PAIR_SMALL, TDM_PAIR_LARGE}) {
        ASSERT_EQ(tdm_pair_session(pair_, which, &s), TDM_OK);
        uint64_t len = 0;
        ASSERT_EQ(tdm_session_length(s, &len), TDM_OK);
        EXPECT_LE(len, prompt_.size() + 20);
    }

    tdm_pair_stats st{};
    st.struct_size = sizeof(st);
    ASSERT_EQ(tdm_pair_get_stats(pair_, &st), TDM_OK);
    EXPECT_EQ(st.tokens_small + st.tokens_large, 20u);
    EXPECT_EQ(st.tokens_small, st.accepted);
    EXPECT_GT(st.verifications, 0u);
    EXPECT_GT(st.forwards_large, 0u);
    EXPECT_GT(st.seconds_total, 0.0);
    // A caller with a shorter struct gets only what fits.
    tdm_pair_stats shorter{};
    shorter.struct_size = offsetof(tdm_pair_stats, drafted);
    shorter.drafted = 12345;
    ASSERT_EQ(tdm_pair_get_stats(pair_, &shorter), TDM_OK);
    EXPECT_EQ(shorter.tokens_large, st.tokens_large);
    EXPECT_EQ(shorter.drafted, 12345u);
    EXPECT_EQ(tdm_pair_get_stats(pair_, nullptr), TDM_ERR_INVALID_ARGUMENT);

    uint64_t length = 0;
    int32_t few[3];
    ASSERT_EQ(tdm_pair_tokens(pair_, few, 3, &length), TDM_OK);
    EXPECT_EQ(length, prompt_.size() + 20);
    EXPECT_EQ(few[1], prompt_[1]);
    EXPECT_EQ(tdm_pair_tokens(pair_, nullptr, 3, &length), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_pair_tokens(pair_, few, 3, nullptr), TDM_ERR_INVALID_ARGUMENT);
}

}  // namespace
