#include "decode/speculative_verify.h"

#include <string>

#include "core/error.h"

namespace tdm {

VerifyResult verify_greedy(const std::vector<int32_t>& drafts,
                           const std::vector<int32_t>& target_argmax) {
    TDM_REQUIRE(target_argmax.size() == drafts.size() + 1, TDM_ERR_INTERNAL,
                "verify_greedy: " + std::to_string(target_argmax.size()) + " target rows for " +
                    std::to_string(drafts.size()) + " drafts (need one more)");
    VerifyResult r;
    for (size_t i = 0; i < drafts.size(); ++i) {
        if (drafts[i] != target_argmax[i]) {
            r.token = target_argmax[i];
            return r;
        }
        ++r.accepted;
    }
    r.token = target_argmax.back();
    r.bonus = true;
    return r;
}

int32_t draw_from_weights(const double* w, int64_t vocab, double sum, double u) {
    const double target = u * sum;
    double cumulative = 0.0;
    int32_t last_positive = -1;
    for (int64_t i = 0; i < vocab; ++i) {
        if (w[i] <= 0.0) continue;
        cumulative += w[i];
        last_positive = static_cast<int32_t>(i);
        if (cumulative > target) return last_positive;
    }
    return last_positive;
}

// Draws from a float probability row (the bonus token, or the 0/0 fallback of the residual).
int32_t draw_from_probabilities(const float* row, int64_t vocab, double u,
                                std::vector<double>& scratch) {
    scratch.resize(static_cast<size_t>(vocab));
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
        scratch[size_t(i)] = row[i] > 0.0f ? double(row[i]) : 0.0;
        sum += scratch[size_t(i)];
    }
    TDM_REQUIRE(sum > 0.0, TDM_ERR_INTERNAL,
                "speculative verification: a target probability row has no mass");
    return draw_from_weights(scratch.data(), vocab, sum, u);
}

double residual_weights(const float* p, const float* q, int64_t vocab, std::vector<double>& out) {
    out.resize(static_cast<size_t>(vocab));
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
        const double d = double(p[i]) - double(q[i]);
        out[size_t(i)] = d > 0.0 ? d : 0.0;
        sum += out[size_t(i)];
    }
    return sum;
}

VerifyResult verify_sampled(const std::vector<int32_t>& drafts, const std::vector<const float*>& q,
                            const std::vector<const float*>& p, int64_t vocab, Rng& rng) {
    TDM_REQUIRE(q.size() == drafts.size() && p.size() == drafts.size() + 1, TDM_ERR_INTERNAL,
                "verify_sampled: need one draft row per draft and one target row more");
    std::vector<double> scratch;
    VerifyResult r;
    for (size_t i = 0; i < drafts.size(); ++i) {
        const int32_t d = drafts[i];
        TDM_REQUIRE(d >= 0 && d < vocab, TDM_ERR_INTERNAL,
                    "verify_sampled: draft token " + std::to_string(d) + " out of range");
        // r < p/q written without the division: q(d) = 0 (a float underflow) with p(d) > 0 then
        // accepts, as p/q = inf would, and p(d) = q(d) = 0 rejects.
        const double u = rng.uniform();
        if (u * double(q[i][d]) < double(p[i][d])) {
            ++r.accepted;
            continue;
        }
        const double sum = residual_weights(p[i], q[i], vocab, scratch);
        const double u_emit = rng.uniform();
        // 0/0 guard: a rejection means p(d) < q(d), so p - q has positive mass somewhere unless
        // rounding ate it; then p itself is the best estimate of the residual's support.
        r.token = sum > 0.0 ? draw_from_weights(scratch.data(), vocab, sum, u_emit)
                            : draw_from_probabilities(p[i], vocab, u_emit, scratch);
        return r;
    }
    r.token = draw_from_probabilities(p.back(), vocab, rng.uniform(), scratch);
    r.bonus = true;
    return r;
}

}  // namespace tdm
