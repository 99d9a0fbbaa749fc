// The parts of the GPU block planner both methods share: the block grid, the bf16 staging of the
// queries, and the plan itself built from a bitmask of selected blocks per (head, query block):
// per-row counts -> exclusive scan (cub) -> ascending columns, and each head's density.
#include <cub/device/device_scan.cuh>

#include <cuda_bf16.h>

#include "attention/cuda_estimate_tile.cuh"
#include "attention/cuda_sparse_estimation.h"

namespace tdm::cuda {

using estimate::ensure;

BlockGrid checked_block_grid(int64_t n_new, int64_t pos0, int32_t block_size) {
    TDM_REQUIRE(n_new > 0 && pos0 >= 0, TDM_ERR_INVALID_ARGUMENT,
                "block-sparse attention needs at least one query");
    TDM_REQUIRE(block_size == 64 || block_size == 128, TDM_ERR_INVALID_ARGUMENT,
                "block size must be 64 or 128, not " + std::to_string(block_size));
    TDM_REQUIRE((pos0 + n_new - 1) / block_size < (int64_t(1) << 24), TDM_ERR_INVALID_ARGUMENT,
                "sequence too long for a block plan");
    return BlockGrid::of(pos0, n_new, block_size);
}

namespace {

// out[h, t, :] = bf16(q[pos - pos0, h, :]) for pos = tok_base + t inside the call, else 0.
__global__ void stage_queries_kernel(const float* __restrict__ q, int64_t n_new, int64_t pos0,
                                     int heads, int D, int64_t tok_base, int64_t tokens,
                                     __nv_bfloat16* __restrict__ out) {
    const int vecs = D / 8;
    const int64_t total = int64_t(heads) * tokens * vecs;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int c = int(i % vecs) * 8;
        const int64_t t = (i / vecs) % tokens;
        const int h = int(i / (int64_t(vecs) * tokens));
        const int64_t row = tok_base + t - pos0;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (row >= 0 && row < n_new) {
            const float* src = q + (row * heads + h) * D + c;
            const float4 a = *reinterpret_cast<const float4*>(src);
            const float4 b = *reinterpret_cast<const float4*>(src + 4);
            __nv_bfloat162 p[4] = {__floats2bfloat162_rn(a.x, a.y), __floats2bfloat162_rn(a.z, a.w),
                                   __floats2bfloat162_rn(b.x, b.y), __floats2bfloat162_rn(b.z, b.w)};
            v = *reinterpret_cast<const uint4*>(p);
        }
        *reinterpret_cast<uint4*>(out + (int64_t(h) * tokens + t) * D + c) = v;
    }
}

// counts[row] = selected blocks of the row; counts[rows] = 0 (the scan's total slot).
__global__ void count_rows_kernel(const uint32_t* __restrict__ mask, int64_t rows, int words,
                                  int32_t* __restrict__ counts) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row > rows) return;
    int n = 0;
    if (row < rows)
        for (int w = lane; w < words; w += 32) n += __popc(mask[row * words + w]);
    for (int o = 16; o > 0; o /= 2) n += __shfl_xor_sync(0xffffffffu, n, o);
    if (lane == 0) counts[row] = n;
}

// cols[row_ptr[row] ..] = the row's set bits, ascending. One warp per row.
__global__ void write_cols_kernel(const uint32_t* __restrict__ mask, int64_t rows, int words,
                                  const int32_t* __restrict__ row_ptr, int32_t* __restrict__ cols) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    int32_t base = row_ptr[row];
    for (int w0 = 0; w0 < words; w0 += 32) {
        const int w = w0 + lane;
        uint32_t bits = w < words ? mask[row * words + w] : 0u;
        const int n = __popc(bits);
        int before = n;  // inclusive scan over the warp
        for (int o = 1; o < 32; o *= 2) {
            const int x = __shfl_up_sync(0xffffffffu, before, o);
            if (lane >= o) before += x;
        }
        int32_t at = base + before - n;
        while (bits != 0u) {
            const int b = __ffs(bits) - 1;
            cols[at++] = w * 32 + b;
            bits &= bits - 1u;
        }
        base += __shfl_sync(0xffffffffu, before, 31);
    }
}

