// The GEMV for 1..16 input rows on the tensor cores: a short multi-row pass (speculative
// verification, a catch-up of the large model) still reads every weight once, so it should cost
// what a one-row decode step costs. The rows kernel (gemv.cu) keeps f32 accumulators per input row
// and lane, which stops scaling past a few rows; here one mma.sync m16n8k16 multiplies 8 weight
// rows by all 16 (zero-padded) input rows at once:
//   - A = the staged input rows (16 x 16 of k), B = 8 weight rows (a "tile"), C = 16 x 8 f32.
//     The K order inside a 64-column step is permuted (the sum does not care) so that each lane's
//     operands are contiguous: lane (g = lane / 4, t = lane % 4) loads columns 16t .. 16t + 15 of
//     weight row g with two 16-byte streaming loads (4 lanes: a 128-byte line of the row) and the
//     same columns of input rows g and g + 8 from shared memory; that is the B fragment of four
//     mmas and their A fragments (mma s takes elements 4s .. 4s + 3 of those 16);
//   - K is cut into `splits` ranges, one per block of a thread-block cluster (up to 8). Each block
//     stages only its columns of the input (as bf16, normed on the way), so the input is read
//     from L2 once per cluster instead of once per block, and any K up to about 23k fits; the
//     blocks add their partial tiles through distributed shared memory in a fixed order (rank 0
//     first: deterministic), and exchange the partial sums of squares of the RMSNorm the same way;
//   - a cluster owns `units_per_cluster` consecutive tiles; its blocks' warps take them round
//     robin, keep two batches of weight loads in flight across tile boundaries, and park each
//     finished tile's C fragment in shared memory for the reduction; the epilogues are the rows
//     kernel's (gemv_common.cuh): bias, store or add into y, SwiGLU, or RoPE and the KV append.
// Numerics: the products of bf16(input) and the bf16 weights, summed in f32 - the rows kernel's
// and cuBLAS's operands; only the summation order differs.
#include <cooperative_groups.h>

#include <climits>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/gemv_common.cuh"
#include "kernels/cuda/launch_fit.h"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda::gemv_detail {
namespace {

namespace cg = cooperative_groups;

constexpr int kStepCols = 64;         // K columns a warp multiplies per step (4 mma k16)
constexpr int kTileRows = 8;          // weight rows a tile (the mma's n = 8)
constexpr int kMaxSplits = 8;         // blocks a cluster: the portable maximum
constexpr int kMinStepsPerSplit = 4;  // K is not cut into ranges shorter than this
constexpr int kFragmentBytes = kWarpSize * 4 * int(sizeof(float));  // one warp's C fragment
// Shared memory a block: the staged input and the parked tiles. Two blocks (16 warps) fit an SM.
constexpr size_t kMaxSmem = 100 * 1024;

// Weight operands a step: gate and up for kGated; one otherwise (a kRope tile holds both rows of
// its pairs).
template <Mode kMode>
constexpr int kOperands = kMode == Mode::kGated ? 2 : 1;

// How K is cut for M input rows.
struct Cut {
    int steps;      // 64-column steps of K (the last one zero-padded)
    int splits;     // blocks a cluster, each with a range of steps
    int steps_per;  // steps a range (the last range may be shorter, none is empty)
    int stride;     // elements a staged input row: 16 bytes past a multiple of 128 (see below)
    size_t x_bytes;
};

Cut cut_for(int64_t M, int64_t K) {
    Cut c{};
    c.steps = int((K + kStepCols - 1) / kStepCols);
    int s = 1;
    while (s < kMaxSplits && c.steps >= 2 * s * kMinStepsPerSplit) s *= 2;
    c.steps_per = (c.steps + s - 1) / s;
    c.splits = (c.steps + c.steps_per - 1) / c.steps_per;
    // A lane reads 16 bytes at byte 32t of row g (then at 32t + 16): eight lanes (a quarter warp,
    // one shared-memory wavefront) cover 64 bytes of row g and 64 of row g + 1. A row stride of
    // 16 (mod 128) bytes puts those in different banks.
    c.stride = c.steps_per * kStepCols + 8;
    c.x_bytes = size_t(M) * size_t(c.stride) * sizeof(uint16_t);
    return c;
}

struct TileGrid {
    int M;
    int steps, steps_per, splits, stride;
    int units;            // tiles of the launch
    int units_per_cluster;  // tiles a cluster
    int x_bytes;          // the staged input's bytes; the parked tiles follow
};

// y (+)= A B: c[0] (row g, col 2t), c[1] (g, 2t + 1), c[2] (g + 8, 2t), c[3] (g + 8, 2t + 1).
__device__ __forceinline__ void mma_bf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One 64-column step: the lane's 16 columns of input rows g (lo) and g + 8 (hi) and of its weight
// row (w) as four mmas; mma s takes 32-bit words 2s and 2s + 1 (elements 4s .. 4s + 3) of each.
__device__ __forceinline__ void mma_step(float (&c)[4], const uint4 (&lo)[2], const uint4 (&hi)[2],
                                         const uint4 (&w)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        mma_bf16(c, lo[h].x, hi[h].x, lo[h].y, hi[h].y, w[h].x, w[h].y);
        mma_bf16(c, lo[h].z, hi[h].z, lo[h].w, hi[h].w, w[h].z, w[h].w);
    }
}

