#include "attention/flexprefill.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "attention/estimate_dot.h"
#include "core/error.h"
#include "kernels/cpu/kernels.h"

namespace tdm::flex {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

using attention_estimate::dot;

const float* kv_head_keys(const float* k_cache, const AttentionCall& call, int32_t kv_head) {
    return k_cache + int64_t(kv_head) * call.capacity * call.head_dim;
}

const float* query_row(const float* q, const AttentionCall& call, int32_t h, int64_t row) {
    return q + (row * call.heads + h) * call.head_dim;
}

// Rows row0 .. row0 + rows - 1 of the call's queries of head h into a [rows, keys]: row i is the
// softmax of scale * q . k[j] over j <= its position, zeros after it. The dot products of all the
// rows come from one estimate_dots call (each key is loaded once for the rows together); a row's
// columns past its position are computed and then zeroed.
void attention_rows(const float* q, const float* k_cache, const AttentionCall& call, int32_t h,
                    int64_t row0, int64_t rows, float* a) {
    const int64_t D = call.head_dim, keys = call.pos0 + call.n_new;
    const int64_t last = call.pos0 + row0 + rows - 1;  // the last row's position
    const float* k = kv_head_keys(k_cache, call, h / (call.heads / call.kv_heads));
    cpu::estimate_dots(query_row(q, call, h, row0), int64_t(call.heads) * D, rows, k, D, last + 1,
                       D, a, keys);
    for (int64_t i = 0; i < rows; ++i) {
        float* ai = a + i * keys;
        const int64_t position = call.pos0 + row0 + i;
        float m = -kInf;
        for (int64_t j = 0; j <= position; ++j) {
            ai[j] = call.scale * ai[j];
            m = std::max(m, ai[j]);
        }
        double denom = 0;
        for (int64_t j = 0; j <= position; ++j) {
            ai[j] = std::exp(ai[j] - m);
            denom += ai[j];
        }
        const float inv = float(1.0 / denom);
        for (int64_t j = 0; j <= position; ++j) ai[j] *= inv;
        std::fill(ai + position + 1, ai + keys, 0.0f);
    }
}

// Adds row a (of the query at `position`) into the vertical and slash sums.
void accumulate_vertical_slash(const float* a, int64_t position, double* vertical, double* slash) {
    for (int64_t j = 0; j <= position; ++j) {
        vertical[j] += a[j];
        slash[position - j] += a[j];
    }
}

void check_call(const AttentionCall& call, const SparseAttention& sparse) {
    TDM_REQUIRE(sparse.block_size > 0, TDM_ERR_INVALID_ARGUMENT, "flexprefill: bad block size");
    TDM_REQUIRE(call.heads > 0 && call.kv_heads > 0 && call.heads % call.kv_heads == 0 &&
                    call.head_dim > 0 && call.n_new > 0 && call.pos0 >= 0 &&
                    call.pos0 + call.n_new <= call.capacity,
                TDM_ERR_INVALID_ARGUMENT, "flexprefill: bad attention shape");
    TDM_REQUIRE(sparse.flex_gamma > 0.0f && sparse.flex_gamma <= 1.0f, TDM_ERR_INVALID_ARGUMENT,
                "flexprefill: gamma must be in (0, 1], got " + std::to_string(sparse.flex_gamma));
}

// Indices of x sorted by descending value, ties by lower index.
std::vector<int32_t> ranking(const std::vector<float>& x) {
    std::vector<int32_t> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    return idx;
}

}  // namespace

void last_block_attention(const float* q, const float* k_cache, const AttentionCall& call,
                          int32_t h, int32_t block_size, float* a_hat) {
    const int64_t R = representative_rows(call.n_new, block_size);
    attention_rows(q, k_cache, call, h, call.n_new - R, R, a_hat);
}

void vertical_slash(const float* a_hat, int64_t R, int64_t keys, int64_t last_position,
                    float* vertical, float* slash) {
    std::vector<double> v(size_t(keys), 0.0), s(size_t(keys), 0.0);
    for (int64_t i = 0; i < R; ++i)
        accumulate_vertical_slash(a_hat + i * keys, last_position - (R - 1 - i), v.data(),
                                  s.data());
    for (int64_t j = 0; j < keys; ++j) {
        vertical[j] = float(v[j] / double(R));
        slash[j] = float(s[j] / double(R));
    }
}

