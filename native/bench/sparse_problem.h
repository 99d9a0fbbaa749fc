// Structured synthetic attention inputs for the block-sparse prefill benchmarks (issue 4,
// benchmark 3): sparse_e2e_bench.cpp on the GPU and sparse_e2e_cpu_bench.cpp on the CPU time the
// same inputs. In logits (q.k / sqrt(D)):
//   - sink: key 0 gets +14 from a direction u every query shares: about half of a long row's mass
//     at 128K and most of it at 8K, as in the sink heads of Llama-class models (the earlier +50
//     made every row a sink row and density meaningless);
//   - local band: 16 RoPE-like cos/sin pairs (dims 0..31) whose dot product peaks at +10 on the
//     diagonal and decays over a few hundred tokens;
//   - vertical stripes: 8 random keys get +9 along u;
//   - noise: the other dims N(0, 0.75^2) in q and k, logit std ~0.5, everywhere. At 128K it
//     carries ~10% of a row's mass (131072 keys x e^0.12), so tau = 0.9 and gamma = 0.95 must cut
//     into it: the selection is a real decision, not the sink alone.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace tdm::bench {

struct SparseProblemHost {
    int64_t n = 0;
    int heads = 0, kv_heads = 0, head_dim = 0;
    std::vector<float> q;     // [n, heads, D]
    std::vector<float> k, v;  // [kv_heads, n, D], before any rounding to the cache's dtype
};

inline SparseProblemHost make_sparse_problem(int64_t n, int heads, int kv_heads, int D) {
    SparseProblemHost p;
    p.n = n;
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.head_dim = D;
    std::mt19937 rng(1234);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> u(static_cast<size_t>(D)), freq(16);
    for (auto& x : u) x = g(rng);
    {
        float norm = 0.0f;
        for (float x : u) norm += x * x;
        for (auto& x : u) x /= std::sqrt(norm);  // unit: the bumps below are exact
    }
    for (int f = 0; f < 16; ++f) freq[size_t(f)] = 1.0f / std::pow(256.0f, float(f) / 16.0f);
    std::vector<char> stripe(size_t(n), 0);
    for (int s = 0; s < 8; ++s) stripe[size_t(rng() % n)] = 1;
    const float inv_sqrt_d = 1.0f / std::sqrt(float(D));
    const float u_q = 4.0f;                          // every query's component along u
    const float u_sink = 14.0f / inv_sqrt_d / u_q;   // key 0: +14 logits
    const float u_stripe = 9.0f / inv_sqrt_d / u_q;  // stripes: +9
    const float band = std::sqrt(10.0f / inv_sqrt_d / 16.0f);  // 16 pairs: +10 at distance 0
    // dims 0..31: positional cos/sin pairs (local band); the rest noise; plus u on sink/stripes.
    auto pos_feature = [&](int64_t i, int d) {
        const int f = (d / 2) % 16;
        const float a = float(i) * freq[size_t(f)];
        return d % 2 == 0 ? std::cos(a) : std::sin(a);
    };
    p.q.resize(size_t(n) * heads * D);
    p.k.resize(size_t(kv_heads) * n * D);
    p.v.resize(p.k.size());
    for (int64_t i = 0; i < n; ++i)
        for (int h = 0; h < heads; ++h)
            for (int d = 0; d < D; ++d)
                p.q[size_t((i * heads + h) * D + d)] =
                    (d < 32 ? band * pos_feature(i, d) : 0.75f * g(rng)) + u_q * u[size_t(d)];
    for (int h = 0; h < kv_heads; ++h)
        for (int64_t j = 0; j < n; ++j)
            for (int d = 0; d < D; ++d) {
                const float along_u = j == 0 ? u_sink : stripe[size_t(j)] ? u_stripe : 0.0f;
                p.k[size_t((int64_t(h) * n + j) * D + d)] =
                    (d < 32 ? band * pos_feature(j, d) : 0.75f * g(rng)) + along_u * u[size_t(d)];
                p.v[size_t((int64_t(h) * n + j) * D + d)] = g(rng);
            }
    return p;
}

}  // namespace tdm::bench
