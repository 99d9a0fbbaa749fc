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
    many(LayerInput{x, M, ldx, {}, 0.0f, nullptr}, &out, 1, false, "matmul");
}

void Matmul::matmul_many(const LayerInput& in, const Projection* outputs, int count) {
    many(in, outputs, count, false, "matmul");
}

void Matmul::matmul_accumulate(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                               const VectorView& bias, float* y) {
    const Projection out{W, bias, y, W.rows};
    many(LayerInput{x, M, ldx, {}, 0.0f, nullptr}, &out, 1, true, "matmul_accumulate");
}

bool Matmul::gemv_applies(const LayerInput& in, const Projection* outputs, int count) const {
    if (!gemv_enabled_ || count > kGemvMaxOutputs ||
        !gemv_supports(in.x, in.M, in.ldx, outputs[0].weight.cols))
        return false;
    if (!in.norm.empty() && reinterpret_cast<uintptr_t>(in.norm.data) % 16 != 0) return false;
    for (int i = 0; i < count; ++i)
        if (!weights_aligned(outputs[i].weight)) return false;
    return true;
}

const uint16_t* Matmul::round_input(const LayerInput& in, int64_t K) {
    const float* x = in.x;
    int64_t ldx = in.ldx;
    if (!in.norm.empty()) {
        TDM_REQUIRE(in.scratch != nullptr && in.ldx == K, TDM_ERR_INTERNAL,
                    "matmul: a normed input needs dense rows and a scratch buffer");
        rmsnorm(in.x, in.norm, in.eps, in.M, K, in.scratch, stream_);
        x = in.scratch;
        ldx = K;
    }
    x_bf16_.reserve(size_t(in.M * K) * sizeof(uint16_t));
    round_to_bf16(x, in.M, K, ldx, x_bf16_.as<uint16_t>(), stream_);
    return x_bf16_.as<uint16_t>();
}

void Matmul::gemm(const uint16_t* x_bf16, int64_t M, const Projection& out, bool accumulate) {
    const int64_t N = out.weight.rows, K = out.weight.cols;
    if (N == 0) return;
    // cuBLAS is column-major: the row-major y [M, N] is the column-major y^T [N, M], and
    // y^T = W x^T, where the row-major W [N, K] read column-major is W^T [K, N] (so op T), and
    // the row-major x [M, K] read column-major is x^T [K, M].
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    TDM_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K),
                                  &alpha, out.weight.data, CUDA_R_16BF, int(K), x_bf16,
                                  CUDA_R_16BF, int(K), &beta, out.y, CUDA_R_32F, int(out.ldy),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (!out.bias.empty()) add_bias(out.y, M, N, out.ldy, out.bias, stream_);
}

void Matmul::many(const LayerInput& in, const Projection* outputs, int count, bool accumulate,
                  const char* what) {
    TDM_REQUIRE(count >= 1, TDM_ERR_INVALID_ARGUMENT, std::string(what) + ": no outputs");
    const int64_t K = outputs[0].weight.cols;
    require_int32(in.M, what, "M");
    TDM_REQUIRE(K > 0 && in.ldx >= K, TDM_ERR_INVALID_ARGUMENT,
                std::string(what) + ": row stride ldx " + std::to_string(in.ldx) + " below K " +
                    std::to_string(K));
    for (int i = 0; i < count; ++i) check_output(outputs[i], K, what);
    if (in.M == 0) return;
    if (gemv_applies(in, outputs, count)) {
        gemv(in, outputs, count, accumulate, stream_);
        return;
    }
    const uint16_t* x_bf16 = round_input(in, K);  // once for every output
    for (int i = 0; i < count; ++i) gemm(x_bf16, in.M, outputs[i], accumulate);
}

void Matmul::gated_up(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                      const MatrixView& w_up, const VectorView& b_up, float* gate, float* up,
                      float* out) {
    const int64_t n = w_gate.rows, K = w_gate.cols;
    const Projection outputs[2] = {{w_gate, b_gate, gate, n}, {w_up, b_up, up, n}};
    require_int32(in.M, "gated_up", "M");
    TDM_REQUIRE(K > 0 && in.ldx >= K && w_up.rows == n, TDM_ERR_INVALID_ARGUMENT,
                "gated_up: gate " + std::to_string(n) + " and up " + std::to_string(w_up.rows) +
                    " rows differ, or row stride " + std::to_string(in.ldx) + " below K " +
                    std::to_string(K));
    for (const Projection& p : outputs) check_output(p, K, "gated_up");
    if (in.M == 0) return;
    if (gemv_applies(in, outputs, 2)) {
        gemv_gated(in, w_gate, b_gate, w_up, b_up, out, n, stream_);
        return;
    }
    const uint16_t* x_bf16 = round_input(in, K);
    for (const Projection& p : outputs) gemm(x_bf16, in.M, p, false);
    swiglu(gate, up, in.M, n, n, out, stream_);
}

}  // namespace tdm::cuda
