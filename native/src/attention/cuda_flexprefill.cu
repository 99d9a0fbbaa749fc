// FlexPrefill on the GPU (ALGORITHMS.md 3), the twin of attention/flexprefill.h. Every step covers
// all heads in one launch; nothing is read back to the host:
//   1. the last block's attention A_hat = softmax(q_hat K^T) (score engine of
//      cuda_estimate_tile.cuh, stride 1): pass 2's epilogue turns each tile into the vertical sums
//      (column means) and the slash sums (diagonal means), so A_hat is never stored;
//   2. block sums of both, the pooled keys (block means over real rows);
//   3. gamma-coverage counts of the vertical and slash vectors by a weighted radix select (the
//      smallest value threshold whose upper mass stays <= gamma: the count of entries of the
//      sorted vector whose cumulative sum is <= gamma), then budgets and the Jensen-Shannon
//      decision per head;
//   4. top-k columns and diagonals per head (cub::BlockRadixSort; the sink column and the main
//      diagonal forced to +inf);
//   5. for query-aware heads, the pooled block attention and its global cut at gamma * rows (the
//      same weighted select);
//   6. the union as a bitmask per row, then the plan (cuda_sparse_plan.cu).
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cmath>

#include "attention/cuda_estimate_tile.cuh"
#include "attention/cuda_sparse_estimation.h"
#include "tandem.h"

