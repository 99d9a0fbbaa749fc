// Writes a Hugging Face model folder (config.json + model.safetensors) of random Llama weights,
// for benchmarks: the same seed gives the same bytes.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace tdm::bench {

struct LlamaShape {
    int64_t dim = 768, layers = 12, heads = 12, kv_heads = 4, head_dim = 64, ffn = 2048;
    int64_t vocab = 32000, context = 2048;
};

// Weights ~ normal(0, 0.02) rounded through f16 (so every dtype holds the same values), norms 1.
// Does nothing if `folder` already holds a model written with the same shape, dtype and seed.
void write_random_llama(const std::string& folder, const LlamaShape& shape, DType dtype,
                        uint64_t seed);

}  // namespace tdm::bench