void sum_pool(const float* x, int64_t n, int32_t block_size, float* out) {
    for (int64_t b = 0; b * block_size < n; ++b) {
        double s = 0;
        for (int64_t j = b * block_size; j < std::min<int64_t>(n, (b + 1) * block_size); ++j)
            s += x[j];
        out[b] = float(s);
    }
}

int64_t coverage_count(const float* x, int64_t n, float gamma) {
    std::vector<float> sorted(x, x + n);
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    double cum = 0;
    int64_t count = 0;
    for (float v : sorted) {
        cum += v;
        if (cum <= double(gamma)) ++count;
    }
    return count + 1;
}

int32_t budget_blocks(int64_t count, int32_t block_size, uint32_t compat, int32_t min_blocks,
                      int32_t max_blocks) {
    const int64_t unit = (compat & TDM_SPARSE_COMPAT_FLEX_BUDGET_128) ? 128 : block_size;
    int64_t n = count / unit + 1;
    if (n < min_blocks) n = min_blocks;
    if (n > max_blocks) n = max_blocks;
    return int32_t(std::max<int64_t>(n, 1));
}

int32_t min_budget_blocks(int64_t min_budget_tokens, int32_t block_size, int32_t k_blocks) {
    const int64_t b = (std::max<int64_t>(min_budget_tokens, 0) + block_size - 1) / block_size;
    return int32_t(std::min<int64_t>(b, k_blocks));
}

int32_t max_budget_blocks(int64_t max_budget_tokens, int32_t block_size, int32_t k_blocks) {
    if (max_budget_tokens <= 0) return k_blocks;
    const int64_t b = (max_budget_tokens + block_size - 1) / block_size;
    return int32_t(std::min<int64_t>(b, k_blocks));
}

void mean_pool_keys(const float* k_cache, const AttentionCall& call, int32_t kv_head,
                    int32_t block_size, float* kbar) {
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, block_size);
    const int64_t D = call.head_dim;
    const float* k = kv_head_keys(k_cache, call, kv_head);
    std::vector<double> acc(static_cast<size_t>(D));
    for (int32_t c = 0; c < grid.k_blocks; ++c) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const int64_t lo = grid.key_lo(c), hi = grid.key_hi(c);
        for (int64_t j = lo; j < hi; ++j)
            for (int64_t d = 0; d < D; ++d) acc[d] += k[j * D + d];
        for (int64_t d = 0; d < D; ++d) kbar[c * D + d] = float(acc[d] / double(hi - lo));
    }
}

void mean_pool_queries(const float* q, const AttentionCall& call, int32_t h, int32_t block_size,
                       float* qbar) {
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, block_size);
    const int64_t D = call.head_dim;
    std::vector<double> acc(static_cast<size_t>(D));
    for (int32_t i = 0; i < grid.q_blocks; ++i) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const int32_t r = grid.q_block(i);
        const int64_t lo = grid.q_row_lo(r), hi = grid.q_row_hi(r);
        for (int64_t row = lo; row < hi; ++row) {
            const float* src = query_row(q, call, h, row);
            for (int64_t d = 0; d < D; ++d) acc[d] += src[d];
        }
        for (int64_t d = 0; d < D; ++d) qbar[i * D + d] = float(acc[d] / double(hi - lo));
    }
}

void pooled_distribution(const float* q, const AttentionCall& call, int32_t h, int32_t block_size,
                         const float* kbar, int32_t k_blocks, float* a_pool) {
    const int64_t D = call.head_dim;
    const int64_t R = representative_rows(call.n_new, block_size);
    std::vector<double> mean(size_t(D), 0.0);
    for (int64_t row = call.n_new - R; row < call.n_new; ++row) {
        const float* src = query_row(q, call, h, row);
        for (int64_t d = 0; d < D; ++d) mean[d] += src[d];
    }
    std::vector<float> qm(static_cast<size_t>(D));
    for (int64_t d = 0; d < D; ++d) qm[d] = float(mean[d] / double(R)) * call.scale;
    float m = -kInf;
    for (int32_t c = 0; c < k_blocks; ++c) {
        a_pool[c] = dot(qm.data(), kbar + c * D, D);
        m = std::max(m, a_pool[c]);
    }
    double denom = 0;
    for (int32_t c = 0; c < k_blocks; ++c) {
        a_pool[c] = std::exp(a_pool[c] - m);
        denom += a_pool[c];
    }
    for (int32_t c = 0; c < k_blocks; ++c) a_pool[c] = float(a_pool[c] / denom);
}

