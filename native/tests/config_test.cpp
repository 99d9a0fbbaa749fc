// config.json / generation_config.json parsing for the Llama family: the values and defaults of
// each architecture, both RoPE spellings (transformers 4.x and 5.x), the eos union, and every
// malformed or unsupported config with its status and a message naming the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "io_test_support.h"

namespace tdm {
namespace {

namespace fs = std::filesystem;
using io_test::expect_error;
using io_test::ScratchDir;
using io_test::write_file;
using nlohmann::json;

// A Llama config as transformers 4.x writes it for a tiny model.
json llama_config() {
    return {
        {"architectures", {"LlamaForCausalLM"}},
        {"model_type", "llama"},
        {"hidden_size", 64},
        {"intermediate_size", 172},
        {"num_hidden_layers", 3},
        {"num_attention_heads", 4},
        {"num_key_value_heads", 2},
        {"head_dim", 16},
        {"vocab_size", 301},
        {"max_position_embeddings", 512},
        {"rms_norm_eps", 1e-6},
        {"hidden_act", "silu"},
        {"rope_theta", 10000.0},
        {"rope_scaling", nullptr},
        {"tie_word_embeddings", false},
        {"attention_bias", false},
        {"attention_dropout", 0.0},
        {"mlp_bias", false},
        {"pretraining_tp", 1},
        {"initializer_range", 0.02},
        {"use_cache", true},
        {"bos_token_id", 1},
        {"eos_token_id", 2},
        {"torch_dtype", "float32"},
        {"transformers_version", "4.46.0"},
    };
}

// Writes config.json (and generation_config.json unless null) into `dir`, then parses.
ModelConfig parse(const std::string& dir, const json& config, const json& generation = nullptr) {
    write_file(dir + "/config.json", config.dump(2));
    if (!generation.is_null()) write_file(dir + "/generation_config.json", generation.dump(2));
    return parse_model_config(dir);
}

RopeConfig default_rope_10000() {
    RopeConfig r;
    r.theta = 10000.0;
    return r;
}

uint32_t fresh_seed() {
    const uint32_t seed = std::random_device{}();
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    return seed;
}

// ---------------------------------------------------------------------------------------------
// Good configs

TEST(ModelConfig, ReadsALlamaConfig) {
    const ScratchDir tmp;
    const ModelConfig c = parse(tmp.path(), llama_config());
    EXPECT_EQ(c.arch, Arch::Llama);
    EXPECT_STREQ(arch_name(c.arch), "LlamaForCausalLM");
    EXPECT_EQ(c.model_type, "llama");
    EXPECT_EQ(c.dtype, "float32");
    EXPECT_EQ(c.hidden_size, 64);
    EXPECT_EQ(c.intermediate_size, 172);
    EXPECT_EQ(c.num_hidden_layers, 3);
    EXPECT_EQ(c.num_attention_heads, 4);
    EXPECT_EQ(c.num_key_value_heads, 2);
    EXPECT_EQ(c.head_dim, 16);
    EXPECT_EQ(c.q_dim(), 64);
    EXPECT_EQ(c.kv_dim(), 32);
    EXPECT_EQ(c.vocab_size, 301);
    EXPECT_EQ(c.max_position_embeddings, 512);
    EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
    EXPECT_FALSE(c.tie_word_embeddings);
    EXPECT_FALSE(c.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_FALSE(c.mlp_bias);
    EXPECT_EQ(c.sliding_window, 0);
    EXPECT_EQ(c.layer_sliding, std::vector<bool>(3, false));
    EXPECT_EQ(c.window_for_layer(2), 0);
    EXPECT_EQ(c.rope.type, RopeType::Default);
    EXPECT_EQ(c.rope.theta, 10000.0);
    EXPECT_EQ(c.bos_token_id, std::optional<int32_t>(1));
    EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
}

TEST(ModelConfig, DefaultsOfOptionalFields) {
    const ScratchDir tmp;
    json config = {{"architectures", {"LlamaForCausalLM"}},
                   {"hidden_size", 96},
                   {"intermediate_size", 200},
                   {"num_hidden_layers", 2},
                   {"num_attention_heads", 6},
                   {"vocab_size", 50},
                   {"max_position_embeddings", 128},
                   {"rms_norm_eps", 1e-5},
                   {"head_dim", nullptr}};  // null means "derive it"
    const ModelConfig c = parse(tmp.path(), config);
    EXPECT_EQ(c.num_key_value_heads, 6);  // no GQA unless asked
    EXPECT_EQ(c.head_dim, 16);            // hidden / heads
    EXPECT_FALSE(c.tie_word_embeddings);
    EXPECT_EQ(c.rope.type, RopeType::Default);
    EXPECT_EQ(c.rope.theta, 10000.0);
    EXPECT_FALSE(c.bos_token_id.has_value());
    EXPECT_TRUE(c.eos_token_ids.empty());
    EXPECT_EQ(c.dtype, "");
}

TEST(ModelConfig, RandomSizesRoundTrip) {
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    auto pick = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    for (int trial = 0; trial < 20; ++trial) {
        const ScratchDir tmp;
        const int64_t kv = pick(1, 5);
        const int64_t heads = kv * pick(1, 4);
        const int64_t head_dim = 2 * pick(1, 40);
        const bool explicit_head_dim = trial % 2 == 0;
        json config = llama_config();
        config["num_key_value_heads"] = kv;
        config["num_attention_heads"] = heads;
        config["hidden_size"] = explicit_head_dim ? pick(1, 300) : heads * head_dim;
        if (explicit_head_dim) {
            config["head_dim"] = head_dim;
        } else {
            config.erase("head_dim");
        }
        config["intermediate_size"] = pick(1, 1000);
        config["num_hidden_layers"] = pick(1, 9);
        config["vocab_size"] = pick(1, 200000);
        config["max_position_embeddings"] = pick(1, 1 << 20);
        config["rope_theta"] = double(pick(1, 2000000)) + 0.25;
        const ModelConfig c = parse(tmp.path(), config);
        EXPECT_EQ(c.num_key_value_heads, kv);
        EXPECT_EQ(c.num_attention_heads, heads);
        EXPECT_EQ(c.head_dim, head_dim);
        EXPECT_EQ(c.hidden_size, config["hidden_size"].get<int64_t>());
        EXPECT_EQ(c.intermediate_size, config["intermediate_size"].get<int64_t>());
        EXPECT_EQ(c.num_hidden_layers, config["num_hidden_layers"].get<int64_t>());
        EXPECT_EQ(c.layer_sliding.size(), size_t(c.num_hidden_layers));
        EXPECT_EQ(c.vocab_size, config["vocab_size"].get<int64_t>());
        EXPECT_EQ(c.max_position_embeddings, config["max_position_embeddings"].get<int64_t>());
        EXPECT_EQ(c.rope.theta, config["rope_theta"].get<double>());
    }
}

TEST(ModelConfig, LlamaBiasesFollowTheFlags) {
    const ScratchDir tmp;
    json config = llama_config();
    config["attention_bias"] = true;
    config["mlp_bias"] = true;
    const ModelConfig c = parse(tmp.path(), config);
    EXPECT_TRUE(c.qkv_bias);
    EXPECT_TRUE(c.o_bias);
    EXPECT_TRUE(c.mlp_bias);
}

TEST(ModelConfig, LlamaNeverSlides) {
    const ScratchDir tmp;
    json config = llama_config();
    config["sliding_window"] = 64;
    config["use_sliding_window"] = true;
    const ModelConfig c = parse(tmp.path(), config);
    EXPECT_EQ(c.sliding_window, 0);
    EXPECT_EQ(c.layer_sliding, std::vector<bool>(3, false));
}

json qwen2_config() {
    json c = llama_config();
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["model_type"] = "qwen2";
    c["num_hidden_layers"] = 5;
    c.erase("head_dim");
    c.erase("attention_bias");
    c.erase("mlp_bias");
    c["tie_word_embeddings"] = true;
    c["use_sliding_window"] = false;
    c["sliding_window"] = 4096;
    c["max_window_layers"] = 2;
    return c;
}

TEST(ModelConfig, Qwen2HasQkvBiasAndSlidesOnlyWhenAsked) {
    const ScratchDir tmp;
    ModelConfig c = parse(tmp.path(), qwen2_config());
    EXPECT_EQ(c.arch, Arch::Qwen2);
    EXPECT_TRUE(c.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_FALSE(c.mlp_bias);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.sliding_window, 0);  // "sliding_window" is set, but use_sliding_window is false
    EXPECT_EQ(c.layer_sliding, std::vector<bool>(5, false));

    // With use_sliding_window, the layers from max_window_layers on slide.
    json config = qwen2_config();
    config["use_sliding_window"] = true;
    c = parse(tmp.path(), config);
    EXPECT_EQ(c.sliding_window, 4096);
    EXPECT_EQ(c.layer_sliding, (std::vector<bool>{false, false, true, true, true}));
    EXPECT_EQ(c.window_for_layer(1), 0);
    EXPECT_EQ(c.window_for_layer(4), 4096);

    // An explicit layer_types list (transformers >= 4.53 writes one) decides instead.
    config["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention",
                             "full_attention", "full_attention"};
    c = parse(tmp.path(), config);
    EXPECT_EQ(c.layer_sliding, (std::vector<bool>{true, false, true, false, false}));
}

TEST(ModelConfig, MistralSlidesEveryLayerWhenTheWindowIsSet) {
    const ScratchDir tmp;
    json config = llama_config();
    config["architectures"] = {"MistralForCausalLM"};
    config["model_type"] = "mistral";
    config["sliding_window"] = 32;
    config["head_dim"] = 24;  // explicit, unlike hidden / heads = 16
    ModelConfig c = parse(tmp.path(), config);
    EXPECT_EQ(c.arch, Arch::Mistral);
    EXPECT_EQ(c.head_dim, 24);
    EXPECT_EQ(c.q_dim(), 96);
    EXPECT_FALSE(c.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_EQ(c.sliding_window, 32);
    EXPECT_EQ(c.layer_sliding, std::vector<bool>(3, true));

    config["sliding_window"] = nullptr;
    c = parse(tmp.path(), config);
    EXPECT_EQ(c.sliding_window, 0);
    EXPECT_EQ(c.layer_sliding, std::vector<bool>(3, false));
}

TEST(ModelConfig, ModelTypeStandsInForMissingArchitectures) {
    const ScratchDir tmp;
    json config = qwen2_config();
    config.erase("architectures");
    EXPECT_EQ(parse(tmp.path(), config).arch, Arch::Qwen2);
}

// The same Llama 3.1-style RoPE, spelled every way transformers has written it.
TEST(ModelConfig, BothRopeSpellingsGiveIdenticalConfigs) {
    const json scaling = {{"factor", 8.0},
                          {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 64}};
    std::vector<json> spellings;

    json v4 = llama_config();  // transformers 4.43+: "rope_type" inside rope_scaling
    v4["rope_theta"] = 500000.0;
    v4["rope_scaling"] = scaling;
    v4["rope_scaling"]["rope_type"] = "llama3";
    spellings.push_back(v4);

    json v4_legacy = v4;  // the "type" key older checkpoints carry
    v4_legacy["rope_scaling"].erase("rope_type");
    v4_legacy["rope_scaling"]["type"] = "llama3";
    spellings.push_back(v4_legacy);

    json v5 = llama_config();  // transformers 5.x: everything in rope_parameters, "dtype"
    v5.erase("rope_theta");
    v5.erase("rope_scaling");
    v5.erase("torch_dtype");
    v5["dtype"] = "float32";
    v5["rope_parameters"] = scaling;
    v5["rope_parameters"]["rope_type"] = "llama3";
    v5["rope_parameters"]["rope_theta"] = 500000.0;
    spellings.push_back(v5);

    json v5_top_level_theta = v5;  // theta left at the top level, the rest in rope_parameters
    v5_top_level_theta["rope_parameters"].erase("rope_theta");
    v5_top_level_theta["rope_theta"] = 500000.0;
    spellings.push_back(v5_top_level_theta);

    json v5_per_layer_type = v5;  // 5.x nests one dict per layer type when layer_types exist
    v5_per_layer_type["layer_types"] = {"full_attention", "full_attention", "full_attention"};
    v5_per_layer_type["rope_parameters"] = {{"full_attention", v5["rope_parameters"]}};
    spellings.push_back(v5_per_layer_type);

    const ScratchDir tmp;
    const ModelConfig reference = parse(tmp.path(), spellings[0]);
    EXPECT_EQ(reference.rope.type, RopeType::Llama3);
    EXPECT_EQ(reference.rope.theta, 500000.0);
    EXPECT_EQ(reference.rope.factor, 8.0);
    EXPECT_EQ(reference.rope.low_freq_factor, 1.0);
    EXPECT_EQ(reference.rope.high_freq_factor, 4.0);
    EXPECT_EQ(reference.rope.original_max_position_embeddings, 64);
    for (size_t i = 1; i < spellings.size(); ++i) {
        SCOPED_TRACE(spellings[i].dump());
        EXPECT_EQ(parse(tmp.path(), spellings[i]), reference);
    }

    // Default RoPE: a bare rope_theta, a {"rope_type": "default"} dict and rope_parameters agree.
    json plain4 = llama_config();
    plain4["rope_theta"] = 1e6;
    json typed4 = plain4;
    typed4["rope_scaling"] = {{"rope_type", "default"}};
    json plain5 = llama_config();
    plain5.erase("rope_theta");
    plain5.erase("rope_scaling");
    plain5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
    const ModelConfig d = parse(tmp.path(), plain4);
    EXPECT_EQ(d.rope.type, RopeType::Default);
    EXPECT_EQ(d.rope.theta, 1e6);
    EXPECT_EQ(parse(tmp.path(), typed4), d);
    EXPECT_EQ(parse(tmp.path(), plain5), d);
}

TEST(ModelConfig, Llama3OriginalContextFallsBackLikeTransformers5) {
    const ScratchDir tmp;
    json config = llama_config();
    config["rope_parameters"] = {{"rope_type", "llama3"},
                                 {"rope_theta", 500000.0},
                                 {"factor", 8.0},
                                 {"low_freq_factor", 1.0},
                                 {"high_freq_factor", 4.0}};
    EXPECT_EQ(parse(tmp.path(), config).rope.original_max_position_embeddings, 512);
    config["original_max_position_embeddings"] = 128;
    EXPECT_EQ(parse(tmp.path(), config).rope.original_max_position_embeddings, 128);
}

TEST(ModelConfig, EosIdsAreTheUnionWithGenerationConfig) {
    const ScratchDir tmp;
    json config = llama_config();

    config["eos_token_id"] = {128001, 128009};
    ModelConfig c = parse(tmp.path(), config, {{"eos_token_id", {128009, 128008, 128001, 5}}});
    EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{128001, 128009, 128008, 5}));

    config["eos_token_id"] = 7;
    c = parse(tmp.path(), config, {{"eos_token_id", 9}, {"bos_token_id", 4}});
    EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{7, 9}));
    EXPECT_EQ(c.bos_token_id, std::optional<int32_t>(1));  // config.json wins for bos

