// Decode attention (one query row per head) split over the KV length, flash-decoding style: the
// visible keys are cut into `splits` chunks, each chunk's partial softmax (output and log-sum-exp,
// log2 units) is computed by one block, and the chunks are combined:
//   o = sum_s o_s 2^(lse_s - M) / sum_s 2^(lse_s - M),  M = max_s lse_s.
// Three kernels:
//   - decode_cluster_kernel (head dims 64/128, <= kMaxVecGroup query heads per KV head, at most
//     kMaxClusterDecodeSplits chunks: every cache up to kClusterMaxKeys keys): the chunks of a KV
//     head are one thread-block cluster, merged through distributed shared memory.
//   - decode_vec_kernel (the same shapes, more chunks: long caches): the chunks write partial
//     results to scratch and the last block of each KV head to arrive merges them.
//   - decode_kernel + merge_kernel: any other shape (the shared f32 tile loop).
//
// Where the time went (before decode_cluster_kernel; Llama-3.2-1B shape, Hq 32, Hkv 8, D 64,
// 512-768 keys in a cache of capacity 1024, ~10.7 us per call under ncu on an H100 for ~1.5 MB):
//   - Latency, not bandwidth: the whole call moves ~1.5 MB, which one DRAM round trip's worth of
//     requests in flight covers, so the time is the chain of dependent steps, each a global-memory
//     round trip (0.5-1 us at low load, more with ncu's flushed caches), plus the launch:
//       1. griddepcontrol.wait, then load pos (pos_dev) - nothing else can start;
//       2. the K/V loads (address = f(pos)): a DRAM round trip that only began after the
//          predecessor had finished, although only key `pos` comes from it;
//       3. a serial online softmax: 16 chunks (decode_splits sized for capacity 1024: min(33,
//          1024/64)) of ~48 keys over 16 sub-warps = ~3 keys each, one dependent exp2/shuffle
//          chain per key;
//       4. the block's sub-warp merge through 16 KB of shared memory, each thread looping over 16
//          sub-warps for 2 outputs;
//       5. partial o/lse stored, __threadfence (waits for the stores to reach L2), atomicAdd on
//          the arrival counter (an L2 round trip), __syncthreads;
//       6. in the last block only, after the slowest of 16: __threadfence, the 16 chunk lse loads
//          (L2 round trip), two warp reductions, __syncthreads, 16 partial outputs per element
//          loaded in two unrolled rounds of 8 (two more L2 round trips), the store, the counter
//          reset.
//     That is about six dependent global round trips after the launch, with the GPU's memory
//     system nearly idle. The scratch clear itself is not per call (only on a layout change).
//   - decode_splits sized the split count for the SM count (2 blocks per SM) and >= 64 keys per
//     chunk: at these lengths that buys parallelism the data does not need and pays for it with
//     the global merge.
//
// decode_cluster_kernel removes steps 3-6 and overlaps step 2 with the predecessor:
//   - a cluster of C <= 8 blocks (256 threads) per KV head, C ~ keys / 64 but no more than the
//     SMs can hold at once; a block's keys are read in batches of 64-128 keys, two batches (every
//     key of a 1024-key cache at C = 8) loaded into registers, 16 bytes a lane, before any is
//     used, and the next batch always in flight while one is scored;
//   - the old keys (< pos; written by earlier steps) are loaded *before* griddepcontrol.wait, so
//     their DRAM latency overlaps the predecessor's tail; the newest key and q, which the
//     predecessor writes, are read after it (see the kernel);
//   - a batch is scored whole (all of its scores, then one max, one rescale) instead of key by
//     key; the sub-warps of a warp merge by shuffles, the 8 warps through 8 KB (D 64) of shared
//     memory, and the C blocks through distributed shared memory after one cluster barrier:
//     block r reads the C chunk states of its 1/C of the outputs from its peers' shared memory
//     and writes the output. No scratch, no fence, no atomic, no second pass.
// Expected: pos (L2, ~0.3 us) -> K/V (one DRAM round trip, ~1 us, partly hidden behind the
// predecessor) -> scoring (~0.3 us) -> merge (a __syncthreads, a cluster barrier, one DSMEM
// round trip: ~0.5 us): ~2-3 us per call at 512-1024 keys for D 64 and D 128, against ~10.
// Long caches keep decode_vec_kernel, which is bandwidth-bound there (the merge is a small part).
#include <cooperative_groups.h>

#include <algorithm>
#include <type_traits>

