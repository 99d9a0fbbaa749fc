// The speculative-decoding round of PairDecoder (ALGORITHMS.md section 2): the small model drafts,
// the large model scores every draft in one batched forward, speculative_verify decides.
#include <algorithm>

#include "core/error.h"
#include "decode/pair_decoder.h"
#include "decode/speculative_verify.h"
#include "uncertainty/token_stats.h"

namespace tdm {

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
    const bool greedy = options_.temperature == 0.0f;
    const uint32_t gamma = round_draft_length();

    // Draft: the small model proposes up to gamma tokens, one forward each.
    std::vector<int32_t> drafts;
    std::vector<tdm_token_stats> draft_stats;
    drafts.reserve(gamma);
    draft_stats.reserve(gamma);
    if (!greedy) q_rows_.resize(size_t(gamma) * size_t(V));
    for (uint32_t i = 0; i < gamma; ++i) {
        check_abort();
        const float* z = pair_.next_logits(TDM_PAIR_SMALL, drafts, abort_);
        tdm_token_stats stats{};
        const int32_t d = sampler_->sample(z, V, &stats);
        if (!greedy) sampler_->probabilities(z, V, q_rows_.data() + size_t(i) * size_t(V));
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
    check_abort();
    const std::vector<const float*> rows = pair_.score_after(TDM_PAIR_LARGE, drafts, abort_);
    VerifyResult verdict;
    if (greedy) {
        std::vector<int32_t> best(rows.size());
        for (size_t i = 0; i < rows.size(); ++i) best[i] = argmax_token(rows[i], V);
        verdict = verify_greedy(drafts, best);
    } else {
        p_rows_.resize(rows.size() * size_t(V));
        std::vector<const float*> p(rows.size()), q(g);
        for (size_t i = 0; i < rows.size(); ++i) {
            sampler_->probabilities(rows[i], V, p_rows_.data() + i * size_t(V));
            p[i] = p_rows_.data() + i * size_t(V);
        }
        for (size_t i = 0; i < g; ++i) q[i] = q_rows_.data() + i * size_t(V);
        verdict = verify_sampled(drafts, q, p, V, sampler_->rng());
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
    compute_token_stats(rows[accepted], V,
                        static_cast<int>(std::min<int64_t>(options_.stats_top_k, V)),
                        &target_stats);
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
