// A "register" of 8 floats in plain C++, behind the interface of simd_avx512.h, so that the
// portable level runs the same kernel templates (the compiler vectorises the lane loops with
// whatever the baseline target has, SSE2 on x86-64).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"

namespace tdm::cpu {
namespace {

struct VecPortable {
    static constexpr int W = 8;
    struct T {
        float v[W];
    };
    struct Mask {
        bool m[W];
    };

    template <class F>
    static T map(F f) {
        T r;
        for (int i = 0; i < W; ++i) r.v[i] = f(i);
        return r;
    }

    static T zero() {
        return map([](int) { return 0.0f; });
    }
    static T set1(float x) {
        return map([x](int) { return x; });
    }
    static T load(const float* p) {
        return map([p](int i) { return p[i]; });
    }
    static T load(const float* p, int n) {
        return map([=](int i) { return i < n ? p[i] : 0.0f; });
    }
    static void store(float* p, T a) {
        for (int i = 0; i < W; ++i) p[i] = a.v[i];
    }
    static void store(float* p, T a, int n) {
        for (int i = 0; i < n; ++i) p[i] = a.v[i];
    }
    static T load_f16(const uint16_t* p) {
        return map([p](int i) { return f16_to_f32(p[i]); });
    }
    static T load_f16(const uint16_t* p, int n) {
        return map([=](int i) { return i < n ? f16_to_f32(p[i]) : 0.0f; });
    }
    static T load_bf16(const uint16_t* p) {
        return map([p](int i) { return bf16_to_f32(p[i]); });
    }
    static T load_bf16(const uint16_t* p, int n) {
        return map([=](int i) { return i < n ? bf16_to_f32(p[i]) : 0.0f; });
    }

    static T add(T a, T b) {
        return map([&](int i) { return a.v[i] + b.v[i]; });
    }
    static T sub(T a, T b) {
        return map([&](int i) { return a.v[i] - b.v[i]; });
    }
    static T mul(T a, T b) {
        return map([&](int i) { return a.v[i] * b.v[i]; });
    }
    static T div(T a, T b) {
        return map([&](int i) { return a.v[i] / b.v[i]; });
    }
    static T fmadd(T a, T b, T c) {
        return map([&](int i) { return a.v[i] * b.v[i] + c.v[i]; });
    }
    static T fnmadd(T a, T b, T c) {
        return map([&](int i) { return c.v[i] - a.v[i] * b.v[i]; });
    }
    static T max(T a, T b) {
        return map([&](int i) { return a.v[i] > b.v[i] ? a.v[i] : b.v[i]; });
    }
    static float reduce_add(T a) {
        // Pairwise, like the SIMD levels, rather than left to right.
        float s[W];
        for (int i = 0; i < W; ++i) s[i] = a.v[i];
        for (int w = W / 2; w > 0; w /= 2)
            for (int i = 0; i < w; ++i) s[i] += s[i + w];
        return s[0];
    }
    static float reduce_max(T a) {
        float m = a.v[0];
        for (int i = 1; i < W; ++i) m = a.v[i] > m ? a.v[i] : m;
        return m;
    }

    static void transpose(T (&r)[W]) {
        for (int i = 0; i < W; ++i)
            for (int j = i + 1; j < W; ++j) {
                float tmp = r[i].v[j];
                r[i].v[j] = r[j].v[i];
                r[j].v[i] = tmp;
            }
    }

    static Mask le(T a, T b) {
        Mask r;
        for (int i = 0; i < W; ++i) r.m[i] = a.v[i] <= b.v[i];
        return r;
    }
    static Mask gt(T a, T b) {
        Mask r;
        for (int i = 0; i < W; ++i) r.m[i] = a.v[i] > b.v[i];
        return r;
    }
    static Mask eq(T a, T b) {
        Mask r;
        for (int i = 0; i < W; ++i) r.m[i] = a.v[i] == b.v[i];
        return r;
    }
    static Mask both(Mask a, Mask b) {
        Mask r;
        for (int i = 0; i < W; ++i) r.m[i] = a.m[i] && b.m[i];
        return r;
    }
    static T select(Mask m, T a, T b) {
        return map([&](int i) { return m.m[i] ? a.v[i] : b.v[i]; });
    }

    static T exp(T a) {
        return map([&](int i) { return std::exp(a.v[i]); });
    }
};

}  // namespace
}  // namespace tdm::cpu
