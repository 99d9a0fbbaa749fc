#include "model/model.h"

#include <filesystem>

#include "core/error.h"
#include "model/rope_frequencies.h"

#if defined(TANDEM_HAVE_CUDA)
#include "backend/cuda_backend.h"
#include "kernels/cuda/device.h"
#endif

namespace tdm {

namespace {

// Reads one byte per page of every weight so that the first forward pass does not stall on page
// faults, reporting progress (and honouring cancellation) along the way.
void make_resident(const std::vector<std::pair<const void*, size_t>>& regions,
                   const LoadOptions& options) {
    uint64_t total = 0;
    for (const auto& r : regions) total += r.second;
    uint64_t done = 0;
    constexpr size_t kPage = 4096;
    constexpr uint64_t kReportEvery = 64ull << 20;
    uint64_t next_report = 0;
    volatile uint8_t sink = 0;
    for (const auto& [data, size] : regions) {
        const auto* bytes = static_cast<const uint8_t*>(data);
        for (size_t off = 0; off < size; off += kPage) {
            sink = sink + bytes[off];
            done += std::min<uint64_t>(kPage, size - off);
            if (options.progress && done >= next_report) {
                if (options.progress(done, total, options.progress_user_data) != 0) {
                    fail(TDM_ERR_CANCELLED, "model load cancelled by the progress callback");
                }
                next_report = done + kReportEvery;
            }
        }
    }
    if (options.progress && options.progress(total, total, options.progress_user_data) != 0) {
        fail(TDM_ERR_CANCELLED, "model load cancelled by the progress callback");
    }
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& folder, const LoadOptions& options) {
    if (options.device == TDM_DEVICE_CUDA) {
#if defined(TANDEM_HAVE_CUDA)
        cuda::require_supported_device(options.device_index);  // a Hopper GPU, or a clear error
#else
        fail(TDM_ERR_BACKEND_UNAVAILABLE,
             "this build of Tandem has no CUDA backend (it was built without nvcc); "
             "use the CPU device or rebuild with ./build.sh --cuda on a machine with CUDA");
#endif
    }
    TDM_REQUIRE(options.device == TDM_DEVICE_CPU || options.device == TDM_DEVICE_CUDA,
                TDM_ERR_INVALID_ARGUMENT, "unknown device " + std::to_string(int(options.device)));
    std::error_code ec;
    TDM_REQUIRE(std::filesystem::exists(folder, ec), TDM_ERR_NOT_FOUND,
                "model folder '" + folder + "' does not exist");
    TDM_REQUIRE(std::filesystem::is_directory(folder, ec), TDM_ERR_NOT_FOUND,
                "'" + folder + "' is not a folder (a model is a folder with config.json)");

    std::shared_ptr<Model> m(new Model());
    m->folder_ = folder;
    m->config_ = parse_model_config(folder);
    m->store_ = WeightStore::open(folder);
    m->device_ = options.device;
    m->device_index_ = options.device_index;
    m->threads_ = options.threads;
    const auto regions = m->bind_weights();
    m->inv_freq_ = rope_inverse_frequencies(m->config_.rope, m->config_.head_dim);
#if defined(TANDEM_HAVE_CUDA)
    if (m->device_ == TDM_DEVICE_CUDA) {
        // Reading the memory maps to upload them is what makes them resident, so the upload
        // reports the progress.
        auto progress = [&](uint64_t done, uint64_t total) {
            return !options.progress ||
                   options.progress(done, total, options.progress_user_data) == 0;
        };
        DeviceWeights uploaded = upload_weights(m->weights_, m->device_index_, progress);
        m->device_weights_ = std::move(uploaded.views);
        m->device_memory_ = std::move(uploaded.memory);
        return m;
    }
#endif
    make_resident(regions, options);
    return m;
}

std::vector<std::pair<const void*, size_t>> Model::bind_weights() {
    std::vector<std::pair<const void*, size_t>> regions;
    const ModelConfig& c = config_;
    const int64_t dim = c.hidden_size, hid = c.intermediate_size, V = c.vocab_size;
    const int64_t qd = c.q_dim(), kvd = c.kv_dim();
    uint64_t params = 0;
    auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
        params += uint64_t(rows) * uint64_t(cols);
        MatrixView m = store_.matrix(name, rows, cols);
        regions.emplace_back(m.data, size_t(rows * cols) * dtype_size(m.dtype));
        return m;
    };
    auto vector = [&](const std::string& name, int64_t n) {
        params += uint64_t(n);
        VectorView v = store_.vector(name, n);
        regions.emplace_back(v.data, size_t(n) * dtype_size(v.dtype));
        return v;
    };

    weights_.embed = matrix("model.embed_tokens.weight", V, dim);
    dtype_ = weights_.embed.dtype;
    weights_.layers.resize(static_cast<size_t>(c.num_hidden_layers));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
        L.attn_norm = vector(p + "input_layernorm.weight", dim);
        L.wq = matrix(p + "self_attn.q_proj.weight", qd, dim);
        L.wk = matrix(p + "self_attn.k_proj.weight", kvd, dim);
        L.wv = matrix(p + "self_attn.v_proj.weight", kvd, dim);
        L.wo = matrix(p + "self_attn.o_proj.weight", dim, qd);
        if (c.qkv_bias) {
            L.bq = vector(p + "self_attn.q_proj.bias", qd);
            L.bk = vector(p + "self_attn.k_proj.bias", kvd);
            L.bv = vector(p + "self_attn.v_proj.bias", kvd);
        }
        if (c.o_bias) L.bo = vector(p + "self_attn.o_proj.bias", dim);
        L.mlp_norm = vector(p + "post_attention_layernorm.weight", dim);
        L.w_gate = matrix(p + "mlp.gate_proj.weight", hid, dim);
        L.w_up = matrix(p + "mlp.up_proj.weight", hid, dim);
        L.w_down = matrix(p + "mlp.down_proj.weight", dim, hid);
        if (c.mlp_bias) {
            L.b_gate = vector(p + "mlp.gate_proj.bias", hid);
            L.b_up = vector(p + "mlp.up_proj.bias", hid);
            L.b_down = vector(p + "mlp.down_proj.bias", dim);
        }
    }
    weights_.final_norm = vector("model.norm.weight", dim);
    // Tied models reuse the embedding; some tied checkpoints still carry a copy of lm_head.
    if (c.tie_word_embeddings || !store_.contains("lm_head.weight")) {
        TDM_REQUIRE(c.tie_word_embeddings, TDM_ERR_INVALID_MODEL,
                    "tensor 'lm_head.weight' not found in " + folder_ +
                        " and config.json does not set tie_word_embeddings");
        weights_.lm_head = weights_.embed;
    } else {
        weights_.lm_head = matrix("lm_head.weight", V, dim);
    }
    parameter_count_ = params;
    return regions;
}

}  // namespace tdm
