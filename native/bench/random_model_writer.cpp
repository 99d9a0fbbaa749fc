#include "random_model_writer.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

namespace tdm::bench {

namespace {

struct Planned {
    std::string name;
    int64_t rows, cols;
    bool norm;
};

std::vector<Planned> plan(const LlamaShape& s) {
    std::vector<Planned> p = {{"model.embed_tokens.weight", s.vocab, s.dim, false}};
    for (int64_t l = 0; l < s.layers; ++l) {
        std::string q = "model.layers." + std::to_string(l) + ".";
        p.push_back({q + "input_layernorm.weight", 1, s.dim, true});
        p.push_back({q + "self_attn.q_proj.weight", s.heads * s.head_dim, s.dim, false});
        p.push_back({q + "self_attn.k_proj.weight", s.kv_heads * s.head_dim, s.dim, false});
        p.push_back({q + "self_attn.v_proj.weight", s.kv_heads * s.head_dim, s.dim, false});
        p.push_back({q + "self_attn.o_proj.weight", s.dim, s.heads * s.head_dim, false});
        p.push_back({q + "post_attention_layernorm.weight", 1, s.dim, true});
        p.push_back({q + "mlp.gate_proj.weight", s.ffn, s.dim, false});
        p.push_back({q + "mlp.up_proj.weight", s.ffn, s.dim, false});
        p.push_back({q + "mlp.down_proj.weight", s.dim, s.ffn, false});
    }
    p.push_back({"model.norm.weight", 1, s.dim, true});
    p.push_back({"lm_head.weight", s.vocab, s.dim, false});
    return p;
}

const char* st_dtype(DType t) {
    return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16";
}

}  // namespace

void write_random_llama(const std::string& folder, const LlamaShape& s, DType dtype,
                        uint64_t seed) {
    namespace fs = std::filesystem;
    const std::string stamp = std::to_string(seed) + "/" + st_dtype(dtype) + "/" +
                              std::to_string(s.dim) + "x" + std::to_string(s.layers);
    const fs::path dir(folder);
    {
        std::ifstream in(dir / "STAMP");
        std::string existing;
        if (in && std::getline(in, existing) && existing == stamp &&
            fs::exists(dir / "model.safetensors"))
            return;
    }
    fs::create_directories(dir);

    nlohmann::json config = {
        {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
        {"hidden_size", s.dim}, {"intermediate_size", s.ffn}, {"num_hidden_layers", s.layers},
        {"num_attention_heads", s.heads}, {"num_key_value_heads", s.kv_heads},
        {"head_dim", s.head_dim}, {"vocab_size", s.vocab}, {"max_position_embeddings", s.context},
        {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"hidden_act", "silu"},
        {"tie_word_embeddings", false}, {"bos_token_id", 1}, {"eos_token_id", 2},
        {"torch_dtype", dtype_name(dtype)}};
    std::ofstream(dir / "config.json") << config.dump(2);

    const auto tensors = plan(s);
    nlohmann::json header = nlohmann::json::object();
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        uint64_t bytes = uint64_t(t.rows * t.cols) * dtype_size(dtype);
        std::vector<int64_t> shape = t.norm ? std::vector<int64_t>{t.cols}
                                            : std::vector<int64_t>{t.rows, t.cols};
        header[t.name] = {{"dtype", st_dtype(dtype)}, {"shape", shape},
                          {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string h = header.dump();
    while (h.size() % 8 != 0) h += ' ';
    const fs::path tmp = dir / "model.safetensors.tmp";
    {
        std::ofstream out(tmp, std::ios::binary);
        uint64_t n = h.size();
        out.write(reinterpret_cast<const char*>(&n), 8);
        out.write(h.data(), std::streamsize(h.size()));
        std::mt19937_64 rng(seed);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        std::vector<uint8_t> buf;
        for (const auto& t : tensors) {
            const int64_t count = t.rows * t.cols;
            buf.resize(size_t(count) * dtype_size(dtype));
            for (int64_t i = 0; i < count; ++i) {
                float v = t.norm ? 1.0f : f16_to_f32(f32_to_f16(normal(rng)));
                if (dtype == DType::F32) {
                    std::memcpy(buf.data() + 4 * i, &v, 4);
                } else {
                    uint16_t b = dtype == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
                    std::memcpy(buf.data() + 2 * i, &b, 2);
                }
            }
            out.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
        }
    }
    fs::rename(tmp, dir / "model.safetensors");
    std::ofstream(dir / "STAMP") << stamp << "\n";
}

}  // namespace tdm::bench
