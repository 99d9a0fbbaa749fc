// Upload of a model's weights to one GPU: every tensor once, as bf16, into one cudaMalloc'd
// arena. bf16 tensors are copied as they are; f32 and f16 tensors go through a staging buffer in
// chunks and are rounded on the device (the same round-to-nearest-even as PyTorch's .to(bf16)).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cuda_backend.h"
#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/kernels.h"

namespace tdm {
namespace {

// cudaMalloc's own alignment: every tensor starts aligned for vector loads and cuBLAS.
constexpr size_t kAlignment = 256;
// Bytes converted per step: bounds the staging buffer and paces the progress reports.
constexpr size_t kChunkBytes = size_t(64) << 20;

size_t align_up(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

// Calls on_matrix / on_vector with every view of the model (keep in step with weights.h).
template <class W, class OnMatrix, class OnVector>
void for_each_view(W& w, OnMatrix&& on_matrix, OnVector&& on_vector) {
    on_matrix(w.embed);
    for (auto& L : w.layers) {
        on_vector(L.attn_norm);
        on_matrix(L.wq);
        on_matrix(L.wk);
        on_matrix(L.wv);
        on_matrix(L.wo);
        on_vector(L.bq);
        on_vector(L.bk);
        on_vector(L.bv);
        on_vector(L.bo);
        on_vector(L.mlp_norm);
        on_matrix(L.w_gate);
        on_matrix(L.w_up);
        on_matrix(L.w_down);
        on_vector(L.b_gate);
        on_vector(L.b_up);
        on_vector(L.b_down);
    }
    on_vector(w.final_norm);
    on_matrix(w.lm_head);
}

struct Tensor {
    const void* host;
    DType dtype;
    int64_t count;
    size_t offset;  // in the arena
};

}  // namespace

DeviceWeights upload_weights(const ModelWeights& host, int device,
                             const std::function<bool(uint64_t, uint64_t)>& progress) {
    cuda::DeviceGuard guard(device);

    // Each distinct host tensor once: a tied lm_head is the embedding's own memory.
    std::vector<Tensor> tensors;
    std::unordered_map<const void*, size_t> index_of;
    size_t arena_bytes = 0;
    uint64_t source_bytes = 0;
    auto add = [&](const void* data, DType dtype, int64_t count) {
        if (data == nullptr || index_of.count(data) != 0) return;
        index_of.emplace(data, tensors.size());
        tensors.push_back(Tensor{data, dtype, count, arena_bytes});
        arena_bytes += align_up(size_t(count) * sizeof(uint16_t));
        source_bytes += uint64_t(count) * dtype_size(dtype);
    };
    for_each_view(
        host, [&](const MatrixView& m) { add(m.data, m.dtype, m.rows * m.cols); },
        [&](const VectorView& v) { add(v.data, v.dtype, v.size); });

    auto arena = std::make_shared<cuda::DeviceBuffer>(arena_bytes);
    auto* base = arena->as<uint8_t>();
    cuda::Stream stream;
    cuda::DeviceBuffer staging;
    uint64_t done = 0;
    auto report = [&](uint64_t bytes) {
        done += bytes;
        if (progress && !progress(done, source_bytes))
            fail(TDM_ERR_CANCELLED, "model load cancelled by the progress callback");
    };
    for (const Tensor& t : tensors) {
        const auto* src = static_cast<const uint8_t*>(t.host);
        auto* dst = reinterpret_cast<uint16_t*>(base + t.offset);
        const size_t elem = dtype_size(t.dtype);
        const int64_t per_chunk = int64_t(kChunkBytes / elem);
        for (int64_t first = 0; first < t.count; first += per_chunk) {
            const int64_t n = std::min(per_chunk, t.count - first);
            const size_t bytes = size_t(n) * elem;
            if (t.dtype == DType::BF16) {
                TDM_CUDA_CHECK(cudaMemcpyAsync(dst + first, src + size_t(first) * elem, bytes,
                                               cudaMemcpyHostToDevice, stream.get()));
            } else {
                // Stream order keeps the next chunk's copy behind this chunk's conversion.
                staging.reserve(kChunkBytes);
                TDM_CUDA_CHECK(cudaMemcpyAsync(staging.data(), src + size_t(first) * elem, bytes,
                                               cudaMemcpyHostToDevice, stream.get()));
                cuda::convert_to_bf16(staging.data(), t.dtype, n, dst + first, stream.get());
            }
            report(bytes);
        }
    }
    stream.synchronize();

    DeviceWeights out;
    out.views = host;
    auto device_pointer = [&](const void* data) -> const void* {
        return base + tensors[index_of.at(data)].offset;
    };
    for_each_view(
        out.views,
        [&](MatrixView& m) {
            if (m.empty()) return;
            m.data = device_pointer(m.data);
            m.dtype = DType::BF16;
        },
        [&](VectorView& v) {
            if (v.empty()) return;
            v.data = device_pointer(v.data);
            v.dtype = DType::BF16;
        });
    out.memory = std::move(arena);
    out.bytes = arena_bytes;
    return out;
}

}  // namespace tdm
