// The seam between the public kernels (matmul.cpp, elementwise.cpp, attention) and the code
// compiled for one instruction-set level (isa_*.cpp). The front ends check arguments, convert
// what is cheap to convert once, split the work over the thread pool and call through a
// KernelTable; each table entry computes one piece on the calling thread. Everything that
// crosses this seam is plain data, so the ISA files need no std:: types from the rest of the
// library.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/dispatch.h"

namespace tdm::cpu {

// y[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n]).
struct MatmulProblem {
    const float* x;  // [M, K], row stride ldx
    int64_t M, ldx, K;
    const void* w;  // [N, K] row-major, of dtype wtype
    DType wtype;
    int64_t N;
    const float* bias;  // [N] f32, or nullptr
    float* y;           // [M, N], row stride ldy
    int64_t ldy;
};

// One matmul variant: run computes y[m0:m1, n0:n1] with `scratch` (scratch_bytes(m1-m0, K)
// bytes, 64-byte aligned) private to the calling thread. Callers split the work at multiples
// of m_step and n_step (the register tile), except at the ends. For a GEMV kernel, m_step is
// the number of x rows it serves in one pass over W: matmul uses it for M up to that.
struct MatmulKernel {
    void (*run)(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                void* scratch);
    size_t (*scratch_bytes)(int64_t rows, int64_t K);
    int32_t m_step, n_step;
};

// A piece of dense attention: the query rows r0 <= r < r1 of one KV head against the keys
// key_lo <= j < key_hi. Row r is query i = r / group of query head kv_head * group + r % group,
// at position pos0 + i; it sees the keys j <= pos0 + i (and j > pos0 + i - window if window > 0).
struct AttentionTask {
    const float* q;  // [n_new, heads, head_dim]
    const float* k;  // this KV head's cache: [capacity, head_dim]
    const float* v;
    int64_t n_new, pos0;
    int32_t heads, group, head_dim, window;
    float scale;
    int32_t kv_head;
    int64_t r0, r1;  // r1 - r0 <= KernelTable::attention_rows
    int64_t key_lo, key_hi;
    // Either the finished rows go to out [n_new, heads, head_dim] (partial_o == nullptr), or the
    // unnormalised ones to partial_o [r1 - r0, head_dim] with their running max (partial_m) and
    // softmax denominator (partial_l), to be merged with other key ranges.
    float* out;
    float* partial_o;
    float* partial_m;
    float* partial_l;
};

struct KernelTable {
    IsaLevel level;
    const char* features;  // e.g. "avx512f avx512bw avx512vl avx512_bf16"

    MatmulKernel gemv[3];  // by DType: few rows (decode), streams W once
    MatmulKernel gemm[3];  // by DType: blocked and packed (prefill)

    // out[r, i] = x[r, i] / sqrt(mean(x[r, :]^2) + eps) * w[i]
    void (*rmsnorm)(const float* x, const void* w, DType wtype, float eps, int64_t rows, int64_t n,
                    float* out);
    // One row [heads, head_dim] rotated by the cos/sin of its position (head_dim / 2 each).
    void (*rope_row)(float* x, int64_t heads, int64_t head_dim, const float* cos, const float* sin);
    void (*swiglu)(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld,
                   float* out);
    void (*add)(float* y, const float* x, int64_t n);

    void (*attention)(const AttentionTask& t, void* scratch);
    size_t (*attention_scratch_bytes)(int32_t head_dim);
    int32_t attention_rows;  // rows per task (a multiple of the vector width)

    // out[r * ldo + c] = attention_estimate::dot(a + r * lda, b + c * ldb, n), bit for bit, for
    // r < rows, c < cols (estimate_simd.h).
    void (*estimate_dots)(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                          int64_t cols, int64_t n, float* out, int64_t ldo);
};

// The table of the active level (dispatch.cpp).
const KernelTable& active_kernels();

// Each level's table (isa_*.cpp). Only call those at or below detected_isa_level().
const KernelTable& portable_kernels();
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
const KernelTable& avx512bf16_kernels();

}  // namespace tdm::cpu
