// The CUDA backend's matrix products, y = x W^T + bias with bf16 weights: the f32 activations are
// rounded to bf16 and multiplied with f32 accumulation. Two paths, one numerics:
//   - up to kGemvMaxRows (16) input rows (a decode step, a verification batch, a catch-up): the
//     GEMV kernels (kernels.h; gemv_kernel_for picks the rows kernel for 1..4 rows, the
//     tensor-core tiles kernel otherwise), which stage the input in shared memory (normalised on
//     the way when the layer input carries its norm), stream every matrix sharing the input in
//     one launch - each weight read once whatever M - and add into the residual stream in their
//     epilogue: such a pass is bound by how fast the weights stream, and by how many kernels it
//     takes;
//   - more rows: the norm (when asked) by the rmsnorm kernel into the layer input's scratch, x
//     rounded once into a scratch buffer, and cuBLAS (CUBLAS_COMPUTE_32F) with each matrix,
//     accumulating into y with beta = 1 where asked.
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
    // The same for every output of the same layer input (all weights have K columns).
    void matmul_many(const LayerInput& in, const Projection* outputs, int count);
    // y [M, W.rows] dense += x W^T + bias.
    void matmul_accumulate(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                           const VectorView& bias, float* y);
    // out [M, n] dense = silu(in Wg^T + bg) * (in Wu^T + bu); gate and up [M, n] are scratch for
    // the cuBLAS path.
    void gated_up(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                  const MatrixView& w_up, const VectorView& b_up, float* gate, float* up,
                  float* out);

    // Forces the cuBLAS path for every M (tests compare the two paths).
    void set_gemv_enabled(bool enabled) { gemv_enabled_ = enabled; }
    // Whether these products take the GEMV path (so a caller may use a fused GEMV of its own):
    // gemv enabled, at most kGemvMaxOutputs outputs, gemv_supports, the norm weight and every
    // weight 16-byte aligned. The one predicate for the path a shape takes.
    bool gemv_applies(const LayerInput& in, const Projection* outputs, int count) const;

private:
    // The rounded input of the cuBLAS path (normalised first when `in` carries a norm).
    const uint16_t* round_input(const LayerInput& in, int64_t K);
    void gemm(const uint16_t* x_bf16, int64_t M, const Projection& out, bool accumulate);
    void many(const LayerInput& in, const Projection* outputs, int count, bool accumulate,
              const char* what);

    cudaStream_t stream_;
    cublasHandle_t handle_ = nullptr;
    DeviceBuffer x_bf16_;  // the rounded activations, grown on demand
    bool gemv_enabled_ = true;
};

}  // namespace tdm::cuda