namespace tdm::cuda {
namespace {

using estimate::ensure;
using estimate::kScoreStride;

struct MaxOp {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The dot product of a D-vector in shared memory with a row in global memory, by one warp: lanes
// over d (coalesced row reads), then a shuffle reduction; every lane gets the result.
__device__ __forceinline__ float warp_dot(const float* __restrict__ x, const float* __restrict__ row, int D) {
    const int lane = threadIdx.x % 32;
    float s = 0.0f;
    for (int d = lane; d < D; d += 32) s += x[d] * row[d];
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

using estimate::kTileCols;
using estimate::kTileRows;

// vert[h, k] = mean over the valid rows of A_hat[i, k]; slash[h, d] += the same mean along the
// diagonal at distance d = position_i - k (d = 0 is the main diagonal; the reference indexes it
// n-1-d, the CPU twin by d). Threads 0..63 take one column each,
// threads 64..254 one of the 191 diagonals crossing the 128 x 64 tile.
struct VerticalSlashEpilogue {
    float* vert;
    float* slash;
    int64_t n;       // keys (and length of both vectors)
    int32_t bs;
    float inv_rows;  // 1 / valid rows of the last block

    __device__ void tile(const float* sc, int64_t /*R0*/, int64_t C0, int head) const {
        const int t = threadIdx.x;
        if (t < kTileCols) {
            float s = 0.0f;
            for (int r = 0; r < kTileRows; ++r) s += sc[r * kScoreStride + t];
            if (C0 + t < n) vert[int64_t(head) * n + C0 + t] = s * inv_rows;
        } else if (t < kTileCols + kTileRows + kTileCols - 1) {
            const int delta = t - kTileCols - (kTileRows - 1);  // c - r, in [-127, 63]
            const int r_lo = max(0, -delta), r_hi = min(kTileRows - 1, kTileCols - 1 - delta);
            float s = 0.0f;
            for (int r = r_lo; r <= r_hi; ++r) s += sc[r * kScoreStride + r + delta];
            // Row r is position n - bs + r and column c key C0 + c: distance n - bs - C0 - delta.
            const int64_t dist = n - bs - C0 - delta;
            if (s != 0.0f && dist >= 0 && dist < n) atomicAdd(slash + int64_t(head) * n + dist, s * inv_rows);
        }
    }
};

// out[seg, c] = sum of v[seg, c*bs .. min((c+1)*bs, n)); one warp per (segment, block).
__global__ void block_pool_kernel(const float* __restrict__ v, int64_t n, int bs, int nb,
                                  int64_t segments, float* __restrict__ out) {
    const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (w >= segments * nb) return;
    const int64_t seg = w / nb, c = w % nb;
    float s = 0.0f;
    for (int64_t j = c * bs + lane; j < min(n, (c + 1) * int64_t(bs)); j += 32) s += v[seg * n + j];
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) out[w] = s;
}

template <class KT>
__device__ __forceinline__ float to_f32(KT x);
template <>
__device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

// kbar[kvh, c, :] = mean of the keys of block c (real rows only); one block per (kvh, c).
template <class KT>
__global__ void pool_keys_kernel(const KT* __restrict__ k, int64_t capacity, int64_t n, int bs, int D,
                                 float* __restrict__ kbar) {
    const int nb = gridDim.x, c = blockIdx.x, kvh = blockIdx.y;
    const int64_t begin = int64_t(c) * bs, end = min(n, begin + bs);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float s = 0.0f;
        for (int64_t j = begin; j < end; ++j) s += to_f32(k[(int64_t(kvh) * capacity + j) * D + d]);
        kbar[(int64_t(kvh) * nb + c) * D + d] = s / float(end - begin);
    }
}

// qbar[h, r, :] = mean of the call's queries in query block first_q_block + r; one block per (r, h).
__global__ void pool_queries_kernel(const float* __restrict__ q, int64_t n_new, int64_t pos0, int heads,
                                    int D, int bs, int first_q_block, const int32_t* __restrict__ info,
                                    float* __restrict__ qbar) {
    const int r = blockIdx.x, h = blockIdx.y, q_blocks = gridDim.x;
    if (info[h] == 0) return;  // only query-aware heads read the pooled queries
    const int64_t lo = max(pos0, int64_t(first_q_block + r) * bs);
    const int64_t hi = min(pos0 + n_new, int64_t(first_q_block + r + 1) * bs);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float s = 0.0f;
        for (int64_t p = lo; p < hi; ++p) s += q[((p - pos0) * heads + h) * D + d];
        qbar[(int64_t(h) * q_blocks + r) * D + d] = s / float(hi - lo);
    }
}

// ---- weighted radix select ---------------------------------------------------------------
// For a segment of non-negative floats and a budget, the smallest value threshold t such that the
// entries >= t sum to at most the budget, and how many entries that is: exactly the prefix of the
// descending sort whose inclusive cumulative sum stays <= budget (ties aside). Four passes of
// 8-bit digits over the float bits (monotone for non-negative floats): a histogram of mass and
// count per digit among the entries matching the prefix found so far, then a pick.
struct SelectState {
    uint32_t prefix;       // digits found so far
    uint32_t count_above;  // entries above the prefix's bucket (all selected)
    float above;           // their mass
    float budget;
    int32_t done;
    uint32_t threshold;    // result: select bits(v) >= threshold
    uint32_t count;        // result: entries selected
};

__global__ void select_init_kernel(SelectState* st, int segments, float budget, const int32_t* active) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= segments) return;
    const bool on = active == nullptr || active[s] != 0;
    st[s] = SelectState{0u, 0u, 0.0f, budget, on ? 0 : 1, on ? 0u : 0xffffffffu, 0u};
}

