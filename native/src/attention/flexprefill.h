// FlexPrefill (ALGORITHMS.md section 3): per query head, a query-aware block pattern or a
// vertical-slash pattern, with budgets that cover a fraction gamma of the estimated attention.
// This is the CPU reference the CUDA estimator is tested against, one function per step of 3.3.
//
// Generalised to the absolute block grid of block_plan.h so that chunked prefill works: a call's
// queries are positions pos0 .. pos0+n_new-1 and its keys 0 .. keys-1 (keys = pos0 + n_new); with
// pos0 = 0 and n_new = N everything below equals the reference (q_len == k_len), except where a
// comment says "clean" (ALGORITHMS.md asks for the clean behaviour; tdm_sparse_compat flags bring
// the reference's back). The representative queries Q_hat are the call's last R = min(B, n_new)
// query rows, scaled by call.scale (1/sqrt(D)).
//
// Shapes are the backend's: q [n_new, heads, D], k_cache [kv_heads, capacity, D]; query head h
// reads KV head h / (heads / kv_heads) (gqa_interleave = false).
#pragma once

#include <cstdint>
#include <vector>

#include "attention/host_block_plan.h"
#include "backend/backend.h"
#include "core/thread_pool.h"

namespace tdm::flex {

// Rows of Q_hat for a call of n_new queries: the last min(B, n_new).
inline int64_t representative_rows(int64_t n_new, int32_t block_size) {
    return n_new < block_size ? n_new : block_size;
}

// Step (1). a_hat [R, keys]: row i is the f32 softmax of scale * q[n_new-R+i] . k[j] over the keys
// j <= that query's position (causal; later keys get 0).
void last_block_attention(const float* q, const float* k_cache, const AttentionCall& call,
                          int32_t h, int32_t block_size, float* a_hat);

// Step (1). vertical[j] = mean_i a_hat[i, j] (length keys) and, by distance from the diagonal,
// slash[d] = (1/R) sum_i a_hat[i, p_i - d] for d = 0 .. keys-1 (p_i = position of row i; d = 0 is
// the main diagonal). Both sum to 1. (The reference indexes slash by keys-1-d.)
void vertical_slash(const float* a_hat, int64_t R, int64_t keys, int64_t last_position,
                    float* vertical, float* slash);

// Sum of x over consecutive runs of B entries: out[b] = sum x[b*B .. min((b+1)*B, n)), ceil(n/B)
// entries. vertical -> key-block scores; slash -> scores of diagonal offsets (entry s covers the
// distances [s*B, (s+1)*B), s = 0 the diagonal band; "clean": the reference pools keys-1-d, which
// is the same when keys is a multiple of B).
void sum_pool(const float* x, int64_t n, int32_t block_size, float* out);

// count_cover of 3.3 (2): the number of entries of x, sorted descending, whose running sum stays
// <= gamma, plus 1 (score_cover_topk). The running sum is f64.
int64_t coverage_count(const float* x, int64_t n, float gamma);

// Step (2): a budget in blocks from a coverage count in tokens: count / U + 1 with U = block_size
// ("clean"), or U = 128 whatever the block size with TDM_SPARSE_COMPAT_FLEX_BUDGET_128; then
// clamped to [min_blocks, max_blocks] (max wins) and to at least 1 (the sink and the diagonal are
// part of every plan).
int32_t budget_blocks(int64_t count, int32_t block_size, uint32_t compat, int32_t min_blocks,
                      int32_t max_blocks);

// min_budget / max_budget in tokens -> blocks (ceil); max 0 = no cap -> k_blocks; both <= k_blocks.
int32_t min_budget_blocks(int64_t min_budget_tokens, int32_t block_size, int32_t k_blocks);
int32_t max_budget_blocks(int64_t max_budget_tokens, int32_t block_size, int32_t k_blocks);

// Mean of the key rows of each key block (a partial last block averages its real rows):
// kbar [k_blocks, D] for KV head kv_head.
void mean_pool_keys(const float* k_cache, const AttentionCall& call, int32_t kv_head,
                    int32_t block_size, float* kbar);

// Mean of the call's query rows of each of its query blocks (partial blocks average their real
// rows, which is the reference's bs/(real rows) rescale): qbar [q_blocks, D] for query head h.
void mean_pool_queries(const float* q, const AttentionCall& call, int32_t h, int32_t block_size,
                       float* qbar);

// Step (4). a_pool [k_blocks] = softmax(scale * mean_i(q_hat_i) . kbar[c]) over every key block
// (no causal mask, as in the reference).
void pooled_distribution(const float* q, const AttentionCall& call, int32_t h, int32_t block_size,
                         const float* kbar, int32_t k_blocks, float* a_pool);

// Jensen-Shannon distance sqrt(0.5 KL(p||m) + 0.5 KL(q||m)), m = (p+q)/2, natural log, in
// [0, sqrt(ln 2)]. "Clean": 0 log 0 = 0 (xlogy). nan_compat: p log(p/m) literally, so a zero
// entry makes it NaN (the reference; NaN < tau is false, so such a head is vertical-slash).
float js_distance(const float* p, const float* q, int64_t n, bool nan_compat);

// Step (5): the vertical-slash pattern. Marks in mask [q_blocks, k_blocks] (row i = the call's
// query block grid.q_block(i)) the blocks (r, c) for c among the n_vertical highest key-block
// scores with c <= r, and (r, r - s) for s among the n_slash highest offset scores with s <= r.
// Key block 0 and offset 0 always rank first (the reference sets them to +inf); ties: lower index
// first. Does not clear mask.
void vertical_slash_blocks(const float* vertical_blocks, const float* slash_blocks,
                           int32_t n_vertical, int32_t n_slash, const BlockGrid& grid,
                           uint8_t* mask);

// Step (6): query-aware blocks. A[i, c] = softmax over c <= r of scale * qbar[i] . kbar[c]
// (r = grid.q_block(i)); the entries of all rows together, sorted descending (ties: lower
// row-major index first), are kept while their inclusive running sum (f64) stays
// <= gamma * q_blocks (global over the grid: each row sums to 1). Marks them in mask
// [q_blocks, k_blocks]; does not clear it.
void query_aware_blocks(const float* qbar, const float* kbar, const BlockGrid& grid,
                        int32_t head_dim, float scale, float gamma, uint8_t* mask);

// What the estimator decided for one query head (kept for tests and diagnostics).
struct HeadDecision {
    float js = 0;              // Jensen-Shannon distance of a_pool and the pooled vertical scores
    bool query_aware = false;  // js < tau
    int32_t n_vertical = 0;    // blocks
    int32_t n_slash = 0;
};

// Whether a call of this grid is estimated: the reference runs dense when N <= max(2B, minB*B);
// here N is the call's keys (pos0 + n_new).
bool worth_estimating(const BlockGrid& grid, const SparseAttention& sparse);

// The whole estimator for one query head: steps (1)-(6) into mask [q_blocks, k_blocks] (cleared
// first). kbar is mean_pool_keys of the head's KV head.
HeadDecision estimate_head(const float* q, const float* k_cache, const AttentionCall& call,
                           const SparseAttention& sparse, int32_t h, const float* kbar,
                           uint8_t* mask);

// Every head, into a plan. Returns false (plan untouched) when the call should run dense.
// decisions (optional) receives one HeadDecision per query head.
bool plan(const float* q, const float* k_cache, const AttentionCall& call,
          const SparseAttention& sparse, HostBlockPlan& plan, ThreadPool* pool,
          std::vector<HeadDecision>* decisions = nullptr);

}  // namespace tdm::flex
