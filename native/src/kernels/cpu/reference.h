// Plain scalar references of every CPU kernel: the oracle the tests hold the fast kernels to.
// Same signatures as kernels.h (minus the thread pool), written for obviousness, accumulating in
// double. Not for production use: they are slow on purpose.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/cpu/kernels.h"

namespace tdm::cpu::ref {

// round_x_to_bf16 rounds each x to bf16 first: what the avx512_bf16 fast path computes.
void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W, const VectorView& bias,
            float* y, int64_t ldy, bool round_x_to_bf16 = false);

void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out);

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int32_t* positions,
          const float* inv_freq);

void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out);

void add_inplace(float* y, const float* x, int64_t n);

// Materialises the masked score matrix of every head and takes its softmax in double.
void attention(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s,
               float* out);

}  // namespace tdm::cpu::ref