#include "attention/cuda_attention.h"
#include "attention/cuda_attention_tile.cuh"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda {
namespace {

using namespace attn;

// Below this many keys per chunk, a chunk's fixed cost (its Q tile, its partial result, the
// merge) outweighs the parallelism it adds.
constexpr int64_t kMinKeysPerSplit = 2 * kBlockN;
constexpr int kMergeThreads = 128;

// The keys the decode query (at pos) sees: [lo, pos + 1).
__host__ __device__ inline int first_visible_key(int pos, int window) {
    return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

// part_o [splits, heads, D] and part_lse [splits, heads] (log2 units; -inf for an empty chunk).
template <int kChunks>
__global__ void __launch_bounds__(kThreads)
decode_kernel(KernelArgs a, int splits, float* __restrict__ part_o,
              float* __restrict__ part_lse) {
    extern __shared__ float smem[];
    const int D = a.head_dim;
    const SmemLayout layout{D};
    float* q_s = smem;
    float* k_s = q_s + layout.q_floats();
    float* v_s = k_s + layout.k_floats();
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

    const int split = blockIdx.x, kv_head = blockIdx.y;
    const int r0 = blockIdx.z * kBlockM;  // rows are this KV head's query heads
    const int r_end = min(a.group, r0 + kBlockM);
    const int pos = a.pos_dev != nullptr ? int(*a.pos_dev) : a.pos0;
    const int lo = first_visible_key(pos, a.window), hi = pos + 1;
    const int key_begin = lo + int(int64_t(hi - lo) * split / splits);
    const int key_end = lo + int(int64_t(hi - lo) * (split + 1) / splits);

    load_q_tile(q_s, D, a.scale_log2, r_end - r0,
                [&](int r) { return a.q + int64_t(kv_head * a.group + r0 + r) * D; });
    int pos_of_slot[kRowsPerWarp];
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) pos_of_slot[i] = pos;

    const uint16_t* k_head = a.k_cache + int64_t(kv_head) * a.capacity * D;
    const uint16_t* v_head = a.v_cache + int64_t(kv_head) * a.capacity * D;
    RowState<kChunks> st;
    st.init();
    for (int key0 = key_begin; key0 < key_end; key0 += kBlockN) {
        __syncthreads();
        load_kv_tile(k_s, v_s, k_head, v_head, key0, key_end, D);
        __syncthreads();
        // Every key of the chunk is visible to the query, so only the chunk's ragged last tile
        // needs the mask.
        if (tile_is_full(key0, key_end, pos, pos, a.window)) {
            attend_tile<kChunks, false>(st, q_s, k_s, v_s, D, key0, key_end, pos_of_slot,
                                        a.window);
        } else {
            attend_tile<kChunks, true>(st, q_s, k_s, v_s, D, key0, key_end, pos_of_slot,
                                       a.window);
        }
    }

#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
        const int row = r0 + row_of(warp, i);
        if (row >= r_end) continue;
        const int64_t at = int64_t(split) * a.heads + kv_head * a.group + row;
        const bool saw_keys = st.l[i] > 0.0f;
        const float inv_l = saw_keys ? 1.0f / st.l[i] : 0.0f;
        float* dst = part_o + at * D;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const int d = lane + c * kWarpSize;
            if (d < D) dst[d] = st.o[i][c] * inv_l;
        }
        if (lane == 0) part_lse[at] = saw_keys ? st.m[i] + log2f(st.l[i]) : -INFINITY;
    }
}

// The vectorised decode kernel for head dims 64 and 128 (every production Llama) and up to
// kMaxVecGroup query heads per KV head. A group of D/8 lanes (a "sub-warp") reads one key row with
// 16-byte loads - 8 bf16 per lane, in registers, no shared memory - scores it against all the
// KV head's query heads at once (the query fragments stay in registers, pre-scaled into log2
// units) and keeps its own online softmax; kVecUnroll keys per sub-warp are loaded before any is
// used. The block's sub-warps are merged through shared memory at the end. One block per
// (chunk, KV head): each key and value row is read once per step.
constexpr int kVecWarps = 4;
constexpr int kVecThreads = kVecWarps * kWarpSize;
constexpr int kVecUnroll = 4;
constexpr int kMaxVecGroup = 8;
// A chunk's keys are read in one or two rounds of the block's 16 key slots (D = 64) x 4 loads in
// flight; shorter chunks only add blocks to merge.
constexpr int64_t kMinKeysPerVecSplit = 64;

