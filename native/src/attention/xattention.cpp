#include "attention/xattention.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>

#include "attention/estimate_dot.h"
#include "attention/fp8_e4m3.h"
#include "core/error.h"
#include "kernels/cpu/kernels.h"

namespace tdm::xattn {
namespace {

using attention_estimate::dot;

// The reshaped query row i of head h, Q_r[i] = concat_t q[i*S + S-1-t], pre-multiplied by
// scale / S, with zeros for positions outside the call: qr[t*D + d].
void reshaped_query(const float* q, const AttentionCall& call, int32_t h, int64_t i, int32_t S,
                    float* qr) {
    const int64_t D = call.head_dim;
    const float f = call.scale / float(S);
    for (int32_t t = 0; t < S; ++t) {
        const int64_t p = antidiagonal_query(i, t, S);
        float* dst = qr + t * D;
        if (p < call.pos0 || p >= call.pos0 + call.n_new) {
            std::fill(dst, dst + D, 0.0f);
            continue;
        }
        const float* src = q + ((p - call.pos0) * call.heads + h) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] = src[d] * f;
    }
}

// Q_r[i] . K_r[j]: the keys of column j are contiguous in the cache (t*D + d = k[j*S + t][d]);
// keys past the last one (only in the last column) are zeros, so they are left out.
float reshaped_dot(const float* qr, const float* k, int64_t keys, int64_t j, int32_t S, int64_t D) {
    const int64_t first = j * S;
    const int64_t real = std::min<int64_t>(S, keys - first);
    return dot(qr, k + first * D, real * D);
}

void check_shape(const AttentionCall& call) {
    TDM_REQUIRE(call.heads > 0 && call.kv_heads > 0 && call.heads % call.kv_heads == 0 &&
                    call.head_dim > 0 && call.n_new > 0 && call.pos0 >= 0 &&
                    call.pos0 + call.n_new <= call.capacity,
                TDM_ERR_INVALID_ARGUMENT, "xattention: bad attention shape");
}

void check_call(const AttentionCall& call, int32_t block_size, int32_t stride) {
    TDM_REQUIRE(block_size > 0 && stride > 0 && block_size % stride == 0,
                TDM_ERR_INVALID_ARGUMENT,
                "xattention: stride " + std::to_string(stride) + " must divide the block size " +
                    std::to_string(block_size));
    check_shape(call);
}

// fn(lo, hi) over [0, n) on the pool, or on this thread when there is none.
void run_on(ThreadPool* pool, int64_t n, int64_t grain,
            const std::function<void(int64_t, int64_t)>& fn) {
    if (pool) pool->parallel_for(0, n, grain, fn);
    else fn(0, n);
}

// An operand seen as heads x rows of D contiguous values: row r of head h starts at
// h * head_stride + r * row_stride (q: heads interleaved in a row; the cache: heads apart).
struct HeadRows {
    int32_t heads;
    int64_t rows, head_stride, row_stride;
    int64_t at(int64_t h, int64_t r) const { return h * head_stride + r * row_stride; }
};

// dst (laid out as `to`) = src (laid out as `from`) with every value quantize_e4m3'd at its
// head's scale exponent, which goes to exps [heads]: first each head's amax (a task per head),
// then the rows (tasks of many rows, every head's exponent known).
void quantize_heads(const float* src, const HeadRows& from, float* dst, const HeadRows& to,
                    int64_t D, std::vector<int32_t>& exps, ThreadPool* pool) {
    exps.assign(size_t(from.heads), 0);
    run_on(pool, from.heads, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t h = lo; h < hi; ++h) {
            float amax = 0.0f;
            for (int64_t r = 0; r < from.rows; ++r) {
                const float* x = src + from.at(h, r);
                for (int64_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[d]));
            }
            exps[size_t(h)] = fp8::e4m3_scale_exponent(amax);
        }
    });
    run_on(pool, from.heads * from.rows, 64, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
            const int64_t h = t / from.rows, r = t % from.rows;
            const float* x = src + from.at(h, r);
            float* y = dst + to.at(h, r);
            for (int64_t d = 0; d < D; ++d) y[d] = fp8::quantize_e4m3(x[d], exps[size_t(h)]);
        }
    });
}

}  // namespace

