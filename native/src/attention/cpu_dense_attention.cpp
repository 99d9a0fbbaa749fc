// Dense causal attention on the CPU (tdm::cpu::attention): the work is cut into tasks of up to
// attention_rows query rows of one KV head (the rows of a GQA group share every K/V load), handed
// to the pool's threads from a shared counter, most expensive (latest rows) first. When there are
// too few tasks to occupy the threads -- decode has one per KV head -- the keys are split too,
// and the partial softmax results are merged here (the flash-decoding split).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"

namespace tdm::cpu {
namespace {

// Multiply-adds below which a second thread costs more to wake than it saves (matmul.cpp's rule).
constexpr int64_t kMinWorkPerThread = 64 * 1024;
constexpr int64_t kMinKeysPerSplit = 256;  // below this, a split's fixed cost outweighs it

struct Plan {
    int64_t group, rows, row_blocks, splits;
};

// The keys some row in [r0, r1) may see: [lo, hi).
std::pair<int64_t, int64_t> visible_keys(const AttentionShape& s, int64_t group, int64_t r0,
                                         int64_t r1) {
    const int64_t first = s.pos0 + r0 / group, last = s.pos0 + (r1 - 1) / group;
    const int64_t lo = s.window > 0 ? std::max<int64_t>(0, first - s.window + 1) : 0;
    return {lo, last + 1};
}

// Merges the key splits of one row block: o = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
void merge_splits(const AttentionShape& s, int64_t group, int32_t kv_head, int64_t r0, int64_t r1,
                  int64_t splits, int64_t block_floats, const float* parts, float* out) {
    const int64_t D = s.head_dim, rb = r1 - r0;
    for (int64_t r = 0; r < rb; ++r) {
        float mmax = -std::numeric_limits<float>::infinity();
        for (int64_t sp = 0; sp < splits; ++sp)
            mmax = std::max(mmax, parts[sp * block_floats + rb * D + r]);
        float denom = 0.0f;
        float acc[1024];
        std::fill(acc, acc + D, 0.0f);
        for (int64_t sp = 0; sp < splits; ++sp) {
            const float* part = parts + sp * block_floats;
            const float m = part[rb * D + r];
            if (m == -std::numeric_limits<float>::infinity()) continue;  // saw no key
            const float w = std::exp(m - mmax);
            denom += part[rb * D + rb + r] * w;
            for (int64_t d = 0; d < D; ++d) acc[d] += part[r * D + d] * w;
        }
        const int64_t row = r0 + r, i = row / group;
        const int64_t head = static_cast<int64_t>(kv_head) * group + row % group;
        float* dst = out + (i * s.heads + head) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] = acc[d] / denom;
    }
}

}  // namespace

