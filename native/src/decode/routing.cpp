#include "decode/routing.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace tdm {

RollingWindow::RollingWindow(uint32_t w) : ring_(w == 0 ? 1 : w, 0.0f) {}

void RollingWindow::push(float v) {
    ring_[next_] = v;
    next_ = (next_ + 1) % width();
    if (count_ < width()) ++count_;
}

float RollingWindow::mean() const {
    if (count_ == 0) return 0.0f;
    // Summed afresh each time (w is small): a running sum would drift over a long generation.
    double sum = 0.0;
    for (uint32_t i = 0; i < count_; ++i) sum += ring_[(next_ + width() - 1 - i) % width()];
    return static_cast<float>(sum / count_);
}

float RollingWindow::mean_with(float v) const {
    // v plus the newest (w - 1) held values.
    const uint32_t kept = count_ < width() ? count_ : width() - 1;
    double sum = v;
    for (uint32_t i = 0; i < kept; ++i) sum += ring_[(next_ + width() - 1 - i) % width()];
    return static_cast<float>(sum / (kept + 1));
}

float route_signal_value(int32_t signal, const tdm_token_stats& stats) {
    switch (signal) {
        case TDM_SIGNAL_ENTROPY_NORMALIZED: return stats.entropy_normalized;
        case TDM_SIGNAL_MAX_PROB: return stats.max_prob;
        case TDM_SIGNAL_EU: return stats.eu;
        case TDM_SIGNAL_ENTROPY_BITS: return stats.entropy_bits;
        default: break;
    }
    fail(TDM_ERR_INVALID_ARGUMENT, "unknown routing signal " + std::to_string(signal));
}

bool route_uncertain(int32_t signal, float value, float threshold) {
    return signal == TDM_SIGNAL_MAX_PROB ? value < threshold : value > threshold;
}

tdm_route_policy default_route_policy(int32_t mode) {
    tdm_route_policy p{};
    p.struct_size = sizeof(tdm_route_policy);
    const bool ead = mode == TDM_MODE_EAD;
    p.signal = ead ? TDM_SIGNAL_ENTROPY_BITS : TDM_SIGNAL_ENTROPY_NORMALIZED;
    p.threshold = ead ? 1.5f : 0.3f;
    p.window = 5;
    p.min_large_tokens = 1;
    p.regenerate_on_switch = 0;
    p.handback_after = 1;
    p.max_large_span = 0;
    return p;
}

void validate_route_policy(const tdm_route_policy& p) {
    TDM_REQUIRE(p.signal >= TDM_SIGNAL_ENTROPY_NORMALIZED && p.signal <= TDM_SIGNAL_ENTROPY_BITS,
                TDM_ERR_INVALID_ARGUMENT,
                "tdm_route_policy.signal must be a tdm_route_signal (0..3), got " +
                    std::to_string(p.signal));
    TDM_REQUIRE(!std::isnan(p.threshold), TDM_ERR_INVALID_ARGUMENT,
                "tdm_route_policy.threshold is NaN");
    TDM_REQUIRE(p.window >= 1 && p.window <= kMaxRouteWindow, TDM_ERR_INVALID_ARGUMENT,
                "tdm_route_policy.window must be in [1, " + std::to_string(kMaxRouteWindow) +
                    "], got " + std::to_string(p.window));
    TDM_REQUIRE(p.handback_after >= 1, TDM_ERR_INVALID_ARGUMENT,
                "tdm_route_policy.handback_after must be >= 1, got 0");
    TDM_REQUIRE(p.regenerate_on_switch <= 1, TDM_ERR_INVALID_ARGUMENT,
                "tdm_route_policy.regenerate_on_switch is a flag (0 or 1), got " +
                    std::to_string(p.regenerate_on_switch));
}

Router::Router(int32_t mode, const tdm_route_policy& policy, tdm_route_fn callback,
               void* user_data)
    : mode_(mode), policy_(policy), callback_(callback), user_data_(user_data),
      window_(policy.window) {
    TDM_REQUIRE(mode == TDM_MODE_RSTITCH || mode == TDM_MODE_EAD, TDM_ERR_INTERNAL,
                "Router is for R-Stitch and EAD only");
    validate_route_policy(policy_);
}

tdm_route_decision Router::decide(tdm_route_info& info, bool may_discard) {
    info.window_mean_bits = window_.mean_with(info.stats.entropy_bits);
    if (callback_ == nullptr)
        return mode_ == TDM_MODE_EAD ? ead_rule(info, may_discard) : stitch_rule(info, may_discard);

    const int32_t answer = callback_(&info, user_data_);
    TDM_REQUIRE(answer >= TDM_ROUTE_KEEP && answer <= TDM_ROUTE_DISCARD_AND_SWITCH,
                TDM_ERR_CALLBACK,
                "the routing callback returned " + std::to_string(answer) +
                    " at position " + std::to_string(info.position) +
                    " (not a tdm_route_decision: the policy reported a failure)");
    TDM_REQUIRE(may_discard || answer != TDM_ROUTE_DISCARD_AND_SWITCH, TDM_ERR_CALLBACK,
                "the routing callback discarded the replacement token at position " +
                    std::to_string(info.position) +
                    "; a position may discard only one proposal (the first model's)");
    return static_cast<tdm_route_decision>(answer);
}

tdm_route_decision Router::stitch_rule(const tdm_route_info& info, bool may_discard) {
    const bool uncertain = route_uncertain(
        policy_.signal, route_signal_value(policy_.signal, info.stats), policy_.threshold);
    if (info.active == TDM_PAIR_SMALL) {
        if (!uncertain) return TDM_ROUTE_KEEP;
        return may_discard ? TDM_ROUTE_DISCARD_AND_SWITCH : TDM_ROUTE_KEEP_AND_SWITCH;
    }
    // The large model's token is always kept; count its confident streak for the hand-back.
    confident_run_ = uncertain ? 0 : confident_run_ + 1;
    const uint64_t span = uint64_t(info.tokens_since_switch) + 1;  // this token included
    const bool span_done = policy_.max_large_span > 0 && span >= policy_.max_large_span;
    return confident_run_ >= policy_.handback_after || span_done ? TDM_ROUTE_KEEP_AND_SWITCH
                                                                 : TDM_ROUTE_KEEP;
}

tdm_route_decision Router::ead_rule(const tdm_route_info& info, bool may_discard) const {
    const bool high = info.window_mean_bits > policy_.threshold;
    if (info.active == TDM_PAIR_SMALL) {
        if (!high) return TDM_ROUTE_KEEP;
        return policy_.regenerate_on_switch && may_discard ? TDM_ROUTE_DISCARD_AND_SWITCH
                                                           : TDM_ROUTE_KEEP_AND_SWITCH;
    }
    const uint64_t written = uint64_t(info.tokens_since_switch) + 1;  // this token included
    return !high && written >= policy_.min_large_tokens ? TDM_ROUTE_KEEP_AND_SWITCH
                                                        : TDM_ROUTE_KEEP;
}

}  // namespace tdm
