// Decode attention (one query row per head) split over the KV length, flash-decoding style: the
// visible keys are cut into `splits` chunks, a block per chunk and KV head writes its partial
// softmax (normalised output and log-sum-exp) - decode_vec_kernel at head dims 64 and 128, else
// the shared f32 tile loop (a block per chunk, KV head and group rows) - and merge_kernel
// combines the chunks:
//   o = sum_s o_s 2^(lse_s - M) / sum_s 2^(lse_s - M),  M = max_s lse_s.
#include <algorithm>

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
    const bool vec = vec_decode_supports(args);
    const int64_t blocks =
        int64_t(args.kv_heads) * (vec ? 1 : row_chunks(args.heads / args.kv_heads));
    // Two blocks per SM hide some of each other's latency; no chunk shorter than the minimum.
    const int64_t wanted = (2 * int64_t(std::max(multiprocessors, 1)) + blocks - 1) / blocks;
    const int64_t by_keys =
        std::max<int64_t>(1, keys / (vec ? kMinKeysPerVecSplit : kMinKeysPerSplit));
    return int(std::clamp<int64_t>(std::min(wanted, by_keys), 1, kMaxDecodeSplits));
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
    if (vec_decode_supports(args)) {  // merged by each KV head's last block
        int* arrivals = reinterpret_cast<int*>(part_lse + int64_t(splits) * a.heads);
        const dim3 grid(unsigned(splits), unsigned(a.kv_heads));
        // One instance per (head dim, group): the group's rows unrolled, scored side by side.
        auto go = [&](auto group) {
            constexpr int G = decltype(group)::value;
            launch_overlapped("launch of decode_vec_kernel",
                              a.head_dim == 64 ? decode_vec_kernel<64, G> : decode_vec_kernel<128, G>,
                              grid, dim3(kVecThreads), 0, stream, a, splits, part_o, part_lse,
                              arrivals);
        };
        switch (a.group) {
            case 1: go(std::integral_constant<int, 1>{}); break;
            case 2: go(std::integral_constant<int, 2>{}); break;
            case 3: go(std::integral_constant<int, 3>{}); break;
            case 4: go(std::integral_constant<int, 4>{}); break;
            case 5: go(std::integral_constant<int, 5>{}); break;
            case 6: go(std::integral_constant<int, 6>{}); break;
            case 7: go(std::integral_constant<int, 7>{}); break;
            default: go(std::integral_constant<int, 8>{}); break;
        }
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