float js_distance(const float* p, const float* q, int64_t n, bool nan_compat) {
    // p log(p/m), with 0 log 0 = 0 unless the reference's NaN is asked for.
    auto term = [nan_compat](double x, double m) {
        if (!nan_compat && x <= 0.0) return 0.0;
        return x * std::log(x / m);
    };
    double kl_p = 0, kl_q = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double m = 0.5 * (double(p[i]) + double(q[i]));
        kl_p += term(p[i], m);
        kl_q += term(q[i], m);
    }
    const double js = 0.5 * kl_p + 0.5 * kl_q;
    if (std::isnan(js)) return std::numeric_limits<float>::quiet_NaN();
    return float(std::sqrt(std::max(js, 0.0)));  // rounding can leave a tiny negative
}

void vertical_slash_blocks(const float* vertical_blocks, const float* slash_blocks,
                           int32_t n_vertical, int32_t n_slash, const BlockGrid& grid,
                           uint8_t* mask) {
    const int32_t nb = grid.k_blocks;
    std::vector<float> v(vertical_blocks, vertical_blocks + nb), s(slash_blocks, slash_blocks + nb);
    v[0] = kInf;  // the attention sink
    s[0] = kInf;  // the main diagonal
    const std::vector<int32_t> vcols = ranking(v), soffs = ranking(s);
    const int32_t nv = std::min(n_vertical, nb), ns = std::min(n_slash, nb);
    for (int32_t i = 0; i < grid.q_blocks; ++i) {
        const int32_t r = grid.q_block(i);
        uint8_t* row = mask + int64_t(i) * nb;
        for (int32_t k = 0; k < nv; ++k)
            if (vcols[k] <= r) row[vcols[k]] = 1;
        for (int32_t k = 0; k < ns; ++k)
            if (soffs[k] <= r) row[r - soffs[k]] = 1;
    }
}

