// The engine against Hugging Face transformers on the fixture models: logits of whole prompts,
// greedy continuations, and the cache invariants (prefill-then-decode, truncate-then-redo).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "fixtures.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/session.h"

namespace tdm {
namespace {

using testing::fixture_dir;
using testing::read_json;

struct Fixture {
    std::string name;
    std::shared_ptr<const Model> model;
    nlohmann::json golden;
    SafetensorsFile logits;
    bool bf16;
};

Fixture open_fixture(const std::string& name) {
    const std::string dir = fixture_dir(name);
    Fixture f;
    f.name = name;
    LoadOptions options;
    options.threads = 2;
    f.model = Model::load(dir, options);
    f.golden = read_json(dir + "/golden.json");
    f.logits = SafetensorsFile::open(dir + "/golden.safetensors");
    f.bf16 = f.golden.at("dtype").get<std::string>() == "bfloat16";
    return f;
}

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

// f32 fixtures: every logit within 1e-4 x max |logit| of transformers' (f32 arithmetic both sides,
// differing only in summation order). bf16 fixtures: log-probabilities within 2e-2 (bf16 weights;
// our fast kernels may also round activations to bf16, about 4e-3 relative per product).
void expect_logits_match(const Fixture& f, const float* ours, const float* gold, int64_t rows,
                         int64_t V, const std::string& what) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* a = ours + r * V;
        const float* b = gold + r * V;
        if (!f.bf16) {
            float scale = 0;
            for (int64_t i = 0; i < V; ++i) scale = std::max(scale, std::fabs(b[i]));
            float worst = 0;
            for (int64_t i = 0; i < V; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
            ASSERT_LE(worst, 1e-4f * scale) << f.name << " " << what << " row " << r;
        } else {
            auto la = testing::log_softmax(a, size_t(V));
            auto lb = testing::log_softmax(b, size_t(V));
            double worst = 0;
            for (int64_t i = 0; i < V; ++i) worst = std::max(worst, std::fabs(la[i] - lb[i]));
            ASSERT_LE(worst, 2e-2) << f.name << " " << what << " row " << r;
        }
    }
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, PromptLogitsMatchTransformers) {
    Fixture f = open_fixture(GetParam());
    const int64_t V = f.model->config().vocab_size;
    for (const auto& prompt : f.golden.at("prompts")) {
        auto ids = ids_of(prompt.at("ids"));
        const TensorEntry& gold = f.logits.get(prompt.at("logits").get<std::string>());
        ASSERT_EQ(gold.shape, (std::vector<int64_t>{int64_t(ids.size()), V}));
        Session s(f.model, SessionConfig{});
        s.prefill(ids.data(), int64_t(ids.size()), /*all_logits=*/true);
        ASSERT_EQ(s.logit_rows(), int64_t(ids.size()));
        expect_logits_match(f, s.logits(0), static_cast<const float*>(gold.data),
                            int64_t(ids.size()), V, prompt.at("logits").get<std::string>());
    }
}

TEST_P(GoldenTest, GreedyContinuationMatchesTransformers) {
    Fixture f = open_fixture(GetParam());
    const auto& g = f.golden.at("greedy");
    auto prompt = ids_of(g.at("prompt_ids"));
    auto expected = ids_of(g.at("tokens"));
    auto margins = g.at("margins").get<std::vector<double>>();
    Session s(f.model, SessionConfig{});
    s.prefill(prompt.data(), int64_t(prompt.size()), false);
    const int64_t V = s.vocab();
    // Identical up to the first step whose golden top-2 margin is within our tolerance: past a
    // near-tie the two engines may legitimately diverge (1e-4 for f32 arithmetic; for bf16 weights
    // the logit tolerance of expect_logits_match, 2e-2).
    const double tie = f.bf16 ? 2e-2 : 1e-4;
    size_t checked = 0;
    for (size_t step = 0; step < expected.size(); ++step) {
        if (margins[step] < tie) break;
        const float* z = s.logits(0);
        int32_t best = int32_t(std::max_element(z, z + V) - z);
        ASSERT_EQ(best, expected[step]) << f.name << " step " << step;
        s.decode(best);
        ++checked;
    }
    RecordProperty("greedy_steps_checked", int(checked));
}

TEST_P(GoldenTest, PrefillThenDecodeEqualsOneLongPrefill) {
    Fixture f = open_fixture(GetParam());
    auto ids = ids_of(f.golden.at("prompts").at(1).at("ids"));
    ASSERT_GE(ids.size(), 4u);
    const int64_t V = f.model->config().vocab_size;
    Session whole(f.model, SessionConfig{});
    whole.prefill(ids.data(), int64_t(ids.size()), true);
    Session parts(f.model, SessionConfig{});
    const int64_t head = int64_t(ids.size()) / 2;
    parts.prefill(ids.data(), head, false);
    // The decode path (matrix-vector) and the prefill path (matrix-matrix) sum in other orders;
    // with bf16 weights the fast kernels also round activations to bf16 (~4e-3 relative).
    const float tol = f.bf16 ? 5e-3f : 1e-4f;
    for (size_t i = size_t(head); i < ids.size(); ++i) {
        parts.decode(ids[i]);
        const float* a = parts.logits(0);
        const float* b = whole.logits(int64_t(i));
        for (int64_t j = 0; j < V; ++j) {
            ASSERT_NEAR(a[j], b[j], tol * (1.0f + std::fabs(b[j]))) << f.name << " pos " << i;
        }
    }
}

// SessionConfig::prefill_chunk: one prefill call run as several forward passes (3 rows each, every
// pass attending to what the ones before it cached) gives the logits of one pass, every row.
TEST_P(GoldenTest, ChunkedPrefillInOneCallEqualsOnePass) {
    Fixture f = open_fixture(GetParam());
    auto ids = ids_of(f.golden.at("prompts").at(1).at("ids"));
    const int64_t n = int64_t(ids.size()), V = f.model->config().vocab_size;
    SessionConfig small_chunks;
    small_chunks.prefill_chunk = 3;
    ASSERT_GT(n, 2 * small_chunks.prefill_chunk);
    Session whole(f.model, SessionConfig{});
    whole.prefill(ids.data(), n, true);
    Session chunked(f.model, small_chunks);
    chunked.prefill(ids.data(), n, true);
    ASSERT_EQ(chunked.prefill_chunk_rows(), small_chunks.prefill_chunk);
    // Per row the same operations; only the matmul kernels' blocking of the row batch differs.
    const float tol = f.bf16 ? 5e-3f : 1e-4f;
    for (int64_t r = 0; r < n; ++r) {
        for (int64_t j = 0; j < V; ++j) {
            const float want = whole.logits(r)[j];
            ASSERT_NEAR(chunked.logits(r)[j], want, tol * (1.0f + std::fabs(want)))
                << f.name << " row " << r;
        }
    }
    SessionConfig bad;
    bad.prefill_chunk = -1;
    EXPECT_THROW(Session(f.model, bad), Error);
}

TEST_P(GoldenTest, TruncateThenRedoEqualsOriginal) {
    Fixture f = open_fixture(GetParam());
    auto ids = ids_of(f.golden.at("prompts").at(2).at("ids"));
    const int64_t n = int64_t(ids.size());
    const int64_t V = f.model->config().vocab_size;
    Session s(f.model, SessionConfig{});
    s.prefill(ids.data(), n, false);
    std::vector<float> original(s.logits(0), s.logits(0) + V);
    // Roll back and diverge with other tokens first, so stale cache entries would show.
    const int64_t keep = n / 2;
    s.truncate(keep);
    std::vector<int32_t> other(size_t(n - keep), int32_t(V - 1));
    s.prefill(other.data(), int64_t(other.size()), false);
    s.truncate(keep);
    s.prefill(ids.data() + keep, n - keep, false);
    EXPECT_EQ(s.length(), n);
    // Batches of other sizes may sum in another order: equal to rounding, not bit for bit.
    const float tol = f.bf16 ? 5e-3f : 1e-4f;
    for (int64_t j = 0; j < V; ++j) {
        const float want = original[size_t(j)];
        ASSERT_NEAR(s.logits(0)[j], want, tol * (1.0f + std::fabs(want))) << f.name << " " << j;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest, ::testing::ValuesIn(testing::fixture_names()),
                         [](const auto& param_info) {
                             std::string n = param_info.param;
                             std::replace(n.begin(), n.end(), '-', '_');
                             return n;
                         });

TEST(LongContext, TailLogitsOfA1500TokenPromptMatchTransformers) {
    Fixture f = open_fixture("long-llama-bf16");
    const auto& long_prompt = f.golden.at("long");
    auto ids = ids_of(long_prompt.at("ids"));
    ASSERT_GE(ids.size(), 1500u);
    const TensorEntry& gold = f.logits.get(long_prompt.at("logits_tail").get<std::string>());
    const int64_t tail = gold.shape.at(0), V = gold.shape.at(1);
    Session s(f.model, SessionConfig{});
    s.prefill(ids.data(), int64_t(ids.size()), true);  // crosses several prefill chunks
    expect_logits_match(f, s.logits(int64_t(ids.size()) - tail),
                        static_cast<const float*>(gold.data), tail, V, "long tail");
}

TEST(SessionLimits, ContextFullLeavesTheSessionUnchanged) {
    auto model = Model::load(fixture_dir("llama-f32"), LoadOptions{});
    SessionConfig config;
    config.kv_capacity = 8;
    Session s(model, config);
    std::vector<int32_t> ids(6, 5);
    s.prefill(ids.data(), 6, false);
    try {
        s.prefill(ids.data(), 3, false);
        FAIL() << "expected TDM_ERR_CONTEXT_FULL";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_CONTEXT_FULL);
        EXPECT_NE(std::string(e.what()).find("KV capacity"), std::string::npos) << e.what();
    }
    EXPECT_EQ(s.length(), 6);
    s.prefill(ids.data(), 2, false);  // exactly full is fine
    EXPECT_EQ(s.length(), 8);
}

TEST(SessionLimits, BadTokensAreRejectedBeforeAnyWork) {
    auto model = Model::load(fixture_dir("llama-f32"), LoadOptions{});
    Session s(model, SessionConfig{});
    std::vector<int32_t> bad = {1, 2, int32_t(model->config().vocab_size)};
    try {
        s.prefill(bad.data(), 3, false);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_TOKEN_OUT_OF_RANGE);
    }
    int32_t neg = -1;
    EXPECT_THROW(s.decode(neg), Error);
    EXPECT_THROW(s.prefill(bad.data(), 0, false), Error);
    EXPECT_EQ(s.length(), 0);
}

TEST(SessionLimits, ManySessionsShareOneModel) {
    auto model = Model::load(fixture_dir("qwen2-tied-f32"), LoadOptions{});
    std::vector<int32_t> ids = {3, 7, 11, 13};
    std::vector<float> first;
    for (int i = 0; i < 50; ++i) {
        SessionConfig config;
        config.threads = 1;
        Session s(model, config);
        s.prefill(ids.data(), 4, false);
        if (first.empty()) first.assign(s.logits(0), s.logits(0) + s.vocab());
        ASSERT_TRUE(std::equal(first.begin(), first.end(), s.logits(0)));
    }
}

}  // namespace
}  // namespace tdm