// Combines the chunks' partial results of query heads h0 .. h0 + count - 1 (count <=
// kMaxVecGroup), called by a whole block:
//   o = sum_s o_s 2^(lse_s - M) / sum_s 2^(lse_s - M),  M = max_s lse_s.
// M is finite: the query sees at least its own key, so some chunk is not empty. The partial
// results may come from other blocks of the same launch: they are read from L2 (__ldcg).
__device__ void merge_splits(const float* part_o, const float* part_lse, int splits, int heads,
                             int D, int h0, int count, float* __restrict__ out,
                             float* __restrict__ lse) {
    __shared__ float weight[kMaxVecGroup][kMaxDecodeSplits];
    __shared__ float denom[kMaxVecGroup];
    // A warp per head: its lanes read the chunks' log-sum-exps at once (two each at most).
    static_assert(kMaxDecodeSplits <= 2 * kWarpSize, "two chunks per lane");
    const int lane = threadIdx.x % kWarpSize;
    for (int i = threadIdx.x / kWarpSize; i < count; i += blockDim.x / kWarpSize) {
        const int h = h0 + i;
        float part[2];
        float m = -INFINITY;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int s = lane + k * kWarpSize;
            part[k] = s < splits ? __ldcg(part_lse + int64_t(s) * heads + h) : -INFINITY;
            m = fmaxf(m, part[k]);
        }
        m = warp_max(m);
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int s = lane + k * kWarpSize;
            if (s >= splits) continue;
            const float w = exp2f(part[k] - m);
            weight[i][s] = w;
            sum += w;
        }
        sum = warp_sum(sum);
        if (lane == 0) {
            denom[i] = sum;
            if (lse != nullptr) lse[h] = (m + log2f(sum)) * kLn2;
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < count * D; idx += blockDim.x) {
        const int i = idx / D, d = idx - i * D;
        float acc = 0.0f;
#pragma unroll 8
        for (int s = 0; s < splits; ++s)
            acc = fmaf(weight[i][s], __ldcg(part_o + (int64_t(s) * heads + h0 + i) * D + d), acc);
        out[int64_t(h0 + i) * D + d] = acc / denom[i];
    }
}

// The tile kernel's merge: one block per query head.
__global__ void __launch_bounds__(kMergeThreads)
merge_kernel(const float* __restrict__ part_o, const float* __restrict__ part_lse, int splits,
             int heads, int D, float* __restrict__ out, float* __restrict__ lse) {
    merge_splits(part_o, part_lse, splits, heads, D, blockIdx.x, 1, out, lse);
}

__device__ __forceinline__ void widen8(const uint4& w, float (&out)[8]) {
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = __uint_as_float(words[i] << 16);
        out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
}

template <int D, int G>
__global__ void __launch_bounds__(kVecThreads)
decode_vec_kernel(KernelArgs a, int splits, float* __restrict__ part_o,
                  float* __restrict__ part_lse, int* __restrict__ arrivals) {
    constexpr int kLanes = D / 8;                    // lanes per key row
    constexpr int kSlots = kWarpSize / kLanes;       // key rows per warp at a time
    constexpr int kSubwarps = kVecWarps * kSlots;
    __shared__ float m_s[kSubwarps][G], l_s[kSubwarps][G];
    __shared__ float o_s[kSubwarps][G][D];

    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int j = lane % kLanes;                              // dims 8j .. 8j+7
    const int sub = warp * kSlots + lane / kLanes;            // this lane's sub-warp (key slot)
    const int split = blockIdx.x, kv_head = blockIdx.y;
    wait_for_predecessor();  // launched overlapped: q and the cache come from the kernels before
    allow_successor();
    const int pos = a.pos_dev != nullptr ? int(*a.pos_dev) : a.pos0;
    const int lo = first_visible_key(pos, a.window), hi = pos + 1;
    const int key_begin = lo + int(int64_t(hi - lo) * split / splits);
    const int key_end = lo + int(int64_t(hi - lo) * (split + 1) / splits);

    float q[G][8], o[G][8], m[G], l[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
        const float4* src =
            reinterpret_cast<const float4*>(a.q + int64_t(kv_head * G + g) * D) + 2 * j;
        const float4 x = src[0], y = src[1];
        const float v[8] = {x.x, x.y, x.z, x.w, y.x, y.y, y.z, y.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            q[g][e] = v[e] * a.scale_log2;
            o[g][e] = 0.0f;
        }
    }

    const uint16_t* k_head = a.k_cache + int64_t(kv_head) * a.capacity * D;
    const uint16_t* v_head = a.v_cache + int64_t(kv_head) * a.capacity * D;
    // The loop and its breaks are uniform over the warp (the shuffles need every lane); a
    // sub-warp whose key is past the end computes a score it does not use.
    const int slot = lane / kLanes;
    for (int base = key_begin + warp * kSlots; base < key_end;
         base += kSubwarps * kVecUnroll) {
        uint4 kw[kVecUnroll], vw[kVecUnroll];
#pragma unroll
        for (int u = 0; u < kVecUnroll; ++u) {
            const int key = base + u * kSubwarps + slot;
            kw[u] = vw[u] = make_uint4(0, 0, 0, 0);
            if (key < key_end) {
                kw[u] = reinterpret_cast<const uint4*>(k_head + int64_t(key) * D)[j];
                vw[u] = reinterpret_cast<const uint4*>(v_head + int64_t(key) * D)[j];
            }
        }
#pragma unroll
        for (int u = 0; u < kVecUnroll; ++u) {
            if (base + u * kSubwarps >= key_end) break;
            const bool valid = base + u * kSubwarps + slot < key_end;
            float kf[8], vf[8];
            widen8(kw[u], kf);
            widen8(vw[u], vf);
#pragma unroll
            for (int g = 0; g < G; ++g) {
                float score = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; ++e) score = fmaf(q[g][e], kf[e], score);
#pragma unroll
                for (int off = kLanes / 2; off > 0; off /= 2)
                    score += __shfl_xor_sync(kFullMask, score, off);
                if (!valid) continue;
                const float m_new = fmaxf(m[g], score);
                const float corr = exp2f(m[g] - m_new), p = exp2f(score - m_new);
                l[g] = l[g] * corr + p;
#pragma unroll
                for (int e = 0; e < 8; ++e) o[g][e] = fmaf(o[g][e], corr, p * vf[e]);
                m[g] = m_new;
            }
        }
    }

    // Merge the sub-warps: each writes its state, then the block combines them per (row, dim).
