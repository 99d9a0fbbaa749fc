// The sampler's procedure (decode/sampler.h) run on a summary of the logits (LogitSummary: the
// ranked top candidates and the tempered mass of the whole row) instead of the row itself, so a
// GPU session brings back a few hundred bytes per token instead of the vocabulary.
//
// Steps 2-8 only ever look at a rank-order prefix of the candidates plus the total S; when the
// prefix they need is inside the summary's ranked list the result is the token Sampler::sample
// returns: the same weights, sums (in ascending id order) and draw. The one difference: without a
// top-k cut S is the GPU's sum over the whole row, added in another order, so a token can differ
// only where u * Z lies within rounding (about 1e-16 relative) of a bucket edge.
// When the needed prefix runs past the list (flat distributions, a top_k above the list), a
// pure-temperature draw continues over the whole row where it lives when the caller can (a GPU:
// RowDraw, whose fixed-point walk differs from the host's only within ~1e-13 relative of a bucket
// edge); otherwise the function returns nothing, leaves the generator as it was, and the caller
// samples the host row.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "backend/backend.h"
#include "decode/sampler.h"

namespace tdm {

// Ranked candidates a summary should carry for `sampler`: enough for top_k when it fits. Where a
// pure-temperature draw can continue over the whole row on the device (`whole_row_draw`: a GPU
// session), only the statistics' K: a short list still decides peaked rows, and on flat ones a
// long list rarely decides while ranking it costs more than the device draw (H100, V = 128K:
// 64 candidates 149 us a summary, 2 candidates 26 us, a whole-row draw 52 us).
int summary_candidates_for(const Sampler& sampler, bool whole_row_draw = false);

// Steps 2-7 on a summary: the distribution the sampler draws from (T > 0), as far as the summary
// knows it. w[j] is step 4's weight of the ranked entry j (j < known: the ranked entries that are
// real candidates of K); Z is step 7's sum. Two shapes:
//   truncated: N is the first `kept` ranked entries (kept <= known), so every probability is
//              w[j] / Z for one of them and 0 elsewhere (a top-k, top-p or min-sized row);
//   full:      N = K = every candidate, more than the list holds (pure temperature sampling):
//              Z is the summary's tempered sum (added on the device: see above), and a token
//              beyond the list has probability exp((z - m) / T) / Z from its own logit.
struct SummaryWarp {
    bool truncated = false;
    int64_t kept = 0;    // |N|
    int64_t known = 0;   // ranked entries with a weight in w
    double max_logit = 0.0;
    double temperature = 0.0;
    double z_total = 0.0;
    std::array<double, TDM_MAX_TOP_K> w{};
};

// The warp of `summary` under the options (temperature > 0), or nullopt where the summary cannot
// know it (a top-k cut or a nucleus beyond the list). `summary` as for sample_from_summary.
std::optional<SummaryWarp> warp_summary(const tdm_sampler_options& options,
                                        const LogitSummary& summary);

// Step 8 over the whole row where it lives, for a full warp whose draw runs past the list: the
// token for uniform u (Session::draw_row bound to the summarised row), or nullopt where the row
// cannot be drawn from there.
using RowDrawFn = std::function<std::optional<int32_t>(const SummaryWarp& warp, double u)>;

// The token `sampler` draws (advancing its generator exactly like Sampler::sample), or nullopt
// when neither the summary nor `whole_row` can decide it (generator untouched). `summary` must be
// valid: count >= 1, a finite argmax, no invalid logit.
std::optional<int32_t> sample_from_summary(Sampler& sampler, const LogitSummary& summary,
                                           const RowDrawFn& whole_row = {});

}  // namespace tdm
