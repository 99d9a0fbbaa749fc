// Sampled speculative verification (speculative_verify.h) on warped distributions that a GPU
// session knows only through a logits summary (candidate_sampling.h), so that a round copies no
// vocabulary-sized row where the summary decides (issue 5).
//
// What the verification needs of the warped q_i and p_i:
//   - the acceptance test u * q_i(d_i) < p_i(d_i): two scalars;
//   - on a rejection, the residual max(0, p_i - q_i): it is positive only where p_i is, so when
//     p_i's support N is inside its summary (a top-k, top-p or short row) the residual is a walk
//     over N in ascending id order, with q_i read at those ids;
//   - the bonus token: a draw from p_{gamma+1}, again a walk over N when N is known.
// Only a warp over the whole vocabulary (pure temperature sampling) needs whole rows, and only
// for the one row a rejection or the bonus draws from; a GPU draws that token where the rows are
// (RowDraw::Order::kId), so they never come to the host.
//
// Exactness: every probability is computed by the same expressions as Sampler::probabilities
// (float(w / Z), w = exp((double(z) - m) / T)), and the walks add the same values in the same
// (ascending id) order as verify_sampled, so on identical Z the result is the token
// verify_sampled gives on the full rows, draw for draw. Z differs only for a full-vocabulary warp
// (the summary's tempered sum is added on the device in another order: candidate_sampling.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "backend/backend.h"
#include "decode/candidate_sampling.h"
#include "decode/rng.h"
#include "decode/sampler.h"
#include "decode/speculative_verify.h"

namespace tdm {

// One warped distribution of the verification, known as a host probability row or through a
// summary. Whole rows are built only on request, and at most once.
class WarpedRow {
public:
    // Writes the raw logits of the row (vocab floats) to dst.
    using RowFn = std::function<void(float* dst)>;
    // Returns one raw logit of the row.
    using LogitFn = std::function<float(int32_t id)>;

    WarpedRow() = default;

    // probs: vocab floats of Sampler::probabilities, host memory, not owned (must outlive this).
    static WarpedRow from_probabilities(const float* probs, int64_t vocab);

    // The warp of summary `s` (warp_summary under sampler's options). For a full-vocabulary warp
    // `raw_row` gives the logits when the whole probability row is needed (built with
    // sampler->probabilities, which draws no random number), and `logit` the logit of a token
    // beyond the summary's list (raw_row is used when it is empty). A truncated warp needs
    // neither.
    static WarpedRow from_summary(const LogitSummary& s, const SummaryWarp& warp, Sampler* sampler,
                                  int64_t vocab, RowFn raw_row, LogitFn logit = {});

    // The warped probability of `id` (what Sampler::probabilities writes at id).
    float prob(int32_t id) const;
    // True when the support is known without the row: support_ids()/support_probs() list it.
    bool support_known() const { return kind_ == Kind::kSupport; }
    const std::vector<int32_t>& support_ids() const { return ids_; }      // ascending
    const std::vector<float>& support_probs() const { return probs_; }   // by support_ids()
    // The whole probability row (vocab floats), built on the first call.
    const float* probabilities() const;
    // Whether the raw row has been fetched (raw_row called): what a GPU round pays a row copy for.
    bool fetched_row() const { return fetched_; }

private:
    float raw_logit(int32_t id) const;  // fetches the raw row on first use

    enum class Kind { kRow, kSupport, kFull };
    Kind kind_ = Kind::kRow;
    int64_t vocab_ = 0;
    const float* row_ = nullptr;    // kRow: the caller's row
    std::vector<int32_t> ids_;      // kSupport: N; kFull: the listed tokens (both ascending)
    std::vector<float> probs_;      // their probabilities
    double max_logit_ = 0.0, temperature_ = 1.0, z_total_ = 1.0;  // kFull
    Sampler* sampler_ = nullptr;    // kFull
    RowFn raw_row_;
    LogitFn logit_;
    mutable std::vector<float> raw_;    // kFull: the raw logits once fetched
    mutable std::vector<float> built_;  // the whole row once built
    mutable bool fetched_ = false;
};

// The emitted token drawn where the rows live (Session::draw_residual) with uniform u: for
// i < gamma the residual max(0, p_i - q_i), for i = gamma the bonus draw from p_i; nullopt where
// those rows are not there (the host rows are used then).
using EmitDrawFn = std::function<std::optional<int32_t>(size_t i, double u)>;

// verify_sampled on WarpedRows: q[0..gamma) for the drafts, p(i) the target's row i for
// i = 0..gamma, asked for only when the verification reaches it (so rows after a rejection are
// never summarised). Draws the same uniforms in the same order as verify_sampled. A row whose
// support is unknown (a full-vocabulary warp) emits through `on_device` first.
VerifyResult verify_warped(const std::vector<int32_t>& drafts, const std::vector<WarpedRow>& q,
                           const std::function<const WarpedRow&(size_t)>& p, int64_t vocab,
                           Rng& rng, const EmitDrawFn& on_device = {});

}  // namespace tdm