// Block barrier across the cluster (or the block alone when K is not cut).
__device__ __forceinline__ void cluster_barrier(int splits) {
    if (splits > 1)
        cg::this_cluster().sync();
    else
        __syncthreads();
}

// `local` in the shared memory of cluster block `rank` (this block's own when rank == self).
template <class T>
__device__ __forceinline__ const T* in_block(T* local, int rank, int self) {
    return rank == self ? local : cg::this_cluster().map_shared_rank(local, unsigned(rank));
}

// The weight rows lane group g multiplies in tile `unit` (the B operand's column g), for each
// matrix; false (and row pointers that are never read) past the last row.
template <Mode kMode>
__device__ __forceinline__ bool tile_rows(const Params& p, int unit, int g,
                                          const uint16_t* (&rows)[kOperands<kMode>]) {
    constexpr int kMats = kOperands<kMode>;
    int64_t r;
    int seg = 0;
    bool valid;
    if (kMode == Mode::kRope) {
        // Column g = 2j + h: pair j of the tile, h = 0 its first row, 1 the row D/2 later. The
        // epilogue's lane t then holds both rows of pair t (its columns 2t and 2t + 1).
        int64_t pair = int64_t(unit) * (kTileRows / 2) + g / 2;
        seg = locate(p, pair, 2);
        valid = pair < p.rows[seg] / 2;
        r = pair_row(p, valid ? pair : 0) + (g % 2) * (p.rope.head_dim / 2);
    } else {
        r = int64_t(unit) * kTileRows + g;
        if (kMode == Mode::kPlain) seg = locate(p, r, 1);
        valid = r < p.rows[seg];
    }
#pragma unroll
    for (int t = 0; t < kMats; ++t)
        rows[t] = p.w[kMode == Mode::kGated ? t : seg] + (valid ? r : 0) * int64_t(p.K);
    return valid;
}

// Stages columns [col0, col0 + width) of the M input rows in shared memory as bf16 (zero past K):
// bf16(x) or, with a norm, bf16(x * inv_rms * w) - rmsnorm_kernel's formula - where inv_rms
// comes from the sums of squares every block of the cluster computed over its own columns.
__device__ __forceinline__ void stage_columns(const Params& p, const TileGrid& t, int rank,
                                              int col0, int width, uint16_t* xs, float* row_ss,
                                              float* row_inv) {
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    if (p.norm != nullptr) {
        for (int m = warp; m < t.M; m += kWarps) {
            const float* xr = p.x + m * p.ldx;
            float ss = 0.0f;
            for (int c = lane * 4; c < width && col0 + c < p.K; c += kWarpSize * 4) {
                const float4 v = *reinterpret_cast<const float4*>(xr + col0 + c);
                ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
            }
            ss = warp_sum(ss);
            if (lane == 0) row_ss[m] = ss;
        }
        cluster_barrier(t.splits);  // every block's sums are written
        if (int(threadIdx.x) < t.M) {
            float ss = 0.0f;
            for (int q = 0; q < t.splits; ++q) ss += in_block(row_ss, q, rank)[threadIdx.x];
            row_inv[threadIdx.x] = rsqrtf(ss / float(p.K) + p.eps);
        }
        __syncthreads();
    }
    for (int m = warp; m < t.M; m += kWarps) {
        const float* xr = p.x + m * p.ldx;
        const float inv = p.norm != nullptr ? row_inv[m] : 1.0f;
        for (int c = lane * 4; c < width; c += kWarpSize * 4) {
            const int k = col0 + c;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (k < p.K) {
                v = *reinterpret_cast<const float4*>(xr + k);
                if (p.norm != nullptr) {
                    const uint2 w = *reinterpret_cast<const uint2*>(p.norm + k);
                    v.x = v.x * inv * __uint_as_float(w.x << 16);
                    v.y = v.y * inv * __uint_as_float(w.x & 0xffff0000u);
                    v.z = v.z * inv * __uint_as_float(w.y << 16);
                    v.w = v.w * inv * __uint_as_float(w.y & 0xffff0000u);
                }
            }
            const uint2 packed{uint32_t(float_to_bf16(v.x)) | uint32_t(float_to_bf16(v.y)) << 16,
                               uint32_t(float_to_bf16(v.z)) | uint32_t(float_to_bf16(v.w)) << 16};
            *reinterpret_cast<uint2*>(xs + m * t.stride + c) = packed;
        }
    }
    __syncthreads();
}