float antidiagonal_score(const float* q, const float* k_cache, const AttentionCall& call, int32_t h,
                         int64_t i, int64_t j, int32_t S) {
    const int64_t D = call.head_dim;
    std::vector<float> qr(size_t(S) * D);
    reshaped_query(q, call, h, i, S, qr.data());
    const int32_t group = call.heads / call.kv_heads;
    const float* k = k_cache + int64_t(h / group) * call.capacity * D;
    return reshaped_dot(qr.data(), k, call.pos0 + call.n_new, j, S, D);
}

void block_scores(const float* q, const float* k_cache, const AttentionCall& call,
                  int32_t block_size, int32_t stride, float* attn_sum, ThreadPool* pool) {
    check_call(call, block_size, stride);
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, block_size);
    const int32_t S = stride, group = call.heads / call.kv_heads;
    const int64_t D = call.head_dim, keys = grid.keys();
    const int64_t rows_per_block = block_size / S;  // reshaped rows (and columns) per block
    const int64_t first_row = call.pos0 / S, last_row = (keys - 1) / S;  // rows with real queries

    const int64_t full_columns = keys / S;  // columns whose S keys all exist
    auto run = [&](int64_t lo, int64_t hi) {
        // A task's reshaped query rows (at most rows_per_block) and their scores against every
        // column up to the last row's; row i's softmax reads its columns j <= i.
        std::vector<float> qr(size_t(rows_per_block * S * D));
        std::vector<float> score(size_t(rows_per_block * (last_row + 1)));
        std::vector<double> sums(size_t(grid.k_blocks));
        for (int64_t task = lo; task < hi; ++task) {
            const int32_t h = int32_t(task / grid.q_blocks);
            const int32_t qi = int32_t(task % grid.q_blocks);
            const int32_t r = grid.q_block(qi);
            const float* k = k_cache + int64_t(h / group) * call.capacity * D;
            std::fill(sums.begin(), sums.end(), 0.0);
            const int64_t i0 = std::max(int64_t(r) * rows_per_block, first_row);
            const int64_t i1 = std::min((int64_t(r) + 1) * rows_per_block - 1, last_row);
            const int64_t rows = i1 - i0 + 1, cols = i1 + 1, row_len = S * D;
            for (int64_t i = i0; i <= i1; ++i)
                reshaped_query(q, call, h, i, S, qr.data() + (i - i0) * row_len);
            // Column j's keys are contiguous in the cache (k + j * S * D): the full columns in
            // one register-blocked call, the partial last one (keys past the end left out) alone.
            const int64_t full = std::min(cols, full_columns);
            cpu::estimate_dots(qr.data(), row_len, rows, k, row_len, full, row_len, score.data(),
                               cols);
            for (int64_t j = full; j < cols; ++j)
                for (int64_t i = 0; i < rows; ++i)
                    score[size_t(i * cols + j)] =
                        reshaped_dot(qr.data() + i * row_len, k, keys, j, S, D);
            for (int64_t i = i0; i <= i1; ++i) {
                float* s = score.data() + (i - i0) * cols;
                float m = -INFINITY;
                for (int64_t j = 0; j <= i; ++j) m = std::max(m, s[j]);
                double denom = 0;
                for (int64_t j = 0; j <= i; ++j) {
                    s[j] = std::exp(s[j] - m);
                    denom += s[j];
                }
                const float inv = float(1.0 / denom);
                for (int64_t j = 0; j <= i; ++j) sums[j / rows_per_block] += s[j] * inv;
            }
            float* out = attn_sum + task * grid.k_blocks;
            for (int32_t c = 0; c < grid.k_blocks; ++c) out[c] = float(sums[c]);
        }
    };
    run_on(pool, int64_t(call.heads) * grid.q_blocks, 1, run);
}

