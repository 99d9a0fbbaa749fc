// Matrix-vector products for the few rows of a decode step. A decode step reads every weight once
// for one token, so it runs at the speed HBM streams the weights, plus whatever fixed cost each
// kernel adds: cuBLAS needs the activations rounded to bf16 in a pass of their own (a launch per
// product), one launch per matrix, and the sub-layer's RMSNorm and residual add in kernels of
// their own. Here one launch does a whole projection step. Two kernels (kernels.h: GemvKernel):
// the rows kernel below, a warp per weight row on the CUDA cores, for 1..4 input rows (the decode
// step's kernel, and speculative verification's up to gamma 3), and the tensor-core tiles kernel
// (gemv_tiles.cu) for up to 16 rows of any K the models have. The rows kernel:
//   - prologue: each warp's weight ring (below) fills before the predecessor kernel has finished
//     (overlap.cuh); then the block stages its input x in shared memory as bf16 - normalised on
//     the way (rmsnorm(x) * w, the sub-layer's norm) when asked, rounded exactly as
//     round_to_bf16 would - so no warp rounds or re-reads x from L2;
//   - main loop: one wave of warps walks the weight rows (a warp takes rows w, w + warps, ...;
//     when there are too few rows to fill the GPU, slices of one row), each streaming its rows
//     through a ring of stages in shared memory that bulk asynchronous copies fill, f32
//     accumulation;
//   - epilogue (gemv_common.cuh, shared with the tiles kernel): bias; then store, add into y (the
//     residual stream), for the gate/up pair silu(gate) * up, or for q, k, v RoPE and the
//     KV-cache append (Mode). Every matrix that reads the same input goes in one launch.
#include <algorithm>
#include <climits>
#include <string>