// A warp's walk through its (tile, step) pairs: tiles warp, warp + 8, ... of the block, every
// step of the block's K range for each, in that order.
struct Walk {
    int unit;  // the block's tile index
    int step;  // within the block's range
    int left;  // pairs still to go
};

__device__ __forceinline__ void advance(Walk& w, int steps) {
    --w.left;
    if (++w.step == steps) {
        w.step = 0;
        w.unit += kWarps;
    }
}

// The lane's weights of the next kBatch (tile, step) pairs (zeros past the end, past K or past
// the last row); moves to the next tile's rows when one is done.
template <Mode kMode, int kBatch>
__device__ __forceinline__ void load_batch(uint4 (&dst)[kBatch][kOperands<kMode>][2],
                                           const Params& p, Walk& w, int steps, int unit0,
                                           int k_lane, int g,
                                           const uint16_t* (&rows)[kOperands<kMode>],
                                           bool& valid, uint64_t policy) {
    constexpr int kMats = kOperands<kMode>;
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
        const bool live = w.left > 0;
        const int k = w.step * kStepCols + k_lane;  // this lane's first column in the block's range
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dst[b][t][h] = live && valid && k + h * kElems < p.K
                                   ? load_weights(reinterpret_cast<const uint4*>(rows[t] + k) + h,
                                                  policy)
                                   : make_uint4(0, 0, 0, 0);
        if (live) {
            const int unit = w.unit;
            advance(w, steps);
            if (w.unit != unit && w.left > 0) valid = tile_rows<kMode>(p, unit0 + w.unit, g, rows);
        }
    }
}

