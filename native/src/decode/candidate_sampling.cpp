#include "decode/candidate_sampling.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace tdm {

int summary_candidates_for(const Sampler& sampler, bool whole_row_draw) {
    const int32_t k = sampler.options().top_k;
    if (whole_row_draw && k == 0 && sampler.options().top_p >= 1.0f)
        return sampler.options().stats_top_k;
    // A top-k cut that fits needs exactly k; otherwise the full list gives the longest prefix.
    return (k > 0 && k < TDM_MAX_TOP_K) ? std::max<int32_t>(k, sampler.options().stats_top_k)
                                        : TDM_MAX_TOP_K;
}

std::optional<SummaryWarp> warp_summary(const tdm_sampler_options& o, const LogitSummary& s) {
    SummaryWarp r;
    // The ranked list, cut to real candidates (a short row may pad it with -inf entries).
    const int64_t avail = std::min<int64_t>(s.count, s.candidates);
    const int64_t k_size = (o.top_k > 0 && o.top_k < s.candidates) ? o.top_k : s.candidates;
    const int64_t known = std::min(avail, k_size);  // ranked entries of K in the summary
    r.known = known;

    // Step 4, exactly as Sampler::weigh: one subtraction, one division, one exp.
    r.max_logit = s.logits[0];
    r.temperature = o.temperature;
    for (int64_t j = 0; j < known; ++j)
        r.w[size_t(j)] = std::exp((double(s.logits[j]) - r.max_logit) / r.temperature);

    // Sum of w over the first n ranked entries, added in ascending id order (steps 5 and 7).
    auto sum_in_id_order = [&](int64_t n) {
        std::array<int, TDM_MAX_TOP_K> order{};
        std::iota(order.begin(), order.begin() + n, 0);
        std::sort(order.begin(), order.begin() + n,
                  [&](int a, int b) { return s.ids[a] < s.ids[b]; });
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j) sum += r.w[size_t(order[size_t(j)])];
        return sum;
    };

    // Step 5: S over K.
    double total;
    if (k_size <= avail) total = sum_in_id_order(k_size);
    else if (k_size == s.candidates) total = s.tempered;  // K = C, summed on the device
    else return std::nullopt;                              // a top-k cut beyond the list

    // Step 6: the nucleus, the shortest ranked prefix whose mass reaches P * S.
    int64_t kept = k_size;
    if (o.top_p < 1.0f) {
        const double threshold = double(o.top_p) * total;
        double cumulative = 0.0;
        int64_t j = 0;
        for (; j < known; ++j) {
            cumulative += r.w[size_t(j)];
            if (cumulative >= threshold) break;
        }
        if (j < known) kept = j + 1;
        else if (known < k_size) return std::nullopt;  // the nucleus runs past the list
    }

    // Step 7: Z over N (= S when N = K).
    r.z_total = kept == k_size ? total : sum_in_id_order(kept);
    r.kept = kept;
    r.truncated = kept <= known;
    return r;
}

std::optional<int32_t> sample_from_summary(Sampler& sampler, const LogitSummary& s,
                                           const RowDrawFn& whole_row) {
    const tdm_sampler_options& o = sampler.options();
    if (o.temperature == 0.0f) return s.ids[0];  // step 1: the lowest id among the largest

    const std::optional<SummaryWarp> warp = warp_summary(o, s);
    if (!warp) return std::nullopt;
    const SummaryWarp& r = *warp;

    // Step 8: one draw, the first ranked token whose cumulative weight exceeds u * Z.
    const Rng saved = sampler.rng();
    const double u = sampler.rng().uniform();
    const double target = u * r.z_total;
    double cumulative = 0.0;
    const int64_t walk = std::min(r.kept, r.known);
    for (int64_t j = 0; j < walk; ++j) {
        cumulative += r.w[size_t(j)];
        if (cumulative > target) return s.ids[j];
    }
    if (r.truncated) return s.ids[r.kept - 1];  // rounding left none: the last of N
    // The walk needs more than the list holds: the rest of it over the row, with this u.
    if (whole_row) {
        if (const std::optional<int32_t> token = whole_row(r, u)) return token;
    }
    sampler.rng() = saved;
    return std::nullopt;
}

}  // namespace tdm
