// Conversions to bf16: activations before a cuBLAS product, and weights at load.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void round_to_bf16_kernel(const float* __restrict__ x, int64_t rows, int64_t cols,
                                     int64_t ldx, uint16_t* __restrict__ out) {
    const int64_t total = rows * cols;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / cols, c = e - r * cols;
        out[e] = float_to_bf16(x[r * ldx + c]);
    }
}

template <DType kFrom>
__global__ void convert_kernel(const void* __restrict__ src, int64_t n,
                               uint16_t* __restrict__ dst) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        if constexpr (kFrom == DType::F32) {
            dst[i] = float_to_bf16(static_cast<const float*>(src)[i]);
        } else if constexpr (kFrom == DType::F16) {
            dst[i] = float_to_bf16(f16_to_float(static_cast<const uint16_t*>(src)[i]));
        } else {
            dst[i] = static_cast<const uint16_t*>(src)[i];
        }
    }
}

}  // namespace

void round_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ldx, uint16_t* out,
                   cudaStream_t stream) {
    require_non_negative(rows, "round_to_bf16", "rows");
    TDM_REQUIRE(cols >= 0 && ldx >= cols, TDM_ERR_INVALID_ARGUMENT,
                "round_to_bf16: row stride " + std::to_string(ldx) + " below the row length " +
                    std::to_string(cols));
    if (rows * cols == 0) return;
    round_to_bf16_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream>>>(x, rows, cols,
                                                                                   ldx, out);
    TDM_CUDA_CHECK_LAUNCH("round_to_bf16_kernel");
}

void convert_to_bf16(const void* src, DType dtype, int64_t n, uint16_t* dst, cudaStream_t stream) {
    require_non_negative(n, "convert_to_bf16", "n");
    if (n == 0) return;
    const unsigned blocks = grid_for(n, kThreads);
    switch (dtype) {
        case DType::F32: convert_kernel<DType::F32><<<blocks, kThreads, 0, stream>>>(src, n, dst); break;
        case DType::F16: convert_kernel<DType::F16><<<blocks, kThreads, 0, stream>>>(src, n, dst); break;
        case DType::BF16: convert_kernel<DType::BF16><<<blocks, kThreads, 0, stream>>>(src, n, dst); break;
    }
    TDM_CUDA_CHECK_LAUNCH("convert_kernel");
}

}  // namespace tdm::cuda