__global__ void select_hist_kernel(const float* __restrict__ v, int64_t len, int level,
                                   const SelectState* __restrict__ st, float* __restrict__ hist_mass,
                                   uint32_t* __restrict__ hist_count) {
    __shared__ float mass[256];
    __shared__ uint32_t count[256];
    const int seg = blockIdx.y;
    const SelectState s = st[seg];
    if (s.done) return;
    mass[threadIdx.x] = 0.0f;
    count[threadIdx.x] = 0u;
    __syncthreads();
    const int shift = 24 - 8 * level;
    const uint32_t high = level == 0 ? 0u : (0xffffffffu << (shift + 8));
    const float* x = v + int64_t(seg) * len;
    // The values cluster in few digits (at level 0 the digit is sign and exponent, nearly the same
    // for all), so plain shared atomics serialise a warp on one bin: a warp's lanes that share a
    // digit with more than 4 others are summed by shuffles first and added once (the loop runs
    // whole warps so that the shuffles see every lane).
    const int lane = threadIdx.x % 32;
    for (int64_t base = int64_t(blockIdx.x) * blockDim.x + (threadIdx.x & ~31); base < len;
         base += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = base + lane;
        float f = 0.0f;
        int b = 256;  // no bin
        if (i < len) {
            f = x[i];
            const uint32_t u = __float_as_uint(f);
            if ((u & high) == (s.prefix & high)) b = int((u >> shift) & 255u);
        }
        const bool crowded = __popc(__match_any_sync(0xffffffffu, b)) > 4;
        if (!crowded && b != 256) {
            atomicAdd(&mass[b], f);
            atomicAdd(&count[b], 1u);
        }
        for (uint32_t todo = __ballot_sync(0xffffffffu, crowded && b != 256); todo != 0u;) {
            const int leader = __ffs(todo) - 1;
            const int key = __shfl_sync(0xffffffffu, b, leader);
            const uint32_t peers = __ballot_sync(0xffffffffu, b == key);
            float t = b == key ? f : 0.0f;
            for (int o = 16; o > 0; o /= 2) t += __shfl_xor_sync(0xffffffffu, t, o);
            if (lane == leader) {
                atomicAdd(&mass[key], t);
                atomicAdd(&count[key], uint32_t(__popc(peers)));
            }
            todo &= ~peers;
        }
    }
    __syncthreads();
    const int b = threadIdx.x;
    if (count[b] != 0u) {
        atomicAdd(&hist_mass[seg * 256 + b], mass[b]);
        atomicAdd(&hist_count[seg * 256 + b], count[b]);
    }
}

__global__ void select_pick_kernel(int level, SelectState* st, float* hist_mass, uint32_t* hist_count) {
    using Scan = cub::BlockScan<float, 256>;
    using ScanU = cub::BlockScan<uint32_t, 256>;
    __shared__ typename Scan::TempStorage scan;
    __shared__ typename ScanU::TempStorage scan_u;
    __shared__ int fitting;
    const int seg = blockIdx.x;
    SelectState s = st[seg];
    if (s.done) return;
    const int b = 255 - int(threadIdx.x);  // thread t holds bin 255 - t: inclusive scans are suffix sums
    const float m = hist_mass[seg * 256 + b];
    const uint32_t c = hist_count[seg * 256 + b];
    hist_mass[seg * 256 + b] = 0.0f;
    hist_count[seg * 256 + b] = 0u;
    float suffix_m;
    uint32_t suffix_c;
    Scan(scan).InclusiveSum(m, suffix_m);
    ScanU(scan_u).InclusiveSum(c, suffix_c);
    if (threadIdx.x == 0) fitting = 0;
    __syncthreads();
    const bool fits = s.above + suffix_m <= s.budget;  // monotone: true for the bins from the top
    if (fits) atomicAdd(&fitting, 1);
    __syncthreads();
    const int first_fit = 256 - fitting;  // smallest bin whose upper mass fits (256: none)
    const int shift = 24 - 8 * level;
    // The thread holding bin first_fit knows the suffix sums from that bin up.
    if (b == first_fit || (first_fit == 256 && threadIdx.x == 0)) {
        const float up_m = first_fit == 256 ? 0.0f : suffix_m;
        const uint32_t up_c = first_fit == 256 ? 0u : suffix_c;
        if (first_fit == 0) {
            s.threshold = s.prefix;
            s.count = s.count_above + up_c;
            s.done = 1;
        } else if (level == 3) {
            s.threshold = s.prefix + uint32_t(first_fit);
            s.count = s.count_above + up_c;
            s.done = 1;
        } else {
            s.prefix |= uint32_t(first_fit - 1) << shift;
            s.above += up_m;
            s.count_above += up_c;
        }
        st[seg] = s;
    }
}

