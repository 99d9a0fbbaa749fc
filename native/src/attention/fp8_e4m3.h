// FP8 E4M3 rounding on the host, for XAttention's fp8 estimation (ALGORITHMS.md 4, ENGINE.md):
// the CPU twin rounds Q and K exactly as the GPU's cvt.rn.satfinite.e4m3x2.f32 does, so both
// score the same operand values.
//
// E4M3 (OCP FP8): 1 sign, 4 exponent (bias 7) and 3 mantissa bits; largest finite 448, smallest
// normal 2^-6, subnormals in steps of 2^-9; no infinities. Rounding is to nearest, ties to even;
// "satfinite" clamps magnitudes past 448 (infinities included) to 448 and keeps NaN a NaN.
//
// Scaling: a head's values are multiplied by 2^e, e the largest integer with amax * 2^e <= 448
// (e4m3_scale_exponent), before rounding. A power of two keeps the scaling and its undoing exact,
// so fp8(x) * 2^-e is the value both engines use, and the products differ only in summation order.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace tdm::fp8 {

constexpr float kE4m3Max = 448.0f;

// The largest e with amax * 2^e <= 448, clamped to [-126, 127] so that 2^e is a normal float
// (pow2 below); 0 when amax is 0, negative or not finite.
inline int32_t e4m3_scale_exponent(float amax) {
    if (!(amax > 0.0f) || !std::isfinite(amax)) return 0;
    int E = 0;
    const float m = std::frexp(amax, &E);  // amax = m * 2^E, m in [0.5, 1)
    // 448 = 0.875 * 2^9: m * 2^(E + e) <= 0.875 * 2^9  <=>  e <= 9 - E (m <= 0.875) else 8 - E.
    const int e = (m <= 0.875f ? 9 : 8) - E;
    return e < -126 ? -126 : (e > 127 ? 127 : e);
}

// 2^e as a float, exactly, for e in [-126, 127].
inline float pow2(int32_t e) { return std::ldexp(1.0f, e); }

// x rounded to the nearest E4M3 value (ties to even), saturating to +-448; NaN stays NaN.
// Bit arithmetic instead of frexp/nearbyint (10x faster; the CPU twin rounds every q and k value
// of a call): equal to the frexp form for all 2^32 floats.
inline float round_to_e4m3(float x) {
    if (std::isnan(x)) return x;
    const float a = std::fabs(x);
    float r;
    if (a >= kE4m3Max) {
        r = kE4m3Max;  // 448 .. 464 rounds down to it anyway; past that satfinite clamps
    } else if (a < 0x1p-6f) {
        // Subnormals are multiples of 2^-9, the float ulp at 2^14: the addition rounds to them
        // (to nearest even), the subtraction is exact.
        volatile float shifted = a + 16384.0f;
        r = shifted - 16384.0f;
    } else {
        // Keep 3 of the 23 mantissa bits, rounding the 20 dropped ones to nearest even; a carry
        // into the exponent is the next binade's 1.0, and 448 is the largest result below 448.
        uint32_t b;
        std::memcpy(&b, &a, sizeof b);
        b += 0x7ffffu + ((b >> 20) & 1u);
        b &= ~0xfffffu;
        std::memcpy(&r, &b, sizeof r);
    }
    return std::signbit(x) ? -r : r;
}

// The byte cvt.rn.satfinite.e4m3 writes for x (sign, exponent, mantissa), for tests.
inline uint8_t e4m3_bits(float x) {
    if (std::isnan(x)) return 0x7f;
    const float r = round_to_e4m3(x);
    const uint8_t sign = std::signbit(r) ? 0x80 : 0x00;
    const float a = std::fabs(r);
    if (a == 0.0f) return sign;
    int E = 0;
    (void)std::frexp(a, &E);
    if (E - 1 < -6) return uint8_t(sign | uint8_t(std::ldexp(a, 9)));  // subnormal: a / 2^-9
    const int exp_field = (E - 1) + 7;
    const int mant = int(std::ldexp(a, -(E - 1) + 3)) - 8;  // a / 2^(E-1) in [1, 2), 3 bits
    return uint8_t(sign | uint8_t(exp_field << 3) | uint8_t(mant));
}

// round_to_e4m3(x * 2^e) * 2^-e: the value an fp8 operand of scale exponent e stands for.
inline float quantize_e4m3(float x, int32_t e) {
    return round_to_e4m3(x * pow2(e)) * pow2(-e);
}

}  // namespace tdm::fp8
