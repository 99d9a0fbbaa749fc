// XAttention and FlexPrefill on the GPU (ALGORITHMS.md 4 and 3): estimation of which key blocks
// matter and block selection, ending in a block plan (attention/block_plan.h) in device memory
// that the block-sparse attention kernel consumes. The CUDA twins of attention/xattention.h and
// attention/flexprefill.h; everything runs on the caller's stream with no host synchronisation
// and no loop over heads on the host (every kernel covers all heads).
//
// Kernels (cuda_estimate_tile.cuh, cuda_xattention.cu, cuda_flexprefill.cu, cuda_sparse_plan.cu):
//   - one fused score kernel, run twice: pass 1 keeps each row's online max and sum over key
//     tiles, pass 2 recomputes the tile and turns the normalised probabilities into the method's
//     sums (XAttention: per-block sums; FlexPrefill: vertical and slash sums). The strided
//     (antidiagonal) reshape is never materialised: tile products accumulate over the S offsets;
//   - selection: XAttention sorts each row's candidate blocks in one thread block (cub) and cuts
//     at the cumulative threshold; FlexPrefill finds its gamma-coverage counts and its global
//     query-aware cut with a weighted radix select, and its top-k columns/diagonals with a
//     per-head sort;
//   - the plan: a bitmask per (head, query block) row -> counts -> scan -> ascending columns, and
//     the density of every head.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/block_grid.h"
#include "attention/block_plan.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::cuda {

// One attention call's queries and keys, as the backend holds them.
struct EstimateInputs {
    const float* q = nullptr;        // [n_new, heads, head_dim] f32, positions pos0 ..
    const void* k_cache = nullptr;   // [kv_heads, capacity, head_dim]: bf16 or f32 (k_bf16)
    bool k_bf16 = false;
    int64_t n_new = 0, pos0 = 0, capacity = 0;
    int32_t heads = 0, kv_heads = 0, head_dim = 0;  // head_dim 64 or 128
    float scale = 1.0f;              // multiplies q.k (1/sqrt(head_dim))
};

struct XAttentionParams {
    int32_t block_size = 128;            // B: 64 or 128
    int32_t stride = 8;                  // S, divides B
    const float* thresholds = nullptr;   // [heads] host memory (tau per query head), or null
    float threshold = 0.9f;              // used when thresholds is null
    // The score products on the Hopper wgmma/TMA engine (cuda_xattention_wgmma.cuh) where it
    // applies (bf16 cache, B / S <= 64, at least S keys); false keeps the mma.sync engine
    // (tests compare the two).
    bool wgmma = true;
    // Score from fp8 e4m3 copies of Q and K (SparseAttention::xattn_fp8; cuda_fp8_stage.cu): on
    // the wgmma engine at head dim 128 as fp8 products, elsewhere as the bf16 of the same values.
    bool fp8 = false;
};

struct FlexPrefillParams {
    int32_t block_size = 128;
    float gamma = 0.95f;
    float tau = 0.1f;
    int64_t min_budget = 1024;  // tokens
    int64_t max_budget = 0;     // tokens; 0 = no cap
    uint32_t compat = 0;        // tdm_sparse_compat flags
};

// The call's block grid, checked (block size 64 or 128, a grid the plan kernels can index).
BlockGrid checked_block_grid(int64_t n_new, int64_t pos0, int32_t block_size);

// True when FlexPrefill falls back to dense attention for a call (ALGORITHMS.md 3.3: the keys
// are not more than max(2 B, minB B)), decided from shapes alone, as flex::worth_estimating.
bool flexprefill_runs_dense(int64_t n_new, int64_t pos0, const FlexPrefillParams& p);

// The fp8 estimation's conversion (cuda_fp8_stage.cu), elementwise over n (even) floats in device
// memory: out[i] = the e4m3 byte of x[i], rounded to nearest even, saturating. For the tests
// against fp8::e4m3_bits.
void e4m3_bytes(const float* x, int64_t n, uint8_t* out, cudaStream_t s);