#include "kernels/cuda/async_copy.cuh"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/gemv_common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"
#include "kernels/cuda/launch_fit.h"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda {
namespace {

using namespace gemv_detail;

// The weight ring: each warp streams its rows through a ring of up to kMaxStages stages of
// kStageBytes in shared memory, filled by bulk asynchronous copies (async_copy.cuh) that its lane
// 0 issues as soon as the warp has consumed a stage. Bytes in flight then cost no registers: the
// kernel before it held two batches of 16-byte loads in registers, which capped it at two 8-warp
// blocks an SM and ~64 KB in flight, and fell short of HBM's rate as soon as the multiply grew
// with M (ncu: 46-61% of DRAM peak on the 8B projections at 3 rows). Measured on an H100 against
// it (tandem_cuda_gemv_bench, same run): the 1B decode pass 938 against 996 us, the 8B one 5,290
// against 5,276; 3 rows 1.12x (8B) and 1.22x (1B) of one row where the tiles kernel took 1.18x
// and 1.35x. 4 KB stages measured slower (8B 5,317 us, 1B 965).
constexpr int kStageBytes = 2048;              // 4 chunks a lane: one matrix, or two of 1 KB
constexpr int kStageChunks = kStageBytes / 16;  // 16-byte chunks a stage holds
constexpr int kMaxStages = 8;
constexpr int kBarrierBytes = kWarps * kMaxStages * 8;  // the ring's mbarriers, at the start
// Shared memory of an sm_90 SM and the most one block may ask for (the opt-in maximum): every
// build of this backend is sm_90a (cmake/TandemOptions.cmake). A block also holds ~0.4 KB of
// static shared memory and the runtime reserves 1 KB a block, hence the margin.
constexpr int64_t kSmPerSm = 233472;
constexpr int64_t kSmPerBlockMax = 232448;
constexpr int64_t kSmMargin = 2048;
// Two blocks an SM when each keeps at least this many stages, else one block with more.
constexpr int kMinStagesForTwoBlocks = 3;

// The 8 bf16 of a 16-byte word as floats (element 2i is the low half of word i).
__device__ __forceinline__ void widen8(const uint4& w, float (&out)[kElems]) {
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = __uint_as_float(words[i] << 16);
        out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
}

// What a warp does: weight rows (two for the gated kernel: gate and up; a pair for kRope) first,
// first + stride, ... below the launch's units, chunks [c_begin, c_end) of each. With slices > 1
// a row is shared by `slices` warps of the block (the grid then gives every warp one row at
// most), and a slice 0 warp finishes it.
struct WarpTask {
    int64_t first, stride;
    int slice;
    int c_begin, c_end;
};

__device__ __forceinline__ WarpTask warp_task(int slices, int K) {
    const int warp = threadIdx.x / kWarpSize;
    const int chunks = K / kElems;
    const int per = (chunks + slices - 1) / slices;
    WarpTask t;
    t.first = int64_t(blockIdx.x) * (kWarps / slices) + warp / slices;
    t.stride = int64_t(gridDim.x) * (kWarps / slices);
    t.slice = warp % slices;
    t.c_begin = min(chunks, t.slice * per);
    t.c_end = min(chunks, t.c_begin + per);
    return t;
}

// Unit `unit` of the concatenated outputs as the output it falls in (seg), its weight rows r and
// their addresses (a pair for kRope: rows r and r + D/2 of one head, as the epilogue wants them).
template <Mode kMode>
struct UnitRows {
    static constexpr int kMats = kMatsOf<kMode>;
    int seg;
    int64_t unit;  // within output seg
    int64_t r[kMats];
    const uint16_t* w[kMats];
};

template <Mode kMode>
__device__ __forceinline__ UnitRows<kMode> unit_rows(const Params& p, int64_t unit) {
    constexpr int kMats = kMatsOf<kMode>;
    constexpr int kUnitRows = kMode == Mode::kRope ? 2 : 1;
    UnitRows<kMode> u;
    u.unit = unit;
    u.seg = kMode == Mode::kGated ? 0 : locate(p, u.unit, kUnitRows);
    if (kMode == Mode::kRope) {
        u.r[0] = pair_row(p, u.unit);
        u.r[kMats - 1] = u.r[0] + p.rope.head_dim / 2;
    } else {
#pragma unroll
        for (int t = 0; t < kMats; ++t) u.r[t] = u.unit;
    }
#pragma unroll
    for (int t = 0; t < kMats; ++t) u.w[t] = p.w[kMode == Mode::kGated ? t : u.seg] + u.r[t] * p.K;
    return u;
}

// Float4 loads of x (and the norm weight's 4-element words) a thread issues together in
// stage_input: K up to kHeld * 4 * kThreads (8,192) is one round trip to L2 per pass, where a
// loop that used each load at once paid one per iteration (8 for the 1B down projection, whose
// staging then sat between the first weight batch and the first multiply).
constexpr int kHeld = 8;
constexpr int kRound = kHeld * 4 * kThreads;  // elements of a row one round covers
// With several input rows all of them are loaded in that one round trip when M * K allows
// (kHeldAll<M> float4s a row: 8B rows of 4,096 up to M = 4), and their norms come out of one
// block reduction: rows one after another paid M round trips and M reductions before the first
// multiply, with the weight ring already full and HBM idle.
template <int M>
constexpr int kHeldAll = M <= 2 ? kHeld : 16 / M;

// Loads this thread's float4s of round k0 (elements k0 + j * 4 * kThreads); past K: zeros.
template <int kN>
__device__ __forceinline__ void load_round(const float* xr, int k0, int K, float4 (&v)[kN]) {
#pragma unroll
    for (int j = 0; j < kN; ++j) {
        const int k = k0 + j * 4 * kThreads;
        v[j] = k < K ? *reinterpret_cast<const float4*>(xr + k) : make_float4(0, 0, 0, 0);
    }
}

// The norm weight's words for round k0, as load_round; zeros without a norm.
template <int kN>
__device__ __forceinline__ void load_norm(const Params& p, int k0, int K, uint2 (&g)[kN]) {
#pragma unroll
    for (int j = 0; j < kN; ++j) {
        const int k = k0 + j * 4 * kThreads;
        g[j] = p.norm != nullptr && k < K ? *reinterpret_cast<const uint2*>(p.norm + k)
                                          : make_uint2(0, 0);
    }
}

__device__ __forceinline__ float sum_of_squares(const float4& v) {
    return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
}

// Stores x (times inv and the norm weight g, with a norm) at xs as four bf16.
__device__ __forceinline__ void store_staged(float4 x, bool norm, float inv, uint2 g,
                                             uint16_t* xs) {
    if (norm) {
        x.x = x.x * inv * __uint_as_float(g.x << 16);
        x.y = x.y * inv * __uint_as_float(g.x & 0xffff0000u);
        x.z = x.z * inv * __uint_as_float(g.y << 16);
        x.w = x.w * inv * __uint_as_float(g.y & 0xffff0000u);
    }
    const uint2 packed{uint32_t(float_to_bf16(x.x)) | uint32_t(float_to_bf16(x.y)) << 16,
                       uint32_t(float_to_bf16(x.z)) | uint32_t(float_to_bf16(x.w)) << 16};
    *reinterpret_cast<uint2*>(xs) = packed;
}

// Stages x [M, K] in shared memory as bf16: bf16(x) or, with a norm, bf16(x * inv_rms * w) with
// inv_rms = rsqrt(mean(x^2) + eps) per row (the formula of rmsnorm_kernel; each row's sum of
// squares added in the same order whichever way it is staged). Whole block.
template <int M>
__device__ __forceinline__ void stage_input(const Params& p, uint16_t* xs) {
    __shared__ float scratch[M][kWarpSize];
    const int K = p.K;
    const bool norm = p.norm != nullptr;
    if (K <= kHeldAll<M> * 4 * kThreads) {  // every row in one round
        constexpr int kN = kHeldAll<M>;
        const int k0 = threadIdx.x * 4;
        float4 v[M][kN];
        uint2 g[kN];
        load_norm(p, k0, K, g);
#pragma unroll
        for (int m = 0; m < M; ++m) load_round(p.x + m * p.ldx, k0, K, v[m]);
        float inv[M];
#pragma unroll
        for (int m = 0; m < M; ++m) inv[m] = 1.0f;
        if (norm) {
#pragma unroll
            for (int m = 0; m < M; ++m) {
                inv[m] = 0.0f;
#pragma unroll
                for (int j = 0; j < kN; ++j) inv[m] += sum_of_squares(v[m][j]);
            }
            block_sums<M>(inv, scratch);
#pragma unroll
            for (int m = 0; m < M; ++m) inv[m] = rsqrtf(inv[m] / float(K) + p.eps);
        }
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
            for (int j = 0; j < kN; ++j) {
                const int k = k0 + j * 4 * kThreads;
                if (k < K) store_staged(v[m][j], norm, inv[m], g[j], xs + m * K + k);
            }
        __syncthreads();
        return;
    }
    const bool one_round = K <= kRound;  // the norm's second pass reuses the registers
#pragma unroll
    for (int m = 0; m < M; ++m) {
        const float* xr = p.x + m * p.ldx;
        float4 v[kHeld];
        float inv[1] = {1.0f};
        if (norm) {
            inv[0] = 0.0f;
            for (int k0 = threadIdx.x * 4; k0 < K; k0 += kRound) {
                load_round(xr, k0, K, v);
#pragma unroll
                for (int j = 0; j < kHeld; ++j) inv[0] += sum_of_squares(v[j]);
            }
            block_sums<1>(inv, scratch);
            inv[0] = rsqrtf(inv[0] / float(K) + p.eps);
        }
        for (int k0 = threadIdx.x * 4; k0 < K; k0 += kRound) {
            if (!(norm && one_round)) load_round(xr, k0, K, v);
            uint2 g[kHeld];
            load_norm(p, k0, K, g);
#pragma unroll
            for (int j = 0; j < kHeld; ++j) {
                const int k = k0 + j * 4 * kThreads;
                if (k >= K) break;
                store_staged(v[j], norm, inv[0], g[j], xs + m * K + k);
            }
        }
    }
    __syncthreads();
}

// acc[t][m] += the batch's weights times the staged x.
template <int M, int kMats, int kBatch>
__device__ __forceinline__ void multiply_batch(const uint4 (&wv)[kMats][kBatch],
                                               const uint16_t* xs, int K, int c, int c_end,
                                               float (&acc)[kMats][M]) {
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
        const int at = c + u * kWarpSize;
        if (at >= c_end) continue;
        float wf[kMats][kElems];
#pragma unroll
        for (int t = 0; t < kMats; ++t) widen8(wv[t][u], wf[t]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
            float xf[kElems];
            widen8(*reinterpret_cast<const uint4*>(xs + m * K + at * kElems), xf);
#pragma unroll
            for (int t = 0; t < kMats; ++t)
#pragma unroll
                for (int e = 0; e < kElems; ++e) acc[t][m] = fmaf(wf[t][e], xf[e], acc[t][m]);
        }
    }
}

