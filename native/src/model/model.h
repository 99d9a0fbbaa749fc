// A loaded model: its configuration, its weights prepared for one device, and what every session
// of it shares (the RoPE frequency table, the end-of-sequence ids). Immutable after load, so any
// number of sessions on any threads may use it; sessions hold it by shared_ptr.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/model_config.h"
#include "io/weight_store.h"
#include "model/weights.h"
#include "tandem.h"

namespace tdm {

struct LoadOptions {
    tdm_device device = TDM_DEVICE_CPU;
    int device_index = 0;
    int threads = 0;                     // default for sessions; 0 = all hardware threads
    tdm_progress_fn progress = nullptr;  // bytes made resident so far / in all
    void* progress_user_data = nullptr;
};

class Model {
public:
    static std::shared_ptr<const Model> load(const std::string& folder, const LoadOptions& options);

    const ModelConfig& config() const { return config_; }
    // The weights as the model's device reads them: the host views (memory-mapped) for the CPU,
    // bf16 copies in device memory for CUDA.
    const ModelWeights& weights() const {
        return device_ == TDM_DEVICE_CUDA ? device_weights_ : weights_;
    }
    const ModelWeights& host_weights() const { return weights_; }
    const std::vector<float>& rope_inv_freq() const { return inv_freq_; }
    tdm_device device() const { return device_; }
    int device_index() const { return device_index_; }  // the GPU ordinal for CUDA
    int default_threads() const { return threads_; }
    DType dtype() const { return dtype_; }
    uint64_t parameter_count() const { return parameter_count_; }
    const std::string& folder() const { return folder_; }

private:
    Model() = default;
    // Binds every tensor the forward pass reads; returns their memory for make_resident().
    std::vector<std::pair<const void*, size_t>> bind_weights();

    std::string folder_;
    ModelConfig config_;
    WeightStore store_;          // owns the memory maps the views point into
    ModelWeights weights_;
    ModelWeights device_weights_;          // CUDA: bf16 views into device_memory_
    std::shared_ptr<void> device_memory_;  // CUDA: the one device allocation of every weight
    std::vector<float> inv_freq_;
    tdm_device device_ = TDM_DEVICE_CPU;
    int device_index_ = 0;
    int threads_ = 0;
    DType dtype_ = DType::F32;
    uint64_t parameter_count_ = 0;
};

}  // namespace tdm
