#include "decode/cuda_row_draw.h"

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

namespace cg = cooperative_groups;
using u64 = unsigned long long;

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
constexpr int kPasses = 32 / kDigitBits;
constexpr int kBinsPerLane = kBins / 32;
constexpr int kBlocksPerLane = 16;
constexpr int kMaxBlocks = 32 * kBlocksPerLane;  // what one warp's crossing search covers
constexpr unsigned kFull = 0xffffffffu;

// Fixed-point scales. Rank order: w / Z <= 1 per token and about 1 in all, so 2^60 leaves room
// for the sum's rounding; id order: probabilities (and their differences) sum to at most ~1.
constexpr double kRankScale = 1152921504606846976.0;  // 2^60
constexpr double kIdScale = 4611686018427387904.0;    // 2^62

struct DrawState {
    u64 hist[kPasses][kBins];  // zeroed before every launch
    int token;
};

struct Args {
    int order;  // RowDraw::Order
    int64_t vocab, chunk;
    int blocks;
    double temperature, u;
    const float* p;
    double p_max, p_z;
    const float* q;  // kId only; may be null
    double q_max, q_z;
    DrawState* state;
    u64* sums;  // [2][blocks]: per-block sums of the walked weights and (kId) of P alone
};

__device__ __forceinline__ bool masked(float z) { return z == -__int_as_float(0x7f800000); }

// The rank order's key without the id: smaller = larger logit; -0.0 and +0.0 share one key.
__device__ __forceinline__ uint32_t descending_key(float z) {
    z += 0.0f;
    const uint32_t bits = __float_as_uint(z);
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return ~ascending;
}

// Sampler step 4's weight as a fixed-point fraction of Z.
__device__ __forceinline__ u64 rank_weight(const Args& a, float z) {
    if (masked(z)) return 0;
    return __double2ull_rn(exp((double(z) - a.p_max) / a.temperature) / a.p_z * kRankScale);
}

// Sampler::probabilities' value: float(w / Z), 0 for a masked token.
__device__ __forceinline__ float probability(float z, double m, double Z, double T) {
    return masked(z) ? 0.0f : float(exp((double(z) - m) / T) / Z);
}

// The weights token i contributes to the walk: (the walked weight, P alone for kId's fallback).
__device__ __forceinline__ void weights_at(const Args& a, int64_t i, uint32_t key, u64& walk,
                                           u64& own) {
    const float z = a.p[i];
    if (a.order == int(RowDraw::Order::kRank)) {
        walk = descending_key(z) == key ? rank_weight(a, z) : 0;
        own = 0;
        return;
    }
    const float P = probability(z, a.p_max, a.p_z, a.temperature);
    const float Q = a.q != nullptr ? probability(a.q[i], a.q_max, a.q_z, a.temperature) : 0.0f;
    const double d = double(P) - double(Q);
    walk = d > 0.0 ? __double2ull_rn(d * kIdScale) : 0;
    own = __double2ull_rn(double(P) * kIdScale);
}

__device__ __forceinline__ u64 warp_total(u64 v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(kFull, v, o);
    return v;
}

// Run by one whole warp over values get(0..n), n <= 32 * kPer: the first j whose inclusive
// prefix sum exceeds t, and the sum before it (j = -1 when the total does not exceed t).
template <int kPer, class Get>
__device__ void find_crossing(Get get, int n, u64 t, int* j_out, u64* before_out) {
    const int lane = threadIdx.x % 32;
    const int base = lane * kPer;
    u64 v[kPer], own = 0;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
        v[k] = base + k < n ? get(base + k) : 0;
        own += v[k];
    }
    u64 inclusive = own;
    for (int o = 1; o < 32; o *= 2) {
        const u64 y = __shfl_up_sync(kFull, inclusive, o);
        if (lane >= o) inclusive += y;
    }
    const unsigned crossed = __ballot_sync(kFull, inclusive > t);
    if (crossed == 0) {
        *j_out = -1;
        *before_out = 0;
        return;
    }
    const int at = __ffs(crossed) - 1;
    int j = -1;
    u64 before = 0;
    if (lane == at) {
        u64 c = inclusive - own;
#pragma unroll
        for (int k = 0; k < kPer; ++k) {
            if (j < 0 && c + v[k] > t) {
                j = base + k;
                before = c;
            }
            c += v[k];
        }
    }
    *j_out = __shfl_sync(kFull, j, at);
    *before_out = __shfl_sync(kFull, before, at);
}

