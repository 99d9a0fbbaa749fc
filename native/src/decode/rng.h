// The random-number generator of the sampler, specified bit for bit so that any language can
// reproduce a token sequence from its seed (tests/vectors/sampler.json checks C++, C# and the
// Python reference in tools/make_vectors.py against each other).
//
// Generator: xoshiro256** 1.0 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro256starstar.c).
//   State s[0..3], four uint64. One step, all arithmetic modulo 2^64, rotl(x, k) = (x << k) | (x >> (64 - k)):
//     result = rotl(s[1] * 5, 7) * 9
//     t = s[1] << 17
//     s[2] ^= s[0];  s[3] ^= s[1];  s[1] ^= s[2];  s[0] ^= s[3];  s[2] ^= t;  s[3] = rotl(s[3], 45)
//     return result
//
// Seeding: s[0], s[1], s[2], s[3] are the first four outputs of splitmix64 started at x = seed:
//     x += 0x9E3779B97F4A7C15
//     z = x;  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;  z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//     output z ^ (z >> 31)
//   splitmix64 is a bijection of its counter, so the four outputs are never all zero (the one
//   state xoshiro must avoid), whatever the seed, 0 included.
//
// Uniform double in [0, 1): (next() >> 11) * 2^-53. The top 53 bits are used because the low
// bits of xoshiro256** are its weakest, and 53 bits fill a double's mantissa exactly, so the
// conversion is exact in every language.
#pragma once

#include <cstdint>

namespace tdm {

// splitmix64: the seeding generator (also usable alone for hashing a seed into a stream).
class SplitMix64 {
public:
    explicit constexpr SplitMix64(uint64_t seed) : x_(seed) {}

    constexpr uint64_t next() {
        x_ += 0x9E3779B97F4A7C15ull;
        uint64_t z = x_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

private:
    uint64_t x_;
};

// xoshiro256**, seeded through splitmix64 as specified above.
class Rng {
public:
    explicit constexpr Rng(uint64_t seed) : s_{} {
        SplitMix64 sm(seed);
        for (uint64_t& word : s_) word = sm.next();
    }

    constexpr uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform in [0, 1), a multiple of 2^-53; exactly one next() per call.
    constexpr double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    friend constexpr bool operator==(const Rng&, const Rng&) = default;

private:
    static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    uint64_t s_[4];
};

}  // namespace tdm
