// RMSNorm as Hugging Face's LlamaRMSNorm computes it: the mean square in f32, x scaled by its
// reciprocal square root, then multiplied by the weight. One block per row. (A decode step
// computes its norms inside the GEMV instead: gemv.cu's stage_input, the same formula.)
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;

__global__ void __launch_bounds__(kThreads)
rmsnorm_kernel(const float* __restrict__ x, const uint16_t* __restrict__ w, float eps,
               int64_t rows, int64_t n, float* __restrict__ out) {
    __shared__ float scratch[kWarpSize];
    wait_for_predecessor();  // launched overlapped: x comes from the kernels before
    allow_successor();
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = x + r * n;
        float ss = 0.0f;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
        ss = block_sum(ss, scratch);
        const float inv = rsqrtf(ss / float(n) + eps);
        float* yr = out + r * n;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            yr[i] = xr[i] * inv * bf16_to_float(w[i]);
    }
}

void check_norm(const VectorView& w, int64_t rows, int64_t n, const char* kernel) {
    require_bf16(w.dtype, kernel, "the norm weight");
    require_non_negative(rows, kernel, "rows");
    TDM_REQUIRE(w.size == n, TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": weight has " + std::to_string(w.size) +
                    " elements, rows have " + std::to_string(n));
}

}  // namespace

void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out,
             cudaStream_t stream) {
    check_norm(w, rows, n, "rmsnorm");
    if (rows == 0 || n == 0) return;
    const unsigned blocks = unsigned(std::min(rows, kMaxBlocks));
    launch_overlapped("launch of rmsnorm_kernel", rmsnorm_kernel, dim3(blocks), dim3(kThreads), 0,
                      stream, x, static_cast<const uint16_t*>(w.data), eps, rows, n, out);
}

}  // namespace tdm::cuda