// Block-wide inclusive prefix sum; *total gets the block's sum. All threads call it.
__device__ u64 block_inclusive(u64 v, u64* scratch, u64* total) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    u64 inclusive = v;
    for (int o = 1; o < 32; o *= 2) {
        const u64 y = __shfl_up_sync(kFull, inclusive, o);
        if (lane >= o) inclusive += y;
    }
    __syncthreads();  // scratch may still be read by the previous call
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    u64 before = 0, sum = 0;
    for (int w = 0; w < kWarps; ++w) {
        if (w < warp) before += scratch[w];
        sum += scratch[w];
    }
    *total = sum;
    return before + inclusive;
}

__global__ void __launch_bounds__(kThreads) draw_kernel(Args a) {
    cg::grid_group grid = cg::this_grid();
    __shared__ u64 hist[kBins];
    __shared__ u64 scratch[kWarps];
    __shared__ u64 s_target;
    __shared__ int s_index, s_series;
    const int64_t begin = int64_t(blockIdx.x) * a.chunk;
    const int64_t end = min(a.vocab, begin + a.chunk);
    const bool rank = a.order == int(RowDraw::Order::kRank);
    const bool lead_warp = threadIdx.x < 32;
    if (blockIdx.x == 0 && threadIdx.x == 0) a.state->token = -1;

    // kRank: the key (logit) at which the rank-order walk crosses, and the target left inside it.
    uint32_t key = 0;
    u64 target = rank ? __double2ull_rd(a.u * kRankScale) : 0;
    for (int pass = 0; rank && pass < kPasses; ++pass) {
        const int shift = 32 - kDigitBits * (pass + 1);
        for (int b = threadIdx.x; b < kBins; b += kThreads) hist[b] = 0;
        __syncthreads();
        for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
            const float z = a.p[i];
            const uint32_t k = descending_key(z);
            if (pass > 0 && (k >> (shift + kDigitBits)) != key) continue;
            const u64 w = rank_weight(a, z);
            if (w != 0) atomicAdd(&hist[(k >> shift) & (kBins - 1)], w);
        }
        __syncthreads();
        for (int b = threadIdx.x; b < kBins; b += kThreads)
            if (hist[b] != 0) atomicAdd(&a.state->hist[pass][b], hist[b]);
        grid.sync();
        if (lead_warp) {
            const u64* g = a.state->hist[pass];
            if (pass == 0) {
                // u * 2^60 at or past the whole (rounded) mass: the last token that has weight,
                // as the host walk returns the last of N when rounding leaves none.
                u64 mine = 0;
                for (int b = threadIdx.x; b < kBins; b += 32) mine += __ldcg(g + b);
                const u64 total = warp_total(mine);
                if (target >= total) target = total - 1;
            }
            int j;
            u64 before;
            find_crossing<kBinsPerLane>([g](int b) { return __ldcg(g + b); }, kBins, target, &j,
                                        &before);
            if (threadIdx.x == 0) {
                s_index = j;
                s_target = target - before;
            }
        }
        __syncthreads();
        key = (key << kDigitBits) | uint32_t(s_index);
        target = s_target;
        __syncthreads();  // s_index and s_target are written again next pass
    }

    // The id-order walk: per-block sums of the walked weights (and of P alone, kId's fallback).
    u64 walk_sum = 0, own_sum = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
        u64 w, o;
        weights_at(a, i, key, w, o);
        walk_sum += w;
        own_sum += o;
    }
    u64 total_walk, total_own;
    block_inclusive(walk_sum, scratch, &total_walk);
    block_inclusive(own_sum, scratch, &total_own);
    if (threadIdx.x == 0) {
        a.sums[blockIdx.x] = total_walk;
        a.sums[a.blocks + blockIdx.x] = total_own;
    }
    grid.sync();
    if (lead_warp) {
        int series = 0;
        if (!rank) {
            // t = floor(u * total) of the walked series; with no residual mass, P's.
            u64 mine = 0;
            for (int b = threadIdx.x; b < a.blocks; b += 32) mine += __ldcg(a.sums + b);
            u64 total = warp_total(mine);
            if (total == 0) {
                series = 1;
                mine = 0;
                for (int b = threadIdx.x; b < a.blocks; b += 32)
                    mine += __ldcg(a.sums + a.blocks + b);
                total = warp_total(mine);
            }
            target = total == 0 ? 0 : min(__double2ull_rd(a.u * double(total)), total - 1);
        }
        const u64* s = a.sums + series * a.blocks;
        int j;
        u64 before;
        find_crossing<kBlocksPerLane>([s](int b) { return __ldcg(s + b); }, a.blocks, target, &j,
                                      &before);
        if (threadIdx.x == 0) {
            s_index = j;
            s_series = series;
            s_target = target - before;
        }
    }
    __syncthreads();
    if (int(blockIdx.x) != s_index) return;

    // This block's slice holds the crossing: scan it in id order, a tile of kThreads at a time.
    const u64 t = s_target;
    const bool own = s_series == 1;
    u64 running = 0;
    for (int64_t tile = begin; tile < end; tile += kThreads) {
        const int64_t i = tile + threadIdx.x;
        u64 w = 0;
        if (i < end) {
            u64 walk, o;
            weights_at(a, i, key, walk, o);
            w = own ? o : walk;
        }
        u64 tile_total;
        const u64 inclusive = running + block_inclusive(w, scratch, &tile_total);
        // Exactly one thread sees the cumulative weight step over t.
        if (w != 0 && inclusive > t && inclusive - w <= t) a.state->token = int(i);
        running += tile_total;
        if (running > t) break;  // block-uniform
    }
}

}  // namespace

