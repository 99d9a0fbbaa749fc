#include "uncertainty/token_stats.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "core/error.h"
#include "uncertainty/logtoku.h"

namespace tdm {

namespace {

struct Candidate {
    float logit;
    int32_t id;
};

// The ranking of the top-K list: larger logit first, then the lower id.
bool ranks_before(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Pass 1: rejects NaN and +inf, and keeps the k best logits in a heap whose root is the worst of
// them. Ids arrive in ascending order, so a later logit equal to the root never displaces it
// (the lower id wins the tie) and the test in the hot loop is a single compare.
int select_top_k(const float* logits, int64_t vocab, int k, std::array<Candidate, TDM_MAX_TOP_K>& top) {
    int size = 0;
    for (int64_t i = 0; i < vocab; ++i) {
        const float z = logits[i];
        if (!(z < std::numeric_limits<float>::infinity())) {
            fail(TDM_ERR_INVALID_ARGUMENT, "token stats: logit[" + std::to_string(i) + "] is " +
                                               (std::isnan(z) ? "NaN" : "+inf"));
        }
        if (size < k) {
            top[static_cast<size_t>(size++)] = {z, static_cast<int32_t>(i)};
            std::push_heap(top.begin(), top.begin() + size, ranks_before);
        } else if (z > top[0].logit) {
            std::pop_heap(top.begin(), top.begin() + size, ranks_before);
            top[static_cast<size_t>(size - 1)] = {z, static_cast<int32_t>(i)};
            std::push_heap(top.begin(), top.begin() + size, ranks_before);
        }
    }
    std::sort_heap(top.begin(), top.begin() + size, ranks_before);
    return size;
}

}  // namespace

void compute_token_stats(const float* logits, int64_t vocab, int top_k, tdm_token_stats* out) {
    TDM_REQUIRE(logits != nullptr, TDM_ERR_INVALID_ARGUMENT, "token stats: logits is NULL");
    TDM_REQUIRE(out != nullptr, TDM_ERR_INVALID_ARGUMENT, "token stats: out is NULL");
    TDM_REQUIRE(vocab >= 1 && vocab <= std::numeric_limits<int32_t>::max(),
                TDM_ERR_INVALID_ARGUMENT,
                "token stats: vocab must be in [1, 2^31), got " + std::to_string(vocab));
    TDM_REQUIRE(top_k >= 1 && top_k <= TDM_MAX_TOP_K && top_k <= vocab, TDM_ERR_INVALID_ARGUMENT,
                "token stats: top_k must be in [1, min(" + std::to_string(TDM_MAX_TOP_K) +
                    ", vocab = " + std::to_string(vocab) + ")], got " + std::to_string(top_k));

    std::array<Candidate, TDM_MAX_TOP_K> top{};
    const int k = select_top_k(logits, vocab, top_k, top);
    const float zmax = top[0].logit;
    TDM_REQUIRE(zmax != -std::numeric_limits<float>::infinity(), TDM_ERR_INVALID_ARGUMENT,
                "token stats: all " + std::to_string(vocab) + " logits are -inf");

    // Pass 2, with d_j = z_j - zmax <= 0 (exact in double for float inputs of similar scale):
    //   rest = sum_{j != argmax} exp(d_j)        so  sum_j exp(d_j) = 1 + rest
    //   t    = sum_j exp(d_j) d_j  (<= 0)
    //   lse  = zmax + log1p(rest)
    //   H    = lse - sum_j p_j z_j = log1p(rest) - t / (1 + rest)
    // Both terms of H are >= 0, so nothing cancels; log1p keeps the digits of a tiny `rest`
    // that log(1 + rest) would round away (the one-hot-like distributions routing cares about).
    // The max pass (pass 1) comes first so that no term is ever rescaled; both passes stream the
    // same few hundred kB, which stay in cache.
    const double m = zmax;
    const int64_t argmax = top[0].id;
    double rest = 0.0;
    double t = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
        const float z = logits[i];
        if (i == argmax || z == -std::numeric_limits<float>::infinity()) continue;
        const double d = static_cast<double>(z) - m;
        const double e = std::exp(d);
        rest += e;
        t += e * d;
    }
    std::array<int32_t, TDM_MAX_TOP_K> ids{};
    std::array<float, TDM_MAX_TOP_K> values{};
    for (int j = 0; j < k; ++j) {
        ids[static_cast<size_t>(j)] = top[static_cast<size_t>(j)].id;
        values[static_cast<size_t>(j)] = top[static_cast<size_t>(j)].logit;
    }
    token_stats_from_parts(ids.data(), values.data(), k, rest, t, vocab, out);
}

void token_stats_from_parts(const int32_t* ids, const float* logits, int k, double rest,
                            double t, int64_t vocab, tdm_token_stats* out) {
    TDM_REQUIRE(k >= 1 && k <= TDM_MAX_TOP_K, TDM_ERR_INVALID_ARGUMENT,
                "token stats: k must be in [1, " + std::to_string(TDM_MAX_TOP_K) + "]");
    const double m = logits[0];
    const double log_mass = std::log1p(rest);  // lse - zmax
    const double entropy = log_mass - t / (1.0 + rest);

    out->struct_size = sizeof(tdm_token_stats);
    out->top_k = static_cast<uint32_t>(k);
    out->entropy = static_cast<float>(entropy);
    out->entropy_bits = static_cast<float>(entropy / std::numbers::ln2);
    out->entropy_normalized =
        vocab > 1 ? static_cast<float>(std::min(1.0, entropy / std::log(static_cast<double>(vocab))))
                  : 0.0f;
    out->max_prob = static_cast<float>(1.0 / (1.0 + rest));
    out->logsumexp = static_cast<float>(m + log_mass);
    for (int j = 0; j < TDM_MAX_TOP_K; ++j) {
        const bool filled = j < k;
        out->top_ids[j] = filled ? ids[j] : -1;
        out->top_logits[j] = filled ? logits[j] : 0.0f;
        out->top_probs[j] =
            filled ? static_cast<float>(std::exp(static_cast<double>(logits[j]) - m - log_mass))
                   : 0.0f;
    }
    out->au = static_cast<float>(logtoku_au(out->top_logits, k));
    out->eu = static_cast<float>(logtoku_eu(out->top_logits, k));
}

}  // namespace tdm
