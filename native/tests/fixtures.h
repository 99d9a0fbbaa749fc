// Access to the golden fixtures in tests/fixtures/<name>/ (written by tools/make_fixtures.py with
// Hugging Face transformers): golden.json (token ids, greedy continuations) and golden.safetensors
// (float32 logits as transformers computed them).
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tdm::testing {

inline std::string source_dir() {
    if (const char* env = std::getenv("TANDEM_SOURCE_DIR")) return env;
#ifdef TANDEM_SOURCE_DIR
    return TANDEM_SOURCE_DIR;
#else
    return ".";
#endif
}

inline std::string fixture_dir(const std::string& name) {
    return source_dir() + "/tests/fixtures/" + name;
}

inline nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return nlohmann::json::parse(in);
}

// Every fixture model folder, as the fixture script names them.
inline const std::vector<std::string>& fixture_names() {
    static const std::vector<std::string> names = {
        "llama-f32", "llama-bf16", "qwen2-tied-f32", "mistral-swa-f32",
        "llama3-sharded-bf16", "llama-spm-f32", "long-llama-bf16"};
    return names;
}

// log_softmax of one row, in double.
inline std::vector<double> log_softmax(const float* z, size_t n) {
    double m = -INFINITY;
    for (size_t i = 0; i < n; ++i) m = std::max(m, double(z[i]));
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += std::exp(double(z[i]) - m);
    const double lse = m + std::log(s);
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = double(z[i]) - lse;
    return out;
}

}  // namespace tdm::testing
