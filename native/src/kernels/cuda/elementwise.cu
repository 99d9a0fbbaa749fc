// Element-wise kernels of the MLP and the residual stream: SwiGLU, residual add, bias add.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void swiglu_kernel(const float* __restrict__ gate, const float* __restrict__ up,
                              int64_t rows, int64_t n, int64_t ld, float* __restrict__ out) {
    const int64_t total = rows * n;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / n, i = e - r * n;
        const float g = gate[r * ld + i];
        out[e] = g / (1.0f + expf(-g)) * up[r * ld + i];
    }
}

__global__ void add_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        y[i] += x[i];
}

__global__ void add_bias_kernel(float* __restrict__ y, int64_t rows, int64_t n, int64_t ldy,
                                const uint16_t* __restrict__ bias) {
    const int64_t total = rows * n;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / n, c = e - r * n;
        y[r * ldy + c] += bf16_to_float(bias[c]);
    }
}

}  // namespace

void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out,
            cudaStream_t stream) {
    require_non_negative(rows, "swiglu", "rows");
    require_non_negative(n, "swiglu", "n");
    TDM_REQUIRE(ld >= n, TDM_ERR_INVALID_ARGUMENT, "swiglu: row stride below the row length");
    if (rows * n == 0) return;
    swiglu_kernel<<<grid_for(rows * n, kThreads), kThreads, 0, stream>>>(gate, up, rows, n, ld,
                                                                         out);
    TDM_CUDA_CHECK_LAUNCH("swiglu_kernel");
}

void add_inplace(float* y, const float* x, int64_t n, cudaStream_t stream) {
    require_non_negative(n, "add_inplace", "n");
    if (n == 0) return;
    add_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(y, x, n);
    TDM_CUDA_CHECK_LAUNCH("add_kernel");
}

void add_bias(float* y, int64_t rows, int64_t n, int64_t ldy, const VectorView& bias,
              cudaStream_t stream) {
    require_bf16(bias.dtype, "add_bias", "the bias");
    require_non_negative(rows, "add_bias", "rows");
    TDM_REQUIRE(bias.size == n && ldy >= n, TDM_ERR_INVALID_ARGUMENT,
                "add_bias: bias has " + std::to_string(bias.size) + " elements for rows of " +
                    std::to_string(n) + " (row stride " + std::to_string(ldy) + ")");
    if (rows * n == 0) return;
    add_bias_kernel<<<grid_for(rows * n, kThreads), kThreads, 0, stream>>>(
        y, rows, n, ldy, static_cast<const uint16_t*>(bias.data));
    TDM_CUDA_CHECK_LAUNCH("add_bias_kernel");
}

}  // namespace tdm::cuda