// Adds the slices of every row of the block into the warps of slice 0 (all threads call it).
template <int M, int kMats>
__device__ __forceinline__ void sum_slices(float (&acc)[kMats][M], int slices) {
    __shared__ float partial[kWarps][kMats][M];
    if (slices == 1) return;
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    if (lane == 0) {
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int m = 0; m < M; ++m) partial[warp][t][m] = acc[t][m];
    }
    __syncthreads();
    if (warp % slices == 0) {
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int m = 0; m < M; ++m) {
                float v = partial[warp][t][m];
                for (int s = 1; s < slices; ++s) v += partial[warp + s][t][m];
                acc[t][m] = v;
            }
    }
}

// The launch's shape beyond Params: K slices a row, the ring's depth, the units (rows, or row
// pairs for kRope) of all outputs together.
struct RowsGrid {
    int slices;
    int stages;
    int64_t units;
};

// A stage of a warp's walk: part `part` (of per_row) of unit `unit`. Counters, not a stage index
// divided out: a 64-bit division by a launch value costs more than the multiply of a stage.
struct Cursor {
    int64_t unit;
    int part;
};

__device__ __forceinline__ void advance(Cursor& at, const WarpTask& task, int per_row) {
    if (++at.part == per_row) {
        at.part = 0;
        at.unit += task.stride;
    }
}

