// Sampled speculative decoding of a GPU pair (decode/pair_speculative.cpp, issue 5), which drafts
// and verifies on logits summaries, against the full-row loop it replaced, run here on a second
// pair of the same GPU models: every row copied to the host, Sampler::sample and ::probabilities,
// verify_sampled. Both pairs run the same forward passes in the same order, so they see the same
// logits, and for the same seed the committed tokens must be the same. (Where the warp covers the
// whole vocabulary the summary normalises by the device's tempered sum, added in another order
// than the host's: a token could then differ only where a uniform falls within ~1e-7 relative of
// a decision boundary, which these few hundred draws do not meet.)
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaPairSpeculative, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): GPU pair untested";
}

#else

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_support.h"
#include "decode/model_pair.h"
#include "decode/pair_decoder.h"
#include "decode/sampler.h"
#include "decode/speculative_verify.h"
#include "fixtures.h"
#include "model/model.h"

namespace tdm {
namespace {

std::shared_ptr<const Model> load_cuda(const std::string& name) {
    LoadOptions options;
    options.device = TDM_DEVICE_CUDA;
    return Model::load(tdm::testing::fixture_dir(name), options);
}

// The full-row loop of the previous PairDecoder::speculative_step (fixed draft length, no EOS
// stop), returning the committed sequence.
std::vector<int32_t> full_row_speculative(ModelPair& pair, const std::vector<int32_t>& prompt,
                                          const tdm_sampler_options& o, uint32_t gamma,
                                          int64_t max_new) {
    pair.reset(prompt.data(), int64_t(prompt.size()));
    pair.next_logits(TDM_PAIR_SMALL, {});
    pair.next_logits(TDM_PAIR_LARGE, {});
    Sampler sampler(o);
    const int64_t V = pair.vocab();
    while (pair.committed_length() - pair.prompt_length() < max_new) {
        const int64_t generated = pair.committed_length() - pair.prompt_length();
        const int64_t g = std::min<int64_t>(gamma, max_new - generated - 1);
        std::vector<int32_t> drafts;
        std::vector<std::vector<float>> q(static_cast<size_t>(g),
                                          std::vector<float>(static_cast<size_t>(V)));
        for (int64_t i = 0; i < g; ++i) {
            const float* z = pair.next_logits(TDM_PAIR_SMALL, drafts);
            drafts.push_back(sampler.sample(z, V));
            sampler.probabilities(z, V, q[size_t(i)].data());
        }
        const std::vector<const float*> rows = pair.score_after(TDM_PAIR_LARGE, drafts);
        std::vector<std::vector<float>> p(rows.size(), std::vector<float>(static_cast<size_t>(V)));
        std::vector<const float*> pp, qp;
        for (size_t i = 0; i < rows.size(); ++i) {
            sampler.probabilities(rows[i], V, p[i].data());
            pp.push_back(p[i].data());
        }
        for (auto& row : q) qp.push_back(row.data());
        const VerifyResult r = verify_sampled(drafts, qp, pp, V, sampler.rng());
        for (int64_t i = 0; i < r.accepted; ++i) pair.commit(drafts[size_t(i)]);
        pair.commit(r.token);
        pair.settle();
    }
    return pair.committed();
}

TEST(CudaPairSpeculative, SampledTokensEqualTheFullRowLoop) {
    TDM_SKIP_WITHOUT_GPU();
    const auto small = load_cuda("llama-bf16");
    const auto large = load_cuda("long-llama-bf16");
    ModelPair reference(small, large, SessionConfig{});
    PairDecoder decoder(small, large, SessionConfig{});
    const std::vector<int32_t> prompt = {1, 17, 42, 7, 99, 3, 250};
    struct Case {
        float T;
        int32_t top_k;
        float top_p;
    };
    // Temperature only (full-vocabulary warps, mostly falling back on these flat rows, and
    // deciding at the low temperature), top-k inside the summary, top-p, both.
    const Case cases[] = {{1.0f, 0, 1.0f}, {0.3f, 0, 1.0f}, {1.0f, 20, 1.0f},
                          {0.8f, 0, 0.9f}, {1.0f, 40, 0.7f}, {0.5f, 100, 1.0f}};
    constexpr uint32_t kGamma = 3;
    constexpr int64_t kNew = 24;
    for (const Case& c : cases) {
        for (uint64_t seed = 0; seed < 6; ++seed) {
            SCOPED_TRACE("T=" + std::to_string(c.T) + " top_k=" + std::to_string(c.top_k) +
                         " top_p=" + std::to_string(c.top_p) + " seed=" + std::to_string(seed));
            tdm_sampler_options so = default_sampler_options();
            so.temperature = c.T, so.top_k = c.top_k, so.top_p = c.top_p, so.seed = seed;
            const std::vector<int32_t> want =
                full_row_speculative(reference, prompt, so, kGamma, kNew);

            tdm_pair_options o = default_pair_options();
            o.mode = TDM_MODE_SPECULATIVE;
            o.temperature = c.T, o.top_k = c.top_k, o.top_p = c.top_p, o.seed = seed;
            o.draft_length = kGamma;
            o.max_new_tokens = uint32_t(kNew);
            o.stop_at_eos = 0;
            decoder.start(prompt.data(), int64_t(prompt.size()), o, tdm_route_policy{});
            std::vector<tdm_token_record> records;
            while (!decoder.step(records)) {
                for (tdm_pair_model m : {TDM_PAIR_SMALL, TDM_PAIR_LARGE})
                    ASSERT_LE(decoder.pair().session(m).length(), decoder.pair().committed_length());
            }
            ASSERT_EQ(decoder.pair().committed(), want);
            const tdm_pair_stats s = decoder.stats();
            EXPECT_GT(s.drafted, 0u);
        }
    }
}

}  // namespace
}  // namespace tdm

#endif
