// The hyperparameters of a Llama-family model, read from a Hugging Face model folder's
// config.json (and generation_config.json when present).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tdm {

// The architectures the engine runs. All three share one forward pass: pre-norm decoder blocks of
// RMSNorm -> GQA attention with RoPE -> RMSNorm -> SwiGLU MLP. They differ only in biases and
// sliding-window attention, which ModelConfig spells out per model.
enum class Arch { Llama, Qwen2, Mistral };

// "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM".
const char* arch_name(Arch arch);

// How RoPE frequencies are derived (transformers' ROPE_INIT_FUNCTIONS keys).
enum class RopeType {
    Default,  // inv_freq[i] = 1 / theta^(2i / head_dim)
    Llama3,   // Llama 3.1 long-context rescaling of the low and medium frequencies
};

const char* rope_type_name(RopeType type);  // "default", "llama3"

struct RopeConfig {
    RopeType type = RopeType::Default;
    double theta = 10000.0;  // the base ("rope_theta")
    // Llama3 only (transformers' rope_scaling / rope_parameters keys of the same names):
    double factor = 1.0;                           // low frequencies are divided by this
    double low_freq_factor = 1.0;                  // wavelengths above old_ctx / low are scaled
    double high_freq_factor = 4.0;                 // wavelengths below old_ctx / high are kept
    int64_t original_max_position_embeddings = 0;  // old_ctx: the pre-extension context length

    bool operator==(const RopeConfig&) const = default;
};

struct ModelConfig {
    Arch arch = Arch::Llama;
    std::string model_type;  // "llama", "qwen2", "mistral" (informational)
    std::string dtype;       // "torch_dtype" / "dtype", e.g. "bfloat16" (informational)

    int64_t hidden_size = 0;        // d_model
    int64_t intermediate_size = 0;  // MLP width
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;  // GQA groups; equal to num_attention_heads when absent
    int64_t head_dim = 0;             // explicit "head_dim", else hidden_size / num_attention_heads
    int64_t vocab_size = 0;
    int64_t max_position_embeddings = 0;
    double rms_norm_eps = 0.0;

    bool tie_word_embeddings = false;  // lm_head shares model.embed_tokens.weight
    // Biases of the attention projections: Llama's "attention_bias" sets all four; Qwen2 always
    // has q/k/v biases and no o bias; Mistral has none.
    bool qkv_bias = false;
    bool o_bias = false;
    bool mlp_bias = false;  // gate/up/down biases (Llama's "mlp_bias")

    // Sliding-window attention: 0 = every layer attends to the whole causal prefix. Otherwise a
    // query at position i sees keys j with i - sliding_window < j <= i (transformers' sliding
    // window mask), on the layers where layer_sliding[l] is true: every layer for Mistral; for
    // Qwen2 (only with "use_sliding_window": true) the layers from "max_window_layers" on, or
    // those "layer_types" marks "sliding_attention". Llama never slides.
    int64_t sliding_window = 0;
    std::vector<bool> layer_sliding;  // one entry per layer

    RopeConfig rope;

    std::optional<int32_t> bos_token_id;
    // Generation stops at any of these: config.json's eos_token_id (int or list) followed by
    // generation_config.json's, first occurrence order, no duplicates.
    std::vector<int32_t> eos_token_ids;

    // The window of layer `layer` (0 when it attends to everything).
    int64_t window_for_layer(int64_t layer) const {
        return layer_sliding.at(static_cast<size_t>(layer)) ? sliding_window : 0;
    }
    int64_t kv_dim() const { return num_key_value_heads * head_dim; }
    int64_t q_dim() const { return num_attention_heads * head_dim; }

    bool operator==(const ModelConfig&) const = default;
};

// Reads <folder>/config.json and, when present, <folder>/generation_config.json.
//
// RoPE is read in both spellings found in the wild:
//  - transformers 4.x: top-level "rope_theta" (default 10000) and optional "rope_scaling"
//    {"rope_type" or "type", "factor", "low_freq_factor", "high_freq_factor",
//     "original_max_position_embeddings"};
//  - transformers 5.x: "rope_parameters" {"rope_type", "rope_theta", same scaling keys}.
// Unknown fields are ignored.
//
// Errors (tdm::Error), each message naming the file and the field:
//  - TDM_ERR_NOT_FOUND: the folder or its config.json does not exist;
//  - TDM_ERR_IO: a file exists but cannot be read;
//  - TDM_ERR_INVALID_MODEL: malformed JSON, a required field missing or of the wrong type
//    (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size,
//    max_position_embeddings, rms_norm_eps; architectures (or model_type)), or inconsistent
//    values (a size <= 0, heads not a multiple of kv heads, an odd head_dim, ...);
//  - TDM_ERR_UNSUPPORTED: an architecture other than the three above (the message lists them),
//    a hidden_act other than "silu", a rope type other than default/llama3 (named), a
//    partial_rotary_factor other than 1, a layer type other than full/sliding attention.
ModelConfig parse_model_config(const std::string& folder);

}  // namespace tdm