template <Mode kMode>
__global__ void __launch_bounds__(kThreads, 2) gemv_tiles_kernel(Params p, TileGrid t) {
    constexpr int kMats = kOperands<kMode>;
    // Weight loads in flight per lane: two batches of 4 steps (2 with two matrices) x 32 bytes.
    constexpr int kBatch = kMats == 1 ? 4 : 2;
    extern __shared__ __align__(16) unsigned char smem[];
    __shared__ float row_ss[kGemvMaxRows], row_inv[kGemvMaxRows];
    uint16_t* xs = reinterpret_cast<uint16_t*>(smem);                  // [M][stride]
    float4* parked = reinterpret_cast<float4*>(smem + t.x_bytes);      // [unit][mat][lane]

    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    const int g = lane / 4, q = lane % 4;
    const int rank = t.splits > 1 ? int(cg::this_cluster().block_rank()) : 0;
    const int unit0 = int(blockIdx.x / unsigned(t.splits)) * t.units_per_cluster;
    const int units = min(t.units_per_cluster, t.units - unit0);
    const int step0 = rank * t.steps_per;
    const int steps = min(t.steps_per, t.steps - step0);  // >= 1: no range is empty
    const int col0 = step0 * kStepCols;
    const int mine = warp < units ? (units - warp + kWarps - 1) / kWarps : 0;

    // The weights depend on nothing: the first batch is requested before the predecessor ends.
    const uint16_t* rows[kMats] = {};
    bool valid = mine > 0 && tile_rows<kMode>(p, unit0 + warp, g, rows);
    Walk load{warp, 0, mine * steps};
    uint4 cur[kBatch][kMats][2], next[kBatch][kMats][2];
    const uint64_t policy = weight_policy(p.evict_first);
    load_batch<kMode, kBatch>(cur, p, load, steps, unit0, col0 + 16 * q, g, rows, valid, policy);
    wait_for_predecessor();
    if (p.early_successor) allow_successor();
    stage_columns(p, t, rank, col0, steps * kStepCols, xs, row_ss, row_inv);

    // Input rows g and g + 8 of the A operand; rows past M are zeros, never read.
    const uint16_t* x_lo = xs + g * t.stride + 16 * q;
    const uint16_t* x_hi = x_lo + 8 * t.stride;
    const bool has_lo = g < t.M, has_hi = g + 8 < t.M;
    float acc[kMats][4] = {};
    Walk walk{warp, 0, mine * steps};
    while (walk.left > 0) {
        load_batch<kMode, kBatch>(next, p, load, steps, unit0, col0 + 16 * q, g, rows, valid,
                                  policy);
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            if (walk.left == 0) break;
            const int at = walk.step * kStepCols;
            uint4 lo[2], hi[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                lo[h] = has_lo ? *reinterpret_cast<const uint4*>(x_lo + at + h * kElems)
                               : make_uint4(0, 0, 0, 0);
                hi[h] = has_hi ? *reinterpret_cast<const uint4*>(x_hi + at + h * kElems)
                               : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int m = 0; m < kMats; ++m) mma_step(acc[m], lo, hi, cur[b][m]);
            const int unit = walk.unit;
            advance(walk, steps);
            if (walk.unit != unit) {  // the tile's range is done: park it for the reduction
#pragma unroll
                for (int m = 0; m < kMats; ++m) {
                    parked[(unit * kMats + m) * kWarpSize + lane] =
                        make_float4(acc[m][0], acc[m][1], acc[m][2], acc[m][3]);
                    acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;
                }
            }
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b)
#pragma unroll
            for (int m = 0; m < kMats; ++m) {
                cur[b][m][0] = next[b][m][0];
                cur[b][m][1] = next[b][m][1];
            }
    }
    if (!p.early_successor) allow_successor();
    cluster_barrier(t.splits);  // every block's tiles are parked

    // Block `rank` finishes tiles rank, rank + splits, ...: the ranges' partials added in rank
    // order, then the epilogue. Lane (g, q) holds input rows g and g + 8 of tile columns 2q and
    // 2q + 1 (kRope: the two rows of pair q).
    for (int i = warp;; i += kWarps) {
        const int unit = rank + i * t.splits;
        if (unit >= units) break;
        float4 sum[kMats];
#pragma unroll
        for (int m = 0; m < kMats; ++m) {
            sum[m] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int r = 0; r < t.splits; ++r) {
                const float4 v = in_block(parked, r, rank)[(unit * kMats + m) * kWarpSize + lane];
                sum[m].x += v.x;
                sum[m].y += v.y;
                sum[m].z += v.z;
                sum[m].w += v.w;
            }
        }
        const int tile = unit0 + unit;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int m = g + 8 * h;
            if (m >= t.M) continue;
            float v0[kMats], v1[kMats];  // columns 2q and 2q + 1
#pragma unroll
            for (int k = 0; k < kMats; ++k) {
                v0[k] = h == 0 ? sum[k].x : sum[k].z;
                v1[k] = h == 0 ? sum[k].y : sum[k].w;
            }
            if (kMode == Mode::kRope) {
                int64_t pair = int64_t(tile) * (kTileRows / 2) + q;
                const int seg = locate(p, pair, 2);
                if (pair < p.rows[seg] / 2) store_rope(p, m, seg, pair_row(p, pair), v0[0], v1[0]);
            } else {
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    int64_t r = int64_t(tile) * kTileRows + 2 * q + j;
                    const float a = j == 0 ? v0[0] : v1[0];
                    if (kMode == Mode::kGated) {
                        const float up = j == 0 ? v0[kMats - 1] : v1[kMats - 1];
                        if (r < p.rows[0]) store_gated(p, m, r, a, up);
                    } else {
                        const int seg = locate(p, r, 1);
                        if (r < p.rows[seg]) store_plain(p, m, seg, r, a);
                    }
                }
            }
        }
    }
    cluster_barrier(t.splits);  // the other blocks may still read this block's parked tiles
}

