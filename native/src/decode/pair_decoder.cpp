#include "decode/pair_decoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "core/error.h"

namespace tdm {

namespace {

using Clock = std::chrono::steady_clock;

tdm_pair_model other(tdm_pair_model m) {
    return m == TDM_PAIR_SMALL ? TDM_PAIR_LARGE : TDM_PAIR_SMALL;
}

tdm_sampler_options sampler_options_of(const tdm_pair_options& o) {
    tdm_sampler_options s = default_sampler_options();
    s.temperature = o.temperature;
    s.top_k = o.top_k;
    s.top_p = o.top_p;
    s.seed = o.seed;
    s.stats_top_k = o.stats_top_k;
    return s;
}

void validate_pair_options(const tdm_pair_options& o) {
    TDM_REQUIRE(o.mode >= TDM_MODE_LARGE && o.mode <= TDM_MODE_EAD, TDM_ERR_INVALID_ARGUMENT,
                "tdm_pair_options.mode must be a tdm_pair_mode (0..4), got " +
                    std::to_string(o.mode));
    validate_sampler_options(sampler_options_of(o));
    TDM_REQUIRE(o.draft_length >= 1 && o.draft_length <= kMaxDraftLength,
                TDM_ERR_INVALID_ARGUMENT,
                "tdm_pair_options.draft_length must be in [1, " + std::to_string(kMaxDraftLength) +
                    "], got " + std::to_string(o.draft_length));
    TDM_REQUIRE(std::isfinite(o.draft_confidence) && o.draft_confidence >= 0.0f &&
                    o.draft_confidence <= 1.0f,
                TDM_ERR_INVALID_ARGUMENT,
                "tdm_pair_options.draft_confidence must be in [0, 1] (0 = off), got " +
                    std::to_string(o.draft_confidence));
}

}  // namespace

tdm_pair_options default_pair_options() {
    tdm_pair_options o{};
    o.struct_size = sizeof(tdm_pair_options);
    o.mode = TDM_MODE_RSTITCH;
    o.temperature = 0.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.seed = 0;
    o.stats_top_k = 2;
    o.max_new_tokens = 0;
    o.stop_at_eos = 1;
    o.draft_length = 4;
    o.adaptive_draft = 0;
    o.draft_confidence = 0.0f;
    return o;
}

struct PairDecoder::Snapshot {
    Rng rng{0};
    std::optional<Router> router;
    tdm_pair_model active = TDM_PAIR_SMALL;
    uint32_t since_switch = 0;
    uint32_t gamma = 0;
    tdm_pair_stats stats{};
    ForwardCounters counters[2];
    int64_t committed = 0;
    int64_t session_length[2] = {0, 0};
    bool finished = false;
};

PairDecoder::PairDecoder(std::shared_ptr<const Model> small, std::shared_ptr<const Model> large,
                         const SessionConfig& config)
    : pair_(std::move(small), std::move(large), config) {}

void PairDecoder::start(const int32_t* prompt, int64_t n, const tdm_pair_options& options,
                        const tdm_route_policy& policy) {
    started_ = false;
    validate_pair_options(options);
    std::optional<Router> router;
    if (options.mode == TDM_MODE_RSTITCH || options.mode == TDM_MODE_EAD)
        router.emplace(options.mode, policy, options.route, options.route_user_data);
    auto sampler = std::make_unique<Sampler>(sampler_options_of(options));
    pair_.reset(prompt, n);

    options_ = options;
    options_.policy = nullptr;  // the caller's pointer is not kept: the router holds a copy
    sampler_ = std::move(sampler);
    router_ = std::move(router);
    abort_ = options.abort == nullptr
                 ? std::function<bool()>{}
                 : [fn = options.abort, user = options.abort_user_data] { return fn(user) != 0; };
    active_ = TDM_PAIR_SMALL;
    since_switch_ = 0;
    gamma_ = options.draft_length;
    stats_ = tdm_pair_stats{};
    stats_.struct_size = sizeof(tdm_pair_stats);
    finished_ = pair_.committed_length() >= pair_.capacity();

    const auto t0 = Clock::now();
    // The prompt goes into the model(s) that run first; the other catches up when it is needed.
    // (advance: the logits stay where they are until a step asks for them.)
    switch (options.mode) {
        case TDM_MODE_LARGE: pair_.advance(TDM_PAIR_LARGE, {}, abort_); break;
        case TDM_MODE_SPECULATIVE:
            pair_.advance(TDM_PAIR_SMALL, {}, abort_);
            pair_.advance(TDM_PAIR_LARGE, {}, abort_);
            break;
        default: pair_.advance(TDM_PAIR_SMALL, {}, abort_); break;
    }
    stats_.seconds_total = std::chrono::duration<double>(Clock::now() - t0).count();
    started_ = true;
}

uint32_t PairDecoder::max_adaptive_draft() const {
    return std::min(kMaxDraftLength, 4 * options_.draft_length);
}

uint64_t PairDecoder::max_records() const {
    TDM_REQUIRE(started_, TDM_ERR_INVALID_STATE, "the pair has not been started (tdm_pair_start)");
    switch (options_.mode) {
        case TDM_MODE_SPECULATIVE:
            // Every draft (accepted or rejected) plus the target's own token.
            return uint64_t(options_.adaptive_draft ? max_adaptive_draft() : options_.draft_length) +
                   1;
        case TDM_MODE_RSTITCH:
        case TDM_MODE_EAD: return 2;  // a discarded proposal and its replacement
        default: return 1;
    }
}

tdm_pair_stats PairDecoder::stats() const {
    tdm_pair_stats s = stats_;
    s.struct_size = sizeof(tdm_pair_stats);
    const ForwardCounters& cs = pair_.counters(TDM_PAIR_SMALL);
    const ForwardCounters& cl = pair_.counters(TDM_PAIR_LARGE);
    s.forwards_small = cs.forwards;
    s.forwards_large = cl.forwards;
    s.seconds_small = cs.seconds;
    s.seconds_large = cl.seconds;
    s.mean_accepted = s.verifications > 0 ? double(s.accepted) / double(s.verifications) : 0.0;
    return s;
}

PairDecoder::Snapshot PairDecoder::snapshot() const {
    Snapshot s;
    s.rng = sampler_->rng();
    s.router = router_;
    s.active = active_;
    s.since_switch = since_switch_;
    s.gamma = gamma_;
    s.stats = stats_;
    s.counters[0] = pair_.counters(TDM_PAIR_SMALL);
    s.counters[1] = pair_.counters(TDM_PAIR_LARGE);
    s.committed = pair_.committed_length();
    s.session_length[0] = pair_.session(TDM_PAIR_SMALL).length();
    s.session_length[1] = pair_.session(TDM_PAIR_LARGE).length();
    s.finished = finished_;
    return s;
}

void PairDecoder::restore(const Snapshot& s) {
    sampler_->rng() = s.rng;
    router_ = s.router;
    active_ = s.active;
    since_switch_ = s.since_switch;
    gamma_ = s.gamma;
    stats_ = s.stats;
    pair_.counters(TDM_PAIR_SMALL) = s.counters[0];
    pair_.counters(TDM_PAIR_LARGE) = s.counters[1];
    pair_.uncommit_to(s.committed);
    pair_.truncate_to_at_most(TDM_PAIR_SMALL, s.session_length[0]);
    pair_.truncate_to_at_most(TDM_PAIR_LARGE, s.session_length[1]);
    pair_.settle();
    finished_ = s.finished;
}

bool PairDecoder::step(std::vector<tdm_token_record>& out) {
    out.clear();
    TDM_REQUIRE(started_, TDM_ERR_INVALID_STATE, "the pair has not been started (tdm_pair_start)");
    if (finished_) return true;
    const Snapshot before = snapshot();
    const auto t0 = Clock::now();
    try {
        switch (options_.mode) {
            case TDM_MODE_LARGE: single_step(TDM_PAIR_LARGE, out); break;
            case TDM_MODE_SMALL: single_step(TDM_PAIR_SMALL, out); break;
            case TDM_MODE_SPECULATIVE: speculative_step(out); break;
            default: routed_step(out); break;
        }
        pair_.settle();
    } catch (...) {
        out.clear();
        restore(before);
        throw;
    }
    stats_.seconds_total += std::chrono::duration<double>(Clock::now() - t0).count();
    return finished_;
}

void PairDecoder::check_abort() const {
    if (abort_ && abort_()) fail(TDM_ERR_CANCELLED, "cancelled by the abort callback");
}

// The model's next token and its statistics through Session::sample: on a GPU the row is
// summarised where it lives and only the token and the stats come back (the whole row only when
// the summary cannot decide); on the CPU it is the sampler on the host row, as before.
int32_t PairDecoder::propose(tdm_pair_model m, tdm_token_stats& stats) {
    check_abort();
    pair_.advance(m, {}, abort_);
    return pair_.session(m).sample(*sampler_, &stats);
}

bool PairDecoder::commit(int32_t token, tdm_pair_model m) {
    pair_.commit(token);
    ++(m == TDM_PAIR_SMALL ? stats_.tokens_small : stats_.tokens_large);
    const int64_t generated = pair_.committed_length() - pair_.prompt_length();
    if ((options_.stop_at_eos && pair_.is_eos(token)) ||
        (options_.max_new_tokens > 0 && generated >= int64_t(options_.max_new_tokens)) ||
        pair_.committed_length() >= pair_.capacity())
        finished_ = true;
    return finished_;
}

tdm_token_record PairDecoder::record(int32_t token, tdm_pair_model m, tdm_token_outcome outcome,
                                     int64_t position, const tdm_token_stats& s) const {
    tdm_token_record r{};
    r.token = token;
    r.model = m;
    r.outcome = outcome;
    r.position = static_cast<uint64_t>(position);
    r.entropy = s.entropy;
    r.entropy_normalized = s.entropy_normalized;
    r.max_prob = s.max_prob;
    r.au = s.au;
    r.eu = s.eu;
    return r;
}

void PairDecoder::single_step(tdm_pair_model m, std::vector<tdm_token_record>& out) {
    const int64_t position = pair_.committed_length();
    tdm_token_stats stats{};
    const int32_t token = propose(m, stats);
    out.push_back(record(token, m, TDM_OUTCOME_WRITTEN, position, stats));
    commit(token, m);
}

void PairDecoder::switch_model() {
    active_ = other(active_);
    since_switch_ = 0;
    ++stats_.switches;
    router_->switched();
}

void PairDecoder::routed_step(std::vector<tdm_token_record>& out) {
    const int64_t position = pair_.committed_length();
    tdm_route_info info{};
    info.struct_size = sizeof(tdm_route_info);
    info.position = static_cast<uint64_t>(position);
    // A proposal of the active model and the decision on it (the router fills the window mean).
    auto propose_and_decide = [&](bool may_discard) {
        info.active = active_;
        info.tokens_since_switch = since_switch_;
        info.token = propose(active_, info.stats);
        return router_->decide(info, may_discard);
    };
    tdm_route_decision decision = propose_and_decide(/*may_discard=*/true);
    if (decision == TDM_ROUTE_DISCARD_AND_SWITCH) {
        out.push_back(record(info.token, active_, TDM_OUTCOME_DISCARDED, position, info.stats));
        ++stats_.discarded;
        switch_model();
        decision = propose_and_decide(/*may_discard=*/false);
    }
    out.push_back(record(info.token, active_, TDM_OUTCOME_WRITTEN, position, info.stats));
    router_->committed(info.stats.entropy_bits);
    commit(info.token, active_);
    ++since_switch_;
    if (decision == TDM_ROUTE_KEEP_AND_SWITCH) switch_model();
}

}  // namespace tdm