#pragma unroll
    for (int g = 0; g < G; ++g) {
        if (j == 0) {
            m_s[sub][g] = m[g];
            l_s[sub][g] = l[g];
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) o_s[sub][g][8 * j + e] = o[g][e];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < G * D; idx += kVecThreads) {
        const int g = idx / D, d = idx % D;
        float mx = -INFINITY;
        for (int s = 0; s < kSubwarps; ++s) mx = fmaxf(mx, m_s[s][g]);
        const int64_t at = int64_t(split) * a.heads + kv_head * G + g;
        if (mx == -INFINITY) {  // an empty chunk
            part_o[at * D + d] = 0.0f;
            if (d == 0) part_lse[at] = -INFINITY;
            continue;
        }
        float sum = 0.0f, acc = 0.0f;
        for (int s = 0; s < kSubwarps; ++s) {
            const float w = exp2f(m_s[s][g] - mx);  // 0 for a sub-warp that saw no key
            sum = fmaf(l_s[s][g], w, sum);
            acc = fmaf(o_s[s][g][d], w, acc);
        }
        part_o[at * D + d] = acc / sum;
        if (d == 0) part_lse[at] = mx + log2f(sum);
    }

    // The last block of this KV head to finish merges the chunks (no merge launch). It resets the
    // arrival count for the next call, so the count is zero between calls.
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&arrivals[kv_head], 1) == splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    merge_splits(part_o, part_lse, splits, a.heads, D, kv_head * G, G, a.out, a.lse);
    if (threadIdx.x == 0) arrivals[kv_head] = 0;
}

// ---- decode_cluster_kernel: one thread-block cluster per KV head ----
namespace cg = cooperative_groups;

constexpr int kClusterWarps = 8;
constexpr int kClusterThreads = kClusterWarps * kWarpSize;
// Longest visible key range that decode_splits sends to the cluster kernel: 8 blocks of <= 256
// keys, two batches of which (all of them at D 64) are in flight before any is scored. Past it,
// 64 blocks in flight cannot keep enough bytes in flight for the bandwidth, and decode_vec_kernel
// (2 blocks per SM) takes over.
constexpr int64_t kClusterMaxKeys = 2048;
// A cluster block gets at least this many keys: shorter chunks add blocks to merge and SMs to
// wait for without adding bytes in flight that matter.
constexpr int64_t kMinKeysPerClusterBlock = 64;
static_assert(kMaxClusterDecodeSplits <= 8, "portable cluster size");

// How a cluster block walks its keys. A sub-warp of kLanes lanes holds one key row, 8 bf16 (16
// bytes) a lane; kSlots sub-warps a warp, kRound keys for the block at a time. A batch is kRounds
// rounds: each lane holds kRounds K and V fragments of a batch in registers, and two batches are
// live (the one scored, the next in flight). At G > 4 the query and output fragments (8 G floats
// each) leave room for half the batch.
template <int D, int G>
struct ClusterTile {
    static constexpr int kLanes = D / 8;
    static constexpr int kSlots = kWarpSize / kLanes;
    static constexpr int kRound = kClusterWarps * kSlots;
    static constexpr int kRounds = G > 4 ? 2 : 4;
    static constexpr int kBatch = kRound * kRounds;
};

// Loads this lane's fragments (16 bytes at dims 8j..8j+7) of keys first + u * kRound of one batch:
// those below key_end, except `skip`; zeros for the others (never read). L2 only (__ldcg): the
// rows are read once, and nothing stale can sit in L1 when a row is read after the wait.
template <int D, int kRound, int kRounds>
__device__ __forceinline__ void load_kv_batch(uint4 (&kw)[kRounds], uint4 (&vw)[kRounds],
                                              const uint16_t* k_head, const uint16_t* v_head,
                                              int j, int first, int key_end, int skip) {
#pragma unroll
    for (int u = 0; u < kRounds; ++u) {
        const int key = first + u * kRound;
        kw[u] = vw[u] = make_uint4(0, 0, 0, 0);
        if (key < key_end && key != skip) {
            kw[u] = __ldcg(reinterpret_cast<const uint4*>(k_head + int64_t(key) * D) + j);
            vw[u] = __ldcg(reinterpret_cast<const uint4*>(v_head + int64_t(key) * D) + j);
        }
    }
}