// Lane 0's side of the ring: the copies of stage `at` into ring slot `slot_smem`, counted on that
// slot's barrier.
template <Mode kMode>
__device__ __forceinline__ void issue_stage(const Params& p, const WarpTask& task, Cursor at,
                                            uint32_t slot_smem, uint64_t* bar, uint64_t policy) {
    constexpr int kMats = kMatsOf<kMode>;
    constexpr int kMatChunks = kStageChunks / kMats;
    const UnitRows<kMode> u = unit_rows<kMode>(p, at.unit);
    const int c = task.c_begin + at.part * kMatChunks;
    const uint32_t bytes = uint32_t(min(kMatChunks, task.c_end - c)) * 16u;
    hopper::mbarrier_arrive_expect_tx(bar, kMats * bytes);
#pragma unroll
    for (int t = 0; t < kMats; ++t)
        hopper::bulk_load(slot_smem + t * kMatChunks * 16, u.w[t] + int64_t(c) * kElems, bytes,
                          bar, policy);
}

// The finished sums of one unit (lane m holds input row m) through the mode's epilogue.
template <int M, Mode kMode>
__device__ __forceinline__ void finish_unit(const Params& p, const UnitRows<kMode>& u,
                                            const float (&acc)[kMatsOf<kMode>][M], int lane) {
    constexpr int kMats = kMatsOf<kMode>;
    float v[kMats];
#pragma unroll
    for (int t = 0; t < kMats; ++t) {
        v[t] = acc[t][0];
#pragma unroll
        for (int m = 1; m < M; ++m) v[t] = lane == m ? acc[t][m] : v[t];
    }
    if (kMode == Mode::kGated)
        store_gated(p, lane, u.unit, v[0], v[kMats - 1]);
    else if (kMode == Mode::kPlain)
        store_plain(p, lane, u.seg, u.unit, v[0]);
    else
        store_rope(p, lane, u.seg, u.r[0], v[0], v[kMats - 1]);
}

