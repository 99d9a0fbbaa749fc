// XAttention (ALGORITHMS.md section 4): block importance from strided antidiagonal scores, block
// selection by a cumulative threshold per query-block row. This is the CPU reference the CUDA
// estimator is tested against, written to be read next to the spec.
//
// Everything lives on the absolute block grid of block_plan.h (a call's queries are positions
// pos0 .. pos0+n_new-1, its keys 0 .. pos0+n_new-1), and at reshaped granularity the grid is
// absolute too: reshaped query row i holds positions [i*S, (i+1)*S), reshaped key column j holds
// keys [j*S, (j+1)*S). That is the reference's bottom-right alignment (offset (Lk - Lq)/S) when
// pos0 is a multiple of S, and it lets a chunked prefill estimate each chunk against every key
// before it. Positions a reshaped row or column lacks (queries outside the call, keys past the
// last one) contribute zero vectors to the antidiagonal, like the reference's zero padding.
//
// Shapes are the backend's: q [n_new, heads, D], k_cache [kv_heads, capacity, D]; query head h
// reads KV head h / (heads / kv_heads) (the reference repeats the KV heads; nothing is copied here).
#pragma once

#include <cstdint>
#include <vector>

#include "attention/host_block_plan.h"
#include "backend/backend.h"
#include "core/thread_pool.h"

namespace tdm::xattn {

// The S pairs of the antidiagonal of reshaped sub-block (i, j), t = 0 .. S-1: query position
// i*S + (S-1-t) with key position j*S + t (lower left to upper right). For S = 4, block (0, 0)
// pairs (3,0), (2,1), (1,2), (0,3).
inline int64_t antidiagonal_query(int64_t i, int32_t t, int32_t S) { return i * S + (S - 1 - t); }
inline int64_t antidiagonal_key(int64_t j, int32_t t, int32_t S) { return j * S + t; }

// Score[i, j] = (scale / S) * sum_t q[antidiagonal_query(i,t)] . k[antidiagonal_key(j,t)] for
// query head h, i and j absolute reshaped indices (missing positions contribute 0).
float antidiagonal_score(const float* q, const float* k_cache, const AttentionCall& call, int32_t h,
                         int64_t i, int64_t j, int32_t S);

// attn_sum [heads, q_blocks, k_blocks], row-major, for grid = BlockGrid::of(call.pos0,
// call.n_new, block_size): for each query head and each reshaped row i that holds at least one of
// the call's queries, A[i, :] = softmax over the key columns j <= i (causal at reshaped
// granularity, the diagonal sub-block included) of Score[i, :], in f32 with an f64 denominator;
// attn_sum[h, qb, kb] is the sum of A over the rows of query block qb and the columns of key
// block kb. A row of a full query block sums to B/S; entries above the diagonal are 0. With
// S = 1 these are the exact block sums of causal softmax attention. stride must divide
// block_size. pool may be null (one thread).
void block_scores(const float* q, const float* k_cache, const AttentionCall& call,
                  int32_t block_size, int32_t stride, float* attn_sum, ThreadPool* pool);

// The selection of one query-block row r (absolute) from its scores s[0..r] (find_blocks_chunked,
// the clean behaviour):
//   threshold >= 1: every causal block 0..r (dense, whatever the rounding);
//   otherwise required = threshold * sum_{c<=r} s[c]; the sink 0 and the diagonal r are always
//   selected (once, also when r = 0) and start the running mass acc; the other blocks 0 < c < r
//   are visited by descending score (ties: lower c first) and each is selected while
//   acc < required, the crossing block included (inclusive); nothing above the diagonal.
// The running mass accumulates in f64 in visiting order. A block whose cumulative mass lies
// within ~1e-4 (relative) of `required` may flip in an implementation that sums in another
// order. Writes the selected columns ascending to cols (cleared first).
void select_row(const float* s, int32_t r, float threshold, std::vector<int32_t>& cols);

// select_row over every (head, query block) of attn_sum [heads, q_blocks, k_blocks] with head h's
// threshold thresholds[h].
HostBlockPlan select_blocks(const float* attn_sum, int32_t heads, const BlockGrid& grid,
                            const float* thresholds);

// Whether a call of this grid is worth estimating: with at most 2 key blocks every causal block
// is mandatory (sink or diagonal), so the plan is dense anyway and the call runs dense.
inline bool worth_estimating(const BlockGrid& grid) { return grid.k_blocks > 2; }

// The fp8 estimation's operands: q [n_new, heads, D] and the keys 0 .. pos0+n_new-1 of k_cache
// as [kv_heads, keys, D] (call.capacity = keys), every value quantize_e4m3'd with its head's
// scale exponent (q_exp [heads], k_exp [kv_heads]).
//
// A head's exponent is fp8::e4m3_scale_exponent of its largest |value|: over the call's n_new
// queries for a query head, over keys 0 .. pos0+n_new-1 for a KV head (never past them). Why:
// in E4M3 the GPU estimator streams half the bytes of bf16 and its tensor cores run at twice the
// rate (ENGINE.md, block-sparse prefill); this twin rounds identically (attention/fp8_e4m3.h), so
// the masks of the two can be compared. The quantization is O((n_new + keys) * heads * D), small
// next to the scores; pool (may be null) shares it out.
struct Fp8Operands {
    std::vector<float> q, k;
    AttentionCall call;
    std::vector<int32_t> q_exp, k_exp;
};
Fp8Operands fp8_operands(const float* q, const float* k_cache, const AttentionCall& call,
                         ThreadPool* pool = nullptr);

// The whole estimator: block_scores then select_blocks with sparse.xattn_threshold[heads]; with
// sparse.xattn_fp8 block_scores reads fp8_operands instead of q and k_cache (only the selection
// sees them: the block-sparse attention itself reads the real q, k and v).
// Returns false (and leaves plan alone) when the call should run dense (worth_estimating).
bool plan(const float* q, const float* k_cache, const AttentionCall& call,
          const SparseAttention& sparse, HostBlockPlan& plan, ThreadPool* pool);

}  // namespace tdm::xattn