    config.erase("eos_token_id");
    config.erase("bos_token_id");
    c = parse(tmp.path(), config,
              {{"eos_token_id", {3, 3}}, {"bos_token_id", 4}, {"temperature", 0.6}});
    EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{3});
    EXPECT_EQ(c.bos_token_id, std::optional<int32_t>(4));  // taken from generation_config.json

    fs::remove(tmp.path() + "/generation_config.json");
    config["eos_token_id"] = {2, 2};
    c = parse(tmp.path(), config);
    EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
}

// Verbatim config.json files as transformers 5.17.0 writes them from a bare config object (so
// without "architectures"): RoPE only in "rope_parameters", null token ids, and an explicit
// "layer_types" for Qwen2's sliding layers.
TEST(ModelConfig, ReadsConfigsAsTransformers5WritesThem) {
    const ScratchDir tmp;
    const std::string llama3 = R"({
  "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
  "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
  "intermediate_size": 128, "max_position_embeddings": 256, "mlp_bias": false,
  "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 3,
  "num_key_value_heads": 2, "pad_token_id": null, "pretraining_tp": 1, "rms_norm_eps": 1e-06,
  "rope_parameters": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 64, "rope_theta": 500000.0,
                      "rope_type": "llama3"},
  "tie_word_embeddings": false, "transformers_version": "5.17.0", "use_cache": true,
  "vocab_size": 300})";
    write_file(tmp.path() + "/config.json", llama3);
    ModelConfig c = parse_model_config(tmp.path());
    EXPECT_EQ(c.arch, Arch::Llama);
    EXPECT_EQ(c.rope, (RopeConfig{RopeType::Llama3, 500000.0, 8.0, 1.0, 4.0, 64}));
    EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});

    const std::string qwen2 = R"({
  "attention_dropout": 0.0, "bos_token_id": null, "eos_token_id": null, "hidden_act": "silu",
  "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128,
  "layer_types": ["full_attention", "sliding_attention", "sliding_attention"],
  "max_position_embeddings": 256, "max_window_layers": 1, "model_type": "qwen2",
  "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2,
  "pad_token_id": null, "rms_norm_eps": 1e-06,
  "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
  "sliding_window": 32, "tie_word_embeddings": true, "transformers_version": "5.17.0",
  "use_cache": true, "use_sliding_window": true, "vocab_size": 300})";
    write_file(tmp.path() + "/config.json", qwen2);
    c = parse_model_config(tmp.path());
    EXPECT_EQ(c.arch, Arch::Qwen2);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.head_dim, 16);
    EXPECT_EQ(c.sliding_window, 32);
    EXPECT_EQ(c.layer_sliding, (std::vector<bool>{false, true, true}));
    EXPECT_EQ(c.rope, default_rope_10000());
    EXPECT_FALSE(c.bos_token_id.has_value());
    EXPECT_TRUE(c.eos_token_ids.empty());
}