template <int M, Mode kMode>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(Params p, RowsGrid g) {
    constexpr int kMats = kMatsOf<kMode>;
    constexpr int kBatch = kStageChunks / kMats / kWarpSize;  // chunks a lane a stage, per matrix
    extern __shared__ __align__(16) unsigned char smem[];
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    uint64_t* bars = reinterpret_cast<uint64_t*>(smem) + warp * kMaxStages;
    const uint4* ring = reinterpret_cast<const uint4*>(smem + kBarrierBytes) +
                        size_t(warp) * g.stages * kStageChunks;
    const uint32_t ring_smem = hopper::smem_u32(ring);
    uint16_t* xs = reinterpret_cast<uint16_t*>(smem + kBarrierBytes +
                                               size_t(kWarps) * g.stages * kStageBytes);  // [M][K]

    // The warp's walk: its units, each cut into per_row stages.
    const WarpTask task = warp_task(g.slices, p.K);
    const int per_row = (task.c_end - task.c_begin + kStageChunks / kMats - 1) /
                        (kStageChunks / kMats);
    const int64_t units = task.first < g.units ? (g.units - 1 - task.first) / task.stride + 1 : 0;
    const int64_t total = units * per_row;
    const uint64_t policy = weight_policy(p.evict_first);
    Cursor fill{task.first, 0};  // the next stage to copy (lane 0's)
    int64_t issued = 0;
    if (lane == 0) {
        for (int s = 0; s < g.stages; ++s) hopper::mbarrier_init(&bars[s], 1);
        hopper::mbarrier_init_fence();
        // The weights depend on nothing: the ring fills before the predecessor ends.
        for (; issued < g.stages && issued < total; ++issued, advance(fill, task, per_row))
            issue_stage<kMode>(p, task, fill, ring_smem + uint32_t(issued) * kStageBytes,
                               &bars[issued], policy);
    }
    __syncwarp();
    wait_for_predecessor();
    if (p.early_successor) allow_successor();
    stage_input<M>(p, xs);

    float acc[kMats][M] = {};
    Cursor use{task.first, 0};  // the stage to multiply
    int slot = 0;
    uint32_t phase = 0;
    for (int64_t j = 0; j < total; ++j) {
        hopper::mbarrier_wait(&bars[slot], phase);
        uint4 wv[kMats][kBatch];
        const uint4* stage = ring + slot * kStageChunks;
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int u = 0; u < kBatch; ++u)
                wv[t][u] = stage[t * (kStageChunks / kMats) + u * kWarpSize + lane];
        const int c = task.c_begin + use.part * (kStageChunks / kMats);
        multiply_batch<M>(wv, xs, p.K, c + lane, task.c_end, acc);
        __syncwarp();  // every lane has read the slot: it may be refilled
        if (lane == 0 && issued < total) {
            issue_stage<kMode>(p, task, fill, ring_smem + uint32_t(slot) * kStageBytes,
                               &bars[slot], policy);
            ++issued;
            advance(fill, task, per_row);
        }
        if (++slot == g.stages) {
            slot = 0;
            phase ^= 1u;
        }
        if (use.part == per_row - 1 && g.slices == 1) {
#pragma unroll
            for (int t = 0; t < kMats; ++t)
#pragma unroll
                for (int m = 0; m < M; ++m) acc[t][m] = warp_sum(acc[t][m]);
            if (lane < M) finish_unit<M, kMode>(p, unit_rows<kMode>(p, use.unit), acc, lane);
#pragma unroll
            for (int t = 0; t < kMats; ++t)
#pragma unroll
                for (int m = 0; m < M; ++m) acc[t][m] = 0.0f;
        }
        advance(use, task, per_row);
    }
    if (!p.early_successor) allow_successor();
    if (g.slices == 1) return;
    // Sliced rows: one unit a warp at most; its slices' sums meet in slice 0.
#pragma unroll
    for (int t = 0; t < kMats; ++t)
