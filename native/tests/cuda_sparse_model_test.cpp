// Block-sparse prefill at the model level on the GPU, the CUDA mirror of the model tests of
// sparse_attention_test.cpp: the long fixture (1,650-token prompt, block size 64) prefilled with
// XAttention at threshold 1.0 (every causal block) and FlexPrefill with gamma 1 and a whole-prompt
// budget reproduces dense prefill's logits; the default knobs skip blocks and keep the next-token
// distribution close to dense. The prompt goes in two parts (1,000 tokens, then the rest), so the
// second part is estimated against a cache it did not write (pos0 > 0), as in chunked prefill.
//
// Tolerance: dense and sparse prefill on the GPU both round P to bf16 before P.V and accumulate
// in f32, but over other tile orders (the sparse kernel walks key blocks of 64, the dense one
// its own tiles); through 4 layers that is the engine's self-consistency tolerance of
// cuda_model_test.cpp, logits within 5e-3 (1 + |logit|).
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaSparseModel, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): sparse prefill on the GPU untested";
}

#else

#include <cmath>

#include "cuda_test_support.h"
#include "fixtures.h"
#include "model/model.h"
#include "model/session.h"

namespace tdm {
namespace {

constexpr float kSelfTol = 5e-3f;
constexpr int64_t kFirstPart = 1000;

std::shared_ptr<const Model> long_model_on_gpu() {
    LoadOptions options;
    options.device = TDM_DEVICE_CUDA;
    options.threads = 2;
    return Model::load(testing::fixture_dir("long-llama-bf16"), options);
}

std::vector<int32_t> long_prompt() {
    const auto golden = testing::read_json(testing::fixture_dir("long-llama-bf16") + "/golden.json");
    return golden.at("long").at("ids").get<std::vector<int32_t>>();
}

PrefillAttention xattention(const Model& m, float threshold) {
    PrefillAttention a;
    a.settings.method = TDM_ATTENTION_XATTENTION;
    a.settings.block_size = 64;
    a.settings.xattn_stride = 8;
    a.xattn_thresholds.assign(size_t(m.config().num_hidden_layers * m.config().num_attention_heads),
                              threshold);
    return a;
}

PrefillAttention flexprefill(float gamma, int64_t min_budget) {
    PrefillAttention a;
    a.settings.method = TDM_ATTENTION_FLEXPREFILL;
    a.settings.block_size = 64;
    a.settings.flex_gamma = gamma;
    a.settings.flex_min_budget = min_budget;
    return a;
}

// Prefills ids in two parts; all_logits keeps the logits of the second part's every row.
void prefill_in_two(Session& s, const std::vector<int32_t>& ids, bool all_logits,
                    const PrefillAttention* a) {
    s.prefill(ids.data(), kFirstPart, false, {}, a);
    s.prefill(ids.data() + kFirstPart, int64_t(ids.size()) - kFirstPart, all_logits, {}, a);
}

TEST(CudaSparseModel, EveryBlockSelectedReproducesDenseLogits) {
    TDM_SKIP_WITHOUT_GPU();
    const auto model = long_model_on_gpu();
    const std::vector<int32_t> ids = long_prompt();
    ASSERT_GT(ids.size(), 1500u);
    const int64_t n = int64_t(ids.size());
    Session dense(model, SessionConfig{});
    prefill_in_two(dense, ids, true, nullptr);
    const PrefillAttention x = xattention(*model, 1.0f);
    const PrefillAttention f = flexprefill(1.0f, n);
    for (const PrefillAttention* a : {&x, &f}) {
        SCOPED_TRACE(a->settings.method == TDM_ATTENTION_XATTENTION ? "xattention" : "flexprefill");
        Session s(model, SessionConfig{});
        prefill_in_two(s, ids, true, a);
        ASSERT_EQ(s.logit_rows(), dense.logit_rows());
        for (int64_t r = 0; r < s.logit_rows(); ++r)
            for (int64_t v = 0; v < s.vocab(); ++v) {
                const float want = dense.logits(r)[v];
                ASSERT_NEAR(s.logits(r)[v], want, kSelfTol * (1.0f + std::fabs(want)))
                    << "row " << r << " token " << v;
            }
        for (float d : s.attention_density()) EXPECT_EQ(d, 1.0f);
    }
}

TEST(CudaSparseModel, DefaultSettingsSkipBlocksAndKeepTheAnswerClose) {
    TDM_SKIP_WITHOUT_GPU();
    const auto model = long_model_on_gpu();
    const std::vector<int32_t> ids = long_prompt();
    Session dense(model, SessionConfig{});
    prefill_in_two(dense, ids, false, nullptr);
    const PrefillAttention x = xattention(*model, 0.9f);
    const PrefillAttention f = flexprefill(0.95f, 256);
    for (const PrefillAttention* a : {&x, &f}) {
        SCOPED_TRACE(a->settings.method == TDM_ATTENTION_XATTENTION ? "xattention" : "flexprefill");
        Session s(model, SessionConfig{});
        prefill_in_two(s, ids, false, a);
        const std::vector<float>& d = s.attention_density();
        ASSERT_EQ(d.size(), size_t(model->config().num_hidden_layers *
                                   model->config().num_attention_heads));
        double mean = 0;
        for (float v : d) {
            EXPECT_GT(v, 0.0f);
            EXPECT_LE(v, 1.0f);
            mean += v / double(d.size());
        }
        EXPECT_LT(mean, 0.95);
        // Same bound as the CPU test: the next-token distribution stays close (not equal).
        const std::vector<double> p = testing::log_softmax(dense.logits(0), size_t(dense.vocab()));
        const std::vector<double> q = testing::log_softmax(s.logits(0), size_t(s.vocab()));
        double kl = 0;
        for (size_t v = 0; v < p.size(); ++v) kl += std::exp(p[v]) * (p[v] - q[v]);
        EXPECT_LT(kl, 0.5);
    }
}

}  // namespace
}  // namespace tdm

#endif  // TANDEM_HAVE_CUDA
