#include "capi/prefill_options.h"

#include <cmath>
#include <string>

#include "capi/guard.h"

namespace tdm::capi {
namespace {

void check_threshold(float t, const std::string& what) {
    TDM_REQUIRE(std::isfinite(t) && t >= 0.0f, TDM_ERR_INVALID_ARGUMENT,
                what + " must be finite and >= 0 (1 or more selects every causal block), got " +
                    std::to_string(t));
}

}  // namespace

void default_prefill_options(tdm_prefill_options* o) {
    *o = tdm_prefill_options{};
    o->struct_size = sizeof(tdm_prefill_options);
    o->attention = TDM_ATTENTION_DENSE;
    o->block_size = 128;
    o->xattn_stride = 8;
    o->xattn_threshold = 0.9f;
    o->xattn_thresholds = nullptr;
    o->flex_gamma = 0.95f;
    o->flex_tau = 0.1f;
    o->flex_min_budget = 1024;
    o->flex_max_budget = 0;
    o->sparse_compat = TDM_SPARSE_COMPAT_NONE;
    o->xattn_fp8 = 0;
}

tdm_prefill_options read_prefill_options(const tdm_prefill_options* given) {
    tdm_prefill_options defaults;
    default_prefill_options(&defaults);
    const tdm_prefill_options o = read_options(given, defaults, "tdm_prefill_options");
    const int32_t m = o.attention;
    TDM_REQUIRE(m == TDM_ATTENTION_DENSE || m == TDM_ATTENTION_XATTENTION ||
                    m == TDM_ATTENTION_FLEXPREFILL,
                TDM_ERR_INVALID_ARGUMENT,
                "unknown attention method " + std::to_string(m) +
                    " (0 = dense, 1 = xattention, 2 = flexprefill)");
    // 0 or 1 whatever the method, never a silent "on": the field sits in what was the struct's
    // tail padding, so a caller that filled an older struct by hand may leave garbage there.
    TDM_REQUIRE(o.xattn_fp8 <= 1, TDM_ERR_INVALID_ARGUMENT,
                "xattn_fp8 must be 0 or 1, got " + std::to_string(int(o.xattn_fp8)));
    if (m == TDM_ATTENTION_DENSE) return o;
    TDM_REQUIRE(o.block_size == 64 || o.block_size == 128, TDM_ERR_INVALID_ARGUMENT,
                "block_size must be 64 or 128, got " + std::to_string(o.block_size));
    const uint32_t known = TDM_SPARSE_COMPAT_FLEX_BUDGET_128 | TDM_SPARSE_COMPAT_FLEX_JSD_NAN;
    TDM_REQUIRE((o.sparse_compat & ~known) == 0, TDM_ERR_INVALID_ARGUMENT,
                "unknown sparse_compat flags " + std::to_string(o.sparse_compat & ~known));
    if (m == TDM_ATTENTION_XATTENTION) {
        TDM_REQUIRE(o.xattn_stride > 0 && o.block_size % o.xattn_stride == 0,
                    TDM_ERR_INVALID_ARGUMENT,
                    "xattn_stride " + std::to_string(o.xattn_stride) +
                        " must divide the block size " + std::to_string(o.block_size));
        if (o.xattn_thresholds == nullptr) check_threshold(o.xattn_threshold, "xattn_threshold");
    } else {
        TDM_REQUIRE(o.flex_gamma > 0.0f && o.flex_gamma <= 1.0f, TDM_ERR_INVALID_ARGUMENT,
                    "flex_gamma must be in (0, 1], got " + std::to_string(o.flex_gamma));
        TDM_REQUIRE(std::isfinite(o.flex_tau) && o.flex_tau >= 0.0f, TDM_ERR_INVALID_ARGUMENT,
                    "flex_tau must be finite and >= 0, got " + std::to_string(o.flex_tau));
        TDM_REQUIRE(o.flex_max_budget == 0 || o.flex_max_budget >= o.flex_min_budget,
                    TDM_ERR_INVALID_ARGUMENT,
                    "flex_max_budget " + std::to_string(o.flex_max_budget) +
                        " is below flex_min_budget " + std::to_string(o.flex_min_budget) +
                        " (0 = no cap)");
    }
    return o;
}

PrefillAttention prefill_attention(const tdm_prefill_options& o, const ModelConfig& config) {
    PrefillAttention a;
    SparseAttention& s = a.settings;
    s.method = static_cast<tdm_attention>(o.attention);
    s.block_size = int32_t(o.block_size);
    s.xattn_stride = int32_t(o.xattn_stride);
    s.flex_gamma = o.flex_gamma;
    s.flex_tau = o.flex_tau;
    s.flex_min_budget = o.flex_min_budget;
    s.flex_max_budget = o.flex_max_budget;
    s.compat = o.sparse_compat;
    s.xattn_fp8 = o.xattn_fp8 != 0;
    if (s.method != TDM_ATTENTION_XATTENTION) return a;
    const int64_t layers = config.num_hidden_layers, heads = config.num_attention_heads;
    a.xattn_thresholds.assign(size_t(layers * heads), o.xattn_threshold);
    if (o.xattn_thresholds != nullptr) {
        for (int64_t i = 0; i < layers * heads; ++i) {
            check_threshold(o.xattn_thresholds[i],
                            "xattn_thresholds[" + std::to_string(i) + "] (layer " +
                                std::to_string(i / heads) + ", head " +
                                std::to_string(i % heads) + ")");
            a.xattn_thresholds[i] = o.xattn_thresholds[i];
        }
    }
    return a;
}

std::function<bool()> abort_check(const tdm_prefill_options& o) {
    if (o.abort == nullptr) return {};
    return [fn = o.abort, user = o.abort_user_data] { return fn(user) != 0; };
}

}  // namespace tdm::capi