// ---------------------------------------------------------------------------------------------
// Missing and malformed configs

TEST(ModelConfigErrors, MissingFolder) {
    const ScratchDir tmp;
    const std::string dir = tmp.path() + "/nowhere";
    expect_error([&] { parse_model_config(dir); }, TDM_ERR_NOT_FOUND, {dir, "does not exist"});
    write_file(dir, "a file, not a folder");
    expect_error([&] { parse_model_config(dir); }, TDM_ERR_NOT_FOUND, {dir, "not a directory"});
}

TEST(ModelConfigErrors, FolderWithoutConfigJson) {
    const ScratchDir tmp;
    expect_error([&] { parse_model_config(tmp.path()); }, TDM_ERR_NOT_FOUND,
                 {tmp.path() + "/config.json", "does not exist"});
    fs::create_directory(tmp.path() + "/config.json");
    expect_error([&] { parse_model_config(tmp.path()); }, TDM_ERR_IO,
                 {tmp.path() + "/config.json", "is a directory"});
}

TEST(ModelConfigErrors, InvalidJson) {
    const ScratchDir tmp;
    write_file(tmp.path() + "/config.json", "{\"hidden_size\": 64,");
    expect_error([&] { parse_model_config(tmp.path()); }, TDM_ERR_INVALID_MODEL,
                 {tmp.path() + "/config.json", "not valid JSON"});
    write_file(tmp.path() + "/config.json", "[64]");
    expect_error([&] { parse_model_config(tmp.path()); }, TDM_ERR_INVALID_MODEL,
                 {"not a JSON object"});
    write_file(tmp.path() + "/config.json", llama_config().dump());
    write_file(tmp.path() + "/generation_config.json", "{oops}");
    expect_error([&] { parse_model_config(tmp.path()); }, TDM_ERR_INVALID_MODEL,
                 {tmp.path() + "/generation_config.json", "not valid JSON"});
}

