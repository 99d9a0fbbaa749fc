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

// out[r, :] = table[tokens[r], :] widened to f32. tokens are device ids in [0, table.rows).
void embed(const int32_t* tokens, int64_t n, const MatrixView& table, float* out,
           cudaStream_t stream);

// out[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * w[i], for `rows` rows of length n.
void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out,
             cudaStream_t stream);

// Hugging Face rotate_half RoPE in place on x [rows, heads, head_dim] at positions pos0 + r:
// angle = f32(f32(pos) * inv_freq[i]) as transformers computes it, then its cos and sin.
// inv_freq is a device array of head_dim / 2 floats.
void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
          const float* inv_freq, cudaStream_t stream);

// out[r, i] = silu(gate[r, i]) * up[r, i]; gate/up rows have stride ld, out is dense [rows, n].
void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out,
            cudaStream_t stream);

// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n, cudaStream_t stream);

// y[r, c] += bias[c] for the `rows` rows of length n, row stride ldy.
void add_bias(float* y, int64_t rows, int64_t n, int64_t ldy, const VectorView& bias,
              cudaStream_t stream);

// Writes k, v [n, kv_heads, head_dim] (f32) into caches [kv_heads, capacity, head_dim] at
// positions pos0 .. pos0 + n - 1, rounded to bf16 (the cache the attention kernels read).
void kv_store(const float* k, const float* v, int64_t n, int64_t pos0, int64_t capacity,
              int32_t kv_heads, int32_t head_dim, uint16_t* k_cache, uint16_t* v_cache,
              cudaStream_t stream);

// out[r, c] = bf16(x[r, c]) (round to nearest even) as a dense [rows, cols] matrix; x has row
// stride ldx. The operand cuBLAS multiplies with the bf16 weights.
void round_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ldx, uint16_t* out,
                   cudaStream_t stream);

// dst[i] = bf16(src[i]) for n elements of any stored dtype (bf16 is copied bit for bit).
void convert_to_bf16(const void* src, DType dtype, int64_t n, uint16_t* dst, cudaStream_t stream);

}  // namespace tdm::cuda
