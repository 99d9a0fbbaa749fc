// Element types of stored weights and their conversions to and from f32.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "tandem.h"

namespace tdm {

enum class DType : int32_t { F32 = TDM_DTYPE_F32, F16 = TDM_DTYPE_F16, BF16 = TDM_DTYPE_BF16 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

inline const char* dtype_name(DType t) {
    switch (t) {
        case DType::F32: return "float32";
        case DType::F16: return "float16";
        case DType::BF16: return "bfloat16";
    }
    return "unknown";
}

// bf16 is the top half of an f32.
inline float bf16_to_f32(uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Round to nearest even, as PyTorch does; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

// IEEE binary16 -> f32, exact (subnormals, infinities and NaN included).
inline float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while ((man & 0x400u) == 0) { man <<= 1; --exp; }
            man &= 0x3ffu;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// f32 -> IEEE binary16, round to nearest even, overflow to infinity.
inline uint16_t f32_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);          // NaN
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);         // overflow -> inf
    if (a < 0x38800000u) {                                          // subnormal or zero
        if (a < 0x33000000u) return uint16_t(sign);                 // below half the smallest
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        // value = m * 2^(e-150); the f16 subnormal unit is 2^-24, so its mantissa is m >> (126-e).
        uint32_t s = 126 - e;  // in [14, 24]
        uint32_t q = m >> s;
        uint32_t rem = m & ((1u << s) - 1);
        uint32_t half = 1u << (s - 1);
        if (rem > half || (rem == half && (q & 1u))) ++q;
        return uint16_t(sign | q);
    }
    uint32_t r = a - 0x38000000u;                                   // rebias exponent
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
    return uint16_t(sign | q);
}

// Converts one element of any stored dtype to f32.
inline float load_as_f32(const void* base, size_t index, DType t) {
    switch (t) {
        case DType::F32: return static_cast<const float*>(base)[index];
        case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[index]);
        case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[index]);
    }
    return 0.0f;
}

}  // namespace tdm
