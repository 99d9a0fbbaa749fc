// Embedding lookup: rows of the bf16 table widened to f32.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embed_kernel(const int32_t* __restrict__ tokens, int64_t n, int64_t cols,
                             const uint16_t* __restrict__ table, float* __restrict__ out) {
    const int64_t total = n * cols;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / cols, c = e - r * cols;
        out[e] = bf16_to_float(table[int64_t(tokens[r]) * cols + c]);
    }
}

}  // namespace

void embed(const int32_t* tokens, int64_t n, const MatrixView& table, float* out,
           cudaStream_t stream) {
    require_bf16(table.dtype, "embed", "the embedding table");
    require_non_negative(n, "embed", "n");
    if (n == 0 || table.cols == 0) return;
    const int64_t total = n * table.cols;
    embed_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        tokens, n, table.cols, static_cast<const uint16_t*>(table.data), out);
    TDM_CUDA_CHECK_LAUNCH("embed_kernel");
}

}  // namespace tdm::cuda