void query_aware_blocks(const float* qbar, const float* kbar, const BlockGrid& grid,
                        int32_t head_dim, float scale, float gamma, uint8_t* mask) {
    const int32_t nb = grid.k_blocks;
    const int64_t D = head_dim;
    // The causal entries of the block attention, row by row: (flat index i*nb + c, value).
    std::vector<std::pair<int64_t, float>> entries;
    std::vector<float> row;
    for (int32_t i = 0; i < grid.q_blocks; ++i) {
        const int32_t r = grid.q_block(i);
        row.assign(size_t(r) + 1, 0.0f);
        float m = -kInf;
        for (int32_t c = 0; c <= r; ++c) {
            row[c] = scale * dot(qbar + i * D, kbar + c * D, D);
            m = std::max(m, row[c]);
        }
        double denom = 0;
        for (int32_t c = 0; c <= r; ++c) {
            row[c] = std::exp(row[c] - m);
            denom += row[c];
        }
        for (int32_t c = 0; c <= r; ++c)
            entries.emplace_back(int64_t(i) * nb + c, float(row[c] / denom));
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    const double limit = double(gamma) * grid.q_blocks;
    double cum = 0;
    for (const auto& [flat, value] : entries) {
        cum += value;
        if (cum > limit) break;
        mask[flat] = 1;
    }
}

bool worth_estimating(const BlockGrid& grid, const SparseAttention& sparse) {
    const int64_t B = sparse.block_size;
    const int64_t min_blocks = (std::max<int64_t>(sparse.flex_min_budget, 0) + B - 1) / B;
    return grid.keys() > std::max(2 * B, min_blocks * B);
}

HeadDecision estimate_head(const float* q, const float* k_cache, const AttentionCall& call,
                           const SparseAttention& sparse, int32_t h, const float* kbar,
                           uint8_t* mask) {
    const int32_t B = sparse.block_size;
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, B);
    const int64_t keys = grid.keys(), R = representative_rows(call.n_new, B);
    const int32_t nb = grid.k_blocks;

    // (1) vertical and slash sums of the last block's attention, kRowChunk rows at a time.
    constexpr int64_t kRowChunk = 8;
    std::vector<float> a(static_cast<size_t>(kRowChunk * keys));
    std::vector<double> vsum(size_t(keys), 0.0), ssum(size_t(keys), 0.0);
    for (int64_t row0 = call.n_new - R; row0 < call.n_new; row0 += kRowChunk) {
        const int64_t rows = std::min(kRowChunk, call.n_new - row0);
        attention_rows(q, k_cache, call, h, row0, rows, a.data());
        for (int64_t i = 0; i < rows; ++i)
            accumulate_vertical_slash(a.data() + i * keys, call.pos0 + row0 + i, vsum.data(),
                                      ssum.data());
    }
    std::vector<float> vertical(static_cast<size_t>(keys)), slash(static_cast<size_t>(keys));
    for (int64_t j = 0; j < keys; ++j) {
        vertical[j] = float(vsum[j] / double(R));
        slash[j] = float(ssum[j] / double(R));
    }

    // (2) budgets from gamma coverage, in blocks.
    const int32_t min_b = min_budget_blocks(sparse.flex_min_budget, B, nb);
    const int32_t max_b = max_budget_blocks(sparse.flex_max_budget, B, nb);
    HeadDecision d;
    d.n_vertical = budget_blocks(coverage_count(vertical.data(), keys, sparse.flex_gamma), B,
                                 sparse.compat, min_b, max_b);
    d.n_slash = budget_blocks(coverage_count(slash.data(), keys, sparse.flex_gamma), B,
                              sparse.compat, min_b, max_b);

    // (3) block scores.
    std::vector<float> vblocks(static_cast<size_t>(nb)), sblocks(static_cast<size_t>(nb));
    sum_pool(vertical.data(), keys, B, vblocks.data());
    sum_pool(slash.data(), keys, B, sblocks.data());

    // (4) pattern decision.
    std::vector<float> a_pool(static_cast<size_t>(nb));
    pooled_distribution(q, call, h, B, kbar, nb, a_pool.data());
    d.js = js_distance(a_pool.data(), vblocks.data(), nb,
                       (sparse.compat & TDM_SPARSE_COMPAT_FLEX_JSD_NAN) != 0);
    d.query_aware = d.js < sparse.flex_tau;  // NaN: false
    if (d.query_aware) d.n_vertical = d.n_slash = std::max(min_b, 1);

    // (5) the vertical-slash skeleton, (6) query-aware additions.
    std::fill(mask, mask + int64_t(grid.q_blocks) * nb, uint8_t(0));
    vertical_slash_blocks(vblocks.data(), sblocks.data(), d.n_vertical, d.n_slash, grid, mask);
    if (d.query_aware) {
        std::vector<float> qbar(size_t(grid.q_blocks) * call.head_dim);
        mean_pool_queries(q, call, h, B, qbar.data());
        query_aware_blocks(qbar.data(), kbar, grid, call.head_dim, call.scale, sparse.flex_gamma,
                           mask);
    }
    return d;
}

bool plan(const float* q, const float* k_cache, const AttentionCall& call,
          const SparseAttention& sparse, HostBlockPlan& out, ThreadPool* pool,
          std::vector<HeadDecision>* decisions) {
    check_call(call, sparse);
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, sparse.block_size);
    if (!worth_estimating(grid, sparse)) return false;
    const int64_t D = call.head_dim;
    const int32_t group = call.heads / call.kv_heads;
    std::vector<float> kbar(size_t(call.kv_heads) * grid.k_blocks * D);
    for (int32_t g = 0; g < call.kv_heads; ++g)
        mean_pool_keys(k_cache, call, g, sparse.block_size, kbar.data() + g * grid.k_blocks * D);
    const int64_t mask_size = int64_t(grid.q_blocks) * grid.k_blocks;
    std::vector<uint8_t> mask(size_t(call.heads) * mask_size);
    std::vector<HeadDecision> decided(size_t(call.heads));
    auto run = [&](int64_t lo, int64_t hi) {
        for (int64_t h = lo; h < hi; ++h)
            decided[h] = estimate_head(q, k_cache, call, sparse, int32_t(h),
                                       kbar.data() + (h / group) * grid.k_blocks * D,
                                       mask.data() + h * mask_size);
    };
    if (pool) pool->parallel_for(0, call.heads, 1, run);
    else run(0, call.heads);
    out = plan_from_mask(mask.data(), call.heads, grid);
    if (decisions) *decisions = std::move(decided);
    return true;
}

}  // namespace tdm::flex
