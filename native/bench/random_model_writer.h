// Writes a Hugging Face model folder (config.json + model.safetensors) of random Llama weights,
// for benchmarks: the same seed gives the same bytes.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace tdm::bench {

// The defaults are the 125M-parameter shape of the CPU benchmark.
struct LlamaShape {
    int64_t dim = 768, layers = 12, heads = 12, kv_heads = 4, head_dim = 64, ffn = 2048;
    int64_t vocab = 32000, context = 2048;
    bool tied_embeddings = false;  // true: no lm_head tensor, config sets tie_word_embeddings
    double rope_theta = 10000.0;
};

// How the random values are drawn.
//   Sequential: one generator stream over the whole file, in tensor order (the CPU benchmark's
//               models; one thread, about 20 ns a value).
//   Blocked:    an independent stream for every block of 2^20 values, seeded from (seed, tensor,
//               block) and filled by all hardware threads. The bytes depend only on the seed, not
//               on the machine's core count, and a multi-GB model (the 8B shape: 8 billion values)
//               is written in seconds rather than minutes. Not the same bytes as Sequential.
enum class RandomStream { Sequential, Blocked };

// Weights ~ normal(0, 0.02) rounded through f16 (so every dtype holds the same values), norms 1.
// Does nothing if `folder` already holds a model written with the same shape, dtype, seed and
// stream.
void write_random_llama(const std::string& folder, const LlamaShape& shape, DType dtype,
                        uint64_t seed, RandomStream stream = RandomStream::Sequential);

}  // namespace tdm::bench
