// XAttention on the GPU (ALGORITHMS.md 4), the twin of attention/xattention.h:
//   1. the antidiagonal scores (stride S, the reshape never materialised), their row softmax and
//      per-block sums in ONE pass over the scores (xattn_onepass_kernel): each row keeps an
//      online max m and sum l; for every segment of min(B/S, 32) columns it writes the log2 of
//      its partial sum against the running max (L = m_now + log2 sum exp2(s - m_now)) to a
//      scratch row; when the row is done the block owns its final (m, l) and folds the scratch
//      into block sums exp2(L - m) / l over the block's rows and segments. The scratch is one
//      float per (row, segment) - B/S-fold (16x at S=8) smaller than the scores the two-pass
//      version recomputed, and the score products (the whole cost) run once instead of twice;
//   2. block selection per (head, query block) row: the row's candidate blocks (neither the sink
//      nor the diagonal) sorted in one thread block (cub::BlockRadixSort), then a scan; a block
//      is taken while the mass before it, mandatory blocks included, is below tau * row mass
//      (inclusive: the crossing block is taken); tau >= 1 takes every causal block;
//   3. the plan from the selection bitmask (cuda_sparse_plan.cu).
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "attention/cuda_estimate_tile.cuh"
#include "attention/cuda_kv_tensor_map.h"
#include "attention/cuda_sparse_estimation.h"
#include "attention/cuda_xattention_wgmma.cuh"