#pragma unroll
        for (int m = 0; m < M; ++m) acc[t][m] = warp_sum(acc[t][m]);
    sum_slices<M, kMats>(acc, g.slices);
    if (units == 0 || task.slice != 0 || lane >= M) return;
    finish_unit<M, kMode>(p, unit_rows<kMode>(p, task.first), acc, lane);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Slices of K per row (1, 2, 4 or 8): the most that keep the grid within `warps` (one wave: a
// partial second wave starts only as the first drains, a second round of load latency), while
// every slice keeps at least two chunks per lane.
int slices_for(int64_t rows, int64_t K, int64_t warps) {
    int slices = 1;
    while (slices < kWarps && rows * slices * 2 <= warps &&
           K / kElems / (2 * slices) >= 2 * kWarpSize)
        slices *= 2;
    return slices;
}

// The ring's depth for M staged input rows of K, and the blocks an SM that leaves: two blocks
// when each still keeps kMinStagesForTwoBlocks stages beside its input, else one block with up
// to kMaxStages. Fewer than two stages: the shape does not fit.
struct RingShape {
    int stages;
    int blocks_per_sm;
    size_t smem;  // dynamic shared memory a block
};

RingShape ring_shape(int64_t M, int64_t K) {
    const int64_t input = M * K * int64_t(sizeof(uint16_t));
    const int64_t stage = int64_t(kWarps) * kStageBytes;
    const int64_t fixed = kSmMargin + kBarrierBytes + input;
    const int64_t two = (kSmPerSm / 2 - fixed) / stage;
    const int64_t one = (kSmPerBlockMax - fixed) / stage;
    RingShape r{};
    r.blocks_per_sm = two >= kMinStagesForTwoBlocks ? 2 : 1;
    const int64_t fit = r.blocks_per_sm == 2 ? two : one;
    r.stages = int(std::max<int64_t>(0, std::min<int64_t>(kMaxStages, fit)));
    r.smem = size_t(kBarrierBytes + stage * r.stages + input);
    return r;
}

// Blocks of `kernel` with `smem` bytes the device runs at once, once its dynamic shared-memory
// limit is lifted to the device's (asked once per kernel, size and device).
int resident_blocks(const void* kernel, size_t smem) {
    return remembered_launch_fit(kernel, int64_t(smem), [&](int device) {
        cudaFuncAttributes attributes{};
        int optin = 0;
        TDM_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
        TDM_CUDA_CHECK(
            cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
        TDM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            optin - int(attributes.sharedSizeBytes)));
        const int blocks = resident_blocks_on(device, kernel, kThreads, smem);
        TDM_REQUIRE(blocks > 0, TDM_ERR_DEVICE,
                    "gemv_kernel: the device cannot run a block with " +
                        std::to_string(smem / 1024) + " KB of shared memory");
        return blocks;
    });
}

// Checks one output and adds it to p.
void add_output(Params& p, const Projection& o, int64_t K, const char* kernel) {
    require_bf16(o.weight.dtype, kernel, "the weight matrix");
    if (!o.bias.empty()) require_bf16(o.bias.dtype, kernel, "the bias");
    TDM_REQUIRE(o.weight.cols == K && (o.bias.empty() || o.bias.size == o.weight.rows) &&
                    o.ldy >= o.weight.rows && o.weight.rows > 0 && o.y != nullptr,
                TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": a " + std::to_string(o.weight.rows) + " x " +
                    std::to_string(o.weight.cols) + " weight does not fit input rows of " +
                    std::to_string(K) + ", its bias or its output stride " +
                    std::to_string(o.ldy));
    TDM_REQUIRE(aligned16(o.weight.data), TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": weights not 16-byte aligned (see gemv_supports)");
    const int i = p.count++;
    p.w[i] = static_cast<const uint16_t*>(o.weight.data);
    p.b[i] = static_cast<const uint16_t*>(o.bias.data);
    p.y[i] = o.y;
    p.ldy[i] = o.ldy;
    p.rows[i] = o.weight.rows;
}

