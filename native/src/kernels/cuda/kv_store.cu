// KV-cache append: the new rows' keys and values, [n, kv_heads, D] f32 as the projections write
// them, go to [kv_heads, capacity, D] bf16 (rounded to nearest even) so that each head's keys are
// contiguous for attention and the attention kernels copy them straight into shared memory.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                int64_t n, int64_t pos0, int64_t capacity, int32_t kv_heads,
                                int32_t head_dim, uint16_t* __restrict__ k_cache,
                                uint16_t* __restrict__ v_cache) {
    const int64_t total = n * kv_heads * head_dim;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t d = e % head_dim;
        const int64_t rh = e / head_dim;  // row * kv_heads + head
        const int64_t r = rh / kv_heads, h = rh - r * kv_heads;
        const int64_t dst = (h * capacity + pos0 + r) * head_dim + d;
        k_cache[dst] = float_to_bf16(k[e]);
        v_cache[dst] = float_to_bf16(v[e]);
    }
}

}  // namespace

void kv_store(const float* k, const float* v, int64_t n, int64_t pos0, int64_t capacity,
              int32_t kv_heads, int32_t head_dim, uint16_t* k_cache, uint16_t* v_cache,
              cudaStream_t stream) {
    require_non_negative(n, "kv_store", "n");
    require_non_negative(pos0, "kv_store", "pos0");
    TDM_REQUIRE(pos0 + n <= capacity && kv_heads > 0 && head_dim > 0, TDM_ERR_INVALID_ARGUMENT,
                "kv_store: positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n) +
                    " do not fit the cache capacity " + std::to_string(capacity));
    const int64_t total = n * kv_heads * head_dim;
    if (total == 0) return;
    kv_store_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        k, v, n, pos0, capacity, kv_heads, head_dim, k_cache, v_cache);
    TDM_CUDA_CHECK_LAUNCH("kv_store_kernel");
}

}  // namespace tdm::cuda
