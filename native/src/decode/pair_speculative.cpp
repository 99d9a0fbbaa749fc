// The speculative-decoding round of PairDecoder (ALGORITHMS.md section 2): the small model drafts,
// the large model scores every draft in one batched forward, speculative_verify decides.
#include <algorithm>
#include <optional>
#include <vector>

#include "core/error.h"
#include "decode/candidate_sampling.h"
#include "decode/pair_decoder.h"
#include "decode/speculative_verify.h"
#include "decode/summary_verify.h"
#include "uncertainty/token_stats.h"

namespace tdm {

namespace {

// What one target row of a verification has given so far (looked at lazily, at most once).
struct TargetRow {
    bool examined = false;
    bool summarized = false;      // summary is valid
    LogitSummary summary;
    const float* logits = nullptr;  // else (or later) its logits on the host
    std::vector<float> copy;        // the host copy logits points into, when one was made
    bool warped = false;
    WarpedRow p;                    // sampled: the warped distribution
};

}  // namespace

uint32_t PairDecoder::round_draft_length() const {
    // Every committed token must fit the smaller context, and a round commits up to gamma + 1.
    int64_t g = std::min<int64_t>(gamma_, pair_.capacity() - pair_.committed_length() - 1);
    if (options_.max_new_tokens > 0) {
        const int64_t generated = pair_.committed_length() - pair_.prompt_length();
        g = std::min<int64_t>(g, int64_t(options_.max_new_tokens) - generated - 1);
    }
    return static_cast<uint32_t>(std::max<int64_t>(g, 0));
}

void PairDecoder::speculative_step(std::vector<tdm_token_record>& out) {
    const int64_t n = pair_.committed_length();
    const int64_t V = pair_.vocab();
    const tdm_sampler_options& so = sampler_->options();
    const bool greedy = so.temperature == 0.0f;
    const uint32_t gamma = round_draft_length();
    const int stats_k = static_cast<int>(std::min<int64_t>(options_.stats_top_k, V));
    // Ranked candidates per summary: the statistics' K, and for sampling what the warp needs.
    // (A pure-temperature draw past a short list continues over the row on the device.)
    const int want =
        greedy ? stats_k : std::max(stats_k, summary_candidates_for(*sampler_, true));

    // Draft: the small model proposes up to gamma tokens, one forward each. Where the session
    // summarises its row (a GPU), the token, its statistics and q_i come from the summary, as
    // Session::sample does; the whole row comes to the host only where the summary cannot decide.
    Session& small = pair_.session(TDM_PAIR_SMALL);
    std::vector<int32_t> drafts;
    std::vector<tdm_token_stats> draft_stats;
    std::vector<WarpedRow> q;
    // Per draft: q_i's warp where its row is stashed on the device (the emitted token of a
    // rejection there is drawn on the device), else nullopt.
    std::vector<std::optional<WarpedLogits>> q_device;
    drafts.reserve(gamma);
    draft_stats.reserve(gamma);
    // Host rows of q (or raw logits kept for a full-vocabulary q), one slot per draft; sized
    // before any WarpedRow points into it.
    if (!greedy) q_rows_.resize(size_t(gamma) * size_t(V));
    for (uint32_t i = 0; i < gamma; ++i) {
        check_abort();
        pair_.advance(TDM_PAIR_SMALL, drafts, abort_);
        const int64_t last = small.logit_rows() - 1;
        tdm_token_stats stats{};
        LogitSummary summary;
        const bool summarized = small.summarize_row(last, want, so.temperature, &summary);
        std::optional<int32_t> token;
        if (summarized) {
            token_stats_from_parts(summary.ids, summary.logits, stats_k, summary.rest, summary.tilt,
                                   V, &stats);
            // Past the summary's list, a pure-temperature draw continues over the row on the
            // device: no row copy and no host sampler.
            token = sample_from_summary(*sampler_, summary, [&](const SummaryWarp& w, double u) {
                return small.draw_row(last, so.temperature,
                                      WarpedLogits{nullptr, w.max_logit, w.z_total}, u);
            });
        }
        const float* row = nullptr;  // the host row, where it had to come
        if (!token) {
            row = small.logits(last);
            token = sampler_->sample(row, V, summarized ? nullptr : &stats);
        }
        if (!greedy) {
            q_device.emplace_back();
            float* slot = q_rows_.data() + size_t(i) * size_t(V);
            std::optional<SummaryWarp> warp;
            if (summarized) warp = warp_summary(so, summary);
            if (warp && warp->truncated) {
                q.push_back(WarpedRow::from_summary(summary, *warp, sampler_.get(), V, {}));
            } else if (warp) {
                // Pure temperature: q_i(d_i) is known, the whole row only matters if the
                // verification rejects here, after the next drafts have replaced the logits.
                // Keep it where that is cheapest: a device-to-device copy (fetched only on that
                // rejection), else the host.
                // A draft drawn from the host row may lie beyond the summary's list: its own
                // logit is kept here, so the acceptance test reads no row.
                const int32_t d = *token;
                const float zd = row != nullptr ? row[d] : 0.0f;
                WarpedRow::RowFn fetch;
                WarpedRow::LogitFn logit;
                if (small.stash_row(last, int64_t(i))) {
                    q_device.back() = WarpedLogits{nullptr, warp->max_logit, warp->z_total};
                    fetch = [&small, i](float* dst) { small.copy_stashed_row(int64_t(i), dst); };
                    logit = [&small, i, d, zd, own = row != nullptr](int32_t id) {
                        return own && id == d ? zd : small.stashed_logit(int64_t(i), id);
                    };
                } else {
                    if (row != nullptr) std::copy_n(row, V, slot);
                    else small.copy_row(last, slot);
                    fetch = [slot, V](float* dst) { std::copy_n(slot, V, dst); };
                    logit = [slot](int32_t id) { return slot[id]; };
                }
                q.push_back(
                    WarpedRow::from_summary(summary, *warp, sampler_.get(), V, fetch, logit));
            } else {
                // No summary, or one that cannot know the warp: the full-row path (the CPU).
                if (row == nullptr) row = small.logits(last);
                sampler_->probabilities(row, V, slot);
                q.push_back(WarpedRow::from_probabilities(slot, V));
            }
        }
        const int32_t d = *token;
        drafts.push_back(d);
        draft_stats.push_back(stats);
        ++stats_.drafted;
        // Drafting past an end-of-sequence token, or past a guess the small model itself doubts,
        // mostly buys tokens the large model rejects.
        if (options_.stop_at_eos && pair_.is_eos(d)) break;
        if (options_.draft_confidence > 0.0f && stats.max_prob < options_.draft_confidence) break;
    }
    const size_t g = drafts.size();

    // Verify: one large forward over the drafts gives the target's distributions p_1..p_{g+1}.
    // Each row is looked at only when the verification reaches it: summarised on the device
    // where possible, else copied (that row alone) to the host.
    check_abort();
    const std::vector<ModelPair::ScoredRow> where = pair_.score_rows(TDM_PAIR_LARGE, drafts, abort_);
    Session& large = pair_.session(TDM_PAIR_LARGE);
    std::vector<TargetRow> targets(where.size());
    if (!greedy) p_rows_.resize(where.size() * size_t(V));
    // The summary of row i, or else its logits on the host.
    auto examine = [&](size_t i) -> TargetRow& {
        TargetRow& t = targets[i];
        if (t.examined) return t;
        t.examined = true;
        if (where[i].host == nullptr)
            t.summarized = large.summarize_row(where[i].row, want, so.temperature, &t.summary);
        if (!t.summarized) {
            if (where[i].host != nullptr) {
                t.logits = where[i].host;
            } else {
                t.copy.resize(size_t(V));
                large.copy_row(where[i].row, t.copy.data());
                t.logits = t.copy.data();
            }
        }
        return t;
    };
    auto target_best = [&](size_t i) {
        TargetRow& t = examine(i);
        return t.summarized ? t.summary.ids[0] : argmax_token(t.logits, V);
    };
    auto target_warp = [&](size_t i) -> const WarpedRow& {
        TargetRow& t = examine(i);
        if (t.warped) return t.p;
        t.warped = true;
        std::optional<SummaryWarp> warp;
        if (t.summarized) warp = warp_summary(so, t.summary);
        if (warp) {
            const int64_t r = where[i].row;
            t.p = WarpedRow::from_summary(
                t.summary, *warp, sampler_.get(), V,
                [&large, r](float* dst) { large.copy_row(r, dst); },
                [&large, r](int32_t id) { return large.logit_at(r, id); });
            return t.p;
        }
        if (t.logits == nullptr) {  // summarised, but the summary cannot know the warp
            t.copy.resize(size_t(V));
            large.copy_row(where[i].row, t.copy.data());
            t.logits = t.copy.data();
        }
        float* probs = p_rows_.data() + i * size_t(V);
        sampler_->probabilities(t.logits, V, probs);
        t.p = WarpedRow::from_probabilities(probs, V);
        return t.p;
    };
    VerifyResult verdict;
    if (greedy) {
        // verify_greedy, asking for each argmax only when the comparison reaches its row.
        for (size_t i = 0;; ++i) {
            const int32_t best = target_best(i);
            if (i == g || drafts[i] != best) {
                verdict.token = best;
                verdict.bonus = i == g;
                break;
            }
            ++verdict.accepted;
        }
    } else {
        // The emitted token of a full-vocabulary warp, drawn where both rows are (a GPU pair):
        // the target's row i from its summary's warp, q_i from the draft's stash.
        const auto on_device = [&](size_t i, double u) -> std::optional<int32_t> {
            const TargetRow& t = targets[i];
            if (!t.summarized || where[i].host != nullptr) return std::nullopt;
            const std::optional<SummaryWarp> pw = warp_summary(so, t.summary);
            if (!pw || pw->truncated) return std::nullopt;
            const WarpedLogits p{nullptr, pw->max_logit, pw->z_total};
            if (i == g)  // the bonus: p alone
                return large.draw_residual(where[i].row, p, nullptr, 0, {}, so.temperature, u);
            if (!q_device[i]) return std::nullopt;
            return large.draw_residual(where[i].row, p, &small, int64_t(i), *q_device[i],
                                       so.temperature, u);
        };
        verdict = verify_warped(drafts, q, target_warp, V, sampler_->rng(), on_device);
    }
    if (g > 0) ++stats_.verifications;

    // Commit the accepted drafts (stopping at an end of sequence), then the target's token.
    const size_t accepted = static_cast<size_t>(verdict.accepted);
    for (size_t i = 0; i < accepted; ++i) {
        out.push_back(record(drafts[i], TDM_PAIR_SMALL, TDM_OUTCOME_ACCEPTED, n + int64_t(i),
                             draft_stats[i]));
        ++stats_.accepted;
        if (commit(drafts[i], TDM_PAIR_SMALL)) return;
    }
    for (size_t i = accepted; i < g; ++i)
        out.push_back(record(drafts[i], TDM_PAIR_SMALL, TDM_OUTCOME_REJECTED, n + int64_t(i),
                             draft_stats[i]));
    tdm_token_stats target_stats{};
    const TargetRow& t = examine(accepted);
    if (t.summarized) {
        token_stats_from_parts(t.summary.ids, t.summary.logits, stats_k, t.summary.rest,
                               t.summary.tilt, V, &target_stats);
    } else {
        compute_token_stats(t.logits, V, stats_k, &target_stats);
    }
    const tdm_token_outcome outcome = g == 0            ? TDM_OUTCOME_WRITTEN
                                      : verdict.bonus ? TDM_OUTCOME_BONUS
                                                      : TDM_OUTCOME_CORRECTED;
    out.push_back(record(verdict.token, TDM_PAIR_LARGE, outcome, n + int64_t(accepted),
                         target_stats));
    commit(verdict.token, TDM_PAIR_LARGE);

    // Adaptive draft length: longer after a fully accepted draft, shorter after a rejection in
    // its first half (a late rejection says the length is about right).
    if (options_.adaptive_draft && g > 0) {
        if (verdict.bonus)
            gamma_ = std::min(gamma_ + 1, max_adaptive_draft());
        else if (2 * accepted < g)
            gamma_ = std::max(gamma_ - 1, 1u);
    }
}

}  // namespace tdm