// Loads key `pos` (and its value) where load_kv_batch(..., skip = pos) left it out.
template <int D, int kRound, int kRounds>
__device__ __forceinline__ void load_newest_key(uint4 (&kw)[kRounds], uint4 (&vw)[kRounds],
                                                const uint16_t* k_head, const uint16_t* v_head,
                                                int j, int first, int key_end, int pos) {
#pragma unroll
    for (int u = 0; u < kRounds; ++u) {
        const int key = first + u * kRound;
        if (key == pos && key < key_end) {
            kw[u] = __ldcg(reinterpret_cast<const uint4*>(k_head + int64_t(key) * D) + j);
            vw[u] = __ldcg(reinterpret_cast<const uint4*>(v_head + int64_t(key) * D) + j);
        }
    }
}

// Online softmax over one batch, for this lane's sub-warp: every score of the batch first (the
// dot products and their shuffle reductions are independent, so they overlap), then one max,
// one rescale of the running state and the P V accumulation. batch0 (uniform over the block) is
// the batch's first key, first = batch0 + this sub-warp's slot. State in log2 units: m the
// running max (-inf before any key), l = sum 2^(s - m), o = sum 2^(s - m) v (dims 8j..8j+7).
template <int D, int G, int kRound, int kRounds>
__device__ __forceinline__ void attend_batch(const uint4 (&kw)[kRounds],
                                             const uint4 (&vw)[kRounds], int batch0, int first,
                                             int key_end, const float (&q)[G][8], float (&m)[G],
                                             float (&l)[G], float (&o)[G][8]) {
    constexpr int kLanes = D / 8;
    float s[kRounds][G];
#pragma unroll
    for (int u = 0; u < kRounds; ++u) {
#pragma unroll
        for (int g = 0; g < G; ++g) s[u][g] = -INFINITY;
        // Rounds wholly past the chunk are skipped (uniform over the block: the shuffles below
        // need every lane of the warp).
        if (batch0 + u * kRound >= key_end) continue;
        const bool valid = first + u * kRound < key_end;
        float kf[8];
        widen8(kw[u], kf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
            float dot = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; ++e) dot = fmaf(q[g][e], kf[e], dot);
#pragma unroll
            for (int off = kLanes / 2; off > 0; off /= 2)
                dot += __shfl_xor_sync(kFullMask, dot, off);
            if (valid) s[u][g] = dot;
        }
    }
    float m_ref[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        float m_new = m[g];
#pragma unroll
        for (int u = 0; u < kRounds; ++u) m_new = fmaxf(m_new, s[u][g]);
        // A sub-warp that has seen no key keeps m = -inf: subtract 0 then, so that 2^(-inf)
        // gives 0 rather than NaN.
        m_ref[g] = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = exp2f(m[g] - m_ref[g]);
        l[g] *= corr;
#pragma unroll
        for (int e = 0; e < 8; ++e) o[g][e] *= corr;
        m[g] = m_new;
    }
#pragma unroll
    for (int u = 0; u < kRounds; ++u) {
        if (batch0 + u * kRound >= key_end) continue;
        float vf[8];
        widen8(vw[u], vf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const float p = exp2f(s[u][g] - m_ref[g]);  // 0 for a key past the chunk
            l[g] += p;
#pragma unroll
            for (int e = 0; e < 8; ++e) o[g][e] = fmaf(p, vf[e], o[g][e]);
        }
    }
}

// Merges the softmax states of a warp's kSlots sub-warps (lanes j, j + kLanes, ...) by shuffles;
// afterwards every sub-warp holds the warp's state.
template <int D, int G>
__device__ __forceinline__ void merge_warp_slots(float (&m)[G], float (&l)[G], float (&o)[G][8]) {
#pragma unroll
    for (int off = D / 8; off < kWarpSize; off *= 2) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const float m_other = __shfl_xor_sync(kFullMask, m[g], off);
            const float l_other = __shfl_xor_sync(kFullMask, l[g], off);
            const float m_new = fmaxf(m[g], m_other);
            const float m_ref = m_new == -INFINITY ? 0.0f : m_new;
            const float w_self = exp2f(m[g] - m_ref), w_other = exp2f(m_other - m_ref);
            l[g] = l[g] * w_self + l_other * w_other;
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                const float o_other = __shfl_xor_sync(kFullMask, o[g][e], off);
                o[g][e] = o[g][e] * w_self + o_other * w_other;
            }
            m[g] = m_new;
        }
    }
}

