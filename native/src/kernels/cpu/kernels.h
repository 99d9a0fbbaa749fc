// CPU kernels: the arithmetic of one transformer step. Activations are f32; weights may be
// f32, f16 or bf16 and accumulate in f32. Each kernel picks its fastest variant at run time
// (AVX-512 with avx512_bf16, AVX2+FMA+F16C, or portable C++) and has a plain reference
// (kernels/cpu/reference.h) that the tests compare it with.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace tdm::cpu {

// Which instruction-set level the dispatcher chose, e.g. "avx512f avx512_bf16".
const char* cpu_features();

// y[m, n] = sum_k x[m, k] * W[n, k]  (+ bias[n] if bias is not empty), for m < M, n < W.rows.
// x is [M, W.cols] f32 row-major with row stride ldx; y is [M, W.rows] with row stride ldy.
// M = 1 is the decode path (matrix-vector, memory-bound); larger M is the prefill path.
// With bf16 weights the fast path may round x to bf16 (avx512_bf16 dot products); the error
// this adds is within bf16's own (~4e-3 relative), below what bf16 weights already carry.
void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W, const VectorView& bias,
            float* y, int64_t ldy, ThreadPool& pool);

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], for each of the `rows` rows of length n.
void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out);

// Rotary embedding in the Hugging Face (rotate_half) convention, in place, on x [rows, heads, D]
// where row r is at position positions[r]. inv_freq has D/2 entries (already llama3-scaled).
void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int32_t* positions,
          const float* inv_freq);

// out[i] = silu(gate[i]) * up[i], silu(v) = v / (1 + exp(-v)); for `rows` rows of length n,
// gate/up with row stride ld (they may be the two halves of one fused buffer).
void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out);

// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n);

// Dense causal attention with grouped-query heads, f32, for the n_new queries at positions
// pos0 .. pos0 + n_new - 1 against keys/values 0 .. pos0 + n_new - 1 already in the cache.
//   q:       [n_new, Hq, D] row-major
//   k_cache: [Hkv, capacity, D], v_cache the same; query head h reads kv head h / (Hq / Hkv)
//   out:     [n_new, Hq, D]
// Query at position p sees keys j <= p, and with window > 0 only j > p - window (Mistral's
// sliding window). scale multiplies q.k (1/sqrt(D) for these models).
struct AttentionShape {
    int64_t n_new, pos0, capacity;
    int32_t heads, kv_heads, head_dim, window;
    float scale;
};
void attention(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s,
               float* out, ThreadPool& pool);

// out[r * ldo + c] = attention_estimate::dot(a + r * lda, b + c * ldb, n) for r < rows and
// c < cols: the block-sparse estimators' dot products, bit for bit whatever the instruction-set
// level, computed in register blocks so that a loaded row serves several pairs. On the calling
// thread.
void estimate_dots(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                   int64_t cols, int64_t n, float* out, int64_t ldo);

}  // namespace tdm::cpu
