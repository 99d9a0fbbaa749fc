// All the weights of one Hugging Face model folder, by tensor name, memory-mapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace tdm {

// The weights of a model folder, from either layout Hugging Face writes:
//  - `model.safetensors`, one file (preferred when both exist, as transformers does);
//  - `model.safetensors.index.json` whose "weight_map" maps each tensor name to a shard file in
//    the same folder; each shard is opened (mapped and validated) once.
// With an index, the weight_map is the list of tensors: a tensor a shard holds but the map does
// not name is ignored, as transformers ignores it.
//
// Errors (tdm::Error):
//  - TDM_ERR_NOT_FOUND: the folder does not exist or holds neither file; the index names a shard
//    that does not exist (the message names the tensor, the shard and the folder); get() of an
//    unknown tensor ("tensor 'model.layers.3.mlp.up_proj.weight' not found in <folder>").
//  - TDM_ERR_INVALID_MODEL: any malformed file (see SafetensorsFile), an index without a
//    "weight_map" object or with a shard path that leaves the folder, a tensor the index maps to a
//    shard that does not hold it, a shape that disagrees with what config.json implies.
//  - TDM_ERR_UNSUPPORTED: a requested tensor stored in a dtype other than F32/F16/BF16.
//  - TDM_ERR_IO: a file that exists but cannot be read or mapped.
//
// Thread safety: immutable after open(); any number of threads may read it. Views and entries
// point into the mappings and stay valid for the lifetime of the store (moves included).
class WeightStore {
public:
    WeightStore() = default;
    static WeightStore open(const std::string& folder);

    WeightStore(WeightStore&&) noexcept = default;
    WeightStore& operator=(WeightStore&&) noexcept = default;

    const std::string& folder() const { return folder_; }

    // True when the model has a tensor of that name (any dtype). Use it for optional weights:
    // biases, a separate lm_head.weight next to tied embeddings.
    bool contains(const std::string& name) const;
    // The tensor; TDM_ERR_NOT_FOUND when absent, TDM_ERR_UNSUPPORTED for an unusable dtype.
    const TensorEntry& get(const std::string& name) const;

    // The tensor as a [rows, cols] matrix / a [size] vector, after checking that its shape is the
    // one config.json implies; otherwise TDM_ERR_INVALID_MODEL:
    // "tensor 'x' in <folder> has shape [a, b], but config.json implies [c, d]".
    MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) const;
    VectorView vector(const std::string& name, int64_t size) const;

    // Every tensor name, sorted.
    std::vector<std::string> names() const;
    // Bytes of tensor data across all files (for load progress: bytes touched / total).
    size_t total_bytes() const { return total_bytes_; }
    // The safetensors files, one per shard (for paging hints and progress).
    const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

private:
    const TensorEntry& checked(const std::string& name, const std::vector<int64_t>& expected) const;

    std::string folder_;
    // unique_ptr so that the pointers in `by_name_` survive the vector growing and the store
    // moving.
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::unordered_map<std::string, const SafetensorsFile*> by_name_;
    size_t total_bytes_ = 0;
};

}  // namespace tdm