RowDrawer::RowDrawer() {
    int device = 0, sms = 0, per_sm = 0, cooperative = 0;
    TDM_CUDA_CHECK(cudaGetDevice(&device));
    TDM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    TDM_CUDA_CHECK(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device));
    TDM_REQUIRE(cooperative != 0, TDM_ERR_BACKEND_UNAVAILABLE,
                "row draw: the GPU does not support cooperative launches");
    TDM_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, draw_kernel, kThreads, 0));
    max_blocks_ = std::min(kMaxBlocks, sms * per_sm);
    TDM_REQUIRE(max_blocks_ >= 1, TDM_ERR_INTERNAL, "row draw: the kernel cannot be resident");
    state_.reserve(sizeof(DrawState) + 2 * size_t(kMaxBlocks) * sizeof(u64));
    void* p = nullptr;
    TDM_CUDA_CHECK(cudaMallocHost(&p, sizeof(int32_t)));
    staging_ = static_cast<int32_t*>(p);
}

RowDrawer::~RowDrawer() {
    if (staging_ != nullptr) (void)cudaFreeHost(staging_);
}

int32_t RowDrawer::run(const RowDraw& d, cudaStream_t stream) {
    TDM_REQUIRE(d.p.logits != nullptr, TDM_ERR_INVALID_ARGUMENT, "row draw: no p row");
    TDM_REQUIRE(d.vocab >= 1 && d.vocab <= INT32_MAX, TDM_ERR_INVALID_ARGUMENT,
                "row draw: vocab must be in [1, 2^31), got " + std::to_string(d.vocab));
    TDM_REQUIRE(d.temperature > 0.0f && d.u >= 0.0 && d.u < 1.0, TDM_ERR_INVALID_ARGUMENT,
                "row draw: needs temperature > 0 and u in [0, 1)");
    TDM_REQUIRE(d.p.z_total > 0.0 && (d.q.logits == nullptr || d.q.z_total > 0.0),
                TDM_ERR_INVALID_ARGUMENT, "row draw: a row's z_total must be > 0");
    TDM_REQUIRE(d.order == RowDraw::Order::kId || d.q.logits == nullptr, TDM_ERR_INVALID_ARGUMENT,
                "row draw: a rank-order draw takes one row");

    Args a{};
    a.order = int(d.order);
    a.vocab = d.vocab;
    a.blocks = int(std::clamp<int64_t>((d.vocab + kThreads - 1) / kThreads, 1, max_blocks_));
    a.chunk = (d.vocab + a.blocks - 1) / a.blocks;
    a.temperature = double(d.temperature);
    a.u = d.u;
    a.p = d.p.logits;
    a.p_max = d.p.max_logit;
    a.p_z = d.p.z_total;
    a.q = d.q.logits;
    a.q_max = d.q.max_logit;
    a.q_z = d.q.z_total;
    a.state = state_.as<DrawState>();
    a.sums = reinterpret_cast<u64*>(a.state + 1);

    TDM_CUDA_CHECK(cudaMemsetAsync(a.state, 0, sizeof(DrawState::hist), stream));
    void* params[] = {&a};
    TDM_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&draw_kernel),
                                               dim3(unsigned(a.blocks)), dim3(kThreads), params,
                                               0, stream));
    TDM_CUDA_CHECK(cudaMemcpyAsync(staging_, &a.state->token, sizeof(int32_t),
                                   cudaMemcpyDeviceToHost, stream));
    TDM_CUDA_CHECK(cudaStreamSynchronize(stream));
    const int32_t token = *staging_;
    TDM_REQUIRE(token >= 0 && token < d.vocab, TDM_ERR_INTERNAL,
                "row draw: the rows carry no probability mass");
    return token;
}

}  // namespace tdm::cuda