// Runs the four passes over `segments` segments of `len` values each.
void weighted_select(const float* values, int64_t len, int segments, float budget, const int32_t* active,
                     SelectState* st, DeviceBuffer& hist, cudaStream_t s) {
    ensure(hist, size_t(segments) * 256 * (sizeof(float) + sizeof(uint32_t)));
    float* hist_mass = hist.as<float>();
    uint32_t* hist_count = reinterpret_cast<uint32_t*>(hist_mass + int64_t(segments) * 256);
    TDM_CUDA_CHECK(cudaMemsetAsync(hist.data(), 0, size_t(segments) * 256 * 8, s));
    select_init_kernel<<<unsigned((segments + 127) / 128), 128, 0, s>>>(st, segments, budget, active);
    TDM_CUDA_CHECK_LAUNCH("select_init_kernel");
    const unsigned chunks = unsigned(std::min<int64_t>((len + 256 * 32 - 1) / (256 * 32), 1024));
    for (int level = 0; level < 4; ++level) {
        select_hist_kernel<<<dim3(chunks, unsigned(segments)), 256, 0, s>>>(values, len, level, st,
                                                                          hist_mass, hist_count);
        TDM_CUDA_CHECK_LAUNCH("select_hist_kernel");
        select_pick_kernel<<<unsigned(segments), 256, 0, s>>>(level, st, hist_mass, hist_count);
        TDM_CUDA_CHECK_LAUNCH("select_pick_kernel");
    }
}

// ---- per-head decision -------------------------------------------------------------------
struct DecideArgs {
    const float* q;  // the call's queries
    int64_t n_new, pos0, n;
    int heads, group, D, bs, nb;
    float scale, tau;
    const float* kbar;        // [kv_heads, nb, D]
    const float* vert_b;      // [heads, nb]
    const SelectState* cover; // [2 * heads]: vertical, slash
    int32_t min_b, max_b, budget_div;
    bool jsd_nan_compat;
    float* jsd;               // [heads]
    int32_t* info;            // [aware | nV | nS] x heads
};

// One block per head: the pooled distribution softmax(mean(q_hat) . Kbar^T), its Jensen-Shannon
// distance to the block sums of the vertical vector, the decision and the budgets.
__global__ void decide_kernel(DecideArgs a) {
    extern __shared__ float sh[];  // qmean[D], logits[nb]
    float* qmean = sh;
    float* logit = sh + a.D;
    using Reduce = cub::BlockReduce<float, 256>;
    __shared__ typename Reduce::TempStorage red;
    __shared__ float bcast;
    const int h = blockIdx.x, kvh = h / a.group;
    const int64_t lo = max(a.pos0, a.n - a.bs), hi = a.n;
    for (int d = threadIdx.x; d < a.D; d += blockDim.x) {
        float s = 0.0f;
        for (int64_t p = lo; p < hi; ++p) s += a.q[((p - a.pos0) * a.heads + h) * a.D + d];
        qmean[d] = s / float(hi - lo) * a.scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int c = threadIdx.x / 32; c < a.nb; c += blockDim.x / 32) {
        const float dot = warp_dot(qmean, a.kbar + (int64_t(kvh) * a.nb + c) * a.D, a.D);
        if (threadIdx.x % 32 == 0) logit[c] = dot;
        mx = fmaxf(mx, dot);
    }
    mx = Reduce(red).Reduce(mx, MaxOp());
    if (threadIdx.x == 0) bcast = mx;
    __syncthreads();
    mx = bcast;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < a.nb; c += blockDim.x) sum += expf(logit[c] - mx);
    __syncthreads();
    sum = Reduce(red).Sum(sum);
    if (threadIdx.x == 0) bcast = sum;
    __syncthreads();
    sum = bcast;
    float kl = 0.0f;  // 0.5 KL(p||m) + 0.5 KL(v||m), natural log
    for (int c = threadIdx.x; c < a.nb; c += blockDim.x) {
        const float p = expf(logit[c] - mx) / sum, v = a.vert_b[int64_t(h) * a.nb + c];
        const float m = 0.5f * (p + v);
        if (a.jsd_nan_compat) {
            kl += 0.5f * (p * logf(p / m) + v * logf(v / m));
        } else {
            if (p > 0.0f) kl += 0.5f * p * logf(p / m);
            if (v > 0.0f) kl += 0.5f * v * logf(v / m);
        }
    }
    __syncthreads();
    kl = Reduce(red).Sum(kl);
    if (threadIdx.x == 0) {
        const float jsd = kl == kl ? sqrtf(fmaxf(kl, 0.0f)) : kl;  // NaN (compat) stays NaN
        const bool aware = jsd < a.tau;
        // coverage count (+1, score_cover_topk) -> blocks: count / unit + 1, clamped, >= 1
        auto budget = [&](uint32_t covered) {
            const int32_t nblk = int32_t((covered + 1u) / uint32_t(a.budget_div)) + 1;
            return max(min(max(nblk, a.min_b), a.max_b), 1);
        };
        a.jsd[h] = jsd;
        a.info[h] = aware ? 1 : 0;
        a.info[a.heads + h] = aware ? a.min_b : budget(a.cover[h].count);
        a.info[2 * a.heads + h] = aware ? a.min_b : budget(a.cover[a.heads + h].count);
    }
}

