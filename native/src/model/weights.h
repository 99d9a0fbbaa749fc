// The weights of a Llama-family decoder, as views into memory the model owns (a memory-mapped
// safetensors file, or buffers converted/uploaded at load). Shapes use Hugging Face's layout:
// a Linear weight is [out_features, in_features].
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tdm {

struct LayerWeights {
    VectorView attn_norm;   // (hidden)                 input_layernorm
    MatrixView wq;          // (heads * head_dim, hidden)
    MatrixView wk;          // (kv_heads * head_dim, hidden)
    MatrixView wv;          // (kv_heads * head_dim, hidden)
    MatrixView wo;          // (hidden, heads * head_dim)
    VectorView bq, bk, bv;  // q/k/v biases (Qwen2, Llama attention_bias), else empty
    VectorView bo;          // o bias (Llama attention_bias), else empty
    VectorView mlp_norm;    // (hidden)                 post_attention_layernorm
    MatrixView w_gate;      // (intermediate, hidden)
    MatrixView w_up;        // (intermediate, hidden)
    MatrixView w_down;      // (hidden, intermediate)
    VectorView b_gate, b_up, b_down;  // Llama mlp_bias, else empty
};

struct ModelWeights {
    MatrixView embed;                 // (vocab, hidden)        model.embed_tokens
    std::vector<LayerWeights> layers;
    VectorView final_norm;            // (hidden)               model.norm
    MatrixView lm_head;               // (vocab, hidden); the embedding itself when tied
};

}  // namespace tdm
