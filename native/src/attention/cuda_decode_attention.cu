// Decode attention (one query row per head) split over the KV length, flash-decoding style: the
// visible keys are cut into `splits` chunks, a block per (chunk, KV head, group rows) runs the
// shared tile loop over its chunk and writes its partial softmax (normalised output and
// log-sum-exp), and merge_kernel combines the chunks:
//   o = sum_s o_s 2^(lse_s - M) / sum_s 2^(lse_s - M),  M = max_s lse_s.
#include <algorithm>

#include "attention/cuda_attention.h"
#include "attention/cuda_attention_tile.cuh"

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
    const int pos = a.pos0;
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

// One block per query head.
__global__ void __launch_bounds__(kMergeThreads)
merge_kernel(const float* __restrict__ part_o, const float* __restrict__ part_lse, int splits,
             int heads, int D, float* __restrict__ out, float* __restrict__ lse) {
    const int h = blockIdx.x;
    float m = -INFINITY;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, part_lse[int64_t(s) * heads + h]);
    // m is finite: the query sees at least its own key, so some chunk is not empty.
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f, denom = 0.0f;
        for (int s = 0; s < splits; ++s) {
            const int64_t at = int64_t(s) * heads + h;
            const float w = exp2f(part_lse[at] - m);
            acc = fmaf(w, part_o[at * D + d], acc);
            denom += w;
        }
        out[int64_t(h) * D + d] = acc / denom;
    }
    if (lse != nullptr && threadIdx.x == 0) {
        float denom = 0.0f;
        for (int s = 0; s < splits; ++s) denom += exp2f(part_lse[int64_t(s) * heads + h] - m);
        lse[h] = (m + log2f(denom)) * kLn2;
    }
}

// Blocks along the query heads of one KV head.
int row_chunks(int group) { return (group + kBlockM - 1) / kBlockM; }

}  // namespace

int decode_splits(const AttentionArgs& args, int multiprocessors) {
    check_attention_shape(args, "decode_splits");
    const int pos = int(args.pos0);
    const int64_t keys = pos + 1 - first_visible_key(pos, args.window);
    const int64_t blocks = int64_t(args.kv_heads) * row_chunks(args.heads / args.kv_heads);
    // Two blocks per SM hide some of each other's latency; no chunk shorter than the minimum.
    const int64_t wanted = (2 * int64_t(std::max(multiprocessors, 1)) + blocks - 1) / blocks;
    const int64_t by_keys = std::max<int64_t>(1, keys / kMinKeysPerSplit);
    return int(std::clamp<int64_t>(std::min(wanted, by_keys), 1, kMaxDecodeSplits));
}

int64_t decode_scratch_floats(const AttentionArgs& args, int splits) {
    return int64_t(splits) * args.heads * (int64_t(args.head_dim) + 1);
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
