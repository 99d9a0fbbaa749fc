#include "model/rope_frequencies.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tdm {

namespace {

// transformers builds the table with float32 torch tensors on the CPU, and every Python scalar in
// those expressions (theta, 2*pi, factor, ...) is cast to float32 before it meets a tensor. Each
// helper below is one such tensor operation: the exact result rounded once to float32. Doing the
// arithmetic in double and then rounding gives exactly that for + - * /, because a double carries
// more than 2*24+2 bits (so no double rounding), and the explicit rounding after every step also
// keeps the compiler from fusing a multiply and an add into an FMA, which torch does not do here.
float f32(double x) { return static_cast<float>(x); }
float f32_add(float a, float b) { return f32(double(a) + double(b)); }
float f32_sub(float a, float b) { return f32(double(a) - double(b)); }
float f32_mul(float a, float b) { return f32(double(a) * double(b)); }
float f32_div(float a, float b) { return f32(double(a) / double(b)); }

// torch's float32 pow (Sleef_powf_u10 in vector lanes, powf in the scalar tail) is within one
// float32 ulp of the exact value and in practice correctly rounded. pow in double, rounded once,
// is the correctly rounded value except when the exact result lies within 2^-29 (relative) of the
// midpoint between two floats, so it agrees with torch wherever torch itself is correctly rounded.
float f32_pow(float base, float exponent) { return f32(std::pow(double(base), double(exponent))); }

// _compute_default_rope_parameters:
//   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
// The int64 arange becomes float32 (exact), is divided by dim in float32, raised to a float32 base,
// and `1.0 / t` is torch's reciprocal, a float32 division.
std::vector<float> default_inverse_frequencies(double theta, int head_dim) {
    const float base = f32(theta);
    const float dim = f32(head_dim);
    std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
    for (size_t i = 0; i < inv_freq.size(); ++i) {
        const float exponent = f32_div(f32(2.0 * double(i)), dim);
        inv_freq[i] = f32_div(1.0f, f32_pow(base, exponent));
    }
    return inv_freq;
}

// _compute_llama3_parameters, one element at a time, with torch's evaluation order:
//   wavelen = 2 * math.pi / inv_freq            -> reciprocal(inv_freq) * f32(2*pi)
//   old_context_len / wavelen                   -> reciprocal(wavelen) * f32(old)
//   (... - low) / (high - low)                  -> the Python difference (high - low) in double,
//                                                  then cast to float32
//   comparisons against old/low and old/high    -> the Python quotients cast to float32
void apply_llama3_scaling(const RopeConfig& rope, std::vector<float>& inv_freq) {
    const double old_context = double(rope.original_max_position_embeddings);
    const float factor = f32(rope.factor);
    const float low = f32(rope.low_freq_factor);
    const float old_f = f32(old_context);
    const float low_freq_wavelen = f32(old_context / rope.low_freq_factor);
    const float high_freq_wavelen = f32(old_context / rope.high_freq_factor);
    const float band = f32(rope.high_freq_factor - rope.low_freq_factor);
    const float two_pi = f32(2.0 * std::numbers::pi);

    for (float& f : inv_freq) {
        const float wavelen = f32_mul(f32_div(1.0f, f), two_pi);
        // Low frequencies (long wavelengths) are interpolated: divided by the factor.
        const float scaled = wavelen > low_freq_wavelen ? f32_div(f, factor) : f;
        const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        if (!medium) {
            f = scaled;
            continue;
        }
        // Medium frequencies blend the two: s = 0 at the low edge, 1 at the high edge.
        const float smooth = f32_div(f32_sub(f32_mul(f32_div(1.0f, wavelen), old_f), low), band);
        const float interpolated = f32_div(f32_mul(f32_sub(1.0f, smooth), scaled), factor);
        f = f32_add(interpolated, f32_mul(smooth, scaled));
    }
}

}  // namespace

std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, int head_dim) {
    TDM_REQUIRE(head_dim > 0 && head_dim % 2 == 0, TDM_ERR_INVALID_ARGUMENT,
                "RoPE needs a positive, even head_dim, got " + std::to_string(head_dim));
    std::vector<float> inv_freq = default_inverse_frequencies(rope.theta, head_dim);
    switch (rope.type) {
        case RopeType::Default: break;
        case RopeType::Llama3: apply_llama3_scaling(rope, inv_freq); break;
    }
    return inv_freq;
}

float rope_attention_scaling(const RopeConfig& rope) {
    switch (rope.type) {
        case RopeType::Default:
        case RopeType::Llama3: return 1.0f;
    }
    return 1.0f;
}

}  // namespace tdm
