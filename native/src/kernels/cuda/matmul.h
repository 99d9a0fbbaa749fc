// The CUDA backend's matrix products, y = x W^T + bias with bf16 weights: the f32 activations are
// rounded to bf16 and multiplied with f32 accumulation. Two paths, one numerics:
//   - up to kGemvMaxRows input rows (a decode step, a short verification batch): the GEMV kernels
//     (kernels.h), which round x in registers and stream every matrix sharing the input in one
//     launch - a decode step is bound by how fast the weights stream;
//   - more rows: x is rounded once into a scratch buffer and cuBLAS multiplies it on the tensor
//     cores (CUBLAS_COMPUTE_32F) with each matrix.
// One instance per stream (it owns a cuBLAS handle bound to that stream).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::cuda {

class Matmul {
public:
    explicit Matmul(cudaStream_t stream);
    ~Matmul();
    Matmul(const Matmul&) = delete;
    Matmul& operator=(const Matmul&) = delete;

    // y[m, n] = sum_k bf16(x[m, k]) * W[n, k] (+ bias[n]) for m < M, n < W.rows; x is
    // [M, W.cols] with row stride ldx, y [M, W.rows] with row stride ldy; W and bias are bf16
    // device views.
    void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                const VectorView& bias, float* y, int64_t ldy);
    // The same for every output of the same x (all weights have x's K columns).
    void matmul_many(const float* x, int64_t M, int64_t ldx, const Projection* outputs,
                     int count);
    // out [M, n] dense = silu(x Wg^T + bg) * (x Wu^T + bu); gate and up [M, n] are scratch for
    // the cuBLAS path.
    void gated_up(const float* x, int64_t M, int64_t ldx, const MatrixView& w_gate,
                  const VectorView& b_gate, const MatrixView& w_up, const VectorView& b_up,
                  float* gate, float* up, float* out);

    // Forces the cuBLAS path for every M (tests compare the two paths).
    void set_gemv_enabled(bool enabled) { gemv_enabled_ = enabled; }

private:
    bool use_gemv(const float* x, int64_t M, int64_t ldx, const Projection* outputs,
                  int count) const;
    const uint16_t* round_input(const float* x, int64_t M, int64_t ldx, int64_t K);
    void gemm(const uint16_t* x_bf16, int64_t M, const Projection& out);

    cudaStream_t stream_;
    cublasHandle_t handle_ = nullptr;
    DeviceBuffer x_bf16_;  // the rounded activations, grown on demand
    bool gemv_enabled_ = true;
};

}  // namespace tdm::cuda