TEST(ModelConfigErrors, UnsupportedArchitectureListsTheSupportedOnes) {
    const ScratchDir tmp;
    json config = llama_config();
    config["architectures"] = {"GPT2LMHeadModel"};
    const std::vector<std::string> listed = {"'GPT2LMHeadModel'", "LlamaForCausalLM",
                                             "Qwen2ForCausalLM", "MistralForCausalLM"};
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_UNSUPPORTED, listed);
    config.erase("architectures");
    config["model_type"] = "gpt2";
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_UNSUPPORTED,
                 {"'gpt2'", "LlamaForCausalLM"});
    config.erase("model_type");
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL, {"'architectures'"});
    config["architectures"] = json::array();
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL, {"'architectures'"});
}

TEST(ModelConfigErrors, MissingRequiredFieldIsNamed) {
    for (const char* field :
         {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "vocab_size", "max_position_embeddings", "rms_norm_eps"}) {
        SCOPED_TRACE(field);
        const ScratchDir tmp;
        json config = llama_config();
        config.erase(field);
        expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL,
                     {tmp.path() + "/config.json", "required field '" + std::string(field) + "'"});
        config[field] = nullptr;  // null is as good as absent
        expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL,
                     {"required field '" + std::string(field) + "'"});
    }
}

TEST(ModelConfigErrors, WrongTypesAreNamed) {
    struct Case {
        const char* field;
        json value;
        const char* quoted_field;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {"hidden_size", "64", "'hidden_size'", "an integer"},
        {"num_hidden_layers", 2.5, "'num_hidden_layers'", "an integer"},
        {"rms_norm_eps", "tiny", "'rms_norm_eps'", "a number"},
        {"tie_word_embeddings", "yes", "'tie_word_embeddings'", "true or false"},
        {"hidden_act", 3, "'hidden_act'", "a string"},
        {"eos_token_id", -1, "'eos_token_id'", "token id"},
        {"eos_token_id", {2, "eos"}, "'eos_token_id'", "an integer"},
        {"rope_scaling", "llama3", "'rope_scaling'", "an object"},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(k.field);
        const ScratchDir tmp;
        json config = llama_config();
        config[k.field] = k.value;
        expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL,
                     {k.quoted_field, k.expected});
    }
    // Integral floats are integers (some tools write 4096.0).
    const ScratchDir tmp;
    json config = llama_config();
    config["hidden_size"] = 64.0;
    EXPECT_EQ(parse(tmp.path(), config).hidden_size, 64);
}

