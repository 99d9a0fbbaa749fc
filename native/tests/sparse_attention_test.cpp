// Block-sparse attention on the CPU against a token-level masked reference (the plan expanded to
// a key mask per query, softmax in double), on random plans at ragged sizes, GQA, pos0 > 0 and
// block sizes 16/64; the log-sum-exp; the full plan against dense attention; the backend entry
// (thresholds of 1 give dense attention, short calls and sliding windows run dense, densities);
// and, at the model level, that a 1,650-token prompt prefilled with every block selected gives
// dense prefill's logits while the default settings skip blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "attention/cpu_sparse_attention.h"
#include "attention/xattention.h"
#include "fixtures.h"
#include "kernels/cpu/kernels.h"
#include "model/model.h"
#include "model/session.h"
#include "sparse_test_support.h"

namespace tdm {
namespace {

using test::make_problem;
using test::SparseProblem;

HostBlockPlan random_plan(const AttentionCall& c, int32_t B, double keep, std::mt19937& rng) {
    const BlockGrid g = BlockGrid::of(c.pos0, c.n_new, B);
    std::bernoulli_distribution pick(keep);
    std::vector<uint8_t> mask(size_t(c.heads) * g.q_blocks * g.k_blocks);
    for (auto& m : mask) m = pick(rng);
    return plan_from_mask(mask.data(), c.heads, g);
}

// f32 with online softmax against double: scores of |s| <~ 10 and outputs of rms ~1 keep the
// error near 1e-6; 2e-5 leaves room for long rows.
constexpr double kTol = 2e-5;

TEST(SparseAttention, MatchesTheTokenLevelMaskedReference) {
    ThreadPool pool(3);
    std::mt19937 rng(7);
    struct Case { int64_t n, pos0; int32_t heads, kv_heads, D, B; double keep; };
    uint32_t seed = 1;
    for (const Case c : {Case{150, 0, 4, 2, 32, 16, 0.3}, Case{77, 0, 2, 1, 16, 16, 0.0},
                         Case{200, 130, 3, 1, 64, 64, 0.5}, Case{5, 61, 2, 2, 8, 16, 0.4},
                         Case{301, 0, 8, 2, 128, 64, 0.2}, Case{96, 17, 4, 4, 80, 16, 1.0}}) {
        SCOPED_TRACE("n=" + std::to_string(c.n) + " pos0=" + std::to_string(c.pos0) +
                     " B=" + std::to_string(c.B));
        const SparseProblem p = make_problem(c.n, c.pos0, c.heads, c.kv_heads, c.D, seed++);
        const HostBlockPlan plan = random_plan(p.call, c.B, c.keep, rng);
        ASSERT_EQ(plan_violation(plan), "");
        std::vector<float> out(p.q.size(), -7.0f), lse(size_t(c.heads * c.n));
        cpu::sparse_attention(p.q.data(), p.k.data(), p.v.data(), p.call, plan.view(), out.data(),
                              lse.data(), pool);
        std::vector<double> want, want_lse;
        test::masked_attention_reference(p, plan, want, want_lse);
        for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], kTol) << "at " << i;
        for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lse[i], want_lse[i], kTol * 10) << i;
    }
}

TEST(SparseAttention, FullPlanEqualsDenseAndThreadsDoNotMatter) {
    const SparseProblem p = make_problem(333, 50, 4, 1, 64, 11);
    const HostBlockPlan plan = full_plan(4, BlockGrid::of(50, 333, 64));
    ThreadPool one(1), three(3);
    std::vector<float> a(p.q.size()), b(p.q.size()), dense(p.q.size());
    cpu::sparse_attention(p.q.data(), p.k.data(), p.v.data(), p.call, plan.view(), a.data(), nullptr, one);
    cpu::sparse_attention(p.q.data(), p.k.data(), p.v.data(), p.call, plan.view(), b.data(), nullptr, three);
    const AttentionCall& c = p.call;
    cpu::attention(p.q.data(), p.k.data(), p.v.data(),
                   {c.n_new, c.pos0, c.capacity, c.heads, c.kv_heads, c.head_dim, 0, c.scale},
                   dense.data(), three);
    EXPECT_EQ(a, b);  // each tile is computed by one thread in a fixed order
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], dense[i], 1e-5) << i;
}

