#include "random_model_writer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

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
    if (!s.tied_embeddings) p.push_back({"lm_head.weight", s.vocab, s.dim, false});
    return p;
}

const char* st_dtype(DType t) {
    return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16";
}

// Stores value v (already rounded through f16) as element i of `dst` in `dtype`.
inline void store(uint8_t* dst, int64_t i, float v, DType dtype) {
    if (dtype == DType::F32) {
        std::memcpy(dst + 4 * i, &v, 4);
    } else {
        const uint16_t b = dtype == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(dst + 2 * i, &b, 2);
    }
}

// splitmix64's finaliser: decorrelates the per-block seeds of RandomStream::Blocked.
uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

constexpr int64_t kBlockValues = int64_t(1) << 20;

// Fills `dst` with `count` values of tensor number `tensor` from independent per-block streams,
// on every hardware thread (blocks are handed out through an atomic counter).
void fill_blocked(uint8_t* dst, int64_t count, DType dtype, uint64_t seed, uint64_t tensor) {
    const int64_t blocks = (count + kBlockValues - 1) / kBlockValues;
    std::atomic<int64_t> next{0};
    auto worker = [&] {
        for (int64_t b = next++; b < blocks; b = next++) {
            std::mt19937_64 rng(mix64(seed ^ mix64((tensor << 32) + uint64_t(b))));
            std::normal_distribution<float> normal(0.0f, 0.02f);
            const int64_t end = std::min(count, (b + 1) * kBlockValues);
            for (int64_t i = b * kBlockValues; i < end; ++i)
                store(dst, i, f16_to_f32(f32_to_f16(normal(rng))), dtype);
        }
    };
    const int64_t threads =
        std::min<int64_t>(blocks, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
}

}  // namespace

void write_random_llama(const std::string& folder, const LlamaShape& s, DType dtype,
                        uint64_t seed, RandomStream stream) {
    namespace fs = std::filesystem;
    // Everything that changes the bytes is in the stamp.
    std::string stamp = std::to_string(seed) + "/" + st_dtype(dtype) + "/" +
                        std::to_string(s.dim) + "x" + std::to_string(s.layers);
    for (int64_t v : {s.heads, s.kv_heads, s.head_dim, s.ffn, s.vocab, s.context})
        stamp += "/" + std::to_string(v);
    stamp += "/theta" + std::to_string(s.rope_theta);
    if (s.tied_embeddings) stamp += "/tied";
    if (stream == RandomStream::Blocked) stamp += "/blocked";
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
        {"rms_norm_eps", 1e-5}, {"rope_theta", s.rope_theta}, {"hidden_act", "silu"},
        {"tie_word_embeddings", s.tied_embeddings}, {"bos_token_id", 1}, {"eos_token_id", 2},
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
        for (size_t ti = 0; ti < tensors.size(); ++ti) {
            const auto& t = tensors[ti];
            const int64_t count = t.rows * t.cols;
            buf.resize(size_t(count) * dtype_size(dtype));
            if (t.norm) {
                for (int64_t i = 0; i < count; ++i) store(buf.data(), i, 1.0f, dtype);
            } else if (stream == RandomStream::Blocked) {
                fill_blocked(buf.data(), count, dtype, seed, uint64_t(ti));
            } else {
                for (int64_t i = 0; i < count; ++i)
                    store(buf.data(), i, f16_to_f32(f32_to_f16(normal(rng))), dtype);
            }
            out.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
        }
        TDM_REQUIRE(out.good(), TDM_ERR_IO, "could not write " + tmp.string());
    }
    fs::rename(tmp, dir / "model.safetensors");
    std::ofstream(dir / "STAMP") << stamp << "\n";
}

}  // namespace tdm::bench