// flags[h, 0, c] = 1 for the nV top columns, flags[h, 1, s] = 1 for the nS top diagonal offsets
// (s in blocks of distance). One block per head.
template <int kItems>
__global__ void __launch_bounds__(256) top_blocks_kernel(const float* __restrict__ vert_b,
                                                         const float* __restrict__ slash_b, int heads,
                                                         int nb, const int32_t* __restrict__ info,
                                                         uint8_t* __restrict__ flags) {
    using Sort = cub::BlockRadixSort<float, 256, kItems, int>;
    __shared__ typename Sort::TempStorage tmp;
    const int h = blockIdx.x;
    for (int which = 0; which < 2; ++which) {
        const float* v = (which == 0 ? vert_b : slash_b) + int64_t(h) * nb;
        const int forced = 0;  // the sink column; the main diagonal (distance block 0)
        const int take = info[(1 + which) * heads + h];
        float keys[kItems];
        int idx[kItems];
#pragma unroll
        for (int j = 0; j < kItems; ++j) {
            const int i = threadIdx.x * kItems + j;
            keys[j] = i < nb ? (i == forced ? INFINITY : v[i]) : -1.0f;
            idx[j] = i < nb ? i : -1;
        }
        __syncthreads();
        Sort(tmp).SortDescending(keys, idx);
        uint8_t* f = flags + (int64_t(h) * 2 + which) * nb;
#pragma unroll
        for (int j = 0; j < kItems; ++j) {
            const int rank = threadIdx.x * kItems + j;
            if (idx[j] >= 0) f[idx[j]] = rank < take ? 1 : 0;
        }
    }
}

// ablk[h, r, c] = softmax over c <= r of scale * qbar[h, r] . kbar[kvh, c] (0 for c > r), for the
// query-aware heads. One block per (kAwareRows query blocks, head): each key block's pooled row is
// read once (coalesced, by one warp) for all the block's query rows; the logits go to ablk, then
// one warp per row turns its logits into the softmax in place.
constexpr int kAwareRows = 8;
__global__ void __launch_bounds__(256)
    aware_scores_kernel(const float* __restrict__ qbar, const float* __restrict__ kbar, int heads, int group,
                        int D, int nb, int first_q_block, int q_blocks, float scale,
                        const int32_t* __restrict__ info, float* __restrict__ ablk) {
    extern __shared__ float qv[];  // [kAwareRows, D]
    const int h = blockIdx.y;
    if (info[h] == 0) return;
    const int rl0 = blockIdx.x * kAwareRows, rows = min(kAwareRows, q_blocks - rl0), kvh = h / group;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int i = threadIdx.x; i < kAwareRows * D; i += blockDim.x) {
        const int r = i / D;
        qv[i] = r < rows ? qbar[(int64_t(h) * q_blocks + rl0 + r) * D + i % D] * scale : 0.0f;
    }
    __syncthreads();
    float* out = ablk + (int64_t(h) * q_blocks + rl0) * nb;
    const int r_last = first_q_block + rl0 + rows - 1;  // the last row's diagonal
    for (int c = warp; c <= r_last; c += warps) {
        const float* kb = kbar + (int64_t(kvh) * nb + c) * D;
        float kv[8];  // D <= 256
#pragma unroll
        for (int j = 0; j < 8; ++j) kv[j] = lane + 32 * j < D ? kb[lane + 32 * j] : 0.0f;
#pragma unroll
        for (int r = 0; r < kAwareRows; ++r) {
            float dot = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; ++j)
                if (lane + 32 * j < D) dot += qv[r * D + lane + 32 * j] * kv[j];
            for (int o = 16; o > 0; o /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (lane == 0 && r < rows) out[int64_t(r) * nb + c] = dot;
        }
    }
    __syncthreads();  // the block's logits are visible to all its threads
    for (int r = warp; r < rows; r += warps) {
        const int diag = first_q_block + rl0 + r;
        float* o = out + int64_t(r) * nb;
        float mx = -INFINITY;
        for (int c = lane; c <= diag; c += 32) mx = fmaxf(mx, o[c]);
        for (int k = 16; k > 0; k /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, k));
        float sum = 0.0f;
        for (int c = lane; c <= diag; c += 32) sum += expf(o[c] - mx);
        for (int k = 16; k > 0; k /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, k);
        const float inv = 1.0f / sum;
        for (int c = lane; c < nb; c += 32) o[c] = c <= diag ? expf(o[c] - mx) * inv : 0.0f;
    }
}

