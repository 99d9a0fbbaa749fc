// The sampler's procedure (decode/sampler.h) run on a summary of the logits (LogitSummary: the
// ranked top candidates and the tempered mass of the whole row) instead of the row itself, so a
// GPU session brings back a few hundred bytes per token instead of the vocabulary.
//
// Steps 2-8 only ever look at a rank-order prefix of the candidates plus the total S; when the
// prefix they need is inside the summary's ranked list the result is the token Sampler::sample
// returns: the same weights, sums (in ascending id order) and draw. The one difference: without a
// top-k cut S is the GPU's sum over the whole row, added in another order, so a token can differ
// only where u * Z lies within rounding (about 1e-16 relative) of a bucket edge.
// When the needed prefix runs past the list (flat distributions, a top_k above the list) the
// function returns nothing and leaves the generator as it was; the caller samples the full row.
#pragma once

#include <cstdint>
#include <optional>

#include "backend/backend.h"
#include "decode/sampler.h"

namespace tdm {

// Ranked candidates a summary should carry for `sampler`: enough for top_k when it fits.
int summary_candidates_for(const Sampler& sampler);

// The token `sampler` draws (advancing its generator exactly like Sampler::sample), or nullopt
// when the summary cannot decide it (generator untouched). `summary` must be valid: count >= 1,
// a finite argmax, no invalid logit.
std::optional<int32_t> sample_from_summary(Sampler& sampler, const LogitSummary& summary);

}  // namespace tdm
