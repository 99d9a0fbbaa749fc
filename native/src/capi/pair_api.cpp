// Two-model decoding: pairs, their options and routing policies, steps, statistics.
#include <algorithm>
#include <cstdint>
#include <string>

#include "capi/guard.h"
#include "capi/handles.h"
#include "capi/session_options.h"
#include "decode/routing.h"

namespace {

tdm::PairDecoder& decoder_of(tdm_pair* p) {
    tdm::capi::require_not_null(p, "pair");
    return *p->decoder;
}
const tdm::PairDecoder& decoder_of(const tdm_pair* p) {
    tdm::capi::require_not_null(p, "pair");
    return *p->decoder;
}

int64_t count_arg(uint64_t n, const char* name) {
    TDM_REQUIRE(n <= uint64_t(INT64_MAX), TDM_ERR_INVALID_ARGUMENT,
                std::string(name) + " is too large (" + std::to_string(n) + ")");
    return static_cast<int64_t>(n);
}

}  // namespace

extern "C" {

TDM_API void tdm_route_policy_init(tdm_route_policy* policy, int32_t mode) {
    if (policy == nullptr) return;
    *policy = tdm::default_route_policy(mode);
}

TDM_API void tdm_pair_options_init(tdm_pair_options* options) {
    if (options == nullptr) return;
    *options = tdm::default_pair_options();
}

TDM_API tdm_status tdm_pair_create(tdm_model* small, tdm_model* large,
                                   const tdm_session_options* session_options,
                                   tdm_pair** out_pair) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_pair, "out_pair");
        *out_pair = nullptr;
        tdm::capi::require_not_null(small, "small");
        tdm::capi::require_not_null(large, "large");
        const tdm::SessionConfig config = tdm::capi::read_session_config(session_options);
        auto handle = std::make_unique<tdm_pair>();
        handle->decoder = std::make_unique<tdm::PairDecoder>(small->model, large->model, config);
        handle->views[TDM_PAIR_SMALL].session.reset(&handle->decoder->pair().session(TDM_PAIR_SMALL));
        handle->views[TDM_PAIR_LARGE].session.reset(&handle->decoder->pair().session(TDM_PAIR_LARGE));
        *out_pair = handle.release();
    });
}

TDM_API void tdm_pair_free(tdm_pair* pair) { delete pair; }

TDM_API tdm_status tdm_pair_start(tdm_pair* pair, const int32_t* prompt, uint64_t n_prompt,
                                  const tdm_pair_options* options) {
    return tdm::capi::guarded([&] {
        tdm::PairDecoder& d = decoder_of(pair);
        const tdm_pair_options o =
            tdm::capi::read_options(options, tdm::default_pair_options(), "tdm_pair_options");
        // The policy's defaults depend on the mode; the struct is copied, the pointer not kept.
        const tdm_route_policy policy = tdm::capi::read_options(
            o.policy, tdm::default_route_policy(o.mode), "tdm_route_policy");
        d.start(prompt, count_arg(n_prompt, "n_prompt"), o, policy);
    });
}

TDM_API tdm_status tdm_pair_max_records(const tdm_pair* pair, uint64_t* out_count) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_count, "out_count");
        *out_count = decoder_of(pair).max_records();
    });
}

TDM_API tdm_status tdm_pair_step(tdm_pair* pair, tdm_token_record* out, uint64_t capacity,
                                 uint64_t* out_count, uint8_t* out_finished) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_count, "out_count");
        tdm::capi::require_not_null(out_finished, "out_finished");
        *out_count = 0;
        tdm::PairDecoder& d = decoder_of(pair);
        *out_finished = d.finished() ? 1 : 0;
        const uint64_t need = d.max_records();
        TDM_REQUIRE(capacity >= need, TDM_ERR_INVALID_ARGUMENT,
                    "capacity " + std::to_string(capacity) + " is below tdm_pair_max_records (" +
                        std::to_string(need) + ")");
        tdm::capi::require_not_null(out, "out");
        const bool finished = d.step(pair->records);
        std::copy(pair->records.begin(), pair->records.end(), out);
        *out_count = pair->records.size();
        *out_finished = finished ? 1 : 0;
    });
}

TDM_API tdm_status tdm_pair_get_stats(const tdm_pair* pair, tdm_pair_stats* out) {
    return tdm::capi::guarded([&] {
        const tdm::PairDecoder& d = decoder_of(pair);
        tdm::capi::require_not_null(out, "out");
        tdm::capi::write_output(out, d.stats());
    });
}

TDM_API tdm_status tdm_pair_tokens(const tdm_pair* pair, int32_t* out, uint64_t out_len,
                                   uint64_t* out_length) {
    return tdm::capi::guarded([&] {
        const tdm::PairDecoder& d = decoder_of(pair);
        tdm::capi::require_not_null(out_length, "out_length");
        TDM_REQUIRE(out != nullptr || out_len == 0, TDM_ERR_INVALID_ARGUMENT,
                    "out is NULL but out_len is " + std::to_string(out_len));
        const auto& tokens = d.pair().committed();
        const size_t n = static_cast<size_t>(std::min<uint64_t>(out_len, tokens.size()));
        std::copy(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n), out);
        *out_length = tokens.size();
    });
}

TDM_API tdm_status tdm_pair_session(tdm_pair* pair, int32_t which, tdm_session** out_session) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_session, "out_session");
        *out_session = nullptr;
        tdm::capi::require_not_null(pair, "pair");
        TDM_REQUIRE(which == TDM_PAIR_SMALL || which == TDM_PAIR_LARGE, TDM_ERR_INVALID_ARGUMENT,
                    "which must be TDM_PAIR_SMALL (0) or TDM_PAIR_LARGE (1), got " +
                        std::to_string(which));
        *out_session = &pair->views[which];
    });
}

}  // extern "C"
