// Block-sparse attention on the CPU. A tile is up to attention_rows query rows of one query
// block of one query head; its plan row lists the active key blocks, and each run of consecutive
// active blocks is one key range for the dense kernel (kernels/cpu/attention_simd.h), which masks
// only where a key can be later than a row (the diagonal block) and returns its unnormalised
// output with the running max and denominator. The runs are merged here with the usual
// log-sum-exp rescaling. The kernel reads the query head's KV head straight from the cache, so
// GQA costs no copies.
#include "attention/cpu_sparse_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attention/block_grid.h"
#include "attention/flexprefill.h"
#include "attention/host_block_plan.h"
#include "attention/xattention.h"
#include "core/error.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"

namespace tdm::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Tile {
    int32_t head, row;  // plan row (head * q_blocks + i)
    int64_t r0, r1;     // query rows of the call
    int64_t cost;       // rows x active blocks: the costliest tiles start first
};

// Online-softmax state of a tile's rows: o (unnormalised) [rows, D], running max m, denominator l.
struct Partial {
    float* o;
    float* m;
    float* l;
};

// acc = acc (+) part, both unnormalised softmax states of the same rows.
void merge(Partial acc, Partial part, int64_t rows, int64_t D) {
    for (int64_t r = 0; r < rows; ++r) {
        if (part.m[r] == kNegInf) continue;  // the run showed this row no key
        const float mx = std::max(acc.m[r], part.m[r]);
        const float a = acc.m[r] == kNegInf ? 0.0f : std::exp(acc.m[r] - mx);
        const float b = std::exp(part.m[r] - mx);
        for (int64_t d = 0; d < D; ++d) acc.o[r * D + d] = acc.o[r * D + d] * a + part.o[r * D + d] * b;
        acc.l[r] = acc.l[r] * a + part.l[r] * b;
        acc.m[r] = mx;
    }
}

void check_plan(const AttentionCall& call, const BlockPlanView& plan) {
    TDM_REQUIRE(call.window == 0, TDM_ERR_INVALID_ARGUMENT,
                "sparse attention: sliding-window layers run dense");
    TDM_REQUIRE(call.heads > 0 && call.kv_heads > 0 && call.heads % call.kv_heads == 0 &&
                    call.head_dim > 0 && call.head_dim <= 1024 && call.pos0 >= 0 &&
                    call.n_new >= 0 && call.pos0 + call.n_new <= call.capacity,
                TDM_ERR_INVALID_ARGUMENT, "sparse attention: bad attention shape");
    TDM_REQUIRE(plan.block_size > 0 && plan.row_ptr && plan.cols, TDM_ERR_INVALID_ARGUMENT,
                "sparse attention: empty plan");
    const BlockGrid g = BlockGrid::of(call.pos0, call.n_new, plan.block_size);
    TDM_REQUIRE(plan.heads == call.heads && plan.first_q_block == g.first_q_block &&
                    plan.q_blocks == g.q_blocks && plan.k_blocks == g.k_blocks,
                TDM_ERR_INVALID_ARGUMENT,
                "sparse attention: the plan (" + std::to_string(plan.heads) + " heads, query blocks " +
                    std::to_string(plan.first_q_block) + "+" + std::to_string(plan.q_blocks) +
                    ") does not match the call");
}

}  // namespace

