// Rotary position embedding (Hugging Face's rotate_half convention: element i of a head pairs with
// element i + D/2) and the KV-cache append, in one kernel that does either or both. The cache is
// [kv_heads, capacity, D] bf16 (rounded to nearest even) so that each head's keys are contiguous
// for attention and the attention kernels copy them straight into shared memory.
//
// One thread per pair (i, i + D/2) of a query head or of a key/value head.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;

// cos and sin of the angle transformers uses: f32(pos) * inv_freq (f32), rounded to f32.
__device__ __forceinline__ void rotation(int64_t pos, float inv_freq, float* c, float* s) {
    sincosf(__fmul_rn(float(pos), inv_freq), s, c);
}

__global__ void rope_store_kernel(RopeStore a, int half) {
    wait_for_predecessor();  // launched overlapped: q, k, v come from the projection
    allow_successor();
    const int heads = a.heads + a.kv_heads;
    const int64_t pairs = a.rows * heads * half;
    const int64_t first = a.pos_dev != nullptr ? *a.pos_dev : a.pos0;
    const int D = 2 * half;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < pairs;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int i = int(e % half);
        const int64_t rh = e / half;  // row * heads + head
        const int64_t r = rh / heads;
        const int h = int(rh - r * heads);
        const int64_t pos = first + r;
        if (h < a.heads) {
            float* x = a.q + (r * a.heads + h) * D;
            float c, s;
            rotation(pos, a.inv_freq[i], &c, &s);
            const float x0 = x[i], x1 = x[i + half];
            x[i] = x0 * c - x1 * s;
            x[i + half] = x1 * c + x0 * s;
            continue;
        }
        const int kh = h - a.heads;
        const int64_t src = (r * a.kv_heads + kh) * D;
        float k0 = a.k[src + i], k1 = a.k[src + i + half];
        if (a.rotate_k) {
            float c, s;
            rotation(pos, a.inv_freq[i], &c, &s);
            const float r0 = k0 * c - k1 * s, r1 = k1 * c + k0 * s;
            k0 = r0;
            k1 = r1;
        }
        const int64_t dst = (kh * a.capacity + pos) * D;
        a.k_cache[dst + i] = float_to_bf16(k0);
        a.k_cache[dst + i + half] = float_to_bf16(k1);
        a.v_cache[dst + i] = float_to_bf16(a.v[src + i]);
        a.v_cache[dst + i + half] = float_to_bf16(a.v[src + i + half]);
    }
}

}  // namespace

void rope_and_store(const RopeStore& a, cudaStream_t stream) {
    require_non_negative(a.rows, "rope_and_store", "rows");
    require_non_negative(a.pos0, "rope_and_store", "pos0");
    TDM_REQUIRE(a.head_dim > 0 && a.head_dim % 2 == 0 && a.heads >= 0 && a.kv_heads >= 0,
                TDM_ERR_INVALID_ARGUMENT,
                "rope_and_store: head_dim " + std::to_string(a.head_dim) +
                    " must be even and positive, head counts non-negative");
    TDM_REQUIRE((a.heads == 0 || a.q != nullptr) &&
                    (a.kv_heads == 0 || (a.k && a.v && a.k_cache && a.v_cache)) &&
                    ((a.heads == 0 && !(a.kv_heads > 0 && a.rotate_k)) || a.inv_freq),
                TDM_ERR_INVALID_ARGUMENT, "rope_and_store: a null buffer for the heads asked for");
    TDM_REQUIRE(a.kv_heads == 0 || a.pos0 + a.rows <= a.capacity, TDM_ERR_INVALID_ARGUMENT,
                "rope_and_store: positions " + std::to_string(a.pos0) + ".." +
                    std::to_string(a.pos0 + a.rows) + " do not fit the cache capacity " +
                    std::to_string(a.capacity));
    const int64_t pairs = a.rows * (a.heads + a.kv_heads) * (a.head_dim / 2);
    if (pairs == 0) return;
    launch_overlapped("launch of rope_store_kernel", rope_store_kernel,
                      dim3(grid_for(pairs, kThreads)), dim3(kThreads), 0, stream, a,
                      a.head_dim / 2);
}

}  // namespace tdm::cuda
