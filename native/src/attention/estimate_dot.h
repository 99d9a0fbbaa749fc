// The dot product of the CPU block-sparse estimators (xattention.cpp, flexprefill.cpp): eight
// accumulators, because a plain loop would be one serial chain of adds; the fixed combination
// order keeps every estimate reproducible. cpu::estimate_dots (kernels/cpu/kernels.h) computes
// many of them at once, bit for bit this function's results, at every instruction-set level.
#pragma once

#include <cstdint>

namespace tdm::attention_estimate {

inline float dot(const float* a, const float* b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; ++u) acc[u] += a[i + u] * b[i + u];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

}  // namespace tdm::attention_estimate
