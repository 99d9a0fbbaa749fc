// y = x W^T + bias through cuBLAS: the f32 activations are rounded to bf16 into a scratch buffer,
// multiplied with the bf16 weights on the tensor cores with f32 accumulation (CUBLAS_COMPUTE_32F)
// and written as f32. One instance per stream (it owns a cuBLAS handle bound to that stream).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::cuda {

class CublasMatmul {
public:
    explicit CublasMatmul(cudaStream_t stream);
    ~CublasMatmul();
    CublasMatmul(const CublasMatmul&) = delete;
    CublasMatmul& operator=(const CublasMatmul&) = delete;

    // y[m, n] = sum_k bf16(x[m, k]) * W[n, k] (+ bias[n]) for m < M, n < W.rows; x is
    // [M, W.cols] with row stride ldx, y [M, W.rows] with row stride ldy; W and bias are bf16
    // device views.
    void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                const VectorView& bias, float* y, int64_t ldy);

private:
    cudaStream_t stream_;
    cublasHandle_t handle_ = nullptr;
    DeviceBuffer x_bf16_;  // the rounded activations, grown on demand
};

}  // namespace tdm::cuda
