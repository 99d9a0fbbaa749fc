#include "decode/summary_verify.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "core/error.h"

namespace tdm {

namespace {

// The listed tokens of a warp, in ascending id order, with float(w / Z) as
// Sampler::probabilities writes it.
void listed_in_id_order(const LogitSummary& s, const SummaryWarp& w, int64_t n,
                        std::vector<int32_t>& ids, std::vector<float>& probs) {
    std::vector<int> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return s.ids[a] < s.ids[b]; });
    ids.resize(size_t(n));
    probs.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k) {
        const int j = order[size_t(k)];
        ids[size_t(k)] = s.ids[j];
        probs[size_t(k)] = static_cast<float>(w.w[size_t(j)] / w.z_total);
    }
}

// Index of id in the ascending list, or -1.
int64_t find_id(const std::vector<int32_t>& ids, int32_t id) {
    const auto it = std::lower_bound(ids.begin(), ids.end(), id);
    return it != ids.end() && *it == id ? it - ids.begin() : -1;
}

// Inverse-CDF draw over the probabilities of a known support (ascending ids): the token
// draw_from_probabilities picks on the whole row, whose other entries are all 0.
int32_t draw_from_support(const WarpedRow& row, double u, std::vector<double>& scratch) {
    const std::vector<float>& probs = row.support_probs();
    scratch.resize(probs.size());
    double sum = 0.0;
    for (size_t k = 0; k < probs.size(); ++k) {
        scratch[k] = probs[k] > 0.0f ? double(probs[k]) : 0.0;
        sum += scratch[k];
    }
    TDM_REQUIRE(sum > 0.0, TDM_ERR_INTERNAL,
                "speculative verification: a target probability row has no mass");
    return row.support_ids()[size_t(
        draw_from_weights(scratch.data(), int64_t(scratch.size()), sum, u))];
}

}  // namespace

WarpedRow WarpedRow::from_probabilities(const float* probs, int64_t vocab) {
    WarpedRow r;
    r.kind_ = Kind::kRow;
    r.row_ = probs;
    r.vocab_ = vocab;
    return r;
}

WarpedRow WarpedRow::from_summary(const LogitSummary& s, const SummaryWarp& warp, Sampler* sampler,
                                  int64_t vocab, RowFn raw_row, LogitFn logit) {
    WarpedRow r;
    r.vocab_ = vocab;
    if (warp.truncated) {
        r.kind_ = Kind::kSupport;
        listed_in_id_order(s, warp, warp.kept, r.ids_, r.probs_);
        return r;
    }
    TDM_REQUIRE(sampler != nullptr && raw_row, TDM_ERR_INTERNAL,
                "a full-vocabulary warp needs the sampler and a way to its row");
    r.kind_ = Kind::kFull;
    listed_in_id_order(s, warp, warp.known, r.ids_, r.probs_);
    r.max_logit_ = warp.max_logit;
    r.temperature_ = warp.temperature;
    r.z_total_ = warp.z_total;
    r.sampler_ = sampler;
    r.raw_row_ = std::move(raw_row);
    r.logit_ = std::move(logit);
    return r;
}

float WarpedRow::prob(int32_t id) const {
    switch (kind_) {
        case Kind::kRow: return row_[id];
        case Kind::kSupport: {
            const int64_t k = find_id(ids_, id);
            return k < 0 ? 0.0f : probs_[size_t(k)];
        }
        case Kind::kFull: break;
    }
    const int64_t k = find_id(ids_, id);
    if (k >= 0) return probs_[size_t(k)];
    // Beyond the list: Sampler::weigh's expression on the token's own logit, over the same Z.
    const float z = !raw_.empty() || !logit_ ? raw_logit(id) : logit_(id);
    if (z == -std::numeric_limits<float>::infinity()) return 0.0f;
    const double w = std::exp((double(z) - max_logit_) / temperature_);
    return static_cast<float>(w / z_total_);
}

float WarpedRow::raw_logit(int32_t id) const {
    if (raw_.empty()) {
        raw_.resize(size_t(vocab_));
        raw_row_(raw_.data());
        fetched_ = true;
    }
    return raw_[size_t(id)];
}

const float* WarpedRow::probabilities() const {
    if (kind_ == Kind::kRow) return row_;
    if (!built_.empty()) return built_.data();
    built_.assign(size_t(vocab_), 0.0f);
    if (kind_ == Kind::kSupport) {
        for (size_t k = 0; k < ids_.size(); ++k) built_[size_t(ids_[k])] = probs_[k];
        return built_.data();
    }
    // Sampler::probabilities over the whole row: its Z is the host's sum (the same up to the
    // summation order of the device's tempered sum).
    raw_logit(0);
    sampler_->probabilities(raw_.data(), vocab_, built_.data());
    return built_.data();
}

VerifyResult verify_warped(const std::vector<int32_t>& drafts, const std::vector<WarpedRow>& q,
                           const std::function<const WarpedRow&(size_t)>& p, int64_t vocab,
                           Rng& rng, const EmitDrawFn& on_device) {
    TDM_REQUIRE(q.size() == drafts.size(), TDM_ERR_INTERNAL,
                "verify_warped: need one draft row per draft");
    std::vector<double> scratch;
    VerifyResult r;
    for (size_t i = 0; i < drafts.size(); ++i) {
        const int32_t d = drafts[i];
        TDM_REQUIRE(d >= 0 && d < vocab, TDM_ERR_INTERNAL,
                    "verify_warped: draft token " + std::to_string(d) + " out of range");
        const WarpedRow& pi = p(i);
        // As verify_sampled: r < p/q without the division.
        const double u = rng.uniform();
        if (u * double(q[i].prob(d)) < double(pi.prob(d))) {
            ++r.accepted;
            continue;
        }
        const double u_emit = rng.uniform();
        if (pi.support_known()) {
            // The residual is positive only inside p's support: the whole-row walk of
            // verify_sampled meets exactly these weights, in this order, between its zeros.
            const std::vector<int32_t>& ids = pi.support_ids();
            const std::vector<float>& pp = pi.support_probs();
            scratch.resize(ids.size());
            double sum = 0.0;
            for (size_t k = 0; k < ids.size(); ++k) {
                const double dd = double(pp[k]) - double(q[i].prob(ids[k]));
                scratch[k] = dd > 0.0 ? dd : 0.0;
                sum += scratch[k];
            }
            r.token = sum > 0.0 ? ids[size_t(draw_from_weights(scratch.data(),
                                                               int64_t(ids.size()), sum, u_emit))]
                                : draw_from_support(pi, u_emit, scratch);
            return r;
        }
        if (on_device) {
            if (const std::optional<int32_t> token = on_device(i, u_emit)) {
                r.token = *token;
                return r;
            }
        }
        const float* prow = pi.probabilities();
        const float* qrow = q[i].probabilities();
        const double sum = residual_weights(prow, qrow, vocab, scratch);
        // 0/0 guard of verify_sampled: p itself.
        r.token = sum > 0.0 ? draw_from_weights(scratch.data(), vocab, sum, u_emit)
                            : draw_from_probabilities(prow, vocab, u_emit, scratch);
        return r;
    }
    const WarpedRow& last = p(drafts.size());
    const double u = rng.uniform();
    r.bonus = true;
    if (last.support_known()) {
        r.token = draw_from_support(last, u, scratch);
        return r;
    }
    if (on_device) {
        if (const std::optional<int32_t> token = on_device(drafts.size(), u)) {
            r.token = *token;
            return r;
        }
    }
    r.token = draw_from_probabilities(last.probabilities(), vocab, u, scratch);
    return r;
}

}  // namespace tdm