TEST(SparseAttention, RejectsAPlanOfAnotherCallAndSlidingWindows) {
    ThreadPool pool(1);
    SparseProblem p = make_problem(100, 0, 2, 1, 16, 12);
    const HostBlockPlan other = full_plan(2, BlockGrid::of(0, 200, 16));
    std::vector<float> out(p.q.size());
    EXPECT_THROW(cpu::sparse_attention(p.q.data(), p.k.data(), p.v.data(), p.call, other.view(),
                                       out.data(), nullptr, pool),
                 Error);
    const HostBlockPlan plan = full_plan(2, BlockGrid::of(0, 100, 16));
    p.call.window = 32;
    EXPECT_THROW(cpu::sparse_attention(p.q.data(), p.k.data(), p.v.data(), p.call, plan.view(),
                                       out.data(), nullptr, pool),
                 Error);
}

TEST(SparseAttention, BackendEntryDenseCasesAndDensity) {
    ThreadPool pool(2);
    const SparseProblem p = make_problem(400, 0, 4, 2, 32, 13, 2.0f);
    const AttentionCall& c = p.call;
    std::vector<float> dense(p.q.size()), out(p.q.size());
    cpu::attention(p.q.data(), p.k.data(), p.v.data(),
                   {c.n_new, c.pos0, c.capacity, c.heads, c.kv_heads, c.head_dim, 0, c.scale},
                   dense.data(), pool);
    SparseAttention sp;
    sp.method = TDM_ATTENTION_XATTENTION;
    sp.block_size = 64;
    sp.xattn_stride = 8;
    std::vector<float> thresholds(4, 1.0f), density(4, -1.0f);
    sp.xattn_threshold = thresholds.data();
    cpu::attention_sparse(p.q.data(), p.k.data(), p.v.data(), c, sp, out.data(), density.data(), pool);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], dense[i], 1e-5) << i;
    for (float d : density) EXPECT_EQ(d, 1.0f);

    std::fill(thresholds.begin(), thresholds.end(), 0.5f);
    cpu::attention_sparse(p.q.data(), p.k.data(), p.v.data(), c, sp, out.data(), density.data(), pool);
    for (float d : density) {
        EXPECT_GT(d, 0.0f);
        EXPECT_LT(d, 1.0f);
    }
    // The output is what the plan the estimator chose gives.
    HostBlockPlan plan;
    ASSERT_TRUE(xattn::plan(p.q.data(), p.k.data(), c, sp, plan, &pool));
    std::vector<double> want, want_lse;
    test::masked_attention_reference(p, plan, want, want_lse);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], kTol) << i;

    // FlexPrefill below its fallback length, and any method under a sliding window: dense.
    sp.method = TDM_ATTENTION_FLEXPREFILL;
    sp.flex_min_budget = 1024;
    cpu::attention_sparse(p.q.data(), p.k.data(), p.v.data(), c, sp, out.data(), density.data(), pool);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], dense[i]);
    for (float d : density) EXPECT_EQ(d, 1.0f);
    sp.flex_min_budget = 64;
    AttentionCall windowed = c;
    windowed.window = 100;
    cpu::attention_sparse(p.q.data(), p.k.data(), p.v.data(), windowed, sp, out.data(), density.data(), pool);
    for (float d : density) EXPECT_EQ(d, 1.0f);
    cpu::attention_sparse(p.q.data(), p.k.data(), p.v.data(), c, sp, out.data(), density.data(), pool);
    for (float d : density) EXPECT_LT(d, 1.0f);
}

// ---- model level -------------------------------------------------------------------------------

std::vector<int32_t> long_prompt() {
    const auto golden = testing::read_json(testing::fixture_dir("long-llama-bf16") + "/golden.json");
    return golden.at("long").at("ids").get<std::vector<int32_t>>();
}