// Launched as clusters of gridDim.x blocks (cluster rank = blockIdx.x = chunk), one cluster per
// KV head (blockIdx.y); writes out (and lse) of the KV head's G query heads directly.
//
// Ordering with the predecessor (programmatic dependent launch, overlap.cuh): the predecessor of
// a decode step writes q and the newest key/value (position pos). Everything else this kernel
// reads was written before the predecessor started - older cache rows by earlier steps, pos_dev
// by the step's write_step_state launch ahead of the step's kernels - and every kernel of the
// chain calls allow_successor only after its own wait, so those writes are complete when this
// kernel starts. Hence: pos and the rows of keys < pos are loaded before wait_for_predecessor;
// q and row pos after it.
template <int D, int G>
__global__ void __launch_bounds__(kClusterThreads, 1) decode_cluster_kernel(KernelArgs a) {
    using T = ClusterTile<D, G>;
    constexpr int R = T::kRounds;
    // Per-warp states, then the block's (its chunk's) state, which the peers read.
    __shared__ float warp_m[kClusterWarps][G], warp_l[kClusterWarps][G];
    __shared__ __align__(16) float warp_o[kClusterWarps][G][D];
    __shared__ float chunk_m[G], chunk_l[G];
    __shared__ float chunk_o[G][D];

    const cg::cluster_group cluster = cg::this_cluster();
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int j = lane % T::kLanes;                   // dims 8j .. 8j+7
    const int slot = lane / T::kLanes;
    const int sub = warp * T::kSlots + slot;          // this lane's key within a round
    const int chunk = int(cluster.block_rank()), chunks = int(cluster.num_blocks());
    const int kv_head = blockIdx.y;

    const int pos = a.pos_dev != nullptr ? int(__ldcg(a.pos_dev)) : a.pos0;
    const int lo = first_visible_key(pos, a.window), hi = pos + 1;
    const int key_begin = lo + int(int64_t(hi - lo) * chunk / chunks);
    const int key_end = lo + int(int64_t(hi - lo) * (chunk + 1) / chunks);
    const uint16_t* k_head = a.k_cache + int64_t(kv_head) * a.capacity * D;
    const uint16_t* v_head = a.v_cache + int64_t(kv_head) * a.capacity * D;

    // The first two batches, old keys only, while the predecessor finishes.
    uint4 k_cur[R], v_cur[R], k_next[R], v_next[R];
    load_kv_batch<D, T::kRound>(k_cur, v_cur, k_head, v_head, j, key_begin + sub, key_end, pos);
    load_kv_batch<D, T::kRound>(k_next, v_next, k_head, v_head, j, key_begin + T::kBatch + sub,
                                key_end, pos);
    wait_for_predecessor();
    allow_successor();
    load_newest_key<D, T::kRound>(k_cur, v_cur, k_head, v_head, j, key_begin + sub, key_end, pos);
    load_newest_key<D, T::kRound>(k_next, v_next, k_head, v_head, j,
                                  key_begin + T::kBatch + sub, key_end, pos);

    float q[G][8], o[G][8], m[G], l[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
        const float4* src =
            reinterpret_cast<const float4*>(a.q + int64_t(kv_head * G + g) * D) + 2 * j;
        const float4 x = __ldcg(src), y = __ldcg(src + 1);
        const float v[8] = {x.x, x.y, x.z, x.w, y.x, y.y, y.z, y.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            q[g][e] = v[e] * a.scale_log2;
            o[g][e] = 0.0f;
        }
    }

    // Uniform over the block. After the wait every key may be loaded (skip = -1: none).
    for (int b = key_begin; b < key_end; b += T::kBatch) {
        attend_batch<D, G, T::kRound>(k_cur, v_cur, b, b + sub, key_end, q, m, l, o);
#pragma unroll
        for (int u = 0; u < R; ++u) {
            k_cur[u] = k_next[u];
            v_cur[u] = v_next[u];
        }
        load_kv_batch<D, T::kRound>(k_next, v_next, k_head, v_head, j, b + 2 * T::kBatch + sub,
                                    key_end, -1);
    }

    // The block's state: sub-warps by shuffles, then the warps through shared memory.
    merge_warp_slots<D, G>(m, l, o);
    if (slot == 0) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
            float4* dst = reinterpret_cast<float4*>(&warp_o[warp][g][8 * j]);
            dst[0] = make_float4(o[g][0], o[g][1], o[g][2], o[g][3]);
            dst[1] = make_float4(o[g][4], o[g][5], o[g][6], o[g][7]);
            if (j == 0) {
                warp_m[warp][g] = m[g];
                warp_l[warp][g] = l[g];
            }
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < G * D; idx += kClusterThreads) {
        const int g = idx / D, d = idx % D;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < kClusterWarps; ++w) mx = fmaxf(mx, warp_m[w][g]);
        const float m_ref = mx == -INFINITY ? 0.0f : mx;  // an empty chunk: all weights 0
        float sum = 0.0f, acc = 0.0f;
