// One AVX2 register of 8 floats (with FMA and F16C), behind the interface of simd_avx512.h.
//
// Include only from an ISA translation unit (isa_*.cpp), after its `#pragma GCC target`.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace tdm::cpu {
namespace {

struct VecAvx2 {
    static constexpr int W = 8;
    using T = __m256;
    using Mask = __m256;  // all-ones lanes are true

    // Lane i of first(n) is all ones for i < n; n in [0, 8].
    static __m256i first(int n) {
        alignas(32) static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                     0,  0,  0,  0,  0,  0,  0,  0};
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ramp + 8 - n));
    }

    static T zero() { return _mm256_setzero_ps(); }
    static T set1(float v) { return _mm256_set1_ps(v); }
    static T load(const float* p) { return _mm256_loadu_ps(p); }
    static T load(const float* p, int n) { return _mm256_maskload_ps(p, first(n)); }
    static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
    static void store(float* p, T v, int n) { _mm256_maskstore_ps(p, first(n), v); }

    static __m128i load8x16(const uint16_t* p) {
        return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    }
    static __m128i load8x16(const uint16_t* p, int n) {  // zero-filled past n
        alignas(16) uint16_t tmp[8] = {};
        std::memcpy(tmp, p, static_cast<size_t>(n) * 2);
        return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    static T load_f16(const uint16_t* p) { return _mm256_cvtph_ps(load8x16(p)); }
    static T load_f16(const uint16_t* p, int n) { return _mm256_cvtph_ps(load8x16(p, n)); }
    static T widen_bf16(__m128i h) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static T load_bf16(const uint16_t* p) { return widen_bf16(load8x16(p)); }
    static T load_bf16(const uint16_t* p, int n) { return widen_bf16(load8x16(p, n)); }

    static T add(T a, T b) { return _mm256_add_ps(a, b); }
    static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
    static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
    static T div(T a, T b) { return _mm256_div_ps(a, b); }
    static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
    static T fnmadd(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
    static T max(T a, T b) { return _mm256_max_ps(a, b); }
    static float reduce_add(T v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float reduce_max(T v) {
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }

    // In-register transpose of an 8 x 8 block: r[i] lane j becomes r[j] lane i.
    static void transpose(T (&r)[W]) {
        T t[W], u[W];
        for (int i = 0; i < W; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < W; i += 4) {
            u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
            u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
            u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
            u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
        }
        for (int c = 0; c < 4; ++c) {
            r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
            r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
        }
    }

    static Mask le(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
    static Mask gt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static Mask eq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
    static Mask both(Mask a, Mask b) { return _mm256_and_ps(a, b); }
    static T select(Mask m, T a, T b) { return _mm256_blendv_ps(b, a, m); }  // m ? a : b

    // e^x as in VecAvx512::exp; the upper clamp is 88 so that 2^n stays a normal float.
    static T exp(T x) {
        const T lo = set1(-87.33654f), hi = set1(88.0f);
        T underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
        x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // x second: a NaN passes through
        T n = _mm256_round_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        T r = _mm256_fnmadd_ps(n, set1(0.693359375f), x);
        r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
        T p = set1(1.9875691500e-4f);
        p = _mm256_fmadd_ps(p, r, set1(1.3981999507e-3f));
        p = _mm256_fmadd_ps(p, r, set1(8.3334519073e-3f));
        p = _mm256_fmadd_ps(p, r, set1(4.1665795894e-2f));
        p = _mm256_fmadd_ps(p, r, set1(1.6666665459e-1f));
        p = _mm256_fmadd_ps(p, r, set1(5.0000001201e-1f));
        p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, set1(1.0f)));
        // 2^n built in the exponent field: n in [-126, 127] here.
        __m256i e =
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
    }
};

}  // namespace
}  // namespace tdm::cpu