// The union per (head, query block) row as a bitmask: top columns c <= r, top diagonal offsets
// s <= r (block r - s), and for query-aware heads the pooled blocks at or above the cut.
__global__ void union_mask_kernel(const uint8_t* __restrict__ flags, const float* __restrict__ ablk,
                                  const SelectState* __restrict__ cut, const int32_t* __restrict__ info,
                                  int heads, int nb, int first_q_block, int q_blocks, int words,
                                  uint32_t* __restrict__ mask) {
    const int64_t row = blockIdx.x;
    const int h = int(row / q_blocks), rl = int(row % q_blocks), r = first_q_block + rl;
    const uint8_t* vcol = flags + int64_t(h) * 2 * nb;
    const uint8_t* soff = vcol + nb;
    const bool aware = info[h] != 0;
    const float* a = ablk + (int64_t(h) * q_blocks + rl) * nb;
    const uint32_t t = cut[h].threshold;
    for (int w = threadIdx.x; w < words; w += blockDim.x) {
        uint32_t bits = 0u;
        for (int b = 0; b < 32; ++b) {
            const int c = w * 32 + b;
            if (c > r) break;
            const bool on = vcol[c] || soff[r - c] || (aware && __float_as_uint(a[c]) >= t) ||
                            (aware && r == 0);
            if (on) bits |= 1u << b;
        }
        mask[row * words + w] = bits;
    }
}

}  // namespace

bool flexprefill_runs_dense(int64_t n_new, int64_t pos0, const FlexPrefillParams& p) {
    const int64_t n = pos0 + n_new, bs = p.block_size;
    const int64_t k_blocks = (n + bs - 1) / bs;
    const int64_t min_b = std::min<int64_t>((std::max<int64_t>(p.min_budget, 0) + bs - 1) / bs, k_blocks);
    return n <= std::max(2 * bs, min_b * bs);
}

