#include "kernels/cuda/matmul.h"

#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

bool weights_aligned(const MatrixView& W) {
    return reinterpret_cast<uintptr_t>(W.data) % 16 == 0;
}

void check_output(const Projection& p, int64_t K, const char* what) {
    require_bf16(p.weight.dtype, what, "the weight matrix");
    if (!p.bias.empty()) require_bf16(p.bias.dtype, what, "the bias");
    const int64_t N = p.weight.rows;
    require_int32(N, what, "N (weight rows)");
    require_int32(p.weight.cols, what, "K (weight columns)");
    require_int32(p.ldy, what, "ldy");
    TDM_REQUIRE(p.weight.cols == K && p.ldy >= N && (p.bias.empty() || p.bias.size == N),
                TDM_ERR_INVALID_ARGUMENT,
                std::string(what) + ": a " + std::to_string(N) + " x " +
                    std::to_string(p.weight.cols) + " weight for inputs of " + std::to_string(K) +
                    " columns, output stride " + std::to_string(p.ldy) + ", bias of " +
                    std::to_string(p.bias.size));
}

}  // namespace

Matmul::Matmul(cudaStream_t stream) : stream_(stream) {
    TDM_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
        TDM_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
    } catch (...) {
        cublasDestroy(handle_);
        throw;
    }
}

Matmul::~Matmul() {
    if (handle_) (void)cublasDestroy(handle_);
}

void Matmul::matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                    const VectorView& bias, float* y, int64_t ldy) {
    const Projection out{W, bias, y, ldy};
    matmul_many(x, M, ldx, &out, 1);
}

bool Matmul::use_gemv(const float* x, int64_t M, int64_t ldx, const Projection* outputs,
                      int count) const {
    if (!gemv_enabled_ || count > kGemvMaxOutputs ||
        !gemv_supports(x, M, ldx, outputs[0].weight.cols))
        return false;
    for (int i = 0; i < count; ++i)
        if (!weights_aligned(outputs[i].weight)) return false;
    return true;
}

const uint16_t* Matmul::round_input(const float* x, int64_t M, int64_t ldx, int64_t K) {
    x_bf16_.reserve(size_t(M * K) * sizeof(uint16_t));
    round_to_bf16(x, M, K, ldx, x_bf16_.as<uint16_t>(), stream_);
    return x_bf16_.as<uint16_t>();
}

void Matmul::gemm(const uint16_t* x_bf16, int64_t M, const Projection& out) {
    const int64_t N = out.weight.rows, K = out.weight.cols;
    if (N == 0) return;
    // cuBLAS is column-major: the row-major y [M, N] is the column-major y^T [N, M], and
    // y^T = W x^T, where the row-major W [N, K] read column-major is W^T [K, N] (so op T), and
    // the row-major x [M, K] read column-major is x^T [K, M].
    const float alpha = 1.0f, beta = 0.0f;
    TDM_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K),
                                  &alpha, out.weight.data, CUDA_R_16BF, int(K), x_bf16,
                                  CUDA_R_16BF, int(K), &beta, out.y, CUDA_R_32F, int(out.ldy),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (!out.bias.empty()) add_bias(out.y, M, N, out.ldy, out.bias, stream_);
}

void Matmul::matmul_many(const float* x, int64_t M, int64_t ldx, const Projection* outputs,
                         int count) {
    TDM_REQUIRE(count >= 1, TDM_ERR_INVALID_ARGUMENT, "matmul: no outputs");
    const int64_t K = outputs[0].weight.cols;
    require_int32(M, "matmul", "M");
    TDM_REQUIRE(K > 0 && ldx >= K, TDM_ERR_INVALID_ARGUMENT,
                "matmul: row stride ldx " + std::to_string(ldx) + " below K " +
                    std::to_string(K));
    for (int i = 0; i < count; ++i) check_output(outputs[i], K, "matmul");
    if (M == 0) return;
    if (use_gemv(x, M, ldx, outputs, count)) {
        gemv(x, M, ldx, outputs, count, stream_);
        return;
    }
    const uint16_t* x_bf16 = round_input(x, M, ldx, K);  // once for every output
    for (int i = 0; i < count; ++i) gemm(x_bf16, M, outputs[i]);
}

void Matmul::gated_up(const float* x, int64_t M, int64_t ldx, const MatrixView& w_gate,
                      const VectorView& b_gate, const MatrixView& w_up, const VectorView& b_up,
                      float* gate, float* up, float* out) {
    const int64_t n = w_gate.rows, K = w_gate.cols;
    const Projection outputs[2] = {{w_gate, b_gate, gate, n}, {w_up, b_up, up, n}};
    require_int32(M, "gated_up", "M");
    TDM_REQUIRE(K > 0 && ldx >= K && w_up.rows == n, TDM_ERR_INVALID_ARGUMENT,
                "gated_up: gate " + std::to_string(n) + " and up " + std::to_string(w_up.rows) +
                    " rows differ, or row stride " + std::to_string(ldx) + " below K " +
                    std::to_string(K));
    for (const Projection& p : outputs) check_output(p, K, "gated_up");
    if (M == 0) return;
    if (use_gemv(x, M, ldx, outputs, 2)) {
        gemv_gated(x, M, ldx, w_gate, b_gate, w_up, b_up, out, n, stream_);
        return;
    }
    const uint16_t* x_bf16 = round_input(x, M, ldx, K);
    for (const Projection& p : outputs) gemm(x_bf16, M, p);
    swiglu(gate, up, M, n, n, out, stream_);
}

}  // namespace tdm::cuda
