// Block-sparse causal attention on the CPU over a plan (block_plan.h), and the CPU backend's whole
// attention_sparse (estimate, select, compute). The CUDA block-sparse kernel is tested against
// sparse_attention here.
#pragma once

#include <cstdint>

#include "attention/block_plan.h"
#include "backend/backend.h"
#include "core/thread_pool.h"

namespace tdm::cpu {

// out[i, h, :] = softmax over the active keys of scale * q[i, h] . k, times V, where the active
// keys of query i (position p = pos0 + i, query block r = p / B) are the keys of the plan's
// blocks of row (h, r) that are <= p (causal inside the diagonal block; full blocks are not
// masked). Shapes as cpu::attention (q [n_new, heads, D], caches [kv_heads, capacity, D], query
// head h reads KV head h / (heads / kv_heads), no copies). lse (optional) [heads, n_new] receives
// the natural-log sum of exp(scale q.k) over the active keys. call.window must be 0 (sliding
// windows run dense). Multithreaded over (head, query block, row tile), the costliest first;
// each tile walks its runs of consecutive active blocks with online softmax.
void sparse_attention(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionCall& call, const BlockPlanView& plan, float* out, float* lse,
                      ThreadPool& pool);

// The CPU backend's attention_sparse (backend.h): XAttention or FlexPrefill chooses the plan and
// sparse_attention computes it; density[heads] receives each query head's fraction of causal
// blocks computed. Sliding-window layers, dense settings and calls too short for the method run
// cpu::attention with density 1.
void attention_sparse(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionCall& call, const SparseAttention& sparse, float* out,
                      float* density, ThreadPool& pool);

}  // namespace tdm::cpu