#pragma unroll
        for (int w = 0; w < kClusterWarps; ++w) {
            const float wt = exp2f(warp_m[w][g] - m_ref);
            sum = fmaf(warp_l[w][g], wt, sum);
            acc = fmaf(warp_o[w][g][d], wt, acc);
        }
        chunk_o[g][d] = acc;
        if (d == 0) {
            chunk_m[g] = mx;
            chunk_l[g] = sum;
        }
    }

    // Every chunk's state is in its block's shared memory (the barrier orders those writes
    // before the peers' reads). Block `chunk` combines the chunk-th 1/chunks of the KV head's
    // G * D outputs.
    cluster.sync();
    const int per_block = (G * D + chunks - 1) / chunks;
    const int idx_end = min(G * D, (chunk + 1) * per_block);
    for (int idx = chunk * per_block + int(threadIdx.x); idx < idx_end; idx += kClusterThreads) {
        const int g = idx / D, d = idx % D;
        float cm[kMaxClusterDecodeSplits], cl[kMaxClusterDecodeSplits],
            co[kMaxClusterDecodeSplits];
#pragma unroll
        for (int r = 0; r < kMaxClusterDecodeSplits; ++r) {
            cm[r] = -INFINITY;
            cl[r] = co[r] = 0.0f;
            if (r < chunks) {
                cm[r] = *cluster.map_shared_rank(&chunk_m[g], r);
                cl[r] = *cluster.map_shared_rank(&chunk_l[g], r);
                co[r] = *cluster.map_shared_rank(&chunk_o[g][d], r);
            }
        }
        // The query sees its own key, so some chunk is not empty and mx is finite.
        float mx = -INFINITY;
#pragma unroll
        for (int r = 0; r < kMaxClusterDecodeSplits; ++r) mx = fmaxf(mx, cm[r]);
        float sum = 0.0f, acc = 0.0f;
#pragma unroll
        for (int r = 0; r < kMaxClusterDecodeSplits; ++r) {
            const float wt = exp2f(cm[r] - mx);
            sum = fmaf(cl[r], wt, sum);
            acc = fmaf(co[r], wt, acc);
        }
        const int head = kv_head * G + g;
        a.out[int64_t(head) * D + d] = acc / sum;
        if (a.lse != nullptr && d == 0) a.lse[head] = (mx + log2f(sum)) * kLn2;
    }
    // No block may exit (and free its shared memory) while a peer still reads it.
    cluster.sync();
}

// One thread-block cluster of `splits` blocks per KV head, launched overlapped (overlap.cuh).
template <int D, int G>
void launch_decode_cluster(const KernelArgs& a, int splits, cudaStream_t stream) {
    cudaLaunchAttribute attribute[2];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    attribute[1].id = cudaLaunchAttributeClusterDimension;
    attribute[1].val.clusterDim.x = unsigned(splits);
    attribute[1].val.clusterDim.y = 1;
    attribute[1].val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(unsigned(splits), unsigned(a.kv_heads));
    config.blockDim = dim3(kClusterThreads);
    config.dynamicSmemBytes = 0;
    config.stream = stream;
    config.attrs = attribute;
    config.numAttrs = 2;
    check_cuda(cudaLaunchKernelEx(&config, decode_cluster_kernel<D, G>, a),
               "launch of decode_cluster_kernel");
}

