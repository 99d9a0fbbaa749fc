// Causal attention on the GPU over a bf16 KV cache (f32 queries and outputs), the twin of
// tdm::cpu::attention: grouped-query heads read their KV head without repeating it, Mistral's
// sliding window, any head dimension up to kMaxHeadDim, and the log-sum-exp of every row.
//
// Kernels:
//   - prefill, head dims 64 and 128 (cuda_flash_prefill.cu): tensor cores (bf16 mma.sync, f32
//     accumulation), K/V tiles copied straight from the bf16 cache into shared memory with a
//     cp.async double buffer; the inner loop lives in cuda_flash_tile.cuh.
//   - block-sparse prefill (cuda_block_sparse_prefill.cu): the same inner loop over the active key
//     blocks of a BlockPlanView (attention/block_plan.h) instead of a range of keys.
//   - prefill, any other head dim (cuda_prefill_attention.cu): an f32 SIMT tile loop
//     (cuda_attention_tile.cuh) that widens the bf16 cache as it loads it.
//   - decode (cuda_decode_attention.cu): one query row per head; the visible keys are split into
//     chunks over blocks, each computes its partial softmax (output and log-sum-exp), and the
//     chunks are combined - within a thread-block cluster (short caches), by the last block of
//     each KV head, or by a merge kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/block_plan.h"

namespace tdm::cuda {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxDecodeSplits = 64;
// Decode at head dims 64/128 with <= 8 query heads per KV head runs up to this many chunks as one
// thread-block cluster per KV head (portable cluster size).
constexpr int kMaxClusterDecodeSplits = 8;

struct AttentionArgs {
    const float* q;           // [n_new, heads, head_dim], queries at positions pos0 .. pos0+n_new-1
    const uint16_t* k_cache;  // bf16 [kv_heads, capacity, head_dim]; 0 .. pos0+n_new-1 valid
    const uint16_t* v_cache;  // bf16 [kv_heads, capacity, head_dim]
    float* out;               // [n_new, heads, head_dim]
    float* lse;               // [n_new, heads]: log sum_j exp(scale q.k_j) over visible j; or null
    int64_t n_new = 0, pos0 = 0, capacity = 0;
    int32_t heads = 0, kv_heads = 0, head_dim = 0;
    int32_t window = 0;       // 0: the whole causal prefix; else keys pos - window < j <= pos
    float scale = 1.0f;       // multiplies q.k
    // Decode only: when set, the query's position is *pos_dev (device memory) instead of pos0, so
    // a recorded CUDA graph replays the launch at every step (pos0 still sizes the host checks).
    // Decode reads it before waiting on the kernel launched ahead of it (overlap.cuh): it must be
    // written before that kernel starts (the step state is, ahead of the step's kernels).
    const int64_t* pos_dev = nullptr;
};

// Which tensor-core loop the head-dim 64/128 prefill kernels (dense and block-sparse) run:
//   - kWgmma: the Hopper warp-specialised loop (TMA copies, wgmma; cuda_flash_wgmma.cuh), for
//     layers without a sliding window whose cache TMA can map (wgmma_prefill_supports);
//   - kMmaSync: the mma.sync loop (cuda_flash_tile.cuh), any of these layers;
//   - kAuto: kWgmma where it applies, else kMmaSync. TANDEM_FLASH_LOOP=mma in the environment
//     makes kAuto pick kMmaSync (for comparisons and diagnosis).
enum class FlashLoop { kAuto, kWgmma, kMmaSync };

// Any n_new (the forward pass uses it for prompts; decode() is faster for one row). Runs the
// tensor-core kernel when flash_prefill_supports(args), else the f32 tiled kernel.
void attention_prefill(const AttentionArgs& args, cudaStream_t stream);

// The tensor-core prefill handles head dims 64 and 128 with 16-byte aligned q, k_cache, v_cache
// and out.
bool flash_prefill_supports(const AttentionArgs& args);

// What the wgmma loop needs beyond flash_prefill_supports: no sliding window and a cache TMA can
// map (16-byte aligned, rows of a multiple of 16 bytes per KV head).
bool wgmma_prefill_supports(const AttentionArgs& args);

// That kernel alone; throws TDM_ERR_UNSUPPORTED unless flash_prefill_supports(args) (and, for
// kWgmma, wgmma_prefill_supports(args)).
void attention_prefill_flash(const AttentionArgs& args, cudaStream_t stream,
                             FlashLoop loop = FlashLoop::kAuto);

// Block-sparse causal prefill: query head h, query block r attends only to the key blocks listed
// in plan row h * plan.q_blocks + (r - plan.first_q_block) (device memory); the diagonal block is
// masked per token, the others are computed whole. Needs what flash_prefill_supports needs, no
// sliding window, plan.heads == heads, block size 64 or 128, and a plan grid that matches the call
// (first_q_block = pos0 / B, q_blocks covering pos0 .. pos0 + n_new - 1). Rows of a plan with no
// visible key (an invalid plan) get zero output and lse = -inf; columns outside 0..r are ignored.
// Nothing waits for the GPU.
// Block size 128 runs the wgmma loop under the rules of FlashLoop; block size 64 runs mma.sync.
void attention_prefill_block_sparse(const AttentionArgs& args, const BlockPlanView& plan,
                                    cudaStream_t stream, FlashLoop loop = FlashLoop::kAuto);

// How many chunks decode should split the keys into on a GPU of `multiprocessors` SMs. A replayed
// graph (pos_dev) fixes the split count for any position: size it for the longest one, pos0 =
// capacity - 1 (chunks of a shorter prefix are just shorter). For the vectorised shapes (head
// dims 64/128, <= 8 query heads per KV head, 16-byte aligned q and caches) it is at most
// kMaxClusterDecodeSplits up to 2048 visible keys (the cluster kernel) and more past that.
int decode_splits(const AttentionArgs& args, int multiprocessors);

// Floats of scratch decode needs for `splits` partial results (and the vectorised kernel's
// per-KV-head arrival counts, which must be zero before the first call: clear_decode_scratch on
// a fresh buffer; every call leaves them zero again).
int64_t decode_scratch_floats(const AttentionArgs& args, int splits);
void clear_decode_scratch(float* scratch, const AttentionArgs& args, int splits,
                          cudaStream_t stream);

// n_new must be 1. `splits` in [1, kMaxDecodeSplits] (more than the visible keys is allowed: the
// empty chunks contribute nothing); scratch holds decode_scratch_floats(args, splits) floats,
// cleared once (clear_decode_scratch). Head dims 64 and 128 with up to 8 query heads per KV head
// run one vectorised kernel: with splits <= kMaxClusterDecodeSplits as one thread-block cluster
// per KV head that merges its chunks in distributed shared memory (scratch untouched), else with
// the last block per KV head merging the chunks through scratch. The rest runs the tile kernel
// and a merge kernel. Any split count gives the same result up to f32 rounding.
void attention_decode(const AttentionArgs& args, int splits, float* scratch, cudaStream_t stream);

}  // namespace tdm::cuda
