// The public C ABI as a caller sees it: only tandem.h and libtandem.so.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fixtures.h"
#include "tandem.h"

namespace {

using tdm::testing::fixture_dir;

tdm_model* load(const std::string& name) {
    tdm_model_options o;
    tdm_model_options_init(&o);
    o.threads = 2;
    tdm_model* m = nullptr;
    EXPECT_EQ(tdm_model_load(fixture_dir(name).c_str(), &o, &m), TDM_OK) << tdm_last_error();
    return m;
}

std::string last_error() { return tdm_last_error(); }

TEST(CApi, VersionAndBuildInfo) {
    EXPECT_EQ(tdm_abi_version(), TDM_ABI_VERSION);
    tdm_build_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(tdm_get_build_info(&info), TDM_OK);
    EXPECT_EQ(info.has_cpu, 1);
    EXPECT_EQ(info.abi_version, TDM_ABI_VERSION);
    EXPECT_STRNE(info.version, "");
    EXPECT_NE(info.cpu_features, nullptr);
    EXPECT_EQ(tdm_get_build_info(nullptr), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_STREQ(tdm_status_name(TDM_ERR_CONTEXT_FULL), "TDM_ERR_CONTEXT_FULL");
    EXPECT_STREQ(tdm_status_name(999), "TDM_ERR_UNKNOWN");
}

TEST(CApi, FreeAcceptsNull) {
    tdm_model_free(nullptr);
    tdm_session_free(nullptr);
    tdm_sampler_free(nullptr);
}

TEST(CApi, LoadErrorsHaveSpecificStatusesAndMessages) {
    tdm_model* m = reinterpret_cast<tdm_model*>(0x1);
    EXPECT_EQ(tdm_model_load("/definitely/not/here", nullptr, &m), TDM_ERR_NOT_FOUND);
    EXPECT_EQ(m, nullptr);
    EXPECT_NE(last_error().find("/definitely/not/here"), std::string::npos) << last_error();

    auto dir = std::filesystem::temp_directory_path() / "tandem_capi_empty_model";
    std::filesystem::create_directories(dir);
    EXPECT_EQ(tdm_model_load(dir.c_str(), nullptr, &m), TDM_ERR_NOT_FOUND);
    EXPECT_NE(last_error().find("config.json"), std::string::npos) << last_error();

    std::ofstream(dir / "config.json") << R"({"architectures":["BertModel"]})";
    EXPECT_EQ(tdm_model_load(dir.c_str(), nullptr, &m), TDM_ERR_UNSUPPORTED);
    EXPECT_NE(last_error().find("BertModel"), std::string::npos) << last_error();
    std::filesystem::remove_all(dir);

    EXPECT_EQ(tdm_model_load(nullptr, nullptr, &m), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_model_load("x", nullptr, nullptr), TDM_ERR_INVALID_ARGUMENT);
}

TEST(CApi, CudaIsRefusedClearlyWhenAbsent) {
    tdm_build_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(tdm_get_build_info(&info), TDM_OK);
    if (info.has_cuda) GTEST_SKIP() << "this build has CUDA";
    tdm_model_options o;
    tdm_model_options_init(&o);
    o.device = TDM_DEVICE_CUDA;
    tdm_model* m = nullptr;
    EXPECT_EQ(tdm_model_load(fixture_dir("llama-f32").c_str(), &o, &m), TDM_ERR_BACKEND_UNAVAILABLE);
    EXPECT_NE(last_error().find("CUDA"), std::string::npos);
}

TEST(CApi, ModelInfoDescribesTheFixture) {
    tdm_model* m = load("qwen2-tied-f32");
    ASSERT_NE(m, nullptr);
    tdm_model_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(tdm_model_get_info(m, &info), TDM_OK);
    EXPECT_STREQ(info.architecture, "Qwen2ForCausalLM");
    EXPECT_EQ(info.tie_word_embeddings, 1);
    EXPECT_LT(info.kv_heads, info.heads);
    EXPECT_EQ(info.dtype, TDM_DTYPE_F32);
    EXPECT_GT(info.parameter_count, 0u);
    tdm_model_free(m);
}

TEST(CApi, OlderCallersWithShorterOptionsStillWork) {
    // A caller compiled when tdm_session_options had only struct_size and kv_capacity.
    tdm_model* m = load("llama-f32");
    struct OldOptions { uint32_t struct_size; uint32_t kv_capacity; } old{sizeof(OldOptions), 16};
    tdm_session* s = nullptr;
    ASSERT_EQ(tdm_session_create(m, reinterpret_cast<const tdm_session_options*>(&old), &s), TDM_OK)
        << last_error();
    uint64_t cap = 0;
    ASSERT_EQ(tdm_session_capacity(s, &cap), TDM_OK);
    EXPECT_EQ(cap, 16u);
    tdm_session_free(s);
    tdm_session_options bad{};
    EXPECT_EQ(tdm_session_create(m, &bad, &s), TDM_ERR_INVALID_ARGUMENT);  // struct_size 0
    tdm_model_free(m);
}

TEST(CApi, SessionLifecycleAndErrors) {
    tdm_model* m = load("llama-f32");
    tdm_session* s = nullptr;
    ASSERT_EQ(tdm_session_create(m, nullptr, &s), TDM_OK);
    tdm_model_free(m);  // the session keeps the model alive

    uint64_t rows = 9, vocab = 0;
    ASSERT_EQ(tdm_session_logits_shape(s, &rows, &vocab), TDM_OK);
    EXPECT_EQ(rows, 0u);
    std::vector<float> logits(vocab);
    EXPECT_EQ(tdm_session_get_logits(s, 0, logits.data(), vocab), TDM_ERR_INVALID_STATE);

    std::vector<int32_t> ids = {1, 5, 9, 17};
    EXPECT_EQ(tdm_session_prefill(s, ids.data(), 0, nullptr), TDM_ERR_INVALID_ARGUMENT);
    int32_t bad = int32_t(vocab);
    EXPECT_EQ(tdm_session_prefill(s, &bad, 1, nullptr), TDM_ERR_TOKEN_OUT_OF_RANGE);
    ASSERT_EQ(tdm_session_prefill(s, ids.data(), ids.size(), nullptr), TDM_OK);
    ASSERT_EQ(tdm_session_get_logits(s, 0, logits.data(), vocab), TDM_OK);
    EXPECT_EQ(tdm_session_get_logits(s, 1, logits.data(), vocab), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_session_get_logits(s, 0, logits.data(), vocab - 1), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_session_truncate(s, 5), TDM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(tdm_session_truncate(s, 2), TDM_OK);
    uint64_t len = 0;
    ASSERT_EQ(tdm_session_length(s, &len), TDM_OK);
    EXPECT_EQ(len, 2u);
    ASSERT_EQ(tdm_session_decode(s, 3), TDM_OK);
    tdm_token_stats st{};
    st.struct_size = sizeof(st);
    ASSERT_EQ(tdm_session_stats(s, 0, 2, &st), TDM_OK);
    EXPECT_GT(st.entropy, 0.0f);
    EXPECT_NEAR(st.entropy_bits, st.entropy / std::log(2.0f), 1e-5);
    EXPECT_EQ(st.top_k, 2u);
    tdm_session_free(s);
}

TEST(CApi, ScoreReportsNullForTheFirstTokenOfAFreshSession) {
    tdm_model* m = load("llama-f32");
    tdm_session* s = nullptr;
    ASSERT_EQ(tdm_session_create(m, nullptr, &s), TDM_OK);
    std::vector<int32_t> ids = {1, 40, 41, 42, 43};
    std::vector<tdm_score_entry> out(ids.size());
    ASSERT_EQ(tdm_session_score(s, ids.data(), ids.size(), 2, out.data(), nullptr), TDM_OK);
    EXPECT_TRUE(std::isnan(out[0].logprob) && std::isnan(out[0].entropy));
    for (size_t i = 1; i < ids.size(); ++i) {
        EXPECT_LT(out[i].logprob, 0.0f);
        EXPECT_GT(out[i].entropy, 0.0f);
        EXPECT_GT(out[i].eu, 0.0f);
    }
    // Scoring more tokens continues from the held logits: entry 0 is defined now.
    std::vector<tdm_score_entry> more(2);
    ASSERT_EQ(tdm_session_score(s, ids.data(), 2, 2, more.data(), nullptr), TDM_OK);
    EXPECT_FALSE(std::isnan(more[0].logprob));
    tdm_session_free(s);
    tdm_model_free(m);
}

int32_t abort_now(void*) { return 1; }

TEST(CApi, AbortRollsBack) {
    tdm_model* m = load("llama-f32");
    tdm_session* s = nullptr;
    ASSERT_EQ(tdm_session_create(m, nullptr, &s), TDM_OK);
    std::vector<int32_t> ids = {1, 2, 3};
    tdm_prefill_options o;
    tdm_prefill_options_init(&o);
    o.abort = abort_now;
    EXPECT_EQ(tdm_session_prefill(s, ids.data(), ids.size(), &o), TDM_ERR_CANCELLED);
    uint64_t len = 9;
    ASSERT_EQ(tdm_session_length(s, &len), TDM_OK);
    EXPECT_EQ(len, 0u);
    tdm_session_free(s);
    tdm_model_free(m);
}

TEST(CApi, SamplerRejectsBadOptions) {
    tdm_sampler_options o;
    tdm_sampler* smp = nullptr;
    for (float t : {-1.0f, NAN, INFINITY}) {
        tdm_sampler_options_init(&o);
        o.temperature = t;
        EXPECT_EQ(tdm_sampler_create(&o, &smp), TDM_ERR_INVALID_ARGUMENT) << t;
    }
    for (float p : {0.0f, 1.5f, NAN}) {
        tdm_sampler_options_init(&o);
        o.top_p = p;
        EXPECT_EQ(tdm_sampler_create(&o, &smp), TDM_ERR_INVALID_ARGUMENT) << p;
    }
    tdm_sampler_options_init(&o);
    o.top_k = -3;
    EXPECT_EQ(tdm_sampler_create(&o, &smp), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(smp, nullptr);
}

TEST(CApi, GreedySamplerPicksTheArgmaxAndReportsTemperatureOneStats) {
    tdm_sampler_options o;
    tdm_sampler_options_init(&o);
    o.temperature = 0.0f;
    tdm_sampler* smp = nullptr;
    ASSERT_EQ(tdm_sampler_create(&o, &smp), TDM_OK);
    std::vector<float> z = {0.5f, 3.0f, -1.0f, 2.0f};
    int32_t tok = -1;
    tdm_token_stats st{};
    st.struct_size = sizeof(st);
    ASSERT_EQ(tdm_sampler_sample(smp, z.data(), z.size(), &tok, &st), TDM_OK);
    EXPECT_EQ(tok, 1);
    EXPECT_EQ(st.top_ids[0], 1);
    EXPECT_EQ(st.top_ids[1], 3);
    double lse = std::log(std::exp(0.5) + std::exp(3.0) + std::exp(-1.0) + std::exp(2.0));
    EXPECT_NEAR(st.logsumexp, lse, 1e-5);
    EXPECT_NEAR(st.max_prob, std::exp(3.0 - lse), 1e-6);
    tdm_sampler_free(smp);
}

}  // namespace