Fp8Operands fp8_operands(const float* q, const float* k_cache, const AttentionCall& call,
                         ThreadPool* pool) {
    check_shape(call);
    const int64_t D = call.head_dim, keys = call.pos0 + call.n_new;
    Fp8Operands f;
    f.call = call;
    f.call.capacity = keys;
    f.q.resize(size_t(call.n_new * call.heads * D));
    f.k.resize(size_t(call.kv_heads * keys * D));
    const HeadRows q_rows{call.heads, call.n_new, D, call.heads * D};
    quantize_heads(q, q_rows, f.q.data(), q_rows, D, f.q_exp, pool);
    // Only the call's keys: the cache past them is stale or unwritten and must not set a scale.
    quantize_heads(k_cache, HeadRows{call.kv_heads, keys, call.capacity * D, D}, f.k.data(),
                   HeadRows{call.kv_heads, keys, keys * D, D}, D, f.k_exp, pool);
    return f;
}

void select_row(const float* s, int32_t r, float threshold, std::vector<int32_t>& cols) {
    cols.clear();
    if (threshold >= 1.0f) {
        for (int32_t c = 0; c <= r; ++c) cols.push_back(c);
        return;
    }
    double total = 0;
    for (int32_t c = 0; c <= r; ++c) total += s[c];
    const double required = double(threshold) * total;
    cols.push_back(0);
    double acc = s[0];
    if (r > 0) {
        cols.push_back(r);
        acc += s[r];
    }
    std::vector<int32_t> rest(r > 1 ? size_t(r - 1) : 0);
    std::iota(rest.begin(), rest.end(), 1);
    std::stable_sort(rest.begin(), rest.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
    for (int32_t c : rest) {
        if (!(acc < required)) break;
        cols.push_back(c);
        acc += s[c];
    }
    std::sort(cols.begin(), cols.end());
}

HostBlockPlan select_blocks(const float* attn_sum, int32_t heads, const BlockGrid& grid,
                            const float* thresholds) {
    HostBlockPlan p;
    p.heads = heads;
    p.grid = grid;
    p.row_ptr.assign(1, 0);
    std::vector<int32_t> cols;
    for (int32_t h = 0; h < heads; ++h) {
        for (int32_t i = 0; i < grid.q_blocks; ++i) {
            const float* s = attn_sum + (int64_t(h) * grid.q_blocks + i) * grid.k_blocks;
            select_row(s, grid.q_block(i), thresholds[h], cols);
            p.cols.insert(p.cols.end(), cols.begin(), cols.end());
            p.row_ptr.push_back(int32_t(p.cols.size()));
        }
    }
    return p;
}

bool plan(const float* q, const float* k_cache, const AttentionCall& call,
          const SparseAttention& sparse, HostBlockPlan& out, ThreadPool* pool) {
    const BlockGrid grid = BlockGrid::of(call.pos0, call.n_new, sparse.block_size);
    if (!worth_estimating(grid)) return false;
    TDM_REQUIRE(sparse.xattn_threshold != nullptr, TDM_ERR_INVALID_ARGUMENT,
                "xattention: no thresholds for this layer");
    std::vector<float> attn_sum(size_t(call.heads) * grid.q_blocks * grid.k_blocks);
    if (sparse.xattn_fp8) {
        const Fp8Operands f = fp8_operands(q, k_cache, call, pool);
        block_scores(f.q.data(), f.k.data(), f.call, sparse.block_size, sparse.xattn_stride,
                     attn_sum.data(), pool);
    } else {
        block_scores(q, k_cache, call, sparse.block_size, sparse.xattn_stride, attn_sum.data(),
                     pool);
    }
    out = select_blocks(attn_sum.data(), call.heads, grid, sparse.xattn_threshold);
    return true;
}

}  // namespace tdm::xattn