// Owns the device memory of estimation and of the plans it builds (grown on demand and kept, so
// steady-state calls allocate nothing). One per backend; one call at a time on one stream.
class SparsePlanner {
public:
    // Estimates and selects; the returned plan (and density()) stay valid until the next call.
    BlockPlanView xattention(const EstimateInputs& in, const XAttentionParams& p, cudaStream_t s);
    BlockPlanView flexprefill(const EstimateInputs& in, const FlexPrefillParams& p, cudaStream_t s);

    // [heads]: fraction of causal (query block, key block) pairs in the last plan, per head.
    const float* density() const { return density_.as<float>(); }

    // Intermediates of the last call, for the tests (device memory):
    // XAttention: [heads, q_blocks, k_blocks] block sums of the antidiagonal softmax (zero above
    // the diagonal).
    const float* xattn_block_sums() const { return block_sums_.as<float>(); }
    // FlexPrefill: [heads, Lk] vertical sums and slash sums by distance from the diagonal, [heads] Jensen-Shannon distance and the
    // per-head decision (1 = query-aware), [heads] budgets nV and nS in blocks.
    const float* flex_vertical() const { return vert_.as<float>(); }
    const float* flex_slash() const { return slash_.as<float>(); }
    const float* flex_jsd() const { return jsd_.as<float>(); }
    const int32_t* flex_query_aware() const { return head_info_.as<int32_t>(); }
    const int32_t* flex_budgets() const { return head_info_.as<int32_t>() + info_heads_; }  // [nV | nS]

private:
    void stage_queries(const EstimateInputs& in, int64_t tok_base, int64_t tokens, cudaStream_t s);
    // The fp8 estimation's operands (cuda_fp8_stage.cu): q_stage_ [heads, tokens, D] and k_stage_
    // [kv_heads, keys, D] as bf16 values (offset_major = 0), or as fp8 bytes stored offset-major
    // for stride S = offset_major ([heads, S, tokens / S, D], likewise the keys); fp8_amax_ the
    // heads' maxima and then their scale exponents [heads + kv_heads] (fp8_exponents()). Returns
    // keys, the rows a KV head has in k_stage_ (key_len rounded up to a multiple of 16 and of S;
    // the rows past key_len are zero).
    int64_t stage_fp8(const EstimateInputs& in, int64_t tok_base, int64_t tokens, int offset_major,
                      cudaStream_t s);
    int32_t* fp8_exponents(int heads, int kv_heads) const {
        return reinterpret_cast<int32_t*>(fp8_amax_.as<unsigned>() + heads + kv_heads);
    }
    BlockPlanView build_plan(const BlockGrid& g, int32_t heads, cudaStream_t s);

    int32_t info_heads_ = 0;  // heads of the last FlexPrefill call (head_info_ layout)
    DeviceBuffer q_stage_;     // bf16 or fp8 [heads, tokens, D] queries (zero outside the call)
    DeviceBuffer k_stage_;     // fp8 estimation: bf16 or fp8 [kv_heads, keys, D]
    DeviceBuffer fp8_amax_;    // fp8 estimation: [heads + kv_heads] amax bits, then exponents
    DeviceBuffer row_stats_;   // f32 [heads, rows, 2]: running max and sum of each score row
    DeviceBuffer block_sums_;  // XAttention block sums
    DeviceBuffer lse_scratch_; // XAttention one-pass: f32 [heads, rows of a launch, segments]
    DeviceBuffer thresholds_;  // [heads] tau
    DeviceBuffer mask_;        // uint32 [heads * q_blocks, words]: selected blocks per row
    DeviceBuffer counts_;      // int32 [heads * q_blocks + 1]
    DeviceBuffer row_ptr_, cols_;
    DeviceBuffer density_;
    DeviceBuffer scan_temp_;   // cub scratch
    // FlexPrefill
    DeviceBuffer vert_, slash_, pooled_k_, pooled_q_, jsd_, head_info_, select_state_, hist_;
    DeviceBuffer partial_stats_, block_scores_, aware_scores_, vs_flags_;
};

}  // namespace tdm::cuda
