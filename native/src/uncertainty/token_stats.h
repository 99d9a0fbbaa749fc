// Per-token uncertainty statistics of one logit vector (ALGORITHMS.md sections 1.1-1.3 and 5.1):
// entropy, max probability, log-sum-exp, the top-K tokens and LogTokU's AU/EU over them.
// Always the model's own distribution, softmax(z) at temperature 1, whatever the sampler does.
#pragma once

#include <cstdint>

#include "tandem.h"

namespace tdm {

// Fills every field of *out (struct_size = sizeof(tdm_token_stats)) from logits[0..vocab):
//   entropy             H = -sum_j p_j ln p_j, p = softmax(z), in nats
//   entropy_bits        H / ln 2
//   entropy_normalized  H / ln V in [0, 1]; 0 when V = 1
//   max_prob            exp(z_max - lse)
//   logsumexp           lse = ln sum_j exp(z_j)
//   top_*               the top_k largest logits, descending, ties by the lower id first, with
//                       their probabilities; entries past top_k are id -1, logit 0, prob 0
//   au, eu              logtoku_au / logtoku_eu of the top_k logits (uncertainty/logtoku.h)
// Requires vocab >= 1 and 1 <= top_k <= min(TDM_MAX_TOP_K, vocab). A logit may be -inf (a token
// with probability 0, e.g. masked); NaN, +inf or all logits -inf throw
// tdm::Error(TDM_ERR_INVALID_ARGUMENT) naming the index.
//
// Accuracy: sums in double, and the argmax's own term (exactly 1 after the shift) is kept out of
// the sum, so that peaked distributions keep their relative accuracy (H = 1e-12 is still right to
// many digits); every output is the double result rounded once to float.
void compute_token_stats(const float* logits, int64_t vocab, int top_k, tdm_token_stats* out);

// The same statistics finished from a summary of the row (a GPU session computes it where the
// logits live): the k ranked top logits and ids (k >= 1, ids[0] the argmax, logits[0] > -inf),
// rest = sum over j != argmax of exp(z_j - zmax) and tilt = sum over the same j of
// exp(z_j - zmax) (z_j - zmax). compute_token_stats is this after its two passes.
void token_stats_from_parts(const int32_t* ids, const float* logits, int k, double rest,
                            double tilt, int64_t vocab, tdm_token_stats* out);

}  // namespace tdm
