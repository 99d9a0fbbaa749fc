// Shared pieces of the block-sparse tests: random attention inputs in the backend's layout (the
// cache past the call's last key poisoned with NaN, so reading it shows), and plain double
// references (causal softmax rows, token-level masked attention over a plan).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "attention/host_block_plan.h"
#include "backend/backend.h"

namespace tdm::test {

struct SparseProblem {
    AttentionCall call{};
    std::vector<float> q;  // [n_new, heads, D]
    std::vector<float> k;  // [kv_heads, capacity, D]
    std::vector<float> v;
};

// Keys and values for positions 0 .. pos0+n_new-1, NaN after them. `spread` scales q and k so
// the softmax is peaked (large) or flat (small).
inline SparseProblem make_problem(int64_t n_new, int64_t pos0, int32_t heads, int32_t kv_heads,
                                  int32_t D, uint32_t seed, float spread = 1.0f) {
    SparseProblem p;
    const int64_t keys = pos0 + n_new, capacity = keys + 7;
    p.call = AttentionCall{n_new, pos0, capacity, heads, kv_heads, D, 0, 1.0f / std::sqrt(float(D))};
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, spread);
    p.q.resize(size_t(n_new * heads * D));
    for (float& x : p.q) x = normal(rng);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    p.k.assign(size_t(kv_heads * capacity * D), nan);
    p.v.assign(size_t(kv_heads * capacity * D), nan);
    for (int32_t g = 0; g < kv_heads; ++g) {
        for (int64_t j = 0; j < keys; ++j) {
            for (int32_t d = 0; d < D; ++d) {
                p.k[(g * capacity + j) * D + d] = normal(rng);
                p.v[(g * capacity + j) * D + d] = normal(rng) / spread;
            }
        }
    }
    return p;
}

inline const float* key_row(const SparseProblem& p, int32_t h, int64_t j) {
    const int32_t g = h / (p.call.heads / p.call.kv_heads);
    return p.k.data() + (g * p.call.capacity + j) * p.call.head_dim;
}
inline const float* value_row(const SparseProblem& p, int32_t h, int64_t j) {
    const int32_t g = h / (p.call.heads / p.call.kv_heads);
    return p.v.data() + (g * p.call.capacity + j) * p.call.head_dim;
}
inline const float* query_row(const SparseProblem& p, int32_t h, int64_t i) {
    return p.q.data() + (i * p.call.heads + h) * p.call.head_dim;
}

// Causal softmax of query i (call row) of head h over keys 0..pos0+i, in double.
inline std::vector<double> causal_probs(const SparseProblem& p, int32_t h, int64_t i) {
    const int64_t pos = p.call.pos0 + i, D = p.call.head_dim;
    std::vector<double> s(size_t(pos + 1));
    double m = -INFINITY;
    for (int64_t j = 0; j <= pos; ++j) {
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += double(query_row(p, h, i)[d]) * key_row(p, h, j)[d];
        s[j] = acc * p.call.scale;
        m = std::max(m, s[j]);
    }
    double z = 0;
    for (double& x : s) z += (x = std::exp(x - m));
    for (double& x : s) x /= z;
    return s;
}

// Token-level reference of block-sparse attention: query i sees key j iff j <= its position and
// j's block is in the plan row of (h, its block). out [n_new, heads, D], lse [heads, n_new].
inline void masked_attention_reference(const SparseProblem& p, const HostBlockPlan& plan,
                                       std::vector<double>& out, std::vector<double>& lse) {
    const AttentionCall& c = p.call;
    const int64_t D = c.head_dim, B = plan.grid.block_size;
    out.assign(size_t(c.n_new * c.heads * D), 0.0);
    lse.assign(size_t(c.heads * c.n_new), 0.0);
    for (int32_t h = 0; h < c.heads; ++h) {
        for (int64_t i = 0; i < c.n_new; ++i) {
            const int64_t pos = c.pos0 + i;
            const int32_t r = int32_t(pos / B);
            std::vector<double> s;
            std::vector<int64_t> js;
            double m = -INFINITY;
            for (int64_t j = 0; j <= pos; ++j) {
                if (!plan.contains(h, r, int32_t(j / B))) continue;
                double acc = 0;
                for (int64_t d = 0; d < D; ++d) acc += double(query_row(p, h, i)[d]) * key_row(p, h, j)[d];
                s.push_back(acc * c.scale);
                js.push_back(j);
                m = std::max(m, s.back());
            }
            double z = 0;
            for (double& x : s) z += (x = std::exp(x - m));
            double* o = out.data() + (i * c.heads + h) * D;
            for (size_t t = 0; t < s.size(); ++t)
                for (int64_t d = 0; d < D; ++d) o[d] += s[t] / z * value_row(p, h, js[t])[d];
            lse[size_t(h * c.n_new + i)] = m + std::log(z);
        }
    }
}

}  // namespace tdm::test
