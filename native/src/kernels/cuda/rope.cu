// Rotary position embedding, Hugging Face's rotate_half convention: element i of a head pairs
// with element i + D/2. One thread per pair.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rope_kernel(float* __restrict__ x, int64_t rows, int64_t heads, int64_t half,
                            int64_t pos0, const float* __restrict__ inv_freq) {
    const int64_t pairs = rows * heads * half;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < pairs;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half;
        const int64_t rh = e / half;  // row * heads + head
        const int64_t r = rh / heads;
        // transformers: freqs = inv_freq (f32) times the position (f32), rounded to f32; then
        // cos and sin of that f32 angle.
        const float angle = __fmul_rn(float(pos0 + r), inv_freq[i]);
        float s, c;
        sincosf(angle, &s, &c);
        float* v = x + rh * 2 * half;
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

}  // namespace

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
          const float* inv_freq, cudaStream_t stream) {
    require_non_negative(rows, "rope", "rows");
    require_non_negative(pos0, "rope", "pos0");
    TDM_REQUIRE(head_dim > 0 && head_dim % 2 == 0 && heads > 0, TDM_ERR_INVALID_ARGUMENT,
                "rope: head_dim " + std::to_string(head_dim) + " must be even and positive, heads " +
                    std::to_string(heads) + " positive");
    const int64_t pairs = rows * heads * (head_dim / 2);
    if (pairs == 0) return;
    rope_kernel<<<grid_for(pairs, kThreads), kThreads, 0, stream>>>(x, rows, heads, head_dim / 2,
                                                                    pos0, inv_freq);
    TDM_CUDA_CHECK_LAUNCH("rope_kernel");
}

}  // namespace tdm::cuda
