// Routing between the small and the large model for R-Stitch (ALGORITHMS.md section 6) and EAD
// (section 7): the built-in rules as small state machines, and the one decision point where a
// caller's callback (tdm_route_fn) can replace them.
//
// Every proposal of the active model (its token and the temperature-1 statistics of the
// distribution it came from) gets exactly one decision:
//   KEEP                commit the token, the same model writes on;
//   KEEP_AND_SWITCH     commit the token, the other model writes the next position;
//   DISCARD_AND_SWITCH  drop the token, the other model writes THIS position (its proposal then
//                       gets a decision of its own, which may not discard again).
//
// Built-in R-Stitch: the small model's proposal is discarded when it is uncertain (signal past the
// threshold); the large model's tokens are always kept, and it hands back after `handback_after`
// consecutive confident tokens, or after `max_large_span` tokens whatever their confidence.
// Built-in EAD: the rolling mean of the entropy in bits over the last `window` committed positions
// (this proposal included; the mean of those available when fewer) decides: the small model hands
// over when the mean exceeds the threshold (discarding its token when regenerate_on_switch), the
// large model hands back when the mean is at most the threshold and it has written at least
// `min_large_tokens` tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "tandem.h"

namespace tdm {

// The mean of the last w values pushed (of all of them while fewer than w were pushed).
class RollingWindow {
public:
    explicit RollingWindow(uint32_t w);
    void push(float v);
    // The mean as it would be after push(v), without pushing.
    float mean_with(float v) const;
    // The mean of what is held; 0 when empty.
    float mean() const;
    uint32_t size() const { return count_; }
    uint32_t width() const { return static_cast<uint32_t>(ring_.size()); }

private:
    std::vector<float> ring_;  // the last w values; next_ is where the next one goes
    uint32_t next_ = 0;
    uint32_t count_ = 0;       // values held, at most w
};

// The value of `signal` in the statistics of one distribution.
float route_signal_value(int32_t signal, const tdm_token_stats& stats);

// Whether a value of `signal` counts as uncertain against `threshold`: above it, except for the
// max probability, which is uncertain below it. So for the entropies and EU a threshold of +inf
// never routes to the large model and -inf always does; for MAX_PROB it is the other way round.
bool route_uncertain(int32_t signal, float value, float threshold);

// The defaults of tdm_route_policy for a mode (R-Stitch, or EAD; anything else gets R-Stitch's).
tdm_route_policy default_route_policy(int32_t mode);

// Throws TDM_ERR_INVALID_ARGUMENT naming the field unless the policy is usable: a known signal,
// a threshold that is not NaN, 1 <= window <= kMaxRouteWindow, handback_after >= 1.
void validate_route_policy(const tdm_route_policy& policy);

constexpr uint32_t kMaxRouteWindow = 4096;

// One routing run's decisions: the built-in rule of the mode or the caller's callback, and the
// state both need (the EAD window). Copyable, so a failed step can be undone by restoring a copy.
class Router {
public:
    // mode is TDM_MODE_RSTITCH or TDM_MODE_EAD; callback may be NULL (then the built-in rule).
    Router(int32_t mode, const tdm_route_policy& policy, tdm_route_fn callback, void* user_data);

    // Decides on a proposal. Fills info.window_mean_bits (the window with this proposal's entropy)
    // before asking. may_discard is false for the replacement of a discarded proposal. A callback
    // answer that is not a tdm_route_decision, or a discard where none is allowed, throws
    // TDM_ERR_CALLBACK.
    tdm_route_decision decide(tdm_route_info& info, bool may_discard);

    // The proposal was committed: its entropy enters the window. Call once per committed token.
    void committed(float entropy_bits) { window_.push(entropy_bits); }

    // The writing model changed.
    void switched() { confident_run_ = 0; }

    const tdm_route_policy& policy() const { return policy_; }

private:
    tdm_route_decision stitch_rule(const tdm_route_info& info, bool may_discard);
    tdm_route_decision ead_rule(const tdm_route_info& info, bool may_discard) const;

    int32_t mode_;
    tdm_route_policy policy_;
    tdm_route_fn callback_;
    void* user_data_;
    RollingWindow window_;
    uint32_t confident_run_ = 0;  // R-Stitch: consecutive confident tokens of the large model
};

}  // namespace tdm
