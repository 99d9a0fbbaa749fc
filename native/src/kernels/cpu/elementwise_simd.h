// The element-wise kernels (RMSNorm, RoPE, SwiGLU, residual add), written once against the
// SIMD interface of simd_avx512.h and instantiated by each isa_*.cpp with its own vector type.
// They are memory-bound: one pass over the data, full vectors, a masked tail.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"

namespace tdm::cpu {
namespace {

template <class V>
struct Elementwise {
    using T = typename V::T;
    static constexpr int W = V::W;

    // Weights of any stored dtype as f32 lanes (n < W: a zero-filled tail).
    template <DType D>
    static T load_weights(const void* base, int64_t i, int n = W) {
        if constexpr (D == DType::F32) {
            const float* p = static_cast<const float*>(base) + i;
            return n == W ? V::load(p) : V::load(p, n);
        } else if constexpr (D == DType::F16) {
            const uint16_t* p = static_cast<const uint16_t*>(base) + i;
            return n == W ? V::load_f16(p) : V::load_f16(p, n);
        } else {
            const uint16_t* p = static_cast<const uint16_t*>(base) + i;
            return n == W ? V::load_bf16(p) : V::load_bf16(p, n);
        }
    }

    // Hugging Face's LlamaRMSNorm order: the mean of squares in f32, x * rsqrt(mean + eps),
    // then times the weight.
    template <DType D>
    static void rmsnorm_rows(const float* x, const void* w, float eps, int64_t rows, int64_t n,
                             float* out) {
        for (int64_t r = 0; r < rows; ++r) {
            const float* xr = x + r * n;
            float* yr = out + r * n;
            // Four partial sums: the adds would otherwise wait on each other's latency.
            T s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
            int64_t i = 0;
            for (; i + 4 * W <= n; i += 4 * W) {
                T a = V::load(xr + i), b = V::load(xr + i + W);
                T c = V::load(xr + i + 2 * W), d = V::load(xr + i + 3 * W);
                s0 = V::fmadd(a, a, s0);
                s1 = V::fmadd(b, b, s1);
                s2 = V::fmadd(c, c, s2);
                s3 = V::fmadd(d, d, s3);
            }
            for (; i < n; i += W) {
                int k = n - i < W ? static_cast<int>(n - i) : W;
                T a = V::load(xr + i, k);
                s0 = V::fmadd(a, a, s0);
            }
            float ss = V::reduce_add(V::add(V::add(s0, s1), V::add(s2, s3)));
            float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
            T vinv = V::set1(inv);
            for (i = 0; i < n; i += W) {
                int k = n - i < W ? static_cast<int>(n - i) : W;
                T a = k == W ? V::load(xr + i) : V::load(xr + i, k);
                T y = V::mul(V::mul(a, vinv), load_weights<D>(w, i, k));
                if (k == W)
                    V::store(yr + i, y);
                else
                    V::store(yr + i, y, k);
            }
        }
    }

    static void rmsnorm(const float* x, const void* w, DType wtype, float eps, int64_t rows,
                        int64_t n, float* out) {
        switch (wtype) {
            case DType::F32:
                return rmsnorm_rows<DType::F32>(x, w, eps, rows, n, out);
            case DType::F16:
                return rmsnorm_rows<DType::F16>(x, w, eps, rows, n, out);
            case DType::BF16:
                return rmsnorm_rows<DType::BF16>(x, w, eps, rows, n, out);
        }
    }

    // rotate_half: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with x1 = x[:D/2], x2 = x[D/2:].
    static void rope_row(float* x, int64_t heads, int64_t head_dim, const float* cos,
                         const float* sin) {
        const int64_t half = head_dim / 2;
        for (int64_t h = 0; h < heads; ++h) {
            float* a = x + h * head_dim;
            float* b = a + half;
            for (int64_t i = 0; i < half; i += W) {
                int k = half - i < W ? static_cast<int>(half - i) : W;
                T x1 = V::load(a + i, k), x2 = V::load(b + i, k);
                T c = V::load(cos + i, k), s = V::load(sin + i, k);
                V::store(a + i, V::fnmadd(x2, s, V::mul(x1, c)), k);
                V::store(b + i, V::fmadd(x1, s, V::mul(x2, c)), k);
            }
        }
    }

    // silu(g) * u with silu(g) = g / (1 + e^-g).
    static T swiglu1(T g, T u) {
        T e = V::exp(V::sub(V::zero(), g));
        return V::mul(V::div(g, V::add(V::set1(1.0f), e)), u);
    }

    static void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld,
                       float* out) {
        for (int64_t r = 0; r < rows; ++r) {
            const float* g = gate + r * ld;
            const float* u = up + r * ld;
            float* y = out + r * n;
            int64_t i = 0;
            for (; i + W <= n; i += W) V::store(y + i, swiglu1(V::load(g + i), V::load(u + i)));
            if (i < n) {
                int k = static_cast<int>(n - i);
                V::store(y + i, swiglu1(V::load(g + i, k), V::load(u + i, k)), k);
            }
        }
    }

    static void add(float* y, const float* x, int64_t n) {
        int64_t i = 0;
        for (; i + W <= n; i += W) V::store(y + i, V::add(V::load(y + i), V::load(x + i)));
        if (i < n) {
            int k = static_cast<int>(n - i);
            V::store(y + i, V::add(V::load(y + i, k), V::load(x + i, k)), k);
        }
    }
};

}  // namespace
}  // namespace tdm::cpu