// Calls f(std::integral_constant<int, G>) for a group of 1 .. kMaxVecGroup query heads per KV
// head: one kernel instance per group, its rows unrolled and scored side by side.
template <class F>
void dispatch_group(int group, F&& f) {
    switch (group) {
        case 1: f(std::integral_constant<int, 1>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        case 3: f(std::integral_constant<int, 3>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        case 5: f(std::integral_constant<int, 5>{}); break;
        case 6: f(std::integral_constant<int, 6>{}); break;
        case 7: f(std::integral_constant<int, 7>{}); break;
        default: f(std::integral_constant<int, 8>{}); break;
    }
}
static_assert(kMaxVecGroup == 8, "dispatch_group covers groups 1..8");

bool vec_decode_supports(const AttentionArgs& args) {
    const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    return (args.head_dim == 64 || args.head_dim == 128) &&
           args.heads / args.kv_heads <= kMaxVecGroup && aligned(args.q) &&
           aligned(args.k_cache) && aligned(args.v_cache);
}

// Blocks along the query heads of one KV head.
int row_chunks(int group) { return (group + kBlockM - 1) / kBlockM; }

}  // namespace

int decode_splits(const AttentionArgs& args, int multiprocessors) {
    check_attention_shape(args, "decode_splits");
    const int pos = int(args.pos0);
    const int64_t keys = pos + 1 - first_visible_key(pos, args.window);
    const int64_t sms = std::max(multiprocessors, 1);
    const bool vec = vec_decode_supports(args);
    if (vec && keys <= kClusterMaxKeys) {
        // One cluster per KV head (attention_decode takes <= kMaxClusterDecodeSplits as that):
        // >= 64 keys a block, and no more blocks than the SMs hold at once (one each).
        const int64_t by_keys = (keys + kMinKeysPerClusterBlock - 1) / kMinKeysPerClusterBlock;
        const int64_t by_sms = std::max<int64_t>(1, sms / args.kv_heads);
        return int(std::clamp<int64_t>(std::min(by_keys, by_sms), 1, kMaxClusterDecodeSplits));
    }
    const int64_t blocks =
        int64_t(args.kv_heads) * (vec ? 1 : row_chunks(args.heads / args.kv_heads));
    // Two blocks per SM hide some of each other's latency; no chunk shorter than the minimum.
    const int64_t wanted = (2 * sms + blocks - 1) / blocks;
    const int64_t by_keys =
        std::max<int64_t>(1, keys / (vec ? kMinKeysPerVecSplit : kMinKeysPerSplit));
    // The vectorised long-cache path is the scratch merge: more chunks than a cluster.
    const int64_t least = vec ? kMaxClusterDecodeSplits + 1 : 1;
    return int(std::clamp<int64_t>(std::min(wanted, by_keys), least, kMaxDecodeSplits));
}

// part_o [splits, heads, D], part_lse [splits, heads], then one arrival count per KV head.
int64_t decode_scratch_floats(const AttentionArgs& args, int splits) {
    return int64_t(splits) * args.heads * (int64_t(args.head_dim) + 1) + args.kv_heads;
}

void clear_decode_scratch(float* scratch, const AttentionArgs& args, int splits,
                          cudaStream_t stream) {
    int* arrivals = reinterpret_cast<int*>(scratch + int64_t(splits) * args.heads *
                                                         (int64_t(args.head_dim) + 1));
    TDM_CUDA_CHECK(cudaMemsetAsync(arrivals, 0, size_t(args.kv_heads) * sizeof(int), stream));
}

void attention_decode(const AttentionArgs& args, int splits, float* scratch,
                      cudaStream_t stream) {
    const KernelArgs a = checked_kernel_args(args, "attention_decode");
    TDM_REQUIRE(a.n_new == 1, TDM_ERR_INVALID_ARGUMENT,
                "attention_decode: takes one query row, got " + std::to_string(a.n_new));
    TDM_REQUIRE(splits >= 1 && splits <= kMaxDecodeSplits && scratch != nullptr,
                TDM_ERR_INVALID_ARGUMENT,
                "attention_decode: splits " + std::to_string(splits) + " outside 1.." +
                    std::to_string(kMaxDecodeSplits) + " or no scratch");
    float* part_o = scratch;
    float* part_lse = scratch + int64_t(splits) * a.heads * a.head_dim;
    if (vec_decode_supports(args)) {
        if (splits <= kMaxClusterDecodeSplits) {  // merged within the cluster: no scratch
            dispatch_group(a.group, [&](auto group) {
                constexpr int G = decltype(group)::value;
                if (a.head_dim == 64) launch_decode_cluster<64, G>(a, splits, stream);
                else launch_decode_cluster<128, G>(a, splits, stream);
            });
            return;
        }
        // Merged by each KV head's last block, through scratch.
        int* arrivals = reinterpret_cast<int*>(part_lse + int64_t(splits) * a.heads);
        const dim3 grid(unsigned(splits), unsigned(a.kv_heads));
        dispatch_group(a.group, [&](auto group) {
            constexpr int G = decltype(group)::value;
            launch_overlapped(
                "launch of decode_vec_kernel",
                a.head_dim == 64 ? decode_vec_kernel<64, G> : decode_vec_kernel<128, G>, grid,
                dim3(kVecThreads), 0, stream, a, splits, part_o, part_lse, arrivals);
        });
        return;
    }
    const dim3 grid(unsigned(splits), unsigned(a.kv_heads), unsigned(row_chunks(a.group)));
    const size_t smem = SmemLayout{a.head_dim}.bytes();
    dispatch_head_dim(a.head_dim, [&](auto chunks) {
        constexpr int kChunks = decltype(chunks)::value;
        allow_shared_memory(decode_kernel<kChunks>, smem);
        decode_kernel<kChunks><<<grid, kThreads, smem, stream>>>(a, splits, part_o, part_lse);
        TDM_CUDA_CHECK_LAUNCH("decode_kernel");
    });
    merge_kernel<<<unsigned(a.heads), kMergeThreads, 0, stream>>>(part_o, part_lse, splits,
                                                                  a.heads, a.head_dim, a.out,
                                                                  a.lse);
    TDM_CUDA_CHECK_LAUNCH("merge_kernel");
}

}  // namespace tdm::cuda