TEST(ModelConfigErrors, InconsistentSizes) {
    struct Case {
        std::function<void(json&)> breakit;
        std::vector<std::string> fragments;
    };
    const std::vector<Case> cases = {
        {[](json& c) { c["num_key_value_heads"] = 3; },
         {"num_attention_heads (4)", "num_key_value_heads (3)"}},
        {[](json& c) { c["head_dim"] = 15; }, {"head_dim 15", "odd"}},
        {[](json& c) { c["hidden_size"] = 0; }, {"'hidden_size'", "positive"}},
        {[](json& c) { c["intermediate_size"] = -4; }, {"'intermediate_size'", "positive"}},
        {[](json& c) { c["num_hidden_layers"] = 0; }, {"'num_hidden_layers'", "positive"}},
        {[](json& c) { c["vocab_size"] = 0; }, {"'vocab_size'", "positive"}},
        {[](json& c) { c["num_key_value_heads"] = 0; }, {"'num_key_value_heads'", "positive"}},
        {[](json& c) { c["rms_norm_eps"] = -1e-6; }, {"'rms_norm_eps'"}},
        {[](json& c) {
             c.erase("head_dim");
             c["hidden_size"] = 66;
         },
         {"hidden_size 66", "num_attention_heads 4"}},
        {[](json& c) { c["rope_theta"] = 0.0; }, {"rope_theta", "positive"}},
    };
    for (const Case& k : cases) {
        const ScratchDir tmp;
        json config = llama_config();
        k.breakit(config);
        SCOPED_TRACE(config.dump());
        expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL, k.fragments);
    }
}

