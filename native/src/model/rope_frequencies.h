// The RoPE frequency table: the angle of pair i at position p is p * inv_freq[i].
#pragma once

#include <vector>

#include "io/model_config.h"

namespace tdm {

// inv_freq[i] for i in [0, head_dim / 2), bit-for-bit what transformers' ROPE_INIT_FUNCTIONS
// compute on the CPU in float32 (see the .cpp for how each rounding is reproduced):
//   default: inv_freq[i] = 1 / theta^(2i / head_dim)
//   llama3:  the default table, then with wavelen = 2*pi / inv_freq and
//            old = original_max_position_embeddings:
//              wavelen < old / high_freq_factor  -> kept (high frequencies)
//              wavelen > old / low_freq_factor   -> divided by factor (low frequencies)
//              otherwise, with s = (old / wavelen - low_freq_factor) /
//                                  (high_freq_factor - low_freq_factor):
//                                  (1 - s) * inv_freq / factor + s * inv_freq
// head_dim must be even and positive (TDM_ERR_INVALID_ARGUMENT otherwise).
std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, int head_dim);

// The factor transformers multiplies cos and sin by ("attention_scaling"): 1 for default and
// llama3 RoPE (only YaRN and LongRoPE, not supported, change it). Kept as a function so that the
// forward pass applies it at the one place a future rope type would need it.
float rope_attention_scaling(const RopeConfig& rope);

}  // namespace tdm
