// A host twin of Backend::summarize_logits (uncertainty/cuda_logit_summary.cu), for testing the
// summary-based decoding paths without a GPU. It ranks exactly as the device does (logit
// descending, then the lower id; -0.0 ties +0.0) and sums the tempered mass over the candidates in
// ascending id order, which is the order Sampler::prepare adds S in: so where the device's sum
// would differ in its last bits (candidate_sampling.h), the twin's is bit-identical to the
// sampler's, and tests can demand identical tokens.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "backend/backend.h"

namespace tdm::testing {

inline LogitSummary host_summary(const float* z, int64_t vocab, int want, float temperature) {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    LogitSummary s{};
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return z[a] + 0.0f > z[b] + 0.0f;  // ties (and -0.0 vs +0.0) keep the lower id first
    });
    s.count = static_cast<int32_t>(std::min<int64_t>(want, vocab));
    for (int32_t r = 0; r < TDM_MAX_TOP_K; ++r) {
        s.ids[r] = r < s.count ? order[size_t(r)] : -1;
        s.logits[r] = r < s.count ? z[order[size_t(r)]] : 0.0f;
    }
    const int32_t argmax = order[0];
    const double m = z[argmax];
    for (int64_t i = 0; i < vocab; ++i) {
        if (std::isnan(z[i]) || z[i] == kInf) {
            if (s.invalid_index < 0) s.invalid_index = i;
            continue;
        }
        if (z[i] == -kInf) continue;
        ++s.candidates;
        const double d = double(z[i]) - m;
        if (temperature > 0.0f) s.tempered += std::exp(d / double(temperature));
        if (i == argmax) continue;
        s.rest += std::exp(d);
        s.tilt += std::exp(d) * d;
    }
    return s;
}

}  // namespace tdm::testing