BlockPlanView SparsePlanner::flexprefill(const EstimateInputs& in, const FlexPrefillParams& p,
                                         cudaStream_t s) {
    const BlockGrid g = checked_block_grid(in.n_new, in.pos0, p.block_size);
    TDM_REQUIRE(!flexprefill_runs_dense(in.n_new, in.pos0, p), TDM_ERR_INTERNAL,
                "FlexPrefill called on a prompt that falls back to dense attention");
    TDM_REQUIRE(in.heads > 0 && in.kv_heads > 0 && in.heads % in.kv_heads == 0,
                TDM_ERR_INVALID_ARGUMENT, "query heads must be a multiple of KV heads");
    TDM_REQUIRE(p.gamma > 0.0f && p.gamma <= 1.0f, TDM_ERR_INVALID_ARGUMENT, "gamma must be in (0, 1]");
    TDM_REQUIRE(g.k_blocks <= 16 * 256, TDM_ERR_UNSUPPORTED,
                "FlexPrefill on the GPU supports up to 4096 key blocks");
    TDM_REQUIRE(in.head_dim <= 256, TDM_ERR_UNSUPPORTED, "head dim too large");
    const int bs = p.block_size, nb = g.k_blocks, heads = in.heads;
    const int64_t n = in.pos0 + in.n_new;
    const int group = heads / in.kv_heads;
    info_heads_ = heads;

    // 1. The last block's attention, summed vertically and along diagonals.
    const int64_t row0 = n - bs;
    stage_queries(in, row0, bs, s);
    estimate::ScoreArgs a;
    a.q = q_stage_.as<__nv_bfloat16>();
    a.q_tokens = bs;
    a.q_tok_base = row0;
    a.k = in.k_cache;
    a.capacity = in.capacity;
    a.group = group;
    a.key_len = n;
    a.stride = 1;
    a.row_base = row0;
    a.rows = bs;
    a.q_lo = std::max(in.pos0, row0);
    a.q_hi = n;
    a.scale_log2 = in.scale * estimate::kLog2e;
    a.col_splits = estimate::column_splits(1, heads, n / kTileCols + 1);
    ensure(vert_, size_t(heads) * n * sizeof(float));
    ensure(slash_, size_t(heads) * n * sizeof(float));
    TDM_CUDA_CHECK(cudaMemsetAsync(slash_.data(), 0, size_t(heads) * n * sizeof(float), s));
    const VerticalSlashEpilogue epi{vert_.as<float>(), slash_.as<float>(), n, bs,
                                    1.0f / float(a.q_hi - a.q_lo)};
    estimate::score_passes(a, heads, in.head_dim, in.k_bf16, partial_stats_, row_stats_, epi, s);

    // 2. Block sums [vertical | slash] and pooled keys.
    ensure(block_scores_, size_t(2) * heads * nb * sizeof(float));
    float* vert_b = block_scores_.as<float>();
    float* slash_b = vert_b + int64_t(heads) * nb;
    {
        const int64_t warps = int64_t(heads) * nb;
        block_pool_kernel<<<unsigned((warps + 7) / 8), 256, 0, s>>>(vert_.as<float>(), n, bs, nb, heads, vert_b);
        block_pool_kernel<<<unsigned((warps + 7) / 8), 256, 0, s>>>(slash_.as<float>(), n, bs, nb, heads, slash_b);
        TDM_CUDA_CHECK_LAUNCH("block_pool_kernel");
    }
    ensure(pooled_k_, size_t(in.kv_heads) * nb * in.head_dim * sizeof(float));
    if (in.k_bf16)
        pool_keys_kernel<<<dim3(unsigned(nb), unsigned(in.kv_heads)), 128, 0, s>>>(
            static_cast<const __nv_bfloat16*>(in.k_cache), in.capacity, n, bs, in.head_dim, pooled_k_.as<float>());
    else
        pool_keys_kernel<<<dim3(unsigned(nb), unsigned(in.kv_heads)), 128, 0, s>>>(
            static_cast<const float*>(in.k_cache), in.capacity, n, bs, in.head_dim, pooled_k_.as<float>());
    TDM_CUDA_CHECK_LAUNCH("pool_keys_kernel");

    // 3. Coverage counts (states [vertical | slash | query-aware cut] x heads), the decision.
    ensure(select_state_, size_t(3) * heads * sizeof(SelectState));
    SelectState* st = select_state_.as<SelectState>();
    weighted_select(vert_.as<float>(), n, heads, p.gamma, nullptr, st, hist_, s);
    weighted_select(slash_.as<float>(), n, heads, p.gamma, nullptr, st + heads, hist_, s);
    ensure(jsd_, size_t(heads) * sizeof(float));
    ensure(head_info_, size_t(3) * heads * sizeof(int32_t));
    DecideArgs d;
    d.q = in.q;
    d.n_new = in.n_new;
    d.pos0 = in.pos0;
    d.n = n;
    d.heads = heads;
    d.group = group;
    d.D = in.head_dim;
    d.bs = bs;
    d.nb = nb;
    d.scale = in.scale;
    d.tau = p.tau;
    d.kbar = pooled_k_.as<float>();
    d.vert_b = vert_b;
    d.cover = st;
    d.min_b = int32_t(std::min<int64_t>((std::max<int64_t>(p.min_budget, 0) + bs - 1) / bs, nb));
    d.max_b = p.max_budget > 0 ? int32_t(std::min<int64_t>((p.max_budget + bs - 1) / bs, nb)) : nb;
    d.budget_div = (p.compat & TDM_SPARSE_COMPAT_FLEX_BUDGET_128) != 0 ? 128 : bs;
    d.jsd_nan_compat = (p.compat & TDM_SPARSE_COMPAT_FLEX_JSD_NAN) != 0;
    d.jsd = jsd_.as<float>();
    d.info = head_info_.as<int32_t>();
    const size_t decide_smem = size_t(in.head_dim + nb) * sizeof(float);
    decide_kernel<<<unsigned(heads), 256, decide_smem, s>>>(d);
    TDM_CUDA_CHECK_LAUNCH("decide_kernel");

    // 4. Top columns and diagonals.
    ensure(vs_flags_, size_t(heads) * 2 * nb);
    uint8_t* flags = vs_flags_.as<uint8_t>();
    if (nb <= 4 * 256)
        top_blocks_kernel<4><<<unsigned(heads), 256, 0, s>>>(vert_b, slash_b, heads, nb, d.info, flags);
    else if (nb <= 8 * 256)
        top_blocks_kernel<8><<<unsigned(heads), 256, 0, s>>>(vert_b, slash_b, heads, nb, d.info, flags);
    else
        top_blocks_kernel<16><<<unsigned(heads), 256, 0, s>>>(vert_b, slash_b, heads, nb, d.info, flags);
    TDM_CUDA_CHECK_LAUNCH("top_blocks_kernel");

    // 5. Query-aware heads: pooled block attention over the call's query blocks, global cut.
    ensure(pooled_q_, size_t(heads) * g.q_blocks * in.head_dim * sizeof(float));
    pool_queries_kernel<<<dim3(unsigned(g.q_blocks), unsigned(heads)), 128, 0, s>>>(
        in.q, in.n_new, in.pos0, heads, in.head_dim, bs, g.first_q_block, d.info, pooled_q_.as<float>());
    TDM_CUDA_CHECK_LAUNCH("pool_queries_kernel");
    const int64_t cells = int64_t(g.q_blocks) * nb;
    ensure(aware_scores_, size_t(heads) * cells * sizeof(float));
    aware_scores_kernel<<<dim3(unsigned((g.q_blocks + kAwareRows - 1) / kAwareRows), unsigned(heads)), 256,
                          size_t(kAwareRows) * in.head_dim * sizeof(float), s>>>(
        pooled_q_.as<float>(), pooled_k_.as<float>(), heads, group, in.head_dim, nb, g.first_q_block,
        g.q_blocks, in.scale, d.info, aware_scores_.as<float>());
    TDM_CUDA_CHECK_LAUNCH("aware_scores_kernel");
    weighted_select(aware_scores_.as<float>(), cells, heads, p.gamma * float(g.q_blocks), d.info,
                    st + 2 * heads, hist_, s);

    // 6. The union, then the plan.
    const int words = (nb + 31) / 32;
    ensure(mask_, size_t(heads) * g.q_blocks * words * sizeof(uint32_t));
    union_mask_kernel<<<unsigned(int64_t(heads) * g.q_blocks), 64, 0, s>>>(
        flags, aware_scores_.as<float>(), st + 2 * heads, d.info, heads, nb, g.first_q_block,
        g.q_blocks, words, mask_.as<uint32_t>());
    TDM_CUDA_CHECK_LAUNCH("union_mask_kernel");
    return build_plan(g, heads, s);
}

}  // namespace tdm::cuda
