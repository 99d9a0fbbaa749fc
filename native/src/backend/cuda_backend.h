// The CUDA backend (Hopper GPUs) and the upload of a model's weights to the GPU. Plain C++: the
// model and the session include this without the CUDA headers. Compiled only when CMake found
// nvcc (TANDEM_HAVE_CUDA).
//
// Precision: activations and every accumulation are f32; weights are bf16 on the device
// (converted once at load from f32/f16/bf16 files) and so is the KV cache (kv_element_bytes() is
// 2: half the bytes of a decode step's attention, and the operand type of the tensor-core
// attention). Matrix products round the activation to bf16 as well (cuBLAS on the tensor cores,
// f32 accumulation); attention rounds Q and the probabilities to bf16 (f32 accumulation).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "backend/backend.h"
#include "model/weights.h"

namespace tdm {

// A backend on GPU `device` with its own stream, cuBLAS handle and scratch buffers. The caller
// has checked that the device is supported (cuda::require_supported_device).
std::unique_ptr<Backend> make_cuda_backend(int device);

// A model's weights on one GPU: bf16 copies of every tensor, in one device allocation.
struct DeviceWeights {
    ModelWeights views;            // the host views' shapes, bf16, pointing into `memory`
    std::shared_ptr<void> memory;  // owns the device allocation (freed with the last owner)
    uint64_t bytes = 0;            // size of that allocation
};

// Uploads every tensor of `host` once (a tied lm_head stays the embedding itself), converting
// f32 and f16 to bf16 on the device. progress(done, total), in source bytes, may return false to
// cancel (the load then fails with TDM_ERR_CANCELLED and nothing stays allocated).
DeviceWeights upload_weights(const ModelWeights& host, int device,
                             const std::function<bool(uint64_t, uint64_t)>& progress);

}  // namespace tdm
