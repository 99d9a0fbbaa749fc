#include "io/model_config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_file.h"

namespace tdm {

namespace {

using nlohmann::json;

constexpr const char* kSupportedArchitectures =
    "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM";

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// Typed access to the fields of one JSON object, with messages that name the file and the field
// ("rope_scaling.factor" for a nested one). A field that is absent or null counts as absent,
// since Hugging Face writes `null` for "not set" (e.g. "sliding_window": null).
class Fields {
public:
    Fields(const json& object, std::string file, std::string prefix = "")
        : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

    const std::string& file() const { return file_; }
    std::string field(const std::string& key) const { return in_quotes(prefix_ + key); }

    const json* find(const std::string& key) const {
        auto it = object_.find(key);
        if (it == object_.end() || it->is_null()) return nullptr;
        return &*it;
    }

    [[noreturn]] void missing(const std::string& key) const {
        fail(TDM_ERR_INVALID_MODEL, in_quotes(file_) + " has no required field " + field(key));
    }
    [[noreturn]] void bad_type(const std::string& key, const char* expected, const json& v) const {
        fail(TDM_ERR_INVALID_MODEL,
             in_quotes(file_) + ": " + field(key) + " must be " + expected + ", got " + v.dump());
    }

    // Integers; JSON numbers like 4096.0 are accepted when integral (some tools write them so).
    std::optional<int64_t> opt_int(const std::string& key) const {
        const json* v = find(key);
        if (v == nullptr) return std::nullopt;
        return to_int(key, *v);
    }
    int64_t int_(const std::string& key) const {
        std::optional<int64_t> v = opt_int(key);
        if (!v) missing(key);
        return *v;
    }
    int64_t to_int(const std::string& key, const json& v) const {
        if (v.is_number_integer()) {
            if (v.is_number_unsigned() &&
                v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
                bad_type(key, "an integer in range", v);
            return v.get<int64_t>();
        }
        if (v.is_number_float()) {
            const double d = v.get<double>();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
                return static_cast<int64_t>(d);
        }
        bad_type(key, "an integer", v);
    }

    std::optional<double> opt_double(const std::string& key) const {
        const json* v = find(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number()) bad_type(key, "a number", *v);
        const double d = v->get<double>();
        if (!std::isfinite(d)) bad_type(key, "a finite number", *v);
        return d;
    }
    double double_(const std::string& key) const {
        std::optional<double> v = opt_double(key);
        if (!v) missing(key);
        return *v;
    }

    bool bool_or(const std::string& key, bool fallback) const {
        const json* v = find(key);
        if (v == nullptr) return fallback;
        if (!v->is_boolean()) bad_type(key, "true or false", *v);
        return v->get<bool>();
    }

    std::optional<std::string> opt_string(const std::string& key) const {
        const json* v = find(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_string()) bad_type(key, "a string", *v);
        return v->get<std::string>();
    }

    std::optional<int32_t> opt_token_id(const std::string& key) const {
        const json* v = find(key);
        if (v == nullptr) return std::nullopt;
        return to_token_id(key, *v);
    }

    // A token id or a list of them ("eos_token_id": 2 or [128001, 128009]); appended to `out`
    // unless already there, so that the union keeps first-occurrence order.
    void append_token_ids(const std::string& key, std::vector<int32_t>& out) const {
        const json* v = find(key);
        if (v == nullptr) return;
        auto add = [&](const json& id) {
            const int32_t t = to_token_id(key, id);
            if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
        };
        if (v->is_array()) {
            for (const json& id : *v) add(id);
        } else {
            add(*v);
        }
    }

private:
    int32_t to_token_id(const std::string& key, const json& v) const {
        const int64_t t = to_int(key, v);
        if (t < 0 || t > std::numeric_limits<int32_t>::max())
            bad_type(key, "a token id in [0, 2^31)", v);
        return static_cast<int32_t>(t);
    }

    const json& object_;
    std::string file_;
    std::string prefix_;
};

Arch parse_arch(const Fields& f) {
    struct Known {
        const char* architecture;
        const char* model_type;
        Arch arch;
    };
    static constexpr Known kKnown[] = {
        {"LlamaForCausalLM", "llama", Arch::Llama},
        {"Qwen2ForCausalLM", "qwen2", Arch::Qwen2},
        {"MistralForCausalLM", "mistral", Arch::Mistral},
    };
    if (const json* list = f.find("architectures")) {
        if (!list->is_array() || list->empty() || !(*list)[0].is_string())
            f.bad_type("architectures", "a non-empty list of class names", *list);
        const std::string name = (*list)[0].get<std::string>();
        for (const Known& k : kKnown)
            if (name == k.architecture) return k.arch;
        fail(TDM_ERR_UNSUPPORTED, "architecture " + in_quotes(name) + " in " + in_quotes(f.file()) +
                                      " is not supported (supported: " + kSupportedArchitectures +
                                      ")");
    }
    // Configs written by hand or by older tools sometimes carry only "model_type".
    if (std::optional<std::string> type = f.opt_string("model_type")) {
        for (const Known& k : kKnown)
            if (*type == k.model_type) return k.arch;
        fail(TDM_ERR_UNSUPPORTED, "model_type " + in_quotes(*type) + " in " + in_quotes(f.file()) +
                                      " is not supported (supported: " + kSupportedArchitectures +
                                      ")");
    }
    f.missing("architectures");
}

// Picks the object holding the RoPE parameters and the name it goes by in messages:
// transformers 5.x "rope_parameters" first, else transformers 4.x "rope_scaling", else none.
// 5.x nests one dict per layer type ({"full_attention": {...}, "sliding_attention": {...}}) for
// models whose layer types use different RoPE; identical nested dicts collapse to one.
std::pair<const json*, std::string> find_rope_object(const Fields& f) {
    for (const char* key : {"rope_parameters", "rope_scaling"}) {
        const json* v = f.find(key);
        if (v == nullptr) continue;
        if (!v->is_object()) f.bad_type(key, "an object", *v);
        const bool nested = !v->empty() && std::all_of(v->begin(), v->end(), [&](const json& x) {
            return x.is_object();
        });
        if (!nested) return {v, key};
        const json& first = *v->begin();
        for (const auto& [layer_type, params] : v->items()) {
            if (params != first)
                fail(TDM_ERR_UNSUPPORTED, in_quotes(f.file()) + ": " + in_quotes(key) +
                                              " gives layer type " + in_quotes(layer_type) +
                                              " its own RoPE; per-layer RoPE is not supported");
        }
        return {&first, std::string(key) + "." + v->begin().key()};
    }
    return {nullptr, ""};
}

RopeConfig parse_rope(const Fields& f, int64_t max_position_embeddings) {
    RopeConfig rope;
    auto [object, object_name] = find_rope_object(f);
    static const json kEmpty = json::object();
    const Fields r(object ? *object : kEmpty, f.file(), object ? object_name + "." : "");

    // Partial rotary embeddings rotate only the first part of each head; not implemented.
    for (const Fields* src : {&f, &r}) {
        if (std::optional<double> prf = src->opt_double("partial_rotary_factor");
            prf && *prf != 1.0)
            fail(TDM_ERR_UNSUPPORTED,
                 in_quotes(f.file()) + ": " + src->field("partial_rotary_factor") + " = " +
                     std::to_string(*prf) + " is not supported (only full rotary embeddings)");
    }

    rope.theta = r.opt_double("rope_theta").value_or(f.opt_double("rope_theta").value_or(10000.0));
    TDM_REQUIRE(
        rope.theta > 0.0, TDM_ERR_INVALID_MODEL,
        in_quotes(f.file()) + ": rope_theta must be positive, got " + std::to_string(rope.theta));

    std::string type = "default";
    if (std::optional<std::string> t = r.opt_string("rope_type")) {
        type = *t;
    } else if (std::optional<std::string> legacy = r.opt_string("type")) {  // before 4.43
        type = *legacy;
    }
    if (type == "default") {
        rope.type = RopeType::Default;
        return rope;
    }
    if (type != "llama3") {
        fail(TDM_ERR_UNSUPPORTED, in_quotes(f.file()) + ": rope type " + in_quotes(type) +
                                      " is not supported (supported: default, llama3)");
    }

    rope.type = RopeType::Llama3;
    rope.factor = r.double_("factor");
    rope.low_freq_factor = r.double_("low_freq_factor");
    rope.high_freq_factor = r.double_("high_freq_factor");
    // transformers 5.x moves a top-level original_max_position_embeddings into the dict and falls
    // back to max_position_embeddings; 4.x requires it in the dict. Accept all three, dict first.
    rope.original_max_position_embeddings =
        r.opt_int("original_max_position_embeddings")
            .value_or(
                f.opt_int("original_max_position_embeddings").value_or(max_position_embeddings));
    TDM_REQUIRE(rope.factor > 0.0, TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": " + r.field("factor") + " must be positive");
    TDM_REQUIRE(rope.low_freq_factor > 0.0 && rope.high_freq_factor > rope.low_freq_factor,
                TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": llama3 RoPE needs 0 < " + r.field("low_freq_factor") +
                    " < " + r.field("high_freq_factor") + ", got " +
                    std::to_string(rope.low_freq_factor) + " and " +
                    std::to_string(rope.high_freq_factor));
    TDM_REQUIRE(rope.original_max_position_embeddings > 0, TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": " + r.field("original_max_position_embeddings") +
                    " must be positive");
    return rope;
}

// Which layers slide, and by how much (see ModelConfig::sliding_window).
void parse_sliding_window(const Fields& f, ModelConfig& c) {
    c.layer_sliding.assign(static_cast<size_t>(c.num_hidden_layers), false);
    std::optional<int64_t> window;
    switch (c.arch) {
        case Arch::Llama: return;  // LlamaAttention has no sliding window, whatever the config says
        case Arch::Mistral: window = f.opt_int("sliding_window"); break;
        case Arch::Qwen2:
            if (f.bool_or("use_sliding_window", false)) window = f.opt_int("sliding_window");
            break;
    }
    if (!window) return;
    TDM_REQUIRE(*window > 0, TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": 'sliding_window' must be positive, got " +
                    std::to_string(*window));
    c.sliding_window = *window;

    if (c.arch == Arch::Mistral) {  // MistralAttention applies the window on every layer
        c.layer_sliding.assign(c.layer_sliding.size(), true);
        return;
    }
    if (const json* types = f.find("layer_types")) {
        if (!types->is_array() || int64_t(types->size()) != c.num_hidden_layers)
            f.bad_type(
                "layer_types",
                ("a list of " + std::to_string(c.num_hidden_layers) + " layer types").c_str(),
                *types);
        for (size_t l = 0; l < types->size(); ++l) {
            const json& t = (*types)[l];
            if (t == "sliding_attention") {
                c.layer_sliding[l] = true;
            } else if (t != "full_attention") {
                fail(TDM_ERR_UNSUPPORTED, in_quotes(f.file()) + ": layer type " + t.dump() +
                                              " of layer " + std::to_string(l) +
                                              " is not supported (supported: full_attention, "
                                              "sliding_attention)");
            }
        }
        return;
    }
    // Qwen2 without layer_types: the first max_window_layers layers attend fully (default 28, as
    // in Qwen2Config).
    const int64_t first_sliding = f.opt_int("max_window_layers").value_or(28);
    for (int64_t l = std::max<int64_t>(first_sliding, 0); l < c.num_hidden_layers; ++l)
        c.layer_sliding[static_cast<size_t>(l)] = true;
}

void validate(const Fields& f, const ModelConfig& c) {
    // Sizes cross the C ABI as 32-bit integers; anything larger is a corrupt config.
    auto positive = [&](const char* key, int64_t v) {
        TDM_REQUIRE(v > 0 && v <= std::numeric_limits<int32_t>::max(), TDM_ERR_INVALID_MODEL,
                    in_quotes(f.file()) + ": " + in_quotes(key) +
                        " must be positive and below 2^31, got " + std::to_string(v));
    };
    positive("hidden_size", c.hidden_size);
    positive("intermediate_size", c.intermediate_size);
    positive("num_hidden_layers", c.num_hidden_layers);
    positive("num_attention_heads", c.num_attention_heads);
    positive("num_key_value_heads", c.num_key_value_heads);
    positive("head_dim", c.head_dim);
    positive("vocab_size", c.vocab_size);
    positive("max_position_embeddings", c.max_position_embeddings);
    TDM_REQUIRE(c.num_attention_heads % c.num_key_value_heads == 0, TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": num_attention_heads (" +
                    std::to_string(c.num_attention_heads) +
                    ") is not a multiple of num_key_value_heads (" +
                    std::to_string(c.num_key_value_heads) + ")");
    // RoPE rotates pairs of dimensions (x[i], x[i + head_dim/2]).
    TDM_REQUIRE(c.head_dim % 2 == 0, TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": head_dim " + std::to_string(c.head_dim) +
                    " is odd; RoPE needs an even head size");
    TDM_REQUIRE(c.rms_norm_eps >= 0.0, TDM_ERR_INVALID_MODEL,
                in_quotes(f.file()) + ": 'rms_norm_eps' must not be negative");
}

}  // namespace

const char* arch_name(Arch arch) {
    switch (arch) {
        case Arch::Llama: return "LlamaForCausalLM";
        case Arch::Qwen2: return "Qwen2ForCausalLM";
        case Arch::Mistral: return "MistralForCausalLM";
    }
    return "unknown";
}

const char* rope_type_name(RopeType type) {
    switch (type) {
        case RopeType::Default: return "default";
        case RopeType::Llama3: return "llama3";
    }
    return "unknown";
}

ModelConfig parse_model_config(const std::string& folder) {
    require_folder(folder, "model folder");
    const std::string path = path_in_folder(folder, "config.json");
    const json config = read_json_file(path);
    const Fields f(config, path);

    ModelConfig c;
    c.arch = parse_arch(f);
    c.model_type = f.opt_string("model_type").value_or("");
    c.dtype = f.opt_string("torch_dtype").value_or(f.opt_string("dtype").value_or(""));

    c.hidden_size = f.int_("hidden_size");
    c.intermediate_size = f.int_("intermediate_size");
    c.num_hidden_layers = f.int_("num_hidden_layers");
    c.num_attention_heads = f.int_("num_attention_heads");
    c.num_key_value_heads = f.opt_int("num_key_value_heads").value_or(c.num_attention_heads);
    c.vocab_size = f.int_("vocab_size");
    c.max_position_embeddings = f.int_("max_position_embeddings");
    c.rms_norm_eps = f.double_("rms_norm_eps");
    if (std::optional<int64_t> head_dim = f.opt_int("head_dim")) {
        c.head_dim = *head_dim;
    } else {
        TDM_REQUIRE(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
                    TDM_ERR_INVALID_MODEL,
                    in_quotes(path) + ": hidden_size " + std::to_string(c.hidden_size) +
                        " is not a multiple of num_attention_heads " +
                        std::to_string(c.num_attention_heads) + " and no head_dim is given");
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }

    // "swish" is the same function in transformers' ACT2FN table.
    const std::string act = f.opt_string("hidden_act").value_or("silu");
    TDM_REQUIRE(act == "silu" || act == "swish", TDM_ERR_UNSUPPORTED,
                in_quotes(path) + ": hidden_act " + in_quotes(act) +
                    " is not supported (the MLP must be SwiGLU: hidden_act 'silu')");

    c.tie_word_embeddings = f.bool_or("tie_word_embeddings", false);
    switch (c.arch) {
        case Arch::Llama:
            c.qkv_bias = c.o_bias = f.bool_or("attention_bias", false);
            c.mlp_bias = f.bool_or("mlp_bias", false);
            break;
        case Arch::Qwen2:  // Qwen2Attention: q/k/v with bias, o without; MLP without
            c.qkv_bias = true;
            break;
        case Arch::Mistral:  // no biases anywhere
            break;
    }

    validate(f, c);
    parse_sliding_window(f, c);
    c.rope = parse_rope(f, c.max_position_embeddings);

    c.bos_token_id = f.opt_token_id("bos_token_id");
    f.append_token_ids("eos_token_id", c.eos_token_ids);

    const std::string gen_path = path_in_folder(folder, "generation_config.json");
    if (path_exists(gen_path)) {
        const json gen = read_json_file(gen_path);
        const Fields g(gen, gen_path);
        g.append_token_ids("eos_token_id", c.eos_token_ids);
        if (!c.bos_token_id) c.bos_token_id = g.opt_token_id("bos_token_id");
    }
    return c;
}

}  // namespace tdm
