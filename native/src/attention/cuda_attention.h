// Dense causal attention on the GPU (f32 activations and f32 KV cache), the twin of
// tdm::cpu::attention: grouped-query heads read their KV head without repeating it, Mistral's
// sliding window, any head dimension up to kMaxHeadDim, and the log-sum-exp of every row.
//
// Two kernels share one inner loop (cuda_attention_tile.cuh, an online softmax over tiles of
// keys held in shared memory):
//   - prefill: a block per (tile of query rows, KV head); the tiles of keys every row of the
//     block fully sees skip the mask, the diagonal (and window-edge) tiles are masked. Head dims
//     64 and 128 take a tensor-core kernel instead (cuda_flash_prefill.cu, bf16 mma.sync).
//   - decode:  one query row per head; the visible keys are split into chunks over blocks, each
//     writes its partial softmax (output and log-sum-exp), and a merge kernel combines them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tdm::cuda {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxDecodeSplits = 64;

struct AttentionArgs {
    const float* q;        // [n_new, heads, head_dim], queries at positions pos0 .. pos0+n_new-1
    const float* k_cache;  // [kv_heads, capacity, head_dim]; positions 0 .. pos0+n_new-1 are valid
    const float* v_cache;  // [kv_heads, capacity, head_dim]
    float* out;            // [n_new, heads, head_dim]
    float* lse;            // [n_new, heads]: log sum_j exp(scale q.k_j) over visible j; or null
    int64_t n_new = 0, pos0 = 0, capacity = 0;
    int32_t heads = 0, kv_heads = 0, head_dim = 0;
    int32_t window = 0;    // 0: the whole causal prefix; else keys j with pos - window < j <= pos
    float scale = 1.0f;    // multiplies q.k
};

// Any n_new (the forward pass uses it for prompts; decode() is faster for one row). Runs the
// tensor-core kernel when flash_prefill_supports(args), else the f32 tiled kernel.
void attention_prefill(const AttentionArgs& args, cudaStream_t stream);

// The tensor-core prefill (cuda_flash_prefill.cu: bf16 operands, f32 accumulation) handles head
// dims 64 and 128 with 16-byte aligned q, k_cache, v_cache and out.
bool flash_prefill_supports(const AttentionArgs& args);

// That kernel alone; throws TDM_ERR_UNSUPPORTED unless flash_prefill_supports(args).
void attention_prefill_flash(const AttentionArgs& args, cudaStream_t stream);

// How many chunks decode should split the keys into to occupy `multiprocessors` SMs.
int decode_splits(const AttentionArgs& args, int multiprocessors);

// Floats of scratch decode needs for `splits` partial results.
int64_t decode_scratch_floats(const AttentionArgs& args, int splits);

// n_new must be 1. `splits` in [1, kMaxDecodeSplits] (more than the visible keys is allowed: the
// empty chunks contribute nothing); scratch holds decode_scratch_floats(args, splits) floats.
void attention_decode(const AttentionArgs& args, int splits, float* scratch, cudaStream_t stream);

}  // namespace tdm::cuda
