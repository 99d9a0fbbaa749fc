// Sessions: prefill, decode, truncate, logits, scoring.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "capi/guard.h"
#include "capi/handles.h"
#include "capi/prefill_options.h"
#include "capi/session_options.h"
#include "uncertainty/token_stats.h"

namespace {

tdm::Session& session_of(tdm_session* s) {
    tdm::capi::require_not_null(s, "session");
    return *s->session;
}
const tdm::Session& session_of(const tdm_session* s) {
    tdm::capi::require_not_null(s, "session");
    return *s->session;
}

using tdm::capi::abort_check;
using tdm::capi::prefill_attention;
using tdm::capi::read_prefill_options;

}  // namespace

namespace tdm::capi {

SessionConfig read_session_config(const tdm_session_options* options) {
    tdm_session_options defaults;
    tdm_session_options_init(&defaults);
    const tdm_session_options o = read_options(options, defaults, "tdm_session_options");
    TDM_REQUIRE(o.threads >= 0, TDM_ERR_INVALID_ARGUMENT,
                "threads must be >= 0 (0 = the model's default), got " + std::to_string(o.threads));
    SessionConfig config;
    config.kv_capacity = o.kv_capacity;
    config.threads = o.threads;
    return config;
}

}  // namespace tdm::capi

extern "C" {

TDM_API void tdm_session_options_init(tdm_session_options* options) {
    if (options == nullptr) return;
    *options = tdm_session_options{};
    options->struct_size = sizeof(tdm_session_options);
}

TDM_API tdm_status tdm_session_create(tdm_model* model, const tdm_session_options* options,
                                      tdm_session** out_session) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_session, "out_session");
        *out_session = nullptr;
        tdm::capi::require_not_null(model, "model");
        const tdm::SessionConfig config = tdm::capi::read_session_config(options);
        auto handle = std::make_unique<tdm_session>();
        handle->session = std::make_unique<tdm::Session>(model->model, config);
        *out_session = handle.release();
    });
}

TDM_API void tdm_session_free(tdm_session* session) { delete session; }

TDM_API void tdm_prefill_options_init(tdm_prefill_options* options) {
    if (options == nullptr) return;
    tdm::capi::default_prefill_options(options);
}

TDM_API tdm_status tdm_session_prefill(tdm_session* session, const int32_t* tokens,
                                       uint64_t n_tokens, const tdm_prefill_options* options) {
    return tdm::capi::guarded([&] {
        tdm::Session& s = session_of(session);
        const tdm_prefill_options o = read_prefill_options(options);
        const tdm::PrefillAttention attention = prefill_attention(o, s.model().config());
        s.prefill(tokens, static_cast<int64_t>(n_tokens), o.all_logits != 0, abort_check(o),
                  &attention);
    });
}

TDM_API tdm_status tdm_session_decode(tdm_session* session, int32_t token) {
    return tdm::capi::guarded([&] { session_of(session).decode(token); });
}

TDM_API tdm_status tdm_session_truncate(tdm_session* session, uint64_t n_tokens) {
    return tdm::capi::guarded([&] {
        // Session::truncate checks the length; clamping keeps a huge uint64 from turning negative.
        const uint64_t n = std::min<uint64_t>(n_tokens, uint64_t(INT64_MAX));
        session_of(session).truncate(static_cast<int64_t>(n));
    });
}

TDM_API tdm_status tdm_session_length(const tdm_session* session, uint64_t* out_length) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_length, "out_length");
        *out_length = static_cast<uint64_t>(session_of(session).length());
    });
}

TDM_API tdm_status tdm_session_capacity(const tdm_session* session, uint64_t* out_capacity) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_capacity, "out_capacity");
        *out_capacity = static_cast<uint64_t>(session_of(session).capacity());
    });
}