// density[h] = selected blocks of head h / causal blocks of its rows (r + 1 for query block r).
__global__ void density_kernel(const int32_t* __restrict__ counts, int first_q_block, int q_blocks,
                               float* __restrict__ density) {
    const int h = blockIdx.x;
    double selected = 0.0;
    for (int r = threadIdx.x; r < q_blocks; r += blockDim.x) selected += counts[int64_t(h) * q_blocks + r];
    for (int o = 16; o > 0; o /= 2) selected += __shfl_xor_sync(0xffffffffu, selected, o);
    __shared__ double warp_sums[32];
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = selected;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (int w = 0; w < int(blockDim.x / 32); ++w) s += warp_sums[w];
        // causal blocks: sum over r = first .. first + q_blocks - 1 of (r + 1)
        const double causal = double(q_blocks) * (2.0 * first_q_block + q_blocks + 1) / 2.0;
        density[h] = float(s / causal);
    }
}

}  // namespace

void SparsePlanner::stage_queries(const EstimateInputs& in, int64_t tok_base, int64_t tokens,
                                  cudaStream_t s) {
    ensure(q_stage_, size_t(in.heads) * tokens * in.head_dim * sizeof(__nv_bfloat16));
    const int64_t vecs = int64_t(in.heads) * tokens * (in.head_dim / 8);
    const unsigned blocks = unsigned(std::min<int64_t>((vecs + 255) / 256, 65535));
    stage_queries_kernel<<<blocks, 256, 0, s>>>(in.q, in.n_new, in.pos0, in.heads, in.head_dim,
                                                tok_base, tokens, q_stage_.as<__nv_bfloat16>());
    TDM_CUDA_CHECK_LAUNCH("stage_queries_kernel");
}

BlockPlanView SparsePlanner::build_plan(const BlockGrid& g, int32_t heads, cudaStream_t s) {
    const int64_t rows = int64_t(heads) * g.q_blocks;
    const int words = (g.k_blocks + 31) / 32;
    const int64_t causal = int64_t(g.q_blocks) * (2 * int64_t(g.first_q_block) + g.q_blocks + 1) / 2;
    ensure(counts_, size_t(rows + 1) * sizeof(int32_t));
    ensure(row_ptr_, size_t(rows + 1) * sizeof(int32_t));
    ensure(cols_, size_t(std::max<int64_t>(1, causal * heads)) * sizeof(int32_t));
    ensure(density_, size_t(heads) * sizeof(float));
    TDM_REQUIRE(rows + 1 <= INT32_MAX && causal * heads <= INT32_MAX, TDM_ERR_INVALID_ARGUMENT,
                "block plan too large");

    const unsigned warps_blocks = unsigned((rows + 1 + 7) / 8);
    count_rows_kernel<<<warps_blocks, 256, 0, s>>>(mask_.as<uint32_t>(), rows, words,
                                                   counts_.as<int32_t>());
    TDM_CUDA_CHECK_LAUNCH("count_rows_kernel");
    size_t temp = 0;
    TDM_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, temp, counts_.as<int32_t>(),
                                                 row_ptr_.as<int32_t>(), int(rows + 1), s));
    ensure(scan_temp_, temp);
    TDM_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(scan_temp_.data(), temp, counts_.as<int32_t>(),
                                                 row_ptr_.as<int32_t>(), int(rows + 1), s));
    write_cols_kernel<<<warps_blocks, 256, 0, s>>>(mask_.as<uint32_t>(), rows, words,
                                                   row_ptr_.as<int32_t>(), cols_.as<int32_t>());
    TDM_CUDA_CHECK_LAUNCH("write_cols_kernel");
    density_kernel<<<unsigned(heads), 256, 0, s>>>(counts_.as<int32_t>(), g.first_q_block,
                                                   g.q_blocks, density_.as<float>());
    TDM_CUDA_CHECK_LAUNCH("density_kernel");

    BlockPlanView plan;
    plan.heads = heads;
    plan.block_size = g.block_size;
    plan.first_q_block = g.first_q_block;
    plan.q_blocks = g.q_blocks;
    plan.k_blocks = g.k_blocks;
    plan.row_ptr = row_ptr_.as<int32_t>();
    plan.cols = cols_.as<int32_t>();
    return plan;
}

}  // namespace tdm::cuda