TEST(ModelConfigErrors, UnsupportedHiddenAct) {
    const ScratchDir tmp;
    json config = llama_config();
    config["hidden_act"] = "gelu_pytorch_tanh";
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_UNSUPPORTED,
                 {"'gelu_pytorch_tanh'", "silu"});
}

TEST(ModelConfigErrors, UnsupportedRopeTypeIsNamedInBothSpellings) {
    for (const char* type : {"linear", "dynamic", "yarn", "longrope", "ntk"}) {
        SCOPED_TRACE(type);
        const ScratchDir tmp;
        json v4 = llama_config();
        v4["rope_scaling"] = {{"type", type}, {"factor", 4.0}};
        expect_error([&] { parse(tmp.path(), v4); }, TDM_ERR_UNSUPPORTED,
                     {"rope type '" + std::string(type) + "'", "default, llama3"});
        json v5 = llama_config();
        v5["rope_parameters"] = {{"rope_type", type}, {"rope_theta", 1e4}, {"factor", 4.0}};
        expect_error([&] { parse(tmp.path(), v5); }, TDM_ERR_UNSUPPORTED,
                     {"rope type '" + std::string(type) + "'"});
    }
}

TEST(ModelConfigErrors, PartialRotaryFactor) {
    const ScratchDir tmp;
    json config = llama_config();
    config["partial_rotary_factor"] = 0.5;
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_UNSUPPORTED,
                 {"'partial_rotary_factor'"});
    config.erase("partial_rotary_factor");
    config["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.25}};
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_UNSUPPORTED,
                 {"'rope_parameters.partial_rotary_factor'"});
    config["rope_parameters"]["partial_rotary_factor"] = 1.0;  // full rotation is fine
    EXPECT_NO_THROW(parse(tmp.path(), config));
}

