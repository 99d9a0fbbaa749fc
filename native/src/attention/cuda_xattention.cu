// XAttention on the GPU (ALGORITHMS.md 4), the twin of attention/xattention.h:
//   1. the antidiagonal scores (stride S, the reshape never materialised), their row softmax and
//      per-block sums: the score engine of cuda_estimate_tile.cuh, two passes, whose epilogue
//      sums each tile's probabilities over (B/S x B/S) cells;
//   2. block selection per (head, query block) row: the row's candidate blocks (neither the sink
//      nor the diagonal) sorted in one thread block (cub::BlockRadixSort), then a scan; a block
//      is taken while the mass before it, mandatory blocks included, is below tau * row mass
//      (inclusive: the crossing block is taken); tau >= 1 takes every causal block;
//   3. the plan from the selection bitmask (cuda_sparse_plan.cu).
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "attention/cuda_estimate_tile.cuh"
#include "attention/cuda_sparse_estimation.h"

namespace tdm::cuda {
namespace {

using estimate::ensure;
using estimate::kScoreStride;

// Adds each tile's probabilities into sums[head, qb, kb] (zeroed before pass 2). Warp w holds
// rows 16w .. 16w+15 of the tile, lane the columns lane and lane + 32; a cell's partial sum is
// reduced over its rows in registers and over its columns by shuffles, then added once.
struct BlockSumEpilogue {
    float* sums;
    int32_t rows_per_block;  // B / S score rows (and columns) per block
    int32_t first_q_block, q_blocks, k_blocks;

    __device__ void tile(const float* sc, int64_t R0, int64_t C0, int head) const {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        const int seg_rows = min(rows_per_block, 16), seg_cols = min(rows_per_block, 32);
        for (int half = 0; half < 2; ++half) {
            const int c = lane + 32 * half;
            const int64_t kb = (C0 + c) / rows_per_block;
            for (int rb = 0; rb < 16; rb += seg_rows) {
                float s = 0.0f;
                for (int r = 0; r < seg_rows; ++r) s += sc[(warp * 16 + rb + r) * kScoreStride + c];
                for (int o = 1; o < seg_cols; o *= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
                const int64_t qb = (R0 + warp * 16 + rb) / rows_per_block - first_q_block;
                if (lane % seg_cols == 0 && s != 0.0f && qb >= 0 && qb < q_blocks && kb < k_blocks)
                    atomicAdd(sums + (int64_t(head) * q_blocks + qb) * k_blocks + kb, s);
            }
        }
    }
};

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
    stage_queries(in, tok_base, tokens, s);

    estimate::ScoreArgs a;
    a.q = q_stage_.as<__nv_bfloat16>();
    a.q_tokens = tokens;
    a.q_tok_base = tok_base;
    a.k = in.k_cache;
    a.capacity = in.capacity;
    a.group = in.heads / in.kv_heads;
    a.key_len = in.pos0 + in.n_new;
    a.stride = S;
    a.row_base = int64_t(g.first_q_block) * rpb;
    a.rows = int32_t(int64_t(g.q_blocks) * rpb);
    a.q_lo = in.pos0;
    a.q_hi = in.pos0 + in.n_new;
    a.scale_log2 = in.scale / float(S) * estimate::kLog2e;
    const int64_t row_tiles = (a.rows + estimate::kTileRows - 1) / estimate::kTileRows;
    a.col_splits = estimate::column_splits(row_tiles, in.heads,
                                           (a.row_base + a.rows) / estimate::kTileCols + 1);

    const size_t sums_bytes = size_t(in.heads) * g.q_blocks * g.k_blocks * sizeof(float);
    ensure(block_sums_, sums_bytes);
    TDM_CUDA_CHECK(cudaMemsetAsync(block_sums_.data(), 0, sums_bytes, s));
    const BlockSumEpilogue epi{block_sums_.as<float>(), rpb, g.first_q_block, g.q_blocks, g.k_blocks};
    estimate::score_passes(a, in.heads, in.head_dim, in.k_bf16, partial_stats_, row_stats_, epi, s);

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
