// Uncertainty statistics and sampling on caller-provided logits.
#include <cmath>

#include "capi/guard.h"
#include "capi/handles.h"
#include "decode/sampler.h"
#include "uncertainty/logtoku.h"
#include "uncertainty/token_stats.h"

extern "C" {

TDM_API tdm_status tdm_stats_from_logits(const float* logits, uint64_t vocab, uint32_t top_k,
                                         tdm_token_stats* out) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(logits, "logits");
        tdm::capi::require_not_null(out, "out");
        TDM_REQUIRE(vocab > 0, TDM_ERR_INVALID_ARGUMENT, "vocab must be > 0");
        tdm_token_stats stats{};
        tdm::compute_token_stats(logits, static_cast<int64_t>(vocab), static_cast<int>(top_k),
                                 &stats);
        tdm::capi::write_output(out, stats);
    });
}

TDM_API tdm_status tdm_logtoku(const float* alpha, uint32_t k, float* out_au, float* out_eu) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(alpha, "alpha");
        TDM_REQUIRE(k >= 1 && k <= TDM_MAX_TOP_K, TDM_ERR_INVALID_ARGUMENT,
                    "k must be in [1, " + std::to_string(TDM_MAX_TOP_K) + "], got " +
                        std::to_string(k));
        if (out_au) *out_au = static_cast<float>(tdm::logtoku_au(alpha, static_cast<int>(k)));
        if (out_eu) *out_eu = static_cast<float>(tdm::logtoku_eu(alpha, static_cast<int>(k)));
    });
}

TDM_API void tdm_sampler_options_init(tdm_sampler_options* options) {
    if (options == nullptr) return;
    *options = tdm::default_sampler_options();
    options->struct_size = sizeof(tdm_sampler_options);
}

TDM_API tdm_status tdm_sampler_create(const tdm_sampler_options* options, tdm_sampler** out) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out, "out");
        *out = nullptr;
        tdm_sampler_options defaults;
        tdm_sampler_options_init(&defaults);
        const tdm_sampler_options o =
            tdm::capi::read_options(options, defaults, "tdm_sampler_options");
        auto handle = std::make_unique<tdm_sampler>();
        handle->sampler = std::make_unique<tdm::Sampler>(o);
        *out = handle.release();
    });
}

TDM_API void tdm_sampler_free(tdm_sampler* sampler) { delete sampler; }

namespace {
void sample_into(tdm_sampler* sampler, const float* logits, int64_t vocab, int32_t* out_token,
                 tdm_token_stats* out_stats) {
    tdm::capi::require_not_null(sampler, "sampler");
    tdm::capi::require_not_null(out_token, "out_token");
    tdm_token_stats stats{};
    *out_token = sampler->sampler->sample(logits, vocab, out_stats ? &stats : nullptr);
    if (out_stats) tdm::capi::write_output(out_stats, stats);
}
}  // namespace

TDM_API tdm_status tdm_sampler_sample(tdm_sampler* sampler, const float* logits, uint64_t vocab,
                                      int32_t* out_token, tdm_token_stats* out_stats) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(logits, "logits");
        TDM_REQUIRE(vocab > 0, TDM_ERR_INVALID_ARGUMENT, "vocab must be > 0");
        sample_into(sampler, logits, static_cast<int64_t>(vocab), out_token, out_stats);
    });
}

TDM_API tdm_status tdm_sampler_sample_session(tdm_sampler* sampler, const tdm_session* session,
                                              int32_t* out_token, tdm_token_stats* out_stats) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(session, "session");
        tdm::capi::require_not_null(sampler, "sampler");
        tdm::capi::require_not_null(out_token, "out_token");
        // On a GPU session only the token and the stats come back (Session::sample).
        tdm_token_stats stats{};
        *out_token = session->session->sample(*sampler->sampler, out_stats ? &stats : nullptr);
        if (out_stats) tdm::capi::write_output(out_stats, stats);
    });
}

}  // extern "C"
