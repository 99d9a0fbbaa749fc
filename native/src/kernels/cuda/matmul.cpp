#include "kernels/cuda/matmul.h"

#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {

CublasMatmul::CublasMatmul(cudaStream_t stream) : stream_(stream) {
    TDM_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
        TDM_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
    } catch (...) {
        cublasDestroy(handle_);
        throw;
    }
}

CublasMatmul::~CublasMatmul() {
    if (handle_) (void)cublasDestroy(handle_);
}

void CublasMatmul::matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                          const VectorView& bias, float* y, int64_t ldy) {
    require_bf16(W.dtype, "matmul", "the weight matrix");
    const int64_t N = W.rows, K = W.cols;
    require_int32(M, "matmul", "M");
    require_int32(N, "matmul", "N (weight rows)");
    require_int32(K, "matmul", "K (weight columns)");
    require_int32(ldy, "matmul", "ldy");
    TDM_REQUIRE(K > 0 && ldx >= K && ldy >= N, TDM_ERR_INVALID_ARGUMENT,
                "matmul: row strides ldx " + std::to_string(ldx) + " / ldy " +
                    std::to_string(ldy) + " below K " + std::to_string(K) + " / N " +
                    std::to_string(N));
    if (M == 0 || N == 0) return;

    x_bf16_.reserve(size_t(M * K) * sizeof(uint16_t));
    round_to_bf16(x, M, K, ldx, x_bf16_.as<uint16_t>(), stream_);

    // cuBLAS is column-major: the row-major y [M, N] is the column-major y^T [N, M], and
    // y^T = W x^T, where the row-major W [N, K] read column-major is W^T [K, N] (so op T), and
    // the row-major x [M, K] read column-major is x^T [K, M].
    const float alpha = 1.0f, beta = 0.0f;
    TDM_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K),
                                  &alpha, W.data, CUDA_R_16BF, int(K), x_bf16_.data(),
                                  CUDA_R_16BF, int(K), &beta, y, CUDA_R_32F, int(ldy),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (!bias.empty()) add_bias(y, M, N, ldy, bias, stream_);
}

}  // namespace tdm::cuda
