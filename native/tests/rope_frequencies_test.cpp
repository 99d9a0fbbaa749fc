// The RoPE frequency table against (1) tables Hugging Face transformers computed, bit for bit,
// (2) numbers checked by hand, and (3) a straightforward double-precision implementation of the
// same formulas on fresh random parameters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/rope_frequencies.h"

namespace tdm {
namespace {

RopeConfig default_rope(double theta) {
    RopeConfig r;
    r.theta = theta;
    return r;
}

RopeConfig llama3_rope(double theta, double factor, double low, double high, int64_t old_context) {
    RopeConfig r;
    r.type = RopeType::Llama3;
    r.theta = theta;
    r.factor = factor;
    r.low_freq_factor = low;
    r.high_freq_factor = high;
    r.original_max_position_embeddings = old_context;
    return r;
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

void expect_bits(const std::vector<float>& got, const std::vector<uint32_t>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(bits(got[i]), want[i]) << "inv_freq[" << i << "] = " << got[i];
}

// ---------------------------------------------------------------------------------------------
// (1) transformers' own tables: LlamaRotaryEmbedding(config).inv_freq, transformers 5.17.0 on
// torch 2.11.0 (CPU), float32 bit patterns. Computed with ATEN_CPU_CAPABILITY=default, where torch
// evaluates pow per element with the C library. Under AVX2/AVX-512 torch vectorises pow with
// Sleef (1-ulp accuracy, not always correctly rounded): those runs gave the same tables except one
// element, theta = 1e6, head_dim = 128, i = 37, one ulp higher. Our table is the correctly rounded
// one, as the scalar path's.

TEST(RopeFrequencies, BitExactWithTransformersDefault) {
    // theta 10000, head_dim 64 (TinyLlama, Llama 2).
    expect_bits(rope_inverse_frequencies(default_rope(10000.0), 64),
                {0x3f800000, 0x3f3ff911, 0x3f0ff59a, 0x3ed7e89b, 0x3ea1e89b, 0x3e72d423, 0x3e361887,
                 0x3e088d77, 0x3dcccccd, 0x3d99940d, 0x3d6655c2, 0x3d2cba15, 0x3d0186e3, 0x3cc2434f,
                 0x3c91ad39, 0x3c5a7bf2, 0x3c23d70a, 0x3bf5b9b0, 0x3bb8449c, 0x3b8a2e77, 0x3b4f3e38,
                 0x3b1b690d, 0x3ae91528, 0x3aaec98e, 0x3a83126f, 0x3a44948c, 0x3a136a16, 0x39dd1725,
                 0x39a5cb60, 0x3978a815, 0x393a7753, 0x390bd472});
    // A ragged head_dim and a theta that is not a round number.
    expect_bits(rope_inverse_frequencies(default_rope(10000.0), 6),
                {0x3f800000, 0x3d3e1e95, 0x3b0d3169});
    expect_bits(rope_inverse_frequencies(default_rope(12345.678), 80),
                {0x3f800000, 0x3f4a4794, 0x3f1fd509, 0x3efc9593, 0x3ec794a6, 0x3e9db319, 0x3e7936d3,
                 0x3e44eaf1, 0x3e1b9871, 0x3df5e396, 0x3dc24a54, 0x3d9984f9, 0x3d729bb2, 0x3d3fb2b1,
                 0x3d177899, 0x3cef5f04, 0x3cbd23e7, 0x3c957336, 0x3c6c2d67, 0x3c3a9ddc, 0x3c1374bd,
                 0x3be906b3, 0x3bb8206d, 0x3b917d13, 0x3b65eab9, 0x3b35ab82, 0x3b0f8c22, 0x3ae2d967,
                 0x3ab33efb, 0x3a8da1cd, 0x3a5fd28e, 0x3a30dabc, 0x3a0bbe08, 0x39dcd60d, 0x39ae7ea1,
                 0x3989e0b7, 0x3959e3bf, 0x392c2a9d, 0x390809c5, 0x38d6fb7a});
}

TEST(RopeFrequencies, BitExactWithTransformersLlama3) {
    // Llama 3.1 8B: theta 500000, head_dim 128, factor 8, low 1, high 4, old context 8192.
    expect_bits(rope_inverse_frequencies(llama3_rope(500000.0, 8.0, 1.0, 4.0, 8192), 128),
                {0x3f800000, 0x3f508ac1, 0x3f29e1c6, 0x3f0a6384, 0x3ee177bc, 0x3eb7ab7d, 0x3e959ee3,
                 0x3e73c461, 0x3e4693b0, 0x3e21c3a0, 0x3e03c6a0, 0x3dd6b19c, 0x3daee4ad, 0x3d8e7898,
                 0x3d681e67, 0x3d3d1684, 0x3d1a08c8, 0x3cfaf53f, 0x3ccc6f49, 0x3ca68939, 0x3c87a9c3,
                 0x3c5d06ec, 0x3c340d6d, 0x3c12ac7f, 0x3beef74f, 0x3bc2aa76, 0x3b9e9402, 0x3b812e35,
                 0x3b527720, 0x3b0dfd06, 0x3ab3d11d, 0x3a60979e, 0x3a0995d2, 0x39a3f108, 0x393b2dd2,
                 0x38c86886, 0x38a3418d, 0x3884fdbf, 0x3858ac81, 0x38308199, 0x380fc8f8, 0x37ea426f,
                 0x37bed4f4, 0x379b7475, 0x377d45c3, 0x374e51f5, 0x3728126b, 0x3708ea0f, 0x36df10c4,
                 0x36b5b687, 0x369406cb, 0x36712b80, 0x36447610, 0x36200a69, 0x36025f34, 0x35d46808,
                 0x35ad07a7, 0x358cf400, 0x3565a54d, 0x353b12c7, 0x351864a7, 0x34f848c2, 0x34ca41b0,
                 0x34a4c2ff});
    // Tiny heads with a short old context, so that every band holds a few entries.
    expect_bits(rope_inverse_frequencies(llama3_rope(10000.0, 4.0, 1.0, 4.0, 64), 16),
                {0x3f800000, 0x3e826136, 0x3cd09b89, 0x3c0186e3, 0x3b23d70a, 0x3a4f3e38, 0x3983126f,
                 0x38a5cb60});
    expect_bits(rope_inverse_frequencies(llama3_rope(10000.0, 3.0, 2.0, 5.0, 100), 22),
                {0x3f800000, 0x3edda1f1, 0x3dd3afe0, 0x3cdd7e27, 0x3c3fc203, 0x3ba603cb, 0x3b0fba49,
                 0x3a78dd7d, 0x39d7749f, 0x393a87fb, 0x38a17d5f});
}

// ---------------------------------------------------------------------------------------------
// (2) Numbers checked by hand.

TEST(RopeFrequencies, HandCheckedDefault) {
    // theta = 10^4, head_dim 8: the exponents 0, 1/4, 1/2, 3/4 are exact in float32, so
    // inv_freq = 10^0, 10^-1, 10^-2, 10^-3, each rounded once to float32.
    const std::vector<float> inv = rope_inverse_frequencies(default_rope(10000.0), 8);
    ASSERT_EQ(inv.size(), 4u);
    EXPECT_EQ(inv[0], 1.0f);
    EXPECT_EQ(inv[1], 0.1f);
    EXPECT_EQ(inv[2], 0.01f);
    EXPECT_EQ(inv[3], 0.001f);
    // head_dim 2: only the first pair, which never rotates faster than one radian per token.
    EXPECT_EQ(rope_inverse_frequencies(default_rope(500000.0), 2), std::vector<float>{1.0f});
}

TEST(RopeFrequencies, HandCheckedLlama3Bands) {
    // theta 10^4, head_dim 16, factor 4, low 1, high 4, old context 64: the default table is
    // 10^(-i/2); wavelength 2*pi*10^(i/2) against the band edges 64/4 = 16 and 64/1 = 64:
    //   i = 0: 6.28 < 16, high band, kept: 1.
    //   i = 1, 2: 19.9 and 62.8, medium band. With these factors (1 - s)/4 + s = old/(4 wavelen),
    //            so inv * old/(4 * 2*pi/inv) = 64 inv^2 / (8 pi): 0.8/pi and 0.08/pi.
    //   i >= 3: 199 and up > 64, low band: 10^(-i/2) / 4.
    const std::vector<double> expected = {1.0,
                                          0.8 / std::numbers::pi,
                                          0.08 / std::numbers::pi,
                                          std::pow(10.0, -1.5) / 4,
                                          0.01 / 4,
                                          std::pow(10.0, -2.5) / 4,
                                          0.001 / 4,
                                          std::pow(10.0, -3.5) / 4};
    const std::vector<float> inv = rope_inverse_frequencies(llama3_rope(1e4, 4, 1, 4, 64), 16);
    ASSERT_EQ(inv.size(), expected.size());
    for (size_t i = 0; i < inv.size(); ++i)
        EXPECT_NEAR(inv[i], expected[i], expected[i] * 1e-6) << "i = " << i;

    // Llama 3.1: wavelengths 2*pi*500000^(i/64) cross 2048 between i = 28 and 29 and 8192
    // between i = 34 and 35.
    const std::vector<float> def = rope_inverse_frequencies(default_rope(500000.0), 128);
    const std::vector<float> l3 = rope_inverse_frequencies(llama3_rope(5e5, 8, 1, 4, 8192), 128);
    for (int i = 0; i <= 28; ++i)
        EXPECT_EQ(l3[size_t(i)], def[size_t(i)]) << "high band, i = " << i;
    for (int i = 29; i <= 34; ++i) {
        EXPECT_LT(l3[size_t(i)], def[size_t(i)]) << "medium band, i = " << i;
        EXPECT_GT(l3[size_t(i)], def[size_t(i)] / 8) << "medium band, i = " << i;
    }
    for (int i = 35; i < 64; ++i)
        EXPECT_EQ(l3[size_t(i)], def[size_t(i)] / 8.0f) << "low band, i = " << i;
    EXPECT_NEAR(l3[63], std::pow(500000.0, -126.0 / 128.0) / 8, 3.07e-7 * 1e-6);
}

// ---------------------------------------------------------------------------------------------
// (3) A straightforward double implementation, written from the formulas, on random parameters.

std::vector<double> reference_inv_freq(const RopeConfig& r, int head_dim) {
    std::vector<double> out;
    for (int i = 0; i < head_dim / 2; ++i) {
        double inv = 1.0 / std::pow(r.theta, 2.0 * i / head_dim);
        if (r.type == RopeType::Llama3) {
            const double old = double(r.original_max_position_embeddings);
            const double wavelen = 2 * std::numbers::pi / inv;
            if (wavelen > old / r.low_freq_factor) {
                inv /= r.factor;
            } else if (wavelen >= old / r.high_freq_factor) {
                const double s =
                    (old / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
                inv = (1 - s) * inv / r.factor + s * inv;
            }
        }
        out.push_back(inv);
    }
    return out;
}

// How far (relatively) transformers' float32 arithmetic may land from the exact value of entry i.
// The exponent 2i/d is rounded to float32 (relative error u = 2^-24), which moves theta^e by a
// factor exp(ln(theta) * e * u); every later float32 step adds about u. In the llama3 medium band
// the smooth factor s = (old/wavelen - low) / (high - low) subtracts nearly equal numbers, so its
// absolute error is about old/wavelen * (that relative error) / (high - low), and the result
// inv * (1/f + s (1 - 1/f)) carries it relatively amplified by (1 - 1/f) / (1/f + s (1 - 1/f)),
// up to f at the low edge. Near a band edge the two sides agree, so a rounding error that moves
// an entry across the edge stays within the same bound.
double float32_error_bound(const RopeConfig& r, int head_dim, size_t i) {
    const double u = std::ldexp(1.0, -24);
    const double e = 2.0 * double(i) / head_dim;
    const double rel_inv = std::log(r.theta) * e * u + 4 * u;
    double bound = rel_inv + 8 * u;
    if (r.type == RopeType::Llama3) {
        const double inv = 1.0 / std::pow(r.theta, e);
        const double q = double(r.original_max_position_embeddings) * inv / (2 * std::numbers::pi);
        const double lo = r.low_freq_factor, hi = r.high_freq_factor, f = r.factor;
        if (q >= lo * (1 - 1e-3) && q <= hi * (1 + 1e-3)) {  // the medium band and its edges
            const double s = std::clamp((q - lo) / (hi - lo), 0.0, 1.0);
            const double ds = (q * (rel_inv + 6 * u) + u * std::fabs(q - lo)) / (hi - lo) + 2 * u;
            const double g = 1 / f + s * (1 - 1 / f);
            bound += 2 * ds * (1 - 1 / f) / g;
        }
    }
    return bound;
}

TEST(RopeFrequencies, MatchesADoubleImplementationOnRandomParameters) {
    const uint32_t seed = std::random_device{}();
    RecordProperty("seed", std::to_string(seed));
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> log_theta(std::log(100.0), std::log(1e7));
    std::uniform_int_distribution<int> half_dim(1, 160);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (int trial = 0; trial < 200; ++trial) {
        const int head_dim = 2 * half_dim(rng);
        const double theta = std::exp(log_theta(rng));
        RopeConfig r = default_rope(theta);
        if (trial % 2 == 1) {
            const double low = 0.5 + 2 * unit(rng);
            r = llama3_rope(theta, 1 + 40 * unit(rng), low, low + 0.1 + 8 * unit(rng),
                            std::uniform_int_distribution<int64_t>(16, 1 << 17)(rng));
        }
        SCOPED_TRACE("trial " + std::to_string(trial) + ", head_dim " + std::to_string(head_dim));
        const std::vector<float> got = rope_inverse_frequencies(r, head_dim);
        const std::vector<double> want = reference_inv_freq(r, head_dim);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
            const double bound = float32_error_bound(r, head_dim, i);
            ASSERT_NEAR(got[i], want[i], want[i] * bound) << "i = " << i;
        }
    }
}

TEST(RopeFrequencies, DefaultTableIsStrictlyDecreasingFromOne) {
    for (int head_dim : {2, 6, 64, 80, 128, 256}) {
        const std::vector<float> inv = rope_inverse_frequencies(default_rope(10000.0), head_dim);
        ASSERT_EQ(inv.size(), size_t(head_dim / 2));
        EXPECT_EQ(inv[0], 1.0f);
        for (size_t i = 1; i < inv.size(); ++i)
            EXPECT_LT(inv[i], inv[i - 1]) << head_dim << " " << i;
    }
}

TEST(RopeFrequencies, RejectsOddOrEmptyHeads) {
    for (int head_dim : {0, -4, 7}) {
        try {
            rope_inverse_frequencies(default_rope(10000.0), head_dim);
            ADD_FAILURE() << "head_dim " << head_dim << " accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), TDM_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find(std::to_string(head_dim)), std::string::npos);
        }
    }
}

TEST(RopeFrequencies, AttentionScalingIsOneForSupportedTypes) {
    EXPECT_EQ(rope_attention_scaling(default_rope(10000.0)), 1.0f);
    EXPECT_EQ(rope_attention_scaling(llama3_rope(5e5, 8, 1, 4, 8192)), 1.0f);
}

}  // namespace
}  // namespace tdm