Params input_params(const LayerInput& in, int64_t K, const char* kernel) {
    TDM_REQUIRE(gemv_supports(in.x, in.M, in.ldx, K), TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": M " + std::to_string(in.M) + ", K " + std::to_string(K) +
                    ", row stride " + std::to_string(in.ldx) +
                    " or x alignment unsupported (see gemv_supports)");
    Params p{};
    p.x = in.x;
    p.ldx = in.ldx;
    p.K = int(K);
    if (!in.norm.empty()) {
        require_bf16(in.norm.dtype, kernel, "the norm weight");
        TDM_REQUIRE(in.norm.size == K && aligned16(in.norm.data), TDM_ERR_INVALID_ARGUMENT,
                    std::string(kernel) + ": the norm weight has " +
                        std::to_string(in.norm.size) + " elements for rows of " +
                        std::to_string(K));
        p.norm = static_cast<const uint16_t*>(in.norm.data);
        p.eps = in.eps;
    }
    return p;
}

template <Mode kMode>
void launch_rows(const Params& p, int64_t M, int64_t units, cudaStream_t stream,
                 const char* name) {
    const RingShape shape = ring_shape(M, p.K);
    auto go = [&](auto kernel) {
        const int64_t resident = resident_blocks(reinterpret_cast<const void*>(kernel), shape.smem);
        RowsGrid g{};
        g.slices = slices_for(units, p.K, resident * kWarps);
        g.stages = shape.stages;
        g.units = units;
        // Sliced rows: a unit a warp. Otherwise one wave of warps walks every unit.
        const int64_t per_block = kWarps / g.slices;
        const int64_t needed = (units + per_block - 1) / per_block;
        const int64_t blocks = g.slices > 1 ? needed : std::min(needed, resident);
        Params q = p;
        q.early_successor = early_successor(blocks <= resident);
        q.evict_first = weights_evict_first();
        launch_overlapped(name, kernel, dim3(unsigned(blocks)), dim3(kThreads), shape.smem, stream,
                          q, g);
    };
    switch (M) {
        case 1: go(gemv_kernel<1, kMode>); break;
        case 2: go(gemv_kernel<2, kMode>); break;
        case 3: go(gemv_kernel<3, kMode>); break;
        default: go(gemv_kernel<4, kMode>); break;
    }
}

bool rows_fit(int64_t M, int64_t K) {
    return M >= 1 && M <= kGemvRowsKernelMaxRows && K > 0 && K % kElems == 0 &&
           K <= (int64_t(1) << 24) && ring_shape(M, K).stages >= 2;
}

// Runs `units` rows (a warp each; kRope: row pairs) on the kernel asked for or, for kAuto, on
// gemv_kernel_for's choice; the tiles kernel takes them 8 rows (4 pairs) a tile.
template <Mode kMode>
void launch(const Params& p, int64_t M, int64_t units, GemvKernel kernel, cudaStream_t stream,
            const char* what) {
    if (kernel == GemvKernel::kAuto) kernel = gemv_kernel_for(M, p.K);
    if (kernel == GemvKernel::kRows) {
        TDM_REQUIRE(rows_fit(M, p.K), TDM_ERR_INVALID_ARGUMENT,
                    std::string(what) + ": " + std::to_string(M) + " rows of " +
                        std::to_string(p.K) + " do not fit the rows kernel (M <= " +
                        std::to_string(kGemvRowsKernelMaxRows) +
                        " and the staged input beside a ring of two stages)");
        launch_rows<kMode>(p, M, units, stream, "launch of gemv_kernel");
    } else {
        const int64_t per_tile = kMode == Mode::kRope ? 4 : 8;
        launch_tiles<kMode>(p, M, (units + per_tile - 1) / per_tile, stream,
                            "launch of gemv_tiles_kernel");
    }
}

}  // namespace

bool gemv_supports(const float* x, int64_t M, int64_t ldx, int64_t K) {
    // The tiles kernel takes every shape the rows kernel takes, and more.
    return gemv_tiles_fits(M, K) && ldx >= K && ldx % 4 == 0 && aligned16(x);
}