TDM_API tdm_status tdm_session_attention_density(const tdm_session* session, float* out,
                                                 uint64_t out_len, float* out_mean) {
    return tdm::capi::guarded([&] {
        const std::vector<float>& d = session_of(session).attention_density();
        TDM_REQUIRE(!d.empty(), TDM_ERR_INVALID_STATE,
                    "no attention density yet: run a prefill first");
        TDM_REQUIRE(out_len == 0 || out != nullptr, TDM_ERR_INVALID_ARGUMENT,
                    "out is NULL but out_len is " + std::to_string(out_len));
        TDM_REQUIRE(out_len == 0 || out_len >= d.size(), TDM_ERR_INVALID_ARGUMENT,
                    "out_len " + std::to_string(out_len) + " is smaller than layers x heads (" +
                        std::to_string(d.size()) + ")");
        if (out_len > 0) std::memcpy(out, d.data(), d.size() * sizeof(float));
        if (out_mean) {
            double sum = 0;
            for (float v : d) sum += v;
            *out_mean = float(sum / double(d.size()));
        }
    });
}

TDM_API tdm_status tdm_session_logits_shape(const tdm_session* session, uint64_t* out_rows,
                                            uint64_t* out_vocab) {
    return tdm::capi::guarded([&] {
        const tdm::Session& s = session_of(session);
        if (out_rows) *out_rows = static_cast<uint64_t>(s.logit_rows());
        if (out_vocab) *out_vocab = static_cast<uint64_t>(s.vocab());
    });
}

TDM_API tdm_status tdm_session_get_logits(const tdm_session* session, uint64_t row, float* out,
                                          uint64_t out_len) {
    return tdm::capi::guarded([&] {
        const tdm::Session& s = session_of(session);
        tdm::capi::require_not_null(out, "out");
        TDM_REQUIRE(out_len >= static_cast<uint64_t>(s.vocab()), TDM_ERR_INVALID_ARGUMENT,
                    "out_len " + std::to_string(out_len) + " is smaller than the vocabulary (" +
                        std::to_string(s.vocab()) + ")");
        const float* row_ptr = s.logits(static_cast<int64_t>(row));
        std::memcpy(out, row_ptr, static_cast<size_t>(s.vocab()) * sizeof(float));
    });
}

TDM_API tdm_status tdm_session_stats(const tdm_session* session, uint64_t row, uint32_t top_k,
                                     tdm_token_stats* out) {
    return tdm::capi::guarded([&] {
        const tdm::Session& s = session_of(session);
        tdm::capi::require_not_null(out, "out");
        tdm_token_stats stats{};
        tdm::compute_token_stats(s.logits(static_cast<int64_t>(row)), s.vocab(),
                                 static_cast<int>(top_k), &stats);
        tdm::capi::write_output(out, stats);
    });
}

TDM_API tdm_status tdm_session_score(tdm_session* session, const int32_t* tokens,
                                     uint64_t n_tokens, uint32_t top_k, tdm_score_entry* out,
                                     const tdm_prefill_options* options) {
    return tdm::capi::guarded([&] {
        tdm::Session& s = session_of(session);
        tdm::capi::require_not_null(out, "out");
        tdm_prefill_options o = read_prefill_options(options);
        const tdm::PrefillAttention attention = prefill_attention(o, s.model().config());
        const int64_t n = static_cast<int64_t>(n_tokens);
        const int64_t V = s.vocab();
        // Token 0 is predicted by the logits held before this call, if any.
        std::vector<float> before;
        if (s.logit_rows() > 0) {
            const float* last = s.logits(s.logit_rows() - 1);
            before.assign(last, last + V);
        }
        s.prefill(tokens, n, /*all_logits=*/true, abort_check(o), &attention);
        const float nan = std::numeric_limits<float>::quiet_NaN();
        tdm_token_stats stats{};
        for (int64_t i = 0; i < n; ++i) {
            const float* z = i == 0 ? (before.empty() ? nullptr : before.data()) : s.logits(i - 1);
            if (z == nullptr) {
                out[i] = tdm_score_entry{nan, nan, nan, nan};
                continue;
            }
            tdm::compute_token_stats(z, V, static_cast<int>(top_k), &stats);
            out[i].logprob = z[tokens[i]] - stats.logsumexp;
            out[i].entropy = stats.entropy;
            out[i].au = stats.au;
            out[i].eu = stats.eu;
        }
    });
}

}  // extern "C"
