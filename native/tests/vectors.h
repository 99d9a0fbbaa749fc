// Reads the language-neutral test vectors in tests/vectors/ (schemas: tests/vectors/README.md and
// the docstring of tools/make_vectors.py, which writes them). The C# suites read the same files.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tdm::test {

// tests/vectors/ of the source tree: $TANDEM_SOURCE_DIR (ctest sets it) or the compile-time
// TANDEM_SOURCE_DIR (a test binary run by hand).
inline std::filesystem::path vectors_dir() {
    const char* env = std::getenv("TANDEM_SOURCE_DIR");
    const std::filesystem::path root = (env != nullptr && *env != '\0') ? env : TANDEM_SOURCE_DIR;
    return root / "tests" / "vectors";
}

inline nlohmann::json load_vectors(const std::string& file) {
    const std::filesystem::path path = vectors_dir() / file;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open test vectors " + path.string());
    return nlohmann::json::parse(in);
}

// A float32 input: a JSON number (parsed as double, exactly a float32 value) or "-inf".
inline float json_float(const nlohmann::json& v) {
    if (v.is_string()) {
        if (v.get<std::string>() == "-inf") return -std::numeric_limits<float>::infinity();
        throw std::runtime_error("unexpected string in test vectors: " + v.dump());
    }
    return static_cast<float>(v.get<double>());
}

inline std::vector<float> json_floats(const nlohmann::json& array) {
    std::vector<float> out;
    out.reserve(array.size());
    for (const auto& v : array) out.push_back(json_float(v));
    return out;
}

// The "lcg" generator: four 64-bit LCG steps per logit, an Irwin-Hall bell scaled by `scale`.
inline std::vector<float> lcg_logits(uint64_t seed, int64_t vocab, double scale) {
    std::vector<float> out(static_cast<size_t>(vocab));
    uint64_t state = seed;
    for (float& logit : out) {
        double x = 0.0;
        for (int j = 0; j < 4; ++j) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            x += static_cast<double>(state >> 11) * 0x1.0p-53;
        }
        logit = static_cast<float>((x - 2.0) * scale);
    }
    return out;
}

// The logit vector of a case: literal "logits" or a "generator" spec.
inline std::vector<float> case_logits(const nlohmann::json& c) {
    if (c.contains("logits")) return json_floats(c.at("logits"));
    const auto& g = c.at("generator");
    if (g.at("kind").get<std::string>() != "lcg")
        throw std::runtime_error("unknown generator kind " + g.at("kind").dump());
    return lcg_logits(g.at("seed").get<uint64_t>(), g.at("vocab").get<int64_t>(),
                      g.at("scale").get<double>());
}

inline uint64_t parse_hex64(const std::string& hex) { return std::stoull(hex, nullptr, 16); }

// |got - want| <= abs + rel * |want|, the comparison every "tolerance" in the files means.
inline bool within(double got, double want, double rel, double abs) {
    return std::abs(got - want) <= abs + rel * std::abs(want);
}

}  // namespace tdm::test
