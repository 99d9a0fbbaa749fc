// One AVX-512 register of 16 floats, behind the small interface every SIMD kernel template is
// written against (simd_avx2.h and simd_portable.h provide the same names).
//
// Include only from an ISA translation unit (isa_*.cpp), after its `#pragma GCC target`: every
// function here is in an anonymous namespace, so no AVX-512 code can leak into the rest of the
// library through a shared inline definition.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace tdm::cpu {
namespace {

struct VecAvx512 {
    static constexpr int W = 16;
    using T = __m512;
    using Mask = __mmask16;

    static Mask first(int n) { return static_cast<Mask>((1u << n) - 1u); }  // n in [0, 16]

    static T zero() { return _mm512_setzero_ps(); }
    static T set1(float v) { return _mm512_set1_ps(v); }
    static T load(const float* p) { return _mm512_loadu_ps(p); }
    static T load(const float* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
    static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
    static void store(float* p, T v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }

    // Stored weights, widened to f32 (exactly).
    static T load_f16(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static T load_f16(const uint16_t* p, int n) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first(n), p));
    }
    static T widen_bf16(__m256i h) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    static T load_bf16(const uint16_t* p) {
        return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static T load_bf16(const uint16_t* p, int n) {
        return widen_bf16(_mm256_maskz_loadu_epi16(first(n), p));
    }

    static T add(T a, T b) { return _mm512_add_ps(a, b); }
    static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
    static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
    static T div(T a, T b) { return _mm512_div_ps(a, b); }
    static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }    // a * b + c
    static T fnmadd(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a * b
    static T max(T a, T b) { return _mm512_max_ps(a, b); }
    static float reduce_add(T v) { return _mm512_reduce_add_ps(v); }
    static float reduce_max(T v) { return _mm512_reduce_max_ps(v); }

    static T lo64(T a, T b) {
        return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
    }
    static T hi64(T a, T b) {
        return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
    }

    // In-register transpose of a 16 x 16 block: r[i] lane j becomes r[j] lane i (4 rounds of
    // 16 shuffles; used to pack matrix tiles).
    static void transpose(T (&r)[W]) {
        T t[W];
        for (int i = 0; i < W; i += 2) {
            t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < W; i += 4) {  // r[i + c] lane block L: rows i..i+3 of column 4L + c
            r[i] = lo64(t[i], t[i + 2]);
            r[i + 1] = hi64(t[i], t[i + 2]);
            r[i + 2] = lo64(t[i + 1], t[i + 3]);
            r[i + 3] = hi64(t[i + 1], t[i + 3]);
        }
        for (int c = 0; c < 4; ++c) {  // 128-bit blocks: (rows 0-3, 4-7) and (8-11, 12-15)
            t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
            t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
            t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
            t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
        }
        for (int c = 0; c < 8; ++c) {
            r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
            r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
        }
    }

    static Mask le(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
    static Mask gt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
    static Mask eq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
    static Mask both(Mask a, Mask b) { return static_cast<Mask>(a & b); }
    static T select(Mask m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b

    // e^x to ~1 ulp (Cephes' polynomial on [-ln2/2, ln2/2]); exactly 0 below -87.3 (so that
    // e^-inf = 0 for masked scores), saturating at e^88.7 above; NaN stays NaN.
    static T exp(T x) {
        const T lo = set1(-87.33654f), hi = set1(88.72283f);
        Mask underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
        x = _mm512_min_ps(hi, _mm512_max_ps(lo, x));  // x second: a NaN passes through
        T n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        T r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
        r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
        T p = set1(1.9875691500e-4f);
        p = _mm512_fmadd_ps(p, r, set1(1.3981999507e-3f));
        p = _mm512_fmadd_ps(p, r, set1(8.3334519073e-3f));
        p = _mm512_fmadd_ps(p, r, set1(4.1665795894e-2f));
        p = _mm512_fmadd_ps(p, r, set1(1.6666665459e-1f));
        p = _mm512_fmadd_ps(p, r, set1(5.0000001201e-1f));
        p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, set1(1.0f)));
        return _mm512_maskz_scalef_ps(static_cast<Mask>(~underflow), p, n);
    }
};

}  // namespace
}  // namespace tdm::cpu