void attention(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s,
               float* out, ThreadPool& pool) {
    TDM_REQUIRE(
        s.n_new >= 0 && s.pos0 >= 0 && s.pos0 + s.n_new <= s.capacity, TDM_ERR_INVALID_ARGUMENT,
        "attention: positions " + std::to_string(s.pos0) + ".." + std::to_string(s.pos0 + s.n_new) +
            " do not fit the cache capacity " + std::to_string(s.capacity));
    TDM_REQUIRE(s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0,
                TDM_ERR_INVALID_ARGUMENT,
                "attention: " + std::to_string(s.heads) + " query heads are not a multiple of " +
                    std::to_string(s.kv_heads) + " KV heads");
    TDM_REQUIRE(s.head_dim > 0 && s.head_dim <= 1024 && s.window >= 0 && std::isfinite(s.scale),
                TDM_ERR_INVALID_ARGUMENT,
                "attention: bad head_dim " + std::to_string(s.head_dim) + " (1..1024), window " +
                    std::to_string(s.window) + " or scale");
    if (s.n_new == 0) return;
    TDM_REQUIRE(q && k_cache && v_cache && out, TDM_ERR_INVALID_ARGUMENT,
                "attention: null q, k_cache, v_cache or out");

    const KernelTable& kt = active_kernels();
    const int64_t group = s.heads / s.kv_heads;
    const int64_t rows = s.n_new * group;  // query rows per KV head
    const int64_t rb = kt.attention_rows;
    const int64_t row_blocks = (rows + rb - 1) / rb;
    // Threads worth waking: below kMinWorkPerThread multiply-adds each (as in matmul), a hand-off
    // costs more than it saves. Decode of a small model (a few heads, a short cache) then runs on
    // the calling thread alone instead of waking the pool once per layer.
    const int64_t work = s.heads * s.n_new * (s.pos0 + s.n_new) * s.head_dim * 2;
    const int64_t threads = std::clamp<int64_t>(work / kMinWorkPerThread, 1, pool.size());

    // Split the keys only when the row blocks alone leave threads idle (or badly balanced).
    int64_t splits = 1;
    const int64_t base_tasks = s.kv_heads * row_blocks;
    if (base_tasks < 2 * threads) {
        auto [lo, hi] = visible_keys(s, group, 0, std::min(rows, rb));
        splits = std::clamp<int64_t>((2 * threads + base_tasks - 1) / base_tasks, 1,
                                     std::max<int64_t>(1, (hi - lo) / kMinKeysPerSplit));
    }
    const int64_t tasks = base_tasks * splits;
    const int64_t D = s.head_dim;
    const int64_t block_floats = rb * (D + 2);  // o, m, l of one task
    float* parts = splits > 1 ? static_cast<float*>(thread_scratch(
                                    ScratchSlot::Shared, tasks * block_floats * sizeof(float)))
                              : nullptr;

    auto run_task = [&](int64_t t, void* scratch) {
        // Task order: row blocks from the last (most keys) to the first; then KV head; then split.
        const int64_t sp = t % splits;
        const int64_t h = (t / splits) % s.kv_heads;
        const int64_t b = row_blocks - 1 - t / (splits * s.kv_heads);
        AttentionTask task{};
        task.q = q;
        task.k = k_cache + h * s.capacity * D;
        task.v = v_cache + h * s.capacity * D;
        task.n_new = s.n_new;
        task.pos0 = s.pos0;
        task.heads = s.heads;
        task.group = static_cast<int32_t>(group);
        task.head_dim = s.head_dim;
        task.window = s.window;
        task.scale = s.scale;
        task.kv_head = static_cast<int32_t>(h);
        task.r0 = b * rb;
        task.r1 = std::min(rows, task.r0 + rb);
        auto [lo, hi] = visible_keys(s, group, task.r0, task.r1);
        task.key_lo = lo + (hi - lo) * sp / splits;
        task.key_hi = lo + (hi - lo) * (sp + 1) / splits;
        task.out = out;
        if (parts) {
            float* part = parts + ((b * s.kv_heads + h) * splits + sp) * block_floats;
            const int64_t n = task.r1 - task.r0;
            task.partial_o = part;
            task.partial_m = part + n * D;
            task.partial_l = part + n * D + n;
        }
        kt.attention(task, scratch);
    };

    const size_t scratch_bytes = kt.attention_scratch_bytes(s.head_dim);
    if (tasks == 1 || threads == 1) {
        void* scratch = thread_scratch(ScratchSlot::Kernel, scratch_bytes);
        for (int64_t t = 0; t < tasks; ++t) run_task(t, scratch);
    } else {
        std::atomic<int64_t> next{0};
        pool.run_on_all([&](int) {
            void* scratch = thread_scratch(ScratchSlot::Kernel, scratch_bytes);
            for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;)
                run_task(t, scratch);
        });
    }

    if (parts) {
        for (int64_t b = 0; b < row_blocks; ++b) {
            for (int32_t h = 0; h < s.kv_heads; ++h) {
                const int64_t r0 = b * rb, r1 = std::min(rows, r0 + rb);
                const float* first = parts + (b * s.kv_heads + h) * splits * block_floats;
                merge_splits(s, group, h, r0, r1, splits, block_floats, first, out);
            }
        }
    }
}

}  // namespace tdm::cpu
