// Model loading and information.
#include "capi/guard.h"
#include "capi/handles.h"

extern "C" {

TDM_API void tdm_model_options_init(tdm_model_options* options) {
    if (options == nullptr) return;
    *options = tdm_model_options{};
    options->struct_size = sizeof(tdm_model_options);
    options->device = TDM_DEVICE_CPU;
}

TDM_API tdm_status tdm_model_load(const char* path, const tdm_model_options* options,
                                  tdm_model** out_model) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out_model, "out_model");
        *out_model = nullptr;
        tdm::capi::require_not_null(path, "path");
        tdm_model_options defaults;
        tdm_model_options_init(&defaults);
        const tdm_model_options o = tdm::capi::read_options(options, defaults, "tdm_model_options");
        TDM_REQUIRE(o.threads >= 0, TDM_ERR_INVALID_ARGUMENT,
                    "threads must be >= 0 (0 = all cores), got " + std::to_string(o.threads));
        tdm::LoadOptions lo;
        lo.device = static_cast<tdm_device>(o.device);
        lo.device_index = o.device_index;
        lo.threads = o.threads;
        lo.progress = o.progress;
        lo.progress_user_data = o.progress_user_data;
        auto handle = std::make_unique<tdm_model>();
        handle->model = tdm::Model::load(path, lo);
        handle->eos_ids = handle->model->config().eos_token_ids;
        *out_model = handle.release();
    });
}

TDM_API void tdm_model_free(tdm_model* model) { delete model; }

TDM_API tdm_status tdm_model_get_info(const tdm_model* model, tdm_model_info* out) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(model, "model");
        tdm::capi::require_not_null(out, "out");
        const tdm::Model& m = *model->model;
        const tdm::ModelConfig& c = m.config();
        tdm_model_info info{};
        info.struct_size = sizeof(tdm_model_info);
        info.architecture = tdm::arch_name(c.arch);
        info.layers = static_cast<uint32_t>(c.num_hidden_layers);
        info.hidden_size = static_cast<uint32_t>(c.hidden_size);
        info.intermediate_size = static_cast<uint32_t>(c.intermediate_size);
        info.heads = static_cast<uint32_t>(c.num_attention_heads);
        info.kv_heads = static_cast<uint32_t>(c.num_key_value_heads);
        info.head_dim = static_cast<uint32_t>(c.head_dim);
        info.vocab_size = static_cast<uint32_t>(c.vocab_size);
        info.context_length = static_cast<uint32_t>(c.max_position_embeddings);
        info.sliding_window = static_cast<uint32_t>(c.sliding_window);
        info.dtype = static_cast<int32_t>(m.dtype());
        info.device = m.device();
        info.tie_word_embeddings = c.tie_word_embeddings ? 1 : 0;
        info.rms_norm_eps = static_cast<float>(c.rms_norm_eps);
        info.rope_theta = static_cast<float>(c.rope.theta);
        info.parameter_count = m.parameter_count();
        info.bos_token_id = c.bos_token_id.value_or(-1);
        info.eos_token_count = static_cast<uint32_t>(model->eos_ids.size());
        info.eos_token_ids = model->eos_ids.empty() ? nullptr : model->eos_ids.data();
        tdm::capi::write_output(out, info);
    });
}

}  // extern "C"