std::shared_ptr<const Model> long_model() {
    LoadOptions options;
    options.threads = 2;
    return Model::load(testing::fixture_dir("long-llama-bf16"), options);
}

PrefillAttention xattention(const Model& m, float threshold, int32_t B) {
    PrefillAttention a;
    a.settings.method = TDM_ATTENTION_XATTENTION;
    a.settings.block_size = B;
    a.settings.xattn_stride = 8;
    a.xattn_thresholds.assign(size_t(m.config().num_hidden_layers * m.config().num_attention_heads),
                              threshold);
    return a;
}

void expect_logits_near(const Session& a, const Session& b, float tol) {
    ASSERT_EQ(a.logit_rows(), b.logit_rows());
    for (int64_t r = 0; r < a.logit_rows(); ++r)
        for (int64_t v = 0; v < a.vocab(); ++v)
            ASSERT_NEAR(a.logits(r)[v], b.logits(r)[v], tol) << "row " << r << " token " << v;
}

TEST(SparsePrefill, EveryBlockSelectedReproducesDenseLogits) {
    const auto model = long_model();
    const std::vector<int32_t> ids = long_prompt();
    ASSERT_GT(ids.size(), 1500u);
    const int64_t n = int64_t(ids.size());
    Session dense(model, SessionConfig{});
    dense.prefill(ids.data(), n, true);
    ASSERT_EQ(dense.attention_density(), std::vector<float>(dense.attention_density().size(), 1.0f));

    // Thresholds of 1.0 (XAttention) and a minimum budget of the whole prompt (FlexPrefill).
    PrefillAttention x = xattention(*model, 1.0f, 64);
    PrefillAttention f;
    f.settings.method = TDM_ATTENTION_FLEXPREFILL;
    f.settings.block_size = 64;
    f.settings.flex_gamma = 1.0f;
    f.settings.flex_min_budget = n;
    for (const PrefillAttention* a : {&x, &f}) {
        Session s(model, SessionConfig{});
        s.prefill(ids.data(), n, true, {}, a);
        // Only the summation order differs (tiles of one head vs GQA row blocks).
        expect_logits_near(s, dense, 1e-3f);
        for (float d : s.attention_density()) EXPECT_EQ(d, 1.0f);
    }
}

TEST(SparsePrefill, DefaultSettingsSkipBlocksAndKeepTheAnswerClose) {
    const auto model = long_model();
    const std::vector<int32_t> ids = long_prompt();
    const int64_t n = int64_t(ids.size());
    Session dense(model, SessionConfig{});
    dense.prefill(ids.data(), n, false);
    PrefillAttention x = xattention(*model, 0.9f, 64);
    PrefillAttention f;
    f.settings.method = TDM_ATTENTION_FLEXPREFILL;
    f.settings.block_size = 64;
    f.settings.flex_min_budget = 256;
    for (const PrefillAttention* a : {&x, &f}) {
        Session s(model, SessionConfig{});
        s.prefill(ids.data(), n, false, {}, a);
        const std::vector<float>& d = s.attention_density();
        ASSERT_EQ(d.size(), size_t(model->config().num_hidden_layers *
                                   model->config().num_attention_heads));
        double mean = 0;
        for (float v : d) {
            EXPECT_GT(v, 0.0f);
            EXPECT_LE(v, 1.0f);
            mean += v / double(d.size());
        }
        EXPECT_LT(mean, 0.95) << "method " << a->settings.method;
        // The last position's next-token distribution stays close to dense (not equal).
        const std::vector<double> p = testing::log_softmax(dense.logits(0), size_t(dense.vocab()));
        const std::vector<double> q = testing::log_softmax(s.logits(0), size_t(s.vocab()));
        double kl = 0;
        for (size_t v = 0; v < p.size(); ++v) kl += std::exp(p[v]) * (p[v] - q[v]);
        EXPECT_LT(kl, 0.5) << "method " << a->settings.method;
        // Decode after a sparse prefill is dense and leaves the prefill's density alone.
        s.decode(ids[0]);
        EXPECT_EQ(s.attention_density(), d);
    }
}

}  // namespace
}  // namespace tdm