namespace tdm::cuda {
namespace {

using estimate::ensure;
using estimate::kScoreStride;

using estimate::kThreads;
using estimate::kTileCols;
using estimate::kTileRows;

using xattn_wg::OnePassArgs;

template <int D, class KT>
__global__ void __launch_bounds__(kThreads) xattn_onepass_kernel(estimate::ScoreArgs a, OnePassArgs o) {
    extern __shared__ __align__(16) unsigned char smem[];
    using estimate::TileSmem;
    __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* ks = reinterpret_cast<__nv_bfloat16*>(smem + TileSmem<D>::kQBytes);
    float* sc = reinterpret_cast<float*>(smem + TileSmem<D>::kQBytes + TileSmem<D>::kKBytes);
    __shared__ float row_m[kTileRows], row_inv_l[kTileRows];

    const int head = blockIdx.y;
    // Longest causal rows first (the scheduler starts low block indices first): a shorter tail.
    const int local = int(gridDim.x) - 1 - int(blockIdx.x);
    const int tile = o.launch + o.launches * local;
    const int r0 = tile * kTileRows;
    if (r0 >= a.rows) return;
    const int64_t R0 = a.row_base + r0;
    const int64_t last = estimate::last_valid_row(a, R0);
    const int64_t ct_end = last >= R0 ? last / kTileCols + 1 : 0;

    const int my_row = threadIdx.x / 2, half = threadIdx.x % 2;
    const bool my_valid = my_row + r0 < a.rows && estimate::row_valid(a, R0 + my_row);
    float* my_scratch = o.scratch + (int64_t(head) * gridDim.x * kTileRows + int64_t(local) * kTileRows + my_row) * o.segs;
    float m = -INFINITY, l = 0.0f;

    estimate::StepOperands<D, KT> ops;
    if (ct_end > 0) ops.load(a, head, R0, 0, 0);
    for (int64_t ct = 0; ct < ct_end; ++ct) {
        const int64_t C0 = ct * kTileCols;
        estimate::score_tile<D, KT>(a, head, R0, C0, ct + 1 < ct_end, ops, qs, ks, sc);
        const float* row = sc + my_row * kScoreStride + half * (kTileCols / 2);
        float tmax = -INFINITY;
#pragma unroll 8
        for (int c = 0; c < kTileCols / 2; ++c) tmax = fmaxf(tmax, row[c]);
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float m_new = fmaxf(m, tmax);
        float sum = 0.0f, part = 0.0f;
        float* out = my_scratch + (C0 + half * (kTileCols / 2)) / o.seg;
#pragma unroll 8
        for (int c = 0; c < kTileCols / 2; ++c) {
            part += m_new == -INFINITY ? 0.0f : exp2f(row[c] - m_new);
            if (((c + 1) & (o.seg - 1)) == 0) {  // seg is a power of two
                out[c / o.seg] = m_new + log2f(part);  // -inf for an empty (masked) segment
                sum += part;
                part = 0.0f;
            }
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        if (m_new != -INFINITY) {
            l = l * exp2f(m - m_new) + sum;
            m = m_new;
        }
    }
    if (half == 0) {
        row_m[my_row] = m;
        row_inv_l[my_row] = my_valid && l > 0.0f ? 1.0f / l : 0.0f;
    }
    __syncthreads();  // also makes this block's scratch writes visible to all its threads

    // Fold: sums[qb, kb] = sum over the block's rows r of qb and segments of kb of exp2(L - m_r) / l_r.
    const int rpb = o.rows_per_block, segs_per_kb = max(1, rpb / o.seg);
    const int64_t written = ct_end * kTileCols / o.seg;  // segments this block wrote per row
    const int q_local = kTileRows / rpb < 1 ? 1 : kTileRows / rpb;
    const float* base = o.scratch + (int64_t(head) * gridDim.x * kTileRows + int64_t(local) * kTileRows) * o.segs;
    const int64_t kb_count = (written + segs_per_kb - 1) / segs_per_kb;
    for (int64_t i = threadIdx.x; i < int64_t(q_local) * kb_count; i += kThreads) {
        const int ql = int(i / kb_count);
        const int64_t kb = i % kb_count;
        const int64_t qb = (R0 + int64_t(ql) * rpb) / rpb;  // absolute query block (= its diagonal)
        const int64_t qb_rel = qb - o.first_q_block;
        if (kb > qb || kb >= o.k_blocks || qb_rel < 0 || qb_rel >= o.q_blocks) continue;
        float s = 0.0f;
        for (int r = ql * rpb; r < min(ql * rpb + rpb, kTileRows); ++r) {
            const float inv = row_inv_l[r];
            if (inv == 0.0f) continue;
            const float mr = row_m[r];
            for (int64_t sg = kb * segs_per_kb; sg < min(written, (kb + 1) * segs_per_kb); ++sg)
                s += exp2f(base[int64_t(r) * o.segs + sg] - mr) * inv;
        }
        o.sums[(int64_t(head) * o.q_blocks + qb_rel) * o.k_blocks + kb] = s;
    }
}

// Scratch budget of one launch; longer prompts run several interleaved launches.
constexpr size_t kScratchBytes = size_t(512) << 20;

// Both engines' launches: `tiles` row tiles of `per_tile` scratch bytes each, split into as few
// interleaved launches as keep the scratch within kScratchBytes. Sizes the scratch, sets
// `launches`, then calls launch(l, mine) for launch l, which owns the `mine` tiles l,
// l + launches, ...
template <class Launch>
void for_each_launch(int64_t tiles, size_t per_tile, DeviceBuffer& scratch, int32_t& launches,
                     Launch&& launch) {
    const int64_t fit = std::max<int64_t>(1, int64_t(kScratchBytes / per_tile));
    launches = int32_t((tiles + fit - 1) / fit);
    const int64_t per_launch = (tiles + launches - 1) / launches;
    ensure(scratch, size_t(per_launch) * per_tile);
    for (int32_t l = 0; l < launches; ++l) {
        const int64_t mine = (tiles - l + launches - 1) / launches;
        if (mine > 0) launch(l, mine);
    }
}

template <int D, class KT>
void launch_onepass(const estimate::ScoreArgs& a, OnePassArgs o, int heads, DeviceBuffer& scratch,
                    cudaStream_t s) {
    constexpr size_t smem = estimate::TileSmem<D>::kBytes;
    auto kernel = xattn_onepass_kernel<D, KT>;
    TDM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const int64_t tiles = (a.rows + kTileRows - 1) / kTileRows;
    const size_t per_tile = size_t(heads) * kTileRows * size_t(o.segs) * sizeof(float);
    for_each_launch(tiles, per_tile, scratch, o.launches, [&](int32_t l, int64_t mine) {
        o.launch = l;
        o.scratch = scratch.as<float>();
        kernel<<<dim3(unsigned(mine), unsigned(heads)), kThreads, smem, s>>>(a, o);
        TDM_CUDA_CHECK_LAUNCH("xattn_onepass_kernel");
    });
}

// The same pass with the products on the wgmma engine: 128-column tiles, the same scratch rows
// (segments of o.seg columns) and the same fold, so the block sums agree up to summation order.
// kFp8: a.q and a.k are fp8 bytes, rescaled by 2^-(e_q + e_k) from fp8_exp.
template <int D, bool kFp8>
void launch_onepass_wgmma(const estimate::ScoreArgs& a, const OnePassArgs& o, int heads,
                          int kv_heads, const int32_t* fp8_exp, DeviceBuffer& scratch,
                          cudaStream_t s) {
    using C = xattn_wg::Config<D, kFp8>;
    constexpr size_t smem = C::kSmemBytes;
    auto kernel = xattn_wg::xattn_wgmma_kernel<D, kFp8>;
    TDM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const int S = a.stride;
    // fp8: offset-major staging (stage_fp8), planes of outer_stride / (S * D) rows.
    const auto map = [&](const void* base, int outer, int64_t outer_stride, int64_t groups,
                         int box_groups) {
        if constexpr (kFp8)
            return make_strided_tensor_map_fp8(static_cast<const uint8_t*>(base), outer,
                                               outer_stride, outer_stride / (int64_t(S) * D),
                                               groups, S, D, box_groups);
        else
            return make_strided_tensor_map(static_cast<const uint16_t*>(base), outer,
                                           outer_stride, groups, S, D, box_groups);
    };
    const CUtensorMap q_map = map(a.q, heads, a.q_tokens * D, a.rows, xattn_wg::kRows);
    const CUtensorMap k_floor = map(a.k, kv_heads, a.capacity * D, a.key_len / S, xattn_wg::kCols);
    const CUtensorMap k_ceil =
        map(a.k, kv_heads, a.capacity * D, (a.key_len + S - 1) / S, xattn_wg::kCols);
    xattn_wg::Args w{};
    w.stride = S;
    w.rows = a.rows;
    w.row_base = a.row_base;
    w.q_lo = a.q_lo;
    w.q_hi = a.q_hi;
    w.key_rem = int32_t(a.key_len % S);
    w.group = a.group;
    w.heads = heads;
    w.scale_log2 = a.scale_log2;
    w.fp8_exp = fp8_exp;
    w.o = o;

    const int64_t tiles = (a.rows + xattn_wg::kRows - 1) / xattn_wg::kRows;
    const size_t per_tile = size_t(heads) * xattn_wg::kRows * size_t(o.segs) * sizeof(float);
    for_each_launch(tiles, per_tile, scratch, w.o.launches, [&](int32_t l, int64_t mine) {
        w.o.launch = l;
        w.o.scratch = scratch.as<float>();
        w.tiles = int32_t(mine);
        kernel<<<unsigned(mine * heads), xattn_wg::kThreads, smem, s>>>(w, q_map, k_floor, k_ceil);
        TDM_CUDA_CHECK_LAUNCH("xattn_wgmma_kernel");
    });
}

// Whether the wgmma engine's shape rules admit the call (see XAttentionParams::wgmma): head dims
// 64 and 128, segments (min(B / S, 32) columns) covering whole 8-column accumulator tiles, and at
// least one group of S keys.
bool xattention_wgmma_shape_fits(const XAttentionParams& p, int head_dim, int rows_per_block,
                                 int64_t key_len) {
    return p.wgmma && (head_dim == 64 || head_dim == 128) && rows_per_block >= 8 &&
           rows_per_block <= 64 && key_len >= p.stride;
}

// Whether the wgmma engine takes this call: its shape rules, and operands TMA can map.
bool xattention_wgmma_applies(const estimate::ScoreArgs& a, const EstimateInputs& in,
                              const XAttentionParams& p, int rows_per_block) {
    const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
    return xattention_wgmma_shape_fits(p, in.head_dim, rows_per_block, a.key_len) && in.k_bf16 &&
           aligned(a.q) && aligned(a.k) && (a.capacity * in.head_dim * 2) % 16 == 0;
}

constexpr int kSelectThreads = 256;

// One block per (head, query block) row; kItems * 256 >= k_blocks.
template <int kItems>
__global__ void __launch_bounds__(kSelectThreads)
    select_blocks_kernel(const float* __restrict__ sums, const float* __restrict__ thresholds,
                         float threshold, int first_q_block, int q_blocks, int k_blocks, int words,
                         uint32_t* __restrict__ mask) {
    using Sort = cub::BlockRadixSort<float, kSelectThreads, kItems, int>;
    using Scan = cub::BlockScan<float, kSelectThreads>;
    using Reduce = cub::BlockReduce<float, kSelectThreads>;
    __shared__ union {
        typename Sort::TempStorage sort;
        typename Scan::TempStorage scan;
        typename Reduce::TempStorage reduce;
    } tmp;
    __shared__ uint32_t bits[kItems * kSelectThreads / 32];
    __shared__ float row_total;

    const int64_t row = blockIdx.x;
    const int head = int(row / q_blocks);
    const int r = first_q_block + int(row % q_blocks);  // absolute query block = diagonal column
    const float* s = sums + row * k_blocks;
    for (int w = threadIdx.x; w < words; w += kSelectThreads) bits[w] = 0u;

    float part = 0.0f;
    for (int c = threadIdx.x; c <= r; c += kSelectThreads) part += s[c];
    const float total = Reduce(tmp.reduce).Sum(part);
    if (threadIdx.x == 0) row_total = total;
    __syncthreads();

    const float tau = thresholds != nullptr ? thresholds[head] : threshold;
    if (tau >= 1.0f) {
        for (int c = threadIdx.x; c <= r; c += kSelectThreads) atomicOr(&bits[c / 32], 1u << (c % 32));
    } else {
        const float required = tau * row_total;
        const float mandatory = s[0] + (r > 0 ? s[r] : 0.0f);
        // Candidates 1 .. r-1 in blocked order; the padding sorts last (scores are >= 0).
        float keys[kItems];
        int cols[kItems];
#pragma unroll
        for (int j = 0; j < kItems; ++j) {
            const int i = threadIdx.x * kItems + j;
            const bool real = i < r - 1;
            keys[j] = real ? s[1 + i] : -1.0f;
            cols[j] = real ? 1 + i : -1;
        }
        Sort(tmp.sort).SortDescending(keys, cols);
        __syncthreads();
        float mass[kItems], before[kItems];
#pragma unroll
        for (int j = 0; j < kItems; ++j) mass[j] = cols[j] >= 0 ? keys[j] : 0.0f;
        Scan(tmp.scan).ExclusiveSum(mass, before);
#pragma unroll
        for (int j = 0; j < kItems; ++j)
            if (cols[j] >= 0 && mandatory + before[j] < required)
                atomicOr(&bits[cols[j] / 32], 1u << (cols[j] % 32));
        if (threadIdx.x == 0) {
            atomicOr(&bits[0], 1u);
            atomicOr(&bits[r / 32], 1u << (r % 32));
        }
    }
    __syncthreads();
    for (int w = threadIdx.x; w < words; w += kSelectThreads) mask[row * words + w] = bits[w];
}

template <int kItems>
void launch_select(const float* sums, const float* thresholds, float threshold, const BlockGrid& g,
                   int heads, int words, uint32_t* mask, cudaStream_t s) {
    select_blocks_kernel<kItems><<<unsigned(int64_t(heads) * g.q_blocks), kSelectThreads, 0, s>>>(
        sums, thresholds, threshold, g.first_q_block, g.q_blocks, g.k_blocks, words, mask);
    TDM_CUDA_CHECK_LAUNCH("select_blocks_kernel");
}

}  // namespace

BlockPlanView SparsePlanner::xattention(const EstimateInputs& in, const XAttentionParams& p,
                                        cudaStream_t s) {
    const BlockGrid g = checked_block_grid(in.n_new, in.pos0, p.block_size);
    TDM_REQUIRE(p.stride >= 1 && p.stride <= p.block_size && p.block_size % p.stride == 0,
                TDM_ERR_INVALID_ARGUMENT,
                "XAttention stride " + std::to_string(p.stride) + " must divide the block size " +
                    std::to_string(p.block_size));
    TDM_REQUIRE(in.heads > 0 && in.kv_heads > 0 && in.heads % in.kv_heads == 0,
                TDM_ERR_INVALID_ARGUMENT, "query heads must be a multiple of KV heads");
    TDM_REQUIRE(g.k_blocks <= 16 * kSelectThreads, TDM_ERR_UNSUPPORTED,
                "XAttention on the GPU supports up to " + std::to_string(16 * kSelectThreads) +
                    " key blocks, not " + std::to_string(g.k_blocks));
    const int S = p.stride, rpb = p.block_size / S;

    // Score rows: every group of S tokens in the call's query blocks.
    const int64_t tok_base = int64_t(g.first_q_block) * p.block_size;
    const int64_t tokens = int64_t(g.q_blocks) * p.block_size;
    const int64_t key_len = in.pos0 + in.n_new;
    // fp8 estimation: fp8 products where the wgmma engine takes head dim 128, else the engines
    // below on the bf16 of the same quantized values (a copy of the keys with `keys` rows).
    const bool fp8_products =
        p.fp8 && in.head_dim == 128 && xattention_wgmma_shape_fits(p, in.head_dim, rpb, key_len);
    EstimateInputs est = in;
    if (p.fp8) {
        const int64_t keys = stage_fp8(in, tok_base, tokens, fp8_products ? S : 0, s);
        est.k_cache = k_stage_.data();
        est.k_bf16 = true;
        est.capacity = keys;
    } else {
        stage_queries(in, tok_base, tokens, s);
    }

    estimate::ScoreArgs a;
    a.q = q_stage_.as<__nv_bfloat16>();
    a.q_tokens = tokens;
    a.q_tok_base = tok_base;
    a.k = est.k_cache;
    a.capacity = est.capacity;
    a.group = in.heads / in.kv_heads;
    a.key_len = in.pos0 + in.n_new;
    a.stride = S;
    a.row_base = int64_t(g.first_q_block) * rpb;
    a.rows = int32_t(int64_t(g.q_blocks) * rpb);
    a.q_lo = in.pos0;
    a.q_hi = in.pos0 + in.n_new;
    a.scale_log2 = in.scale / float(S) * estimate::kLog2e;
    a.col_splits = 1;  // a block owns whole rows: their final statistics fold its scratch

    const size_t sums_bytes = size_t(in.heads) * g.q_blocks * g.k_blocks * sizeof(float);
    ensure(block_sums_, sums_bytes);
    TDM_CUDA_CHECK(cudaMemsetAsync(block_sums_.data(), 0, sums_bytes, s));
    OnePassArgs o{};
    o.seg = std::min(rpb, 32);
    o.rows_per_block = rpb;
    // Rows are written up to whole column tiles, which may pass the last key block's columns.
    o.segs = int32_t((int64_t(g.k_blocks) * rpb + kTileCols - 1) / kTileCols * kTileCols / o.seg);
    o.first_q_block = g.first_q_block;
    o.q_blocks = g.q_blocks;
    o.k_blocks = g.k_blocks;
    o.sums = block_sums_.as<float>();
    const int32_t* exps = p.fp8 ? fp8_exponents(in.heads, in.kv_heads) : nullptr;
    if (fp8_products || xattention_wgmma_applies(a, est, p, rpb)) {
        // Rows are written up to whole column tiles.
        o.segs = int32_t((int64_t(g.k_blocks) * rpb + xattn_wg::kCols - 1) / xattn_wg::kCols *
                         xattn_wg::kCols / o.seg);
        if (fp8_products)
            launch_onepass_wgmma<128, true>(a, o, in.heads, in.kv_heads, exps, lse_scratch_, s);
        else if (in.head_dim == 64)
            launch_onepass_wgmma<64, false>(a, o, in.heads, in.kv_heads, nullptr, lse_scratch_, s);
        else
            launch_onepass_wgmma<128, false>(a, o, in.heads, in.kv_heads, nullptr, lse_scratch_, s);
    } else if (in.head_dim == 64) {
        if (est.k_bf16) launch_onepass<64, __nv_bfloat16>(a, o, in.heads, lse_scratch_, s);
        else launch_onepass<64, float>(a, o, in.heads, lse_scratch_, s);
    } else if (in.head_dim == 128) {
        if (est.k_bf16) launch_onepass<128, __nv_bfloat16>(a, o, in.heads, lse_scratch_, s);
        else launch_onepass<128, float>(a, o, in.heads, lse_scratch_, s);
    } else {
        fail(TDM_ERR_UNSUPPORTED, "sparse estimation supports head dims 64 and 128, not " +
                                      std::to_string(in.head_dim));
    }

    const float* thresholds = nullptr;
    if (p.thresholds != nullptr) {
        ensure(thresholds_, size_t(in.heads) * sizeof(float));
        // Pageable source: staged by the driver before the call returns, no device sync.
        TDM_CUDA_CHECK(cudaMemcpyAsync(thresholds_.data(), p.thresholds, size_t(in.heads) * sizeof(float),
                                       cudaMemcpyHostToDevice, s));
        thresholds = thresholds_.as<float>();
    }
    const int words = (g.k_blocks + 31) / 32;
    ensure(mask_, size_t(in.heads) * g.q_blocks * words * sizeof(uint32_t));
    const float* sums = block_sums_.as<float>();
    uint32_t* mask = mask_.as<uint32_t>();
    if (g.k_blocks <= 4 * kSelectThreads) launch_select<4>(sums, thresholds, p.threshold, g, in.heads, words, mask, s);
    else if (g.k_blocks <= 8 * kSelectThreads) launch_select<8>(sums, thresholds, p.threshold, g, in.heads, words, mask, s);
    else launch_select<16>(sums, thresholds, p.threshold, g, in.heads, words, mask, s);
    return build_plan(g, in.heads, s);
}

}  // namespace tdm::cuda
