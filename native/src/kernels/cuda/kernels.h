// CUDA kernels of one transformer step: the GPU twins of kernels/cpu/kernels.h. Activations are
// f32 in device memory; weights are bf16 in device memory (the model converts them once at load).
// Every launcher checks its arguments on the host, enqueues on `stream` and checks the launch; it
// does not wait for the kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace tdm::cuda {

// What a recorded decode step reads from device memory instead of its launch arguments (the
// token for embed, the position for RoPE, the cache append and attention), so one recorded graph
// serves every step.
struct StepState {
    int64_t pos;
    int32_t token;
};
void write_step_state(StepState* state, int32_t token, int64_t pos, cudaStream_t stream);

// out[r, :] = table[tokens[r], :] widened to f32. tokens are device ids in [0, table.rows).
void embed(const int32_t* tokens, int64_t n, const MatrixView& table, float* out,
           cudaStream_t stream);

// out[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * w[i], for `rows` rows of length n.
void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out,
             cudaStream_t stream);

// Hugging Face rotate_half RoPE (element i of a head pairs with i + D/2; angle =
// f32(f32(pos) * inv_freq[i]) as transformers computes it, then its cos and sin) and the KV-cache
// append of one layer, in one launch; either part may be left out (the backend's rope and
// kv_store are this launch with no keys, or no queries and no rotation).
// q [rows, heads, D] is rotated in place; k [rows, kv_heads, D] is rotated
// (when rotate_k) on its way into k_cache, v copied into v_cache, both [kv_heads, capacity, D]
// bf16 at positions pos0 + r. With pos_dev set, the positions start at *pos_dev (device memory)
// instead, so a recorded CUDA graph can replay the launch at every decode step; pos0 is then only
// used for the host-side checks.
struct RopeStore {
    float* q = nullptr;          // null: no query heads
    int32_t heads = 0;
    const float* k = nullptr;    // null: no key/value heads
    const float* v = nullptr;
    int32_t kv_heads = 0;
    bool rotate_k = true;
    uint16_t* k_cache = nullptr;
    uint16_t* v_cache = nullptr;
    int64_t capacity = 0;
    int64_t rows = 0, pos0 = 0;
    const int64_t* pos_dev = nullptr;
    int32_t head_dim = 0;
    const float* inv_freq = nullptr;  // device, head_dim / 2 floats; needed for any rotation
};
void rope_and_store(const RopeStore& args, cudaStream_t stream);

// Small-M products for decode and short multi-row passes (speculative verification, catch-ups):
// y = bf16(in) W^T + bias with f32 accumulation, the numerics of Matmul's cuBLAS path (matmul.h),
// where `in` is x itself or rmsnorm(x) * norm (LayerInput; computed on the fly with rmsnorm's
// formula, in.scratch unused). Every weight is read once, whatever M. Two kernels:
//   - kRows: a warp per weight row on the CUDA cores, the whole input staged in shared memory
//     beside the warps' weight rings: M <= kGemvRowsKernelMaxRows and M * K <= 98,560 (the
//     decode step's kernel, and a verification pass's up to 4 rows);
//   - kTiles: tensor cores, 8 weight rows by all M rows per mma, K cut across a thread-block
//     cluster: M <= kGemvMaxRows and K up to about 23k at M = 16 (more for fewer rows).
// gemv_supports says whether a shape takes the GEMV at all (M >= 1, K % 8 == 0, x and every
// weight 16-byte aligned, ldx % 4 == 0, and the tiles kernel's bound: every shape the rows kernel
// takes, the tiles kernel takes too); gemv_rows_kernel_fits says whether kRows can take it, and
// gemv_kernel_for which kernel kAuto runs (kRows wherever it fits, else kTiles: measured as fast
// or faster up to 4 rows, see gemv.cu). Forcing a kernel that does not fit the shape is an error.
constexpr int kGemvMaxRows = 16;
constexpr int kGemvRowsKernelMaxRows = 4;
constexpr int kGemvMaxOutputs = 3;
enum class GemvKernel { kAuto, kRows, kTiles };
bool gemv_supports(const float* x, int64_t M, int64_t ldx, int64_t K);
bool gemv_rows_kernel_fits(int64_t M, int64_t K);
GemvKernel gemv_kernel_for(int64_t M, int64_t K);
// Every output reads the same input (weights of K columns); one launch for all of them. With
// `accumulate` each output is added into y instead of stored (the residual stream).
void gemv(const LayerInput& in, const Projection* outputs, int count, bool accumulate,
          cudaStream_t stream, GemvKernel kernel = GemvKernel::kAuto);
// out[m, i] = silu(g) * u with g = in W_gate[i]^T + b_gate[i], u likewise (SwiGLU's formula).
void gemv_gated(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                const MatrixView& w_up, const VectorView& b_up, float* out, int64_t ldo,
                cudaStream_t stream, GemvKernel kernel = GemvKernel::kAuto);

// The attention inputs of a decode step in one launch: q, k, v = in [W_q; W_k; W_v]^T (+ biases),
// then rope_and_store's work - q rotated into qkv[0].y, k rotated and v appended to the bf16
// caches [kv_heads, capacity, D] at positions pos0 + m (or *pos_dev + m); qkv[1].y and qkv[2].y
// are not written. The same numerics as gemv followed by rope_and_store.
struct QkvRope {
    int64_t pos0 = 0;
    const int64_t* pos_dev = nullptr;
    const float* inv_freq = nullptr;  // device, head_dim / 2
    uint16_t* k_cache = nullptr;
    uint16_t* v_cache = nullptr;
    int64_t capacity = 0;
    int32_t head_dim = 0;
};
void gemv_qkv_rope(const LayerInput& in, const Projection (&qkv)[3], const QkvRope& rope,
                   cudaStream_t stream, GemvKernel kernel = GemvKernel::kAuto);

// out[r, i] = silu(gate[r, i]) * up[r, i]; gate/up rows have stride ld, out is dense [rows, n].
void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out,
            cudaStream_t stream);

// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n, cudaStream_t stream);

// y[r, c] += bias[c] for the `rows` rows of length n, row stride ldy.
void add_bias(float* y, int64_t rows, int64_t n, int64_t ldy, const VectorView& bias,
              cudaStream_t stream);

// out[r, c] = bf16(x[r, c]) (round to nearest even) as a dense [rows, cols] matrix; x has row
// stride ldx. The operand cuBLAS multiplies with the bf16 weights.
void round_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ldx, uint16_t* out,
                   cudaStream_t stream);

// dst[i] = bf16(src[i]) for n elements of any stored dtype (bf16 is copied bit for bit).
void convert_to_bf16(const void* src, DType dtype, int64_t n, uint16_t* dst, cudaStream_t stream);

}  // namespace tdm::cuda