void sparse_attention(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionCall& call, const BlockPlanView& plan, float* out, float* lse,
                      ThreadPool& pool) {
    check_plan(call, plan);
    if (call.n_new == 0) return;
    TDM_REQUIRE(q && k_cache && v_cache && out, TDM_ERR_INVALID_ARGUMENT,
                "sparse attention: null q, k_cache, v_cache or out");
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, plan.block_size);
    const KernelTable& kt = active_kernels();
    const int64_t rt = kt.attention_rows, D = call.head_dim;
    const int32_t group = call.heads / call.kv_heads;

    std::vector<Tile> tiles;
    for (int32_t h = 0; h < call.heads; ++h) {
        for (int32_t i = 0; i < grid.q_blocks; ++i) {
            const int32_t row = h * grid.q_blocks + i;
            const int32_t r = grid.q_block(i);
            const int64_t active = plan.row_ptr[row + 1] - plan.row_ptr[row];
            for (int64_t r0 = grid.q_row_lo(r); r0 < grid.q_row_hi(r); r0 += rt) {
                const int64_t r1 = std::min(r0 + rt, grid.q_row_hi(r));
                tiles.push_back({h, row, r0, r1, active * (r1 - r0)});
            }
        }
    }
    std::stable_sort(tiles.begin(), tiles.end(),
                     [](const Tile& a, const Tile& b) { return a.cost > b.cost; });

    const int64_t state_floats = rt * (D + 2);  // o, m, l of one tile
    const int threads = pool.size();
    float* states = static_cast<float*>(
        thread_scratch(ScratchSlot::Shared, size_t(threads) * 2 * state_floats * sizeof(float)));
    const size_t kernel_scratch = kt.attention_scratch_bytes(call.head_dim);

    auto run_tile = [&](const Tile& t, float* state, void* scratch) {
        const int64_t rows = t.r1 - t.r0;
        Partial acc{state, state + rows * D, state + rows * D + rows};
        float* second = state + state_floats;
        Partial part{second, second + rows * D, second + rows * D + rows};
        AttentionTask task{};
        task.q = q;
        task.k = k_cache + int64_t(t.head / group) * call.capacity * D;
        task.v = v_cache + int64_t(t.head / group) * call.capacity * D;
        task.n_new = call.n_new;
        task.pos0 = call.pos0;
        task.heads = call.heads;
        task.group = 1;  // one query head per tile: row r is query r of head kv_head (= t.head)
        task.head_dim = call.head_dim;
        task.window = 0;
        task.scale = call.scale;
        task.kv_head = t.head;
        task.r0 = t.r0;
        task.r1 = t.r1;
        const int64_t last_key = call.pos0 + t.r1;  // keys past the tile's last row are invisible
        const int32_t* cols = plan.cols + plan.row_ptr[t.row];
        const int32_t n_cols = plan.row_ptr[t.row + 1] - plan.row_ptr[t.row];
        bool first = true;
        for (int32_t k = 0; k < n_cols;) {
            int32_t e = k;  // [cols[k], cols[e]] is a run of consecutive blocks
            while (e + 1 < n_cols && cols[e + 1] == cols[e] + 1) ++e;
            task.key_lo = grid.key_lo(cols[k]);
            task.key_hi = std::min(grid.key_hi(cols[e]), last_key);
            k = e + 1;
            if (task.key_lo >= task.key_hi) continue;
            const Partial dst = first ? acc : part;
            task.partial_o = dst.o;
            task.partial_m = dst.m;
            task.partial_l = dst.l;
            kt.attention(task, scratch);
            if (!first) merge(acc, part, rows, D);
            first = false;
        }
        const int32_t h = t.head;
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = t.r0 + r;
            float* dst = out + (i * call.heads + h) * D;
            if (first || acc.l[r] <= 0.0f) {  // no key at all: cannot happen with a valid plan
                std::fill(dst, dst + D, 0.0f);
                if (lse) lse[int64_t(h) * call.n_new + i] = kNegInf;
                continue;
            }
            const float inv = 1.0f / acc.l[r];
            for (int64_t d = 0; d < D; ++d) dst[d] = acc.o[r * D + d] * inv;
            if (lse) lse[int64_t(h) * call.n_new + i] = acc.m[r] + std::log(acc.l[r]);
        }
    };

    std::atomic<int64_t> next{0};
    const int64_t n_tiles = int64_t(tiles.size());
    auto worker = [&](int thread) {
        void* scratch = thread_scratch(ScratchSlot::Kernel, kernel_scratch);
        float* state = states + int64_t(thread) * 2 * state_floats;
        for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n_tiles;)
            run_tile(tiles[t], state, scratch);
    };
    if (threads == 1 || n_tiles == 1) worker(0);
    else pool.run_on_all(worker);
}

void attention_sparse(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionCall& call, const SparseAttention& sparse, float* out,
                      float* density, ThreadPool& pool) {
    HostBlockPlan plan;
    bool sparse_plan = false;
    if (call.window == 0 && call.n_new > 0) {
        switch (sparse.method) {
            case TDM_ATTENTION_DENSE: break;
            case TDM_ATTENTION_XATTENTION:
                sparse_plan = xattn::plan(q, k_cache, call, sparse, plan, &pool);
                break;
            case TDM_ATTENTION_FLEXPREFILL:
                sparse_plan = flex::plan(q, k_cache, call, sparse, plan, &pool);
                break;
            default:
                fail(TDM_ERR_INVALID_ARGUMENT,
                     "unknown attention method " + std::to_string(int(sparse.method)));
        }
    }
    if (!sparse_plan) {
        AttentionShape s{call.n_new, call.pos0,     call.capacity, call.heads,
                         call.kv_heads, call.head_dim, call.window,  call.scale};
        attention(q, k_cache, v_cache, s, out, pool);
        if (density) std::fill(density, density + call.heads, 1.0f);
        return;
    }
    sparse_attention(q, k_cache, v_cache, call, plan.view(), out, nullptr, pool);
    if (density)
        for (int32_t h = 0; h < call.heads; ++h) density[h] = float(plan.density(h));
}

}  // namespace tdm::cpu
