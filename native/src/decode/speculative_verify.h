// The accept/reject step of speculative decoding (ALGORITHMS.md section 2), on its own so that it
// can be tested on toy distributions without any model.
//
// A round drafts gamma tokens d_1..d_gamma from the draft model q, runs the target model p once
// over them, and then decides here which drafts to keep:
//   greedy:  accept d_i while d_i == argmax p_i; at the first mismatch emit argmax p_i.
//   sampled: accept d_i when r * q_i(d_i) < p_i(d_i) for r ~ U[0, 1) (i.e. r < min(1, p/q));
//            at the first rejection emit t ~ max(0, p_i - q_i) normalised (the residual).
//   If every draft is accepted, the target's row gamma+1 gives one more token for free (the bonus).
// p and q must be the WARPED distributions (the same temperature, top-k and top-p for both,
// Sampler::probabilities), otherwise the output is not distributed as the warped target.
#pragma once

#include <cstdint>
#include <vector>

#include "decode/rng.h"

namespace tdm {

struct VerifyResult {
    int64_t accepted = 0;  // drafts kept, a prefix d_1..d_accepted
    int32_t token = -1;    // the target's token after them: a correction, or the bonus
    bool bonus = false;    // true when every draft was accepted (token comes from row gamma+1)
};

// Greedy verification. target_argmax holds argmax p_1..p_{gamma+1} (drafts.size() + 1 entries).
// Uses no random numbers.
VerifyResult verify_greedy(const std::vector<int32_t>& drafts,
                           const std::vector<int32_t>& target_argmax);

// Sampled verification. q[i] and p[i] point at probability rows of `vocab` floats: q[0..gamma)
// for the drafts, p[0..gamma] for the target (one row more). Draws one uniform per tested draft,
// plus one for the emitted token (the residual or the bonus), all from `rng`, in that order.
// This whole-row form is the procedure as ALGORITHMS.md writes it; the decoding loop runs
// verify_warped (summary_verify.h), which must give the same tokens and is tested against it.
VerifyResult verify_sampled(const std::vector<int32_t>& drafts, const std::vector<const float*>& q,
                            const std::vector<const float*>& p, int64_t vocab, Rng& rng);

// Inverse-CDF draw from non-negative weights w[0..vocab) with total `sum` > 0, walking ids in
// ascending order: the first id whose running sum exceeds u * sum (the last positive one if
// rounding leaves none).
int32_t draw_from_weights(const double* w, int64_t vocab, double sum, double u);

// Inverse-CDF draw from a probability row (negative entries count as 0), as verify_sampled draws
// the bonus token. TDM_ERR_INTERNAL when the row has no mass. `scratch` is reused memory.
int32_t draw_from_probabilities(const float* row, int64_t vocab, double u,
                                std::vector<double>& scratch);

// The residual max(0, p - q) as weights (in double) and their sum. When the sum is 0 (p <= q
// everywhere, which a rejection makes impossible in exact arithmetic but rounding can produce),
// the caller falls back to p itself: see verify_sampled.
double residual_weights(const float* p, const float* q, int64_t vocab, std::vector<double>& out);

}  // namespace tdm
