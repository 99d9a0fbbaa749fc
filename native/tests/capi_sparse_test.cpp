// Block-sparse prefill through the public C ABI: the option defaults, every knob's validation
// message, callers compiled before the sparse fields (or xattn_fp8) existed,
// tdm_session_attention_density, and XAttention's fp8 estimation on a model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "fixtures.h"
#include "tandem.h"

namespace {

using tdm::testing::fixture_dir;

struct Fixture {
    tdm_model* model = nullptr;
    tdm_session* session = nullptr;
    std::vector<int32_t> ids;
    explicit Fixture(const std::string& name) {
        tdm_model_options o;
        tdm_model_options_init(&o);
        o.threads = 2;
        EXPECT_EQ(tdm_model_load(fixture_dir(name).c_str(), &o, &model), TDM_OK) << tdm_last_error();
        EXPECT_EQ(tdm_session_create(model, nullptr, &session), TDM_OK) << tdm_last_error();
        const auto golden = tdm::testing::read_json(fixture_dir(name) + "/golden.json");
        ids = golden.contains("long") ? golden.at("long").at("ids").get<std::vector<int32_t>>()
                                      : golden.at("prompts").at(0).at("ids").get<std::vector<int32_t>>();
    }
    ~Fixture() {
        tdm_session_free(session);
        tdm_model_free(model);
    }
    tdm_status prefill(const tdm_prefill_options& o) {
        return tdm_session_prefill(session, ids.data(), ids.size(), &o);
    }
};

tdm_prefill_options sparse(int32_t method) {
    tdm_prefill_options o;
    tdm_prefill_options_init(&o);
    o.attention = method;
    return o;
}

TEST(CApiSparse, DefaultsAreTheDocumentedOnes) {
    tdm_prefill_options o;
    tdm_prefill_options_init(&o);
    EXPECT_EQ(o.attention, TDM_ATTENTION_DENSE);
    EXPECT_EQ(o.block_size, 128u);
    EXPECT_EQ(o.xattn_stride, 8u);
    EXPECT_FLOAT_EQ(o.xattn_threshold, 0.9f);
    EXPECT_EQ(o.xattn_thresholds, nullptr);
    EXPECT_FLOAT_EQ(o.flex_gamma, 0.95f);
    EXPECT_FLOAT_EQ(o.flex_tau, 0.1f);
    EXPECT_EQ(o.flex_min_budget, 1024u);
    EXPECT_EQ(o.flex_max_budget, 0u);
    EXPECT_EQ(o.sparse_compat, 0u);
    EXPECT_EQ(o.xattn_fp8, 0u);
}

TEST(CApiSparse, BadKnobsAreRejectedWithTheirName) {
    Fixture f("llama-f32");
    struct Bad { const char* needle; void (*set)(tdm_prefill_options&); };
    const Bad cases[] = {
        {"unknown attention method", [](tdm_prefill_options& o) { o.attention = 7; }},
        {"block_size", [](tdm_prefill_options& o) { o.block_size = 96; }},
        {"xattn_stride", [](tdm_prefill_options& o) { o.xattn_stride = 3; }},
        {"xattn_stride", [](tdm_prefill_options& o) { o.xattn_stride = 0; }},
        {"xattn_threshold", [](tdm_prefill_options& o) { o.xattn_threshold = -0.1f; }},
        {"xattn_threshold", [](tdm_prefill_options& o) { o.xattn_threshold = NAN; }},
        {"sparse_compat", [](tdm_prefill_options& o) { o.sparse_compat = 8; }},
        {"xattn_fp8 must be 0 or 1", [](tdm_prefill_options& o) { o.xattn_fp8 = 2; }},
    };
    for (const Bad& b : cases) {
        tdm_prefill_options o = sparse(TDM_ATTENTION_XATTENTION);
        b.set(o);
        EXPECT_EQ(f.prefill(o), TDM_ERR_INVALID_ARGUMENT) << b.needle;
        EXPECT_NE(std::string(tdm_last_error()).find(b.needle), std::string::npos) << tdm_last_error();
    }
    const Bad flex_cases[] = {
        {"flex_gamma", [](tdm_prefill_options& o) { o.flex_gamma = 0.0f; }},
        {"flex_gamma", [](tdm_prefill_options& o) { o.flex_gamma = 1.5f; }},
        {"flex_tau", [](tdm_prefill_options& o) { o.flex_tau = -1.0f; }},
        {"flex_max_budget", [](tdm_prefill_options& o) { o.flex_max_budget = 512; }},
        {"xattn_fp8 must be 0 or 1", [](tdm_prefill_options& o) { o.xattn_fp8 = 255; }},
    };
    for (const Bad& b : flex_cases) {
        tdm_prefill_options o = sparse(TDM_ATTENTION_FLEXPREFILL);
        b.set(o);
        EXPECT_EQ(f.prefill(o), TDM_ERR_INVALID_ARGUMENT) << b.needle;
        EXPECT_NE(std::string(tdm_last_error()).find(b.needle), std::string::npos) << tdm_last_error();
    }
    // A per-head table entry out of range names its layer and head.
    std::vector<float> table(2 * 4, 0.9f);  // llama-f32: 2 layers x 4 heads
    table[5] = -1.0f;
    tdm_prefill_options o = sparse(TDM_ATTENTION_XATTENTION);
    o.xattn_thresholds = table.data();
    EXPECT_EQ(f.prefill(o), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(tdm_last_error()).find("layer 1, head 1"), std::string::npos) << tdm_last_error();
    // Nothing was prefilled by the failed calls.
    uint64_t length = 99;
    ASSERT_EQ(tdm_session_length(f.session, &length), TDM_OK);
    EXPECT_EQ(length, 0u);
}

TEST(CApiSparse, DensityOfDenseAndSparsePrefills) {
    Fixture f("long-llama-bf16");
    float mean = -1;
    EXPECT_EQ(tdm_session_attention_density(f.session, nullptr, 0, &mean), TDM_ERR_INVALID_STATE);
    tdm_model_info info;
    info.struct_size = sizeof(info);
    ASSERT_EQ(tdm_model_get_info(f.model, &info), TDM_OK);
    const size_t cells = size_t(info.layers) * info.heads;

    ASSERT_EQ(f.prefill(sparse(TDM_ATTENTION_DENSE)), TDM_OK) << tdm_last_error();
    std::vector<float> d(cells, -1.0f);
    ASSERT_EQ(tdm_session_attention_density(f.session, d.data(), d.size(), &mean), TDM_OK);
    EXPECT_EQ(d, std::vector<float>(cells, 1.0f));
    EXPECT_EQ(mean, 1.0f);

    // A per-head table: thresholds of 1 in layer 0, 0 (only sink and diagonal) in layer 1.
    ASSERT_EQ(tdm_session_truncate(f.session, 0), TDM_OK);
    std::vector<float> table(cells, 1.0f);
    for (size_t i = cells / 2; i < cells; ++i) table[i] = 0.0f;
    tdm_prefill_options o = sparse(TDM_ATTENTION_XATTENTION);
    o.block_size = 64;
    o.xattn_thresholds = table.data();
    ASSERT_EQ(f.prefill(o), TDM_OK) << tdm_last_error();
    ASSERT_EQ(tdm_session_attention_density(f.session, d.data(), d.size(), &mean), TDM_OK);
    for (size_t i = 0; i < cells; ++i) {
        if (i < cells / 2) {
            EXPECT_EQ(d[i], 1.0f) << i;
        } else {
            EXPECT_LT(d[i], 0.2f) << i;  // sink and diagonal of rows of up to 26 blocks
        }
    }
    EXPECT_LT(mean, 0.6f);
    EXPECT_EQ(tdm_session_attention_density(f.session, d.data(), cells - 1, nullptr),
              TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(tdm_session_attention_density(f.session, nullptr, cells, nullptr),
              TDM_ERR_INVALID_ARGUMENT);

    ASSERT_EQ(tdm_session_truncate(f.session, 0), TDM_OK);
    o = sparse(TDM_ATTENTION_FLEXPREFILL);
    o.block_size = 64;
    o.flex_min_budget = 128;
    ASSERT_EQ(f.prefill(o), TDM_OK) << tdm_last_error();
    ASSERT_EQ(tdm_session_attention_density(f.session, nullptr, 0, &mean), TDM_OK);
    EXPECT_GT(mean, 0.0f);
    EXPECT_LT(mean, 1.0f);
}

TEST(CApiSparse, CallersWithoutTheSparseFieldsGetDenseDefaults) {
    Fixture f("llama-f32");
    tdm_prefill_options o = sparse(TDM_ATTENTION_DENSE);
    o.struct_size = offsetof(tdm_prefill_options, block_size);  // compiled before the sparse knobs
    o.block_size = 3;                                            // never read
    ASSERT_EQ(f.prefill(o), TDM_OK) << tdm_last_error();
}

TEST(CApiSparse, CallersWithoutXattnFp8GetItOff) {
    Fixture f("llama-f32");
    tdm_prefill_options o = sparse(TDM_ATTENTION_XATTENTION);
    o.struct_size = offsetof(tdm_prefill_options, xattn_fp8);  // compiled before the field
    o.xattn_fp8 = 2;                                           // never read, else rejected
    ASSERT_EQ(f.prefill(o), TDM_OK) << tdm_last_error();
    ASSERT_EQ(tdm_session_truncate(f.session, 0), TDM_OK);
    o.struct_size = sizeof(o);
    EXPECT_EQ(f.prefill(o), TDM_ERR_INVALID_ARGUMENT) << "read at the full size";
}

TEST(CApiSparse, XAttentionWithFp8EstimationReportsItsDensity) {
    Fixture f("long-llama-bf16");
    tdm_model_info info;
    info.struct_size = sizeof(info);
    ASSERT_EQ(tdm_model_get_info(f.model, &info), TDM_OK);
    std::vector<float> d(size_t(info.layers) * info.heads, -1.0f);
    std::vector<float> means;
    for (uint8_t fp8 : {0, 1}) {
        ASSERT_EQ(tdm_session_truncate(f.session, 0), TDM_OK);
        tdm_prefill_options o = sparse(TDM_ATTENTION_XATTENTION);
        o.block_size = 64;
        o.xattn_fp8 = fp8;
        ASSERT_EQ(f.prefill(o), TDM_OK) << tdm_last_error();
        float mean = -1;
        ASSERT_EQ(tdm_session_attention_density(f.session, d.data(), d.size(), &mean), TDM_OK);
        for (size_t i = 0; i < d.size(); ++i) {
            EXPECT_GT(d[i], 0.0f) << "fp8 " << int(fp8) << " cell " << i;
            EXPECT_LE(d[i], 1.0f) << "fp8 " << int(fp8) << " cell " << i;
        }
        EXPECT_LT(mean, 1.0f) << "fp8 " << int(fp8) << ": a 1,650-token prompt in blocks of 64";
        means.push_back(mean);
    }
    // Rounding Q and K to 3 mantissa bits moves some blocks across the threshold, not many.
    std::printf("[ fp8 ] mean density %.4f (f32 estimation %.4f)\n", means[1], means[0]);
    EXPECT_NEAR(means[1], means[0], 0.05f);
}

}  // namespace