TEST(ModelConfigErrors, Llama3ParametersMissingOrInconsistent) {
    const json full = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 64}};
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor"}) {
        SCOPED_TRACE(key);
        const ScratchDir tmp;
        json config = llama_config();
        config["rope_scaling"] = full;
        config["rope_scaling"].erase(key);
        expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL,
                     {"required field 'rope_scaling." + std::string(key) + "'"});
    }
    const ScratchDir tmp;
    json config = llama_config();
    config["rope_scaling"] = full;
    config["rope_scaling"]["high_freq_factor"] = 1.0;
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL,
                 {"low_freq_factor", "high_freq_factor"});
    config["rope_scaling"] = full;
    config["rope_scaling"]["factor"] = 0.0;
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_INVALID_MODEL,
                 {"'rope_scaling.factor'", "positive"});
}

TEST(ModelConfigErrors, PerLayerRopeThatDiffers) {
    const ScratchDir tmp;
    json config = qwen2_config();
    config["rope_parameters"] = {
        {"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}},
        {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
    expect_error([&] { parse(tmp.path(), config); }, TDM_ERR_UNSUPPORTED,
                 {"'rope_parameters'", "per-layer RoPE"});
}

TEST(ModelConfigErrors, SlidingWindowAndLayerTypes) {
    const ScratchDir tmp;
    json mistral = llama_config();
    mistral["architectures"] = {"MistralForCausalLM"};
    mistral["sliding_window"] = 0;
    expect_error([&] { parse(tmp.path(), mistral); }, TDM_ERR_INVALID_MODEL,
                 {"'sliding_window'", "positive"});

    json qwen = qwen2_config();
    qwen["use_sliding_window"] = true;
    qwen["layer_types"] = {"full_attention", "sliding_attention"};  // 2 entries for 5 layers
    expect_error([&] { parse(tmp.path(), qwen); }, TDM_ERR_INVALID_MODEL,
                 {"'layer_types'", "a list of 5 layer types"});
    qwen["layer_types"] = {"full_attention", "chunked_attention", "full_attention",
                           "full_attention", "full_attention"};
    expect_error([&] { parse(tmp.path(), qwen); }, TDM_ERR_UNSUPPORTED,
                 {"\"chunked_attention\"", "layer 1"});
}

}  // namespace
}  // namespace tdm