// Clusters of `splits` blocks (or blocks, for 1) the device runs at once with kMaxSmem each: the
// launch takes at most that many per wave. Asked once per kernel, size and device.
int resident_clusters(const void* kernel, int splits) {
    return remembered_launch_fit(kernel, splits, [&](int device) {
        TDM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            int(kMaxSmem)));
        int n = 0;
        if (splits == 1) {
            n = resident_blocks_on(device, kernel, kThreads, kMaxSmem);
        } else {
            cudaLaunchAttribute attribute[1];
            attribute[0].id = cudaLaunchAttributeClusterDimension;
            attribute[0].val.clusterDim.x = unsigned(splits);
            attribute[0].val.clusterDim.y = 1;
            attribute[0].val.clusterDim.z = 1;
            cudaLaunchConfig_t config{};
            config.gridDim = dim3(unsigned(splits));
            config.blockDim = dim3(kThreads);
            config.dynamicSmemBytes = kMaxSmem;
            config.attrs = attribute;
            config.numAttrs = 1;
            TDM_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, kernel, &config));
        }
        TDM_REQUIRE(n > 0, TDM_ERR_DEVICE,
                    "gemv_tiles_kernel: the device cannot run a cluster of " +
                        std::to_string(splits) + " blocks of " + std::to_string(kMaxSmem / 1024) +
                        " KB shared memory");
        return n;
    });
}

}  // namespace

bool gemv_tiles_fits(int64_t M, int64_t K) {
    if (M < 1 || M > kGemvMaxRows || K <= 0 || K % kElems != 0 || K > (int64_t(1) << 30))
        return false;
    // The staged input and at least one tile per warp of the widest (gated) kind.
    return cut_for(M, K).x_bytes + size_t(kWarps * 2 * kFragmentBytes) <= kMaxSmem;
}

template <Mode kMode>
void launch_tiles(const Params& p, int64_t M, int64_t units, cudaStream_t stream,
                  const char* name) {
    constexpr int kMats = kOperands<kMode>;
    TDM_REQUIRE(gemv_tiles_fits(M, p.K) && units > 0 && units <= INT_MAX,
                TDM_ERR_INVALID_ARGUMENT,
                std::string(name) + ": " + std::to_string(M) + " rows of " +
                    std::to_string(p.K) + " or " + std::to_string(units) +
                    " tiles do not fit the tensor-core GEMV");
    const Cut cut = cut_for(M, p.K);
    auto* kernel = gemv_tiles_kernel<kMode>;
    const int64_t resident = resident_clusters(reinterpret_cast<const void*>(kernel), cut.splits);
    // Tiles a cluster: as few as fill every resident cluster, in whole waves when the parked
    // tiles of one wave would not fit shared memory (the vocabulary projection).
    const int64_t fit = int64_t(kMaxSmem - cut.x_bytes) / (kMats * kFragmentBytes);
    const int64_t waves = (units + resident * fit - 1) / (resident * fit);
    const int64_t per_cluster = (units + resident * waves - 1) / (resident * waves);
    const int64_t clusters = (units + per_cluster - 1) / per_cluster;
    TDM_REQUIRE(clusters * cut.splits <= INT_MAX, TDM_ERR_INVALID_ARGUMENT,
                std::string(name) + ": too many output rows");
    TileGrid t{};
    t.M = int(M);
    t.steps = cut.steps;
    t.steps_per = cut.steps_per;
    t.splits = cut.splits;
    t.stride = cut.stride;
    t.units = int(units);
    t.units_per_cluster = int(per_cluster);
    t.x_bytes = int(cut.x_bytes);

    cudaLaunchAttribute attribute[2];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    attribute[1].id = cudaLaunchAttributeClusterDimension;
    attribute[1].val.clusterDim.x = unsigned(cut.splits);
    attribute[1].val.clusterDim.y = 1;
    attribute[1].val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(unsigned(clusters * cut.splits));
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = cut.x_bytes + size_t(per_cluster) * kMats * kFragmentBytes;
    config.stream = stream;
    config.attrs = attribute;
    config.numAttrs = cut.splits > 1 ? 2 : 1;
    Params q = p;
    q.early_successor = early_successor(clusters <= resident);
    q.evict_first = weights_evict_first();
    check_cuda(cudaLaunchKernelEx(&config, kernel, q, t), name);
}

template void launch_tiles<Mode::kPlain>(const Params&, int64_t, int64_t, cudaStream_t,
                                         const char*);
template void launch_tiles<Mode::kGated>(const Params&, int64_t, int64_t, cudaStream_t,
                                         const char*);
template void launch_tiles<Mode::kRope>(const Params&, int64_t, int64_t, cudaStream_t,
                                        const char*);

}  // namespace tdm::cuda::gemv_detail