// Measured on an H100 (tandem_cuda_gemv_bench, the 1B and 8B projections, same run): the rows
// kernel is as fast as the tiles kernel or faster on every projection up to M = 4 (8B at M = 3:
// q/k/v 24.1 against 26.5 us, gate/up 86.1 against 90.1, the vocabulary 368 against 374), and
// slower from M = 5 (8B down 55.4 against 48.9 us), where its multiply (M products per weight)
// outgrows the streaming; so kAuto takes the rows kernel wherever it fits.
bool gemv_rows_kernel_fits(int64_t M, int64_t K) { return rows_fit(M, K); }

GemvKernel gemv_kernel_for(int64_t M, int64_t K) {
    return rows_fit(M, K) ? GemvKernel::kRows : GemvKernel::kTiles;
}

void gemv(const LayerInput& in, const Projection* outputs, int count, bool accumulate,
          cudaStream_t stream, GemvKernel kernel) {
    TDM_REQUIRE(count >= 1 && count <= kGemvMaxOutputs, TDM_ERR_INVALID_ARGUMENT,
                "gemv: " + std::to_string(count) + " outputs (1.." +
                    std::to_string(kGemvMaxOutputs) + ")");
    const int64_t K = outputs[0].weight.cols;
    Params p = input_params(in, K, "gemv");
    p.accumulate = accumulate;
    int64_t rows = 0;
    for (int i = 0; i < count; ++i) {
        add_output(p, outputs[i], K, "gemv");
        rows += outputs[i].weight.rows;
    }
    launch<Mode::kPlain>(p, in.M, rows, kernel, stream, "gemv");
}

void gemv_gated(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                const MatrixView& w_up, const VectorView& b_up, float* out, int64_t ldo,
                cudaStream_t stream, GemvKernel kernel) {
    const int64_t K = w_gate.cols;
    Params p = input_params(in, K, "gemv_gated");
    add_output(p, Projection{w_gate, b_gate, out, ldo}, K, "gemv_gated");
    add_output(p, Projection{w_up, b_up, out, ldo}, K, "gemv_gated");
    TDM_REQUIRE(w_up.rows == w_gate.rows, TDM_ERR_INVALID_ARGUMENT,
                "gemv_gated: gate has " + std::to_string(w_gate.rows) + " rows, up " +
                    std::to_string(w_up.rows));
    launch<Mode::kGated>(p, in.M, w_gate.rows, kernel, stream, "gemv_gated");
}

void gemv_qkv_rope(const LayerInput& in, const Projection (&qkv)[3], const QkvRope& rope,
                   cudaStream_t stream, GemvKernel kernel) {
    const int64_t K = qkv[0].weight.cols, D = rope.head_dim;
    Params p = input_params(in, K, "gemv_qkv_rope");
    for (const Projection& o : qkv) add_output(p, o, K, "gemv_qkv_rope");
    TDM_REQUIRE(D > 0 && D % 2 == 0 && rope.inv_freq && rope.k_cache && rope.v_cache &&
                    qkv[0].weight.rows % D == 0 && qkv[1].weight.rows % D == 0 &&
                    qkv[2].weight.rows == qkv[1].weight.rows,
                TDM_ERR_INVALID_ARGUMENT,
                "gemv_qkv_rope: head_dim " + std::to_string(D) + " must be even and divide the " +
                    "q and k rows (" + std::to_string(qkv[0].weight.rows) + ", " +
                    std::to_string(qkv[1].weight.rows) + "), v like k, and the rope table and " +
                    "caches given");
    TDM_REQUIRE(rope.pos0 >= 0 && rope.pos0 + in.M <= rope.capacity, TDM_ERR_INVALID_ARGUMENT,
                "gemv_qkv_rope: positions " + std::to_string(rope.pos0) + ".." +
                    std::to_string(rope.pos0 + in.M) + " do not fit the cache capacity " +
                    std::to_string(rope.capacity));
    p.rope = rope;
    const int64_t pairs = (qkv[0].weight.rows + 2 * qkv[1].weight.rows) / 2;
    launch<Mode::kRope>(p, in.M, pairs, kernel, stream, "gemv_qkv_rope");
}

}  // namespace tdm::cuda
